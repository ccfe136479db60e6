// The activation of a gated feed-forward's gate, chosen by a pipeline constant (`ACT`: 0 silu,
// 1 gelu erf, 2 gelu tanh; `ops::GateAct`), for the kernels that fuse it into a product.
// Needs activations.wgsl before it.
override ACT: u32 = 0u;

fn gate_act(x: f32) -> f32 {
    switch ACT {
        case 1u: { return gelu_erf(x); }
        case 2u: { return gelu_tanh(x); }
        default: { return silu(x); }
    }
}
