//! The model on the GPU: attention kinds, feed-forwards and norms, weight uploads, and the
//! transformer that stacks them into blocks.

pub mod cache;
pub mod ffn;
pub mod latent;
pub mod mha;
pub mod mla;
pub mod mla_absorb;
pub mod moe;
pub mod transformer;
pub mod upload;
