// What the quantized product kernels of matmul_q8.wgsl and matmul_q4.wgsl share: the rows an
// invocation computes and how its outputs are stored into `c` (and `c_glu`).

// Rows per invocation of the matrix-vector kernels: each block's activations are loaded once
// for all of them (on a CPU rasteriser the loads, not the bytes, set the pace once weights are
// 8 or 4 bits; eight rows were slower).
const MV_ROWS: u32 = 4u;

// MV_ROWS rows of W from n0, the last row standing in for those past N: each one's first
// block.
fn first_blocks(n0: u32, blocks: u32) -> array<u32, MV_ROWS> {
    var row = array<u32, MV_ROWS>();
    for (var r = 0u; r < MV_ROWS; r++) {
        row[r] = min(n0 + r, p.n - 1u) * blocks;
    }
    return row;
}

// Stores an invocation's MV_ROWS outputs from column n0 of row m of C, those past N dropped.
fn store_rows(m: u32, n0: u32, acc: array<f32, MV_ROWS>) {
    for (var r = 0u; r < MV_ROWS; r++) {
        if (n0 + r < p.n) {
            c[p.c_offset + m * p.ldc + n0 + r] = acc[r];
        }
    }
}

// Stores act(g) · u for an invocation's MV_ROWS gated outputs from n0, those past N dropped.
fn store_glu_rows(n0: u32, g: array<f32, MV_ROWS>, u: array<f32, MV_ROWS>) {
    for (var r = 0u; r < MV_ROWS; r++) {
        if (n0 + r < p.n) {
            c_glu[p.c_offset + n0 + r] = gate_act(g[r]) * u[r];
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

// A tile's TN rows of W from n0 (the last standing in for those past N): each one's first block.
fn tile_w_blocks(n0: u32) -> array<u32, TN> {
    var row = array<u32, TN>();
    for (var j = 0u; j < TN; j++) {
        row[j] = min(n0 + j, p.n - 1u) * (p.k / 32u);
    }
    return row;
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
