//! The GPU context: adapter choice, device with the adapter's real limits, and adapter listing.

use super::backend::BackendChoice;
use super::pipeline::PipelineCache;
use crate::error::{Error, Result};

/// What `latentgpu info` shows about one adapter.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdapterSummary {
    /// Adapter name (e.g. "llvmpipe (LLVM 15.0.6, 256 bits)").
    pub name: String,
    /// Backend (vulkan, metal, dx12, gl, browser).
    pub backend: String,
    /// Discrete, integrated, virtual, CPU or other.
    pub device_type: String,
    /// Driver name.
    pub driver: String,
    /// Driver version or details.
    pub driver_info: String,
    /// Whether `shader-f16` is supported.
    pub shader_f16: bool,
    /// Whether subgroup operations are supported.
    pub subgroups: bool,
    /// Whether timestamp queries are supported.
    pub timestamp_query: bool,
    /// Largest storage buffer binding in bytes.
    pub max_storage_buffer_binding_size: u64,
    /// Largest buffer in bytes.
    pub max_buffer_size: u64,
    /// Workgroup (shared) memory in bytes.
    pub max_compute_workgroup_storage_size: u32,
    /// Invocations per workgroup.
    pub max_compute_invocations_per_workgroup: u32,
    /// Workgroups per dispatch dimension.
    pub max_compute_workgroups_per_dimension: u32,
    /// Storage buffers per shader stage.
    pub max_storage_buffers_per_shader_stage: u32,
}

impl AdapterSummary {
    /// Summarises an adapter's info, features and limits.
    pub fn of(adapter: &wgpu::Adapter) -> Self {
        let info = adapter.get_info();
        let features = adapter.features();
        let limits = adapter.limits();
        AdapterSummary {
            name: info.name,
            backend: BackendChoice::of(info.backend).to_string(),
            device_type: format!("{:?}", info.device_type),
            driver: info.driver,
            driver_info: info.driver_info,
            shader_f16: features.contains(wgpu::Features::SHADER_F16),
            subgroups: features.contains(wgpu::Features::SUBGROUP),
            timestamp_query: features.contains(wgpu::Features::TIMESTAMP_QUERY),
            max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
            max_buffer_size: limits.max_buffer_size,
            max_compute_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
            max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
            max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
            max_storage_buffers_per_shader_stage: limits.max_storage_buffers_per_shader_stage,
        }
    }
}

/// A device and queue on one adapter, with the kernels' pipeline cache.
pub struct GpuContext {
    /// The logical device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// The adapter's summary (name, backend, limits).
    pub adapter: AdapterSummary,
    /// The limits the device was created with (the adapter's own).
    pub limits: wgpu::Limits,
    /// The features the device was created with.
    pub features: wgpu::Features,
    pub(crate) pipelines: PipelineCache,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GpuContext({} / {})",
            self.adapter.name, self.adapter.backend
        )
    }
}

fn new_instance(choice: BackendChoice) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = choice.backends();
    wgpu::Instance::new(desc)
}

fn no_adapter(choice: BackendChoice) -> Error {
    let hint = if cfg!(target_arch = "wasm32") {
        " The browser offers no WebGPU adapter: WebGPU may be off (Chromium and Chrome on Linux \
         need --enable-unsafe-webgpu), blocked for this GPU, or not in this browser."
    } else if cfg!(target_os = "linux") {
        " On Linux without a GPU, install Mesa's software Vulkan (lavapipe) and GL (llvmpipe): \
         `sudo apt-get install -y mesa-vulkan-drivers libegl1` (Debian/Ubuntu), or run `scripts/setup-gpu.sh`."
    } else {
        ""
    };
    let tried = match choice {
        BackendChoice::Any => "vulkan, metal, dx12, gl, browser".to_string(),
        other => other.to_string(),
    };
    Error::NoAdapter {
        tried,
        hint: hint.to_string(),
    }
}

/// Lists every adapter the backends in `choice` expose (native).
#[cfg(not(target_arch = "wasm32"))]
pub fn list_adapters(choice: BackendChoice) -> Vec<AdapterSummary> {
    let instance = new_instance(choice);
    pollster::block_on(instance.enumerate_adapters(choice.backends()))
        .iter()
        .map(AdapterSummary::of)
        .collect()
}

/// Features the runtime uses when the adapter has them.
fn wanted_features(adapter: &wgpu::Adapter) -> wgpu::Features {
    adapter.features() & (wgpu::Features::SHADER_F16 | wgpu::Features::TIMESTAMP_QUERY)
}

impl GpuContext {
    /// Opens the best adapter of the chosen backend (high performance preferred).
    pub async fn new_async(choice: BackendChoice) -> Result<Self> {
        let instance = new_instance(choice);
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                apply_limit_buckets: false,
            })
            .await
            .map_err(|_| no_adapter(choice))?;
        Self::from_adapter(adapter).await
    }

    /// Blocking form of [`GpuContext::new_async`] (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(choice: BackendChoice) -> Result<Self> {
        pollster::block_on(Self::new_async(choice))
    }

    /// Opens one context per adapter present (every backend), for tests that run everywhere
    /// (native: the browser exposes one adapter, through [`GpuContext::new_async`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn all() -> Result<Vec<Self>> {
        let instance = new_instance(BackendChoice::Any);
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
        adapters
            .into_iter()
            .map(|a| pollster::block_on(Self::from_adapter(a)))
            .collect()
    }

    /// Creates the device with the adapter's own limits (not the downlevel defaults).
    pub async fn from_adapter(adapter: wgpu::Adapter) -> Result<Self> {
        let summary = AdapterSummary::of(&adapter);
        let limits = adapter.limits();
        let features = wanted_features(&adapter);
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("latentgpu"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::RequestDevice {
                adapter: format!("{} ({})", summary.name, summary.backend),
                reason: e.to_string(),
            })?;
        log::info!("opened {} on {}", summary.name, summary.backend);
        Ok(GpuContext {
            device,
            queue,
            adapter: summary,
            limits,
            features,
            pipelines: PipelineCache::default(),
        })
    }

    /// Whether the device was created with `shader-f16`.
    pub fn has_f16(&self) -> bool {
        self.features.contains(wgpu::Features::SHADER_F16)
    }

    /// A short name for logs and test messages: "adapter (backend)".
    pub fn name(&self) -> String {
        format!("{} ({})", self.adapter.name, self.adapter.backend)
    }
}
