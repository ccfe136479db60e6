// C = A·Wᵀ with W in any quantized format (prelude/quant_formats.wgsl decodes a chunk's record),
// dequantized in the kernel with f32 accumulation. A is [M, K] f32 (K % 32 == 0), C [M, N] f32.
// W's chunks (weights 32b..32b + 31 of a row) lie in tiles of 32 rows (prelude/quant_rows.wgsl),
// a chunk's slot naming its place in a group (tiled_place):
//   w       [group slots, group_words()] u32   records, or K-quant headers and codes, read as
//                                              whole vec4s (w_record)
// Rows are independent, so row blocks of w are a W of their own. C's row stride and first
// column come from the params (a row block of W writes its columns of a wider C).
//   matvec_rows    MV_ROWS outputs per invocation (the decode layout for CPU rasterisers),
//                  z over the rows of A (entry point `matvec_quant`, matvec_quant_entry*.wgsl);
//                  a step loads each row's record and the chunk's 8 vec4s of activations once
//                  for its rows (shared by the subgroup where the adapter has one,
//                  prelude/block_acts*.wgsl); acc += d·Σ a·q + (m - OFFSET·d)·Σ a per half
//   matmul_nt_quant  8×8 outputs per invocation (matmul_nt_v4's tiling), each weight
//                  dequantized once per 8 rows of A, exactly as ops::dequantize: acc += a·w
//   matvec_glu_rows  act(x·Gᵀ) · (x·Uᵀ) for one row x, as matvec_rows for both (entry point
//                  `matvec_glu_quant`)
// The matrix-vector kernels run every invocation to the end (rows past N recompute the last
// one, unstored), as subgroup operations want uniform control flow.

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

override MV_WG: u32 = 64u;

// The stored words of the chunk in slot s of W (prelude/quant_formats.wgsl: loaded as whole
// vec4s; those past the end stand for the last: W's row blocks are whole tiles, so whole vec4s,
// and a record never needs them), and the header of its group.
fn w_codes(s: u32) -> Record {
    let at = codes_word(tiled_place(s));
    let last = arrayLength(&w) - 1u;
    var v: array<vec4<u32>, 3>;
    for (var i = 0u; i < record_vec4s(); i++) {
        v[i] = w[min(at / 4u + i, last)];
    }
    return record_in(v, at);
}

fn w_head(s: u32) -> Head {
    let at = header_word(tiled_place(s)) / 4u;
    let last = arrayLength(&w) - 1u;
    var v: array<vec4<u32>, 2>;
    for (var i = 0u; i < header_vec4s(); i++) {
        v[i] = w[min(at + i, last)];
    }
    return head_of(v[0], v[1]);
}

// The record of the chunk in slot s of W.
fn w_record(s: u32) -> Record {
    return with_header(w_codes(s), w_head(s), tiled_place(s).y);
}

fn matvec_rows(gid: vec3<u32>, lane: u32) {
    let m = gid.z;
    let blocks = p.k / 32u;
    let a_row = m * p.k / 4u;
    let rows = invocation_rows(gid.x);
    let slot = first_slots(rows, blocks);
    var acc = array<f32, MV_ROWS>();
    // A K-quant's header is loaded and decoded at the first of its group's 8 chunks.
    var head = array<Head, MV_ROWS>();
    for (var b = 0u; b < blocks; b++) {
        let j = b % group_chunks();
        if (HEADER > 0u && j == 0u) {
            for (var r = 0u; r < MV_ROWS; r++) {
                head[r] = w_head(slot[r] + 32u * b);
            }
        }
        var rec = array<Record, MV_ROWS>();
        for (var r = 0u; r < MV_ROWS; r++) {
            rec[r] = with_header(w_codes(slot[r] + 32u * b), head[r], j);
        }
        let av = block_acts(a_row + 8u * b, lane);
        let sums = half_sums(av);
        for (var r = 0u; r < MV_ROWS; r++) {
            acc[r] += record_dot(av, sums, rec[r]);
        }
    }
    store_rows(m, rows, acc);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_nt_quant(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n0 = gid.x * TN;
    let m0 = gid.y * TM;
    if (m0 >= p.m || n0 >= p.n) {
        return;
    }
    let blocks = p.k / 32u;
    let a_row = tile_a_rows(m0);
    let w_slot = tile_w_slots(n0);
    var acc: array<f32, TM * TN>;
    for (var b = 0u; b < blocks; b++) {
        var rec = array<Record, TN>();
        for (var j = 0u; j < TN; j++) {
            rec[j] = w_record(w_slot[j] + 32u * b);
        }
        for (var t = 0u; t < 8u; t++) {
            let k = 8u * b + t;
            var av = array<vec4<f32>, TM>();
            for (var r = 0u; r < TM; r++) {
                av[r] = a[a_row[r] + k];
            }
            for (var j = 0u; j < TN; j++) {
                let wv = quad_weights(rec[j], t);
                for (var r = 0u; r < TM; r++) {
                    let i = r * TN + j;
                    acc[i] = fma(av[r].x, wv.x, acc[i]);
                    acc[i] = fma(av[r].y, wv.y, acc[i]);
                    acc[i] = fma(av[r].z, wv.z, acc[i]);
                    acc[i] = fma(av[r].w, wv.w, acc[i]);
                }
            }
        }
    }
    store_tile(m0, n0, acc);
}

@group(0) @binding(3) var<storage, read> w_up: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read_write> c_glu: array<f32>;

// The stored words and header of the chunk in slot s of the up projection (as w_codes, w_head).
fn up_codes(s: u32) -> Record {
    let at = codes_word(tiled_place(s));
    let last = arrayLength(&w_up) - 1u;
    var v: array<vec4<u32>, 3>;
    for (var i = 0u; i < record_vec4s(); i++) {
        v[i] = w_up[min(at / 4u + i, last)];
    }
    return record_in(v, at);
}

fn up_head(s: u32) -> Head {
    let at = header_word(tiled_place(s)) / 4u;
    let last = arrayLength(&w_up) - 1u;
    var v: array<vec4<u32>, 2>;
    for (var i = 0u; i < header_vec4s(); i++) {
        v[i] = w_up[min(at + i, last)];
    }
    return head_of(v[0], v[1]);
}

fn matvec_glu_rows(x: u32, lane: u32) {
    let blocks = p.k / 32u;
    let rows = invocation_rows(x);
    let slot = first_slots(rows, blocks);
    var g = array<f32, MV_ROWS>();
    var u = array<f32, MV_ROWS>();
    // As matvec_rows: headers at the first chunk of their group.
    var g_head = array<Head, MV_ROWS>();
    var u_head = array<Head, MV_ROWS>();
    for (var b = 0u; b < blocks; b++) {
        let j = b % group_chunks();
        if (HEADER > 0u && j == 0u) {
            for (var r = 0u; r < MV_ROWS; r++) {
                g_head[r] = w_head(slot[r] + 32u * b);
                u_head[r] = up_head(slot[r] + 32u * b);
            }
        }
        let av = block_acts(8u * b, lane);
        let sums = half_sums(av);
        for (var r = 0u; r < MV_ROWS; r++) {
            let s = slot[r] + 32u * b;
            g[r] += record_dot(av, sums, with_header(w_codes(s), g_head[r], j));
            u[r] += record_dot(av, sums, with_header(up_codes(s), u_head[r], j));
        }
    }
    store_glu_rows(rows, g, u);
}
