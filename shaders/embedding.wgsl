// Embedding lookup: out[t, :] = table[ids[t], :]. Ids are checked on the host before upload.
// A table split into row blocks (past the binding limit) is bound block by block: each
// dispatch writes the tokens whose row lies in its block, rows first_row..first_row + rows.
// The table and table_value are spliced in front of this file (`src/shaders.rs`): elements of
// f32 or f16 (prelude/table_elements.wgsl), or 16-bit values in u32 words on any adapter
// (prelude/table_words.wgsl).

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: EmbeddingParams;
@group(0) @binding(2) var<storage, read> ids: array<u32>;        // [tokens]
@group(0) @binding(3) var<storage, read_write> out: array<f32>;  // [tokens, d]

@compute @workgroup_size(WG)
fn embedding(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = linear_index(wid, nwg, lid);
    if (i >= p.tokens * p.d) {
        return;
    }
    let t = i / p.d;
    let id = min(ids[t], p.vocab - 1u);
    if (id < p.first_row || id - p.first_row >= p.rows) {
        return;
    }
    out[i] = table_value((id - p.first_row) * p.d + i % p.d);
}
