//! The language-model runtime: config, weights, blocks, caches, sampling, generation.

#[cfg(not(target_arch = "wasm32"))]
pub mod compare;
pub mod config;
pub mod decode;
#[cfg(not(target_arch = "wasm32"))]
pub mod eval;
pub mod generate;
pub mod gguf;
#[cfg(not(target_arch = "wasm32"))]
pub mod gguf_tokenizer;
pub mod hf;
#[cfg(not(target_arch = "wasm32"))]
pub mod kl_base;
#[cfg(not(target_arch = "wasm32"))]
pub mod kl_stats;
pub mod kv_cache;
pub mod latent;
pub mod layers;
pub mod mha;
pub mod mla;
pub mod mla_absorb;
pub mod moe;
pub mod non_finite;
#[cfg(not(target_arch = "wasm32"))]
pub mod quantize;
pub mod sampling;
#[cfg(not(target_arch = "wasm32"))]
pub mod summary;
pub mod tokenizer;
pub mod transformer;
pub mod upload;
pub mod weights;

pub use config::{AttentionConfig, FfnKind, ModelConfig, NormKind, RopeConfig};
pub use decode::Decoder;
#[cfg(not(target_arch = "wasm32"))]
pub use generate::generate;
pub use generate::{generate_async, GenerateConfig};
pub use hf::{GenerationDefaults, HfConfig};
pub use sampling::{Sampler, SamplingConfig, REMOVED};
pub use transformer::{Cache, LoadOptions, Logits, Model};
pub use weights::{TensorNames, WeightFile};
