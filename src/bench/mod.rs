//! Benchmarks (not tests): roofline probes and kernel throughput, printed and written as JSON.
//! Every figure is measured in the same run as the roofs it is compared against.

pub mod attention;
pub mod context;
pub mod matmul;
pub mod mla;
pub mod model;
pub mod profile;

use crate::error::Result;
use crate::gpu::batch::grid;
use crate::gpu::{Batch, GpuContext, GpuTensor};
use crate::shaders;
use std::time::Instant;

/// Mirrors `BenchParams` in `bench.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BenchParams {
    /// Invocations that store (and, for copy, vec4s copied).
    pub n: u32,
    /// FMA loop iterations.
    pub iters: u32,
    /// Padding.
    pub _pad: [u32; 2],
}

/// Seconds per repetition of `record`, doubling the repetitions (in one batch) until a batch
/// takes at least `min_secs`. A first warm-up batch compiles the pipelines; when it alone takes
/// over ten times `min_secs`, compilation is negligible and its time is the answer.
pub fn seconds_per_rep(
    ctx: &GpuContext,
    min_secs: f64,
    mut record: impl FnMut(&mut Batch) -> Result<()>,
) -> Result<f64> {
    let mut warm = Batch::new(ctx);
    record(&mut warm)?;
    let start = Instant::now();
    warm.submit()?;
    let warm_secs = start.elapsed().as_secs_f64();
    if warm_secs > 10.0 * min_secs {
        return Ok(warm_secs);
    }
    let mut reps = 1u32;
    loop {
        let mut batch = Batch::new(ctx);
        for _ in 0..reps {
            record(&mut batch)?;
        }
        let start = Instant::now();
        batch.submit()?;
        let secs = start.elapsed().as_secs_f64();
        if secs >= min_secs || reps >= 1 << 16 {
            return Ok(secs / reps as f64);
        }
        reps *= 2;
    }
}

/// The adapter's FMA throughput in GFLOP/s: register-only FMA chains, 2 FLOPs per FMA.
pub fn fma_roof_gflops(ctx: &GpuContext) -> Result<f64> {
    const WG: u64 = 64;
    const ITERS: u32 = 1024;
    let workgroups = 4096u64;
    let invocations = workgroups * WG;
    let out = GpuTensor::zeros(ctx, "fma roof out", &[invocations as usize * 4])?;
    let params = BenchParams {
        n: invocations as u32,
        iters: ITERS,
        _pad: [0; 2],
    };
    let wg = grid(ctx, "fma roof", workgroups)?;
    let src = GpuTensor::zeros(ctx, "fma roof src", &[4])?;
    let secs = seconds_per_rep(ctx, 0.3, |b| {
        b.dispatch(
            &shaders::FMA_ROOF,
            &[],
            Some(bytemuck::bytes_of(&params)),
            &[&src, &out],
            wg,
        )?;
        Ok(())
    })?;
    let flops = invocations as f64 * ITERS as f64 * 8.0 * 4.0 * 2.0;
    Ok(flops / secs / 1e9)
}

/// The adapter's copy bandwidth in GB/s (bytes read plus bytes written).
pub fn copy_roof_gbps(ctx: &GpuContext) -> Result<f64> {
    let max = ctx.limits.max_storage_buffer_binding_size.min(64 << 20);
    let vec4s = (max / 16) as usize;
    let src = GpuTensor::zeros(ctx, "copy roof src", &[vec4s * 4])?;
    let dst = GpuTensor::zeros(ctx, "copy roof dst", &[vec4s * 4])?;
    let params = BenchParams {
        n: vec4s as u32,
        iters: 0,
        _pad: [0; 2],
    };
    let wg = grid(ctx, "copy roof", (vec4s as u64).div_ceil(64))?;
    let secs = seconds_per_rep(ctx, 0.3, |b| {
        b.dispatch(
            &shaders::COPY_ROOF,
            &[],
            Some(bytemuck::bytes_of(&params)),
            &[&src, &dst],
            wg,
        )?;
        Ok(())
    })?;
    Ok(2.0 * (vec4s * 16) as f64 / secs / 1e9)
}
