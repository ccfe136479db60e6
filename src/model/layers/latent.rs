//! Three-phase latent attention as a model layer: causal (chunked, constant-size decode state)
//! and bidirectional (the seeds' three equations). The equations are in docs/latent-attention.md.

use crate::error::{Error, Result};
use crate::gpu::{Batch, DType, GpuContext, GpuTensor};
use crate::model::formats::weights::WeightFile;
use crate::model::layers::upload::{load, load_matrix};
use crate::ops::{
    self, AttentionShape, BinaryOp, GatherState, QkvExtras, RopeMode, RopeTable, Weight,
};

/// The four `[d, d]` projections of one phase.
pub struct Projections {
    /// Query projection `[d, d]`.
    pub q: Weight,
    /// Key projection `[d, d]`.
    pub k: Weight,
    /// Value projection `[d, d]`.
    pub v: Weight,
    /// Output projection `[d, d]`.
    pub o: Weight,
}

impl Projections {
    fn load(ctx: &GpuContext, file: &mut WeightFile, prefix: &str, d: usize) -> Result<Self> {
        let mut w = |n: &str| load_matrix(ctx, file, &format!("{prefix}.{n}.weight"), &[d, d]);
        Ok(Projections {
            q: w("q_proj")?,
            k: w("k_proj")?,
            v: w("v_proj")?,
            o: w("o_proj")?,
        })
    }
}

/// Sizes of a latent attention layer.
#[derive(Clone, Copy, Debug)]
pub struct LatentShape {
    /// Model width d.
    pub d: usize,
    /// Heads h.
    pub heads: usize,
    /// Latents M.
    pub latents: usize,
    /// Chunk length C.
    pub chunk: usize,
    /// Rotated values per head in the local attention.
    pub rope_dim: usize,
    /// Whether phase 2 runs.
    pub synthesis: bool,
}

impl LatentShape {
    /// Head width d/h (0 for 0 heads, which [`LatentShape::validate`] refuses).
    pub fn dh(&self) -> usize {
        self.d.checked_div(self.heads).unwrap_or(0)
    }

    /// Checks the sizes: all positive, the heads divide the width, an even RoPE width within
    /// a head; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, expected: String, found: usize| Error::Invalid {
            what: format!("latent attention {what}"),
            expected,
            found: found.to_string(),
        };
        for (what, v) in [
            ("width", self.d),
            ("heads", self.heads),
            ("latents", self.latents),
            ("chunk", self.chunk),
        ] {
            if v == 0 {
                return Err(bad(what, "a positive integer".into(), v));
            }
        }
        if !self.d.is_multiple_of(self.heads) {
            return Err(bad(
                "heads",
                format!("a divisor of the width {}", self.d),
                self.heads,
            ));
        }
        if self.rope_dim == 0 || !self.rope_dim.is_multiple_of(2) || self.rope_dim > self.dh() {
            let expected = format!("an even RoPE width in 2..={}", self.dh());
            return Err(bad("rope_dim", expected, self.rope_dim));
        }
        Ok(())
    }

    /// Bytes of one layer's decode state ([`LatentLayer::new_state`]): keys and values of the
    /// latents and a chunk `[M + C, h, dh]`, the chunk's own `[C, h, dh]`, and the gather state
    /// (max and sum `[M, h]`, accumulator and summary `[M, h, dh]`), all f32.
    pub fn state_bytes(&self) -> u64 {
        let (m, c, h, dh) = (self.latents, self.chunk, self.heads, self.dh());
        let floats = 2 * (m + c) * h * dh + 2 * c * h * dh + 2 * m * h + 2 * m * h * dh;
        4 * floats as u64
    }
}

/// Weights of one latent attention layer.
pub struct LatentLayer {
    /// Sizes.
    pub shape: LatentShape,
    /// Learnable latents `[M, d]`.
    latents: GpuTensor,
    /// Phase 1: latent queries, token keys and values (also the local keys/values), output.
    gather: Projections,
    /// Phase 2: latent self-attention.
    synth: Option<Projections>,
    /// Phase 3: token queries, latent keys and values, output.
    broadcast: Projections,
    /// The token-side products of a causal forward, stacked: `broadcast.q`, `gather.k`,
    /// `gather.v` `[3d, d]` (those three are views of it).
    qkv: Weight,
    /// Zeros `[(3h + 2)·dh]`: no bias and no norm for the qkv step.
    qkv_aux: GpuTensor,
    /// `latents · gather.qᵀ` `[M, h, dh]`, constant.
    q1: GpuTensor,
    /// 0 on the first `rope_dim` values of each head, 1 elsewhere `[M, h, dh]`: keeps latent
    /// keys out of the rotated subspace, so scores against latents carry no position.
    key_mask: GpuTensor,
}

/// The constant-size decode state of one causal latent layer:
/// O(M·d + C·d) numbers whatever the context length.
pub struct LatentState {
    /// Keys `[M + C, h, dh]`: rows `0..M` the latents' keys, rows `M..` the current chunk's
    /// tokens' rotated keys.
    pub keys: GpuTensor,
    /// Values `[M + C, h, dh]`, laid out as `keys`.
    pub values: GpuTensor,
    /// The current chunk's unrotated token keys `[C, h, dh]` (what the gather reads).
    pub chunk_keys: GpuTensor,
    /// The current chunk's token values `[C, h, dh]`.
    pub chunk_values: GpuTensor,
    /// The gather's running online-softmax state over all completed chunks.
    pub gather: GatherState,
}

impl LatentState {
    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.keys.bytes()
            + self.values.bytes()
            + self.chunk_keys.bytes()
            + self.chunk_values.bytes()
            + self.gather.bytes()
    }
}

impl LatentLayer {
    /// Loads `{prefix}.latents`, `{prefix}.gather.*`, `{prefix}.synth.*` (when synthesis is on) and
    /// `{prefix}.broadcast.*`.
    pub fn load(
        ctx: &GpuContext,
        file: &mut WeightFile,
        shape: LatentShape,
        prefix: &str,
    ) -> Result<Self> {
        shape.validate()?;
        let d = shape.d;
        let latents = load(ctx, file, &format!("{prefix}.latents"), &[shape.latents, d])?;
        let mut gather = Projections::load(ctx, file, &format!("{prefix}.gather"), d)?;
        let synth = if shape.synthesis {
            Some(Projections::load(ctx, file, &format!("{prefix}.synth"), d)?)
        } else {
            None
        };
        let mut broadcast = Projections::load(ctx, file, &format!("{prefix}.broadcast"), d)?;
        let (m, h, dh) = (shape.latents, shape.heads, shape.dh());
        // One product for the token side's queries, keys and values; the three projections
        // become views of it when the adapter can bind them there. Split or quantized
        // projections are stacked as they are: their row blocks, in order.
        let parts = [&broadcast.q, &gather.k, &gather.v];
        let label = format!("{prefix}.qkv_proj");
        let whole: Option<Vec<&GpuTensor>> = parts
            .iter()
            .map(|w| w.dense().filter(|t| !t.is_split()))
            .collect();
        let qkv = if let Some(whole) = whole {
            let dtype = whole[0].dtype();
            let qkv = GpuTensor::empty(ctx, &label, &[3 * d, d], dtype)?;
            let mut b = Batch::new(ctx);
            for (i, w) in whole.into_iter().enumerate() {
                b.copy_elements(w, 0, &qkv, i * d * d, d * d)?;
            }
            b.submit()?;
            let align = ctx.limits.min_storage_buffer_offset_alignment as usize;
            if (d * d * dtype.size()).is_multiple_of(align) {
                broadcast.q = Weight::Dense(qkv.row_range(0, d)?);
                gather.k = Weight::Dense(qkv.row_range(d, d)?);
                gather.v = Weight::Dense(qkv.row_range(2 * d, d)?);
            }
            Weight::Dense(qkv)
        } else {
            // Split or quantized: their row blocks, in order.
            Weight::stack_blocks(&label, &parts)?
        };
        let qkv_aux = GpuTensor::zeros(ctx, "latent qkv aux", &[(3 * h + 2) * dh])?;
        let mut b = Batch::new(ctx);
        let q1 = ops::linear(&mut b, &latents, &gather.q)?.reshape(&[m, h, dh])?;
        b.submit()?;
        let mask: Vec<f32> = (0..m * h * dh)
            .map(|i| if i % dh < shape.rope_dim { 0.0 } else { 1.0 })
            .collect();
        let key_mask = GpuTensor::from_f32(ctx, "latent key mask", &[m, h, dh], &mask)?;
        Ok(LatentLayer {
            shape,
            latents,
            gather,
            synth,
            broadcast,
            qkv,
            qkv_aux,
            q1,
            key_mask,
        })
    }

    fn scale(&self) -> f32 {
        1.0 / (self.shape.dh() as f32).sqrt()
    }

    /// Phases 2 and 3's latent side: from the gathered summary `g` `[M, h, dh]` to the latents'
    /// keys and values `[M, h, dh]` (keys masked out of the rotated subspace).
    /// `L1 = L + g·Wo1ᵀ`; `L2 = L1 + Attn(L1·Wq2ᵀ, L1·Wk2ᵀ, L1·Wv2ᵀ)·Wo2ᵀ`;
    /// `K3 = L2·Wk3ᵀ ⊙ mask`, `V3 = L2·Wv3ᵀ`.
    fn latent_keys_values(&self, b: &mut Batch, g: &GpuTensor) -> Result<(GpuTensor, GpuTensor)> {
        let (m, h, dh, d) = (
            self.shape.latents,
            self.shape.heads,
            self.shape.dh(),
            self.shape.d,
        );
        let g = g.reshape(&[m, d])?;
        let gathered = ops::linear(b, &g, &self.gather.o)?;
        let l1 = ops::binary(b, BinaryOp::Add, &self.latents, &gathered)?;
        let l2 = self.synthesis(b, &l1)?;
        let k3 = ops::linear(b, &l2, &self.broadcast.k)?.reshape(&[m, h, dh])?;
        let k3 = ops::binary(b, BinaryOp::Mul, &k3, &self.key_mask)?;
        let v3 = ops::linear(b, &l2, &self.broadcast.v)?.reshape(&[m, h, dh])?;
        Ok((k3, v3))
    }

    /// Phase 2 on `l1` `[M, d]` (identity when synthesis is off).
    fn synthesis(&self, b: &mut Batch, l1: &GpuTensor) -> Result<GpuTensor> {
        let Some(p) = &self.synth else {
            return Ok(l1.clone());
        };
        let (m, h, dh, d) = (
            self.shape.latents,
            self.shape.heads,
            self.shape.dh(),
            self.shape.d,
        );
        let q = ops::linear(b, l1, &p.q)?.reshape(&[m, h, dh])?;
        let k = ops::linear(b, l1, &p.k)?.reshape(&[m, h, dh])?;
        let v = ops::linear(b, l1, &p.v)?.reshape(&[m, h, dh])?;
        let how = AttentionShape {
            scale: self.scale(),
            causal: false,
            n_kv: m,
            window: 0,
        };
        let a = ops::attention(b, &q, &k, &v, how)?.reshape(&[m, d])?;
        let o = ops::linear(b, &a, &p.o)?;
        ops::binary(b, BinaryOp::Add, l1, &o)
    }

    /// Bytes of weights one decoded token reads: its queries, keys and values and the output
    /// (the latent side, run once per chunk, is not counted).
    pub fn decode_weight_bytes(&self) -> u64 {
        self.qkv.bytes() + self.broadcast.o.bytes()
    }

    /// An empty decode state (no token seen: the latents are the learned ones, refreshed by
    /// phase 2).
    pub fn new_state(&self, ctx: &GpuContext) -> Result<LatentState> {
        let (m, c, h, dh) = (
            self.shape.latents,
            self.shape.chunk,
            self.shape.heads,
            self.shape.dh(),
        );
        let state = LatentState {
            keys: GpuTensor::zeros(ctx, "latent state keys", &[m + c, h, dh])?,
            values: GpuTensor::zeros(ctx, "latent state values", &[m + c, h, dh])?,
            chunk_keys: GpuTensor::zeros(ctx, "chunk keys", &[c, h, dh])?,
            chunk_values: GpuTensor::zeros(ctx, "chunk values", &[c, h, dh])?,
            gather: GatherState::new(ctx, m, h, dh)?,
        };
        let mut b = Batch::new(ctx);
        self.refresh(&mut b, &state)?;
        b.submit()?;
        Ok(state)
    }

    /// Recomputes the latents' keys and values from the gather state into rows `0..M`.
    fn refresh(&self, b: &mut Batch, state: &LatentState) -> Result<()> {
        let (k3, v3) = self.latent_keys_values(b, &state.gather.g)?;
        b.copy_elements(&k3, 0, &state.keys, 0, k3.numel())?;
        b.copy_elements(&v3, 0, &state.values, 0, v3.numel())
    }

    /// Causal forward of `x` `[n, d]` at positions `pos..pos+n`, updating `state`.
    /// Token t in chunk c attends, in one softmax, to the M latents gathered from chunks `< c`
    /// and to the tokens of chunk c up to t (rotated by RoPE on the first `rope_dim` values).
    pub fn forward(
        &self,
        b: &mut Batch,
        x: &GpuTensor,
        pos: usize,
        state: &LatentState,
        rope: &RopeTable,
        mode: RopeMode,
    ) -> Result<GpuTensor> {
        let (m, c, h, dh, d) = (
            self.shape.latents,
            self.shape.chunk,
            self.shape.heads,
            self.shape.dh(),
            self.shape.d,
        );
        let n = x.shape()[0];
        let row = h * dh;
        // Queries, keys and values of the tokens in one product; per chunk segment, the qkv
        // step rotates the queries and writes the rotated keys and the values into the state.
        let qkv = ops::linear(b, x, &self.qkv)?;
        let extras = QkvExtras {
            aux: &self.qkv_aux,
            bias: false,
            norm_eps: None,
        };
        let out = GpuTensor::scratch(b.ctx(), "latent attention", &[n, h, dh], DType::F32)?;
        let mut t0 = 0;
        while t0 < n {
            let cpos = (pos + t0) % c;
            let seg = (n - t0).min(c - cpos);
            let part = b.bindable(&qkv.row_range(t0, seg)?)?;
            let at = (pos + t0, m + cpos);
            let q = ops::qkv_rope(
                b,
                &part,
                (h, h, dh),
                &extras,
                (rope, mode),
                at,
                (&state.keys, &state.values, None),
            )?;
            // The chunk's unrotated keys and values, for the gather.
            let kv = match seg {
                1 => part.reshape(&[3, row])?,
                _ => ops::permute01(b, &part.reshape(&[seg, 3, row])?)?.reshape(&[3, seg * row])?,
            };
            b.copy_elements(&kv, seg * row, &state.chunk_keys, cpos * row, seg * row)?;
            b.copy_elements(
                &kv,
                2 * seg * row,
                &state.chunk_values,
                cpos * row,
                seg * row,
            )?;
            let how = AttentionShape {
                scale: self.scale(),
                causal: true,
                n_kv: m + cpos + seg,
                window: 0,
            };
            let o = ops::attention(b, &q, &state.keys, &state.values, how)?;
            if seg == n {
                return self.finish(b, &o, state, cpos + seg == c);
            }
            b.copy_elements(&o, 0, &out, t0 * row, seg * row)?;
            if cpos + seg == c {
                self.absorb_chunk(b, state)?;
            }
            t0 += seg;
        }
        ops::linear(b, &out.reshape(&[n, d])?, &self.broadcast.o)
    }

    /// The output projection of the attention `o` of the whole input, absorbing the chunk
    /// into the gather state when it is complete.
    fn finish(
        &self,
        b: &mut Batch,
        o: &GpuTensor,
        state: &LatentState,
        chunk_complete: bool,
    ) -> Result<GpuTensor> {
        if chunk_complete {
            self.absorb_chunk(b, state)?;
        }
        let n = o.shape()[0];
        ops::linear(b, &o.reshape(&[n, self.shape.d])?, &self.broadcast.o)
    }

    /// Phase 1 over the completed chunk, then the latents' keys and values refreshed.
    fn absorb_chunk(&self, b: &mut Batch, state: &LatentState) -> Result<()> {
        let c = self.shape.chunk;
        ops::gather_update(
            b,
            &self.q1,
            &state.chunk_keys,
            &state.chunk_values,
            c,
            &state.gather,
            self.scale(),
        )?;
        self.refresh(b, state)
    }

    /// Bidirectional forward of `x` `[n, d]`, the seeds' three equations with no position:
    /// `L1 = L + Attn(L·Wq1ᵀ, X·Wk1ᵀ, X·Wv1ᵀ)·Wo1ᵀ`, `L2 = L1 + Attn(L1·Wq2ᵀ, L1·Wk2ᵀ, L1·Wv2ᵀ)·Wo2ᵀ`,
    /// `Y = Attn(X·Wq3ᵀ, L2·Wk3ᵀ, L2·Wv3ᵀ)·Wo3ᵀ`.
    pub fn forward_bidirectional(&self, b: &mut Batch, x: &GpuTensor) -> Result<GpuTensor> {
        let (m, h, dh, d) = (
            self.shape.latents,
            self.shape.heads,
            self.shape.dh(),
            self.shape.d,
        );
        let n = x.shape()[0];
        let k1 = ops::linear(b, x, &self.gather.k)?.reshape(&[n, h, dh])?;
        let v1 = ops::linear(b, x, &self.gather.v)?.reshape(&[n, h, dh])?;
        let gather = AttentionShape {
            scale: self.scale(),
            causal: false,
            n_kv: n,
            window: 0,
        };
        let g = ops::attention(b, &self.q1, &k1, &v1, gather)?.reshape(&[m, d])?;
        let gathered = ops::linear(b, &g, &self.gather.o)?;
        let l1 = ops::binary(b, BinaryOp::Add, &self.latents, &gathered)?;
        let l2 = self.synthesis(b, &l1)?;
        let q3 = ops::linear(b, x, &self.broadcast.q)?.reshape(&[n, h, dh])?;
        let k3 = ops::linear(b, &l2, &self.broadcast.k)?.reshape(&[m, h, dh])?;
        let v3 = ops::linear(b, &l2, &self.broadcast.v)?.reshape(&[m, h, dh])?;
        let broadcast = AttentionShape {
            scale: self.scale(),
            causal: false,
            n_kv: m,
            window: 0,
        };
        let y = ops::attention(b, &q3, &k3, &v3, broadcast)?.reshape(&[n, d])?;
        ops::linear(b, &y, &self.broadcast.o)
    }
}
