// Activations shared by the elementwise kernels and the fused gated matrix-vector product
// (spliced in front of each at compile time, see `src/shaders.rs`).

fn silu(x: f32) -> f32 {
    return x / (1.0 + exp(-x));
}

// erfc(x) for x >= 0, fractional error < 1.2e-7 (Numerical Recipes' Chebyshev fit).
fn erfc_pos(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * x);
    let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    return t * exp(-x * x + poly);
}

// gelu(x) = x/2 * erfc(-x/sqrt(2)), written so the small tail is never a difference.
fn gelu_erf(x: f32) -> f32 {
    let u = x * 0.70710678118654752;
    if (u >= 0.0) {
        return 0.5 * x * (2.0 - erfc_pos(u));
    }
    return 0.5 * x * erfc_pos(-u);
}

// gelu_tanh(x) = x/2 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) = x * sigmoid(2 z).
fn gelu_tanh(x: f32) -> f32 {
    let z = 0.7978845608028654 * (x + 0.044715 * x * x * x);
    return x / (1.0 + exp(-2.0 * z));
}
