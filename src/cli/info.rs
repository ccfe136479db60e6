//! `latentgpu info`: every adapter with its backend, driver, features and limits.

use anyhow::Result;
use latentgpu::gpu::{list_adapters, BackendChoice, GpuContext};

/// Prints every adapter of the chosen backends (text or JSON).
pub fn info(choice: BackendChoice, json: bool) -> Result<()> {
    let adapters = list_adapters(choice);
    if adapters.is_empty() {
        // Reuse the library's error: it names the backends tried and how to get one.
        GpuContext::new(choice)?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&adapters)?);
        return Ok(());
    }
    for (i, a) in adapters.iter().enumerate() {
        println!("adapter {i}: {}", a.name);
        println!("  backend:      {}", a.backend);
        println!("  device type:  {}", a.device_type);
        println!("  driver:       {} {}", a.driver, a.driver_info);
        println!(
            "  features:     shader-f16 {}, subgroups {}, timestamp-query {}",
            a.shader_f16, a.subgroups, a.timestamp_query
        );
        println!(
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
