//! Tensors past the binding limit, kept as row blocks, each in a buffer of its own.
//!
//! A storage binding can see at most `max_storage_buffer_binding_size` bytes (128 MiB by default
//! in WebGPU): a 150k-token embedding or a layer's stacked experts pass it. Such a tensor is
//! split along its outermost dimension into blocks that each fit; the kernels that take weights
//! (the products `x·Wᵀ`, the embedding gather, the experts) bind the blocks one at a time and
//! write each block's part of the output, so the values are those of the unsplit tensor.

use super::batch::Batch;
use super::context::GpuContext;
use super::tensor::{shape_bytes, DType, GpuTensor};
use crate::error::{Error, Result};

/// The most bytes one block may hold on `ctx`: the adapter's binding and buffer limits, or
/// `forced` when smaller (tests force tiny blocks to split every weight).
pub fn block_limit(ctx: &GpuContext, forced: Option<u64>) -> u64 {
    let limits = &ctx.limits;
    let adapter = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size);
    forced.map_or(adapter, |f| f.min(adapter))
}

/// Rows per block for a tensor of `shape` and `dtype` in blocks of at most `limit` bytes: a
/// multiple of 4 rows when 4 fit (so f16 blocks start on whole words). An error naming the
/// tensor when one row alone is past the limit.
pub fn rows_per_block(label: &str, shape: &[usize], dtype: DType, limit: u64) -> Result<usize> {
    let rows = shape.first().copied().unwrap_or(1).max(1);
    let row_shape = if shape.len() > 1 {
        &shape[1..]
    } else {
        &[1][..]
    };
    let row_bytes = shape_bytes(label, row_shape, dtype)?.max(1);
    let fit = limit / row_bytes;
    if fit == 0 || (shape.len() < 2 && shape_bytes(label, shape, dtype)? > limit) {
        return Err(Error::BufferTooLarge {
            label: label.to_string(),
            bytes: shape_bytes(label, shape, dtype)?,
            limit_name: if shape.len() < 2 {
                "max storage buffer binding size (a vector is never split)"
            } else {
                "max storage buffer binding size (for one row: a tensor splits only between rows)"
            },
            limit,
        });
    }
    let fit = fit.min(rows as u64) as usize;
    Ok(if fit >= 4 && fit < rows {
        fit / 4 * 4
    } else {
        fit
    })
}

/// Bytes of a weight read, converted and uploaded at a time: the host holds one piece of a
/// tensor, not the whole (a 150k-token embedding is over 500 MB in f32).
pub const PIECE_BYTES: usize = 16 << 20;

/// Rows per piece for rows of `row_bytes`: about [`PIECE_BYTES`], a multiple of `multiple`.
pub fn piece_rows(row_bytes: usize, multiple: usize) -> usize {
    let multiple = multiple.max(1);
    (PIECE_BYTES / row_bytes.max(1) / multiple).max(1) * multiple
}

/// Uploads `data` of `shape` (f32 values, stored as `dtype`: F32 or F16) in one buffer when it
/// fits `limit` bytes, else as row blocks of at most `limit` bytes.
pub fn upload_rows(
    ctx: &GpuContext,
    label: &str,
    shape: &[usize],
    dtype: DType,
    data: &[f32],
    limit: u64,
) -> Result<GpuTensor> {
    let row: usize = shape.iter().skip(1).product();
    let rows = shape.first().copied().unwrap_or(1);
    if data.len() != rows * row {
        return Err(crate::error::shape_err(
            "upload",
            format!("data for '{label}' of shape {shape:?}"),
            format!("{} elements", rows * row),
            format!("{} elements", data.len()),
        ));
    }
    upload_rows_from(ctx, label, shape, dtype, limit, |r| {
        Ok(data[r.start * row..r.end * row].to_vec())
    })
}

/// As [`upload_rows`], each block filled piece by piece (about [`PIECE_BYTES`]): `piece(rows)`
/// gives the f32 values of those rows (read from a file as they are needed).
pub fn upload_rows_from(
    ctx: &GpuContext,
    label: &str,
    shape: &[usize],
    dtype: DType,
    limit: u64,
    mut piece: impl FnMut(std::ops::Range<usize>) -> Result<Vec<f32>>,
) -> Result<GpuTensor> {
    let per_block = rows_per_block(label, shape, dtype, limit)?;
    let rows = shape.first().copied().unwrap_or(1);
    let row: usize = shape.iter().skip(1).product();
    // Multiples of 4 rows, so an f16 piece starts on a whole word.
    let step = piece_rows(row * dtype.size(), 4);
    let mut blocks = Vec::new();
    for first in (0..rows.max(1)).step_by(per_block.max(1)) {
        let n = per_block.min(rows - first);
        let mut dims = shape.to_vec();
        if let Some(d) = dims.first_mut() {
            *d = n;
        }
        let name = match per_block >= rows {
            true => label.to_string(),
            false => format!("{label}[{first}..{}]", first + n),
        };
        let block = GpuTensor::empty(ctx, &name, &dims, dtype)?;
        for at in (0..n).step_by(step) {
            let end = (at + step).min(n);
            let values = piece(first + at..first + end)?;
            if values.len() != (end - at) * row {
                return Err(crate::error::shape_err(
                    "upload",
                    format!(
                        "rows {}..{} of '{label}' {shape:?}",
                        first + at,
                        first + end
                    ),
                    format!("{} elements", (end - at) * row),
                    format!("{} elements", values.len()),
                ));
            }
            match dtype {
                DType::F16 | DType::BF16 => {
                    let halves: Vec<u16> = values.iter().map(|&v| dtype.half_bits(v)).collect();
                    block.write_piece(ctx, at * row, bytemuck::cast_slice(&halves))?;
                }
                _ => block.write_piece(ctx, at * row, bytemuck::cast_slice(&values))?,
            }
            ctx.release_uploads();
        }
        blocks.push(block);
    }
    match blocks.len() {
        1 => Ok(blocks.remove(0)),
        _ => GpuTensor::from_row_blocks(label, blocks),
    }
}

/// `t` itself when it fits `limit` bytes, else a copy of it as row blocks of at most `limit`
/// bytes, recorded into `b` (for weights built on the GPU, as MLA's absorbed matrices).
pub fn split_rows(b: &mut Batch, t: &GpuTensor, limit: u64) -> Result<GpuTensor> {
    let per_block = rows_per_block(t.label(), t.shape(), t.dtype(), limit)?;
    let rows = t.shape().first().copied().unwrap_or(1);
    if per_block >= rows || t.is_split() {
        return Ok(t.clone());
    }
    let row: usize = t.shape().iter().skip(1).product();
    let mut blocks = Vec::new();
    for first in (0..rows).step_by(per_block) {
        let n = per_block.min(rows - first);
        let mut dims = t.shape().to_vec();
        dims[0] = n;
        let name = format!("{}[{first}..{}]", t.label(), first + n);
        let block = GpuTensor::empty(b.ctx(), &name, &dims, t.dtype())?;
        b.copy_elements(t, first * row, &block, 0, n * row)?;
        blocks.push(block);
    }
    GpuTensor::from_row_blocks(t.label(), blocks)
}
