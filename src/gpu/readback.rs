//! Reading tensors back from the GPU: one copy per tensor into the context's kept staging
//! buffer, one submission, one wait, one map.

use super::batch::{pop_scope, wait_idle, Batch};
use super::tensor::{DType, GpuTensor};
use crate::error::{Error, Result};

impl Batch<'_> {
    /// Submits the work and reads the given f32 tensors back with one map (native: blocks).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read(self, tensors: &[&GpuTensor]) -> Result<Vec<Vec<f32>>> {
        pollster::block_on(self.read_async(tensors))
    }

    /// Submits the work and reads the given f32 tensors back with one map, awaiting the GPU
    /// (in the browser the page stays responsive meanwhile).
    pub async fn read_async(self, tensors: &[&GpuTensor]) -> Result<Vec<Vec<f32>>> {
        if let Some(t) = tensors.iter().find(|t| t.dtype() != DType::F32) {
            return Err(Error::Invalid {
                what: format!("reading back '{}'", t.label()),
                expected: "an F32 tensor".into(),
                found: format!("{:?}", t.dtype()),
            });
        }
        let words = self.read_words_async(tensors).await?;
        Ok(words
            .into_iter()
            .map(|w| w.into_iter().map(f32::from_bits).collect())
            .collect())
    }

    /// Submits the work and reads the given u32 tensors back with one map (token ids).
    pub async fn read_u32_async(self, tensors: &[&GpuTensor]) -> Result<Vec<Vec<u32>>> {
        if let Some(t) = tensors.iter().find(|t| t.dtype() != DType::U32) {
            return Err(Error::Invalid {
                what: format!("reading back '{}'", t.label()),
                expected: "a U32 tensor".into(),
                found: format!("{:?}", t.dtype()),
            });
        }
        self.read_words_async(tensors).await
    }

    /// Submits the work and reads the given tensors' bytes back (any dtype) with one map.
    pub async fn read_bytes_async(self, tensors: &[&GpuTensor]) -> Result<Vec<Vec<u8>>> {
        self.read_raw_async(tensors).await
    }

    /// As [`Batch::read_bytes_async`], each tensor's bytes as 32-bit words (F32 and U32).
    async fn read_words_async(self, tensors: &[&GpuTensor]) -> Result<Vec<Vec<u32>>> {
        let bytes = self.read_raw_async(tensors).await?;
        Ok(bytes
            .iter()
            .map(|b| bytemuck::pod_collect_to_vec(b))
            .collect())
    }

    /// Copies the tensors into the context's staging buffer (each at a 4-byte boundary, its
    /// byte count rounded up to whole words inside its buffer's padding), submits, waits once,
    /// and returns each tensor's bytes.
    async fn read_raw_async(mut self, tensors: &[&GpuTensor]) -> Result<Vec<Vec<u8>>> {
        for t in tensors {
            t.expect_whole("read back")?;
        }
        let words = |t: &GpuTensor| t.bytes().div_ceil(4) * 4;
        let total: u64 = tensors.iter().map(|t| words(t)).sum();
        for t in tensors {
            if t.byte_offset() % 4 != 0 {
                return Err(Error::Invalid {
                    what: format!("reading back '{}'", t.label()),
                    expected: "a view starting on a 4-byte word".into(),
                    found: format!("byte offset {}", t.byte_offset()),
                });
            }
        }
        let staging = self.ctx.take_staging(total)?;
        self.pass = None;
        let mut offset = 0;
        for t in tensors {
            if t.bytes() > 0 {
                self.encoder.copy_buffer_to_buffer(
                    t.buffer(),
                    t.byte_offset(),
                    &staging,
                    offset,
                    words(t),
                );
            }
            offset += words(t);
        }
        let (ctx, scope, profiler) = self.submit_commands();
        pop_scope(scope).await?;
        let label = || {
            tensors
                .iter()
                .map(|t| t.label())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let readback_err = |reason: String| Error::Readback {
            label: label(),
            reason,
        };
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.map_async(wgpu::MapMode::Read, ..total.max(4), move |r| {
            let _ = tx.send(r);
        });
        wait_idle(ctx, "readback")?;
        rx.await
            .map_err(|e| readback_err(e.to_string()))?
            .map_err(|e| readback_err(e.to_string()))?;
        let mut out = Vec::with_capacity(tensors.len());
        {
            let view = staging
                .get_mapped_range(..total.max(4))
                .map_err(|e| readback_err(e.to_string()))?;
            let mut start = 0;
            for t in tensors {
                out.push(view[start..start + t.bytes() as usize].to_vec());
                start += words(t) as usize;
            }
        }
        staging.unmap();
        ctx.give_back_staging(staging);
        if let Some(timer) = profiler {
            timer.finish(ctx).await?;
        }
        Ok(out)
    }
}
