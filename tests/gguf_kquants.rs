//! GGUF files as llama.cpp's own `llama-quantize` writes them (`reference/export_gguf_kquants.py`:
//! Q4_K_M, Q5_K_M, Q6_K, Q3_K_M and Q2_K mixes of a Llama whose widths are multiples of 256, and
//! a Qwen2 with q/k/v biases whose widths force the Q5_0, Q5_1 and Q8_0 fallbacks) load as they
//! are, every tensor stays in its own format, dequantizes to gguf-py's values bit for bit,
//! greedy decoding with the cache gives transformers' tokens on the same file, and `compare`
//! passes every layer against transformers' golden of the file, on every adapter. A DeepSeek-V2
//! Q4_K_M file has q4_K routed experts.
//! Through the command line: the end-of-sequence token stops generation, and the file's own
//! tokenizer is used, not a `tokenizer.json` beside it.

mod common;

use common::cli::succeeds;
use common::on_every_adapter;
use latentgpu::model::formats::gguf::{parse_header, to_quant};
use latentgpu::model::tools::compare::{compare, Golden};
use latentgpu::model::{generate, GenerateConfig, LoadOptions, Model, SamplingConfig};
use latentgpu::ops;
use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf/kquants")
}

/// `expected.json`: per file, the tensor types, gguf-py's hashes, and transformers' tokens.
fn expected() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(dir().join("expected.json")).unwrap();
    match serde_json::from_str(&text).unwrap() {
        Value::Object(m) => m,
        other => panic!("expected.json: {other:?}"),
    }
}

/// FNV-1a, 64 bits, of the values' little-endian bytes (as the script hashes gguf-py's).
fn fnv1a(values: &[f32]) -> String {
    let mut h: u64 = 0xCBF29CE484222325;
    for b in values.iter().flat_map(|v| v.to_le_bytes()) {
        h = (h ^ b as u64).wrapping_mul(0x100000001B3);
    }
    format!("{h:016x}")
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn the_fixtures_hold_every_format_of_the_mixes() {
    let mut seen = std::collections::BTreeSet::new();
    for (_, e) in expected() {
        for (_, t) in e["types"].as_object().unwrap() {
            seen.insert(t.as_str().unwrap().to_string());
        }
    }
    for t in [
        "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q5_0", "Q5_1", "Q8_0",
    ] {
        assert!(seen.contains(t), "no {t} tensor in the fixtures: {seen:?}");
    }
}

#[test]
fn every_quantized_tensor_dequantizes_to_gguf_pys_values_bit_for_bit() {
    for (name, e) in expected() {
        let bytes = std::fs::read(dir().join(&name)).unwrap();
        let header = parse_header(&name, &bytes, bytes.len() as u64).unwrap();
        let hashes = e["dequantized"].as_object().unwrap();
        assert!(!hashes.is_empty(), "{name}: no quantized tensor");
        for (tensor, want) in hashes {
            let t = &header.tensors[tensor];
            let data = &bytes[t.start as usize..(t.start + t.bytes) as usize];
            let q = to_quant(t.kind, data).unwrap_or_else(|| panic!("{name} {tensor}"));
            assert_eq!(
                q.scheme.name().to_uppercase(),
                e["types"][tensor].as_str().unwrap().to_uppercase()
            );
            let values = ops::dequantize(&q);
            assert_eq!(&fnv1a(&values), want.as_str().unwrap(), "{name} {tensor}");
        }
    }
}

#[test]
fn greedy_decoding_gives_transformers_tokens_on_every_file() {
    let expected = expected();
    on_every_adapter(|ctx| {
        for (name, e) in &expected {
            let path = dir().join(name);
            let model = Model::load_dir_with(ctx, &path, LoadOptions::default(), |_, _| {})
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let cfg = |max_tokens, eos: Vec<u32>| GenerateConfig {
                max_tokens,
                stop: None,
                eos_token_ids: eos,
                sampling: SamplingConfig {
                    temperature: 0.0,
                    ..SamplingConfig::default()
                },
                cancel: None,
            };
            let want = ids(&e["greedy"]);
            let got = generate(
                ctx,
                &model,
                &ids(&e["prompt"]),
                &cfg(want.len(), vec![]),
                |_| {},
            )
            .unwrap();
            assert_eq!(got, want, "{name} on {}: greedy tokens", ctx.name());
            // Stopped at the file's end-of-sequence token (id 2), kept in the output.
            let want = ids(&e["stop_tokens"]);
            let got = generate(
                ctx,
                &model,
                &ids(&e["stop_prompt"]),
                &cfg(16, vec![2]),
                |_| {},
            )
            .unwrap();
            assert_eq!(
                got,
                want,
                "{name} on {}: tokens up to the end of sequence",
                ctx.name()
            );
        }
    });
}

#[test]
fn compare_passes_every_layer_against_transformers_golden_of_each_file() {
    let expected = expected();
    on_every_adapter(|ctx| {
        for name in expected.keys() {
            let model =
                Model::load_dir_with(ctx, &dir().join(name), LoadOptions::default(), |_, _| {})
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
            let golden = dir().join(name.replace(".gguf", "-golden.safetensors"));
            let report = compare(ctx, &model, &Golden::open(&golden).unwrap()).unwrap();
            assert_eq!(
                report.first_failure,
                None,
                "{name} on {}: {:#?}",
                ctx.name(),
                report.rows
            );
            assert_eq!(report.rows.len(), model.config.n_layers + 1, "{name}");
        }
    });
}

#[test]
fn the_command_line_stops_at_the_files_end_of_sequence_token() {
    let expected = expected();
    let name = "qwen2-q4_k_m.gguf";
    let e = &expected[name];
    let path = dir().join(name);
    let prompt: Vec<String> = ids(&e["stop_prompt"]).iter().map(u32::to_string).collect();
    let out = succeeds(&[
        "generate",
        "--model",
        path.to_str().unwrap(),
        "--prompt-ids",
        &prompt.join(","),
        "--temperature",
        "0",
        "--max-tokens",
        "16",
        "--json",
    ]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ids(&json["ids"]), ids(&e["stop_tokens"]), "{json}");
}

/// The prompt ids `generate` tokenizes `text` into for the model at `path` (`extra` flags too).
fn prompt_ids(path: &std::path::Path, extra: &[&str]) -> Vec<u32> {
    let mut args = vec![
        "generate",
        "--model",
        path.to_str().unwrap(),
        "--prompt",
        "hello world",
        "--max-tokens",
        "1",
        "--temperature",
        "0",
        "--json",
    ];
    args.extend(extra);
    let out = succeeds(&args);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    ids(&json["prompt_ids"])
}

#[test]
fn a_tokenizer_json_beside_a_gguf_file_is_used_only_when_named() {
    // A GGUF file with its own tokenizer (the KL-base fixture's 400-token BPE), and another
    // model's tokenizer.json put beside a copy of it.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let gguf = root.join("tests/fixtures/gguf/kl-base/model-f32.gguf");
    let other = root.join("tests/fixtures/hf-dense/llama-gqa3/model/tokenizer.json");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("model.gguf");
    std::fs::copy(&gguf, &copy).unwrap();
    std::fs::copy(&other, dir.path().join("tokenizer.json")).unwrap();
    let own = prompt_ids(&gguf, &[]);
    assert_eq!(
        prompt_ids(&copy, &[]),
        own,
        "the file's own tokenizer, not the one beside it"
    );
    let named = prompt_ids(&copy, &["--tokenizer", other.to_str().unwrap()]);
    assert_ne!(named, own, "the named tokenizer.json");
}
