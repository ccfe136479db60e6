//! What the command line's tools compute: `compare` against transformers' goldens, `eval`,
//! the memory summary of `info`, KL-divergence bases, and quantizing a directory.

#[cfg(not(target_arch = "wasm32"))]
pub mod compare;
#[cfg(not(target_arch = "wasm32"))]
pub mod eval;
#[cfg(not(target_arch = "wasm32"))]
pub mod kl_base;
#[cfg(not(target_arch = "wasm32"))]
pub mod kl_stats;
#[cfg(not(target_arch = "wasm32"))]
pub mod quantize;
#[cfg(not(target_arch = "wasm32"))]
pub mod summary;
