//! The slow, obviously correct references of every kernel: plain loops, f64 accumulation.
//! Inputs are the f32 values the GPU saw; outputs are f64 so tests measure the GPU's own error.

mod attention;
mod basic;
mod latent;
mod mla;

pub use attention::attention;
pub use basic::{embedding, gelu, gelu_tanh, layernorm, matmul, rmsnorm, rope, silu, softmax};
pub use latent::LatentWeights;
pub use mla::{mla_naive, MlaWeights};
