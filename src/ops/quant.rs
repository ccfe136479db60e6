//! 8-bit weights: q8_0 blocks (32 weights share one scale, as llama.cpp's q8_0), quantized on
//! the host and dequantized inside the product kernel with f32 accumulation
//! (`matmul_q8.wgsl`). Scales are stored as f32, so no adapter needs shader-f16: 36 bytes per
//! 32 weights, 1.125 bytes a weight against 4 in f32.
//!
//! The model loader does not use it yet. This first kernel unpacks each byte to f32 before its
//! multiply-add. On lavapipe that costs more than the bytes it saves: a 49152×576 product runs
//! at 0.8× the f32 matrix-vector product (22 against 18 ms).

use super::{as_u32, expect_rank, MatmulParams};
use crate::error::{shape_err, Error, Result};
use crate::gpu::{Batch, DType, GpuTensor};
use crate::shaders;

/// Weights per block (and per scale).
pub const Q8_BLOCK: usize = 32;

/// u32 words per row of a q8 matrix of `k` columns: `k/4` of bytes, then `k/32` of scales.
pub fn q8_row_words(k: usize) -> usize {
    k / 4 + k / Q8_BLOCK
}

/// `data` `[rows, k]` (k a multiple of 32) in the kernel's layout, row by row: each block's
/// scale is `max|w| / 127` and its bytes `round(w / scale)` (half away from zero), as
/// llama.cpp's reference q8_0 quantizer; an all-zero block has scale 0.
pub fn quantize_q8(data: &[f32], k: usize) -> Result<Vec<u32>> {
    if k == 0 || !k.is_multiple_of(Q8_BLOCK) || !data.len().is_multiple_of(k) {
        return Err(shape_err(
            "quantize q8",
            "row length",
            "a multiple of 32 that divides the data",
            format!("{k} for {} values", data.len()),
        ));
    }
    let mut out = Vec::with_capacity(data.len() / k * q8_row_words(k));
    for row in data.chunks(k) {
        let mut scales = Vec::with_capacity(k / Q8_BLOCK);
        for block in row.chunks(Q8_BLOCK) {
            let amax = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let scale = amax / 127.0;
            let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            for four in block.chunks(4) {
                let byte = |v: f32| (v * inv).round().clamp(-127.0, 127.0) as i8 as u8;
                out.push(u32::from_le_bytes([
                    byte(four[0]),
                    byte(four[1]),
                    byte(four[2]),
                    byte(four[3]),
                ]));
            }
            scales.push(scale.to_bits());
        }
        out.extend(scales);
    }
    Ok(out)
}

/// The values the kernel multiplies by: `scale · byte` for each weight of `words` (rows of
/// [`q8_row_words`]`(k)`), `[rows, k]`.
pub fn dequantize_q8(words: &[u32], k: usize) -> Vec<f32> {
    let row_words = q8_row_words(k);
    let mut out = Vec::with_capacity(words.len() / row_words.max(1) * k);
    for row in words.chunks(row_words) {
        let (bytes, scales) = row.split_at(k / 4);
        for (i, word) in bytes.iter().enumerate() {
            let scale = f32::from_bits(scales[i * 4 / Q8_BLOCK]);
            out.extend(word.to_le_bytes().map(|b| scale * (b as i8) as f32));
        }
    }
    out
}

/// `x·Wᵀ` for `x` `[M, K]` f32 and `w` a q8 matrix of `n` rows of `k` columns (a U32 tensor
/// `[n, q8_row_words(k)]` from [`quantize_q8`], whole or split into row blocks): `[M, n]`.
pub fn matmul_q8(batch: &mut Batch, x: &GpuTensor, w: &GpuTensor, k: usize) -> Result<GpuTensor> {
    const OP: &str = "matmul_q8";
    expect_rank(OP, "x", x, 2..=2)?;
    let (m, xk) = (x.shape()[0], x.shape()[1]);
    let words = q8_row_words(k);
    if xk != k || !k.is_multiple_of(Q8_BLOCK) || k == 0 {
        return Err(shape_err(
            OP,
            "x columns",
            format!("K = {k}, a multiple of 32"),
            xk,
        ));
    }
    if w.dtype() != DType::U32 || w.shape().len() != 2 || w.shape()[1] != words {
        return Err(shape_err(
            OP,
            format!("weights '{}'", w.label()),
            format!("[N, {words}] u32 (q8 rows of {k})"),
            format!("{:?} {:?}", w.shape(), w.dtype()),
        ));
    }
    let n = w.shape()[0];
    let c = GpuTensor::scratch(batch.ctx(), OP, &[m, n], DType::F32)?;
    let max = batch.ctx().limits.max_compute_workgroups_per_dimension as u64;
    for (first, block) in w.row_blocks() {
        let rows = block.shape()[0];
        let params = MatmulParams {
            m: as_u32(OP, "M", m)?,
            n: as_u32(OP, "N", rows)?,
            k: as_u32(OP, "K", k)?,
            batch: 1,
            a_stride: 0,
            b_stride: 0,
            c_stride: 0,
            ldc: as_u32(OP, "N", n)?,
            c_offset: as_u32(OP, "C column", first)?,
            _pad: [0; 3],
        };
        let groups = (rows as u64).div_ceil(64);
        if groups > max || m as u64 > max {
            return Err(Error::DispatchTooLarge {
                op: OP,
                what: if groups > max { "columns" } else { "rows" },
                found: groups.max(m as u64),
                limit: max,
            });
        }
        batch.dispatch(
            &shaders::MATVEC_Q8,
            &[],
            Some(bytemuck::bytes_of(&params)),
            &[x, &block, &c],
            [groups as u32, 1, m as u32],
        )?;
    }
    Ok(c)
}
