//! `latentgpu bench matmul`: GFLOP/s of square and transformer-shaped products, as fractions of the
//! FMA and copy roofs measured in the same run.

use super::{copy_roof_gbps, fma_roof_gflops, seconds_per_rep};
use crate::error::Result;
use crate::gpu::{split, GpuContext, GpuTensor};
use crate::model::formats::weights::HostMatrix;
use crate::model::layers::upload::{upload_matrix, Upload};
use crate::ops::{self, WeightFormat};

/// One measured product.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MatmulFigure {
    /// What it stands for (e.g. "square", "decode d x d").
    pub name: String,
    /// Rows of A.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// Reduction length.
    pub k: usize,
    /// Whether B is stored `[N, K]` (weights).
    pub transpose_b: bool,
    /// B's format: f32, or for `[N, K]` weights the format asked for (f16, q8_0, ...).
    pub weights: String,
    /// Seconds per product.
    pub seconds: f64,
    /// 2·M·N·K / seconds, in GFLOP/s.
    pub gflops: f64,
    /// Bytes of A, B (as stored) and C moved once / seconds, in GB/s.
    pub gbps: f64,
    /// gflops / the FMA roof.
    pub fraction_of_fma_roof: f64,
    /// gbps / the copy roof.
    pub fraction_of_copy_roof: f64,
}

/// The whole benchmark's result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MatmulReport {
    /// Adapter name.
    pub adapter: String,
    /// Backend.
    pub backend: String,
    /// FMA roof, GFLOP/s.
    pub fma_roof_gflops: f64,
    /// Copy roof, GB/s.
    pub copy_roof_gbps: f64,
    /// Every product measured.
    pub figures: Vec<MatmulFigure>,
}

/// The products measured: squares, then transformer shapes of width `d`.
pub fn default_cases(d: usize) -> Vec<(String, usize, usize, usize, bool)> {
    let mut cases = Vec::new();
    for s in [256, 512, 1024, 2048] {
        cases.push(("square A·Bᵀ".to_string(), s, s, s, true));
        cases.push(("square A·B".to_string(), s, s, s, false));
    }
    cases.push((format!("decode 1x{d}·({d}x{d})ᵀ"), 1, d, d, true));
    cases.push((format!("decode 1x{d}·({}x{d})ᵀ", 4 * d), 1, 4 * d, d, true));
    cases.push((
        format!("prefill 256x{d}·({}x{d})ᵀ", 4 * d),
        256,
        4 * d,
        d,
        true,
    ));
    cases
}

/// Measures the roofs and every case; `progress` is called after each figure. `weights` is the
/// format of B where it is stored `[N, K]` (a weight, multiplied as the models do); B stored
/// `[K, N]` stays f32.
pub fn run(
    ctx: &GpuContext,
    cases: &[(String, usize, usize, usize, bool)],
    weights: WeightFormat,
    mut progress: impl FnMut(&MatmulFigure),
) -> Result<MatmulReport> {
    let fma = fma_roof_gflops(ctx)?;
    let copy = copy_roof_gbps(ctx)?;
    let mut figures = Vec::new();
    for (name, m, n, k, t) in cases {
        let (m, n, k, t) = (*m, *n, *k, *t);
        let a = GpuTensor::from_f32(ctx, "A", &[m, k], &vec![0.5; m * k])?;
        let (secs, b_bytes, format) = match t {
            true => {
                // Seeded values, not a constant: a quantized constant row is one code repeated.
                let values = (0..n * k)
                    .map(|i| ((i * 2_654_435_761) % 1000) as f32 / 1000.0 - 0.5)
                    .collect();
                let up = Upload {
                    format: Some(weights),
                    values: WeightFormat::F32,
                    block_bytes: split::block_limit(ctx, None),
                };
                let b = upload_matrix(ctx, up, "B", &[n, k], HostMatrix::F32(values))?;
                let secs = seconds_per_rep(ctx, 0.3, |batch| ops::linear(batch, &a, &b).map(drop))?;
                (secs, b.bytes() as f64, b.format())
            }
            false => {
                let b = GpuTensor::from_f32(ctx, "B", &[k, n], &vec![0.25; n * k])?;
                let c = GpuTensor::zeros(ctx, "C", &[m, n])?;
                let secs =
                    seconds_per_rep(ctx, 0.3, |batch| ops::matmul_into(batch, &a, &b, false, &c))?;
                (secs, 4.0 * (n * k) as f64, WeightFormat::F32)
            }
        };
        let gflops = 2.0 * (m * n * k) as f64 / secs / 1e9;
        let gbps = (4.0 * (m * k + m * n) as f64 + b_bytes) / secs / 1e9;
        let fig = MatmulFigure {
            name: name.clone(),
            m,
            n,
            k,
            transpose_b: t,
            weights: format.name().to_string(),
            seconds: secs,
            gflops,
            gbps,
            fraction_of_fma_roof: gflops / fma,
            fraction_of_copy_roof: gbps / copy,
        };
        progress(&fig);
        figures.push(fig);
    }
    Ok(MatmulReport {
        adapter: ctx.adapter.name.clone(),
        backend: ctx.adapter.backend.clone(),
        fma_roof_gflops: fma,
        copy_roof_gbps: copy,
        figures,
    })
}
