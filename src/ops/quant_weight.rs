//! Block-quantized weight matrices on the GPU and the kernels that read them, every format
//! through one set of kernels (`matmul_quant.wgsl`, its format's decoder chosen by pipeline
//! constants): the products `x·Wᵀ` (one row: `matvec_quant`, with or without subgroups;
//! several: the tiled `matmul_nt_quant`), the fused gated product of one row
//! (`matvec_glu_quant`), and the embedding gather of a tied table.
//!
//! On the GPU the groups of `quant/mod.rs` (a chunk's record, or a K-quant super-block: a
//! header and 8 chunks' codes) are laid out in tiles of [`TILE_ROWS`] rows: tile `t` holds rows
//! `32t..32t + 31`, group by group, the 32 rows' group `g` side by side (slot
//! `(t · groups + g) · 32 + row % 32`), the last tile padded with zero rows. The
//! matrix-vector kernels read a tile's rows together, so each step reads 32 neighbouring
//! records: one stream of memory where whole rows would be 32 (26% less time for a q4_0
//! token's products on lavapipe, whose prefetchers follow few streams), and coalesced loads on
//! a GPU. The files keep llama.cpp's row order; tiles are built at upload.

use super::expect_rank;
use super::matmul::{block_params, GateAct};
use super::quant::{quantize, QuantHost, QuantScheme, QUANT_BLOCK};
use crate::error::{shape_err, Error, Result};
use crate::gpu::pipeline::{intern, Constants};
use crate::gpu::split::{piece_rows, rows_per_block};
use crate::gpu::{Batch, DType, GpuContext, GpuTensor, Kernel};
use crate::shaders;

/// Rows each invocation of the matrix-vector kernels computes (`MV_ROWS` in
/// `prelude/quant_rows.wgsl`): a block's activations are loaded once for them all.
const MV_ROWS: u64 = 4;

/// Rows of a tile of the GPU layout (`TILE_ROWS` in `prelude/quant_rows.wgsl`).
pub const TILE_ROWS: usize = 32;

/// One row block of a quantized weight, bound on its own: rows `first..first + rows` of the
/// matrix, in tiles (see the module doc).
#[derive(Clone, Debug)]
struct QuantBlock {
    /// Its first row in the matrix.
    first: usize,
    /// Its rows (the tiles hold them padded to a multiple of [`TILE_ROWS`]).
    rows: usize,
    /// Its format (a weight stacked from matrices of several formats has several: a Q4_K_M
    /// file's q and k in q4_K beside its v in q6_K).
    scheme: QuantScheme,
    /// `[tiles · 32, k/32/group_chunks · group_words]` u32.
    records: GpuTensor,
}

/// A weight matrix `[n, k]` on the GPU in block-quantized formats: its row blocks (one, or
/// several past the binding limit or where it is stacked from several matrices), each in tiles
/// of records of its format.
#[derive(Clone, Debug)]
pub struct QuantWeight {
    label: String,
    shape: [usize; 2],
    blocks: Vec<QuantBlock>,
}

/// The first `rows` rows of `host` (rows of `k` weights) in tiles of groups, zero past the
/// last row.
fn tiles_of(host: &QuantHost, k: usize, rows: usize) -> Vec<u32> {
    let words = host.scheme.group_words();
    let groups = k / (QUANT_BLOCK * host.scheme.group_chunks());
    let slots = rows.div_ceil(TILE_ROWS) * TILE_ROWS * groups;
    let mut records = vec![0u32; slots * words];
    let mut group = Vec::with_capacity(words);
    for r in 0..rows {
        let (tile, lane) = (r / TILE_ROWS, r % TILE_ROWS);
        for b in 0..groups {
            let to = (tile * groups + b) * TILE_ROWS + lane;
            group.clear();
            host.group(r * groups + b, &mut group);
            records[to * words..(to + 1) * words].copy_from_slice(&group);
        }
    }
    records
}

impl QuantWeight {
    /// Uploads `host`, a matrix of `shape` `[n, k]`, as `label`, in row blocks of whole tiles
    /// of at most `limit` bytes of codes when it is larger.
    pub fn upload(
        ctx: &GpuContext,
        label: &str,
        shape: [usize; 2],
        host: &QuantHost,
        limit: u64,
    ) -> Result<Self> {
        let scheme = host.scheme;
        let chunks = shape[1] / QUANT_BLOCK;
        let expected = shape[0] * chunks;
        if !host.holds(expected) {
            return Err(shape_err(
                "upload",
                format!("{} chunks for '{label}'", scheme.name()),
                format!("{expected} chunks of {shape:?}"),
                format!("{} chunks", host.chunks()),
            ));
        }
        Self::upload_from(ctx, label, shape, scheme, limit, |rows| {
            Ok(host.slice(rows.start * chunks..rows.end * chunks))
        })
    }

    /// As [`QuantWeight::upload`], the blocks given a piece at a time (about
    /// [`PIECE_BYTES`](crate::gpu::split::PIECE_BYTES) as f32 values,
    /// whole tiles): `piece(rows)` gives those rows' blocks in
    /// `scheme` (read from a file, or quantized, as they are needed).
    pub fn upload_from(
        ctx: &GpuContext,
        label: &str,
        shape: [usize; 2],
        scheme: QuantScheme,
        limit: u64,
        mut piece: impl FnMut(std::ops::Range<usize>) -> Result<QuantHost>,
    ) -> Result<Self> {
        let [n, k] = shape;
        if !k.is_multiple_of(scheme.row_multiple()) {
            return Err(shape_err(
                "upload",
                format!("row length of '{label}'"),
                format!(
                    "a multiple of {} for {}",
                    scheme.row_multiple(),
                    scheme.name()
                ),
                k,
            ));
        }
        let chunks = k / QUANT_BLOCK;
        let words = scheme.group_words();
        let groups = k / (QUANT_BLOCK * scheme.group_chunks());
        let per_block = tile_rows_per_block(label, scheme, shape, limit)?;
        // Pieces of about PIECE_BYTES of f32 values: what a piece quantized at load is read as.
        let step = piece_rows(k * 4, TILE_ROWS);
        let name = format!("{label} {}", scheme.name());
        let mut out = Vec::new();
        for first in (0..n.max(1)).step_by(per_block) {
            let rows = per_block.min(n - first);
            let suffix = match per_block >= n {
                true => String::new(),
                false => format!("[{first}..{}]", first + rows),
            };
            let padded = rows.div_ceil(TILE_ROWS) * TILE_ROWS;
            let shape = scheme.records_shape(padded, k);
            let block = QuantBlock {
                first,
                rows,
                scheme,
                records: GpuTensor::empty(ctx, &format!("{name}{suffix}"), &shape, DType::U32)?,
            };
            for at in (0..rows).step_by(step) {
                let end = (at + step).min(rows);
                let host = piece(first + at..first + end)?;
                let expected = (end - at) * chunks;
                if host.scheme != scheme || !host.holds(expected) {
                    return Err(shape_err(
                        "upload",
                        format!("rows {}..{} of '{label}'", first + at, first + end),
                        format!("{expected} {} chunks", scheme.name()),
                        format!("{} {} chunks", host.chunks(), host.scheme.name()),
                    ));
                }
                // Pieces are whole tiles, so the slots of a piece follow the previous piece's.
                let slot = at * groups;
                let records = tiles_of(&host, k, end - at);
                block
                    .records
                    .write_piece(ctx, slot * words, bytemuck::cast_slice(&records))?;
                ctx.release_uploads();
            }
            out.push(block);
        }
        Ok(QuantWeight {
            label: label.to_string(),
            shape,
            blocks: out,
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

    /// The rows of `parts` (one width, any formats) as one weight of their row blocks.
    pub fn stack_blocks(label: &str, parts: &[&QuantWeight]) -> Result<Self> {
        let first = parts
            .first()
            .ok_or_else(|| shape_err("stack weights", label, "parts", 0))?;
        let k = first.shape[1];
        if let Some(odd) = parts.iter().find(|p| p.shape[1] != k) {
            return Err(shape_err(
                "stack weights",
                format!("'{}' in {label}", odd.label),
                format!("rows of {k}"),
                format!("rows of {}", odd.shape[1]),
            ));
        }
        let mut row = 0;
        let mut blocks = Vec::new();
        for block in parts.iter().flat_map(|p| &p.blocks) {
            let rows = block.rows;
            let name = |what: &str| format!("{label} {what}[{row}..{}]", row + rows);
            blocks.push(QuantBlock {
                first: row,
                rows,
                scheme: block.scheme,
                records: block.records.clone().labelled(&name(block.scheme.name())),
            });
            row += rows;
        }
        Ok(QuantWeight {
            label: label.to_string(),
            shape: [row, k],
            blocks,
        })
    }

    /// The format (of its first rows, where it is stacked from several; every constructor
    /// makes one row block at least).
    pub fn scheme(&self) -> QuantScheme {
        self.blocks[0].scheme
    }

    /// `[n, k]`.
    pub fn shape(&self) -> [usize; 2] {
        self.shape
    }

    /// The name it was uploaded as.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Bytes of its blocks (the tiles' padding rows not counted).
    pub fn bytes(&self) -> u64 {
        self.blocks
            .iter()
            .map(|b| b.scheme.gpu_bytes(b.rows * self.shape[1]))
            .sum()
    }

    /// Buffers each of its parts takes: 1, or the number of row blocks.
    pub fn bindings(&self) -> usize {
        self.blocks.len()
    }

    /// Its row blocks: `(first row, rows, records, format)`.
    fn blocks(&self) -> impl Iterator<Item = (usize, usize, &GpuTensor, QuantScheme)> {
        self.blocks
            .iter()
            .map(|b| (b.first, b.rows, &b.records, b.scheme))
    }
}

/// The pipeline constants of a kernel reading `scheme`: the format's, then `extra`.
pub(crate) fn format_constants(scheme: QuantScheme, extra: &[(&'static str, f64)]) -> Constants {
    // The formats' own tables, made once: most dispatches (every product of a token) take them.
    static OWN: std::sync::OnceLock<Vec<Constants>> = std::sync::OnceLock::new();
    if extra.is_empty() {
        let own = OWN.get_or_init(|| {
            QuantScheme::ALL
                .iter()
                .map(|s| intern(&s.constants()))
                .collect()
        });
        let i = QuantScheme::ALL.iter().position(|s| *s == scheme);
        return own[i.unwrap_or(0)];
    }
    let mut all = scheme.constants().to_vec();
    all.extend_from_slice(extra);
    intern(&all)
}

/// Rows per row block of a quantized `[n, k]` within `limit` bytes of codes: whole tiles, or
/// all `n` rows when their tiles fit. An error naming the weight when one tile is past it.
fn tile_rows_per_block(
    label: &str,
    scheme: QuantScheme,
    [n, k]: [usize; 2],
    limit: u64,
) -> Result<usize> {
    let padded = n.div_ceil(TILE_ROWS).max(1) * TILE_ROWS;
    let records_shape = scheme.records_shape(padded, k);
    let fit = rows_per_block(label, &records_shape, DType::U32, limit)?;
    if fit >= padded {
        return Ok(n.max(1));
    }
    if fit < TILE_ROWS {
        let tile = scheme.records_shape(TILE_ROWS, k);
        return Err(Error::BufferTooLarge {
            label: format!("{label} {}", scheme.name()),
            bytes: (tile[0] * tile[1] * 4) as u64,
            limit_name: "max storage buffer binding size (for one tile of 32 rows: a quantized \
                         weight splits only between tiles)",
            limit,
        });
    }
    Ok(fit / TILE_ROWS * TILE_ROWS)
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
    if m >= DEQUANTIZED_ROWS {
        for (first, rows, records, scheme) in w.blocks() {
            let block = dequantize_rows(batch, scheme, [rows, k], records)?;
            super::matmul::matmul_block_into(batch, x, &block, &c, first, n)?;
        }
        return Ok(c);
    }
    let (kernel, tiled): (&Kernel, bool) = match (m, shares_activations(batch)) {
        (1, false) => (&shaders::MATVEC_QUANT, false),
        (1, true) => (&shaders::MATVEC_QUANT_SUBGROUP, false),
        _ => (&shaders::MATMUL_NT_QUANT, true),
    };
    for (first, rows, records, scheme) in w.blocks() {
        let constants = format_constants(scheme, &[]);
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
        batch.dispatch(kernel, constants, params, &[x, records, &c], wg)?;
    }
    Ok(c)
}

/// Rows of x from which a product dequantizes W's row blocks to f32 and multiplies them with the
/// f32 kernels (prefill): the weights are decoded once for all rows, not once per 8, and the f32
/// kernels' vec4 tiles run at their pace. Fewer rows take the tiled quantized kernel.
const DEQUANTIZED_ROWS: usize = 16;

/// The `[rows, k]` of one row block (`records`, in `scheme`) dequantized: f32 scratch.
fn dequantize_rows(
    batch: &mut Batch,
    scheme: QuantScheme,
    [rows, k]: [usize; 2],
    records: &GpuTensor,
) -> Result<GpuTensor> {
    const OP: &str = "dequantize rows";
    let out = GpuTensor::scratch(batch.ctx(), OP, &[rows, k], DType::F32)?;
    let chunks = (rows * (k / QUANT_BLOCK)) as u64;
    let wg = crate::gpu::batch::grid(batch.ctx(), OP, chunks.div_ceil(256))?;
    let params = super::embedding::EmbeddingParams {
        tokens: 0,
        d: super::as_u32(OP, "width", k)?,
        vocab: super::as_u32(OP, "rows", rows)?,
        first_row: 0,
        rows: super::as_u32(OP, "rows", rows)?,
        _pad: [0; 3],
    };
    batch.dispatch(
        &shaders::DEQUANTIZE_ROWS,
        format_constants(scheme, &[]),
        Some(bytemuck::bytes_of(&params)),
        &[records, &out],
        wg,
    )?;
    Ok(out)
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
            .map(|(first, rows, _, scheme)| (first, rows, scheme))
            .collect::<Vec<_>>()
    };
    let fits = x.shape().len() == 2
        && x.shape()[0] == 1
        && x.dtype() == DType::F32
        && gate.shape == up.shape
        && gate.shape[1] == x.shape()[1]
        && rows(gate) == rows(up);
    if !fits {
        return Ok(None);
    }
    let [n, k] = gate.shape;
    let c = GpuTensor::scratch(batch.ctx(), OP, &[1, n], DType::F32)?;

    let kernel = match shares_activations(batch) {
        true => &shaders::MATVEC_GLU_QUANT_SUBGROUP,
        false => &shaders::MATVEC_GLU_QUANT,
    };
    for ((first, rows, g, scheme), (_, _, u, _)) in gate.blocks().zip(up.blocks()) {
        let constants = format_constants(scheme, &[("ACT", act_id(act))]);
        let params = block_params(OP, (1, rows, k), 0, first)?;
        let groups = (rows as u64).div_ceil(64 * MV_ROWS);
        let wg = super::workgroups(batch.ctx(), OP, super::COLUMNS, [groups, 1, 1])?;
        let params = Some(bytemuck::bytes_of(&params));
        batch.dispatch(kernel, constants, params, &[x, g, u, &c], wg)?;
    }
    Ok(Some(c))
}

/// The `ACT` constant of a gated product's activation (`prelude/gate_act.wgsl`).
pub(crate) fn act_id(act: GateAct) -> f64 {
    match act {
        GateAct::Silu => 0.0,
        GateAct::Gelu => 1.0,
        GateAct::GeluTanh => 2.0,
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
    for (first, rows, records, scheme) in table.blocks() {
        let constants = format_constants(scheme, &[]);
        let params = super::embedding::EmbeddingParams {
            tokens: super::as_u32(OP, "tokens", n)?,
            d: super::as_u32(OP, "width", d)?,
            vocab: super::as_u32(OP, "vocab", vocab)?,
            first_row: super::as_u32(OP, "block's first row", first)?,
            rows: super::as_u32(OP, "block's rows", rows)?,
            _pad: [0; 3],
        };
        batch.dispatch(
            &shaders::EMBEDDING_Q,
            constants,
            Some(bytemuck::bytes_of(&params)),
            &[records, ids, &out],
            wg,
        )?;
    }
    Ok(out)
}
