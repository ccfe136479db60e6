//! The slow, obviously correct references of every kernel: plain loops, f64 accumulation.
//! Inputs are the f32 values the GPU saw; outputs are f64 so tests measure the GPU's own error.

mod attention;
mod basic;
mod latent;
mod llama;
mod mla;
mod moe;
pub mod rope;

pub use attention::{attention, attention_windowed};
pub use basic::{embedding, gelu, gelu_tanh, layernorm, matmul, rmsnorm, rope, silu, softmax};
pub use latent::LatentWeights;
pub use llama::{llama_forward, LlamaLayer, LlamaShape, LlamaWeights};
pub use mla::{mla_naive, MlaWeights};
pub use moe::{moe_ffn, moe_route};

/// `y = x·wᵀ` for `x` `[n, d_in]` (f64) and `w` `[d_out, d_in]`.
pub(crate) fn linear(x: &[f64], w: &[f32], d_in: usize) -> Vec<f64> {
    let d_out = w.len() / d_in;
    x.chunks(d_in)
        .flat_map(|row| {
            (0..d_out).map(move |o| {
                row.iter()
                    .zip(&w[o * d_in..(o + 1) * d_in])
                    .map(|(&a, &b)| a * b as f64)
                    .sum::<f64>()
            })
        })
        .collect()
}
