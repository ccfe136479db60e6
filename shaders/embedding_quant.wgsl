// Embedding lookup from a block-quantized table (a tied embedding whose LM head is q8 or q4):
// out[t, :] = dequantized row ids[t], the same values the products multiply by (matmul_q8.wgsl,
// matmul_q4.wgsl give the layouts: blocks in tiles of 32 rows, slot(row, b) below). A table
// split into row blocks is bound block by block, as embedding.wgsl does.

override WG: u32 = 256u;
override HAS_MIN: bool = false;

@group(0) @binding(0) var<uniform> p: EmbeddingParams;
@group(0) @binding(1) var<storage, read> q: array<u32>;         // [slots, 8] or [slots, 4]
@group(0) @binding(2) var<storage, read> scales: array<f32>;    // [slots]
@group(0) @binding(3) var<storage, read> mins: array<f32>;      // [slots] (q4_1)
@group(0) @binding(4) var<storage, read> ids: array<u32>;       // [tokens]
@group(0) @binding(5) var<storage, read_write> out: array<f32>; // [tokens, d]

// The row of the bound block that output element i reads, or none (-1) when i is past the
// output or its token's row lies in another block.
fn block_row(i: u32) -> i32 {
    if (i >= p.tokens * p.d) {
        return -1;
    }
    let id = min(ids[i / p.d], p.vocab - 1u);
    if (id < p.first_row || id - p.first_row >= p.rows) {
        return -1;
    }
    return i32(id - p.first_row);
}

// The slot of block b of a row of the bound block: tiles of 32 rows, block by block, the
// tile's 32 rows side by side.
fn slot(row: u32, b: u32) -> u32 {
    return ((row / 32u) * (p.d / 32u) + b) * 32u + row % 32u;
}

@compute @workgroup_size(WG)
fn embedding_q8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    let row = block_row(i);
    if (row < 0) {
        return;
    }
    let col = i % p.d;
    let block = slot(u32(row), col / 32u);
    let word = q[block * 8u + (col % 32u) / 4u];
    let byte = bitcast<i32>(word << (24u - 8u * (col % 4u))) >> 24u;
    out[i] = scales[block] * f32(byte);
}

@compute @workgroup_size(WG)
fn embedding_q4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    let row = block_row(i);
    if (row < 0) {
        return;
    }
    let col = i % p.d;
    let block = slot(u32(row), col / 32u);
    // Weight j of a block: byte j % 16 (word j % 16 / 4), low nibble for j < 16.
    let j = col % 32u;
    let word = q[block * 4u + (j % 16u) / 4u];
    let nibble = f32((word >> ((j % 4u) * 8u + (j / 16u) * 4u)) & 15u);
    if (HAS_MIN) {
        out[i] = fma(scales[block], nibble, mins[block]);
    } else {
        out[i] = scales[block] * (nibble - 8.0);
    }
}
