//! Compute pipelines with explicit bind group layouts, cached by (shader, entry point, constants).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How one binding of a kernel is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Binding {
    /// A uniform buffer (the kernel's params struct).
    Uniform,
    /// A read-only storage buffer.
    Read,
    /// A read-write storage buffer.
    ReadWrite,
}

/// One kernel: a WGSL source, its entry point and its bindings in `@binding` order (group 0).
#[derive(Clone, Copy, Debug)]
pub struct Kernel {
    /// The shader's file name in `shaders/` (used as its label and cache key).
    pub shader: &'static str,
    /// The WGSL source.
    pub source: &'static str,
    /// The entry point.
    pub entry: &'static str,
    /// The bindings `0..n` of group 0.
    pub bindings: &'static [Binding],
    /// Compile without naga's bounds checks. Only for shaders whose every load index is clamped
    /// in range and every store guarded, behind launchers that check shapes: the checks cost
    /// 25-40% of the matmul kernels' speed on lavapipe.
    pub trusted: bool,
}

/// Pipeline-override constants, e.g. tile sizes: `[("WG", 64.0)]`.
pub type Constants<'a> = &'a [(&'a str, f64)];

type Key = (&'static str, &'static str, Vec<(String, u64)>);

/// A compiled pipeline and the layout its bind groups use.
pub(crate) struct CachedPipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

/// The cache of shader modules and pipelines of one device.
#[derive(Default)]
pub(crate) struct PipelineCache {
    modules: Mutex<HashMap<&'static str, Arc<wgpu::ShaderModule>>>,
    pipelines: Mutex<HashMap<Key, Arc<CachedPipeline>>>,
}

fn layout_entry(index: usize, binding: Binding) -> wgpu::BindGroupLayoutEntry {
    let ty = match binding {
        Binding::Uniform => wgpu::BufferBindingType::Uniform,
        Binding::Read => wgpu::BufferBindingType::Storage { read_only: true },
        Binding::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
    };
    wgpu::BindGroupLayoutEntry {
        binding: index as u32,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

impl PipelineCache {
    fn module(&self, device: &wgpu::Device, kernel: &Kernel) -> Arc<wgpu::ShaderModule> {
        let mut modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        modules
            .entry(kernel.shader)
            .or_insert_with(|| {
                let desc = wgpu::ShaderModuleDescriptor {
                    label: Some(kernel.shader),
                    source: wgpu::ShaderSource::Wgsl(kernel.source.into()),
                };
                Arc::new(if kernel.trusted {
                    // SAFETY: a trusted shader clamps every index it reads to its buffer's
                    // extent and guards every store, and its launcher checks each buffer holds
                    // the shape it is given (see `Kernel::trusted`).
                    unsafe {
                        device.create_shader_module_trusted(
                            desc,
                            wgpu::ShaderRuntimeChecks::unchecked(),
                        )
                    }
                } else {
                    device.create_shader_module(desc)
                })
            })
            .clone()
    }

    /// The pipeline of `kernel` with `constants`, compiled on first use.
    pub fn get(
        &self,
        device: &wgpu::Device,
        kernel: &Kernel,
        constants: Constants<'_>,
    ) -> Arc<CachedPipeline> {
        let key: Key = (
            kernel.shader,
            kernel.entry,
            constants
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_bits()))
                .collect(),
        );
        if let Some(p) = self
            .pipelines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return p.clone();
        }
        let module = self.module(device, kernel);
        let label = format!("{}::{}", kernel.shader, kernel.entry);
        let entries: Vec<_> = kernel
            .bindings
            .iter()
            .enumerate()
            .map(|(i, b)| layout_entry(i, *b))
            .collect();
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(&label),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(&label),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&label),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(kernel.entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        let cached = Arc::new(CachedPipeline { pipeline, layout });
        self.pipelines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, cached.clone());
        cached
    }
}
