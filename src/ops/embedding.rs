//! Embedding lookup of token ids.

use super::{as_u32, expect_rank};
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
    /// Padding.
    pub _pad: u32,
}

/// `out[t] = table[ids[t]]`; `table` is `[vocab, d]`, the result `[ids.len(), d]`.
/// Every id must be `< vocab`.
pub fn embedding(batch: &mut Batch, table: &GpuTensor, ids: &[u32]) -> Result<GpuTensor> {
    expect_rank("embedding", "table", table, 2..=2)?;
    let (vocab, d) = (table.shape()[0], table.shape()[1]);
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
    let ids_t = batch.upload_u32("token ids", ids)?;
    let ctx = batch.ctx();
    let out = GpuTensor::scratch(ctx, "embedding", &[ids.len(), d], DType::F32)?;
    let params = EmbeddingParams {
        tokens: as_u32("embedding", "tokens", ids.len())?,
        d: as_u32("embedding", "width", d)?,
        vocab: as_u32("embedding", "vocab", vocab)?,
        _pad: 0,
    };
    let wg = grid(ctx, "embedding", ((ids.len() * d) as u64).div_ceil(256))?;
    batch.dispatch(
        &shaders::EMBEDDING_LOOKUP,
        &[],
        Some(bytemuck::bytes_of(&params)),
        &[&table, &ids_t, &out],
        wg,
    )?;
    Ok(out)
}
