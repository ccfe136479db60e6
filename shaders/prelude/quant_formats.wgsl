// The block decoder of every quantized format (ops/quant/mod.rs): a chunk of 32 weights is read
// as one record of WORDS code words, then HALVES scales, then (HAS_MIN) HALVES minimums as f32
// bits. Weight i of a chunk is d·(q - OFFSET) + m, with the scale d and minimum m of its half
// (i / 16; both halves share them where HALVES is 1). The code planes by WORDS (the code's bits):
//   8  signed byte i % 4 of word i / 4 (q8_0)
//   4  nibbles: byte i % 16 (word i % 16 / 4), low nibble for i < 16, else high
//   5  the nibbles, and bit i of word 4 for bit 4
//   6  the nibbles, and bits 2(i % 16) of word 4 + i / 16 for bits 4 and 5
//   3  bits 2(i % 16) of word i / 16 for bits 0 and 1, and bit i of word 2 for bit 2
//   2  bits 2(i % 16) of word i / 16
// Stored, a group is one record (HEADER 0: the formats whose block is a chunk), or a K-quant
// super-block: a header of HEADER words (4, or 5 padded to 8: its f16 scales and the
// sub-blocks' small integer scales, ops/quant/mod.rs's table) then its 8 chunks' code words.
// Groups and headers start on whole vec4s. A kernel finds a chunk's group with tiled_place or
// linear_place, loads its words at codes_word and its header at header_word (once per group
// where it reads a group's chunks in turn), and has the record from with_header(record_in(..),
// head_of(..), chunk). The constants come from QuantScheme::constants; every kernel that reads
// quantized weights is written once over these functions and quad_codes().

override WORDS: u32 = 8u;
override HALVES: u32 = 1u;
override HAS_MIN: bool = false;
override OFFSET: f32 = 0.0;
override HEADER: u32 = 0u;

// The longest record (q8_0: 8 code words and a scale).
const MAX_RECORD: u32 = 9u;
alias Record = array<u32, MAX_RECORD>;
// A K-quant header decoded: its f16 scale and minimum scale as f32, and words 1-4 (the
// sub-blocks' scales).
struct Head {
    d: vec2<f32>,
    words: vec4<u32>,
}

// u32 words of a record.
fn record_words() -> u32 {
    return WORDS + HALVES * select(1u, 2u, HAS_MIN);
}

// Chunks of a group: a super-block's 8, or 1.
fn group_chunks() -> u32 {
    return select(1u, 8u, HEADER > 0u);
}

// u32 words of a stored group.
fn group_words() -> u32 {
    return select(record_words(), HEADER + 8u * WORDS, HEADER > 0u);
}

// u32 words stored together at a chunk's codes_word: the whole record, or the codes.
fn stored_words() -> u32 {
    return select(record_words(), WORDS, HEADER > 0u);
}

// (group, chunk within it) of the chunk in slot s of the tiles of 32 rows (slot
// (tile · chunks + b) · 32 + row % 32; the groups lie as the chunks do, group by group).
fn tiled_place(s: u32) -> vec2<u32> {
    if (HEADER == 0u) {
        return vec2<u32>(s, 0u);
    }
    let q = s / 32u;
    return vec2<u32>((q / 8u) * 32u + s % 32u, q % 8u);
}

// (group, chunk within it) of chunk s of matrices whose chunks lie in row order.
fn linear_place(s: u32) -> vec2<u32> {
    if (HEADER == 0u) {
        return vec2<u32>(s, 0u);
    }
    return vec2<u32>(s / 8u, s % 8u);
}

// The first word of a chunk's stored record or codes.
fn codes_word(place: vec2<u32>) -> u32 {
    if (HEADER == 0u) {
        return place.x * record_words();
    }
    return place.x * group_words() + HEADER + place.y * WORDS;
}

// The first word of a chunk's header.
fn header_word(place: vec2<u32>) -> u32 {
    return place.x * group_words();
}

// vec4s of a buffer that hold a chunk's stored words wherever they start: a K-quant chunk's
// codes start on a vec4 (4 words), or on one or its middle (2 and 6); the others anywhere.
fn record_vec4s() -> u32 {
    if (HEADER > 0u && WORDS % 2u == 0u) {
        return select((WORDS + 5u) / 4u, WORDS / 4u, WORDS % 4u == 0u);
    }
    return (stored_words() + 6u) / 4u;
}

// vec4s of a header (they start on a vec4): HEADER / 4.
fn header_vec4s() -> u32 {
    return HEADER / 4u;
}

// The words from word `at` on of a buffer of whole vec4s, given the 3 vec4s from vec4 at / 4 on.
// Loading whole vec4s and picking the words takes 2 or 3 loads where word by word took 5 to 9:
// on a CPU rasteriser the loads, not the bytes, set the pace (q8_0 decode +35% on lavapipe).
fn record_in(v: array<vec4<u32>, 3>, at: u32) -> Record {
    let w = array<u32, 12>(v[0].x, v[0].y, v[0].z, v[0].w, v[1].x, v[1].y, v[1].z, v[1].w,
                           v[2].x, v[2].y, v[2].z, v[2].w);
    let o = at % 4u;
    var r: Record;
    for (var i = 0u; i < MAX_RECORD; i++) {
        let low = select(w[i], w[i + 1u], o == 1u);
        let high = select(w[i + 2u], w[i + 3u], o == 3u);
        r[i] = select(low, high, o >= 2u);
    }
    return r;
}

// The f32 value of the f16 bits in the low half of `bits`, exactly, without shader-f16.
fn f16_value(bits: u32) -> f32 {
    let e = (bits >> 10u) & 31u;
    let m = bits & 1023u;
    let sign = select(1.0, -1.0, (bits & 0x8000u) != 0u);
    // A subnormal is m · 2^-24; a normal and inf/NaN rebiased into f32's fields.
    let normal = bitcast<f32>(((bits & 0x8000u) << 16u) | ((e + 112u) << 23u) | (m << 13u));
    let special = bitcast<f32>(((bits & 0x8000u) << 16u) | 0x7f800000u | (m << 13u));
    return select(select(normal, special, e == 31u), sign * f32(m) * 5.9604645e-8, e == 0u);
}

// The header whose first vec4 is v (its words 0-3; a header's word 4 is word 0 of the next,
// which is all a 5-word header has past its first vec4).
fn head_of(v: vec4<u32>, next: vec4<u32>) -> Head {
    return Head(vec2<f32>(f16_value(v.x & 0xffffu), f16_value(v.x >> 16u)),
                vec4<u32>(v.y, v.z, v.w, next.x));
}

// The header of words h (kernels that read a buffer word by word; head_of for vec4s).
fn head_of_words(h: array<u32, 5>) -> Head {
    return head_of(vec4<u32>(h[0], h[1], h[2], h[3]), vec4<u32>(h[4]));
}

// Record r0 (its codes) with the scales and minimums of chunk j of its super-block, made from
// its header as ops/quant/ggml.rs computes them (d · sc and -(dmin · m): exact in f32); r0
// itself for the formats without a header.
fn with_header(r0: Record, head: Head, j: u32) -> Record {
    if (HEADER == 0u) {
        return r0;
    }
    var r = r0;
    let h = head.words;
    var sc: vec2<f32>;
    var m: vec2<f32>;
    if (HALVES == 1u) {
        // q4_K, q5_K: byte j of words 1-2 and nibble j of word 3.
        let byte = (select(h.x, h.y, j >= 4u) >> (8u * (j % 4u))) & 0xffu;
        let m6 = ((byte >> 6u) << 4u) | ((h.z >> (4u * j)) & 15u);
        sc = vec2<f32>(head.d.x * f32(byte & 63u));
        m = vec2<f32>(-(head.d.y * f32(m6)));
    } else {
        // Bytes 2j and 2j + 1 of words 1-4: q2_K's scale and minimum nibbles, or signed scales.
        let word = select(select(h.x, h.y, j >= 2u), select(h.z, h.w, j >= 6u), j >= 4u);
        let pair = (word >> (16u * (j % 2u))) & 0xffffu;
        let b = vec2<u32>(pair & 0xffu, pair >> 8u);
        if (HAS_MIN) {
            sc = head.d.x * vec2<f32>(b & vec2<u32>(15u));
            m = -(head.d.y * vec2<f32>(b >> vec2<u32>(4u)));
        } else {
            sc = head.d.x * vec2<f32>(bitcast<vec2<i32>>(b << vec2<u32>(24u)) >> vec2<u32>(24u));
        }
    }
    // (Indices clamped to the record: the constant index of an unused branch must be in range.)
    let last = MAX_RECORD - 1u;
    r[min(WORDS, last)] = bitcast<u32>(sc.x);
    if (HALVES == 2u) {
        r[min(WORDS + 1u, last)] = bitcast<u32>(sc.y);
    }
    if (HAS_MIN) {
        r[min(WORDS + HALVES, last)] = bitcast<u32>(m.x);
        if (HALVES == 2u) {
            r[min(WORDS + 3u, last)] = bitcast<u32>(m.y);
        }
    }
    return r;
}

// Bits 2(4t % 16) + 2j of `word`, j = 0..3: the 2-bit codes of quad t from its plane word.
fn pair_quad(word: u32, t: u32) -> vec4<u32> {
    let s = 8u * (t % 4u);
    return (vec4<u32>(word) >> vec4<u32>(s, s + 2u, s + 4u, s + 6u)) & vec4<u32>(3u);
}

// Bits 4t + j of `word`, j = 0..3: the bit-plane codes of quad t.
fn bit_quad(word: u32, t: u32) -> vec4<u32> {
    let s = 4u * t;
    return (vec4<u32>(word) >> vec4<u32>(s, s + 1u, s + 2u, s + 3u)) & vec4<u32>(1u);
}

// The codes of weights 4t..4t + 3 of record r, as f32 (q8_0 signed, the others unsigned, the
// offset not yet taken). Converted from i32: a CPU rasteriser's SIMD converts signed integers
// in one instruction and emulates the unsigned conversion.
fn quad_codes(r: Record, t: u32) -> vec4<f32> {
    if (WORDS == 8u) {
        let v = bitcast<vec4<i32>>(vec4<u32>(r[t]) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u);
        return vec4<f32>(v);
    }
    var c: vec4<u32>;
    if (WORDS >= 4u) {
        let s = 4u * (t / 4u);
        c = (vec4<u32>(r[t % 4u]) >> vec4<u32>(s, s + 8u, s + 16u, s + 24u)) & vec4<u32>(15u);
        if (WORDS == 5u) {
            c |= bit_quad(r[4u], t) << vec4<u32>(4u);
        }
        if (WORDS == 6u) {
            c |= pair_quad(r[4u + t / 4u], t) << vec4<u32>(4u);
        }
    } else {
        c = pair_quad(r[t / 4u], t);
        if (WORDS == 3u) {
            c |= bit_quad(r[2u], t) << vec4<u32>(2u);
        }
    }
    return vec4<f32>(bitcast<vec4<i32>>(c));
}

// The scales of the record's halves (weights 0..15, 16..31).
fn record_scales(r: Record) -> vec2<f32> {
    return vec2<f32>(bitcast<f32>(r[WORDS]), bitcast<f32>(r[WORDS + HALVES - 1u]));
}

// The minimums of the record's halves, 0 without. (The indices are clamped to the record for
// the formats without: the constant index of an unused branch must still be in range.)
fn record_mins(r: Record) -> vec2<f32> {
    if (HAS_MIN) {
        let last = MAX_RECORD - 1u;
        return vec2<f32>(bitcast<f32>(r[min(WORDS + HALVES, last)]),
                         bitcast<f32>(r[min(WORDS + 2u * HALVES - 1u, last)]));
    }
    return vec2<f32>(0.0);
}

// What each half's Σ a multiplies when a chunk's sum is taken as d·Σ a·q + this·Σ a: the
// minimum less OFFSET·d.
fn record_lows(r: Record) -> vec2<f32> {
    return record_mins(r) - OFFSET * record_scales(r);
}

// Quad t of record r dequantized as ops::dequantize does: d·(q - OFFSET), or fma(d, q, m) with
// a minimum (the same values, bit for bit: d·(q - OFFSET) is exact in f32).
fn quad_weights(r: Record, t: u32) -> vec4<f32> {
    let h = t / 4u;
    let d = vec4<f32>(record_scales(r)[h]);
    let q = quad_codes(r, t);
    if (HAS_MIN) {
        return fma(d, q, vec4<f32>(record_mins(r)[h]));
    }
    return d * (q - vec4<f32>(OFFSET));
}

// The 32 weights of record r, dequantized (quad_weights).
fn record_weights(r: Record) -> array<vec4<f32>, 8> {
    var w: array<vec4<f32>, 8>;
    for (var t = 0u; t < 8u; t++) {
        w[t] = quad_weights(r, t);
    }
    return w;
}

// A chunk's part of a dot product with its 32 activations av (8 quads) whose halves sum to
// `sums`: d·Σ a·q + (m - OFFSET·d)·Σ a per half, in f32.
fn record_dot(av: array<vec4<f32>, 8>, sums: vec2<f32>, r: Record) -> f32 {
    var lo = av[0] * quad_codes(r, 0u);
    var hi = av[4] * quad_codes(r, 4u);
    for (var t = 1u; t < 4u; t++) {
        lo = fma(av[t], quad_codes(r, t), lo);
        hi = fma(av[t + 4u], quad_codes(r, t + 4u), hi);
    }
    let dots = vec2<f32>((lo.x + lo.y) + (lo.z + lo.w), (hi.x + hi.y) + (hi.z + hi.w));
    let d = record_scales(r);
    let low = record_lows(r);
    if (HALVES == 1u) {
        return fma(d.x, dots.x + dots.y, low.x * (sums.x + sums.y));
    }
    return fma(d.x, dots.x, fma(d.y, dots.y, fma(low.x, sums.x, low.y * sums.y)));
}

// The sums of a chunk's activations' halves (what the minimums multiply).
fn half_sums(av: array<vec4<f32>, 8>) -> vec2<f32> {
    let lo = (av[0] + av[1]) + (av[2] + av[3]);
    let hi = (av[4] + av[5]) + (av[6] + av[7]);
    return vec2<f32>(dot(lo, vec4<f32>(1.0)), dot(hi, vec4<f32>(1.0)));
}
