//! The GPU context: adapter choice, device with the adapter's real limits, and adapter listing.
// In the browser wgpu's handles are neither Send nor Sync (one thread); natively they are,
// and tensors and the context's shared state cross threads.
#![cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]

use super::backend::BackendChoice;
use super::pipeline::PipelineCache;
use super::resources::{Counters, EngineCounters, RangeKey, Resources};
use super::tensor::{DType, GpuTensor};
use crate::error::{Error, Result};
use std::sync::{Arc, Mutex};

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
    /// The fewest invocations a subgroup may have on this adapter.
    pub subgroup_min_size: u32,
    /// The most invocations a subgroup may have on this adapter.
    pub subgroup_max_size: u32,
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
            subgroup_min_size: info.subgroup_min_size,
            subgroup_max_size: info.subgroup_max_size,
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
    /// The scratch pool, bind group cache and counters its tensors share.
    pub(crate) res: Arc<Resources>,
    /// The uniform ring: every batch's params (and small uploads) at aligned offsets.
    pub(crate) ring: GpuTensor,
    /// Held while a batch writes the ring and submits.
    pub(crate) submit_lock: Mutex<()>,
    /// The kept readback buffer (taken while a readback uses it).
    staging: Mutex<Option<wgpu::Buffer>>,
}

/// Bytes of the uniform ring: 4096 params slots, enough for a decoded token of a model with
/// a few hundred layers; a batch that needs more gets an overflow ring.
const RING_BYTES: u64 = 1 << 20;

/// Usage of the uniform ring: params (uniform), uploads (storage, or copied into a buffer: a
/// page table's new entries), written from the host.
const RING_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::UNIFORM
    .union(wgpu::BufferUsages::STORAGE)
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

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
    adapter.features()
        & (wgpu::Features::SHADER_F16 | wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SUBGROUP)
}

/// The environment variable that gives the GPU memory a model may take, in bytes.
pub const MEMORY_ENV: &str = "LATENTGPU_GPU_MEMORY";

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
        let res = Arc::new(Resources::default());
        let ring = GpuTensor::with_usage(
            &device,
            &res,
            "uniform ring",
            &[RING_BYTES as usize / 4],
            DType::U32,
            RING_USAGE,
        );
        Ok(GpuContext {
            device,
            queue,
            adapter: summary,
            limits,
            features,
            pipelines: PipelineCache::default(),
            res,
            ring,
            submit_lock: Mutex::new(()),
            staging: Mutex::new(None),
        })
    }

    /// Alignment of params slots and uploads in the uniform ring.
    pub(crate) fn ring_alignment(&self) -> u64 {
        (self.limits.min_uniform_buffer_offset_alignment as u64)
            .max(self.limits.min_storage_buffer_offset_alignment as u64)
            .max(super::batch::UNIFORM_SLOT)
    }

    /// An overflow ring of `bytes` for a batch that filled the context's.
    pub(crate) fn new_ring(&self, bytes: u64) -> Result<GpuTensor> {
        super::tensor::check_size(self, "uniform ring", bytes)?;
        Ok(GpuTensor::with_usage(
            &self.device,
            &self.res,
            "uniform ring",
            &[bytes.div_ceil(4) as usize],
            DType::U32,
            RING_USAGE,
        ))
    }

    /// The bind group of `layout` over `ranges` (buffer, offset, size), from the cache or
    /// created and cached.
    pub(crate) fn bind_group(
        &self,
        layout: &wgpu::BindGroupLayout,
        ranges: Vec<RangeKey>,
        label: &str,
    ) -> wgpu::BindGroup {
        let key = (layout.clone(), ranges);
        let mut cache = self
            .res
            .bind_groups
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(bg) = cache.get(&key) {
            return bg;
        }
        let entries: Vec<wgpu::BindGroupEntry> = key
            .1
            .iter()
            .enumerate()
            .map(|(i, (buffer, offset, size))| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer,
                    offset: *offset,
                    size: std::num::NonZeroU64::new(*size),
                }),
            })
            .collect();
        let bg = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout,
            entries: &entries,
        });
        Counters::bump(&self.res.counters.bind_groups);
        cache.insert(key, bg.clone());
        bg
    }

    /// The kept staging buffer if it holds `bytes`, else a new one (kept after use).
    pub(crate) fn take_staging(&self, bytes: u64) -> Result<wgpu::Buffer> {
        let kept = self
            .staging
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(buffer) = kept.filter(|b| b.size() >= bytes.max(4)) {
            return Ok(buffer);
        }
        super::tensor::check_size(self, "readback", bytes)?;
        Counters::bump(&self.res.counters.buffers);
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes.max(4).next_power_of_two(),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }))
    }

    /// Keeps `buffer` (unmapped) for the next readback, if it is larger than the one kept.
    pub(crate) fn give_back_staging(&self, buffer: wgpu::Buffer) {
        let mut kept = self.staging.lock().unwrap_or_else(|e| e.into_inner());
        if kept.as_ref().is_none_or(|k| k.size() < buffer.size()) {
            *kept = Some(buffer);
        }
    }

    /// What the engine has created since this context was opened.
    pub fn counters(&self) -> EngineCounters {
        self.res.counters.snapshot()
    }

    /// Bytes held by free buffers of the scratch pool.
    pub fn scratch_free_bytes(&self) -> u64 {
        self.res
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .free_bytes()
    }

    /// Whether the device was created with `shader-f16`.
    pub fn has_f16(&self) -> bool {
        self.features.contains(wgpu::Features::SHADER_F16)
    }

    /// Whether the device was created with subgroup operations.
    pub fn has_subgroups(&self) -> bool {
        self.features.contains(wgpu::Features::SUBGROUP)
    }

    /// Whether the device has subgroup operations and every subgroup has at least `lanes`
    /// invocations.
    pub fn has_subgroups_of(&self, lanes: u32) -> bool {
        self.has_subgroups() && self.adapter.subgroup_min_size >= lanes
    }

    /// The subgroup size, where the adapter has subgroups of one size only (so a workgroup of
    /// that many invocations is one subgroup).
    pub fn fixed_subgroup_size(&self) -> Option<u32> {
        let a = &self.adapter;
        (self.has_subgroups()
            && a.subgroup_min_size == a.subgroup_max_size
            && a.subgroup_min_size > 0)
            .then_some(a.subgroup_min_size)
    }

    /// Whether the adapter is a CPU rasteriser (lavapipe, llvmpipe, SwiftShader), where one
    /// invocation per output row reads memory best.
    pub fn is_cpu(&self) -> bool {
        self.adapter.device_type == format!("{:?}", wgpu::DeviceType::Cpu)
    }

    /// The memory this adapter can give, when it can be known, and where the figure comes from:
    /// `LATENTGPU_GPU_MEMORY` (bytes) when set, else for a CPU adapter (lavapipe, llvmpipe:
    /// its buffers are host memory) the host's available memory. WebGPU does not report a
    /// GPU's memory, so elsewhere `None`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn memory_budget(&self) -> Option<(u64, String)> {
        if let Some(v) = std::env::var_os(MEMORY_ENV) {
            if let Ok(bytes) = v.to_string_lossy().trim().parse::<u64>() {
                return Some((bytes, MEMORY_ENV.to_string()));
            }
        }
        if !self.is_cpu() {
            return None;
        }
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
        let kib: u64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some((
            kib * 1024,
            "the host's available memory, which a CPU adapter's buffers use".into(),
        ))
    }

    /// Submits nothing and lets the device free what finished work held: the staging copies
    /// of uploads, which otherwise live until the next submission (the loader calls it after
    /// each block, so a model's upload does not hold a second copy of its weights).
    pub fn release_uploads(&self) {
        self.queue.submit([]);
        let _ = self.device.poll(wgpu::PollType::Poll);
    }

    /// A short name for logs and test messages: "adapter (backend)".
    pub fn name(&self) -> String {
        format!("{} ({})", self.adapter.name, self.adapter.backend)
    }
}
