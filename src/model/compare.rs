//! Layer-by-layer comparison with a golden file written by `reference/export_golden.py` (PyTorch
//! on CUDA, MPS or CPU): per block output and for the logits, the max abs and normwise relative
//! error against the golden device's fp32 result, cosine similarity, top-1 agreement, and a
//! pass/fail against the float64 result in the same file.

use super::transformer::{Logits, Model};
use crate::error::{Error, Result};
use crate::gpu::{Batch, GpuContext};
use safetensors::{Dtype, SafeTensors};
use std::path::{Path, PathBuf};

/// A golden file: `tokens` (I64 `[n]`), `hidden.{i}` and `logits` (the device's fp32 result),
/// `hidden_f64.{i}` and `logits_f64` (float64 on CPU), and metadata `device`, `torch`.
pub struct Golden {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Golden {
    /// Reads and checks the header of `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let g = Golden {
            path: path.to_path_buf(),
            bytes,
        };
        g.tensors()?;
        Ok(g)
    }

    fn err(&self, what: &str, expected: impl Into<String>, found: impl Into<String>) -> Error {
        Error::Weights {
            file: self.path.display().to_string(),
            what: what.into(),
            expected: expected.into(),
            found: found.into(),
        }
    }

    fn tensors(&self) -> Result<SafeTensors<'_>> {
        SafeTensors::deserialize(&self.bytes)
            .map_err(|e| self.err("file", "a complete safetensors golden file", e.to_string()))
    }

    /// Metadata value `key`, or "unknown".
    pub fn meta(&self, key: &str) -> String {
        SafeTensors::read_metadata(&self.bytes)
            .ok()
            .and_then(|(_, m)| m.metadata().as_ref().and_then(|m| m.get(key).cloned()))
            .unwrap_or_else(|| "unknown".into())
    }

    /// Tensor `name` as f64 values, checked to have `shape`.
    pub fn values(&self, name: &str, shape: &[usize]) -> Result<Vec<f64>> {
        let st = self.tensors()?;
        let v = st.tensor(name).map_err(|_| {
            self.err(
                name,
                format!("a tensor of shape {shape:?}"),
                "no such tensor",
            )
        })?;
        if v.shape() != shape {
            return Err(self.err(
                name,
                format!("shape {shape:?}"),
                format!("shape {:?}", v.shape()),
            ));
        }
        let d = v.data();
        Ok(match v.dtype() {
            Dtype::F64 => d
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                .collect(),
            Dtype::F32 => d
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap_or([0; 4])) as f64)
                .collect(),
            other => return Err(self.err(name, "dtype F32 or F64", format!("{other:?}"))),
        })
    }

    /// The token ids.
    pub fn tokens(&self) -> Result<Vec<u32>> {
        let st = self.tensors()?;
        let v = st
            .tensor("tokens")
            .map_err(|_| self.err("tokens", "an I64 tensor", "no such tensor"))?;
        if v.dtype() != Dtype::I64 {
            return Err(self.err("tokens", "dtype I64", format!("{:?}", v.dtype())));
        }
        v.data()
            .chunks_exact(8)
            .map(|b| {
                let id = i64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
                u32::try_from(id).map_err(|_| self.err("tokens", "ids in 0..2^32", id.to_string()))
            })
            .collect()
    }
}

/// One compared tensor.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CompareRow {
    /// `block 0` … or `logits`.
    pub name: String,
    /// max |ours − theirs| (theirs: the golden device's fp32).
    pub max_abs: f64,
    /// max |ours − theirs| / max |theirs| (normwise).
    pub max_rel: f64,
    /// Cosine similarity of ours and theirs, flattened.
    pub cosine: f64,
    /// max |ours − float64|.
    pub ours_vs_f64: f64,
    /// max |theirs − float64|: the golden device's own fp32 error.
    pub theirs_vs_f64: f64,
    /// The bound `ours_vs_f64` must meet.
    pub tolerance: f64,
    /// For logits: the fraction of positions whose argmax agrees.
    pub top1_agreement: Option<f64>,
    /// Within tolerance.
    pub pass: bool,
}

/// The whole comparison.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CompareReport {
    /// Our adapter.
    pub adapter: String,
    /// The golden's device.
    pub golden_device: String,
    /// The golden's torch version.
    pub golden_torch: String,
    /// Tokens compared.
    pub tokens: usize,
    /// Per block, then the logits.
    pub rows: Vec<CompareRow>,
    /// The first row past tolerance.
    pub first_failure: Option<String>,
}

const U: f64 = 1.0 / 16_777_216.0;

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

fn argmax(row: &[f64]) -> usize {
    row.iter()
        .enumerate()
        .fold(0, |best, (i, &v)| if v > row[best] { i } else { best })
}

/// Compares one tensor. Tolerance (math.md §6): twice the golden device's own fp32 error against
/// float64, with a floor of 4 ULP of the largest value for tensors PyTorch happens to round well.
fn row(
    name: String,
    ours: &[f64],
    theirs: &[f64],
    exact: &[f64],
    vocab: Option<usize>,
) -> CompareRow {
    let max_abs = max_abs_diff(ours, theirs);
    let scale = theirs.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let dot: f64 = ours.iter().zip(theirs).map(|(a, b)| a * b).sum();
    let norms = ours.iter().map(|a| a * a).sum::<f64>().sqrt()
        * theirs.iter().map(|b| b * b).sum::<f64>().sqrt();
    let ours_vs_f64 = max_abs_diff(ours, exact);
    let theirs_vs_f64 = max_abs_diff(theirs, exact);
    let exact_scale = exact.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let tolerance = 2.0 * theirs_vs_f64.max(4.0 * U * exact_scale);
    let top1_agreement = vocab.map(|v| {
        let rows = ours.len() / v;
        let agree = (0..rows)
            .filter(|&r| argmax(&ours[r * v..(r + 1) * v]) == argmax(&theirs[r * v..(r + 1) * v]))
            .count();
        agree as f64 / rows as f64
    });
    CompareRow {
        name,
        max_abs,
        max_rel: if scale > 0.0 {
            max_abs / scale
        } else {
            max_abs
        },
        cosine: if norms > 0.0 { dot / norms } else { 1.0 },
        ours_vs_f64,
        theirs_vs_f64,
        tolerance,
        top1_agreement,
        pass: ours_vs_f64 <= tolerance,
    }
}

/// Runs the golden's tokens through `model` (one batch, one readback) and compares.
pub fn compare(ctx: &GpuContext, model: &Model, golden: &Golden) -> Result<CompareReport> {
    let tokens = golden.tokens()?;
    let (n, d, v) = (tokens.len(), model.config.d_model, model.config.vocab_size);
    let mut cache = model.new_cache(ctx)?;
    let mut b = Batch::new(ctx);
    let (logits, hidden) = model.record_forward(&mut b, &tokens, &mut cache, Logits::All)?;
    let mut all: Vec<_> = hidden.iter().collect();
    all.push(&logits);
    let outs = b.read(&all)?;
    let mut rows = Vec::new();
    for (i, out) in outs.iter().enumerate() {
        let ours: Vec<f64> = out.iter().map(|&x| x as f64).collect();
        let (name, theirs, exact, vocab) = if i < hidden.len() {
            (
                format!("block {i}"),
                golden.values(&format!("hidden.{i}"), &[n, d])?,
                golden.values(&format!("hidden_f64.{i}"), &[n, d])?,
                None,
            )
        } else {
            (
                "logits".to_string(),
                golden.values("logits", &[n, v])?,
                golden.values("logits_f64", &[n, v])?,
                Some(v),
            )
        };
        rows.push(row(name, &ours, &theirs, &exact, vocab));
    }
    let first_failure = rows.iter().find(|r| !r.pass).map(|r| r.name.clone());
    Ok(CompareReport {
        adapter: ctx.name(),
        golden_device: golden.meta("device"),
        golden_torch: golden.meta("torch"),
        tokens: n,
        rows,
        first_failure,
    })
}
