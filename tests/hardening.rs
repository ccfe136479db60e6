//! Bad input through the command line, one test per class: values that parse but make no sense,
//! out-of-range arguments, non-finite numbers, files that are not what they claim, a closed or
//! full standard output, Ctrl-C, and noise from the environment. Each must give a named error
//! and a non-zero exit (a closed pipe: a quiet stop), and never a panic, an abort or a hang.

mod common;

use common::cli::{fails, latentgpu, run};
use common::{contexts, fixture};
use latentgpu::model::{Logits, Model, WeightFile};
use safetensors::tensor::TensorView;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A copy of a shipped model with its config edited.
fn shipped_with(name: &str, edit: impl FnOnce(&mut Value)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = root().join("models").join(name);
    std::fs::copy(
        from.join("model.safetensors"),
        dir.path().join("model.safetensors"),
    )
    .unwrap();
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(from.join("config.json")).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    dir
}

fn path(dir: &tempfile::TempDir) -> &str {
    dir.path().to_str().unwrap()
}

#[test]
fn config_values_that_parse_but_make_no_sense_are_named_errors() {
    let cases: &[(&str, &str, Value, &[&str])] = &[
        (
            "shakespeare-mha",
            "n_layers",
            1_000_000_000u64.into(),
            &["n_layers", "at most"],
        ),
        (
            "shakespeare-mha",
            "n_layers",
            5.into(),
            &["layers.4", "no such tensor"],
        ),
        (
            "shakespeare-mha",
            "max_context",
            (1u64 << 40).into(),
            &["max_context", "at most"],
        ),
        (
            "shakespeare-mha",
            "max_context",
            (1u64 << 62).into(),
            &["max_context", "at most"],
        ),
        (
            "shakespeare-mla",
            "norm_eps",
            (-1.0).into(),
            &["norm_eps", "(0, 1)"],
        ),
        (
            "shakespeare-latent",
            "norm_eps",
            f64::MAX.into(),
            &["norm_eps"],
        ),
    ];
    for (model, field, value, fragments) in cases {
        let dir = shipped_with(model, |c| c[*field] = value.clone());
        fails(
            &["generate", "--model", path(&dir), "--max-tokens", "2"],
            1,
            fragments,
        );
    }
    // A context of 2^24 tokens: refused by the memory plan where the memory is known (a 1 GiB
    // budget), else by the RoPE tables' size against the adapter's buffer limit.
    let dir = shipped_with("shakespeare-mha", |c| {
        c["max_context"] = (1u64 << 24).into()
    });
    for (budget, fragments) in [
        (
            "1073741824",
            &["GPU memory", "16777216 tokens", "LATENTGPU_GPU_MEMORY"][..],
        ),
        ("1000000000000000000", &["rope tables", "adapter's"][..]),
    ] {
        let out = latentgpu()
            .env("LATENTGPU_GPU_MEMORY", budget)
            .args(["generate", "--model", path(&dir), "--max-tokens", "2"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        for f in fragments {
            assert!(err.contains(f), "'{f}' not in: {err}");
        }
    }
    let dir = shipped_with("shakespeare-mha", |c| c["rope"]["base"] = 0.0.into());
    fails(&["generate", "--model", path(&dir)], 1, &["rope.base"]);
    let dir = shipped_with("shakespeare-mha", |c| c["n_heads"] = 7.into());
    fails(
        &["generate", "--model", path(&dir)],
        1,
        &["n_heads", "divisor"],
    );
}

#[test]
fn undefined_mla_fields_of_a_hugging_face_config_are_named_errors() {
    let base: Value = serde_json::from_slice(
        &std::fs::read(fixture("hf/v2-qlora-yarn").join("config.json")).unwrap(),
    )
    .unwrap();
    let cases: &[(&str, Value, &str)] = &[
        ("rms_norm_eps", (-1.0).into(), "rms_norm_eps"),
        ("rope_theta", 0.0.into(), "rope_theta"),
        ("factor", (0.5).into(), "YaRN factor"),
        ("beta_fast", (0.5).into(), "beta_fast"),
        (
            "original_max_position_embeddings",
            0.into(),
            "original_max_position_embeddings",
        ),
        ("mscale", f64::MAX.into(), "YaRN"),
    ];
    for (field, value, named) in cases {
        // transformers 5 keeps RoPE's settings in `rope_parameters`.
        let mut config = base.clone();
        match config["rope_parameters"].get(*field) {
            Some(_) => config["rope_parameters"][*field] = value.clone(),
            None => config[*field] = value.clone(),
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        std::fs::write(&file, config.to_string()).unwrap();
        fails(
            &["kv-cache", "--config", file.to_str().unwrap()],
            1,
            &[named],
        );
    }
}

#[test]
fn command_line_values_out_of_range_are_refused_by_name() {
    let cases: &[(&[&str], &str)] = &[
        (&["generate", "--temperature", "NaN"], "--temperature"),
        (&["generate", "--temperature=-1"], "--temperature"),
        (
            &["generate", "--repetition-penalty", "0"],
            "--repetition-penalty",
        ),
        (
            &["generate", "--repetition-penalty", "inf"],
            "--repetition-penalty",
        ),
        (&["generate", "--top-p", "2"], "--top-p"),
        (&["generate", "--top-p", "0"], "--top-p"),
        (&["bench", "attention", "--heads", "0"], "--heads"),
        (&["bench", "attention", "--chunk", "0"], "--chunk"),
        (&["bench", "attention", "--sizes", "0"], "--sizes"),
        (&["bench", "mla", "--heads", "0"], "--heads"),
        (&["bench", "matmul", "--sizes", "100000"], "--sizes"),
        (&["bench", "model", "--decode", "0"], "--decode"),
        (
            &["eval", "--text", "README.md", "--window", "0"],
            "--window",
        ),
        (&["kv-cache", "--bytes", "0"], "--bytes"),
    ];
    for (args, flag) in cases {
        fails(args, 2, &[flag]);
    }
    // In range for the command line, past what the model takes.
    fails(
        &["eval", "--text", "README.md", "--window", "1000000000000"],
        1,
        &["evaluation window", "max_context"],
    );
    // A long value is echoed only in part, with control characters escaped.
    let long = format!("x\u{1b}[31m{}", "y".repeat(5000));
    let out = run(&["--backend", &long, "info"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.len() < 600 && !err.contains('\u{1b}'), "{err}");
}

/// Writes `tensors` (f32) as a safetensors file.
fn write_f32(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, s, v)| {
            let bytes: &[u8] = bytemuck::cast_slice(v);
            (
                n.clone(),
                TensorView::new(safetensors::Dtype::F32, s.clone(), bytes).unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

/// The shipped MHA model in f32 with the first row of `layer`'s down projection set to
/// `value` (3e38: the block's output overflows on any input).
fn with_weight(layer: usize, value: f32) -> tempfile::TempDir {
    let dir = shipped_with("shakespeare-mha", |_| {});
    let file = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = st
        .tensors()
        .into_iter()
        .map(|(name, v)| {
            let mut values: Vec<f32> = v
                .data()
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect();
            if name == format!("layers.{layer}.ffn.down_proj.weight") {
                let cols = v.shape()[1];
                values[..cols].fill(value);
            }
            (name, v.shape().to_vec(), values)
        })
        .collect();
    write_f32(&file, &tensors);
    dir
}

#[test]
fn nan_and_infinity_are_errors_naming_the_first_block() {
    let dir = with_weight(1, 3e38);
    let m = path(&dir);
    fails(
        &["generate", "--model", m, "--max-tokens", "40"],
        1,
        &["not finite", "block 1"],
    );
    fails(
        &[
            "eval",
            "--model",
            m,
            "--text",
            "README.md",
            "--window",
            "64",
        ],
        1,
        &["not finite", "block 1"],
    );
}

/// A copy of a committed golden with `name`'s values replaced by NaN.
fn nan_golden(name: &str) -> tempfile::NamedTempFile {
    let from = root().join("tests/fixtures/golden/shakespeare-mha-cpu.safetensors");
    let bytes = std::fs::read(from).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let data: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| {
            let mut b = v.data().to_vec();
            if n == name {
                match v.dtype() {
                    safetensors::Dtype::F64 => b.iter_mut().for_each(|x| *x = 0xff),
                    _ => b
                        .chunks_exact_mut(4)
                        .for_each(|c| c.copy_from_slice(&f32::NAN.to_le_bytes())),
                }
            }
            (n, v.dtype(), v.shape().to_vec(), b)
        })
        .collect();
    let views: Vec<(String, TensorView)> = data
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    let out = safetensors::serialize(views, meta.metadata().clone()).unwrap();
    std::fs::write(file.path(), out).unwrap();
    file
}

#[test]
fn compare_fails_on_nan_in_the_golden_or_in_ours() {
    let model = root().join("models/shakespeare-mha");
    let m = model.to_str().unwrap();
    for tensor in ["hidden.1", "hidden_f64.2", "logits"] {
        let golden = nan_golden(tensor);
        let g = golden.path().to_str().unwrap();
        fails(
            &["compare", "--model", m, "--golden", g],
            1,
            &["not finite"],
        );
    }
    // Ours: a model whose block 1 overflows.
    let dir = with_weight(1, 3e38);
    let golden = root().join("tests/fixtures/golden/shakespeare-mha-cpu.safetensors");
    fails(
        &[
            "compare",
            "--model",
            path(&dir),
            "--golden",
            golden.to_str().unwrap(),
        ],
        1,
        &["block 1"],
    );
}

#[test]
fn files_that_are_not_regular_files_or_too_big_are_named_errors() {
    let dir = shipped_with("shakespeare-mha", |_| {});
    let config = dir.path().join("config.json");
    std::fs::remove_file(&config).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &config).unwrap();
    fails(
        &["generate", "--model", path(&dir)],
        1,
        &["config.json", "character device"],
    );
    std::fs::remove_file(&config).unwrap();
    let fifo = Command::new("mkfifo").arg(&config).status().unwrap();
    assert!(fifo.success());
    fails(
        &["generate", "--model", path(&dir)],
        1,
        &["config.json", "FIFO"],
    );
    std::fs::remove_file(&config).unwrap();
    let big = std::fs::File::create(&config).unwrap();
    big.set_len(64 << 20).unwrap();
    fails(
        &["generate", "--model", path(&dir)],
        1,
        &["config.json", "at most"],
    );

    let dir = shipped_with("shakespeare-mha", |_| {});
    let weights = dir.path().join("model.safetensors");
    std::fs::remove_file(&weights).unwrap();
    assert!(Command::new("mkfifo")
        .arg(&weights)
        .status()
        .unwrap()
        .success());
    fails(
        &["generate", "--model", path(&dir)],
        1,
        &["model.safetensors", "FIFO"],
    );

    // A path with a control character is shown escaped.
    fails(
        &["generate", "--model", "/nonexistent/a\u{7}b"],
        1,
        &["a\\u{7}b"],
    );
}

#[test]
fn weights_truncated_while_loading_are_an_error() {
    let dir = shipped_with("shakespeare-mha", |_| {});
    let weights = dir.path().join("model.safetensors");
    let mut file = WeightFile::open(&weights).unwrap();
    let len = std::fs::metadata(&weights).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&weights)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let e = file.take("norm.weight", &[160]).unwrap_err().to_string();
    assert!(
        e.contains("while loading") && e.contains("model.safetensors"),
        "{e}"
    );
}

#[test]
fn a_tensor_that_no_binding_can_hold_is_refused_before_it_is_read() {
    // The embedding of a 2^20-token vocabulary is 671 MB in f32: written as a sparse file, so
    // nothing is stored. Past the binding limit a matrix is split between rows; with blocks
    // forced smaller than one of its rows it cannot be, and the loader must refuse it from its
    // header.
    let dir = shipped_with("shakespeare-mha", |c| c["vocab_size"] = (1u64 << 20).into());
    let weights = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    let (n, _) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let table = header.as_object_mut().unwrap();
    let mut entries: Vec<(String, Value)> = table
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    entries.sort_by_key(|(_, v)| v["data_offsets"][0].as_u64().unwrap());
    let mut at = 0u64;
    for (name, info) in entries.iter_mut() {
        if name == "embed_tokens.weight" {
            info["shape"] = serde_json::json!([1u64 << 20, 160]);
        }
        let numel: u64 = info["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .product();
        info["data_offsets"] = serde_json::json!([at, at + 2 * numel]);
        at += 2 * numel;
        table.insert(name.clone(), info.clone());
    }
    let mut text = serde_json::to_string(&header).unwrap();
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    std::fs::write(&weights, &out).unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&weights)
        .unwrap();
    file.set_len(out.len() as u64 + at).unwrap();
    let start = Instant::now();
    let out = latentgpu()
        .args(["generate", "--model", path(&dir)])
        .env("LATENTGPU_BLOCK_BYTES", "512")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for f in [
        "embed_tokens.weight",
        "rows of at most 512 bytes",
        "640 bytes per row",
    ] {
        assert!(err.contains(f), "'{f}' not in: {err}");
    }
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "refused only after reading it"
    );
    for bad in ["abc", "0", "-5", "15"] {
        let out = latentgpu()
            .args(["generate", "--model", path(&dir)])
            .env("LATENTGPU_BLOCK_BYTES", bad)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{bad}: {err}");
        assert!(
            err.contains("LATENTGPU_BLOCK_BYTES") && err.contains(bad),
            "{bad}: {err}"
        );
    }
}

#[test]
fn a_cache_from_another_model_is_an_error() {
    let ctx = &contexts()[0];
    let mha = Model::load_dir(ctx, &root().join("models/shakespeare-mha")).unwrap();
    let mla = Model::load_dir(ctx, &root().join("models/shakespeare-mla")).unwrap();
    let tiny = Model::load_dir(ctx, &fixture("mha-tiny")).unwrap();
    let mut cache = mha.new_cache(ctx).unwrap();
    let e = mla
        .forward(ctx, &[1, 2, 3], &mut cache, Logits::Last)
        .unwrap_err();
    assert!(e.to_string().contains("cache"), "{e}");
    let mut cache = tiny.new_cache(ctx).unwrap();
    let e = mha
        .forward(ctx, &[1, 2, 3], &mut cache, Logits::Last)
        .unwrap_err();
    assert!(e.to_string().contains("cache"), "{e}");
    // A cache whose capacity was raised past its buffers.
    let mut cache = mha.new_cache(ctx).unwrap();
    cache.capacity = usize::MAX;
    cache.len = 600;
    let e = mha
        .forward(ctx, &[1], &mut cache, Logits::Last)
        .unwrap_err();
    assert!(e.to_string().contains("cache"), "{e}");
}

#[test]
fn a_closed_standard_output_stops_quietly_and_a_full_one_is_an_error() {
    // `latentgpu info | true`: the reader is gone before anything is written.
    let mut child = latentgpu()
        .arg("info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked") && !err.contains("error"), "{err}");

    // `generate | head -c 10`: generation stops once the reader is gone.
    let mut child = latentgpu()
        .args(["generate", "--max-tokens", "100000", "--ignore-eos"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 10];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(30), "kept generating");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // `kv-cache --json > /dev/full`.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = latentgpu()
        .args(["kv-cache", "--json"])
        .stdout(full)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("standard output") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn ctrl_c_ends_generation_after_the_current_token_with_exit_130() {
    // Latent attention's state is constant-size: a long context keeps it generating.
    let dir = shipped_with("shakespeare-latent", |c| c["max_context"] = 100_000.into());
    let child = latentgpu()
        .args([
            "generate",
            "--model",
            path(&dir),
            "--max-tokens",
            "100000",
            "--ignore-eos",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted after"), "{err}");
    assert!(out.stdout.starts_with(b"ROMEO:") && out.stdout.len() > 6);
}

#[test]
fn no_error_line_that_is_not_ours_without_xdg_runtime_dir() {
    let out = latentgpu()
        .arg("info")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("NODEVICE_SELECT")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("error"), "{err}");
}

#[test]
fn benchmarks_write_no_temporary_files() {
    let out_dir = tempfile::tempdir().unwrap();
    let json = out_dir.path().join("attention.json");
    let before = latentgpu_temp_files();
    let out = run(&[
        "bench",
        "attention",
        "--width",
        "32",
        "--heads",
        "2",
        "--latents",
        "4",
        "--chunk",
        "8",
        "--sizes",
        "16,32",
        "--out",
        json.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(latentgpu_temp_files(), before);
}

fn latentgpu_temp_files() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains("latentgpu-bench"))
        .collect();
    found.sort();
    found
}

#[test]
fn hugging_face_configs_that_say_two_things_are_refused() {
    let from = fixture("hf-dense/llama-gqa3/model");
    let cases: &[(&str, Value, &str)] = &[
        (
            "rope_scaling",
            serde_json::json!({"rope_type": "bogus"}),
            "rope_scaling",
        ),
        ("rope_theta", 0.0.into(), "rope_theta"),
        ("num_hidden_layers", 1_000_000_000u64.into(), "n_layers"),
        ("hidden_act", "bogus".into(), "hidden_act"),
    ];
    for (field, value, named) in cases {
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(&from).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
        let file = dir.path().join("config.json");
        let mut config: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        config[*field] = value.clone();
        std::fs::write(&file, config.to_string()).unwrap();
        fails(
            &["generate", "--model", path(&dir), "--max-tokens", "2"],
            1,
            &[named],
        );
    }
}
