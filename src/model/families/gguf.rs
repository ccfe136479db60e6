//! What the families share in GGUF files: metadata keys under `{arch}.`, mapped to the
//! Hugging Face config each family reads, and the tensor names `convert_hf_to_gguf.py` writes
//! (`blk.3.attn_q.weight`), with the layouts it changes: q/k rows permuted for llama.cpp's
//! RoPE, routed experts stacked, MLA's `kv_b_proj` split in two.

use crate::error::{Error, Result};
use crate::model::formats::gguf::Value;
use crate::model::formats::weights::{HostMatrix, TensorLayout, Unused, WeightFile};
use std::collections::BTreeMap;

/// A GGUF file's metadata, read under its architecture's keys, with errors naming the key.
pub struct GgufMeta<'a> {
    /// The file, as errors name it.
    pub file: &'a str,
    /// `general.architecture`.
    pub arch: &'a str,
    /// Every key.
    pub meta: &'a BTreeMap<String, Value>,
    /// Rows of `token_embd.weight`: the vocabulary.
    pub vocab: usize,
    /// The vectors [`super::Family::gguf_config_vectors`] names that the file holds, by name.
    pub vectors: BTreeMap<String, Vec<f32>>,
}

impl GgufMeta<'_> {
    /// An error about `key`.
    pub fn bad(&self, key: &str, expected: &str, found: String) -> Error {
        Error::Weights {
            file: self.file.to_string(),
            what: key.to_string(),
            expected: expected.to_string(),
            found,
        }
    }

    /// The value of `{arch}.{key}`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.meta.get(&format!("{}.{key}", self.arch))
    }

    /// `{arch}.{key}` as an unsigned integer.
    pub fn int(&self, key: &str) -> Result<u64> {
        self.get(key).and_then(Value::as_u64).ok_or_else(|| {
            let k = format!("{}.{key}", self.arch);
            self.bad(&k, "an unsigned integer", format!("{:?}", self.get(key)))
        })
    }

    /// `{arch}.{key}` as an unsigned integer, `default` where absent or not one.
    pub fn int_or(&self, key: &str, default: u64) -> u64 {
        self.get(key).and_then(Value::as_u64).unwrap_or(default)
    }

    /// A number where the key is present (NaN and infinity refused: JSON would make them null,
    /// and the default would silently stand in), else `default`.
    pub fn float_or(&self, key: &str, default: f64) -> Result<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_f64().filter(|f| f.is_finite()).ok_or_else(|| {
                let k = format!("{}.{key}", self.arch);
                self.bad(&k, "a finite number", format!("{v:?}"))
            }),
        }
    }

    /// The Hugging Face config fields every decoder's file has, for `model_type`.
    pub fn decoder_json(&self, model_type: &str) -> Result<serde_json::Value> {
        let heads = self.int("attention.head_count")?;
        Ok(serde_json::json!({
            "model_type": model_type,
            "vocab_size": self.vocab,
            "hidden_size": self.int("embedding_length")?,
            "intermediate_size": self.int("feed_forward_length")?,
            "num_hidden_layers": self.int("block_count")?,
            "num_attention_heads": heads,
            "num_key_value_heads": self.int("attention.head_count_kv").unwrap_or(heads),
            "max_position_embeddings": self.int("context_length")?,
            "rms_norm_eps": self.float_or("attention.layer_norm_rms_epsilon", 1e-6)?,
            "rope_theta": self.float_or("rope.freq_base", 10000.0)?,
            "tie_word_embeddings": false,
        }))
    }
}

/// How `convert_hf_to_gguf.py` names and lays out a family's tensors: the names every family
/// shares, the family's own (`extra`, looked up first), and q/k rows permuted for llama.cpp's
/// RoPE where the family has it (Llama and Mistral).
pub struct GgufLayout {
    /// The family's own names of block parts, `(ours, the file's)`.
    pub extra: &'static [(&'static str, &'static str)],
    /// `(heads, kv_heads)` when the q and k rows are permuted: taking `q_proj` or `k_proj`
    /// undoes it.
    pub permuted_qk: Option<(usize, usize)>,
}

/// The top-level tensors' names.
const TOP: &[(&str, &str)] = &[
    ("embed_tokens.weight", "token_embd.weight"),
    ("norm.weight", "output_norm.weight"),
    ("lm_head.weight", "output.weight"),
];

/// The block parts' names every family shares.
const LAYER: &[(&str, &str)] = &[
    ("attn_norm.", "attn_norm."),
    ("ffn_norm.", "ffn_norm."),
    ("attn.q_proj.", "attn_q."),
    ("attn.k_proj.", "attn_k."),
    ("attn.v_proj.", "attn_v."),
    ("attn.o_proj.", "attn_output."),
    ("attn.q_norm.", "attn_q_norm."),
    ("attn.k_norm.", "attn_k_norm."),
    ("attn.q_a_proj.", "attn_q_a."),
    ("attn.q_a_layernorm.", "attn_q_a_norm."),
    ("attn.q_b_proj.", "attn_q_b."),
    ("attn.kv_a_proj_with_mqa.", "attn_kv_a_mqa."),
    ("attn.kv_a_layernorm.", "attn_kv_a_norm."),
    ("attn.kv_b_proj.", "attn_kv_b."),
    ("ffn.gate.weight", "ffn_gate_inp.weight"),
    ("ffn.gate.e_score_correction_bias", "exp_probs_b.bias"),
    ("ffn.shared_experts.gate_proj.", "ffn_gate_shexp."),
    ("ffn.shared_experts.up_proj.", "ffn_up_shexp."),
    ("ffn.shared_experts.down_proj.", "ffn_down_shexp."),
    ("ffn.gate_proj.", "ffn_gate."),
    ("ffn.up_proj.", "ffn_up."),
    ("ffn.down_proj.", "ffn_down."),
];

impl GgufLayout {
    /// The shared names, nothing permuted.
    pub const PLAIN: GgufLayout = GgufLayout {
        extra: &[],
        permuted_qk: None,
    };
}

impl TensorLayout for GgufLayout {
    /// The GGUF name of the model's tensor `name`; a name with no GGUF spelling is kept, and
    /// reported missing.
    fn file_name(&self, name: &str) -> String {
        if let Some((_, g)) = TOP.iter().find(|(ours, _)| *ours == name) {
            return g.to_string();
        }
        let Some((index, inner)) = name
            .strip_prefix("layers.")
            .and_then(|rest| rest.split_once('.'))
        else {
            return name.to_string();
        };
        self.extra
            .iter()
            .chain(LAYER)
            .find_map(|(ours, g)| {
                inner
                    .strip_prefix(ours)
                    .map(|r| format!("blk.{index}.{g}{r}"))
            })
            .unwrap_or_else(|| name.to_string())
    }

    fn take(&self, files: &mut WeightFile, name: &str, shape: &[usize]) -> Result<HostMatrix> {
        if let Some((stacked, j)) = expert_tensor(name) {
            return files.read_tensor(&stacked, shape, Some(j));
        }
        if let Some((k_b, v_b)) = split_kv_b(name) {
            if !files.contains(name) && files.holds(&k_b) {
                return take_split_kv_b(files, &k_b, &v_b, shape);
            }
        }
        let file_name = self.file_name(name);
        let matrix = files.read_tensor(&file_name, shape, None)?;
        let groups = match (self.permuted_qk, name.rsplit('.').nth(1)) {
            (Some((heads, _)), Some("q_proj")) => heads,
            (Some((_, kv_heads)), Some("k_proj")) => kv_heads,
            _ => return Ok(matrix),
        };
        unpermute_rows(matrix, shape, groups).ok_or_else(|| {
            files.err(
                &file_name,
                format!("rows in {groups} heads of pairs"),
                format!("shape {shape:?}"),
            )
        })
    }

    /// Not GGUF's stacked experts, split kv_b, or q/k rows permuted across heads (read whole).
    fn reads_rows(&self, name: &str) -> bool {
        let permuted = self.permuted_qk.is_some()
            && matches!(name.rsplit('.').nth(1), Some("q_proj" | "k_proj"));
        expert_tensor(name).is_none() && split_kv_b(name).is_none() && !permuted
    }

    fn unused(&self) -> Unused {
        Unused::ErrorInBlocks
    }
}

/// MLA's `kv_b_proj` `[heads·(nope + v), rank]` of a GGUF file that holds it split into `k_b`
/// and `v_b` (see [`split_kv_b`]), as values: `k_b`'s blocks run along other rows than
/// `kv_b_proj`'s.
fn take_split_kv_b(
    files: &mut WeightFile,
    k_b: &str,
    v_b: &str,
    shape: &[usize],
) -> Result<HostMatrix> {
    let k_shape = files.shape_of(k_b).unwrap_or_default();
    let (rows, rank) = match shape {
        [rows, rank] => (*rows, *rank),
        _ => return Err(files.err(k_b, "a matrix", format!("shape {shape:?}"))),
    };
    let (heads, nope) = match k_shape[..] {
        [h, r, nope] if r == rank && h > 0 && rows % h == 0 && nope <= rows / h => (h, nope),
        _ => {
            return Err(files.err(
                k_b,
                format!("shape [heads, {rank}, qk_nope] of kv_b_proj {shape:?}"),
                format!("shape {k_shape:?}"),
            ))
        }
    };
    let k = files.read_tensor(k_b, &k_shape, None)?.into_f32();
    let v = files.read_tensor(v_b, &[heads, rows / heads - nope, rank], None)?;
    Ok(HostMatrix::F32(join_kv_b(
        &k,
        &v.into_f32(),
        heads,
        rank,
        nope,
    )))
}

/// Where a routed expert's matrix is in a GGUF file: `layers.{i}.ffn.experts.{j}.{m}_proj.weight`
/// is expert `j` of the stacked `blk.{i}.ffn_{m}_exps.weight` `[experts, rows, columns]`.
pub(crate) fn expert_tensor(name: &str) -> Option<(String, usize)> {
    let (index, inner) = name.strip_prefix("layers.")?.split_once('.')?;
    let (expert, matrix) = inner.strip_prefix("ffn.experts.")?.split_once('.')?;
    let m = matrix.strip_suffix("_proj.weight")?;
    if !["gate", "up", "down"].contains(&m) {
        return None;
    }
    Some((
        format!("blk.{index}.ffn_{m}_exps.weight"),
        expert.parse().ok()?,
    ))
}

/// The two tensors `convert_hf_to_gguf.py` splits MLA's `kv_b_proj` into (current llama.cpp
/// writes only these): `attn_k_b` `[heads, kv_lora_rank, qk_nope]` (each head's key part,
/// transposed) and `attn_v_b` `[heads, v_head_dim, kv_lora_rank]`.
pub(crate) fn split_kv_b(name: &str) -> Option<(String, String)> {
    let (index, inner) = name.strip_prefix("layers.")?.split_once('.')?;
    (inner == "attn.kv_b_proj.weight").then(|| {
        (
            format!("blk.{index}.attn_k_b.weight"),
            format!("blk.{index}.attn_v_b.weight"),
        )
    })
}

/// `kv_b_proj` `[heads·(nope + v), rank]` from its split halves: head `h`'s first `nope` rows
/// are `k_b[h]` `[rank, nope]` transposed, its next `v` rows `v_b[h]` `[v, rank]`.
pub(crate) fn join_kv_b(
    k_b: &[f32],
    v_b: &[f32],
    heads: usize,
    rank: usize,
    nope: usize,
) -> Vec<f32> {
    let v = v_b.len() / (heads * rank).max(1);
    let mut kv_b = Vec::with_capacity(heads * (nope + v) * rank);
    for h in 0..heads {
        let k = &k_b[h * rank * nope..(h + 1) * rank * nope];
        for row in 0..nope {
            kv_b.extend((0..rank).map(|c| k[c * nope + row]));
        }
        kv_b.extend_from_slice(&v_b[h * v * rank..(h + 1) * v * rank]);
    }
    kv_b
}

/// Undoes `convert_hf_to_gguf.py`'s permutation of q/k rows (weights or biases of `shape`) in
/// `groups` heads: within a head, row `2i + j` of the file is row `j·half + i` of the checkpoint.
/// `None` when the rows are not whole heads of pairs.
pub(crate) fn unpermute_rows(m: HostMatrix, shape: &[usize], groups: usize) -> Option<HostMatrix> {
    let rows = shape.first().copied()?;
    if groups == 0 || !rows.is_multiple_of(groups) || !(rows / groups).is_multiple_of(2) {
        return None;
    }
    let (dh, half) = (rows / groups, rows / groups / 2);
    // The checkpoint's row r comes from the file's row source(r).
    let source = |r: usize| {
        let (h, within) = (r / dh, r % dh);
        let (j, i) = (within / half, within % half);
        h * dh + 2 * i + j
    };
    Some(match m {
        HostMatrix::F32(v) => HostMatrix::F32(reorder_rows(&v, rows, source)),
        HostMatrix::Quant(q) => HostMatrix::Quant(crate::ops::QuantHost {
            scheme: q.scheme,
            codes: reorder_rows(&q.codes, rows, source),
            scales: reorder_rows(&q.scales, rows, source),
            mins: match q.mins.is_empty() {
                true => Vec::new(),
                false => reorder_rows(&q.mins, rows, source),
            },
            headers: match q.headers.is_empty() {
                true => Vec::new(),
                false => reorder_rows(&q.headers, rows, source),
            },
        }),
    })
}

/// The `rows` rows of `data` (equal lengths) reordered: row `r` of the result is row
/// `source(r)` of `data`.
fn reorder_rows<T: Copy>(data: &[T], rows: usize, source: impl Fn(usize) -> usize) -> Vec<T> {
    let per_row = data.len() / rows.max(1);
    (0..rows)
        .flat_map(|r| {
            data[source(r) * per_row..(source(r) + 1) * per_row]
                .iter()
                .copied()
        })
        .collect()
}
