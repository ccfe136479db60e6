//! Malformed GGUF files through the command line: each class a round of mutated files found
//! (a hang, memory, silent wrong answers with exit 0) is a named error now, and a tiny stack
//! is enough to start; a model split in files loads as one, and a split that is not whole is
//! named. The files are the q8_0 fixture (`tests/fixtures/gguf/llama`) written again with one
//! thing changed.

mod common;

use common::cli::run;
use latentgpu::model::formats::gguf::{parse_header, GgufTensor, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf/llama/model-q8_0.gguf")
}

/// Asserts `args` fail with exit 1, an `error:` line naming every fragment, and no panic.
fn fails(args: &[&str], fragments: &[&str]) {
    common::cli::fails(args, 1, fragments)
}

/// A metadata value with its GGUF type.
fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Uint(n) => {
            out.extend(10u32.to_le_bytes());
            out.extend(n.to_le_bytes());
        }
        Value::Int(n) => {
            out.extend(11u32.to_le_bytes());
            out.extend(n.to_le_bytes());
        }
        Value::Float(f) => {
            out.extend(6u32.to_le_bytes());
            out.extend((*f as f32).to_le_bytes());
        }
        Value::Bool(b) => {
            out.extend(7u32.to_le_bytes());
            out.push(*b as u8);
        }
        Value::Str(s) => {
            out.extend(8u32.to_le_bytes());
            put_str(out, s);
        }
        Value::Array(items) => {
            out.extend(9u32.to_le_bytes());
            let mut inner = Vec::new();
            for item in items {
                put_value(&mut inner, item);
            }
            // Every item carries its type; the array's is the first one's, stripped from each.
            let kind = inner
                .get(..4)
                .map_or(8, |b| u32::from_le_bytes(b.try_into().unwrap()));
            out.extend(kind.to_le_bytes());
            out.extend((items.len() as u64).to_le_bytes());
            for item in items {
                let mut one = Vec::new();
                put_value(&mut one, item);
                out.extend(&one[4..]);
            }
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

/// The fixture written again with its metadata as `edit` leaves it (keys in order, repeats
/// kept), its tensors and data as they are.
fn mutated(edit: impl FnOnce(&mut Vec<(String, Value)>)) -> tempfile::NamedTempFile {
    mutated_with(edit, |_, id| id)
}

/// As [`mutated`], each tensor's type number as `retype(name, number)` gives it.
fn mutated_with(
    edit: impl FnOnce(&mut Vec<(String, Value)>),
    retype: impl Fn(&str, u32) -> u32,
) -> tempfile::NamedTempFile {
    let bytes = std::fs::read(fixture()).unwrap();
    let header = parse_header("fixture", &bytes, bytes.len() as u64).unwrap();
    let mut meta: Vec<(String, Value)> = header.metadata.into_iter().collect();
    edit(&mut meta);
    let tensors: Vec<_> = header.tensors.into_iter().collect();
    let file = tempfile::Builder::new().suffix(".gguf").tempfile().unwrap();
    std::fs::write(file.path(), gguf_bytes(&meta, &tensors, &bytes, &retype)).unwrap();
    file
}

/// A GGUF file of `meta` and `tensors` (their data from `source`, the fixture's bytes), each
/// tensor's type number as `retype(name, number)` gives it.
fn gguf_bytes(
    meta: &[(String, Value)],
    tensors: &[(String, GgufTensor)],
    source: &[u8],
    retype: &dyn Fn(&str, u32) -> u32,
) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend((tensors.len() as u64).to_le_bytes());
    out.extend((meta.len() as u64).to_le_bytes());
    for (key, value) in meta {
        put_str(&mut out, key);
        put_value(&mut out, value);
    }
    let mut offset = 0u64;
    let mut data = Vec::new();
    for (name, t) in tensors {
        put_str(&mut out, name);
        out.extend((t.shape.len() as u32).to_le_bytes());
        for d in t.shape.iter().rev() {
            out.extend((*d as u64).to_le_bytes());
        }
        let id = match t.kind.name().as_str() {
            "f32" => 0u32,
            "q8_0" => 8,
            other => panic!("fixture type {other}"),
        };
        out.extend(retype(name, id).to_le_bytes());
        out.extend(offset.to_le_bytes());
        let start = t.start as usize;
        data.extend(&source[start..start + t.bytes as usize]);
        data.resize(data.len().div_ceil(32) * 32, 0);
        offset = data.len() as u64;
    }
    out.resize(out.len().div_ceil(32) * 32, 0);
    out.extend(data);
    out
}

/// The fixture split in two files as `llama-gguf-split` writes them (the metadata in the
/// first, each with `split.no`, `split.count` and `split.tensors.count`) in `dir`, the second
/// file's `split.no` as `second_no` says.
fn split_fixture(dir: &Path, second_no: u64) -> [PathBuf; 2] {
    let bytes = std::fs::read(fixture()).unwrap();
    let header = parse_header("fixture", &bytes, bytes.len() as u64).unwrap();
    let tensors: Vec<_> = header.tensors.into_iter().collect();
    let half = tensors.len() / 2;
    let split = |no: u64| {
        vec![
            ("split.no".to_string(), Value::Uint(no)),
            ("split.count".to_string(), Value::Uint(2)),
            (
                "split.tensors.count".to_string(),
                Value::Uint(tensors.len() as u64),
            ),
        ]
    };
    let mut first_meta: Vec<(String, Value)> = header.metadata.into_iter().collect();
    first_meta.extend(split(0));
    let paths = [1, 2].map(|i| dir.join(format!("model-{i:05}-of-00002.gguf")));
    let keep = |_: &str, id: u32| id;
    std::fs::write(
        &paths[0],
        gguf_bytes(&first_meta, &tensors[..half], &bytes, &keep),
    )
    .unwrap();
    let second = gguf_bytes(&split(second_no), &tensors[half..], &bytes, &keep);
    std::fs::write(&paths[1], second).unwrap();
    paths
}

#[test]
fn a_split_model_loads_as_one_from_any_of_its_files() {
    let whole = mutated(|_| {});
    let ids = |model: &str| {
        let args = [
            "generate",
            "--model",
            model,
            "--prompt-ids",
            "1,2,3",
            "--max-tokens",
            "4",
        ];
        let out = run(&[&args[..], &["--temperature", "0", "--print-ids"]].concat());
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{model}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        text.lines().last().unwrap_or_default().to_string()
    };
    let dir = tempfile::tempdir().unwrap();
    let [first, second] = split_fixture(dir.path(), 1);
    let want = ids(path(&whole));
    assert!(want.starts_with("ids: "), "{want}");
    assert_eq!(ids(first.to_str().unwrap()), want);
    assert_eq!(ids(second.to_str().unwrap()), want);
    // A split that says another number, or a missing file, is named.
    let [first, _] = split_fixture(dir.path(), 0);
    let args = [
        "generate",
        "--model",
        first.to_str().unwrap(),
        "--prompt-ids",
        "1",
    ];
    fails(&args, &["split.no and split.count", "split 1 of 2"]);
    std::fs::remove_file(dir.path().join("model-00002-of-00002.gguf")).unwrap();
    fails(
        &args,
        &["the files of its split", "model-00002-of-00002.gguf"],
    );
}

fn path(f: &tempfile::NamedTempFile) -> &str {
    f.path().to_str().unwrap()
}

fn generate(f: &tempfile::NamedTempFile) -> Vec<String> {
    let args = [
        "generate",
        "--model",
        path(f),
        "--prompt-ids",
        "1,2,3",
        "--max-tokens",
        "2",
    ];
    args.iter().map(|s| s.to_string()).collect()
}

fn fails_to_generate(f: &tempfile::NamedTempFile, fragments: &[&str]) {
    let args = generate(f);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fails(&args, fragments);
}

#[test]
fn the_rewritten_fixture_still_runs() {
    let f = mutated(|_| {});
    let args = generate(&f);
    let out = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_metadata_key_given_twice_is_refused() {
    let f = mutated(|meta| meta.push(("llama.block_count".into(), Value::Uint(1))));
    fails_to_generate(&f, &["'llama.block_count' twice", "keys used once"]);
}

#[test]
fn a_block_count_smaller_than_the_blocks_present_is_refused() {
    let f = mutated(|meta| {
        for (k, v) in meta.iter_mut() {
            if k == "llama.block_count" {
                *v = Value::Uint(1);
            }
        }
    });
    fails_to_generate(&f, &["blk.1.", "block_count"]);
}

#[test]
fn nan_or_infinity_in_a_float_key_is_refused() {
    for (key, value) in [
        ("llama.rope.freq_base", f64::NAN),
        ("llama.attention.layer_norm_rms_epsilon", f64::INFINITY),
    ] {
        let f = mutated(|meta| {
            meta.retain(|(k, _)| k != key);
            meta.push((key.into(), Value::Float(value)));
        });
        fails_to_generate(&f, &[key, "a finite number"]);
    }
}

#[test]
fn a_token_list_shorter_than_the_embedding_is_refused() {
    let f = mutated(|meta| {
        let tokens = (0..10).map(|i| Value::Str(format!("t{i}"))).collect();
        meta.push(("tokenizer.ggml.model".into(), Value::Str("gpt2".into())));
        meta.push(("tokenizer.ggml.tokens".into(), Value::Array(tokens)));
    });
    fails_to_generate(&f, &["tokenizer.ggml.tokens", "64 rows", "10 tokens"]);
}

#[test]
fn a_type_outside_those_read_is_named_with_the_types_read() {
    // 20 is llama.cpp's iq4_nl.
    let f = mutated_with(
        |_| {},
        |name, id| {
            if name == "blk.0.ffn_down.weight" {
                20
            } else {
                id
            }
        },
    );
    fails_to_generate(&f, &["blk.0.ffn_down.weight", "iq4_nl", "q2_K", "q6_K"]);
}

#[test]
fn a_huge_metadata_array_is_refused_before_it_is_held() {
    // 2^22 + 1 one-byte items: past the bound, refused by its count.
    let f = mutated(|meta| {
        let items = vec![Value::Bool(true); (1 << 22) + 1];
        meta.push(("general.huge".into(), Value::Array(items)));
    });
    fails_to_generate(
        &f,
        &["metadata array of at most 4194304 items", "4194305 items"],
    );
}

#[test]
fn a_file_that_reads_shorter_than_its_size_ends_with_an_error_not_a_hang() {
    // Files under /sys say 4096 bytes and read fewer: the reader used to ask again forever.
    let candidates = [
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "/sys/devices/system/cpu/online",
    ];
    let file = candidates.iter().find(|p| Path::new(p).exists());
    let file = file.expect("a file under /sys (Linux)");
    // Named as a GGUF file, through a link.
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("short.gguf");
    std::os::unix::fs::symlink(file, &link).unwrap();
    fails(
        &["info", "--model", link.to_str().unwrap()],
        &["reading ended at byte"],
    );
}

#[test]
fn the_command_line_starts_on_a_64_kib_stack() {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -s 64 && '{}' --version",
            env!("CARGO_BIN_EXE_latentgpu")
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("latentgpu "));
}
