//! The language-model runtime: config, weights, blocks, caches, sampling, generation.

pub mod compare;
pub mod config;
pub mod eval;
pub mod generate;
pub mod kv_cache;
pub mod latent;
pub mod layers;
pub mod mha;
pub mod mla;
pub mod sampling;
pub mod tokenizer;
pub mod transformer;
pub mod weights;

pub use config::{AttentionConfig, FfnKind, ModelConfig, NormKind, RopeConfig};
pub use generate::{generate, GenerateConfig};
pub use sampling::{Sampler, SamplingConfig};
pub use transformer::{Cache, Logits, Model};
pub use weights::WeightFile;
