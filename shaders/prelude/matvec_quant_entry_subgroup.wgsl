// The entry points of a quantized format's matrix-vector kernels (`matvec_rows` and
// `matvec_glu_rows` of matmul_quant.wgsl) with subgroups: the lane picks the
// activations it loads for the subgroup (prelude/block_acts_subgroup.wgsl).

@compute @workgroup_size(MV_WG, 1, 1)
fn matvec_quant(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(subgroup_invocation_id) lane: u32) {
    matvec_rows(gid, lane);
}

@compute @workgroup_size(MV_WG, 1, 1)
fn matvec_glu_quant(@builtin(global_invocation_id) gid: vec3<u32>,
                    @builtin(subgroup_invocation_id) lane: u32) {
    matvec_glu_rows(gid.x, lane);
}
