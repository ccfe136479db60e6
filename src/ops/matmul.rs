//! Batched matrix products `C = A·B` and `C = A·Bᵀ`, with a matrix-vector path for decode.

use super::{as_u32, expect_rank, expect_rank_any_dtype, expect_shape};
use crate::error::{shape_err, Error, Result};
use crate::gpu::{Batch, DType, GpuTensor, Kernel};
use crate::shaders;

/// Mirrors `MatmulParams` in `matmul.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MatmulParams {
    /// Rows of A and C.
    pub m: u32,
    /// Columns of C.
    pub n: u32,
    /// The reduction length.
    pub k: u32,
    /// Batch count.
    pub batch: u32,
    /// Elements between A's batches (0 broadcasts).
    pub a_stride: u32,
    /// Elements between B's batches (0 broadcasts).
    pub b_stride: u32,
    /// Elements between C's batches.
    pub c_stride: u32,
    /// Elements between C's rows (N unless a row block of B writes part of a wider C).
    pub ldc: u32,
    /// C's first element (the column a row block of B starts at).
    pub c_offset: u32,
    /// Padding.
    pub _pad: [u32; 3],
}

/// One kernel choice: which entry point, how much of C a workgroup covers, its constants.
struct Variant {
    kernel: &'static Kernel,
    rows_per_workgroup: u64,
    cols_per_workgroup: u64,
    constants: &'static [(&'static str, f64)],
}

/// The kernels for 16-bit weights of `dtype` (A·Bᵀ, K % 4 == 0): f16 read natively where the
/// adapter has shader-f16, else f16 or bf16 read as u32 words (the `BF16` constant chooses):
/// `(matmul_nt, matvec_nt, matvec_glu, their constants)`.
fn half_kernels(
    dtype: DType,
    native_f16: bool,
) -> (
    &'static Kernel,
    &'static Kernel,
    &'static Kernel,
    &'static [(&'static str, f64)],
) {
    const F16_WORDS: &[(&str, f64)] = &[("BF16", 0.0)];
    const BF16_WORDS: &[(&str, f64)] = &[("BF16", 1.0)];
    match (dtype, native_f16) {
        (DType::F16, true) => (
            &shaders::MATMUL_NT_F16W_V4,
            &shaders::MATVEC_NT_F16W_V4,
            &shaders::MATVEC_GLU_F16W_V4,
            &[],
        ),
        (DType::F16, false) => (
            &shaders::MATMUL_NT_HALF_V4,
            &shaders::MATVEC_NT_HALF_V4,
            &shaders::MATVEC_GLU_HALF_V4,
            F16_WORDS,
        ),
        _ => (
            &shaders::MATMUL_NT_HALF_V4,
            &shaders::MATVEC_NT_HALF_V4,
            &shaders::MATVEC_GLU_HALF_V4,
            BF16_WORDS,
        ),
    }
}

/// Picks the kernel for a shape: the vec4 kernels when rows are 4-aligned, the matrix-vector
/// kernels for a single row of A times weights, the scalar tiled kernels otherwise; 16-bit
/// weights (A·Bᵀ, K % 4 == 0, checked by `output_shape`) take the vec4 kernels over their
/// words (`half_kernels`).
/// Tiles: workgroup (x, y) invocations times outputs per invocation (see the shaders' TM/TN).
/// The vec4 tile sizes were chosen with `latentgpu bench matmul` on lavapipe (8x8 outputs per
/// invocation, 8x8 invocations: 33% of the FMA roof at 1024³ against 15-20% for 4x4 and 8x4).
fn variant(m: usize, n: usize, k: usize, transpose_b: bool, b: (DType, bool)) -> Variant {
    const WG8: &[(&str, f64)] = &[("WG_X", 8.0), ("WG_Y", 8.0)];
    const WG16: &[(&str, f64)] = &[("WG_X", 16.0), ("WG_Y", 16.0)];
    const WG8_F16_WORDS: &[(&str, f64)] = &[("WG_X", 8.0), ("WG_Y", 8.0), ("BF16", 0.0)];
    const WG8_BF16_WORDS: &[(&str, f64)] = &[("WG_X", 8.0), ("WG_Y", 8.0), ("BF16", 1.0)];
    let aligned_k = k.is_multiple_of(4);
    let (b_dtype, native_f16) = b;
    if b_dtype.is_16_bit() {
        let (matmul_nt, matvec_nt, _, words) = half_kernels(b_dtype, native_f16);
        if m == 1 {
            return Variant {
                kernel: matvec_nt,
                rows_per_workgroup: 1,
                cols_per_workgroup: 64,
                constants: words,
            };
        }
        return Variant {
            kernel: matmul_nt,
            rows_per_workgroup: 8 * 8,
            cols_per_workgroup: 8 * 8,
            constants: match (words.is_empty(), b_dtype) {
                (true, _) => WG8,
                (false, DType::BF16) => WG8_BF16_WORDS,
                (false, _) => WG8_F16_WORDS,
            },
        };
    }
    match (m, transpose_b) {
        (1, true) if aligned_k => Variant {
            kernel: &shaders::MATVEC_NT_V4,
            rows_per_workgroup: 1,
            cols_per_workgroup: 64,
            constants: &[],
        },
        (1, true) => Variant {
            kernel: &shaders::MATVEC_NT,
            rows_per_workgroup: 1,
            cols_per_workgroup: 64,
            constants: &[],
        },
        (_, true) if aligned_k => Variant {
            kernel: &shaders::MATMUL_NT_V4,
            rows_per_workgroup: 8 * 8,
            cols_per_workgroup: 8 * 8,
            constants: WG8,
        },
        (_, false) if aligned_k && n.is_multiple_of(4) => Variant {
            kernel: &shaders::MATMUL_NN_V4,
            rows_per_workgroup: 8 * 8,
            cols_per_workgroup: 8 * 4 * 4,
            constants: WG8,
        },
        (_, t) => Variant {
            kernel: if t {
                &shaders::MATMUL_NT
            } else {
                &shaders::MATMUL_NN
            },
            rows_per_workgroup: 16 * 4,
            cols_per_workgroup: 16 * 4,
            constants: WG16,
        },
    }
}

/// The output shape of `a · b` (or `a · bᵀ`): `[.., M, N]` with A's leading dimensions.
fn output_shape(
    a: &GpuTensor,
    b: &GpuTensor,
    transpose_b: bool,
) -> Result<(Vec<usize>, usize, usize, usize, usize)> {
    const OP: &str = "matmul";
    expect_rank(OP, "A", a, 2..=3)?;
    expect_rank_any_dtype(OP, "B", b, 2..=3)?;
    if b.dtype().is_16_bit() && !(transpose_b && a.shape().last().is_some_and(|k| k % 4 == 0)) {
        return Err(shape_err(
            OP,
            format!("B '{}'", b.label()),
            "16-bit weights only as A·Bᵀ with K % 4 == 0",
            format!(
                "{}K = {}",
                if transpose_b { "" } else { "A·B, " },
                a.shape().last().copied().unwrap_or(0)
            ),
        ));
    }
    if b.dtype() == DType::U32 {
        return Err(shape_err(
            OP,
            format!("B '{}' dtype", b.label()),
            "F32, F16 or BF16",
            "U32",
        ));
    }
    let (batch, m, k) = match a.shape()[..] {
        [m, k] => (1, m, k),
        [bt, m, k] => (bt, m, k),
        _ => unreachable!("rank checked above"),
    };
    let (b_batch, bk, n) = match (b.shape(), transpose_b) {
        ([n, k], true) => (1, *k, *n),
        ([k, n], false) => (1, *k, *n),
        ([bt, n, k], true) => (*bt, *k, *n),
        ([bt, k, n], false) => (*bt, *k, *n),
        _ => unreachable!("rank checked above"),
    };
    if bk != k {
        return Err(shape_err(
            OP,
            format!(
                "B '{}' reduction dimension ({})",
                b.label(),
                if transpose_b { "last" } else { "first" }
            ),
            k,
            bk,
        ));
    }
    if b_batch != 1 && b_batch != batch {
        return Err(shape_err(
            OP,
            format!("B '{}' batch", b.label()),
            format!("1 or {batch}"),
            b_batch,
        ));
    }
    let mut shape = a.shape().to_vec();
    *shape.last_mut().unwrap_or(&mut 0) = n;
    Ok((shape, batch, m, n, k))
}

/// `a · b` (`transpose_b = false`, B `[.., K, N]`) or `a · bᵀ` (`true`, B `[.., N, K]`, weights
/// stored `[out, in]`). A is `[M, K]` or `[batch, M, K]`; a rank-2 B is shared by every batch.
pub fn matmul(
    batch: &mut Batch,
    a: &GpuTensor,
    b: &GpuTensor,
    transpose_b: bool,
) -> Result<GpuTensor> {
    let (shape, bt, m, _, k) = output_shape(a, b, transpose_b)?;
    let path = MatvecPath::for_adapter(batch.ctx());
    let decode = m == 1 && bt == 1 && transpose_b && b.dtype() == DType::F32 && k.is_multiple_of(4);
    if decode && path != MatvecPath::RowPerInvocation && shape.len() == 2 {
        return matvec_with(batch, a, b, path);
    }
    let c = GpuTensor::scratch(batch.ctx(), "matmul", &shape, DType::F32)?;
    matmul_into(batch, a, b, transpose_b, &c)?;
    Ok(c)
}

/// As [`matmul`], writing into `c`, which must have the output shape. A `b` split into row
/// blocks (a weight past the binding limit, see `gpu::split`) is taken block by block, each
/// writing its columns of `c`.
pub fn matmul_into(
    batch: &mut Batch,
    a: &GpuTensor,
    b: &GpuTensor,
    transpose_b: bool,
    c: &GpuTensor,
) -> Result<()> {
    let (shape, bt, m, n, k) = output_shape(a, b, transpose_b)?;
    expect_shape("matmul", "C", c, &shape)?;
    if b.is_split() && (!transpose_b || b.shape().len() != 2) {
        return Err(shape_err(
            "matmul",
            format!("B '{}' in row blocks", b.label()),
            "weights [N, K] of A·Bᵀ",
            format!(
                "{:?}{}",
                b.shape(),
                if transpose_b { "" } else { " of A·B" }
            ),
        ));
    }
    for (first, block) in b.row_blocks() {
        let cols = if b.is_split() { block.shape()[0] } else { n };
        let b_stride = if b.shape().len() == 3 { n * k } else { 0 };
        let params = MatmulParams {
            m: as_u32("matmul", "M", m)?,
            n: as_u32("matmul", "N", cols)?,
            k: as_u32("matmul", "K", k)?,
            batch: as_u32("matmul", "batch", bt)?,
            a_stride: as_u32("matmul", "A batch stride", m * k)?,
            b_stride: as_u32("matmul", "B batch stride", b_stride)?,
            c_stride: as_u32("matmul", "C batch stride", m * n)?,
            ldc: as_u32("matmul", "N", n)?,
            c_offset: as_u32("matmul", "C column", first)?,
            _pad: [0; 3],
        };
        dispatch_product(batch, a, &block, c, params, (bt, m, cols, k), transpose_b)?;
    }
    Ok(())
}

/// `a · blockᵀ` for a block of f32 weights `[cols, K]` that is columns `first..first + cols` of
/// C `[M, n]` (prefill with quantized weights dequantized a row block at a time).
pub(crate) fn matmul_block_into(
    batch: &mut Batch,
    a: &GpuTensor,
    block: &GpuTensor,
    c: &GpuTensor,
    first: usize,
    n: usize,
) -> Result<()> {
    let (m, k) = (a.shape()[0], a.shape()[1]);
    let cols = block.shape()[0];
    let params = block_params("matmul", (m, cols, k), n, first)?;
    dispatch_product(batch, a, block, c, params, (1, m, cols, k), true)
}

/// Dispatches the f32 product kernel that suits `(batch, m, cols, k)` with `params`.
fn dispatch_product(
    batch: &mut Batch,
    a: &GpuTensor,
    block: &GpuTensor,
    c: &GpuTensor,
    params: MatmulParams,
    (bt, m, cols, k): (usize, usize, usize, usize),
    transpose_b: bool,
) -> Result<()> {
    let v = variant(
        m,
        cols,
        k,
        transpose_b,
        (block.dtype(), batch.ctx().has_f16()),
    );
    let wg = super::workgroups(
        batch.ctx(),
        "matmul",
        super::COLUMNS,
        [
            (cols as u64).div_ceil(v.cols_per_workgroup),
            (m as u64).div_ceil(v.rows_per_workgroup),
            bt as u64,
        ],
    )?;
    batch.dispatch(
        v.kernel,
        v.constants,
        Some(bytemuck::bytes_of(&params)),
        &[a, block, c],
        wg,
    )
}

/// The params of a product of one row `[1, K]` by weights `[N, K]` (or by the row block of
/// them that starts at row `first`, writing C from column `first`).
fn one_row_params(op: &'static str, n: usize, k: usize, first: usize) -> Result<MatmulParams> {
    block_params(op, (1, n, k), 0, first)
}

/// The params of `m` rows `[m, K]` times the `rows` rows of a block of weights that starts at
/// row `first` of `N`: C `[m, N]` with row stride `ldc` (N), written from column `first`.
pub(crate) fn block_params(
    op: &'static str,
    (m, rows, k): (usize, usize, usize),
    ldc: usize,
    first: usize,
) -> Result<MatmulParams> {
    Ok(MatmulParams {
        m: as_u32(op, "M", m)?,
        n: as_u32(op, "N", rows)?,
        k: as_u32(op, "K", k)?,
        batch: 1,
        a_stride: 0,
        b_stride: 0,
        c_stride: 0,
        ldc: as_u32(op, "N", ldc)?,
        c_offset: as_u32(op, "C column", first)?,
        _pad: [0; 3],
    })
}

/// Whether two weights are split into the same row blocks (or both whole).
fn same_blocks(a: &GpuTensor, b: &GpuTensor) -> bool {
    let rows = |t: &GpuTensor| {
        t.row_blocks()
            .into_iter()
            .map(|(first, blk)| (first, blk.shape()[0]))
            .collect::<Vec<_>>()
    };
    rows(a) == rows(b)
}

/// The activation of a gated product (as the elementwise ops compute it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateAct {
    /// `silu(g)` (SwiGLU).
    Silu,
    /// `gelu(g)`, erf form (GeGLU).
    Gelu,
    /// `gelu(g)`, tanh form.
    GeluTanh,
}

impl GateAct {
    /// Its constant and `BF16` (`bf16`: 1, else 0), for the kernels that read 16-bit words.
    fn constants_for_words(self, bf16: bool) -> crate::gpu::pipeline::Constants {
        const TABLE: [[&[(&str, f64)]; 2]; 3] = [
            [
                &[("ACT", 0.0), ("BF16", 0.0)],
                &[("ACT", 0.0), ("BF16", 1.0)],
            ],
            [
                &[("ACT", 1.0), ("BF16", 0.0)],
                &[("ACT", 1.0), ("BF16", 1.0)],
            ],
            [
                &[("ACT", 2.0), ("BF16", 0.0)],
                &[("ACT", 2.0), ("BF16", 1.0)],
            ],
        ];
        let act = match self {
            GateAct::Silu => 0,
            GateAct::Gelu => 1,
            GateAct::GeluTanh => 2,
        };
        TABLE[act][bf16 as usize]
    }

    /// The pipeline constant that selects it (`ACT` in `prelude/gate_act.wgsl`).
    pub(crate) fn constants(self) -> crate::gpu::pipeline::Constants {
        const SILU: &[(&str, f64)] = &[("ACT", 0.0)];
        const GELU: &[(&str, f64)] = &[("ACT", 1.0)];
        const GELU_TANH: &[(&str, f64)] = &[("ACT", 2.0)];
        match self {
            GateAct::Silu => SILU,
            GateAct::Gelu => GELU,
            GateAct::GeluTanh => GELU_TANH,
        }
    }
}

/// `act(x·gateᵀ) · (x·upᵀ)` for one row `x` `[1, K]` with `gate`, `up` `[N, K]` (f32, f16 or
/// bf16, K % 4 == 0) in one dispatch: the decode path of a gated feed-forward, the same values as
/// two [`matmul`]s and the elementwise op. `None` when the shapes do not fit it.
pub fn matvec_glu(
    batch: &mut Batch,
    x: &GpuTensor,
    gate: &GpuTensor,
    up: &GpuTensor,
    act: GateAct,
) -> Result<Option<GpuTensor>> {
    const OP: &str = "matvec_glu";
    let fits = x.shape().len() == 2
        && x.shape()[0] == 1
        && x.dtype() == DType::F32
        && gate.shape().len() == 2
        && gate.shape() == up.shape()
        && gate.dtype() == up.dtype()
        && gate.dtype() != DType::U32
        && gate.shape()[1] == x.shape()[1]
        && x.shape()[1].is_multiple_of(4)
        && same_blocks(gate, up);
    if !fits {
        return Ok(None);
    }
    let (n, k) = (gate.shape()[0], gate.shape()[1]);
    let (kernel, constants) = match gate.dtype() {
        d if d.is_16_bit() => {
            let (.., glu, words) = half_kernels(d, batch.ctx().has_f16());
            let constants = match words.is_empty() {
                true => act.constants(),
                false => act.constants_for_words(d == DType::BF16),
            };
            (glu, constants)
        }
        _ => (&shaders::MATVEC_GLU_V4, act.constants()),
    };
    let c = GpuTensor::scratch(batch.ctx(), OP, &[1, n], DType::F32)?;
    for ((first, g), (_, u)) in gate.row_blocks().into_iter().zip(up.row_blocks()) {
        let rows = g.shape()[0];
        let params = one_row_params(OP, rows, k, first)?;
        let wg = super::workgroups(
            batch.ctx(),
            OP,
            super::COLUMNS,
            [(rows as u64).div_ceil(64), 1, 1],
        )?;
        batch.dispatch(
            kernel,
            constants,
            Some(bytemuck::bytes_of(&params)),
            &[x, &g, &u, &c],
            wg,
        )?;
    }
    Ok(Some(c))
}

/// How a decode product (one row times f32 weights, K % 4 == 0) is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatvecPath {
    /// One invocation per output, reading its whole row of B (CPU rasterisers).
    RowPerInvocation,
    /// A workgroup per output, partial sums added in a workgroup tree.
    Workgroup,
    /// A workgroup per output, partial sums added by subgroup operations.
    Subgroup,
}

impl MatvecPath {
    /// The path for `ctx`: one invocation per row on CPU adapters, else subgroups where the
    /// device has them, else the workgroup tree.
    pub fn for_adapter(ctx: &crate::gpu::GpuContext) -> Self {
        if ctx.is_cpu() {
            MatvecPath::RowPerInvocation
        } else if ctx.has_subgroups() {
            MatvecPath::Subgroup
        } else {
            MatvecPath::Workgroup
        }
    }
}

/// `x·wᵀ` for one row `x` `[1, K]` and f32 `w` `[N, K]`, K % 4 == 0, by `path` (the subgroup
/// path needs a device with subgroups).
pub fn matvec_with(
    batch: &mut Batch,
    x: &GpuTensor,
    w: &GpuTensor,
    path: MatvecPath,
) -> Result<GpuTensor> {
    const OP: &str = "matvec";
    let (shape, _, m, n, k) = output_shape(x, w, true)?;
    if m != 1 || shape.len() != 2 || w.dtype() != DType::F32 || !k.is_multiple_of(4) {
        return Err(shape_err(
            OP,
            format!("'{}' · '{}'ᵀ", x.label(), w.label()),
            "one row times f32 weights [N, K], K % 4 == 0",
            format!("{:?} · {:?} {:?}", x.shape(), w.shape(), w.dtype()),
        ));
    }
    if path == MatvecPath::Subgroup && !batch.ctx().has_subgroups() {
        return Err(Error::Invalid {
            what: "matvec path".into(),
            expected: "a device with subgroups for the subgroup path".into(),
            found: batch.ctx().name(),
        });
    }
    let c = GpuTensor::scratch(batch.ctx(), OP, &shape, DType::F32)?;
    for (first, block) in w.row_blocks() {
        let rows = if w.is_split() { block.shape()[0] } else { n };
        let params = one_row_params(OP, rows, k, first)?;
        let (kernel, wg) = match path {
            MatvecPath::RowPerInvocation => {
                let groups = (rows as u64).div_ceil(64);
                let wg = crate::gpu::batch::grid(batch.ctx(), OP, groups)?;
                if wg[1] > 1 {
                    // matvec_nt_v4 indexes outputs by global x only.
                    return Err(Error::DispatchTooLarge {
                        op: OP,
                        what: "columns",
                        found: groups,
                        limit: batch.ctx().limits.max_compute_workgroups_per_dimension as u64,
                    });
                }
                (&shaders::MATVEC_NT_V4, wg)
            }
            MatvecPath::Workgroup => (
                &shaders::MATVEC_COOP,
                crate::gpu::batch::grid(batch.ctx(), OP, rows as u64)?,
            ),
            MatvecPath::Subgroup => (
                &shaders::MATVEC_SUBGROUP,
                crate::gpu::batch::grid(batch.ctx(), OP, rows as u64)?,
            ),
        };
        batch.dispatch(
            kernel,
            &[],
            Some(bytemuck::bytes_of(&params)),
            &[x, &block, &c],
            wg,
        )?;
    }
    Ok(c)
}
