// The rows one invocation of the quantized matrix-vector kernels computes (matmul_q8.wgsl,
// matmul_q4.wgsl): each block's activations are loaded once for all of them (on a CPU
// rasteriser the loads, not the bytes, set the pace once weights are 8 or 4 bits; eight rows
// were slower).
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
