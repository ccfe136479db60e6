//! `latentgpu info`: every adapter with its backend, driver, features and limits, or what a
//! model directory holds.

use anyhow::{Context, Result};
use latentgpu::gpu::{list_adapters, BackendChoice, GpuContext};
use std::path::Path;

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1 << 20) as f64)
}

/// Prints what the model directory `dir` holds, from its headers: nothing is uploaded.
pub fn model_info(choice: BackendChoice, dir: &Path, json: bool) -> Result<()> {
    let adapter = list_adapters(choice)
        .into_iter()
        .next()
        .map_or_else(|| GpuContext::new(choice).map(|c| c.adapter), Ok)?;
    let weights = super::weights();
    let s = latentgpu::model::tools::summary::summarize_with(
        dir,
        adapter.max_storage_buffer_binding_size,
        weights,
        (super::context(), super::cache_options().format),
    )
    .with_context(|| format!("reading model {}", dir.display()))?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    outln!("model:        {}", dir.display());
    outln!("family:       {}", s.family);
    outln!(
        "parameters:   {} ({:.1}M){}",
        s.parameters,
        s.parameters as f64 / 1e6,
        match s.active_parameters < s.parameters {
            true => format!(
                ", {} ({:.1}M) active per token",
                s.active_parameters,
                s.active_parameters as f64 / 1e6
            ),
            false => String::new(),
        }
    );
    outln!(
        "dtype:        {} on disk, {} on the GPU",
        s.dtype_on_disk,
        s.dtype_on_gpu
    );
    outln!(
        "weights:      {} on disk, {} on the GPU",
        mib(s.weight_bytes_on_disk),
        mib(s.weight_bytes_on_gpu)
    );
    let at: Vec<String> = s
        .cache_bytes_at
        .iter()
        .map(|c| format!("{} at {} tokens", mib(c.bytes), c.tokens))
        .collect();
    outln!(
        "cache:        {} bytes per token ({}, in pages as tokens come): {}",
        s.cache_bytes_per_token,
        s.kv_cache.name(),
        at.join(", ")
    );
    outln!(
        "memory plan:  weights {} + cache {} + activations {} (estimate) = {} at {} tokens",
        mib(s.plan.weights),
        mib(s.plan.cache),
        mib(s.plan.activations),
        mib(s.plan.total),
        s.context
    );
    let split: Vec<_> = s.tensors.iter().filter(|t| t.bindings > 1).collect();
    let too_big: Vec<_> = s.tensors.iter().filter(|t| t.bindings == 0).collect();
    outln!(
        "binding:      {} of {} tensors fit {}'s binding limit of {}; {} split into row blocks",
        s.tensors.len() - split.len() - too_big.len(),
        s.tensors.len(),
        adapter.name,
        mib(s.binding_limit),
        split.len()
    );
    if let Some(e) = &s.expert_stacks {
        outln!(
            "experts:      each layer's stacked gate, up and down {} each, {}",
            mib(e.bytes),
            match e.bindings {
                0 => "too large: one expert is past the binding limit".to_string(),
                1 => "in one binding".to_string(),
                n => format!("in {n} blocks of whole experts"),
            }
        );
    }
    for t in split {
        outln!(
            "  split:      {} {:?} ({}) in {} blocks",
            t.name,
            t.shape,
            mib(t.gpu_bytes),
            t.bindings
        );
    }
    for t in too_big {
        outln!(
            "  too large:  {} {:?} needs {} (a row past the limit)",
            t.name,
            t.shape,
            mib(t.gpu_bytes)
        );
    }
    Ok(())
}

/// Prints every adapter of the chosen backends (text or JSON).
pub fn info(choice: BackendChoice, json: bool) -> Result<()> {
    let adapters = list_adapters(choice);
    if adapters.is_empty() {
        // Reuse the library's error: it names the backends tried and how to get one.
        GpuContext::new(choice)?;
    }
    if json {
        outln!("{}", serde_json::to_string_pretty(&adapters)?);
        return Ok(());
    }
    for (i, a) in adapters.iter().enumerate() {
        outln!("adapter {i}: {}", a.name);
        outln!("  backend:      {}", a.backend);
        outln!("  device type:  {}", a.device_type);
        outln!("  driver:       {} {}", a.driver, a.driver_info);
        outln!(
            "  features:     shader-f16 {}, subgroups {}, timestamp-query {}",
            a.shader_f16,
            a.subgroups,
            a.timestamp_query
        );
        outln!(
            "  limits:       storage binding {} MiB, buffer {} MiB, workgroup storage {} KiB, {} invocations/workgroup, {} storage buffers/stage",
            a.max_storage_buffer_binding_size >> 20,
            a.max_buffer_size >> 20,
            a.max_compute_workgroup_storage_size >> 10,
            a.max_compute_invocations_per_workgroup,
            a.max_storage_buffers_per_shader_stage
        );
    }
    Ok(())
}
