//! latentgpu: transformer language models with latent attention on any GPU through WebGPU.
//!
//! The WGSL kernels live in `shaders/`; [`ops`] holds one launcher per kernel (shape checks,
//! cached pipeline, dispatch), [`cpu`] the f64 reference of every kernel, [`gpu`] the runtime.
#![warn(missing_docs)]

#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
pub mod cpu;
pub mod error;
pub mod files;
pub mod gpu;
pub mod model;
pub mod ops;
pub mod shaders;

pub use error::{Error, Result};
pub use gpu::{BackendChoice, Batch, DType, GpuContext, GpuTensor};
