//! Seeded mutation fuzzing of the config and weight loaders: thousands of truncated, bit-flipped
//! and spliced inputs must each give `Ok` or a named error, never a panic. (cargo-fuzz needs a
//! nightly toolchain, which this project's CI does not have; this loop runs on stable everywhere.)

mod common;

use common::{fixture, Rng};
use latentgpu::model::{LoadOptions, ModelConfig, WeightFile};

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    match rng.next_u64() % 5 {
        0 => out.truncate((rng.next_u64() as usize) % (input.len() + 1)),
        1 => {
            for _ in 0..1 + rng.next_u64() % 8 {
                let i = (rng.next_u64() as usize) % out.len().max(1);
                if let Some(b) = out.get_mut(i) {
                    *b ^= 1 << (rng.next_u64() % 8);
                }
            }
        }
        2 => {
            // Corrupt the safetensors header length or the JSON's first bytes.
            let i = (rng.next_u64() as usize) % out.len().clamp(1, 16);
            if let Some(b) = out.get_mut(i) {
                *b = rng.next_u64() as u8;
            }
        }
        3 => {
            let a = (rng.next_u64() as usize) % (out.len() + 1);
            let b = (rng.next_u64() as usize) % (input.len() + 1);
            out.splice(a..a, input[..b].iter().copied());
        }
        _ => {
            let i = (rng.next_u64() as usize) % (out.len() + 1);
            let digits = format!("{}", rng.next_u64() as i64);
            out.splice(i..i, digits.bytes());
        }
    }
    out
}

#[test]
fn config_loader_never_panics() {
    let base = std::fs::read(fixture("latent-tiny").join("config.json")).unwrap();
    let mut rng = Rng::new(77);
    for _ in 0..20_000 {
        let input = mutate(&mut rng, &base);
        let text = String::from_utf8_lossy(&input);
        let r = std::panic::catch_unwind(|| ModelConfig::from_json(&text));
        assert!(r.is_ok(), "config loader panicked on {text:?}");
    }
}

#[test]
fn weight_loader_never_panics() {
    let base = std::fs::read(fixture("mha-tiny").join("model.safetensors")).unwrap();
    let cfg = ModelConfig::load(&fixture("mha-tiny").join("config.json")).unwrap();
    let names = [
        "embed_tokens.weight",
        "layers.0.attn.q_proj.weight",
        "norm.weight",
    ];
    let shapes: [&[usize]; 3] = [
        &[cfg.vocab_size, cfg.d_model],
        &[cfg.d_model, cfg.d_model],
        &[cfg.d_model],
    ];
    let path = std::env::temp_dir().join(format!("fuzz-{}.safetensors", std::process::id()));
    let mut rng = Rng::new(78);
    for _ in 0..3_000 {
        let input = mutate(&mut rng, &base);
        std::fs::write(&path, &input).unwrap();
        let r = std::panic::catch_unwind(|| {
            if let Ok(mut f) = WeightFile::open(&path) {
                for (n, s) in names.iter().zip(shapes) {
                    let _ = f.take(n, s);
                }
                let _ = f.finish();
            }
        });
        assert!(
            r.is_ok(),
            "weight loader panicked on a {}-byte input",
            input.len()
        );
    }
}

/// Every numeric value of `json`, as a path of keys and indices.
fn numeric_paths(json: &serde_json::Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match json {
        serde_json::Value::Number(_) => out.push(at.clone()),
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                at.push(k.clone());
                numeric_paths(v, at, out);
                at.pop();
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                at.push(i.to_string());
                numeric_paths(v, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn at_path<'a>(json: &'a mut serde_json::Value, path: &[String]) -> &'a mut serde_json::Value {
    path.iter().fold(json, |v, k| match v {
        serde_json::Value::Array(items) => &mut items[k.parse::<usize>().unwrap()],
        _ => &mut v[k.as_str()],
    })
}

/// Past the parsers: configs whose every number is replaced, one at a time, by values that
/// parse but may make no sense (0, negative, huge, tiny, fractional where an integer belongs)
/// must load or give an error, and a model that loads must run a forward pass or give an
/// error: never a panic or an abort (an abort, e.g. a huge allocation, ends this test too).
#[test]
fn model_load_and_forward_never_panic_on_configs_that_parse() {
    use latentgpu::model::{Logits, Model};
    let ctx = &common::contexts()[0];
    let values: Vec<serde_json::Value> = [
        "0",
        "1",
        "-1",
        "2",
        "3",
        "7",
        "0.5",
        "1e-320",
        "2147483648",
        "4294967297",
        "9007199254740993",
        "1e12",
        "1e308",
        "-1e308",
    ]
    .iter()
    .map(|v| serde_json::from_str(v).unwrap())
    .collect();
    let models = [
        fixture("mha-tiny"),
        fixture("latent-tiny"),
        fixture("mla-tiny"),
        fixture("gqa-tiny-gelu-layernorm"),
        fixture("hf-dense/llama-gqa3/model"),
        fixture("hf-dense/deepseek-v3-noaux/model"),
    ];
    let (mut loaded, mut refused) = (0, 0);
    for dir in models {
        let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
        let weights = std::fs::read(dir.join("model.safetensors")).unwrap();
        let base: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut paths = Vec::new();
        numeric_paths(&base, &mut Vec::new(), &mut paths);
        for path in &paths {
            for value in &values {
                let mut config = base.clone();
                *at_path(&mut config, path) = value.clone();
                let config = config.to_string();
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let model =
                        Model::from_bytes(ctx, &config, weights.clone(), LoadOptions::default())?;
                    let mut cache = model.new_cache(ctx)?;
                    model.forward(ctx, &[1, 2, 3], &mut cache, Logits::Last)
                }));
                match r {
                    Ok(Ok(_)) => loaded += 1,
                    Ok(Err(_)) => refused += 1,
                    Err(_) => panic!("{}: {path:?} = {value} panicked", dir.display()),
                }
            }
        }
    }
    eprintln!("{loaded} mutated configs ran, {refused} gave an error");
    assert!(refused > 0 && loaded > 0);
}

/// GGUF files truncated, bit-flipped and spliced (the q4_1 Llama fixture, and the q8_0
/// DeepSeek-V2 one: header, metadata, tensor table and blocks, a routed expert's slice of a
/// stacked tensor and MLA's kv_b_proj joined from its halves) give a model, or a named error
/// from the header reader, the metadata's config or a tensor: never a panic.
#[test]
fn gguf_loader_never_panics() {
    use latentgpu::model::families::gguf_config;
    type Tensors = &'static [(&'static str, &'static [usize])];
    let cases: [(&str, Tensors); 2] = [
        (
            "gguf/llama/model-q4_1.gguf",
            &[
                ("embed_tokens.weight", &[64, 64]),
                ("layers.0.attn.q_proj.weight", &[64, 64]),
                ("layers.1.attn_norm.weight", &[64]),
            ],
        ),
        (
            "gguf/deepseek-v2/model-q8_0.gguf",
            &[
                ("layers.1.attn.kv_b_proj.weight", &[128, 64]),
                ("layers.1.ffn.experts.3.down_proj.weight", &[32, 32]),
                ("layers.1.ffn.gate.weight", &[4, 32]),
            ],
        ),
    ];
    let mut rng = Rng::new(79);
    let (mut opened, mut refused) = (0, 0);
    for (file, tensors) in cases {
        let base = std::fs::read(fixture(file)).unwrap();
        for _ in 0..1_500 {
            let input = mutate(&mut rng, &base);
            let r = std::panic::catch_unwind(|| {
                let mut f = WeightFile::from_gguf_bytes("fuzz.gguf", input)?;
                gguf_config(&mut f)?;
                for (name, shape) in tensors {
                    f.take_matrix(name, shape)?;
                }
                Ok::<_, latentgpu::Error>(())
            });
            match r {
                Ok(Ok(())) => opened += 1,
                Ok(Err(_)) => refused += 1,
                Err(_) => panic!("the GGUF loader panicked on a mutated {file}"),
            }
        }
    }
    eprintln!("{opened} mutated GGUF files read, {refused} gave an error");
    assert!(opened > 0 && refused > 0);
}
