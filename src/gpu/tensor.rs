//! A GPU tensor: a view (element offset and row-major shape) of a storage buffer.
// In the browser wgpu's handles are neither Send nor Sync (one thread); natively they are,
// and tensors and the context's shared state cross threads.
#![cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]

use super::context::GpuContext;
use super::resources::{Counters, Resources, ScratchPool};
use crate::error::{Error, Result};
use std::sync::Arc;
use wgpu::util::DeviceExt;

/// Element type of a GPU tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 32-bit unsigned integer (token ids).
    U32,
    /// 16-bit float, IEEE half (weights; kernels read them natively on adapters with
    /// shader-f16, as u32 words on the others).
    F16,
    /// bfloat16, the high half of an f32 (weights; kernels read them as u32 words).
    BF16,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F16 | DType::BF16 => 2,
            _ => 4,
        }
    }

    /// Whether it is a 16-bit float type.
    pub fn is_16_bit(self) -> bool {
        matches!(self, DType::F16 | DType::BF16)
    }

    /// The 16-bit pattern of `v` in this type (round to nearest even; F16 and BF16 only).
    pub fn half_bits(self, v: f32) -> u16 {
        match self {
            DType::BF16 => half::bf16::from_f32(v).to_bits(),
            _ => half::f16::from_f32(v).to_bits(),
        }
    }
}

/// A row-major tensor: a view of `shape` elements from element `offset` of a GPU storage buffer.
/// The buffer and shape are private, so a tensor always lies within its buffer: kernels compiled
/// without bounds checks rely on it.
#[derive(Clone, Debug)]
pub struct GpuTensor {
    storage: Arc<Storage>,
    offset: usize,
    shape: Vec<usize>,
    dtype: DType,
    label: String,
    /// The row blocks of a tensor split past the binding limit (see `split.rs`), each a view
    /// of a buffer of its own, their outermost dimensions adding up to `shape[0]`; `storage`
    /// and `offset` are then the first block's, and kernels bind the blocks, never the whole.
    blocks: Option<Arc<[GpuTensor]>>,
}

/// A buffer and where it goes when its last tensor is dropped: back to the scratch pool, or
/// freed (then the bind groups that bind it are dropped too).
pub(crate) struct Storage {
    buffer: wgpu::Buffer,
    serial: u64,
    pooled: bool,
    res: Arc<Resources>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Storage({} bytes)", self.buffer.size())
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        let freed = if self.pooled {
            let mut pools = self.res.pool.lock().unwrap_or_else(|e| e.into_inner());
            pools.mine().give_back(self.serial, self.buffer.clone())
        } else {
            Some(self.buffer.clone())
        };
        if let Some(buffer) = freed {
            let mut cache = self
                .res
                .bind_groups
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            cache.forget(&buffer);
        }
    }
}

/// Rounds a byte count up to a whole number of vec4s (at least one).
fn padded_bytes(bytes: u64) -> u64 {
    bytes.div_ceil(16).max(1) * 16
}

/// Bytes of a tensor of `shape` and `dtype`, in checked arithmetic (a product past u64 is an
/// error, not a wrapped size).
pub(crate) fn shape_bytes(label: &str, shape: &[usize], dtype: DType) -> Result<u64> {
    shape
        .iter()
        .try_fold(dtype.size() as u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| Error::Invalid {
            what: format!("size of tensor '{label}'"),
            expected: "a byte count below 2^64".into(),
            found: format!("shape {shape:?} of {dtype:?}"),
        })
}

/// Checks that a tensor of `shape` and `dtype` fits the adapter's limits, before anything is
/// built for it on the host.
pub(crate) fn check_shape(
    ctx: &GpuContext,
    label: &str,
    shape: &[usize],
    dtype: DType,
) -> Result<()> {
    check_size(ctx, label, shape_bytes(label, shape, dtype)?)
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
    /// Shape, outermost first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Label (shows in errors and validation messages).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// First element of the view in its buffer.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The buffer the view lies in.
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.storage.buffer
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Bytes of the elements (without padding).
    pub fn bytes(&self) -> u64 {
        (self.numel() * self.dtype.size()) as u64
    }

    /// Byte offset of the view in its buffer.
    pub fn byte_offset(&self) -> u64 {
        (self.offset * self.dtype.size()) as u64
    }

    /// Whether both tensors lie in the same buffer.
    pub fn same_buffer(&self, other: &GpuTensor) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }

    /// The `(offset, size)` in bytes this view binds: its elements rounded up to whole vec4s
    /// (buffers are padded so this stays inside them).
    pub(crate) fn binding_range(&self) -> (u64, u64) {
        (self.byte_offset(), padded_bytes(self.bytes()))
    }

    fn new_storage(
        ctx: &GpuContext,
        buffer: wgpu::Buffer,
        pooled: bool,
        serial: u64,
    ) -> Arc<Storage> {
        Counters::bump(&ctx.res.counters.buffers);
        Arc::new(Storage {
            buffer,
            serial,
            pooled,
            res: ctx.res.clone(),
        })
    }

    fn whole(storage: Arc<Storage>, label: &str, shape: &[usize], dtype: DType) -> Self {
        GpuTensor {
            storage,
            offset: 0,
            shape: shape.to_vec(),
            dtype,
            label: label.to_string(),
            blocks: None,
        }
    }

    /// A zero-filled tensor in a new buffer of the given usage (the context's uniform ring).
    pub(crate) fn with_usage(
        device: &wgpu::Device,
        res: &Arc<Resources>,
        label: &str,
        shape: &[usize],
        dtype: DType,
        usage: wgpu::BufferUsages,
    ) -> Self {
        let bytes = (shape.iter().product::<usize>() * dtype.size()) as u64;
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: padded_bytes(bytes),
            usage,
            mapped_at_creation: false,
        });
        Counters::bump(&res.counters.buffers);
        let storage = Arc::new(Storage {
            buffer,
            serial: res.serial(),
            pooled: false,
            res: res.clone(),
        });
        Self::whole(storage, label, shape, dtype)
    }

    /// A view of `shape` elements of `dtype` starting `at` bytes into this tensor's buffer
    /// (within it; `at` a multiple of the element size).
    pub(crate) fn view_bytes(
        &self,
        at: u64,
        shape: &[usize],
        dtype: DType,
        label: &str,
    ) -> Result<Self> {
        let bytes = (shape.iter().product::<usize>() * dtype.size()) as u64;
        if !at.is_multiple_of(dtype.size() as u64) || at + bytes > self.buffer().size() {
            return Err(Error::Shape {
                op: "view",
                what: format!("{label} in '{}'", self.label),
                expected: format!("within its {} bytes", self.buffer().size()),
                found: format!("{bytes} bytes at {at}"),
            });
        }
        self.expect_whole("view")?;
        Ok(GpuTensor {
            storage: self.storage.clone(),
            offset: (at / dtype.size() as u64) as usize,
            shape: shape.to_vec(),
            dtype,
            label: label.to_string(),
            blocks: None,
        })
    }

    /// This f16 tensor's elements as `ceil(numel / 2)` u32 words (the last one's high half in
    /// the buffer's padding when numel is odd), for kernels that write f16 pairs.
    pub(crate) fn view_words(&self) -> Result<Self> {
        if !self.dtype.is_16_bit() || !self.offset.is_multiple_of(2) {
            return Err(Error::Invalid {
                what: format!("'{}' as u32 words", self.label),
                expected: "an f16 tensor starting on a word".into(),
                found: format!("{:?} at element {}", self.dtype, self.offset),
            });
        }
        let words = self.numel().div_ceil(2);
        self.view_bytes(self.byte_offset(), &[words], DType::U32, &self.label)
    }

    /// A zero-filled f32 tensor in a buffer of its own.
    pub fn zeros(ctx: &GpuContext, label: &str, shape: &[usize]) -> Result<Self> {
        Self::empty(ctx, label, shape, DType::F32)
    }

    /// A zero-filled tensor of any dtype in a buffer of its own.
    pub fn empty(ctx: &GpuContext, label: &str, shape: &[usize], dtype: DType) -> Result<Self> {
        let bytes = shape_bytes(label, shape, dtype)?;
        check_size(ctx, label, bytes)?;
        let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: padded_bytes(bytes),
            usage: USAGE,
            mapped_at_creation: false,
        });
        let storage = Self::new_storage(ctx, buffer, false, ctx.res.serial());
        Ok(Self::whole(storage, label, shape, dtype))
    }

    /// A tensor whose contents are unspecified, in a buffer from the calling thread's scratch
    /// pool: the buffer goes back to the pool of the thread that drops the last view of it, and
    /// that thread's next scratch tensor of its size class reuses it. For kernel outputs that
    /// every element of is written. A thread must record one batch at a time (submit or drop a
    /// batch before it records the next) when it keeps a scratch tensor past its batch.
    pub fn scratch(ctx: &GpuContext, label: &str, shape: &[usize], dtype: DType) -> Result<Self> {
        let bytes = shape_bytes(label, shape, dtype)?;
        check_size(ctx, label, bytes)?;
        let class = ScratchPool::class(bytes);
        let kept = ctx
            .res
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .mine()
            .take(class);
        let storage = match kept {
            Some((serial, buffer)) => Arc::new(Storage {
                buffer,
                serial,
                pooled: true,
                res: ctx.res.clone(),
            }),
            None => {
                let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("scratch"),
                    size: class.min(ctx.limits.max_buffer_size.max(padded_bytes(bytes))),
                    usage: USAGE,
                    mapped_at_creation: false,
                });
                Self::new_storage(ctx, buffer, true, ctx.res.serial())
            }
        };
        Ok(Self::whole(storage, label, shape, dtype))
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
        let storage = Self::new_storage(ctx, buffer, false, ctx.res.serial());
        Ok(Self::whole(storage, label, shape, dtype))
    }

    /// Uploads f32 data of the given shape.
    pub fn from_f32(ctx: &GpuContext, label: &str, shape: &[usize], data: &[f32]) -> Result<Self> {
        Self::from_bytes(ctx, label, shape, DType::F32, bytemuck::cast_slice(data))
    }

    /// Uploads f32 data rounded to f16 (round to nearest even), on any adapter.
    pub fn from_f32_as_f16(
        ctx: &GpuContext,
        label: &str,
        shape: &[usize],
        data: &[f32],
    ) -> Result<Self> {
        Self::from_f32_as_half(ctx, label, shape, DType::F16, data)
    }

    /// Uploads f32 data rounded to `dtype`, F16 or BF16 (round to nearest even), on any adapter.
    pub fn from_f32_as_half(
        ctx: &GpuContext,
        label: &str,
        shape: &[usize],
        dtype: DType,
        data: &[f32],
    ) -> Result<Self> {
        if !dtype.is_16_bit() {
            return Err(Error::Invalid {
                what: format!("16-bit tensor '{label}'"),
                expected: "dtype F16 or BF16".into(),
                found: format!("{dtype:?}"),
            });
        }
        let halves: Vec<u16> = data.iter().map(|&v| dtype.half_bits(v)).collect();
        Self::from_bytes(ctx, label, shape, dtype, bytemuck::cast_slice(&halves))
    }

    /// Uploads u32 data (token ids) of the given shape.
    pub fn from_u32(ctx: &GpuContext, label: &str, shape: &[usize], data: &[u32]) -> Result<Self> {
        Self::from_bytes(ctx, label, shape, DType::U32, bytemuck::cast_slice(data))
    }

    /// Overwrites the view's elements from the host (queued before the next submission).
    pub fn write_f32(&self, ctx: &GpuContext, data: &[f32]) -> Result<()> {
        self.write_bytes(ctx, DType::F32, bytemuck::cast_slice(data), data.len())
    }

    /// Overwrites the view's u32 elements from the host (queued before the next submission).
    pub fn write_u32(&self, ctx: &GpuContext, data: &[u32]) -> Result<()> {
        self.write_bytes(ctx, DType::U32, bytemuck::cast_slice(data), data.len())
    }

    /// Overwrites `len` elements from element `first` with `bytes` in the tensor's dtype
    /// (queued before the next submission): a weight uploaded piece by piece. `first` must start
    /// on a whole word; a piece that ends off one is padded with zeros into the buffer's padding
    /// or the next piece's place (written after it).
    pub fn write_piece(&self, ctx: &GpuContext, first: usize, bytes: &[u8]) -> Result<()> {
        self.expect_whole("write a piece")?;
        let size = self.dtype.size();
        let len = bytes.len() / size;
        let at = (first * size) as u64;
        if !bytes.len().is_multiple_of(size) || first + len > self.numel() || !at.is_multiple_of(4)
        {
            return Err(Error::Shape {
                op: "write a piece",
                what: format!("elements {first}..{} of '{}'", first + len, self.label),
                expected: format!(
                    "whole {:?} elements within its {}, from a whole word",
                    self.dtype,
                    self.numel()
                ),
                found: format!("{} bytes at byte {at}", bytes.len()),
            });
        }
        let offset = self.byte_offset() + at;
        match bytes.len() % 4 {
            0 => ctx.queue.write_buffer(self.buffer(), offset, bytes),
            _ => {
                let mut padded = bytes.to_vec();
                padded.resize(bytes.len().next_multiple_of(4), 0);
                ctx.queue.write_buffer(self.buffer(), offset, &padded);
            }
        }
        Ok(())
    }

    fn write_bytes(&self, ctx: &GpuContext, dtype: DType, bytes: &[u8], len: usize) -> Result<()> {
        self.expect_whole("write")?;
        if len != self.numel() || dtype != self.dtype {
            return Err(Error::Shape {
                op: "write",
                what: format!("data for '{}'", self.label),
                expected: format!("{} {:?} elements", self.numel(), self.dtype),
                found: format!("{len} {dtype:?} elements"),
            });
        }
        if !bytes.is_empty() {
            ctx.queue
                .write_buffer(self.buffer(), self.byte_offset(), bytes);
        }
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
        let blocks: Vec<GpuTensor> = self.row_blocks().into_iter().map(|(_, b)| b).collect();
        let parts = batch.read_async(&blocks.iter().collect::<Vec<_>>()).await?;
        Ok(parts.concat())
    }

    /// The first `rows` rows (outermost dimension) of this tensor, sharing its buffer.
    pub fn rows(&self, rows: usize) -> Result<Self> {
        self.row_range(0, rows)
    }

    /// Rows `start..start + rows` (outermost dimension) of this tensor, sharing its buffer.
    pub fn row_range(&self, start: usize, rows: usize) -> Result<Self> {
        let have = self.shape.first().copied().unwrap_or(0);
        if rows == 0 || start.checked_add(rows).is_none_or(|end| end > have) {
            return Err(Error::Shape {
                op: "rows",
                what: format!("'{}'", self.label),
                expected: format!("a non-empty range within 0..{have}"),
                found: format!("{start}..{}", start.saturating_add(rows)),
            });
        }
        if let Some(blocks) = &self.blocks {
            // The overlapping part of each block that overlaps the range.
            let mut parts = Vec::new();
            let mut first = 0;
            for block in blocks.iter() {
                let n = block.shape[0];
                let (lo, hi) = (start.max(first), (start + rows).min(first + n));
                if lo < hi {
                    parts.push(block.row_range(lo - first, hi - lo)?);
                }
                first += n;
            }
            return Self::from_row_blocks(&self.label, parts);
        }
        let row: usize = self.shape[1..].iter().product();
        let mut shape = self.shape.clone();
        shape[0] = rows;
        Ok(GpuTensor {
            offset: self.offset + start * row,
            shape,
            ..self.clone()
        })
    }

    /// Whether the tensor is split into row blocks (kernels bind them one by one).
    pub fn is_split(&self) -> bool {
        self.blocks.is_some()
    }

    /// The tensor as `(first row, block)` pairs: its row blocks, or itself whole.
    pub fn row_blocks(&self) -> Vec<(usize, GpuTensor)> {
        match &self.blocks {
            None => vec![(0, self.clone())],
            Some(blocks) => {
                let mut first = 0;
                blocks
                    .iter()
                    .map(|b| {
                        let at = first;
                        first += b.shape[0];
                        (at, b.clone())
                    })
                    .collect()
            }
        }
    }

    /// One tensor from row blocks of one dtype and one row shape, outermost dimensions
    /// concatenated (a single block is returned as it is, under `label`).
    pub fn from_row_blocks(label: &str, blocks: Vec<GpuTensor>) -> Result<Self> {
        let first = blocks.first().ok_or_else(|| Error::Invalid {
            what: format!("row blocks of '{label}'"),
            expected: "at least one".into(),
            found: "none".into(),
        })?;
        let inner = |t: &GpuTensor| t.shape.get(1..).unwrap_or_default().to_vec();
        let (dtype, row) = (first.dtype, inner(first));
        if let Some(b) = blocks
            .iter()
            .find(|b| b.dtype != dtype || b.shape.is_empty() || inner(b) != row || b.is_split())
        {
            return Err(Error::Shape {
                op: "row blocks",
                what: format!("block '{}' of '{label}'", b.label),
                expected: format!("an unsplit {dtype:?} block of rows {row:?}"),
                found: format!("{:?} {:?}", b.dtype, b.shape),
            });
        }
        if blocks.len() == 1 {
            return Ok(first.clone().labelled(label));
        }
        let mut shape = first.shape.clone();
        shape[0] = blocks.iter().map(|b| b.shape[0]).sum();
        Ok(GpuTensor {
            storage: first.storage.clone(),
            offset: first.offset,
            shape,
            dtype,
            label: label.to_string(),
            blocks: Some(blocks.into()),
        })
    }

    /// An error naming `op` when the tensor is split into row blocks.
    pub(crate) fn expect_whole(&self, op: &'static str) -> Result<()> {
        match &self.blocks {
            None => Ok(()),
            Some(blocks) => Err(Error::Shape {
                op,
                what: format!("'{}'", self.label),
                expected: "a tensor in one buffer".into(),
                found: format!("{} row blocks (split past the binding limit)", blocks.len()),
            }),
        }
    }

    /// The same elements seen with another shape of the same element count.
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
        if let Some(blocks) = &self.blocks {
            // Split tensors keep their rows: only the dimensions within a row may change.
            if shape.first() != self.shape.first() {
                self.expect_whole("reshape")?;
            }
            let parts = blocks
                .iter()
                .map(|b| {
                    let mut s = shape.to_vec();
                    s[0] = b.shape[0];
                    b.reshape(&s)
                })
                .collect::<Result<Vec<_>>>()?;
            return Self::from_row_blocks(&self.label, parts);
        }
        Ok(GpuTensor {
            shape: shape.to_vec(),
            ..self.clone()
        })
    }

    /// The same view under another label.
    pub fn labelled(mut self, label: &str) -> Self {
        self.label = label.to_string();
        self
    }
}
