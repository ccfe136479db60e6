//! The GPU runtime: backend and adapter choice, device, pipelines, tensors and batches.

pub mod backend;
pub mod batch;
pub mod context;
pub mod pipeline;
pub mod tensor;

pub use backend::{BackendChoice, BACKEND_ENV};
pub use batch::Batch;
pub use context::{list_adapters, AdapterSummary, GpuContext};
pub use pipeline::{Binding, Kernel};
pub use tensor::{DType, GpuTensor};
