//! Loading a model from a path (native): its family opens it, the memory it will take is
//! checked against the budget, then the layers are uploaded.

use crate::error::Result;
use crate::gpu::GpuContext;
use crate::model::families::open_dir;
use crate::model::layers::cache::CacheOptions;
use crate::model::layers::transformer::{LoadOptions, Model};
use crate::model::tools::summary::MemoryPlan;
use crate::ops::WeightFormat;

/// Sums the memory loading `dir` as `options` say will take and errors, with the figures and
/// what would fit, when the weights and a prefill chunk's activations are past the budget
/// (`options.memory_budget`, else what the adapter is known to give). The cache takes what is
/// left: returns the cache memory to allow (`options.cache.memory` when given, else the room
/// left when the whole context's cache would not fit, else `None`: what the context needs).
/// Reads headers only.
#[cfg(not(target_arch = "wasm32"))]
fn check_memory(
    ctx: &GpuContext,
    dir: &std::path::Path,
    options: &LoadOptions,
) -> Result<Option<u64>> {
    use crate::model::tools::summary::summarize_with;
    let budget = match options.memory_budget {
        Some(b) => Some((b, "the memory budget asked for".to_string())),
        None => ctx.memory_budget(),
    };
    let Some((budget, source)) = budget else {
        return Ok(options.cache.memory);
    };
    let limit = ctx.limits.max_storage_buffer_binding_size;
    let at = (options.context, options.cache.format);
    let s = summarize_with(dir, limit, options.weights, at)?;
    let q4 = WeightFormat::parse("q4_0").unwrap_or_default();
    let smaller = match options.weights {
        Some(w) if w == q4 => None,
        _ => Some(summarize_with(dir, limit, Some(q4), at)?.plan.weights),
    };
    // The weights and a chunk's activations must fit; the cache pages come from the rest.
    let without_cache = MemoryPlan {
        cache: 0,
        total: s.plan.weights + s.plan.activations,
        ..s.plan
    };
    let per_token = s.plan.cache / s.context.max(1) as u64;
    without_cache.check(
        &dir.display().to_string(),
        ((budget, &source), s.context),
        smaller.map(|w| ("q4", w)),
        per_token.max(1),
    )?;
    let room = budget - without_cache.total;
    if let Some(asked) = options.cache.memory {
        return Ok(Some(asked));
    }
    if s.plan.cache <= room {
        return Ok(None);
    }
    log::info!(
        "{}: the KV cache may take {:.2} GiB ({source}), about {} of the context's {} tokens",
        dir.display(),
        room as f64 / (1u64 << 30) as f64,
        room / per_token.max(1),
        s.context
    );
    Ok(Some(room))
}

impl Model {
    /// Loads a model directory (native): this project's own (`config.json` and
    /// `model.safetensors`, every tensor of which must be used) or a Hugging Face one as
    /// transformers saves it (its `config.json` names a `model_type`; one `model.safetensors` or
    /// the shards of `model.safetensors.index.json`; tensors the model does not use are logged).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_dir(ctx: &GpuContext, dir: &std::path::Path) -> Result<Self> {
        Self::load_dir_with(ctx, dir, LoadOptions::default(), |_, _| {})
    }

    /// As [`Model::load_dir`], with `options` (f16 matrices, forced weight blocks), calling
    /// `progress(block, blocks)` as each block is uploaded.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_dir_with(
        ctx: &GpuContext,
        dir: &std::path::Path,
        options: LoadOptions,
        progress: impl FnMut(usize, usize),
    ) -> Result<Self> {
        let cache_memory = check_memory(ctx, dir, &options)?;
        let options = LoadOptions {
            cache: CacheOptions {
                memory: cache_memory,
                ..options.cache
            },
            ..options
        };
        let (config, file) = open_dir(dir)?;
        Self::load_file(ctx, config, file, options, progress)
    }
}
