//! Block-quantized weight matrices on the GPU (the layout of `quant.rs`) and the kernels that
//! read them: the products `x·Wᵀ` (one row: `matvec_quant` of `matmul_q8.wgsl` or
//! `matmul_q4.wgsl`, with or without subgroups; several: the tiled `matmul_nt_q8`/`matmul_nt_q4`),
//! the fused gated product of one row (`matvec_glu_quant`), and the embedding gather of a tied
//! table.

use super::expect_rank;
use super::matmul::{block_params, GateAct};
use super::quant::{quantize, QuantHost, QuantScheme, QUANT_BLOCK};
use crate::error::{shape_err, Result};
use crate::gpu::split::{rows_per_block, upload_rows_in, upload_u32_rows_in};
use crate::gpu::{Batch, DType, GpuContext, GpuTensor, Kernel};
use crate::shaders;

/// Rows each invocation of the matrix-vector kernels computes (`MV_ROWS` in
/// `prelude/quant_rows.wgsl`): a block's activations are loaded once for them all.
const MV_ROWS: u64 = 4;

/// A weight matrix `[n, k]` on the GPU in a block-quantized scheme: codes, scales and minimums
/// (see the module doc), split into the same row blocks past the binding limit.
#[derive(Clone, Debug)]
pub struct QuantWeight {
    scheme: QuantScheme,
    label: String,
    shape: [usize; 2],
    codes: GpuTensor,
    scales: GpuTensor,
    mins: Option<GpuTensor>,
}

impl QuantWeight {
    /// Uploads `host`, a matrix of `shape` `[n, k]`, as `label`, in row blocks of at most
    /// `limit` bytes of codes when it is larger.
    pub fn upload(
        ctx: &GpuContext,
        label: &str,
        shape: [usize; 2],
        host: &QuantHost,
        limit: u64,
    ) -> Result<Self> {
        let [n, k] = shape;
        let scheme = host.scheme;
        let codes_shape = scheme.codes_shape(n, k);
        let per_block = rows_per_block(label, &codes_shape, DType::U32, limit)?;
        let codes = upload_u32_rows_in(
            ctx,
            &format!("{label} {}", scheme.name()),
            &codes_shape,
            &host.codes,
            per_block,
        )?;
        let small = [n, k / QUANT_BLOCK];
        let scales = upload_rows_in(
            ctx,
            &format!("{label} scales"),
            &small,
            DType::F32,
            &host.scales,
            per_block,
        )?;
        let mins = match scheme.has_min() {
            true => Some(upload_rows_in(
                ctx,
                &format!("{label} mins"),
                &small,
                DType::F32,
                &host.mins,
                per_block,
            )?),
            false => None,
        };
        Ok(QuantWeight {
            scheme,
            label: label.to_string(),
            shape,
            codes,
            scales,
            mins,
        })
    }

    /// Quantizes `data` `[n, k]` in `scheme` and uploads it (see [`QuantWeight::upload`]).
    pub fn quantize(
        ctx: &GpuContext,
        label: &str,
        shape: [usize; 2],
        scheme: QuantScheme,
        data: &[f32],
        limit: u64,
    ) -> Result<Self> {
        let host = quantize(scheme, data, shape[1])?;
        Self::upload(ctx, label, shape, &host, limit)
    }

    /// The rows of `parts` (one scheme, one width) as one weight of their row blocks.
    pub fn stack_blocks(label: &str, parts: &[&QuantWeight]) -> Result<Self> {
        let first = parts
            .first()
            .ok_or_else(|| shape_err("stack weights", label, "parts", 0))?;
        let (scheme, k) = (first.scheme, first.shape[1]);
        if let Some(odd) = parts.iter().find(|p| p.scheme != scheme || p.shape[1] != k) {
            return Err(shape_err(
                "stack weights",
                format!("'{}' in {label}", odd.label),
                format!("{} rows of {k}", scheme.name()),
                format!("{} rows of {}", odd.scheme.name(), odd.shape[1]),
            ));
        }
        let join = |part: fn(&QuantWeight) -> &GpuTensor, what: &str| {
            let name = format!("{label} {what}");
            let mut row = 0;
            let mut blocks = Vec::new();
            for block in parts
                .iter()
                .flat_map(|p| part(p).row_blocks())
                .map(|(_, b)| b)
            {
                let rows = block.shape()[0];
                blocks.push(block.labelled(&format!("{name}[{row}..{}]", row + rows)));
                row += rows;
            }
            GpuTensor::from_row_blocks(&name, blocks)
        };
        Ok(QuantWeight {
            scheme,
            label: label.to_string(),
            shape: [parts.iter().map(|p| p.shape[0]).sum(), k],
            codes: join(|p| &p.codes, scheme.name())?,
            scales: join(|p| &p.scales, "scales")?,
            mins: match scheme.has_min() {
                true => Some(join(|p| p.mins.as_ref().unwrap_or(&p.scales), "mins")?),
                false => None,
            },
        })
    }

    /// The format.
    pub fn scheme(&self) -> QuantScheme {
        self.scheme
    }

    /// `[n, k]`.
    pub fn shape(&self) -> [usize; 2] {
        self.shape
    }

    /// The name it was uploaded as.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Bytes on the GPU.
    pub fn bytes(&self) -> u64 {
        (self.shape[0] * self.shape[1] / QUANT_BLOCK * self.scheme.gpu_block_bytes()) as u64
    }

    /// Buffers each of its parts takes: 1, or the number of row blocks.
    pub fn bindings(&self) -> usize {
        self.codes.row_blocks().len()
    }

    /// Its row blocks: `(first row, codes, scales, minimums)`, the scales standing in for the
    /// minimums of a scheme without them (the kernels bind them and never read them).
    fn blocks(&self) -> Vec<(usize, GpuTensor, GpuTensor, GpuTensor)> {
        let scales = self.scales.row_blocks();
        let mins = self.mins.as_ref().unwrap_or(&self.scales).row_blocks();
        self.codes
            .row_blocks()
            .into_iter()
            .zip(scales.into_iter().zip(mins))
            .map(|((first, c), ((_, s), (_, m)))| (first, c, s, m))
            .collect()
    }

    /// The pipeline constants of its kernels.
    fn constants(&self) -> &'static [(&'static str, f64)] {
        match self.scheme.has_min() {
            true => &[("HAS_MIN", 1.0)],
            false => &[],
        }
    }
}

/// `x·Wᵀ` for `x` `[M, K]` f32 and a quantized `w` `[N, K]`: `[M, N]`. One row of x goes to the
/// matrix-vector kernel, more to the tiled one.
pub fn matmul_quant(batch: &mut Batch, x: &GpuTensor, w: &QuantWeight) -> Result<GpuTensor> {
    const OP: &str = "matmul (quantized weights)";
    expect_rank(OP, "x", x, 2..=2)?;
    let (m, k) = (x.shape()[0], x.shape()[1]);
    let [n, wk] = w.shape;
    if wk != k {
        return Err(shape_err(
            OP,
            format!("'{}' columns", w.label),
            format!("{k} (x's width)"),
            wk,
        ));
    }
    let c = GpuTensor::scratch(batch.ctx(), OP, &[m, n], DType::F32)?;
    let q8 = w.scheme == QuantScheme::Q8_0;
    let shared = shares_activations(batch);
    let (kernel, tiled): (&Kernel, bool) = match (m, q8, shared) {
        (1, true, false) => (&shaders::MATVEC_Q8, false),
        (1, true, true) => (&shaders::MATVEC_Q8_SUBGROUP, false),
        (1, false, false) => (&shaders::MATVEC_Q4, false),
        (1, false, true) => (&shaders::MATVEC_Q4_SUBGROUP, false),
        (_, true, _) => (&shaders::MATMUL_NT_Q8, true),
        (_, false, _) => (&shaders::MATMUL_NT_Q4, true),
    };
    for (first, codes, scales, mins) in w.blocks() {
        let rows = codes.shape()[0];
        let params = block_params(OP, (m, rows, k), n, first)?;
        let wg = match tiled {
            true => super::workgroups(
                batch.ctx(),
                OP,
                ["columns", "rows", "batch"],
                [(rows as u64).div_ceil(64), (m as u64).div_ceil(64), 1],
            )?,
            false => super::workgroups(
                batch.ctx(),
                OP,
                ["columns", "batch", "rows"],
                [(rows as u64).div_ceil(64 * MV_ROWS), 1, m as u64],
            )?,
        };
        let params = Some(bytemuck::bytes_of(&params));
        match q8 {
            true => batch.dispatch(kernel, &[], params, &[x, &codes, &scales, &c], wg)?,
            false => batch.dispatch(
                kernel,
                w.constants(),
                params,
                &[x, &codes, &scales, &mins, &c],
                wg,
            )?,
        }
    }
    Ok(c)
}

/// Whether the matrix-vector kernels share each block's activation loads across a subgroup
/// (`prelude/block_acts_subgroup.wgsl`): on adapters whose subgroups have the 8 lanes it takes.
fn shares_activations(batch: &Batch) -> bool {
    batch.ctx().has_subgroups_of(8)
}

/// `act(x·gateᵀ) · (x·upᵀ)` for one row `x` `[1, K]` with quantized `gate`, `up` `[N, K]` of
/// one scheme, split alike, in one dispatch per row block; `None` when they do not fit it.
pub fn matvec_glu_quant(
    batch: &mut Batch,
    x: &GpuTensor,
    gate: &QuantWeight,
    up: &QuantWeight,
    act: GateAct,
) -> Result<Option<GpuTensor>> {
    const OP: &str = "matvec_glu (quantized weights)";
    let rows = |w: &QuantWeight| {
        w.blocks()
            .iter()
            .map(|(first, c, ..)| (*first, c.shape()[0]))
            .collect::<Vec<_>>()
    };
    let fits = x.shape().len() == 2
        && x.shape()[0] == 1
        && x.dtype() == DType::F32
        && gate.shape == up.shape
        && gate.scheme == up.scheme
        && gate.shape[1] == x.shape()[1]
        && rows(gate) == rows(up);
    if !fits {
        return Ok(None);
    }
    let [n, k] = gate.shape;
    let c = GpuTensor::scratch(batch.ctx(), OP, &[1, n], DType::F32)?;
    let constants = glu_constants(act, gate.scheme.has_min());
    for ((first, gc, gs, gm), (_, uc, us, um)) in gate.blocks().into_iter().zip(up.blocks()) {
        let rows = gc.shape()[0];
        let params = block_params(OP, (1, rows, k), 0, first)?;
        let groups = (rows as u64).div_ceil(64 * MV_ROWS);
        let wg = super::workgroups(batch.ctx(), OP, super::COLUMNS, [groups, 1, 1])?;
        let params = Some(bytemuck::bytes_of(&params));
        let shared = shares_activations(batch);
        match gate.scheme {
            QuantScheme::Q8_0 => batch.dispatch(
                match shared {
                    true => &shaders::MATVEC_GLU_Q8_SUBGROUP,
                    false => &shaders::MATVEC_GLU_Q8,
                },
                constants,
                params,
                &[x, &gc, &gs, &uc, &us, &c],
                wg,
            )?,
            _ => batch.dispatch(
                match shared {
                    true => &shaders::MATVEC_GLU_Q4_SUBGROUP,
                    false => &shaders::MATVEC_GLU_Q4,
                },
                constants,
                params,
                &[x, &gc, &gs, &gm, &uc, &us, &um, &c],
                wg,
            )?,
        }
    }
    Ok(Some(c))
}

/// The pipeline constants of a gated product: the activation and whether blocks have minimums.
fn glu_constants(act: GateAct, has_min: bool) -> crate::gpu::pipeline::Constants {
    const MIN: (&str, f64) = ("HAS_MIN", 1.0);
    match (act, has_min) {
        (GateAct::Silu, false) => &[("ACT", 0.0)],
        (GateAct::Gelu, false) => &[("ACT", 1.0)],
        (GateAct::GeluTanh, false) => &[("ACT", 2.0)],
        (GateAct::Silu, true) => &[("ACT", 0.0), MIN],
        (GateAct::Gelu, true) => &[("ACT", 1.0), MIN],
        (GateAct::GeluTanh, true) => &[("ACT", 2.0), MIN],
    }
}

/// `out[t] = table[ids[t]]` for a quantized table `[vocab, d]` (a tied embedding) and ids
/// `[tokens]` u32 on the GPU: `[tokens, d]` f32, the dequantized rows. An id past the vocabulary
/// reads the last row.
pub fn embedding_quant(
    batch: &mut Batch,
    table: &QuantWeight,
    ids: &GpuTensor,
) -> Result<GpuTensor> {
    const OP: &str = "embedding (quantized table)";
    let [vocab, d] = table.shape;
    let n = ids.numel();
    let out = GpuTensor::scratch(batch.ctx(), OP, &[n, d], DType::F32)?;
    let wg = crate::gpu::batch::grid(batch.ctx(), OP, ((n * d) as u64).div_ceil(256))?;
    let kernel = match table.scheme {
        QuantScheme::Q8_0 => &shaders::EMBEDDING_Q8,
        _ => &shaders::EMBEDDING_Q4,
    };
    for (first, codes, scales, mins) in table.blocks() {
        let params = super::embedding::EmbeddingParams {
            tokens: super::as_u32(OP, "tokens", n)?,
            d: super::as_u32(OP, "width", d)?,
            vocab: super::as_u32(OP, "vocab", vocab)?,
            first_row: super::as_u32(OP, "block's first row", first)?,
            rows: super::as_u32(OP, "block's rows", codes.shape()[0])?,
            _pad: [0; 3],
        };
        batch.dispatch(
            kernel,
            table.constants(),
            Some(bytemuck::bytes_of(&params)),
            &[&codes, &scales, &mins, ids, &out],
            wg,
        )?;
    }
    Ok(out)
}
