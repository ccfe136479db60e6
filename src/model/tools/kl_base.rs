//! The base file `llama-perplexity --kl-divergence-base FILE` writes, read, and a model scored
//! against it as `llama-perplexity --kl-divergence` scores one: so a run of llama.cpp (on CUDA,
//! say) can be checked against ours in one command (native).
//!
//! The file (llama.cpp's `tools/perplexity/perplexity.cpp`): `_logits_`, then `n_ctx` (u32),
//! `n_vocab` and `n_chunk` (i32), the `n_chunk · n_ctx` tokens (i32), then for each chunk and
//! each of its scored positions `n_ctx/2 .. n_ctx - 2` a row of `2·⌈n_vocab/2⌉ + 4` u16: a scale
//! and a minimum as two f32, then each token's log-probability as `scale · q + minimum`, those
//! below e^-16 of the top stored as 0 (left out of the KL divergence, as llama.cpp does).
//! Each chunk is scored from an empty cache, its first token replaced by BOS where the model's
//! tokenizer adds one.

use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::model::layers::transformer::{Logits, Model};
use crate::model::tools::kl_stats::{KlStats, KlSummary};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// An open base file: its sizes and tokens; the rows are read a chunk at a time.
pub struct KlBase {
    file: std::fs::File,
    name: String,
    /// Tokens per chunk.
    pub n_ctx: usize,
    /// The base model's vocabulary.
    pub n_vocab: usize,
    /// Chunks.
    pub n_chunk: usize,
    /// Every chunk's tokens, one after another.
    pub tokens: Vec<u32>,
    /// Where the rows start.
    rows_at: u64,
}

impl KlBase {
    /// Opens `path` and reads its header and tokens, checking its length against them.
    pub fn open(path: &Path) -> Result<Self> {
        let name = crate::files::shown_path(path);
        let mut file = crate::files::open_regular(path)?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let bad = |expected: String, found: String| Error::Weights {
            file: name.clone(),
            what: "llama-perplexity KL-divergence base".into(),
            expected,
            found,
        };
        let mut head = [0u8; 20];
        file.read_exact(&mut head)
            .map_err(|_| bad("a 20-byte header".into(), format!("{len} bytes")))?;
        if &head[..8] != b"_logits_" {
            return Err(bad(
                "the magic '_logits_'".into(),
                format!("{:?}", &head[..8]),
            ));
        }
        let word = |i: usize| u32::from_le_bytes(head[i..i + 4].try_into().expect("4 bytes"));
        let (n_ctx, n_vocab, n_chunk) = (word(8) as usize, word(12) as usize, word(16) as usize);
        if n_ctx < 4 || n_vocab == 0 || n_chunk == 0 || n_ctx > 1 << 24 || n_vocab > 1 << 24 {
            return Err(bad(
                "a context of 4 to 2^24 tokens, a vocabulary and a chunk".into(),
                format!("n_ctx {n_ctx}, n_vocab {n_vocab}, n_chunk {n_chunk}"),
            ));
        }
        let rows = (n_ctx - 1 - n_ctx / 2) as u64 * n_chunk as u64;
        let row_bytes = 2 * (2 * n_vocab.div_ceil(2) + 4) as u64;
        let tokens_bytes = 4 * (n_ctx as u64) * n_chunk as u64;
        let want = 20 + tokens_bytes + rows * row_bytes;
        if len != want {
            return Err(bad(
                format!("{want} bytes for n_ctx {n_ctx}, n_vocab {n_vocab}, n_chunk {n_chunk}"),
                format!("{len} bytes"),
            ));
        }
        let mut raw = vec![0u8; tokens_bytes as usize];
        file.read_exact(&mut raw).map_err(|e| Error::io(path, e))?;
        let tokens: Vec<u32> = raw
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if let Some(t) = tokens.iter().find(|&&t| t as usize >= n_vocab) {
            return Err(bad(format!("tokens below {n_vocab}"), format!("token {t}")));
        }
        Ok(KlBase {
            file,
            name,
            n_ctx,
            n_vocab,
            n_chunk,
            tokens,
            rows_at: 20 + tokens_bytes,
        })
    }

    /// The base's log-probabilities of chunk `c`'s scored positions (`None` where the file
    /// leaves a token out), each row `n_vocab` long.
    fn chunk_rows(&mut self, c: usize) -> Result<Vec<Vec<Option<f64>>>> {
        let per_chunk = self.n_ctx - 1 - self.n_ctx / 2;
        let nv = 2 * self.n_vocab.div_ceil(2) + 4;
        let at = self.rows_at + (c * per_chunk * nv * 2) as u64;
        let mut raw = vec![0u8; per_chunk * nv * 2];
        self.file
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.file.read_exact(&mut raw))
            .map_err(|e| Error::io(Path::new(&self.name), e))?;
        let u16s: Vec<u16> = raw
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        Ok(u16s
            .chunks_exact(nv)
            .map(|row| {
                let f = |i: usize| f32::from_bits(row[i] as u32 | (row[i + 1] as u32) << 16);
                let (scale, min) = (f(0), f(2));
                row[4..4 + self.n_vocab]
                    .iter()
                    .map(|&q| {
                        let log_p = scale * q as f32 + min;
                        (log_p > -16.0).then_some(log_p as f64)
                    })
                    .collect()
            })
            .collect())
    }
}

/// Scores `model` on the base file's chunks as `llama-perplexity --kl-divergence` does: each
/// chunk from an empty cache (its first token replaced by `bos` when given), its positions from
/// the middle on compared with the base's. `progress(done, total)` after each chunk.
pub fn compare_with_base(
    ctx: &GpuContext,
    model: &Model,
    base: &mut KlBase,
    bos: Option<u32>,
    mut progress: impl FnMut(usize, usize),
) -> Result<KlSummary> {
    let vocab = model.config.vocab_size;
    if base.n_vocab != vocab {
        return Err(Error::Invalid {
            what: format!("the KL-divergence base {}", base.name),
            expected: format!("the model's vocabulary of {vocab} tokens"),
            found: format!("{} tokens", base.n_vocab),
        });
    }
    if base.n_ctx > model.config.max_context {
        return Err(Error::Invalid {
            what: format!("the KL-divergence base {}", base.name),
            expected: format!(
                "chunks of at most {} tokens (the context)",
                model.config.max_context
            ),
            found: format!("{} tokens", base.n_ctx),
        });
    }
    let first = base.n_ctx / 2;
    let mut stats = KlStats::default();
    for c in 0..base.n_chunk {
        let mut ids = base.tokens[c * base.n_ctx..(c + 1) * base.n_ctx].to_vec();
        let targets = ids.clone();
        if let Some(bos) = bos {
            ids[0] = bos;
        }
        let mut cache = model.new_cache(ctx)?;
        let logits = model.forward(ctx, &ids, &mut cache, Logits::All)?;
        for (r, row) in base.chunk_rows(c)?.iter().enumerate() {
            let at = first + r;
            let ours = &logits[at * vocab..(at + 1) * vocab];
            stats.add(row, ours, targets[at + 1]);
        }
        progress(c + 1, base.n_chunk);
    }
    Ok(stats.summary())
}

/// The BOS llama.cpp puts first in each chunk for the GGUF file at `path`: its
/// `tokenizer.ggml.bos_token_id` where `add_bos_token` says so (by default for sentencepiece
/// vocabularies, as llama.cpp's); `None` for other models.
pub fn chunk_bos(path: &Path) -> Result<Option<u32>> {
    if !path.is_file() {
        return Ok(None);
    }
    let meta = &crate::model::formats::gguf::metadata_of(path)?;
    let spm = meta
        .get("tokenizer.ggml.model")
        .and_then(crate::model::formats::gguf::Value::as_str)
        == Some("llama");
    let add = match meta.get("tokenizer.ggml.add_bos_token") {
        Some(&crate::model::formats::gguf::Value::Bool(b)) => b,
        _ => spm,
    };
    let bos = meta
        .get("tokenizer.ggml.bos_token_id")
        .and_then(crate::model::formats::gguf::Value::as_u64)
        .and_then(|v| u32::try_from(v).ok());
    Ok(bos.filter(|_| add))
}
