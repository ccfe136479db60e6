//! A batch of GPU work: one command encoder, many dispatches, one submission, one readback.

use super::context::GpuContext;
use super::pipeline::{Constants, Kernel};
use super::tensor::GpuTensor;
use crate::error::{Error, Result};
use wgpu::util::DeviceExt;

/// Records dispatches into one command encoder; `submit` or `read` ends it.
pub struct Batch<'a> {
    ctx: &'a GpuContext,
    encoder: wgpu::CommandEncoder,
    scope: wgpu::ErrorScopeGuard,
}

/// Splits `n` workgroups into an (x, y) grid within the per-dimension limit.
/// Shaders recover the linear index as `wid.x + wid.y * nwg.x` and skip indices >= n.
pub fn grid(ctx: &GpuContext, op: &'static str, n: u64) -> Result<[u32; 3]> {
    let max = ctx.limits.max_compute_workgroups_per_dimension as u64;
    let x = n.clamp(1, max);
    let y = n.div_ceil(x).max(1);
    if y > max {
        return Err(Error::DispatchTooLarge {
            op,
            what: "workgroups",
            found: n,
            limit: max * max,
        });
    }
    Ok([x as u32, y as u32, 1])
}

impl<'a> Batch<'a> {
    /// Starts a batch; GPU validation errors inside it are returned by `submit`/`read`.
    pub fn new(ctx: &'a GpuContext) -> Self {
        let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("latentgpu batch"),
            });
        Batch {
            ctx,
            encoder,
            scope,
        }
    }

    /// The context this batch records for.
    pub fn ctx(&self) -> &'a GpuContext {
        self.ctx
    }

    /// Records one dispatch of `kernel`. `params` (if any) is bound at binding 0 as a uniform,
    /// `buffers` follow in binding order.
    pub fn dispatch(
        &mut self,
        kernel: &Kernel,
        constants: Constants<'_>,
        params: Option<&[u8]>,
        buffers: &[&wgpu::Buffer],
        workgroups: [u32; 3],
    ) {
        let cached = self.ctx.pipelines.get(&self.ctx.device, kernel, constants);
        let uniform = params.map(|bytes| {
            self.ctx
                .device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(kernel.entry),
                    contents: bytes,
                    usage: wgpu::BufferUsages::UNIFORM,
                })
        });
        let all: Vec<&wgpu::Buffer> = uniform.iter().chain(buffers.iter().copied()).collect();
        let entries: Vec<wgpu::BindGroupEntry> = all
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        let bind_group = self
            .ctx
            .device
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(kernel.entry),
                layout: &cached.layout,
                entries: &entries,
            });
        let mut pass = self
            .encoder
            .begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(kernel.entry),
                timestamp_writes: None,
            });
        pass.set_pipeline(&cached.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
    }

    /// Copies `src` into `dst` (same byte size).
    pub fn copy(&mut self, src: &GpuTensor, dst: &GpuTensor) -> Result<()> {
        if src.bytes() != dst.bytes() {
            return Err(crate::error::shape_err(
                "copy",
                format!("'{}' -> '{}'", src.label, dst.label),
                format!("{} bytes", dst.bytes()),
                format!("{} bytes", src.bytes()),
            ));
        }
        self.encoder
            .copy_buffer_to_buffer(&src.buffer, 0, &dst.buffer, 0, src.buffer.size());
        Ok(())
    }

    /// Copies `count` elements of `src` starting at element `src_at` into `dst` at element `dst_at`.
    pub fn copy_elements(
        &mut self,
        src: &GpuTensor,
        src_at: usize,
        dst: &GpuTensor,
        dst_at: usize,
        count: usize,
    ) -> Result<()> {
        if src_at + count > src.numel() || dst_at + count > dst.numel() {
            return Err(crate::error::shape_err(
                "copy",
                format!(
                    "{count} elements '{}'[{src_at}..] -> '{}'[{dst_at}..]",
                    src.label, dst.label
                ),
                format!("within {} and {} elements", src.numel(), dst.numel()),
                format!("end {} and {}", src_at + count, dst_at + count),
            ));
        }
        let size = (count * src.dtype.size()) as u64;
        if size > 0 {
            self.encoder.copy_buffer_to_buffer(
                &src.buffer,
                (src_at * src.dtype.size()) as u64,
                &dst.buffer,
                (dst_at * dst.dtype.size()) as u64,
                size,
            );
        }
        Ok(())
    }

    /// Submits the recorded commands; returns the context and the batch's error scope, still to
    /// be popped.
    fn submit_commands(self) -> (&'a GpuContext, wgpu::ErrorScopeGuard) {
        let Batch {
            ctx,
            encoder,
            scope,
        } = self;
        ctx.queue.submit([encoder.finish()]);
        (ctx, scope)
    }

    /// Submits the work and waits for it to finish, returning any validation error (native).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn submit(self) -> Result<()> {
        pollster::block_on(self.submit_async())
    }

    /// Submits the work without waiting (browser): the queue keeps the order of submissions,
    /// so later batches see its results. The browser reports validation errors asynchronously;
    /// they are logged when they arrive. Use [`Batch::submit_async`] to await them.
    #[cfg(target_arch = "wasm32")]
    pub fn submit(self) -> Result<()> {
        let (_, scope) = self.submit_commands();
        let error = scope.pop();
        wasm_bindgen_futures::spawn_local(async move {
            if let Some(err) = error.await {
                log::error!("GPU validation error in a batch: {err}");
            }
        });
        Ok(())
    }

    /// Submits the work, returns any validation error in it, and (native) waits for the GPU
    /// to finish it. In the browser the work may still be running when this returns; the queue
    /// keeps order, and a readback waits for it.
    pub async fn submit_async(self) -> Result<()> {
        let (ctx, scope) = self.submit_commands();
        if let Some(err) = scope.pop().await {
            return Err(Error::Gpu {
                during: "batch".into(),
                reason: err.to_string(),
            });
        }
        wait_idle(ctx, "wait")
    }

    /// Submits the work and reads the given f32 tensors back with one map (native: blocks).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read(self, tensors: &[&GpuTensor]) -> Result<Vec<Vec<f32>>> {
        pollster::block_on(self.read_async(tensors))
    }

    /// Submits the work and reads the given f32 tensors back with one map, awaiting the GPU
    /// (in the browser the page stays responsive meanwhile).
    pub async fn read_async(mut self, tensors: &[&GpuTensor]) -> Result<Vec<Vec<f32>>> {
        if let Some(t) = tensors.iter().find(|t| t.dtype != super::DType::F32) {
            return Err(Error::Invalid {
                what: format!("reading back '{}'", t.label),
                expected: "an F32 tensor".into(),
                found: format!("{:?}", t.dtype),
            });
        }
        let total: u64 = tensors.iter().map(|t| t.bytes()).sum();
        let staging = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: total.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut offset = 0;
        for t in tensors {
            if t.bytes() > 0 {
                self.encoder
                    .copy_buffer_to_buffer(&t.buffer, 0, &staging, offset, t.bytes());
            }
            offset += t.bytes();
        }
        let ctx = self.ctx;
        self.submit_async().await?;
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        wait_idle(ctx, "readback")?;
        let label = tensors
            .iter()
            .map(|t| t.label.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let readback_err = |reason: String| Error::Readback {
            label: label.clone(),
            reason,
        };
        rx.await
            .map_err(|e| readback_err(e.to_string()))?
            .map_err(|e| readback_err(e.to_string()))?;
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| readback_err(e.to_string()))?;
        let all: &[f32] = bytemuck::cast_slice(&view[..total as usize]);
        let mut out = Vec::with_capacity(tensors.len());
        let mut start = 0;
        for t in tensors {
            out.push(all[start..start + t.numel()].to_vec());
            start += t.numel();
        }
        Ok(out)
    }
}

/// Waits for the device's submitted work (native); the browser polls by itself, so there it
/// returns at once and callbacks fire from the event loop.
fn wait_idle(ctx: &GpuContext, during: &str) -> Result<()> {
    ctx.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::Gpu {
            during: during.into(),
            reason: e.to_string(),
        })?;
    Ok(())
}
