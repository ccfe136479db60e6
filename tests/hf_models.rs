//! Hugging Face checkpoints of the dense families, saved by transformers' `save_pretrained`
//! (`reference/export_hf_fixtures.py`, `tests/fixtures/hf-dense/`): on every adapter the logits
//! and every layer are within `compare`'s tolerance of transformers', and greedy decoding with
//! the cache gives exactly transformers' tokens; the model's tokenizer and generation_config are
//! honoured; broken directories are errors that name what is wrong.

mod common;

use common::{contexts, fixture, greedy_and_expected, on_every_adapter};
use latentgpu::model::formats::tokenizer::Tokenizer;
use latentgpu::model::tools::compare::{compare, Golden};
use latentgpu::model::tools::summary::{cache_bytes_at, summarize_with};
use latentgpu::model::{CacheOptions, LoadOptions, Logits, Model};
use latentgpu::ops::KvFormat;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every fixture: Llama (GQA 3, tokenizer + generation_config), Llama 3 RoPE with MQA in bf16,
/// Llama with linear RoPE, GeGLU and biases, Mistral with a window of 7 in shards, Qwen2 with
/// biases, Qwen3 with head_dim 12, DeepSeek-V2 (MLA, a dense first layer, greedy routing, a
/// shared expert; and with q_lora, YaRN, group-limited routing, and the moe_layer_freq and
/// norm_topk_prob that transformers 5's V2 ignores)
/// and DeepSeek-V3 (q_lora, noaux_tc routing over groups with a correction
/// bias, two shared experts; and unnormalised weights, one group, no q_lora), Gemma 3 (a window
/// of 5 over 40 tokens, a full layer between sliding ones with its own linear RoPE, four norms
/// a block, a scaled tied embedding), SmolLM3 (NoPE layers), Qwen3-MoE (mixtures in the layers
/// decoder_sparse_step and mlp_only_layers leave, unnormalised top-3 of 6), Mixtral (top-2 of 8
/// in every layer), Phi-4-mini's Phi-3 (fused q/k/v and gate/up, partial rotary, LongRoPE past
/// its original context, a window) and Qwen3 with YaRN past its native context.
const FIXTURES: &[&str] = &[
    "llama-gqa3",
    "llama3-mqa-bf16",
    "llama-linear-gelu-bias",
    "mistral-window-sharded",
    "qwen2-bias",
    "qwen3-head-dim",
    "deepseek-v2-moe",
    "deepseek-v2-groups-yarn",
    "deepseek-v3-noaux",
    "deepseek-v3-unnormed",
    "gemma3-window-full",
    "smollm3-nope",
    "qwen3-moe-sparse-step",
    "qwen3-moe-normed",
    "mixtral-top2",
    "phi4-mini-longrope",
    "qwen3-yarn",
];

fn dir(name: &str) -> PathBuf {
    fixture("hf-dense").join(name)
}

fn expected(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(dir(name).join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn every_layer_and_the_logits_are_within_compare_tolerance_of_transformers() {
    on_every_adapter(|ctx| {
        for name in FIXTURES {
            let model = Model::load_dir(ctx, &dir(name).join("model")).unwrap();
            let golden = Golden::open(&dir(name).join("golden.safetensors")).unwrap();
            let report = compare(ctx, &model, &golden).unwrap();
            assert_eq!(report.first_failure, None, "{name}: {:#?}", report.rows);
            assert_eq!(report.rows.len(), model.config.n_layers + 1);
            let logits = report.rows.last().unwrap();
            assert_eq!(logits.top1_agreement, Some(1.0), "{name}");
        }
    });
}

#[test]
fn greedy_decoding_with_the_cache_gives_transformers_tokens() {
    on_every_adapter(|ctx| {
        for name in FIXTURES {
            let model = Model::load_dir(ctx, &dir(name).join("model")).unwrap();
            let (got, want) = greedy_and_expected(ctx, &model, &expected(name));
            assert_eq!(got, want, "{name} on {}", ctx.name());
        }
    });
}

#[test]
fn shards_from_bytes_load_as_the_directory_does() {
    // What a web page does with the files a user picks: config text and shard bytes.
    let ctx = &contexts()[0];
    let model_dir = dir("mistral-window-sharded").join("model");
    let shards: Vec<(String, Vec<u8>)> = std::fs::read_dir(&model_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    let config = std::fs::read_to_string(model_dir.join("config.json")).unwrap();
    let model = Model::from_shards_bytes(ctx, &config, shards, LoadOptions::default()).unwrap();
    let golden = Golden::open(&dir("mistral-window-sharded").join("golden.safetensors")).unwrap();
    assert_eq!(compare(ctx, &model, &golden).unwrap().first_failure, None);
}

#[test]
fn the_tokenizer_adds_bos_as_transformers_does() {
    let e = expected("llama-gqa3");
    let tok = Tokenizer::for_model(&dir("llama-gqa3").join("model"), 131).unwrap();
    let got = tok.encode(e["tokenizer_text"].as_str().unwrap()).unwrap();
    assert_eq!(got, ids(&e["tokenizer_ids"]));
    assert_eq!(got[0], 1, "BOS first");
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_latentgpu"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn generate_stops_at_generation_config_eos_and_prints_ids() {
    let e = expected("llama-gqa3");
    let model = dir("llama-gqa3").join("model");
    let prompt: Vec<String> = ids(&e["prompt_ids"]).iter().map(u32::to_string).collect();
    // No sampling flags: generation_config.json says do_sample false (greedy) and
    // eos_token_id [2, t]; transformers' own generate stopped after t.
    let out = cli(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt-ids",
        &prompt.join(","),
        "--max-tokens",
        "24",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ids(&json["ids"]), ids(&e["greedy_ids_with_eos"]));
    assert_eq!(ids(&json["prompt_ids"]), ids(&e["prompt_ids"]));

    let out = cli(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        e["tokenizer_text"].as_str().unwrap(),
        "--max-tokens",
        "3",
        "--ignore-eos",
        "--print-ids",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let bos_prompt: Vec<String> = ids(&e["tokenizer_ids"])
        .iter()
        .map(u32::to_string)
        .collect();
    assert!(
        stdout.contains(&format!("prompt ids: {}", bos_prompt.join(","))),
        "{stdout}"
    );
    assert!(stdout.lines().any(|l| l.starts_with("ids: ")), "{stdout}");
}

#[test]
fn info_reports_the_model_before_uploading_it() {
    let model = dir("qwen3-head-dim").join("model");
    let out = cli(&["info", "--model", model.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["family"], "qwen3");
    // 101·32 embed + 101·32 head + 2 layers of (q 48·32, k 24·32, v 24·32, o 32·48,
    // q/k norms 12 + 12, 3·40·32 mlp, 2·32 norms) + 32 final norm.
    let layer = 48 * 32 + 24 * 32 + 24 * 32 + 32 * 48 + 24 + 3 * 40 * 32 + 2 * 32;
    assert_eq!(json["parameters"], 2 * 101 * 32 + 2 * layer + 32);
    assert_eq!(json["dtype_on_disk"], "F32");
    // K and V of 2 KV heads of 12 per layer, f32.
    assert_eq!(json["cache_bytes_per_token"], 2 * 2 * 2 * 12 * 4);
    assert!(json["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["bindings"] == 1));
}

#[test]
fn info_cache_bytes_are_those_the_model_allocates() {
    let ctx = &contexts()[0];
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dirs = [
        root.join("models/shakespeare-latent"),
        root.join("models/shakespeare-mha"),
        root.join("models/shakespeare-mla"),
        dir("qwen3-head-dim").join("model"),
        dir("mistral-window-sharded").join("model"),
    ];
    // Pages of 8 tokens: a prompt and a few decoded tokens cross pages, and a sliding window
    // (Mistral's) moves past some; f32 and f16 caches.
    for (d, format) in dirs
        .into_iter()
        .flat_map(|d| [(d.clone(), KvFormat::F32), (d, KvFormat::F16)])
    {
        let options = CacheOptions {
            page_tokens: 8,
            format,
            ..CacheOptions::default()
        };
        let summary = summarize_with(&d, u64::MAX, None, (None, format)).unwrap();
        let model = Model::load_dir(ctx, &d).unwrap();
        let mut cache = model.new_cache_with(ctx, options).unwrap();
        assert_eq!(summary.context, cache.capacity, "{}", d.display());
        let prompt: Vec<u32> = (0..37).collect();
        model
            .forward(ctx, &prompt, &mut cache, Logits::Last)
            .unwrap();
        for t in 0..5 {
            model.forward(ctx, &[t], &mut cache, Logits::Last).unwrap();
        }
        let expected = cache_bytes_at(&model.config, cache.len, 8, format);
        assert_eq!(expected, cache.held_bytes(), "{} {format:?}", d.display());
        let at_context = cache_bytes_at(&model.config, cache.capacity, 256, format);
        assert_eq!(summary.cache_bytes_at_context, at_context);
    }
}

/// A scratch copy of fixture `name`'s checkpoint directory.
fn scratch(name: &str, tag: &str) -> PathBuf {
    let out = std::env::temp_dir().join(format!("latentgpu-hf-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    for f in std::fs::read_dir(dir(name).join("model")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, out.join(f.file_name().unwrap())).unwrap();
    }
    out
}

fn load_err(dir: &Path) -> String {
    match Model::load_dir(&contexts()[0], dir) {
        Ok(_) => panic!("{} loaded without error", dir.display()),
        Err(e) => e.to_string(),
    }
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

fn assert_mentions(msg: &str, fragments: &[&str]) {
    for f in fragments {
        assert!(msg.contains(f), "error '{msg}' should mention '{f}'");
    }
}

#[test]
fn missing_shards_and_tensors_are_errors_that_name_them() {
    let d = scratch("mistral-window-sharded", "shard");
    std::fs::remove_file(d.join("model-00003-of-00010.safetensors")).unwrap();
    assert_mentions(
        &load_err(&d),
        &["model-00003-of-00010.safetensors", "no such file"],
    );

    let d = scratch("mistral-window-sharded", "index");
    edit_json(&d.join("model.safetensors.index.json"), |v| {
        v["weight_map"]["model.layers.0.mlp.extra.weight"] =
            "model-00001-of-00010.safetensors".into();
    });
    assert_mentions(
        &load_err(&d),
        &["model.layers.0.mlp.extra.weight", "in no shard"],
    );

    // The index drops a tensor and its shard: the model needs it, no file has it.
    let d = scratch("mistral-window-sharded", "tensor");
    let index = d.join("model.safetensors.index.json");
    let mut gone = String::new();
    edit_json(&index, |v| {
        let map = v["weight_map"].as_object_mut().unwrap();
        let (name, file) = map
            .iter()
            .find(|(n, _)| n.contains("layers.1.mlp.up_proj"))
            .map(|(n, f)| (n.clone(), f.as_str().unwrap().to_string()))
            .unwrap();
        map.retain(|_, f| f.as_str() != Some(&file));
        gone = name;
        std::fs::remove_file(d.join(&file)).unwrap();
    });
    assert_mentions(&load_err(&d), &[&gone, "no such tensor"]);
}

#[test]
fn unsupported_families_and_options_are_errors_that_list_what_is_supported() {
    let cases: [(&str, &str, serde_json::Value, &[&str]); 6] = [
        (
            "qwen2-bias",
            "model_type",
            "gpt2".into(),
            &["model_type", "'gpt2'", "llama, mistral, qwen2, qwen3"],
        ),
        (
            "qwen2-bias",
            "hidden_act",
            "relu".into(),
            &["hidden_act", "relu", "silu"],
        ),
        (
            "mistral-window-sharded",
            "attention_bias",
            true.into(),
            &["attention_bias", "mistral has no such option"],
        ),
        ("llama-gqa3", "mlp_bias", true.into(), &["mlp_bias"]),
        (
            "llama-gqa3",
            "rope_parameters",
            // Qwen2-VL's multimodal RoPE, which no family here runs.
            serde_json::json!({"rope_type": "mrope", "mrope_section": [2, 1], "rope_theta": 10000.0}),
            &[
                "rope_type",
                "mrope",
                "default, linear, dynamic, llama3, yarn, longrope",
            ],
        ),
        (
            "llama-gqa3",
            "num_key_value_heads",
            4.into(),
            &["n_kv_heads", "divisor of n_heads (6)", "4"],
        ),
    ];
    for (i, (name, field, value, fragments)) in cases.into_iter().enumerate() {
        let d = scratch(name, &format!("cfg{i}"));
        edit_json(&d.join("config.json"), |v| v[field] = value);
        assert_mentions(&load_err(&d), fragments);
    }
    // transformers' older spelling of the same settings loads: rope_theta + rope_scaling.
    let d = scratch("llama3-mqa-bf16", "old-rope");
    edit_json(&d.join("config.json"), |v| {
        let mut rope = v["rope_parameters"].take();
        v["rope_theta"] = rope["rope_theta"].take();
        rope.as_object_mut().unwrap().remove("rope_theta");
        v["rope_scaling"] = rope;
        v.as_object_mut().unwrap().remove("rope_parameters");
    });
    let ctx = &contexts()[0];
    let model = Model::load_dir(ctx, &d).unwrap();
    let golden = Golden::open(&dir("llama3-mqa-bf16").join("golden.safetensors")).unwrap();
    assert_eq!(compare(ctx, &model, &golden).unwrap().first_failure, None);
}

#[test]
fn a_tensor_the_model_does_not_use_is_reported_not_an_error() {
    let d = scratch("qwen2-bias", "extra");
    let (config, mut file) = latentgpu::model::families::open_dir(&d).unwrap();
    Model::load(&contexts()[0], config, &mut file, |_| {}).unwrap();
    assert!(file.unused().is_empty(), "{:?}", file.unused());
    // Tied: a checkpoint that also carries lm_head.weight loads, and the extra is reported.
    let bytes = std::fs::read(d.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let embed = st.tensor("model.embed_tokens.weight").unwrap();
    let mut tensors: Vec<(String, safetensors::tensor::TensorView)> = st.tensors();
    tensors.push(("lm_head.weight".into(), embed));
    std::fs::write(
        d.join("model.safetensors"),
        safetensors::serialize(tensors, None).unwrap(),
    )
    .unwrap();
    let (config, mut file) = latentgpu::model::families::open_dir(&d).unwrap();
    Model::load(&contexts()[0], config, &mut file, |_| {}).unwrap();
    assert_eq!(file.unused(), vec!["lm_head.weight".to_string()]);
}

#[test]
fn info_counts_the_parameters_a_token_goes_through() {
    let model = dir("deepseek-v2-moe").join("model");
    let json: serde_json::Value = serde_json::from_slice(&common::cli_stdout([
        "info",
        "--model",
        model.to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    assert_eq!(json["family"], "deepseek_v2");
    // Two mixture layers (the first is dense), each sending a token to 2 of 8 experts of
    // three 12×32 matrices: 2·6·3·12·32 parameters idle per token.
    let (all, active) = (
        json["parameters"].as_u64().unwrap(),
        json["active_parameters"].as_u64().unwrap(),
    );
    assert_eq!(all - active, 2 * 6 * 3 * 12 * 32);
    // Each layer's 8 experts stacked: 8·12·32 f32 in one binding.
    assert_eq!(json["expert_stacks"]["bytes"], 8 * 12 * 32 * 4);
    assert_eq!(json["expert_stacks"]["bindings"], 1);
}
