//! llama.cpp's blocks (`ggml-common.h`) to and from the chunks of [`QuantHost`]: each file
//! block's codes are unpacked and packed again in the chunk planes, and its sub-block scales
//! and minimums computed as llama.cpp's `dequantize_row_*` computes them (an f16 value times a
//! small integer: exact in f32).

use super::{pack_codes, QuantHost, QuantScheme, QUANT_BLOCK};
use half::f16;

/// The f16 value at `b[0..2]`.
fn f16_at(b: &[u8]) -> f32 {
    f16::from_le_bytes([b[0], b[1]]).to_f32()
}

/// The 6-bit scale and minimum of sub-block `j` of q4_K and q5_K (`get_scale_min_k4`).
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    match j < 4 {
        true => (q[j] & 63, q[j + 4] & 63),
        false => (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        ),
    }
}

/// The 6-bit scale of sub-block `s` of q3_K, before its -32 (the 12 packed bytes `q`).
fn scale_k3(s: usize, q: &[u8]) -> i32 {
    let low = match s < 8 {
        true => q[s] & 0xF,
        false => q[s - 8] >> 4,
    };
    let high = (q[8 + s % 4] >> (2 * (s / 4))) & 3;
    (low | high << 4) as i32
}

/// One file block decoded: its unsigned codes in weight order (q8_0: the signed bytes), the
/// scale and minimum (0 where the format has none) of each sub-block, and (K-quants) the header
/// the GPU keeps its scales in (`header_words` words, `mod.rs`'s module doc).
struct Decoded {
    codes: [u8; 256],
    scales: [f32; 16],
    mins: [f32; 16],
    header: [u32; 8],
}

/// The little-endian u32 words of `bytes` (a multiple of 4 long).
fn words_of(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
}

/// The f16 bits at `b[0..2]` as the low half of a word.
fn f16_bits(b: &[u8]) -> u32 {
    u16::from_le_bytes([b[0], b[1]]) as u32
}

/// A header of word 0 `first` and the bytes `sixteen` as words 1–4, words 5–7 zero (q2_K, q3_K,
/// q6_K).
fn byte_header(first: u32, sixteen: &[u8; 16]) -> [u32; 8] {
    let mut h = [first, 0, 0, 0, 0, 0, 0, 0];
    for (to, w) in h[1..].iter_mut().zip(words_of(sixteen)) {
        *to = w;
    }
    h
}

/// The header of a q4_K or q5_K block from its `d`/`dmin` word and 8 (scale, minimum) pairs of
/// 6 bits: byte j of words 1–2 the scale and the minimum's bits 4–5, nibble j of word 3 the
/// minimum's bits 0–3.
fn k4_header(scales: u32, pairs: [(u8, u8); 8]) -> [u32; 8] {
    let mut h = [scales, 0, 0, 0, 0, 0, 0, 0];
    for (j, (sc, m)) in pairs.into_iter().enumerate() {
        let byte = (sc & 63) as u32 | ((m >> 4) as u32) << 6;
        h[1 + j / 4] |= byte << (8 * (j % 4));
        h[3] |= ((m & 15) as u32) << (4 * j);
    }
    h
}

/// Decodes block `b` (its bytes) of `scheme`.
fn decode(scheme: QuantScheme, b: &[u8]) -> Decoded {
    let mut out = Decoded {
        codes: [0; 256],
        scales: [0.0; 16],
        mins: [0.0; 16],
        header: [0; 8],
    };
    let c = &mut out.codes;
    match scheme {
        QuantScheme::Q8_0 => {
            out.scales[0] = f16_at(b);
            c[..32].copy_from_slice(&b[2..34]);
        }
        QuantScheme::Q4_0 | QuantScheme::Q4_1 | QuantScheme::Q5_0 | QuantScheme::Q5_1 => {
            out.scales[0] = f16_at(b);
            let mut at = 2;
            if scheme.has_min() {
                out.mins[0] = f16_at(&b[2..]);
                at = 4;
            }
            let high = match scheme.code_bits() {
                5 => {
                    at += 4;
                    u32::from_le_bytes([b[at - 4], b[at - 3], b[at - 2], b[at - 1]])
                }
                _ => 0,
            };
            for i in 0..32 {
                let nibble = (b[at + i % 16] >> (4 * (i / 16))) & 15;
                c[i] = nibble | (((high >> i) & 1) as u8) << 4;
            }
        }
        QuantScheme::Q2K => {
            let (scales, qs) = (&b[0..16], &b[16..80]);
            let (d, dmin) = (f16_at(&b[80..]), f16_at(&b[82..]));
            for (w, code) in c.iter_mut().enumerate() {
                *code = (qs[32 * (w / 128) + w % 32] >> (2 * (w % 128 / 32))) & 3;
            }
            for ((scale, min), &sc) in out.scales.iter_mut().zip(&mut out.mins).zip(scales) {
                *scale = d * (sc & 0xF) as f32;
                *min = -(dmin * (sc >> 4) as f32);
            }
            let first = f16_bits(&b[80..]) | f16_bits(&b[82..]) << 16;
            out.header = byte_header(first, scales.try_into().expect("16 bytes"));
        }
        QuantScheme::Q3K => {
            let (hmask, qs, scales) = (&b[0..32], &b[32..96], &b[96..108]);
            let d = f16_at(&b[108..]);
            for (w, code) in c.iter_mut().enumerate() {
                let (n, j, l) = (w / 128, w % 128 / 32, w % 32);
                let low = (qs[32 * n + l] >> (2 * j)) & 3;
                let high = (hmask[l] >> (4 * n + j)) & 1;
                *code = low | high << 2;
            }
            let mut signed = [0u8; 16];
            for (s, byte) in signed.iter_mut().enumerate() {
                let sc = scale_k3(s, scales) - 32;
                out.scales[s] = d * sc as f32;
                *byte = sc as i8 as u8;
            }
            out.header = byte_header(f16_bits(&b[108..]), &signed);
        }
        QuantScheme::Q4K | QuantScheme::Q5K => {
            let (d, dmin, scales) = (f16_at(b), f16_at(&b[2..]), &b[4..16]);
            let (qh, qs) = match scheme {
                QuantScheme::Q5K => (Some(&b[16..48]), &b[48..176]),
                _ => (None, &b[16..144]),
            };
            for (w, code) in c.iter_mut().enumerate() {
                let (chunk, l) = (w / 32, w % 32);
                let low = (qs[32 * (chunk / 2) + l] >> (4 * (chunk % 2))) & 15;
                let high = qh.map_or(0, |h| (h[l] >> chunk) & 1);
                *code = low | high << 4;
            }
            let pairs: [(u8, u8); 8] = std::array::from_fn(|j| scale_min_k4(j, scales));
            for (j, (sc, m)) in pairs.into_iter().enumerate() {
                out.scales[j] = d * sc as f32;
                out.mins[j] = -(dmin * m as f32);
            }
            out.header = k4_header(f16_bits(b) | f16_bits(&b[2..]) << 16, pairs);
        }
        QuantScheme::Q6K => {
            let (ql, qh, scales) = (&b[0..128], &b[128..192], &b[192..208]);
            let d = f16_at(&b[208..]);
            for (w, code) in c.iter_mut().enumerate() {
                let (n, g, l) = (w / 128, w % 128 / 32, w % 32);
                let low = (ql[64 * n + l + 32 * (g & 1)] >> (4 * (g >> 1))) & 15;
                let high = (qh[32 * n + l] >> (2 * g)) & 3;
                *code = low | high << 4;
            }
            for (scale, &sc) in out.scales.iter_mut().zip(scales) {
                *scale = d * sc as i8 as f32;
            }
            out.header = byte_header(f16_bits(&b[208..]), scales.try_into().expect("16 bytes"));
        }
    }
    out
}

/// A tensor's blocks of `scheme` as they lie in the file (`data`, whole blocks) in chunks;
/// `None` when `data` is not whole blocks.
pub fn from_ggml_blocks(scheme: QuantScheme, data: &[u8]) -> Option<QuantHost> {
    let (weights, size) = scheme.file_block();
    if !data.len().is_multiple_of(size) {
        return None;
    }
    let chunks_per_block = weights / QUANT_BLOCK;
    let halves = scheme.halves();
    let mut q = QuantHost::with_capacity(scheme, data.len() / size * chunks_per_block);
    for block in data.chunks_exact(size) {
        let decoded = decode(scheme, block);
        q.headers
            .extend_from_slice(&decoded.header[..scheme.header_words()]);
        for chunk in 0..chunks_per_block {
            let codes: &[u8; QUANT_BLOCK] = decoded.codes[chunk * 32..chunk * 32 + 32]
                .try_into()
                .expect("32 codes");
            pack_codes(scheme.code_bits(), codes, &mut q.codes);
            // Sub-blocks of 32 (one per chunk) or of 16 (two).
            let subs = chunk * halves..(chunk + 1) * halves;
            q.scales.extend_from_slice(&decoded.scales[subs.clone()]);
            if scheme.has_min() {
                q.mins.extend_from_slice(&decoded.mins[subs]);
            }
        }
    }
    Some(q)
}

/// llama.cpp's block bytes of `q` in q8_0, q4_0 or q4_1 (the formats `quantize` writes: their
/// chunk is their block, scales f16 values); `None` for the others.
pub fn to_ggml_blocks(q: &QuantHost) -> Option<Vec<u8>> {
    if !q.scheme.quantizable() {
        return None;
    }
    let words = q.scheme.words_per_block();
    let mut out = Vec::with_capacity(q.chunks() * q.scheme.file_block().1);
    for (b, codes) in q.codes.chunks(words).enumerate() {
        out.extend(f16::from_f32(q.scales[b]).to_le_bytes());
        if q.scheme.has_min() {
            out.extend(f16::from_f32(q.mins[b]).to_le_bytes());
        }
        out.extend(codes.iter().flat_map(|w| w.to_le_bytes()));
    }
    Some(out)
}
