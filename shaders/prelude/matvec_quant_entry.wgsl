// The entry points of a quantized format's matrix-vector kernels (`matvec_rows` and
// `matvec_glu_rows` of matmul_quant.wgsl, spliced after this), for adapters
// without subgroups.

@compute @workgroup_size(MV_WG, 1, 1)
fn matvec_quant(@builtin(global_invocation_id) gid: vec3<u32>) {
    matvec_rows(gid, 0u);
}

@compute @workgroup_size(MV_WG, 1, 1)
fn matvec_glu_quant(@builtin(global_invocation_id) gid: vec3<u32>) {
    matvec_glu_rows(gid.x, 0u);
}
