//! The GPU runtime: backend and adapter choice, device, pipelines, tensors and batches.

pub mod backend;
pub mod batch;
pub mod context;
pub mod pipeline;
pub mod profile;
mod readback;
pub(crate) mod resources;
pub mod split;
pub mod tensor;

pub use backend::{BackendChoice, BACKEND_ENV};
pub use batch::{Batch, RecordedDispatch};
#[cfg(not(target_arch = "wasm32"))]
pub use context::list_adapters;
pub use context::{AdapterSummary, GpuContext};
pub use pipeline::{Binding, Kernel};
pub use profile::{timing_source, DispatchTime, DispatchTimes, TimingSource};
pub use resources::EngineCounters;
pub use tensor::{DType, GpuTensor};
