//! Embedding lookup of token ids.

use super::as_u32;
use crate::error::{Error, Result};
use crate::gpu::batch::grid;
use crate::gpu::{Batch, DType, GpuTensor};
use crate::shaders;

/// Mirrors `EmbeddingParams` in `embedding.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct EmbeddingParams {
    /// Tokens.
    pub tokens: u32,
    /// Embedding width.
    pub d: u32,
    /// Vocabulary size.
    pub vocab: u32,
    /// The first row of the bound block of the table.
    pub first_row: u32,
    /// Rows in the bound block.
    pub rows: u32,
    /// Padding.
    pub _pad: [u32; 3],
}

/// `out[t] = table[ids[t]]`; `table` is `[vocab, d]`, the result `[ids.len(), d]`.
/// Every id must be `< vocab`.
pub fn embedding(batch: &mut Batch, table: &GpuTensor, ids: &[u32]) -> Result<GpuTensor> {
    expect_table(table)?;
    let ids_t = upload_ids(batch, ids, table.shape()[0])?;
    embedding_ids(batch, table, &ids_t)
}

/// Checks `ids` (at least one, each `< vocab`) and uploads them: `[tokens]` u32.
pub fn upload_ids(batch: &mut Batch, ids: &[u32], vocab: usize) -> Result<GpuTensor> {
    if ids.is_empty() {
        return Err(crate::error::shape_err(
            "embedding",
            "token ids",
            "at least one",
            0,
        ));
    }
    if let Some((pos, &id)) = ids.iter().enumerate().find(|(_, &id)| id as usize >= vocab) {
        return Err(Error::OutOfRange {
            what: format!("token id at position {pos}"),
            found: id as u64,
            bound: vocab as u64,
        });
    }
    batch.upload_u32("token ids", ids)
}

/// As [`embedding`] with the ids already on the GPU (`[tokens]` u32, e.g. the sampler's
/// output); an id past the vocabulary reads the last row (the kernel clamps it). A table split
/// into row blocks takes one dispatch per block.
pub fn embedding_ids(batch: &mut Batch, table: &GpuTensor, ids_t: &GpuTensor) -> Result<GpuTensor> {
    expect_table(table)?;
    if ids_t.dtype() != DType::U32 || ids_t.shape().len() != 1 || ids_t.numel() == 0 {
        return Err(crate::error::shape_err(
            "embedding",
            format!("ids '{}'", ids_t.label()),
            "a non-empty [tokens] u32 tensor",
            format!("{:?} {:?}", ids_t.shape(), ids_t.dtype()),
        ));
    }
    let (vocab, d) = (table.shape()[0], table.shape()[1]);
    let n = ids_t.numel();
    let ctx = batch.ctx();
    let out = GpuTensor::scratch(ctx, "embedding", &[n, d], DType::F32)?;
    let wg = grid(ctx, "embedding", ((n * d) as u64).div_ceil(256))?;
    const F16_WORDS: &[(&str, f64)] = &[("BF16", 0.0)];
    const BF16_WORDS: &[(&str, f64)] = &[("BF16", 1.0)];
    let (kernel, constants) = match table.dtype() {
        DType::F16 if ctx.has_f16() => (&shaders::EMBEDDING_LOOKUP_F16, &[][..]),
        DType::F16 => (&shaders::EMBEDDING_LOOKUP_HALF, F16_WORDS),
        DType::BF16 => (&shaders::EMBEDDING_LOOKUP_HALF, BF16_WORDS),
        _ => (&shaders::EMBEDDING_LOOKUP, &[][..]),
    };
    for (first, block) in table.row_blocks() {
        let params = EmbeddingParams {
            tokens: as_u32("embedding", "tokens", n)?,
            d: as_u32("embedding", "width", d)?,
            vocab: as_u32("embedding", "vocab", vocab)?,
            first_row: as_u32("embedding", "block's first row", first)?,
            rows: as_u32("embedding", "block's rows", block.shape()[0])?,
            _pad: [0; 3],
        };
        batch.dispatch(
            kernel,
            constants,
            Some(bytemuck::bytes_of(&params)),
            &[&block, ids_t, &out],
            wg,
        )?;
    }
    Ok(out)
}

/// A `[vocab, d]` table of f32, f16 or bf16.
fn expect_table(table: &GpuTensor) -> Result<()> {
    super::expect_rank_any_dtype("embedding", "table", table, 2..=2)?;
    if table.dtype() == DType::U32 {
        return Err(crate::error::shape_err(
            "embedding",
            format!("table '{}' dtype", table.label()),
            "F32, F16 or BF16",
            "U32",
        ));
    }
    Ok(())
}
