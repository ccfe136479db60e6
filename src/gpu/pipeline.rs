//! Compute pipelines with explicit bind group layouts, cached by (shader, entry point, checks,
//! constants). A hit takes one lock and allocates nothing; a miss compiles once, however many
//! threads ask at the same time.

use super::resources::{Counters, Resources};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

/// How one binding of a kernel is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Binding {
    /// A uniform buffer (the kernel's params struct), bound with a dynamic offset into the
    /// context's uniform ring.
    Uniform,
    /// A read-only storage buffer.
    Read,
    /// A read-write storage buffer.
    ReadWrite,
}

/// One kernel: a WGSL source, its entry point and its bindings in `@binding` order (group 0).
#[derive(Clone, Copy, Debug)]
pub struct Kernel {
    /// The shader's file name in `shaders/`, with the variant it is built as when one file is
    /// built two ways (e.g. `embedding.wgsl (f16 table)`); its label and cache key.
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

/// Pipeline-override constants, e.g. tile sizes: `&[("WG", 64.0)]`.
pub type Constants = &'static [(&'static str, f64)];

/// `constants` as a table that lives as long as the program, each distinct table made once:
/// tables combined at run time (a weight format's constants and a kernel's own) from the few
/// values they take.
pub fn intern(constants: &[(&'static str, f64)]) -> Constants {
    static TABLES: Mutex<Vec<Constants>> = Mutex::new(Vec::new());
    let mut tables = TABLES.lock().unwrap_or_else(|e| e.into_inner());
    let same = |t: &Constants| {
        t.len() == constants.len()
            && t.iter()
                .zip(constants)
                .all(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits())
    };
    if let Some(found) = tables.iter().find(|t| same(t)) {
        return found;
    }
    let table: Constants = Box::leak(constants.to_vec().into_boxed_slice());
    tables.push(table);
    table
}

/// Constants compared and hashed by value (two equal tables from different places are one key).
#[derive(Clone, Copy, Debug)]
struct ConstantsKey(Constants);

impl PartialEq for ConstantsKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(other.0)
                .all(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits())
    }
}

impl Eq for ConstantsKey {}

impl Hash for ConstantsKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for (name, value) in self.0 {
            name.hash(state);
            value.to_bits().hash(state);
        }
    }
}

/// A shader module is one per (file, checks): the same file compiled with and without bounds
/// checks is two modules.
type ModuleKey = (&'static str, bool);
type PipelineKey = (&'static str, &'static str, bool, ConstantsKey);

/// A compiled pipeline and the layout its bind groups use.
pub(crate) struct CachedPipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

/// The cache of shader modules and pipelines of one device.
#[derive(Default)]
pub(crate) struct PipelineCache {
    modules: Mutex<HashMap<ModuleKey, Arc<OnceLock<wgpu::ShaderModule>>>>,
    pipelines: Mutex<HashMap<PipelineKey, Arc<OnceLock<Arc<CachedPipeline>>>>>,
}

fn layout_entry(index: usize, binding: Binding) -> wgpu::BindGroupLayoutEntry {
    let (ty, has_dynamic_offset, min_binding_size) = match binding {
        Binding::Uniform => (
            wgpu::BufferBindingType::Uniform,
            true,
            std::num::NonZeroU64::new(super::batch::UNIFORM_SLOT),
        ),
        Binding::Read => (
            wgpu::BufferBindingType::Storage { read_only: true },
            false,
            None,
        ),
        Binding::ReadWrite => (
            wgpu::BufferBindingType::Storage { read_only: false },
            false,
            None,
        ),
    };
    wgpu::BindGroupLayoutEntry {
        binding: index as u32,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset,
            min_binding_size,
        },
        count: None,
    }
}

/// The cell of `key` in `map`, inserted empty if missing (the map's lock is held only for this).
fn cell<K: Hash + Eq, V>(map: &Mutex<HashMap<K, Arc<OnceLock<V>>>>, key: K) -> Arc<OnceLock<V>> {
    map.lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key)
        .or_default()
        .clone()
}

impl PipelineCache {
    fn module(
        &self,
        device: &wgpu::Device,
        res: &Resources,
        kernel: &Kernel,
    ) -> wgpu::ShaderModule {
        let cell = cell(&self.modules, (kernel.shader, kernel.trusted));
        cell.get_or_init(|| {
            Counters::bump(&res.counters.shader_modules);
            let desc = wgpu::ShaderModuleDescriptor {
                label: Some(kernel.shader),
                source: wgpu::ShaderSource::Wgsl(kernel.source.into()),
            };
            if kernel.trusted {
                // SAFETY: a trusted shader clamps every index it reads to its buffer's
                // extent and guards every store, and its launcher checks each buffer holds
                // the shape it is given (see `Kernel::trusted`); tensors' shapes cannot be
                // changed from outside the crate.
                unsafe {
                    device
                        .create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
                }
            } else {
                device.create_shader_module(desc)
            }
        })
        .clone()
    }

    /// The pipeline of `kernel` with `constants`, compiled on first use (once, even when
    /// several threads ask at once: the others wait for it).
    pub fn get(
        &self,
        device: &wgpu::Device,
        res: &Resources,
        kernel: &Kernel,
        constants: Constants,
    ) -> Arc<CachedPipeline> {
        let key = (
            kernel.shader,
            kernel.entry,
            kernel.trusted,
            ConstantsKey(constants),
        );
        {
            // The hit path: one lock, one lookup, no allocation.
            let map = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(p) = map.get(&key).and_then(|c| c.get()) {
                return p.clone();
            }
        }
        cell(&self.pipelines, key)
            .get_or_init(|| Arc::new(self.compile(device, res, kernel, constants)))
            .clone()
    }

    fn compile(
        &self,
        device: &wgpu::Device,
        res: &Resources,
        kernel: &Kernel,
        constants: Constants,
    ) -> CachedPipeline {
        Counters::bump(&res.counters.pipelines);
        let module = self.module(device, res, kernel);
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
        CachedPipeline { pipeline, layout }
    }
}
