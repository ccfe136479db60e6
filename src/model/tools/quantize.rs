//! `latentgpu quantize`: a model directory written again with its weight matrices quantized, so
//! that it loads without quantizing (native).
//!
//! The output is the input's `config.json` (and tokenizer and generation config files), and one
//! `model.safetensors` in which each matrix the loader would quantize is a `U8` tensor
//! `[rows, k / 32 · block bytes]` of llama.cpp's blocks for the scheme (q8_0: an f16 scale and
//! 32 signed bytes; q4_0: an f16 scale and 16 bytes of nibbles; q4_1: an f16 scale and minimum
//! and 16 bytes), the file's metadata naming the scheme (`quantization`). Every other tensor
//! (norms, an embedding not tied to the LM head, routers, routed experts, latents, matrices
//! whose rows are not whole blocks) is kept as it was.

use crate::error::{Error, Result};
use crate::model::families::open_dir;
use crate::ops::{quantize, QuantScheme};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use std::path::Path;

pub use crate::model::formats::weights::SCHEME_KEY;

/// What was written.
#[derive(Clone, Debug, serde::Serialize)]
pub struct QuantizeReport {
    /// Tensors quantized.
    pub quantized: usize,
    /// Tensors kept as they were.
    pub kept: usize,
    /// Bytes of weights read.
    pub bytes_in: u64,
    /// Bytes of `model.safetensors` written.
    pub bytes_out: u64,
}

/// Whether the loader quantizes the tensor `name` of `shape` (a matrix of a product `x·Wᵀ`
/// whose rows are whole blocks; the embedding only when it is the LM head too).
fn is_quantized_matrix(name: &str, shape: &[usize], tied: bool) -> bool {
    let kept = [".experts.", ".gate.weight"];
    shape.len() == 2
        && shape[1].is_multiple_of(32)
        && name.ends_with(".weight")
        && !kept.iter().any(|k| name.contains(k))
        && (tied || !name.contains("embed_tokens"))
}

/// Writes the model directory `dir` to `out` with its matrices in `scheme`.
pub fn quantize_dir(dir: &Path, scheme: QuantScheme, out: &Path) -> Result<QuantizeReport> {
    let (config, mut file) = open_dir(dir)?;
    if file.gguf_metadata().is_some() {
        return Err(Error::Invalid {
            what: format!("model {}", dir.display()),
            expected: "a model directory of safetensors files".into(),
            found: "a GGUF file (its tensors are quantized already)".into(),
        });
    }
    if out.exists() && std::fs::read_dir(out).map_or(true, |mut d| d.next().is_some()) {
        return Err(Error::Invalid {
            what: format!("output {}", out.display()),
            expected: "a new or empty directory".into(),
            found: "one that holds files".into(),
        });
    }
    let infos = file.infos();
    if let Some(t) = infos.iter().find(|t| t.dtype.starts_with('Q')) {
        return Err(Error::Invalid {
            what: format!("model {}", dir.display()),
            expected: "float weights".into(),
            found: format!("'{}' quantized already ({})", t.name, t.dtype),
        });
    }
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut report = QuantizeReport {
        quantized: 0,
        kept: 0,
        bytes_in: infos.iter().map(|t| t.bytes).sum(),
        bytes_out: 0,
    };
    // Tensors are taken by the files' own names.
    file.layout = std::sync::Arc::new(crate::model::formats::weights::OwnLayout);
    for info in &infos {
        if is_quantized_matrix(&info.name, &info.shape, config.tie_embeddings) {
            let values = file.take_matrix(&info.name, &info.shape)?.into_f32();
            let q = quantize(scheme, &values, info.shape[1])?;
            let blocks = crate::ops::quant::to_ggml_blocks(&q).ok_or_else(|| Error::Invalid {
                what: "quantize format".into(),
                expected: "q8_0, q4_0 or q4_1".into(),
                found: scheme.name().into(),
            })?;
            let row = blocks.len() / info.shape[0];
            tensors.push((
                info.name.clone(),
                Dtype::U8,
                vec![info.shape[0], row],
                blocks,
            ));
            report.quantized += 1;
        } else {
            let (dtype, bytes) = file.raw(&info.name)?;
            tensors.push((info.name.clone(), dtype, info.shape.clone(), bytes));
            report.kept += 1;
        }
    }
    let views = tensors
        .iter()
        .map(|(name, dtype, shape, data)| {
            TensorView::new(*dtype, shape.clone(), data).map(|v| (name.clone(), v))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Invalid {
            what: "quantized tensors".into(),
            expected: "consistent shapes and data".into(),
            found: e.to_string(),
        })?;
    let metadata = [
        (SCHEME_KEY.to_string(), scheme.name().to_string()),
        ("format".to_string(), "pt".to_string()),
    ]
    .into_iter()
    .collect();
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let path = out.join("model.safetensors");
    safetensors::serialize_to_file(views, Some(metadata), &path).map_err(|e| Error::Invalid {
        what: format!("writing {}", path.display()),
        expected: "a safetensors file".into(),
        found: e.to_string(),
    })?;
    report.bytes_out = std::fs::metadata(&path)
        .map_err(|e| Error::io(&path, e))?
        .len();
    for extra in [
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ] {
        let from = dir.join(extra);
        if from.is_file() {
            std::fs::copy(&from, out.join(extra)).map_err(|e| Error::io(&from, e))?;
        }
    }
    Ok(report)
}
