//! 8-bit weights: q8_0 blocks (32 weights share one scale, as llama.cpp's q8_0), quantized on
//! the host and dequantized inside the product kernel with f32 accumulation
//! (`matmul_q8.wgsl`). The bytes and the scales are two tensors with the same rows, so a row of
//! bytes is whole vec4s and both split into row blocks alike. Scales are f32, so no adapter
//! needs shader-f16: 36 bytes per 32 weights, 1.125 bytes a weight against 4 in f32.
//!
//! The model loader does not use it yet. On lavapipe a product of one row by 49152 rows of 576
//! runs 1.89× as fast as the f32 one (9.6 against 18.2 ms; rows of 512: 1.72×), a step loading
//! a block's 32 bytes as two vec4s. With the scales inside each row, so that rows were not whole
//! vec4s and a step loaded one word as the f32 kernel loads one vec4, it ran at 0.72–0.8×.

use super::expect_rank;
use crate::error::{shape_err, Error, Result};
use crate::gpu::{Batch, DType, GpuTensor};
use crate::shaders;

/// Weights per block (and per scale).
pub const Q8_BLOCK: usize = 32;

/// A matrix `[rows, k]` in q8: `bytes` `[rows, k/4]` (four signed bytes per word,
/// little-endian) and `scales` `[rows, k/32]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Q8Host {
    /// The weights as signed bytes, four per word.
    pub bytes: Vec<u32>,
    /// One scale per block of 32 weights.
    pub scales: Vec<f32>,
}

/// `data` `[rows, k]` (k a multiple of 32) in q8: each block's scale is `max|w| / 127` and its
/// bytes `round(w / scale)` (half away from zero), as llama.cpp's reference q8_0 quantizer; an
/// all-zero block has scale 0.
pub fn quantize_q8(data: &[f32], k: usize) -> Result<Q8Host> {
    if k == 0 || !k.is_multiple_of(Q8_BLOCK) || !data.len().is_multiple_of(k) {
        return Err(shape_err(
            "quantize q8",
            "row length",
            "a multiple of 32 that divides the data",
            format!("{k} for {} values", data.len()),
        ));
    }
    let mut out = Q8Host {
        bytes: Vec::with_capacity(data.len() / 4),
        scales: Vec::with_capacity(data.len() / Q8_BLOCK),
    };
    for block in data.chunks(Q8_BLOCK) {
        let amax = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = amax / 127.0;
        let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        let byte = |v: f32| (v * inv).round().clamp(-127.0, 127.0) as i8 as u8;
        for four in block.chunks(4) {
            out.bytes.push(u32::from_le_bytes([
                byte(four[0]),
                byte(four[1]),
                byte(four[2]),
                byte(four[3]),
            ]));
        }
        out.scales.push(scale);
    }
    Ok(out)
}

/// The values the kernel multiplies by: `scale · byte` for each weight, in order.
pub fn dequantize_q8(q: &Q8Host) -> Vec<f32> {
    q.bytes
        .chunks(Q8_BLOCK / 4)
        .zip(&q.scales)
        .flat_map(|(words, &scale)| {
            words
                .iter()
                .flat_map(move |w| w.to_le_bytes().map(|b| scale * (b as i8) as f32))
        })
        .collect()
}

/// `x·Wᵀ` for `x` `[M, K]` f32 and W in q8 of `n` rows: `bytes` `[n, K/4]` u32 and `scales`
/// `[n, K/32]` f32 (from [`quantize_q8`]), whole or split into the same row blocks: `[M, n]`.
pub fn matmul_q8(
    batch: &mut Batch,
    x: &GpuTensor,
    (bytes, scales): (&GpuTensor, &GpuTensor),
) -> Result<GpuTensor> {
    const OP: &str = "matmul_q8";
    expect_rank(OP, "x", x, 2..=2)?;
    let (m, k) = (x.shape()[0], x.shape()[1]);
    if k == 0 || !k.is_multiple_of(Q8_BLOCK) {
        return Err(shape_err(OP, "x columns", "a multiple of 32", k));
    }
    let n = bytes.shape().first().copied().unwrap_or(0);
    if bytes.dtype() != DType::U32 || bytes.shape() != [n, k / 4] {
        return Err(shape_err(
            OP,
            format!("bytes '{}'", bytes.label()),
            format!("[N, {}] u32", k / 4),
            format!("{:?} {:?}", bytes.shape(), bytes.dtype()),
        ));
    }
    if scales.dtype() != DType::F32 || scales.shape() != [n, k / Q8_BLOCK] {
        return Err(shape_err(
            OP,
            format!("scales '{}'", scales.label()),
            format!("[{n}, {}] f32", k / Q8_BLOCK),
            format!("{:?} {:?}", scales.shape(), scales.dtype()),
        ));
    }
    let (byte_blocks, scale_blocks) = (bytes.row_blocks(), scales.row_blocks());
    let alike = byte_blocks.len() == scale_blocks.len()
        && byte_blocks
            .iter()
            .zip(&scale_blocks)
            .all(|((a, x), (b, y))| a == b && x.shape()[0] == y.shape()[0]);
    if !alike {
        return Err(shape_err(
            OP,
            "row blocks",
            "bytes and scales split alike",
            format!("{} and {} blocks", byte_blocks.len(), scale_blocks.len()),
        ));
    }
    let c = GpuTensor::scratch(batch.ctx(), OP, &[m, n], DType::F32)?;
    let max = batch.ctx().limits.max_compute_workgroups_per_dimension as u64;
    for ((first, q), (_, s)) in byte_blocks.into_iter().zip(scale_blocks) {
        let rows = q.shape()[0];
        let params = super::matmul::block_params(OP, (m, rows, k), n, first)?;
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
            &[x, &q, &s, &c],
            [groups as u32, 1, m as u32],
        )?;
    }
    Ok(c)
}
