// Rows of a block-quantized matrix dequantized, the same values as ops::dequantize (records in
// tiles of 32 rows, as matmul_quant.wgsl reads them; slot(row, b) below;
// prelude/quant_formats.wgsl decodes them):
//   embedding_quant   out[t, :] = row ids[t] (a tied embedding whose LM head is quantized); a
//                     table split into row blocks is bound block by block, as embedding.wgsl does
//   dequantize_rows   rows[r, :] = row r of the bound row block, r < p.rows (the prefill
//                     products multiply the f32 rows, matmul_quant.rs), a chunk per invocation

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: EmbeddingParams;
@group(0) @binding(1) var<storage, read> w: array<u32>;         // [group slots, group_words()]
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
// tile's 32 rows side by side (tiled_place finds its group).
fn slot(row: u32, b: u32) -> u32 {
    return ((row / 32u) * (p.d / 32u) + b) * 32u + row % 32u;
}

// The record of chunk b of a row, word by word.
fn row_record(row: u32, b: u32) -> Record {
    let place = tiled_place(slot(row, b));
    let at = codes_word(place);
    let hat = header_word(place);
    var r: Record;
    for (var j = 0u; j < stored_words(); j++) {
        r[j] = w[at + j];
    }
    var h = array<u32, 5>();
    for (var j = 0u; j < min(HEADER, 5u); j++) {
        h[j] = w[hat + j];
    }
    return with_header(r, head_of_words(h), place.y);
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
    let r = row_record(u32(row), col / 32u);
    let j = col % 32u;
    out[i] = quad_weights(r, j / 4u)[j % 4u];
}

@group(0) @binding(1) var<storage, read> w4: array<vec4<u32>>;             // records, whole tiles
@group(0) @binding(2) var<storage, read_write> rows: array<vec4<f32>>;    // [p.rows, p.d]

@compute @workgroup_size(WG)
fn dequantize_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    let chunks = p.d / 32u;
    if (i >= p.rows * chunks) {
        return;
    }
    let row = i / chunks;
    let b = i % chunks;
    let place = tiled_place(slot(row, b));
    let at = codes_word(place);
    let hat = header_word(place);
    let last = arrayLength(&w4) - 1u;
    var v: array<vec4<u32>, 3>;
    for (var j = 0u; j < record_vec4s(); j++) {
        v[j] = w4[min(at / 4u + j, last)];
    }
    var h: array<vec4<u32>, 2>;
    for (var j = 0u; j < header_vec4s(); j++) {
        h[j] = w4[min(hat / 4u + j, last)];
    }
    let r = with_header(record_in(v, at), head_of(h[0], h[1]), place.y);
    let out_at = (row * p.d + 32u * b) / 4u;
    for (var t = 0u; t < 8u; t++) {
        rows[out_at + t] = quad_weights(r, t);
    }
}
