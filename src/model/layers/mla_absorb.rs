//! MLA's absorbed matrices, built at load with the GPU's matrix products (DeepSeek-V3's are
//! 60 layers of 128 heads of 512×128×1536 products: too much for the CPU at load).
//!
//! - query: per head `[W_UKᵀ·Wq_nope ; Wq_pe]`, `[h·(kv_lora + rope), q_in]`;
//! - output: per head `Wo_h·W_UV`, `[d, h·kv_lora]`.

use crate::error::Result;
use crate::gpu::{Batch, GpuTensor};
use crate::model::config::mla::MlaShape;
use crate::ops;

/// The absorbed (query, output) matrices in f32 from the f32 weights `kv_b`
/// `[h·(nope+v), kv_lora]`, `q` `[h·(nope+rope), q_in]` and `o` `[d, h·v]`, recorded into `b`.
pub fn absorbed_matrices(
    b: &mut Batch,
    shape: &MlaShape,
    kv_b: &GpuTensor,
    q: &GpuTensor,
    o: &GpuTensor,
) -> Result<(GpuTensor, GpuTensor)> {
    let ctx = b.ctx();
    let (d, h, r) = (shape.d, shape.heads, shape.kv_lora_rank);
    let (nope, rope, v) = (
        shape.qk_nope_head_dim,
        shape.qk_rope_head_dim,
        shape.v_head_dim,
    );
    let (qk, q_in) = (nope + rope, q.shape()[1]);
    let q_abs = GpuTensor::zeros(ctx, "absorbed q", &[h * (r + rope), q_in])?;
    // [h, d, r]: head hd's output block, moved to [d, h, r] at the end.
    let o_blocks = GpuTensor::zeros(ctx, "absorbed o blocks", &[h, d, r])?;
    // Wo's columns of each head, as rows: [h, d, v].
    let wo = ops::permute01(b, &o.reshape(&[d, h, v])?)?;
    for hd in 0..h {
        let head = hd * (nope + v);
        // W_UKᵀ [r, nope] (a transpose: the permute of a [nope, r, 1] tensor).
        let uk = b.bindable(&kv_b.row_range(head, nope)?)?;
        let uk_t = ops::permute01(b, &uk.reshape(&[nope, r, 1])?)?.reshape(&[r, nope])?;
        let wq_nope = b.bindable(&q.row_range(hd * qk, nope)?)?;
        let q_block = ops::matmul(b, &uk_t, &wq_nope, false)?;
        b.copy_elements(&q_block, 0, &q_abs, hd * (r + rope) * q_in, r * q_in)?;
        b.copy_elements(
            q,
            (hd * qk + nope) * q_in,
            &q_abs,
            (hd * (r + rope) + r) * q_in,
            rope * q_in,
        )?;
        let wo_h = b.bindable(&wo.row_range(hd, 1)?.reshape(&[d, v])?)?;
        let uv = b.bindable(&kv_b.row_range(head + nope, v)?)?;
        let o_block = ops::matmul(b, &wo_h, &uv, false)?;
        b.copy_elements(&o_block, 0, &o_blocks, hd * d * r, d * r)?;
    }
    let o_abs = ops::permute01(b, &o_blocks)?.reshape(&[d, h * r])?;
    Ok((q_abs, o_abs))
}
