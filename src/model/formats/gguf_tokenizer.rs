//! A GGUF file's tokenizer, built from its metadata as transformers builds it
//! (`integrations/gguf/gguf_tokenizer_mapping.py`, `LlamaTokenizer`, `GPT2Tokenizer`):
//! - `tokenizer.ggml.model` `gpt2` (GPT-2, Llama 3, Qwen 2/2.5/3, SmolLM and StarCoder files):
//!   a byte-level BPE from the file's tokens and merges, its text split as its
//!   `tokenizer.ggml.pre` names (`smollm` and `starcoder`, which transformers does not map,
//!   as the models' own `tokenizer.json` and llama.cpp split them: digits one by one, then
//!   GPT-2's split);
//! - `llama` (SentencePiece: Llama 2, Mistral 7B, TinyLlama files): a BPE with byte fallback,
//!   its merges the file's or, where it has none, recovered from the tokens' scores as
//!   transformers' `generate_merges` does; spaces as `▁`, one prepended to the text. Phi-3's
//!   files prepend it with a normalizer (a leading space keeps both); Gemma's prepend none,
//!   store tokens of spaces as spaces, and order merges by the tokens' places, not scores.
//!
//! Unknown and control tokens are kept whole as special tokens, user-defined ones as added
//! tokens, and BOS is added where `tokenizer.ggml.add_bos_token` says so (by default for
//! `llama`). Other vocabularies and pre-tokenizers are refused by name.

use super::gguf::Value;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::prepend::Prepend;
use tokenizers::normalizers::replace::Replace;
use tokenizers::normalizers::utils::Sequence as NormalizerSequence;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::NormalizerWrapper;
use tokenizers::{
    AddedToken, DecoderWrapper, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer,
};

/// Llama 3's split (transformers' `_LLAMA3_SPLIT`).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Qwen2's split (transformers' `qwen2` `PRETOKENIZE_REGEX`): digits one at a time.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// How a byte-level vocabulary's text is split before its merges.
enum ByteSplit {
    /// GPT-2's split (byte-level's built-in regex).
    Gpt2,
    /// Every digit apart, then GPT-2's split.
    DigitsThenGpt2,
    /// This regex's matches, isolated.
    Regex(&'static str),
}

/// The split a `tokenizer.ggml.pre` names, or an error for one not known.
fn split_of(file: &str, pre: Option<&str>) -> Result<ByteSplit> {
    match pre {
        None | Some("default" | "gpt-2" | "gpt2") => Ok(ByteSplit::Gpt2),
        Some("smollm" | "starcoder") => Ok(ByteSplit::DigitsThenGpt2),
        Some("llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "smaug-bpe" | "dbrx") => {
            Ok(ByteSplit::Regex(LLAMA3_SPLIT))
        }
        Some("qwen2" | "deepseek-r1-qwen" | "megrez") => Ok(ByteSplit::Regex(QWEN2_SPLIT)),
        Some(other) => Err(refused(
            file,
            "tokenizer.ggml.pre",
            "default, gpt-2, smollm, starcoder, llama-bpe (Llama 3) or qwen2",
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

/// The items of array `key`, each read by `item` (`what` they must be), or an error naming
/// the key.
fn array<'a, T>(
    file: &str,
    meta: &'a BTreeMap<String, Value>,
    key: &str,
    what: &str,
    item: impl Fn(&'a Value) -> Option<T>,
) -> Result<Vec<T>> {
    match meta.get(key) {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| item(v).ok_or_else(|| refused(file, key, what, format!("{v:?}"))))
            .collect(),
        other => Err(refused(file, key, what, format!("{other:?}"))),
    }
}

/// The strings of array `key`, or an error naming it.
fn strings<'a>(file: &str, meta: &'a BTreeMap<String, Value>, key: &str) -> Result<Vec<&'a str>> {
    array(file, meta, key, "an array of strings", Value::as_str)
}

/// One number per token in array `key` (`count` of them), or an error naming it.
fn per_token<T>(
    file: &str,
    meta: &BTreeMap<String, Value>,
    key: &str,
    count: usize,
    item: impl Fn(&Value) -> Option<T>,
) -> Result<Vec<T>> {
    let values = array(file, meta, key, "an array of numbers", item)?;
    if values.len() != count {
        return Err(refused(
            file,
            key,
            &format!("one number per token ({count})"),
            format!("{} numbers", values.len()),
        ));
    }
    Ok(values)
}

/// The tokenizer `meta` (a GGUF file's metadata) describes, `None` when it has none
/// (`tokenizer.ggml.model` absent).
pub fn from_metadata(file: &str, meta: &BTreeMap<String, Value>) -> Result<Option<Tokenizer>> {
    let model = match meta.get("tokenizer.ggml.model") {
        None => return Ok(None),
        Some(v) => v.as_str().unwrap_or_default(),
    };
    let arch = meta.get("general.architecture").and_then(Value::as_str);
    // Which sentencepiece pipeline, as transformers' GGUF loader picks it by architecture.
    let flavour = match (model, arch) {
        ("gpt2", _) => None,
        ("llama", Some(a)) if a.starts_with("gemma") => Some(Spm::Gemma),
        ("llama", Some("phi3")) => Some(Spm::Phi3),
        ("llama", _) => Some(Spm::Llama),
        (other, _) => {
            return Err(refused(
                file,
                "tokenizer.ggml.model",
                "gpt2 (byte-level BPE) or llama (sentencepiece)",
                other,
            ))
        }
    };
    let sentencepiece = flavour.is_some();
    let pre = meta.get("tokenizer.ggml.pre").and_then(Value::as_str);
    if !sentencepiece {
        split_of(file, pre)?;
    }
    let mut tokens = strings(file, meta, "tokenizer.ggml.tokens")?;
    // Gemma's files store a token of spaces as spaces; its tokenizer looks it up as `▁`s.
    let respelled: Vec<String>;
    if flavour == Some(Spm::Gemma) {
        respelled = tokens
            .iter()
            .map(|t| match t.contains(' ') && t.trim().is_empty() {
                true => "\u{2581}".repeat(t.chars().count()),
                false => t.to_string(),
            })
            .collect();
        tokens = respelled.iter().map(String::as_str).collect();
    }
    let merges = match meta.contains_key("tokenizer.ggml.merges") || !sentencepiece {
        true => strings(file, meta, "tokenizer.ggml.merges")?
            .iter()
            .map(|m| match m.split_once(' ') {
                Some((a, b)) => Ok((a.to_string(), b.to_string())),
                None => Err(refused(file, "tokenizer.ggml.merges", "pairs 'a b'", m)),
            })
            .collect::<Result<Vec<_>>>()?,
        // Gemma's scores do not follow its merges' order; the tokens' order in the file does.
        false if flavour == Some(Spm::Gemma) => {
            let scores: Vec<f64> = (0..tokens.len()).map(|i| -(i as f64)).collect();
            merges_from_scores(&tokens, &scores)
        }
        false => {
            let scores = per_token(
                file,
                meta,
                "tokenizer.ggml.scores",
                tokens.len(),
                Value::as_f64,
            )?;
            merges_from_scores(&tokens, &scores)
        }
    };
    // Without token types every token is normal (none kept whole).
    let types: Vec<u64> = match meta.contains_key("tokenizer.ggml.token_type") {
        true => per_token(
            file,
            meta,
            "tokenizer.ggml.token_type",
            tokens.len(),
            Value::as_u64,
        )?,
        false => Vec::new(),
    };
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), i as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .byte_fallback(sentencepiece)
        .fuse_unk(sentencepiece)
        .build()
        .map_err(|e| refused(file, "tokenizer.ggml.merges", "merges of its tokens", e))?;
    let mut tok = Tokenizer::new(bpe);
    match flavour {
        Some(spm) => spm.pipeline(file, &mut tok)?,
        None => {
            tok.with_pre_tokenizer(Some(byte_level_split(file, pre)?));
            tok.with_decoder(Some(ByteLevel::default()));
        }
    }
    add_typed_tokens(&mut tok, &tokens, &types, !sentencepiece);
    // llama.cpp adds BOS to a sentencepiece vocabulary that does not say otherwise.
    let add_bos = match meta.get("tokenizer.ggml.add_bos_token") {
        Some(Value::Bool(b)) => *b,
        _ => sentencepiece,
    };
    let add_eos = matches!(
        meta.get("tokenizer.ggml.add_eos_token"),
        Some(Value::Bool(true))
    );
    if add_bos || add_eos {
        let template = edge_template(file, meta, &tokens, add_bos, add_eos)?;
        tok.with_post_processor(Some(template));
    }
    Ok(Some(tok))
}

/// The sentencepiece pipelines of transformers' GGUF tokenizers, by architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spm {
    /// `LlamaTokenizer`: `▁` for spaces and one before the text (`Metaspace`), the decoder
    /// strips it again.
    Llama,
    /// Phi-3's: the same, but the `▁` before the text comes from a normalizer, so a text
    /// starting with a space keeps both.
    Phi3,
    /// `GemmaTokenizer`: `▁` for spaces, nothing before the text, nothing stripped.
    Gemma,
}

impl Spm {
    /// Sets `tok`'s normalizer, pre-tokenizer and decoder.
    fn pipeline(self, file: &str, tok: &mut Tokenizer) -> Result<()> {
        let bad = |e: String| refused(file, "tokenizer.ggml.model", "a sentencepiece pipeline", e);
        let spaces = || Replace::new(" ", "\u{2581}").map_err(|e| bad(e.to_string()));
        let mut decoders: Vec<DecoderWrapper> = vec![
            Replace::new("\u{2581}", " ")
                .map_err(|e| bad(e.to_string()))?
                .into(),
            ByteFallback::new().into(),
            Fuse::new().into(),
        ];
        match self {
            Spm::Llama => {
                tok.with_pre_tokenizer(Some(Metaspace::new(
                    '\u{2581}',
                    PrependScheme::First,
                    false,
                )));
            }
            Spm::Phi3 => {
                let normalizers: Vec<NormalizerWrapper> =
                    vec![Prepend::new("\u{2581}".into()).into(), spaces()?.into()];
                tok.with_normalizer(Some(NormalizerSequence::new(normalizers)));
                tok.with_pre_tokenizer(None::<PreTokenizerWrapper>);
            }
            Spm::Gemma => {
                tok.with_normalizer(Some(spaces()?));
                let split = Split::new(
                    SplitPattern::String(" ".into()),
                    SplitDelimiterBehavior::MergedWithPrevious,
                    false,
                )
                .map_err(|e| bad(e.to_string()))?;
                tok.with_pre_tokenizer(Some(split));
            }
        }
        if self != Spm::Gemma {
            decoders.push(Strip::new(' ', 1, 0).into());
        }
        tok.with_decoder(Some(tokenizers::decoders::sequence::Sequence::new(
            decoders,
        )));
        Ok(())
    }
}

/// The merges a sentencepiece vocabulary implies, as transformers' `generate_merges(vocab,
/// scores)` recovers them: every split of a token into two tokens, a token's splits in the
/// order of their parts' ids, then all by score, left length and right length, highest first
/// (stable).
fn merges_from_scores(tokens: &[&str], scores: &[f64]) -> Vec<(String, String)> {
    // Python dicts: a repeated token keeps its first place, and its last id and score.
    let mut id = std::collections::HashMap::new();
    let mut score = std::collections::HashMap::new();
    let mut order = Vec::new();
    for (i, (t, s)) in tokens.iter().zip(scores).enumerate() {
        if id.insert(*t, i).is_none() {
            order.push(*t);
        }
        score.insert(*t, *s);
    }
    let mut merges: Vec<(&str, &str, f64)> = Vec::new();
    for token in order {
        let mut local: Vec<(&str, &str, f64)> = token
            .char_indices()
            .skip(1)
            .map(|(at, _)| token.split_at(at))
            .filter(|(l, r)| id.contains_key(l) && id.contains_key(r))
            .map(|(l, r)| (l, r, score[token]))
            .collect();
        local.sort_by_key(|(l, r, _)| (id[l], id[r]));
        merges.extend(local);
    }
    let key = |m: &(&str, &str, f64)| (m.2, m.0.chars().count(), m.1.chars().count());
    merges.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        kb.0.total_cmp(&ka.0)
            .then(kb.1.cmp(&ka.1))
            .then(kb.2.cmp(&ka.2))
    });
    merges
        .into_iter()
        .map(|(l, r, _)| (l.to_string(), r.to_string()))
        .collect()
}

/// A byte-level vocabulary's pre-tokenizer: the split `pre` names, then bytes as characters.
fn byte_level_split(file: &str, pre: Option<&str>) -> Result<PreTokenizerWrapper> {
    Ok(match split_of(file, pre)? {
        ByteSplit::Gpt2 => ByteLevel::new(false, true, true).into(),
        ByteSplit::DigitsThenGpt2 => Sequence::new(vec![
            Digits::new(true).into(),
            ByteLevel::new(false, true, true).into(),
        ])
        .into(),
        ByteSplit::Regex(regex) => {
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
    })
}

/// Unknown (2) and control (3) tokens whole, as special tokens; user-defined ones (4) whole, as
/// added tokens. In a byte-level vocabulary a control token spelled outside the byte alphabet
/// is a mislabel transformers skips, and so do we.
fn add_typed_tokens(tok: &mut Tokenizer, tokens: &[&str], types: &[u64], byte_level: bool) {
    let alphabet = ByteLevel::alphabet();
    let spelled = |s: &&str| !byte_level || s.chars().all(|c| alphabet.contains(&c));
    let typed = |kinds: &'static [u64]| {
        tokens
            .iter()
            .zip(types)
            .filter(move |(_, t)| kinds.contains(t))
            .map(|(s, _)| *s)
    };
    let special: Vec<AddedToken> = typed(if byte_level { &[3] } else { &[2, 3] })
        .filter(spelled)
        .map(|s| AddedToken::from(s, true).normalized(false))
        .collect();
    let user: Vec<AddedToken> = typed(&[4])
        .map(|s| AddedToken::from(s, false).normalized(false))
        .collect();
    tok.add_special_tokens(&special);
    tok.add_tokens(&user);
}

/// The post-processor that puts the file's BOS token first (`add_bos`) and its EOS token last
/// (`add_eos`), as the metadata's `add_bos_token` and `add_eos_token` say.
fn edge_template(
    file: &str,
    meta: &BTreeMap<String, Value>,
    tokens: &[&str],
    add_bos: bool,
    add_eos: bool,
) -> Result<TemplateProcessing> {
    let mut special = Vec::new();
    let mut edge = |key: &str, wanted: bool| -> Result<String> {
        if !wanted {
            return Ok(String::new());
        }
        let bad = |e: String| refused(file, key, "one of its tokens (it is added)", e);
        let id = meta.get(key).and_then(Value::as_u64);
        let token = id
            .and_then(|i| tokens.get(i as usize))
            .ok_or_else(|| bad(format!("{:?}", meta.get(key))))?;
        special.push((token.to_string(), id.unwrap_or_default() as u32));
        Ok(token.to_string())
    };
    let bos = edge("tokenizer.ggml.bos_token_id", add_bos)?;
    let eos = edge("tokenizer.ggml.eos_token_id", add_eos)?;
    let bad = |e: String| refused(file, "tokenizer.ggml.add_bos_token", "a template", e);
    let single = format!("{bos} $A {eos}").trim().to_string();
    let pair = format!("{bos} $A {eos} {bos} $B {eos}");
    let pair = pair.split_whitespace().collect::<Vec<_>>().join(" ");
    TemplateProcessing::builder()
        .try_single(single)
        .and_then(|b| b.try_pair(pair))
        .map_err(bad)?
        .special_tokens(special)
        .build()
        .map_err(|e| bad(e.to_string()))
}
