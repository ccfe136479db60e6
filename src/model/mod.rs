//! The language-model runtime, in rooms that depend downwards only:
//! - [`config`]: the model description (widths, attention, RoPE, experts, the block recipe);
//! - [`formats`]: what files hold (safetensors, GGUF, tokenizers), read as they are;
//! - [`families`]: one file per architecture, mapping its files to the description;
//! - [`layers`]: the model on the GPU (attention kinds, feed-forwards, blocks);
//! - [`runtime`]: generation, sampling and caches;
//! - [`tools`]: `compare`, `eval`, `info`'s summary, KL bases and quantizing.

pub mod config;
pub mod families;
pub mod formats;
pub mod layers;
#[cfg(not(target_arch = "wasm32"))]
mod load;
pub mod runtime;
pub mod tools;

pub use config::{AttentionConfig, FfnKind, ModelConfig, NormKind, RopeConfig};
pub use families::hf::HfConfig;
pub use formats::hf_json::GenerationDefaults;
pub use formats::weights::WeightFile;
pub use layers::cache::{Cache, CacheOptions, PageCount, DEFAULT_PAGE_TOKENS};
pub use layers::transformer::{LoadOptions, Logits, Model};
pub use runtime::decode::Decoder;
#[cfg(not(target_arch = "wasm32"))]
pub use runtime::generate::generate;
pub use runtime::generate::{continue_async, generate_async, GenerateConfig};
pub use runtime::sampling::{Sampler, SamplingConfig, REMOVED};
