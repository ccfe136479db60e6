//! A GPU tensor: one storage buffer and its row-major shape.

use super::context::GpuContext;
use crate::error::{Error, Result};
use wgpu::util::DeviceExt;

/// Element type of a GPU tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 32-bit unsigned integer (token ids).
    U32,
    /// 16-bit float (weights on adapters with shader-f16).
    F16,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F16 => 2,
            _ => 4,
        }
    }
}

/// A row-major tensor in one GPU storage buffer.
#[derive(Clone, Debug)]
pub struct GpuTensor {
    /// The buffer (its size is rounded up to 16 bytes so vec4 views are always valid).
    pub buffer: wgpu::Buffer,
    /// Shape, outermost first.
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// Label (shows in validation errors).
    pub label: String,
}

/// Rounds a byte count up to a whole number of vec4s (at least one).
fn padded_bytes(bytes: u64) -> u64 {
    bytes.div_ceil(16).max(1) * 16
}

/// Checks a buffer size against the adapter's limits.
pub(crate) fn check_size(ctx: &GpuContext, label: &str, bytes: u64) -> Result<()> {
    let limits = [
        (
            "max storage buffer binding size",
            ctx.limits.max_storage_buffer_binding_size,
        ),
        ("max buffer size", ctx.limits.max_buffer_size),
    ];
    for (name, limit) in limits {
        if bytes > limit {
            return Err(Error::BufferTooLarge {
                label: label.to_string(),
                bytes,
                limit_name: name,
                limit,
            });
        }
    }
    Ok(())
}

const USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

impl GpuTensor {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Bytes of the elements (without padding).
    pub fn bytes(&self) -> u64 {
        (self.numel() * self.dtype.size()) as u64
    }

    /// An uninitialised (zero-filled) f32 tensor.
    pub fn zeros(ctx: &GpuContext, label: &str, shape: &[usize]) -> Result<Self> {
        Self::empty(ctx, label, shape, DType::F32)
    }

    /// A zero-filled tensor of any dtype.
    pub fn empty(ctx: &GpuContext, label: &str, shape: &[usize], dtype: DType) -> Result<Self> {
        let bytes = (shape.iter().product::<usize>() * dtype.size()) as u64;
        check_size(ctx, label, bytes)?;
        let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: padded_bytes(bytes),
            usage: USAGE,
            mapped_at_creation: false,
        });
        Ok(GpuTensor {
            buffer,
            shape: shape.to_vec(),
            dtype,
            label: label.to_string(),
        })
    }

    fn from_bytes(
        ctx: &GpuContext,
        label: &str,
        shape: &[usize],
        dtype: DType,
        data: &[u8],
    ) -> Result<Self> {
        let numel: usize = shape.iter().product();
        if data.len() != numel * dtype.size() {
            return Err(Error::Shape {
                op: "upload",
                what: format!("data for '{label}' of shape {shape:?}"),
                expected: format!("{numel} elements"),
                found: format!("{} elements", data.len() / dtype.size()),
            });
        }
        check_size(ctx, label, data.len() as u64)?;
        let mut padded = data.to_vec();
        padded.resize(padded_bytes(data.len() as u64) as usize, 0);
        let buffer = ctx
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: &padded,
                usage: USAGE,
            });
        Ok(GpuTensor {
            buffer,
            shape: shape.to_vec(),
            dtype,
            label: label.to_string(),
        })
    }

    /// Uploads f32 data of the given shape.
    pub fn from_f32(ctx: &GpuContext, label: &str, shape: &[usize], data: &[f32]) -> Result<Self> {
        Self::from_bytes(ctx, label, shape, DType::F32, bytemuck::cast_slice(data))
    }

    /// Uploads f32 data rounded to f16 (round to nearest even). Needs a device with shader-f16.
    pub fn from_f32_as_f16(
        ctx: &GpuContext,
        label: &str,
        shape: &[usize],
        data: &[f32],
    ) -> Result<Self> {
        if !ctx.has_f16() {
            return Err(Error::Invalid {
                what: format!("f16 tensor '{label}'"),
                expected: "an adapter with shader-f16".into(),
                found: format!("{} without it", ctx.name()),
            });
        }
        let halves: Vec<u16> = data
            .iter()
            .map(|&v| half::f16::from_f32(v).to_bits())
            .collect();
        Self::from_bytes(ctx, label, shape, DType::F16, bytemuck::cast_slice(&halves))
    }

    /// Uploads u32 data (token ids) of the given shape.
    pub fn from_u32(ctx: &GpuContext, label: &str, shape: &[usize], data: &[u32]) -> Result<Self> {
        Self::from_bytes(ctx, label, shape, DType::U32, bytemuck::cast_slice(data))
    }

    /// Overwrites the tensor's contents from the host (queued before the next submission).
    pub fn write_f32(&self, ctx: &GpuContext, data: &[f32]) -> Result<()> {
        if data.len() != self.numel() {
            return Err(Error::Shape {
                op: "write",
                what: format!("data for '{}'", self.label),
                expected: format!("{} elements", self.numel()),
                found: format!("{} elements", data.len()),
            });
        }
        ctx.queue
            .write_buffer(&self.buffer, 0, bytemuck::cast_slice(data));
        Ok(())
    }

    /// Reads the tensor back (one submission, one map; native: blocks).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read(&self, ctx: &GpuContext) -> Result<Vec<f32>> {
        pollster::block_on(self.read_async(ctx))
    }

    /// Reads the tensor back, awaiting the GPU.
    pub async fn read_async(&self, ctx: &GpuContext) -> Result<Vec<f32>> {
        let batch = super::batch::Batch::new(ctx);
        Ok(batch.read_async(&[self]).await?.remove(0))
    }

    /// The first `rows` rows (outermost dimension) of this tensor, sharing its buffer.
    pub fn rows(&self, rows: usize) -> Result<Self> {
        let have = self.shape.first().copied().unwrap_or(0);
        if rows == 0 || rows > have {
            return Err(Error::Shape {
                op: "rows",
                what: format!("'{}'", self.label),
                expected: format!("1..={have} rows"),
                found: rows.to_string(),
            });
        }
        let mut shape = self.shape.clone();
        shape[0] = rows;
        Ok(GpuTensor {
            shape,
            ..self.clone()
        })
    }

    /// The same buffer seen with another shape of the same element count.
    pub fn reshape(&self, shape: &[usize]) -> Result<Self> {
        let numel: usize = shape.iter().product();
        if numel != self.numel() {
            return Err(Error::Shape {
                op: "reshape",
                what: format!("'{}'", self.label),
                expected: format!("{} elements", self.numel()),
                found: format!("{numel} elements in {shape:?}"),
            });
        }
        Ok(GpuTensor {
            shape: shape.to_vec(),
            ..self.clone()
        })
    }
}
