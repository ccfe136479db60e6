//! GPU time per dispatch: timestamp queries around one compute pass per dispatch where the
//! adapter has them, otherwise one submission and wait per dispatch timed on the CPU.

use super::batch::wait_idle;
use super::context::GpuContext;
use crate::error::{Error, Result};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How dispatch times were taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum TimingSource {
    /// GPU timestamps written at the start and end of each dispatch's pass.
    Timestamps,
    /// CPU wall time of submitting one dispatch and waiting for it (includes the submission).
    CpuWait,
}

/// The time of one dispatch.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DispatchTime {
    /// The kernel's entry point.
    pub kernel: &'static str,
    /// Seconds.
    pub seconds: f64,
}

/// Dispatch times of profiled batches, shared between the batches and the caller.
pub type DispatchTimes = Arc<Mutex<Vec<DispatchTime>>>;

/// How dispatches are timed on `ctx`.
pub fn timing_source(ctx: &GpuContext) -> TimingSource {
    PassTimer::source(ctx)
}

/// Most dispatches one profiled batch times with timestamps.
const MAX_TIMED: u32 = 2048;

struct Queries {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    read: wgpu::Buffer,
}

/// Times the dispatches of one batch (see [`super::Batch::profiled`]).
pub(crate) struct PassTimer {
    queries: Option<Queries>,
    kernels: Vec<&'static str>,
    sink: DispatchTimes,
    last: Option<Instant>,
}

impl PassTimer {
    /// A timer for `ctx` that appends to `sink`.
    pub fn new(ctx: &GpuContext, sink: DispatchTimes) -> Self {
        let queries = Self::source(ctx).eq(&TimingSource::Timestamps).then(|| {
            let size = MAX_TIMED as u64 * 2 * 8;
            let buffer = |label, usage| {
                ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size,
                    usage,
                    mapped_at_creation: false,
                })
            };
            Queries {
                set: ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("dispatch timestamps"),
                    ty: wgpu::QueryType::Timestamp,
                    count: MAX_TIMED * 2,
                }),
                resolve: buffer(
                    "timestamps",
                    wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                ),
                read: buffer(
                    "timestamps readback",
                    wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                ),
            }
        });
        PassTimer {
            queries,
            kernels: Vec::new(),
            sink,
            last: None,
        }
    }

    /// How `ctx` times dispatches.
    pub fn source(ctx: &GpuContext) -> TimingSource {
        if ctx.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            TimingSource::Timestamps
        } else {
            TimingSource::CpuWait
        }
    }

    /// Whether each dispatch must be submitted and waited for on its own (CPU timing).
    pub fn waits_each(&self) -> bool {
        self.queries.is_none()
    }

    /// The timestamp writes for the pass of the next dispatch.
    pub fn writes(&self) -> Option<wgpu::ComputePassTimestampWrites<'_>> {
        let q = self.queries.as_ref()?;
        let i = self.kernels.len() as u32;
        (i < MAX_TIMED).then_some(wgpu::ComputePassTimestampWrites {
            query_set: &q.set,
            beginning_of_pass_write_index: Some(2 * i),
            end_of_pass_write_index: Some(2 * i + 1),
        })
    }

    /// Notes that `kernel` was dispatched in the pass [`PassTimer::writes`] described.
    pub fn record(&mut self, kernel: &'static str) {
        self.kernels.push(kernel);
    }

    /// CPU timing: called before a dispatch is submitted on its own.
    pub fn start_wait(&mut self) {
        self.last = Some(Instant::now());
    }

    /// CPU timing: called once the dispatch's submission has finished.
    pub fn end_wait(&mut self) {
        if let (Some(start), Some(&kernel)) = (self.last.take(), self.kernels.last()) {
            self.push(kernel, start.elapsed().as_secs_f64());
        }
    }

    fn push(&self, kernel: &'static str, seconds: f64) {
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        sink.push(DispatchTime { kernel, seconds });
    }

    /// Records the resolution of the batch's timestamps.
    pub fn resolve(&mut self, encoder: &mut wgpu::CommandEncoder) {
        if let Some(q) = &self.queries {
            let n = (self.kernels.len() as u32).min(MAX_TIMED) * 2;
            if n > 0 {
                encoder.resolve_query_set(&q.set, 0..n, &q.resolve, 0);
                encoder.copy_buffer_to_buffer(&q.resolve, 0, &q.read, 0, n as u64 * 8);
            }
        }
    }

    /// After the batch's submission: reads the timestamps back into the sink.
    pub async fn finish(self, ctx: &GpuContext) -> Result<()> {
        let Some(q) = &self.queries else {
            return Ok(());
        };
        let n = self.kernels.len().min(MAX_TIMED as usize);
        if n == 0 {
            return Ok(());
        }
        let bytes = n as u64 * 16;
        let (tx, rx) = futures_channel::oneshot::channel();
        q.read.map_async(wgpu::MapMode::Read, ..bytes, move |r| {
            let _ = tx.send(r);
        });
        wait_idle(ctx, "timestamps")?;
        let err = |reason: String| Error::Readback {
            label: "timestamps".into(),
            reason,
        };
        rx.await
            .map_err(|e| err(e.to_string()))?
            .map_err(|e| err(e.to_string()))?;
        let period = ctx.queue.get_timestamp_period() as f64 * 1e-9;
        {
            let view = q
                .read
                .get_mapped_range(..bytes)
                .map_err(|e| err(e.to_string()))?;
            let stamps: &[u64] = bytemuck::cast_slice(&view);
            for (i, &kernel) in self.kernels.iter().take(n).enumerate() {
                let ticks = stamps[2 * i + 1].saturating_sub(stamps[2 * i]);
                self.push(kernel, ticks as f64 * period);
            }
        }
        q.read.unmap();
        Ok(())
    }
}
