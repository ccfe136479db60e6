// An embedding table of TableElem (f32, or f16 on shader-f16 adapters) elements.

@group(0) @binding(1) var<storage, read> table: array<TableElem>; // [rows, d]

// Element i of the table as f32.
fn table_value(i: u32) -> f32 {
    return f32(table[i]);
}
