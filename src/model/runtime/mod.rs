//! Generation: the decode loop, sampling, stop tokens, and the caches' sizes.

pub mod chat;
pub mod decode;
pub mod generate;
pub mod kv_cache;
pub mod non_finite;
pub mod sampling;
