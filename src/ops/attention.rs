//! Fused multi-head attention (online softmax), causal or not, over a KV cache or a whole sequence.

use super::{as_u32, expect_rank, expect_shape};
use crate::error::{shape_err, Result};
use crate::gpu::batch::grid;
use crate::gpu::{Batch, GpuTensor};
use crate::shaders;

/// Mirrors `AttentionParams` in `attention.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AttentionParams {
    /// Query rows.
    pub n_q: u32,
    /// Valid key rows.
    pub n_kv: u32,
    /// Query heads.
    pub heads: u32,
    /// Key/value heads (divides `heads`).
    pub kv_heads: u32,
    /// Query/key head width.
    pub d_qk: u32,
    /// Value head width.
    pub d_v: u32,
    /// 1 for causal.
    pub causal: u32,
    /// Keys before the first query (causal offset).
    pub offset: u32,
    /// Score scale.
    pub scale: f32,
    /// Elements between query rows.
    pub q_row: u32,
    /// Elements between key rows.
    pub k_row: u32,
    /// Elements between value rows.
    pub v_row: u32,
    /// Elements between output rows.
    pub o_row: u32,
    /// First query element.
    pub q_off: u32,
    /// First key element.
    pub k_off: u32,
    /// First value element.
    pub v_off: u32,
    /// First output element.
    pub o_off: u32,
    /// Padding.
    pub _pad: [u32; 3],
}

/// Invocations per workgroup; each holds up to 16 output values, so `d_v <= 16 * WG`.
const WG: usize = 64;
const MAX_D_QK: usize = 1024;
const MAX_D_V: usize = 16 * WG;

/// How to attend.
#[derive(Clone, Copy, Debug)]
pub struct AttentionShape {
    /// Score scale, usually `1/sqrt(d_qk)`.
    pub scale: f32,
    /// Causal: query `i` (the last `n_q` of `n_kv` positions) sees keys `j <= n_kv − n_q + i`.
    pub causal: bool,
    /// Valid key rows (a KV cache may be larger than what is filled).
    pub n_kv: usize,
}

/// `o = softmax(q·kᵀ·scale [+ causal mask]) · v` per head.
/// q `[n_q, heads, d_qk]`, k `[cap, kv_heads, d_qk]`, v `[cap, kv_heads, d_v]` (first `n_kv` rows
/// valid) -> o `[n_q, heads, d_v]`.
pub fn attention(
    batch: &mut Batch,
    q: &GpuTensor,
    k: &GpuTensor,
    v: &GpuTensor,
    how: AttentionShape,
) -> Result<GpuTensor> {
    expect_rank("attention", "q", q, 3..=3)?;
    expect_rank("attention", "v", v, 3..=3)?;
    let shape = [q.shape[0], q.shape[1], v.shape[2]];
    let o = GpuTensor::zeros(batch.ctx(), "attention", &shape)?;
    attention_into(batch, q, k, v, &o, how)?;
    Ok(o)
}

/// As [`attention`], writing into `o`.
pub fn attention_into(
    batch: &mut Batch,
    q: &GpuTensor,
    k: &GpuTensor,
    v: &GpuTensor,
    o: &GpuTensor,
    how: AttentionShape,
) -> Result<()> {
    const OP: &str = "attention";
    expect_rank(OP, "q", q, 3..=3)?;
    expect_rank(OP, "k", k, 3..=3)?;
    expect_rank(OP, "v", v, 3..=3)?;
    let (n_q, heads, d_qk) = (q.shape[0], q.shape[1], q.shape[2]);
    let (cap, kv_heads) = (k.shape[0], k.shape[1]);
    let d_v = v.shape[2];
    expect_shape(OP, "k", k, &[cap, kv_heads, d_qk])?;
    expect_shape(OP, "v", v, &[cap, kv_heads, d_v])?;
    expect_shape(OP, "o", o, &[n_q, heads, d_v])?;
    if heads % kv_heads != 0 {
        return Err(shape_err(
            OP,
            "kv heads",
            format!("a divisor of {heads}"),
            kv_heads,
        ));
    }
    if how.n_kv == 0 || how.n_kv > cap {
        return Err(shape_err(OP, "valid keys", format!("1..={cap}"), how.n_kv));
    }
    if how.causal && n_q > how.n_kv {
        return Err(shape_err(
            OP,
            "causal queries",
            format!("<= keys ({})", how.n_kv),
            n_q,
        ));
    }
    if d_qk > MAX_D_QK {
        return Err(shape_err(
            OP,
            "query/key head width",
            format!("<= {MAX_D_QK}"),
            d_qk,
        ));
    }
    if d_v > MAX_D_V {
        return Err(shape_err(
            OP,
            "value head width",
            format!("<= {MAX_D_V}"),
            d_v,
        ));
    }
    let u = |what: &str, v: usize| as_u32(OP, what, v);
    let params = AttentionParams {
        n_q: u("queries", n_q)?,
        n_kv: u("keys", how.n_kv)?,
        heads: u("heads", heads)?,
        kv_heads: u("kv heads", kv_heads)?,
        d_qk: u("d_qk", d_qk)?,
        d_v: u("d_v", d_v)?,
        causal: how.causal as u32,
        offset: u("offset", how.n_kv - n_q.min(how.n_kv))?,
        scale: how.scale,
        q_row: u("q row", heads * d_qk)?,
        k_row: u("k row", kv_heads * d_qk)?,
        v_row: u("v row", kv_heads * d_v)?,
        o_row: u("o row", heads * d_v)?,
        ..Default::default()
    };
    let wg = grid(batch.ctx(), OP, (n_q * heads) as u64)?;
    batch.dispatch(
        &shaders::ATTENTION_FUSED,
        &[],
        Some(bytemuck::bytes_of(&params)),
        &[&q.buffer, &k.buffer, &v.buffer, &o.buffer],
        wg,
    );
    Ok(())
}
