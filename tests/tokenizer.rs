//! Byte-level and Hugging Face tokenizers, and `generate` with a model directory's tokenizer.json.

mod common;

use latentgpu::model::formats::tokenizer::{decode, encode, Tokenizer};

const WORD_LEVEL: &str = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
"normalizer":null,"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,
"model":{"type":"WordLevel","vocab":{"[UNK]":0,"ROMEO":1,":":2,"love":3,"night":4},"unk_token":"[UNK]"}}"#;

#[test]
fn byte_level_round_trips_utf8_split_across_tokens() {
    let text = "Roméo — « nuit » 🌙";
    let ids = encode(text);
    assert!(ids.iter().all(|&t| t < 256));
    assert_eq!(decode(&ids), text);
    let tok = Tokenizer::Bytes;
    let mut d = tok.decoder();
    let streamed: String =
        ids.iter().map(|&t| d.push(t).unwrap()).collect::<String>() + &d.finish().unwrap();
    assert_eq!(streamed, text);
}

#[test]
fn hugging_face_tokenizer_json_is_used_when_present() {
    let dir = std::env::temp_dir().join(format!("tok-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(common::fixture("mha-tiny").join(f), dir.join(f)).unwrap();
    }
    std::fs::write(dir.join("tokenizer.json"), WORD_LEVEL).unwrap();
    let tok = Tokenizer::for_model(&dir, 256).unwrap();
    assert_eq!(tok.encode("ROMEO: love night").unwrap(), vec![1, 2, 3, 4]);
    let mut d = tok.decoder();
    let text: String = [1u32, 2, 3]
        .iter()
        .map(|&t| d.push(t).unwrap())
        .collect::<String>()
        + &d.finish().unwrap();
    assert_eq!(text, "ROMEO : love");

    let stdout = common::cli_stdout([
        "generate",
        "--model",
        dir.to_str().unwrap(),
        "--prompt",
        "ROMEO:",
        "--max-tokens",
        "3",
        "--temperature",
        "0",
    ]);
    assert!(String::from_utf8_lossy(&stdout).starts_with("ROMEO:"));

    std::fs::write(dir.join("tokenizer.json"), "{ broken").unwrap();
    let e = Tokenizer::for_model(&dir, 256).err().unwrap().to_string();
    assert!(
        e.contains("tokenizer.json") && e.contains("Hugging Face tokenizer.json"),
        "{e}"
    );
}

/// A model without tokenizer.json whose vocabulary is not bytes (a GGUF file or a checkpoint
/// given alone) is never tokenized as bytes: text is refused with what is missing, and ids
/// decode as `<id>`.
#[test]
fn a_vocabulary_that_is_not_bytes_needs_its_tokenizer() {
    let dir = std::env::temp_dir().join(format!("tok-missing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    assert!(matches!(
        Tokenizer::for_model(&dir, 256).unwrap(),
        Tokenizer::Bytes
    ));
    let tok = Tokenizer::for_model(&dir, 49152).unwrap();
    let e = tok.encode("ROMEO:").err().unwrap().to_string();
    for f in ["tokenizer.json", "49152 tokens", "--prompt-ids"] {
        assert!(e.contains(f), "'{f}' not in: {e}");
    }
    assert_eq!(tok.decode(&[7, 300]).unwrap(), "<7><300>");
    let mut d = tok.decoder();
    assert_eq!(d.push(65).unwrap() + &d.finish().unwrap(), "<65>");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A GGUF file's own tokenizer (no tokenizer.json beside it) gives the ids transformers' GGUF
/// tokenizer gives, and their text back: byte-level BPE from the file's tokens and merges, split
/// as its `tokenizer.ggml.pre` says (qwen2: digits one at a time; llama-bpe: in threes), and a
/// sentencepiece vocabulary with byte fallback whose merges come from its scores; control tokens
/// whole and skipped in the text, a user-defined token whole and kept, BOS where the file adds
/// it (fixtures from reference/export_gguf_tokenizer.py).
#[test]
fn a_gguf_files_tokenizer_matches_transformers() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf/tokenizer");
    assert!(!dir.join("tokenizer.json").exists());
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_u64().unwrap() as u32)
            .collect()
    };
    for (file, cases) in expected.as_object().unwrap() {
        let tok = Tokenizer::for_model(&dir.join(file), 400).unwrap();
        assert!(matches!(tok, Tokenizer::HuggingFace(_)), "{file}");
        for case in cases.as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            let want = ids(&case["ids"]);
            assert_eq!(tok.encode(text).unwrap(), want, "{file}: {text:?}");
            assert_eq!(
                tok.decode(&want).unwrap(),
                case["decoded"].as_str().unwrap(),
                "{file}: {text:?}"
            );
        }
    }
}

/// Vocabularies and splits the GGUF tokenizer does not build are refused by name.
#[test]
fn a_gguf_tokenizer_it_cannot_build_is_refused_by_name() {
    use latentgpu::model::formats::gguf::Value;
    use latentgpu::model::formats::gguf_tokenizer::from_metadata;
    let s = |v: &str| Value::Str(v.to_string());
    let mut meta = std::collections::BTreeMap::new();
    assert!(from_metadata("f.gguf", &meta).unwrap().is_none());
    meta.insert("tokenizer.ggml.model".to_string(), s("t5"));
    let e = from_metadata("f.gguf", &meta).err().unwrap().to_string();
    assert!(
        e.contains("tokenizer.ggml.model") && e.contains("t5"),
        "{e}"
    );
    meta.insert("tokenizer.ggml.model".to_string(), s("gpt2"));
    meta.insert("tokenizer.ggml.pre".to_string(), s("deepseek-v3"));
    let e = from_metadata("f.gguf", &meta).err().unwrap().to_string();
    assert!(
        e.contains("tokenizer.ggml.pre") && e.contains("deepseek-v3"),
        "{e}"
    );
    meta.insert("tokenizer.ggml.pre".to_string(), s("qwen2"));
    let e = from_metadata("f.gguf", &meta).err().unwrap().to_string();
    assert!(e.contains("tokenizer.ggml.tokens"), "{e}");
}

/// `add_bos_token` and `add_eos_token` as the file says: BOS first, EOS last (llama.cpp's
/// tokenizer adds them so), neither when the file says false.
#[test]
fn a_gguf_tokenizer_adds_bos_and_eos_as_the_file_says() {
    use latentgpu::model::formats::gguf::{metadata_of, Value};
    use latentgpu::model::formats::gguf_tokenizer::from_metadata;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gguf/tokenizer/qwen2.gguf");
    let mut meta = metadata_of(&path).unwrap();
    let id = |key: &str| meta[key].as_u64().unwrap() as u32;
    let (bos, eos) = (
        id("tokenizer.ggml.bos_token_id"),
        id("tokenizer.ggml.eos_token_id"),
    );
    let plain = {
        meta.insert("tokenizer.ggml.add_bos_token".into(), Value::Bool(false));
        let tok = from_metadata("f.gguf", &meta).unwrap().unwrap();
        tok.encode("hello", true).unwrap().get_ids().to_vec()
    };
    assert!(!plain.is_empty() && plain[0] != bos && *plain.last().unwrap() != eos);
    for (add_bos, add_eos) in [(true, false), (false, true), (true, true)] {
        meta.insert("tokenizer.ggml.add_bos_token".into(), Value::Bool(add_bos));
        meta.insert("tokenizer.ggml.add_eos_token".into(), Value::Bool(add_eos));
        let tok = from_metadata("f.gguf", &meta).unwrap().unwrap();
        let ids = tok.encode("hello", true).unwrap().get_ids().to_vec();
        let mut want = Vec::new();
        want.extend(add_bos.then_some(bos));
        want.extend(&plain);
        want.extend(add_eos.then_some(eos));
        assert_eq!(ids, want, "add_bos {add_bos}, add_eos {add_eos}");
    }
}
