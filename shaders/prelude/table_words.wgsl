// An embedding table of 16-bit elements, f16 or bf16 (prelude/half_words.wgsl), as u32 words.

@group(0) @binding(1) var<storage, read> table: array<u32>; // [rows, d] values, in pairs

// Element i of the table as f32.
fn table_value(i: u32) -> f32 {
    return half_pair(table[i / 2u])[i % 2u];
}
