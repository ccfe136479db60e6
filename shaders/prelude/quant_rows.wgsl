// What the quantized product kernels of matmul_quant.wgsl share: where a row's
// blocks lie, the rows an invocation computes and how its outputs are stored into `c` (and
// `c_glu`).
//
// W's blocks lie in tiles of TILE_ROWS rows (quant_weight.rs): block b of row n is in slot
// (n / 32 · blocks + b) · 32 + n % 32, one record a slot (prelude/quant_formats.wgsl). The last
// tile is padded with zero rows, so every row of a tile can be read.

const TILE_ROWS: u32 = 32u;

// The slot of block 0 of row n; block b is 32·b slots on.
fn first_slot(n: u32, blocks: u32) -> u32 {
    return (n / TILE_ROWS) * blocks * TILE_ROWS + n % TILE_ROWS;
}

// Rows per invocation of the matrix-vector kernels: each block's activations are loaded once
// for all of them (on a CPU rasteriser the loads, not the bytes, set the pace once weights are
// 8 or 4 bits; eight rows were slower).
const MV_ROWS: u32 = 4u;

// The rows of invocation i of the matrix-vector kernels: 8 invocations share a tile, i taking
// its rows i % 8 + 8r, so 8 neighbouring invocations read 8 neighbouring blocks at once. Past
// the last tile an invocation recomputes it (unstored): every invocation runs to the end, as
// subgroup operations want uniform control flow.
fn invocation_rows(i: u32) -> array<u32, MV_ROWS> {
    let lanes = TILE_ROWS / MV_ROWS;
    var row = array<u32, MV_ROWS>();
    for (var r = 0u; r < MV_ROWS; r++) {
        row[r] = (i / lanes) * TILE_ROWS + i % lanes + lanes * r;
    }
    return row;
}

// The slots of block 0 of `rows`, the last tile standing in for those past it.
fn first_slots(rows: array<u32, MV_ROWS>, blocks: u32) -> array<u32, MV_ROWS> {
    let last_tile = (p.n - 1u) / TILE_ROWS;
    var slot = array<u32, MV_ROWS>();
    for (var r = 0u; r < MV_ROWS; r++) {
        let n = min(rows[r] / TILE_ROWS, last_tile) * TILE_ROWS + rows[r] % TILE_ROWS;
        slot[r] = first_slot(n, blocks);
    }
    return slot;
}

// Stores an invocation's outputs for `rows` in row m of C, those past N dropped.
fn store_rows(m: u32, rows: array<u32, MV_ROWS>, acc: array<f32, MV_ROWS>) {
    for (var r = 0u; r < MV_ROWS; r++) {
        if (rows[r] < p.n) {
            c[p.c_offset + m * p.ldc + rows[r]] = acc[r];
        }
    }
}

// Stores act(g) · u for an invocation's gated outputs for `rows`, those past N dropped.
fn store_glu_rows(rows: array<u32, MV_ROWS>, g: array<f32, MV_ROWS>, u: array<f32, MV_ROWS>) {
    for (var r = 0u; r < MV_ROWS; r++) {
        if (rows[r] < p.n) {
            c_glu[p.c_offset + rows[r]] = gate_act(g[r]) * u[r];
        }
    }
}

// The tiled kernels: TM rows of A by TN rows of W per invocation (matmul_nt_v4's tiling).
override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;
const TM: u32 = 8u;
const TN: u32 = 8u;

// A tile's TM rows of A from m0 (the last standing in for those past M): each one's first vec4.
fn tile_a_rows(m0: u32) -> array<u32, TM> {
    var row = array<u32, TM>();
    for (var r = 0u; r < TM; r++) {
        row[r] = min(m0 + r, p.m - 1u) * (p.k / 4u);
    }
    return row;
}

// A tile's TN rows of W from n0 (the last standing in for those past N): each one's slot of
// block 0.
fn tile_w_slots(n0: u32) -> array<u32, TN> {
    var slot = array<u32, TN>();
    for (var j = 0u; j < TN; j++) {
        slot[j] = first_slot(min(n0 + j, p.n - 1u), p.k / 32u);
    }
    return slot;
}

// Stores a tile's outputs, acc[r·TN + j] at row m0 + r and column n0 + j of C, those past M or N
// dropped.
fn store_tile(m0: u32, n0: u32, acc: array<f32, TM * TN>) {
    for (var r = 0u; r < TM; r++) {
        if (m0 + r < p.m) {
            for (var j = 0u; j < TN; j++) {
                if (n0 + j < p.n) {
                    c[p.c_offset + (m0 + r) * p.ldc + n0 + j] = acc[r * TN + j];
                }
            }
        }
    }
}
