//! A GGUF file's tokenizer, built from its metadata as transformers builds it
//! (`integrations/gguf/gguf_tokenizer_mapping.py`): a byte-level BPE (`tokenizer.ggml.model`
//! `gpt2`, the vocabulary of Llama 3, Qwen 2/2.5/3, SmolLM and DeepSeek files) from the file's
//! tokens and merges, its text split by the regex its `tokenizer.ggml.pre` names, control tokens
//! kept whole as special tokens and user-defined ones as added tokens, and BOS added where
//! `tokenizer.ggml.add_bos_token` says so. Other vocabularies (SentencePiece `llama`, ...) and
//! pre-tokenizers are refused by name.

use super::gguf::Value;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

/// Llama 3's split (transformers' `_LLAMA3_SPLIT`).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Qwen2's split (transformers' `qwen2` `PRETOKENIZE_REGEX`): digits one at a time.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The split regex of a `tokenizer.ggml.pre`, `None` for GPT-2's own (byte-level's built-in
/// regex), or an error for one not known.
fn split_of(file: &str, pre: Option<&str>) -> Result<Option<&'static str>> {
    match pre {
        None | Some("default" | "gpt-2" | "gpt2") => Ok(None),
        Some("llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "smaug-bpe" | "dbrx") => {
            Ok(Some(LLAMA3_SPLIT))
        }
        Some("qwen2" | "deepseek-r1-qwen" | "megrez") => Ok(Some(QWEN2_SPLIT)),
        Some(other) => Err(refused(
            file,
            "tokenizer.ggml.pre",
            "default, gpt-2, llama-bpe (Llama 3) or qwen2",
            other,
        )),
    }
}

fn refused(file: &str, key: &str, expected: &str, found: impl std::fmt::Display) -> Error {
    Error::Invalid {
        what: format!("{key} of {file}"),
        expected: format!("{expected} (or a tokenizer.json beside the file)"),
        found: found.to_string(),
    }
}

/// The strings of array `key`, or an error naming it.
fn strings<'a>(file: &str, meta: &'a BTreeMap<String, Value>, key: &str) -> Result<Vec<&'a str>> {
    match meta.get(key) {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| refused(file, key, "an array of strings", format!("{v:?}")))
            })
            .collect(),
        other => Err(refused(
            file,
            key,
            "an array of strings",
            format!("{other:?}"),
        )),
    }
}

/// The tokenizer `meta` (a GGUF file's metadata) describes, `None` when it has none
/// (`tokenizer.ggml.model` absent).
pub fn from_metadata(file: &str, meta: &BTreeMap<String, Value>) -> Result<Option<Tokenizer>> {
    let model = match meta.get("tokenizer.ggml.model") {
        None => return Ok(None),
        Some(v) => v.as_str().unwrap_or_default(),
    };
    if model != "gpt2" {
        return Err(refused(
            file,
            "tokenizer.ggml.model",
            "gpt2 (byte-level BPE)",
            model,
        ));
    }
    let pre = meta.get("tokenizer.ggml.pre").and_then(Value::as_str);
    let split = split_of(file, pre)?;
    let tokens = strings(file, meta, "tokenizer.ggml.tokens")?;
    let merges = strings(file, meta, "tokenizer.ggml.merges")?;
    let types: Vec<u64> = match meta.get("tokenizer.ggml.token_type") {
        Some(Value::Array(items)) => items.iter().map(|v| v.as_u64().unwrap_or(1)).collect(),
        _ => Vec::new(),
    };
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), i as u32))
        .collect();
    let merges = merges
        .iter()
        .map(|m| match m.split_once(' ') {
            Some((a, b)) => Ok((a.to_string(), b.to_string())),
            None => Err(refused(file, "tokenizer.ggml.merges", "pairs 'a b'", m)),
        })
        .collect::<Result<Vec<_>>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| refused(file, "tokenizer.ggml.merges", "merges of its tokens", e))?;
    let mut tok = Tokenizer::new(bpe);
    let pre_tokenizer: PreTokenizerWrapper = match split {
        None => ByteLevel::new(false, true, true).into(),
        Some(regex) => {
            let split = Split::new(
                SplitPattern::Regex(regex.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| refused(file, "tokenizer.ggml.pre", "a split regex", e))?;
            Sequence::new(vec![
                split.into(),
                ByteLevel::new(false, true, false).into(),
            ])
            .into()
        }
    };
    tok.with_pre_tokenizer(Some(pre_tokenizer));
    tok.with_decoder(Some(ByteLevel::default()));
    // Control tokens whole, as special; user-defined ones whole, as added (not special). A
    // control token spelled outside the byte alphabet is a mislabel transformers skips too.
    let alphabet = ByteLevel::alphabet();
    let typed = |kind: u64| {
        tokens
            .iter()
            .zip(&types)
            .filter(move |(_, &t)| t == kind)
            .map(|(s, _)| *s)
    };
    let control: Vec<AddedToken> = typed(3)
        .filter(|s| s.chars().all(|c| alphabet.contains(&c)))
        .map(|s| AddedToken::from(s, true).normalized(false))
        .collect();
    let user: Vec<AddedToken> = typed(4)
        .map(|s| AddedToken::from(s, false).normalized(false))
        .collect();
    tok.add_special_tokens(&control);
    tok.add_tokens(&user);
    let add_bos = matches!(
        meta.get("tokenizer.ggml.add_bos_token"),
        Some(Value::Bool(true))
    );
    if add_bos {
        let id = meta
            .get("tokenizer.ggml.bos_token_id")
            .and_then(Value::as_u64)
            .and_then(|i| tokens.get(i as usize).map(|t| (*t, i as u32)));
        let (bos, id) = id.ok_or_else(|| {
            refused(
                file,
                "tokenizer.ggml.bos_token_id",
                "one of its tokens (add_bos_token is set)",
                format!("{:?}", meta.get("tokenizer.ggml.bos_token_id")),
            )
        })?;
        let template = TemplateProcessing::builder()
            .try_single(format!("{bos} $A"))
            .and_then(|b| b.try_pair(format!("{bos} $A {bos} $B")))
            .map_err(|e| refused(file, "tokenizer.ggml.bos_token_id", "a BOS token", e))?
            .special_tokens(vec![(bos.to_string(), id)])
            .build()
            .map_err(|e| refused(file, "tokenizer.ggml.bos_token_id", "a BOS token", e))?;
        tok.with_post_processor(Some(template));
    }
    Ok(Some(tok))
}
