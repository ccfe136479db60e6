//! Byte-level and Hugging Face tokenizers, and `generate` with a model directory's tokenizer.json.

mod common;

use latentgpu::model::tokenizer::{decode, encode, Tokenizer};

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
