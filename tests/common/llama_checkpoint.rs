//! A Llama checkpoint of seeded random weights written as transformers lays it out, with a
//! golden from the plain CPU reference (`latentgpu::cpu::llama_forward`): real widths for
//! `compare` (`tests/hf_real_shape.rs`), long prompts for the prefill's chunks.

use super::Rng;
use latentgpu::cpu::{llama_forward, LlamaLayer, LlamaShape, LlamaWeights};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Seeded weights by Hugging Face name: matrices uniform with std 0.02 (transformers' init),
/// norms 1 ± 0.1.
fn weights(s: &LlamaShape, layers: usize) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let mut rng = Rng::new(135);
    let a = 0.02 * 3f32.sqrt();
    let mut w = BTreeMap::new();
    let mut matrix = |w: &mut BTreeMap<_, _>, name: String, rows: usize, cols: usize| {
        w.insert(name, (vec![rows, cols], rng.vec(rows * cols, -a, a)));
    };
    matrix(&mut w, "model.embed_tokens.weight".into(), s.vocab, s.d);
    for i in 0..layers {
        let p = format!("model.layers.{i}");
        matrix(
            &mut w,
            format!("{p}.self_attn.q_proj.weight"),
            s.heads * s.head_dim,
            s.d,
        );
        matrix(
            &mut w,
            format!("{p}.self_attn.k_proj.weight"),
            s.kv_heads * s.head_dim,
            s.d,
        );
        matrix(
            &mut w,
            format!("{p}.self_attn.v_proj.weight"),
            s.kv_heads * s.head_dim,
            s.d,
        );
        matrix(
            &mut w,
            format!("{p}.self_attn.o_proj.weight"),
            s.d,
            s.heads * s.head_dim,
        );
        matrix(&mut w, format!("{p}.mlp.gate_proj.weight"), s.hidden, s.d);
        matrix(&mut w, format!("{p}.mlp.up_proj.weight"), s.hidden, s.d);
        matrix(&mut w, format!("{p}.mlp.down_proj.weight"), s.d, s.hidden);
    }
    let mut rng = Rng::new(136);
    let mut norm = |name: String| {
        w.insert(name, (vec![s.d], rng.vec(s.d, 0.9, 1.1)));
    };
    for i in 0..layers {
        norm(format!("model.layers.{i}.input_layernorm.weight"));
        norm(format!("model.layers.{i}.post_attention_layernorm.weight"));
    }
    norm("model.norm.weight".into());
    w
}

pub fn write_safetensors(
    path: &Path,
    tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
    meta: Option<std::collections::HashMap<String, String>>,
) {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(path, safetensors::serialize(views, meta).unwrap()).unwrap();
}

/// A Llama checkpoint of seeded random weights and its golden from the CPU reference.
pub struct LlamaCheckpoint {
    /// Its shape.
    pub shape: LlamaShape,
    /// Decoder layers.
    pub layers: usize,
    /// `max_position_embeddings`.
    pub context: usize,
    /// Tokens the golden runs (seeded random ids).
    pub tokens: usize,
}

/// Writes the checkpoint `c` (config.json + model.safetensors, as transformers lays them out)
/// into `root/name`, and a golden from the CPU reference (float64, and f32 with sequential sums
/// as a second correct f32 implementation) as `root/golden.safetensors`; returns (checkpoint
/// dir, golden path).
pub fn write_checkpoint(c: &LlamaCheckpoint, root: &Path, name: &str) -> (PathBuf, PathBuf) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let s = &c.shape;
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": s.vocab,
        "hidden_size": s.d, "intermediate_size": s.hidden, "num_hidden_layers": c.layers,
        "num_attention_heads": s.heads, "num_key_value_heads": s.kv_heads,
        "head_dim": s.head_dim, "hidden_act": "silu", "max_position_embeddings": c.context,
        "rms_norm_eps": s.eps, "tie_word_embeddings": true, "attention_bias": false,
        "mlp_bias": false, "dtype": "float32",
        "rope_parameters": {"rope_type": "default", "rope_theta": s.rope_base},
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let w = weights(s, c.layers);
    let f32_bytes = |v: &[f32]| bytemuck::cast_slice(v).to_vec();
    write_safetensors(
        &dir.join("model.safetensors"),
        w.iter()
            .map(|(n, (s, v))| (n.clone(), Dtype::F32, s.clone(), f32_bytes(v)))
            .collect(),
        None,
    );

    let get = |name: &str| w[name].1.as_slice();
    let layers = (0..c.layers)
        .map(|i| {
            let n = |s: &str| format!("model.layers.{i}.{s}.weight");
            LlamaLayer {
                attn_norm: get(&n("input_layernorm")),
                q: get(&n("self_attn.q_proj")),
                k: get(&n("self_attn.k_proj")),
                v: get(&n("self_attn.v_proj")),
                o: get(&n("self_attn.o_proj")),
                ffn_norm: get(&n("post_attention_layernorm")),
                gate: get(&n("mlp.gate_proj")),
                up: get(&n("mlp.up_proj")),
                down: get(&n("mlp.down_proj")),
            }
        })
        .collect();
    let weights = LlamaWeights {
        embed: get("model.embed_tokens.weight"),
        layers,
        norm: get("model.norm.weight"),
        lm_head: get("model.embed_tokens.weight"),
    };
    let mut rng = Rng::new(7);
    let tokens: Vec<u32> = (0..c.tokens)
        .map(|_| (rng.next_u64() % s.vocab as u64) as u32)
        .collect();
    let (hidden64, logits64) = llama_forward(&weights, s, &tokens, |x| x);
    let (hidden32, logits32) = llama_forward(&weights, s, &tokens, |x| x as f32 as f64);

    let f64_bytes = |v: &[f64]| bytemuck::cast_slice(v).to_vec();
    let as_f32 = |v: &[f64]| f32_bytes(&v.iter().map(|&x| x as f32).collect::<Vec<_>>());
    let (n, d, v) = (c.tokens, s.d, s.vocab);
    let ids: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
    let mut out = vec![
        (
            "tokens".to_string(),
            Dtype::I64,
            vec![n],
            bytemuck::cast_slice(&ids).to_vec(),
        ),
        ("logits".into(), Dtype::F32, vec![n, v], as_f32(&logits32)),
        (
            "logits_f64".into(),
            Dtype::F64,
            vec![n, v],
            f64_bytes(&logits64),
        ),
    ];
    for (i, (h32, h64)) in hidden32.iter().zip(&hidden64).enumerate() {
        out.push((format!("hidden.{i}"), Dtype::F32, vec![n, d], as_f32(h32)));
        out.push((
            format!("hidden_f64.{i}"),
            Dtype::F64,
            vec![n, d],
            f64_bytes(h64),
        ));
    }
    let meta = [
        ("device", "cpu reference (f32, sequential sums, no FMA)"),
        ("torch", "none"),
        ("dtype", "float32"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let golden = root.join("golden.safetensors");
    write_safetensors(&golden, out, Some(meta));
    (dir, golden)
}
