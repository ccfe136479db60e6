//! Bad model files and configs: each gives an error that names the thing, expected and found;
//! the command line exits non-zero with that message, never a panic.

mod common;

use common::{contexts, fixture};
use latentgpu::model::{Cache, LoadOptions, Logits, Model, ModelConfig};
use latentgpu::ops::WeightFormat;
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A scratch copy of the `mha-tiny` fixture whose files a test may break.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("latentgpu-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture("mha-tiny").join(f), dir.join(f)).unwrap();
    }
    dir
}

/// Rewrites the weights with `edit` applied to the list of (name, dtype, shape, bytes).
fn rewrite(dir: &Path, edit: impl FnOnce(&mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>)) {
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    edit(&mut tensors);
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(
        dir.join("model.safetensors"),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
}

fn load_err(dir: &Path) -> String {
    let ctx = &contexts()[0];
    let config = match ModelConfig::load(&dir.join("config.json")) {
        Ok(c) => c,
        Err(e) => return e.to_string(),
    };
    let mut file = match latentgpu::model::WeightFile::open(&dir.join("model.safetensors")) {
        Ok(f) => f,
        Err(e) => return e.to_string(),
    };
    match Model::load(ctx, config, &mut file, |_| {}).and_then(|_| file.finish()) {
        Ok(()) => panic!("{} loaded without error", dir.display()),
        Err(e) => e.to_string(),
    }
}

fn assert_mentions(msg: &str, fragments: &[&str]) {
    for f in fragments {
        assert!(msg.contains(f), "error '{msg}' should mention '{f}'");
    }
}

#[test]
fn truncated_weights_are_an_error() {
    let dir = scratch("truncated");
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    assert_mentions(
        &load_err(&dir),
        &["model.safetensors", "complete safetensors file"],
    );
    std::fs::write(&path, b"not a safetensors file").unwrap();
    assert_mentions(&load_err(&dir), &["model.safetensors"]);
}

#[test]
fn models_from_bytes_check_as_much_as_models_from_files() {
    // What the web page does: config text and weights bytes fetched over HTTP.
    let ctx = &contexts()[0];
    let dir = fixture("mha-tiny");
    let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let weights = std::fs::read(dir.join("model.safetensors")).unwrap();
    let from_bytes =
        Model::from_bytes(ctx, &config, weights.clone(), LoadOptions::default()).unwrap();
    let from_dir = Model::load_dir(ctx, &dir).unwrap();
    let logits = |m: &Model| {
        let mut cache = m.new_cache(ctx).unwrap();
        m.forward(ctx, &[1, 2, 3], &mut cache, Logits::All).unwrap()
    };
    assert_eq!(logits(&from_bytes), logits(&from_dir));
    let err = |config: &str, weights: Vec<u8>| match Model::from_bytes(
        ctx,
        config,
        weights,
        LoadOptions::default(),
    ) {
        Ok(_) => panic!("loaded without error"),
        Err(e) => e.to_string(),
    };
    let truncated = weights[..weights.len() - 100].to_vec();
    assert_mentions(
        &err(&config, truncated),
        &["model.safetensors", "complete safetensors file"],
    );
    assert_mentions(&err("{", weights.clone()), &["config JSON"]);
    let wrong_width = config.replace("\"d_model\": 64", "\"d_model\": 96");
    assert_ne!(wrong_width, config, "the fixture's config has d_model 64");
    assert_mentions(&err(&wrong_width, weights), &["model.safetensors", "shape"]);
}

#[test]
fn missing_misshaped_wrong_dtype_and_extra_tensors_are_errors() {
    let dir = scratch("missing");
    rewrite(&dir, |t| {
        t.retain(|(n, ..)| n != "layers.1.attn.k_proj.weight")
    });
    assert_mentions(
        &load_err(&dir),
        &["layers.1.attn.k_proj.weight", "[64, 64]", "no such tensor"],
    );

    let dir = scratch("misshaped");
    rewrite(&dir, |t| {
        let e = t.iter_mut().find(|(n, ..)| n == "norm.weight").unwrap();
        e.2 = vec![32];
        e.3.truncate(32 * 4);
    });
    assert_mentions(
        &load_err(&dir),
        &["norm.weight", "expected shape [64]", "found shape [32]"],
    );

    let dir = scratch("dtype");
    rewrite(&dir, |t| {
        let e = t.iter_mut().find(|(n, ..)| n == "norm.weight").unwrap();
        e.1 = Dtype::I32;
    });
    assert_mentions(&load_err(&dir), &["norm.weight", "F32, F16 or BF16", "I32"]);

    let dir = scratch("extra");
    rewrite(&dir, |t| {
        t.push((
            "layers.9.attn.q_proj.weight".into(),
            Dtype::F32,
            vec![1],
            vec![0; 4],
        ))
    });
    assert_mentions(&load_err(&dir), &["layers.9.attn.q_proj.weight", "unused"]);
}

/// A checkpoint published in f16 or bf16 keeps its matrices 16-bit on the GPU by default (half
/// the bytes, on every adapter), routed experts included, and gives the logits of the same
/// values in f32 bit for bit on the CPU adapters: the products sum alike and 16-bit -> f32 is
/// exact. This project's own format (mha-tiny) and a Hugging Face DeepSeek-V2 with experts.
#[test]
fn f16_and_bf16_checkpoints_stay_16_bit() {
    let sources = [
        ("mha", fixture("mha-tiny")),
        ("moe", fixture("hf-dense/deepseek-v2-moe/model")),
    ];
    for (kind, source) in sources {
        for dtype in [Dtype::F16, Dtype::BF16] {
            let dir = std::env::temp_dir()
                .join(format!("latentgpu-{kind}-{dtype:?}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            for entry in std::fs::read_dir(&source).unwrap() {
                let path = entry.unwrap().path();
                std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
            }
            rewrite(&dir, |t| {
                for (_, d, _, b) in t.iter_mut() {
                    let vals: Vec<f32> = b
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                        .collect();
                    *b = match dtype {
                        Dtype::F16 => vals
                            .iter()
                            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                            .collect(),
                        _ => vals
                            .iter()
                            .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
                            .collect(),
                    };
                    *d = dtype;
                }
            });
            for ctx in contexts() {
                let run = |options| {
                    let model = Model::load_dir_with(ctx, &dir, options, |_, _| {}).unwrap();
                    let mut cache = model.new_cache(ctx).unwrap();
                    let logits = model
                        .forward(ctx, &[1, 2, 3], &mut cache, Logits::Last)
                        .unwrap();
                    (model.weight_format(), model.decode_weight_bytes(), logits)
                };
                let (format, bytes, logits) = run(LoadOptions::default());
                let (f32_format, f32_bytes, f32_logits) =
                    run(LoadOptions::weights(WeightFormat::F32));
                let want = match dtype {
                    Dtype::F16 => WeightFormat::F16,
                    _ => WeightFormat::BF16,
                };
                let what = format!("{kind} {dtype:?} on {}", ctx.name());
                assert_eq!((format, f32_format), (want, WeightFormat::F32), "{what}");
                assert!(bytes < f32_bytes, "{what}: {bytes} bytes, f32 {f32_bytes}");
                assert!(logits.iter().all(|v| v.is_finite()), "{what}");
                if ctx.is_cpu() {
                    // One product kernel per shape on CPU adapters (GPUs decode f32 with
                    // subgroups).
                    assert_eq!(logits, f32_logits, "{what}");
                }
            }
        }
    }
}

#[test]
fn invalid_configs_name_the_field() {
    let base: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("mha-tiny").join("config.json")).unwrap(),
    )
    .unwrap();
    let cases: &[(&str, serde_json::Value, &[&str])] = &[
        ("n_heads", 0.into(), &["n_heads", "positive"]),
        (
            "n_heads",
            5.into(),
            &["n_heads", "divisor of d_model (64)", "5"],
        ),
        ("norm_eps", (-1.0).into(), &["norm_eps"]),
        ("vocab_size", 0.into(), &["vocab_size"]),
        (
            "attention",
            serde_json::json!({"kind": "mha", "n_kv_heads": 3}),
            &["n_kv_heads", "3"],
        ),
        (
            "attention",
            serde_json::json!({"kind": "sparse"}),
            &["unknown variant", "sparse"],
        ),
        ("ffn_kind", "relu".into(), &["relu"]),
    ];
    for (field, value, fragments) in cases {
        let mut cfg = base.clone();
        cfg[*field] = value.clone();
        let e = ModelConfig::from_json(&cfg.to_string())
            .unwrap_err()
            .to_string();
        assert_mentions(&e, fragments);
    }
    let e = ModelConfig::from_json("{\"vocab_size\": 256,")
        .unwrap_err()
        .to_string();
    assert_mentions(&e, &["config JSON", "EOF"]);
}

#[test]
fn prompts_past_the_context_and_unknown_tokens_are_errors() {
    let ctx = &contexts()[0];
    let model = Model::load_dir(ctx, &fixture("mha-tiny")).unwrap();
    let mut cache: Cache = model.new_cache(ctx).unwrap();
    let long = vec![65u32; model.config.max_context + 1];
    let e = model
        .forward(ctx, &long, &mut cache, Logits::Last)
        .unwrap_err()
        .to_string();
    assert_mentions(&e, &["context", "at most 64 tokens", "65 new"]);
    let e = model
        .forward(ctx, &[1, 300], &mut cache, Logits::Last)
        .unwrap_err()
        .to_string();
    assert_mentions(&e, &["token id at position 1", "300", "256"]);
    assert_eq!(cache.len, 0, "a rejected call leaves the cache untouched");
}

fn cli(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_latentgpu"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_exits_non_zero_with_a_named_error() {
    let dir = scratch("cli");
    let d = dir.to_str().unwrap();
    let (code, err) = cli(&["--backend", "metl", "info"]);
    assert_eq!(code, 1, "{err}");
    assert_mentions(&err, &["unknown backend 'metl'"]);

    let long = "x".repeat(100);
    let (code, err) = cli(&[
        "generate",
        "--model",
        d,
        "--prompt",
        &long,
        "--max-tokens",
        "1",
    ]);
    assert_eq!(code, 1, "{err}");
    assert_mentions(&err, &["context", "at most 64 tokens"]);

    let (code, err) = cli(&[
        "generate",
        "--model",
        "/nonexistent/model",
        "--max-tokens",
        "1",
    ]);
    assert_eq!(code, 1, "{err}");
    assert_mentions(&err, &["/nonexistent/model/config.json"]);

    std::fs::write(dir.join("config.json"), "{ not json").unwrap();
    let (code, err) = cli(&["generate", "--model", d, "--max-tokens", "1"]);
    assert_eq!(code, 1, "{err}");
    assert_mentions(&err, &["config JSON", "config.json"]);
    assert!(!err.contains("panicked"), "{err}");
}

/// The memory plan is summed before anything is uploaded: a model past the budget is refused
/// with its weights, cache and activations and what would fit (the cache then takes what is
/// left, and a sequence past it is an error); the context is checked against
/// the model's; the CLI refuses a bad --weights or --context by name.
#[test]
fn a_model_past_the_memory_budget_is_refused_with_the_plan() {
    let ctx = &contexts()[0];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/shakespeare-mha");
    let load = |options: LoadOptions| Model::load_dir_with(ctx, &dir, options, |_, _| {});
    let q4 = latentgpu::ops::WeightFormat::parse("q4").unwrap();
    let plan = |w| {
        latentgpu::model::tools::summary::summarize(&dir, u64::MAX, Some(w), None)
            .unwrap()
            .plan
    };
    let (f32_plan, q4_plan) = (plan(latentgpu::ops::WeightFormat::F32), plan(q4));
    assert!(q4_plan.weights < f32_plan.weights && q4_plan.total < f32_plan.total);
    let refused = |weights, budget| {
        load(LoadOptions {
            weights: Some(weights),
            memory_budget: Some(budget),
            ..LoadOptions::default()
        })
        .err()
        .expect("a model past its budget")
        .to_string()
    };
    // Room for the model in q4: the hint names it.
    let err = refused(latentgpu::ops::WeightFormat::F32, q4_plan.total);
    assert_mentions(
        &err,
        &[
            "GPU memory",
            "weights",
            "cache",
            "activations",
            "tokens",
            "try --weights q4",
        ],
    );
    // Room for the q4 weights, the activations and half the context's cache: it loads, and
    // the cache may take the rest, which a sequence reaches near half the context.
    let room = q4_plan.cache / 2;
    let half = q4_plan.weights + q4_plan.activations + room;
    let model = load(LoadOptions {
        weights: Some(q4),
        memory_budget: Some(half),
        ..LoadOptions::default()
    })
    .unwrap();
    assert_eq!(model.cache_options().memory, Some(room));
    let mut cache = model.new_cache(ctx).unwrap();
    let context = model.config.max_context;
    let ids: Vec<u32> = (0..context as u32).map(|i| i % 60 + 1).collect();
    let err = model
        .forward(ctx, &ids, &mut cache, latentgpu::model::Logits::Last)
        .unwrap_err()
        .to_string();
    assert_mentions(
        &err,
        &["KV cache memory at", "tokens of context", "--cache-memory"],
    );
    // No room at all: the figures, no hint.
    let err = refused(q4, 1 << 10);
    assert_mentions(&err, &["at most 0.00 GiB"]);
    assert!(!err.contains("try"), "{err}");
    let model = load(LoadOptions {
        context: Some(16),
        ..LoadOptions::default()
    })
    .unwrap();
    assert_eq!(model.config.max_context, 16);
    for bad in [0, 100_000] {
        let err = load(LoadOptions {
            context: Some(bad),
            ..LoadOptions::default()
        })
        .err()
        .expect("a context of 0 or past the model's")
        .to_string();
        assert_mentions(&err, &["context", "tokens (the model's)"]);
    }
    let (code, err) = cli(&["--weights", "q3", "info", "--model", dir.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert_mentions(&err, &["expected one of f32, f16, bf16, q8", "found 'q3'"]);
    let (code, err) = cli(&["--context", "0", "info"]);
    assert_eq!(code, 2, "{err}");
    let (code, err) = cli(&[
        "quantize",
        "--model",
        dir.to_str().unwrap(),
        "--out",
        "/tmp/x",
    ]);
    assert_eq!(code, 1, "{err}");
    assert_mentions(&err, &["quantize needs --weights q8, q4 or q4_1"]);
}
