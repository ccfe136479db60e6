//! A batch of GPU work: one command encoder, one compute pass, many dispatches, one submission,
//! one readback.
//!
//! Nothing is allocated per dispatch once the model is warm:
//! - params go into a CPU copy of the context's uniform ring, bound with a dynamic offset and
//!   written with one `write_buffer` at submission;
//! - small uploads (token ids) go into the same ring, bound at a static offset;
//! - bind groups come from the context's cache, keyed by layout and buffer ranges;
//! - outputs come from the scratch pool, readbacks go through one kept staging buffer.

use super::context::GpuContext;
use super::pipeline::{Binding, Constants, Kernel};
use super::resources::Counters;
use super::tensor::{DType, GpuTensor};
use crate::error::{Error, Result};

/// Bytes bound for a kernel's params struct (every params struct fits).
pub const UNIFORM_SLOT: u64 = 256;

/// Records dispatches into one command encoder; `submit` or `read` ends it.
pub struct Batch<'a> {
    pub(super) ctx: &'a GpuContext,
    // Declared before the encoder it records into, so it is dropped first.
    pub(super) pass: Option<wgpu::ComputePass<'static>>,
    pub(super) encoder: wgpu::CommandEncoder,
    scope: wgpu::ErrorScopeGuard,
    /// The ring being filled (the context's, or an overflow one) and its contents so far.
    ring: GpuTensor,
    ring_data: Vec<u8>,
    /// Rings already filled in this batch, with their contents.
    full_rings: Vec<(GpuTensor, Vec<u8>)>,
    profiler: Option<super::profile::PassTimer>,
    /// Every dispatch recorded, when profiling (to replay kernels alone).
    log: Option<Vec<RecordedDispatch>>,
}

/// One dispatch as recorded, to be replayed on its own ([`Batch::replay`]).
#[derive(Clone)]
pub struct RecordedDispatch {
    /// The kernel.
    pub kernel: Kernel,
    /// Its pipeline constants.
    pub constants: Constants,
    /// Its params bytes.
    pub params: Option<Vec<u8>>,
    /// The tensors it bound.
    pub tensors: Vec<GpuTensor>,
    /// Its grid.
    pub workgroups: [u32; 3],
}

impl RecordedDispatch {
    /// Bytes of the tensors it binds (what it can read or write at most).
    pub fn bytes_bound(&self) -> u64 {
        self.tensors.iter().map(|t| t.bytes()).sum()
    }
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
            pass: None,
            encoder,
            scope,
            ring: ctx.ring.clone(),
            ring_data: Vec::new(),
            full_rings: Vec::new(),
            profiler: None,
            log: None,
        }
    }

    /// As [`Batch::new`], timing every dispatch (one compute pass each, with timestamp queries
    /// where the adapter has them, else one submission each) and logging it; `submit` or
    /// `read` then appends the times to `times`.
    pub fn profiled(ctx: &'a GpuContext, times: super::profile::DispatchTimes) -> Self {
        let timer = super::profile::PassTimer::new(ctx, times);
        Batch {
            profiler: Some(timer),
            log: Some(Vec::new()),
            ..Self::new(ctx)
        }
    }

    /// As [`Batch::new`], logging every dispatch (what it bound, see [`Batch::recorded`]).
    pub fn logged(ctx: &'a GpuContext) -> Self {
        Batch {
            log: Some(Vec::new()),
            ..Self::new(ctx)
        }
    }

    /// The dispatches recorded so far, when profiling or logging.
    pub fn recorded(&self) -> &[RecordedDispatch] {
        self.log.as_deref().unwrap_or(&[])
    }

    /// Records `d` again.
    pub fn replay(&mut self, d: &RecordedDispatch) -> Result<()> {
        let tensors: Vec<&GpuTensor> = d.tensors.iter().collect();
        self.dispatch(
            &d.kernel,
            d.constants,
            d.params.as_deref(),
            &tensors,
            d.workgroups,
        )
    }

    /// The context this batch records for.
    pub fn ctx(&self) -> &'a GpuContext {
        self.ctx
    }

    /// Reserves `bytes` in the uniform ring (a new overflow ring when it is full) and returns
    /// the ring and the byte offset; `data` is written there at submission.
    fn push_ring(&mut self, data: &[u8]) -> Result<(GpuTensor, u64)> {
        let align = self.ctx.ring_alignment();
        let size = (data.len() as u64).max(4).div_ceil(align) * align;
        let capacity = self.ring.bytes();
        let at = self.ring_data.len() as u64;
        if at + size > capacity {
            let bytes = size.max(self.ctx.ring.bytes());
            let ring = self.ctx.new_ring(bytes)?;
            let full = std::mem::replace(&mut self.ring, ring);
            let data = std::mem::take(&mut self.ring_data);
            self.full_rings.push((full, data));
        }
        let at = self.ring_data.len();
        self.ring_data.extend_from_slice(data);
        self.ring_data.resize(at + size as usize, 0);
        Ok((self.ring.clone(), at as u64))
    }

    /// Bytes the batch can still put in its uniform ring before it needs an overflow ring
    /// (an allocation): lets a caller that records repeated work stop before that.
    pub fn ring_room(&self) -> u64 {
        self.ring
            .bytes()
            .saturating_sub(self.ring_data.len() as u64)
    }

    /// Uploads `data` with the batch's params (no buffer of its own): a `[len]` u32 tensor that
    /// kernels recorded in this batch can read.
    pub fn upload_u32(&mut self, label: &str, data: &[u32]) -> Result<GpuTensor> {
        let (ring, at) = self.push_ring(bytemuck::cast_slice(data))?;
        ring.view_bytes(at, &[data.len()], DType::U32, label)
    }

    /// Records one dispatch of `kernel`. `params` (if the kernel has a uniform) is bound at
    /// binding 0, `tensors` follow in binding order. Each tensor view must start at a multiple
    /// of the adapter's storage offset alignment (kernels take element offsets otherwise).
    pub fn dispatch(
        &mut self,
        kernel: &Kernel,
        constants: Constants,
        params: Option<&[u8]>,
        tensors: &[&GpuTensor],
        workgroups: [u32; 3],
    ) -> Result<()> {
        let has_uniform = kernel.bindings.first() == Some(&Binding::Uniform);
        if kernel.bindings.len() != tensors.len() + has_uniform as usize
            || has_uniform != params.is_some()
        {
            return Err(Error::Invalid {
                what: format!("bindings of kernel {}", kernel.entry),
                expected: format!("{:?}", kernel.bindings),
                found: format!(
                    "{} params and {} tensors",
                    if params.is_some() { "with" } else { "no" },
                    tensors.len()
                ),
            });
        }
        for t in tensors {
            t.expect_whole(kernel.entry)?;
        }
        let align = self.ctx.limits.min_storage_buffer_offset_alignment as u64;
        if let Some(t) = tensors.iter().find(|t| t.byte_offset() % align != 0) {
            return Err(Error::Invalid {
                what: format!("view '{}' bound by {}", t.label(), kernel.entry),
                expected: format!("a byte offset that is a multiple of {align}"),
                found: t.byte_offset().to_string(),
            });
        }
        let mut dynamic_offset = None;
        let mut ranges = Vec::with_capacity(tensors.len() + 1);
        if let Some(bytes) = params {
            if bytes.len() as u64 > UNIFORM_SLOT {
                return Err(Error::Invalid {
                    what: format!("params of kernel {}", kernel.entry),
                    expected: format!("at most {UNIFORM_SLOT} bytes"),
                    found: bytes.len().to_string(),
                });
            }
            let (ring, at) = self.push_ring(bytes)?;
            dynamic_offset = Some(at as u32);
            ranges.push((ring.buffer().clone(), 0, UNIFORM_SLOT));
        }
        for t in tensors {
            let (offset, size) = t.binding_range();
            ranges.push((t.buffer().clone(), offset, size));
        }
        let cached = self
            .ctx
            .pipelines
            .get(&self.ctx.device, &self.ctx.res, kernel, constants);
        let bind_group = self.ctx.bind_group(&cached.layout, ranges, kernel.entry);
        let pass = match self.pass.take() {
            Some(pass) => pass,
            None => self.begin_pass(kernel.entry),
        };
        let pass = self.pass.insert(pass);
        pass.set_pipeline(&cached.pipeline);
        pass.set_bind_group(0, &bind_group, dynamic_offset.as_slice());
        pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
        Counters::bump(&self.ctx.res.counters.dispatches);
        if let Some(log) = &mut self.log {
            log.push(RecordedDispatch {
                kernel: *kernel,
                constants,
                params: params.map(<[u8]>::to_vec),
                tensors: tensors.iter().map(|&t| t.clone()).collect(),
                workgroups,
            });
        }
        if let Some(timer) = &mut self.profiler {
            timer.record(kernel.entry);
            // One pass per dispatch, so each has its own timestamps.
            self.pass = None;
            if timer.waits_each() {
                self.submit_so_far()?;
            }
        }
        Ok(())
    }

    /// Submits what is recorded so far, waits for it, and reads the u32 tensor `t` back; the
    /// batch goes on recording after it. A round trip in the middle of a forward pass: what the
    /// experts benchmark's readback variant costs per layer (native).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_u32_midway(&mut self, t: &GpuTensor) -> Result<Vec<u32>> {
        t.expect_whole("read back")?;
        if t.dtype() != DType::U32 {
            return Err(Error::Invalid {
                what: format!("reading back '{}'", t.label()),
                expected: "a U32 tensor".into(),
                found: format!("{:?}", t.dtype()),
            });
        }
        self.pass = None;
        let size = t.bytes().div_ceil(4).max(1) * 4;
        let staging = self.ctx.take_staging(size)?;
        self.encoder
            .copy_buffer_to_buffer(t.buffer(), t.byte_offset(), &staging, 0, size);
        self.submit_so_far()?;
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, ..size, move |r| {
            let _ = tx.send(r);
        });
        wait_idle(self.ctx, "midway readback")?;
        let failed = |reason: String| Error::Readback {
            label: t.label().to_string(),
            reason,
        };
        rx.recv()
            .map_err(|e| failed(e.to_string()))?
            .map_err(|e| failed(e.to_string()))?;
        let words = {
            let view = staging
                .get_mapped_range(..size)
                .map_err(|e| failed(e.to_string()))?;
            bytemuck::pod_collect_to_vec::<u8, u32>(&view[..t.bytes() as usize])
        };
        staging.unmap();
        self.ctx.give_back_staging(staging);
        Ok(words)
    }

    /// Submits what is recorded so far on its own and waits for it to complete (CPU timing
    /// times it).
    fn submit_so_far(&mut self) -> Result<()> {
        let next = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("latentgpu batch"),
            });
        let encoder = std::mem::replace(&mut self.encoder, next);
        if let Some(timer) = &mut self.profiler {
            timer.start_wait();
        }
        {
            let _lock = self
                .ctx
                .submit_lock
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            for (ring, data) in self.full_rings.iter() {
                self.ctx.queue.write_buffer(ring.buffer(), 0, data);
            }
            if !self.ring_data.is_empty() {
                self.ctx
                    .queue
                    .write_buffer(self.ring.buffer(), 0, &self.ring_data);
            }
            self.ctx.queue.submit([encoder.finish()]);
        }
        wait_idle(self.ctx, "profile")?;
        if let Some(timer) = &mut self.profiler {
            timer.end_wait();
        }
        Ok(())
    }

    fn begin_pass(&mut self, label: &str) -> wgpu::ComputePass<'static> {
        let timestamp_writes = self.profiler.as_ref().and_then(|t| t.writes());
        self.encoder
            .begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(label),
                timestamp_writes,
            })
            .forget_lifetime()
    }

    /// `view` itself when kernels can bind it (its byte offset is a multiple of the adapter's
    /// storage offset alignment), else a scratch copy of it.
    pub fn bindable(&mut self, view: &GpuTensor) -> Result<GpuTensor> {
        let align = self.ctx.limits.min_storage_buffer_offset_alignment as u64;
        if view.byte_offset().is_multiple_of(align) {
            return Ok(view.clone());
        }
        let copy = GpuTensor::scratch(self.ctx, view.label(), view.shape(), view.dtype())?;
        self.copy(view, &copy)?;
        Ok(copy)
    }

    /// Copies `src` into `dst` (same byte size).
    pub fn copy(&mut self, src: &GpuTensor, dst: &GpuTensor) -> Result<()> {
        if src.bytes() != dst.bytes() || src.dtype() != dst.dtype() {
            return Err(crate::error::shape_err(
                "copy",
                format!("'{}' -> '{}'", src.label(), dst.label()),
                format!("{} bytes of {:?}", dst.bytes(), dst.dtype()),
                format!("{} bytes of {:?}", src.bytes(), src.dtype()),
            ));
        }
        self.copy_elements(src, 0, dst, 0, src.numel())
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
        src.expect_whole("copy")?;
        dst.expect_whole("copy")?;
        let within =
            |at: usize, t: &GpuTensor| at.checked_add(count).is_some_and(|e| e <= t.numel());
        if !within(src_at, src) || !within(dst_at, dst) || src.dtype() != dst.dtype() {
            return Err(crate::error::shape_err(
                "copy",
                format!(
                    "{count} elements '{}'[{src_at}..] -> '{}'[{dst_at}..]",
                    src.label(),
                    dst.label()
                ),
                format!(
                    "within {} and {} elements of one dtype",
                    src.numel(),
                    dst.numel()
                ),
                format!(
                    "end {} and {} ({:?}, {:?})",
                    src_at.saturating_add(count),
                    dst_at.saturating_add(count),
                    src.dtype(),
                    dst.dtype()
                ),
            ));
        }
        let es = src.dtype().size() as u64;
        let (from, to, size) = (
            src.byte_offset() + src_at as u64 * es,
            dst.byte_offset() + dst_at as u64 * es,
            count as u64 * es,
        );
        if from % 4 != 0 || to % 4 != 0 || size % 4 != 0 {
            return Err(crate::error::shape_err(
                "copy",
                format!("bytes of '{}' -> '{}'", src.label(), dst.label()),
                "offsets and size in whole 4-byte words",
                format!("from {from}, to {to}, {size} bytes"),
            ));
        }
        if size > 0 {
            self.pass = None;
            self.encoder
                .copy_buffer_to_buffer(src.buffer(), from, dst.buffer(), to, size);
        }
        Ok(())
    }

    /// Ends the pass, writes the batch's uniform rings and submits the recorded commands under
    /// the context's submission lock (so another thread's ring contents cannot land in
    /// between); returns the context, the error scope (still to be popped) and the profiler.
    pub(super) fn submit_commands(
        mut self,
    ) -> (
        &'a GpuContext,
        wgpu::ErrorScopeGuard,
        Option<super::profile::PassTimer>,
    ) {
        self.pass = None;
        if let Some(timer) = &mut self.profiler {
            timer.resolve(&mut self.encoder);
        }
        let Batch {
            ctx,
            pass: _,
            encoder,
            scope,
            ring,
            ring_data,
            full_rings,
            profiler,
            log: _,
        } = self;
        let _lock = ctx.submit_lock.lock().unwrap_or_else(|e| e.into_inner());
        for (ring, data) in full_rings.iter().chain([(ring, ring_data)].iter()) {
            if !data.is_empty() {
                ctx.queue.write_buffer(ring.buffer(), 0, data);
            }
        }
        ctx.queue.submit([encoder.finish()]);
        (ctx, scope, profiler)
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
        let (_, scope, _) = self.submit_commands();
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
        let (ctx, scope, profiler) = self.submit_commands();
        pop_scope(scope).await?;
        wait_idle(ctx, "wait")?;
        if let Some(timer) = profiler {
            timer.finish(ctx).await?;
        }
        Ok(())
    }
}

/// Awaits a batch's error scope: a validation error in it becomes [`Error::Gpu`].
pub(super) async fn pop_scope(scope: wgpu::ErrorScopeGuard) -> Result<()> {
    match scope.pop().await {
        Some(err) => Err(Error::Gpu {
            during: "batch".into(),
            reason: err.to_string(),
        }),
        None => Ok(()),
    }
}

/// Waits for the device's submitted work (native); the browser polls by itself, so there it
/// returns at once and callbacks fire from the event loop.
pub(crate) fn wait_idle(ctx: &GpuContext, during: &str) -> Result<()> {
    ctx.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::Gpu {
            during: during.into(),
            reason: e.to_string(),
        })?;
    Ok(())
}
