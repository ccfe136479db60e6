// Embedding lookup from a block-quantized table (a tied embedding whose LM head is quantized):
// out[t, :] = dequantized row ids[t], the same values as ops::dequantize (records in tiles of 32
// rows, as matmul_quant.wgsl reads them; slot(row, b) below; prelude/quant_formats.wgsl
// decodes them). A table split into row blocks is bound block by block, as embedding.wgsl does.

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: EmbeddingParams;
@group(0) @binding(1) var<storage, read> w: array<u32>;         // [slots, record_words()]
@group(0) @binding(2) var<storage, read> ids: array<u32>;       // [tokens]
@group(0) @binding(3) var<storage, read_write> out: array<f32>; // [tokens, d]

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

// The slot of chunk b of a row of the bound block: tiles of 32 rows, chunk by chunk, the
// tile's 32 rows side by side.
fn slot(row: u32, b: u32) -> u32 {
    return ((row / 32u) * (p.d / 32u) + b) * 32u + row % 32u;
}

@compute @workgroup_size(WG)
fn embedding_quant(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    let row = block_row(i);
    if (row < 0) {
        return;
    }
    let col = i % p.d;
    var r: Record;
    let base = slot(u32(row), col / 32u) * record_words();
    for (var j = 0u; j < record_words(); j++) {
        r[j] = w[base + j];
    }
    let j = col % 32u;
    out[i] = quad_weights(r, j / 4u)[j % 4u];
}
