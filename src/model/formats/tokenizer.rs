//! Tokenizers: the byte-level one of the shipped models (token id = byte value), and Hugging Face
//! `tokenizer.json` (native and in the browser).

/// Encodes text as its UTF-8 bytes.
pub fn encode(text: &str) -> Vec<u32> {
    text.bytes().map(u32::from).collect()
}

/// Turns a stream of byte tokens back into text, holding back incomplete UTF-8 sequences until
/// their last byte arrives (and showing invalid bytes as U+FFFD).
#[derive(Default, Debug)]
pub struct ByteDecoder {
    pending: Vec<u8>,
}

impl ByteDecoder {
    /// Adds one token; returns the text it completes (possibly empty).
    pub fn push(&mut self, token: u32) -> String {
        self.pending.push(token.min(255) as u8);
        match std::str::from_utf8(&self.pending) {
            Ok(s) => {
                let out = s.to_string();
                self.pending.clear();
                out
            }
            Err(e) if e.error_len().is_none() && self.pending.len() < 4 => {
                // An incomplete sequence at the end: wait for more bytes.
                let valid = e.valid_up_to();
                let out = String::from_utf8_lossy(&self.pending[..valid]).into_owned();
                self.pending.drain(..valid);
                out
            }
            Err(_) => {
                let out = String::from_utf8_lossy(&self.pending).into_owned();
                self.pending.clear();
                out
            }
        }
    }

    /// Whatever is still held back, lossily.
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}

/// Decodes a whole token sequence.
pub fn decode(tokens: &[u32]) -> String {
    let mut d = ByteDecoder::default();
    let mut s: String = tokens.iter().map(|&t| d.push(t)).collect();
    s.push_str(&d.finish());
    s
}

/// A model's tokenizer: byte-level (the shipped models), or a Hugging Face `tokenizer.json`
/// when the model directory has one.
pub enum Tokenizer {
    /// Token id = UTF-8 byte.
    Bytes,
    /// A Hugging Face tokenizer (`tokenizer.json`).
    HuggingFace(Box<tokenizers::Tokenizer>),
    /// None that can be used, for a model whose vocabulary is not bytes: text cannot be encoded
    /// (an error that says what was expected and found), and ids decode as `<id>`, never as
    /// bytes they are not. `--prompt-ids` still works.
    Missing {
        /// What a tokenizer was expected as.
        expected: String,
        /// What was found instead.
        found: String,
    },
}

impl Tokenizer {
    /// The tokenizer of the model at `path`: a directory's `tokenizer.json`; a GGUF file's own,
    /// from its metadata (a `tokenizer.json` beside the file is used only when named, with
    /// [`Tokenizer::from_file`]: two models in one folder must not share one silently). Without
    /// either, see [`Tokenizer::without_file`] (native).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn for_model(path: &std::path::Path, vocab: usize) -> crate::Result<Self> {
        if path.is_file() {
            let metadata = super::gguf::metadata_of(path)?;
            return Self::from_gguf_metadata(&crate::files::shown_path(path), &metadata, vocab);
        }
        let path = path.join("tokenizer.json");
        if !path.exists() {
            return Ok(Self::without_file(&crate::files::shown_path(&path), vocab));
        }
        Self::from_file(&path)
    }

    /// The tokenizer a GGUF file's metadata `metadata` describes (`file` names it in errors),
    /// checked to have a token for each of the embedding's `vocab` rows; without one, see
    /// [`Tokenizer::without_file`]; one it describes that cannot be built is said when text is
    /// encoded, so that ids given as ids still run.
    pub fn from_gguf_metadata(
        file: &str,
        metadata: &std::collections::BTreeMap<String, super::gguf::Value>,
        vocab: usize,
    ) -> crate::Result<Self> {
        let key = "tokenizer.ggml.tokens";
        if let Some(super::gguf::Value::Array(tokens)) = metadata.get(key) {
            // Ids past the list would decode to nothing: words would vanish from the text.
            if tokens.len() < vocab {
                return Err(crate::Error::Weights {
                    file: file.to_string(),
                    what: key.into(),
                    expected: format!("a token for each of the embedding's {vocab} rows"),
                    found: format!("{} tokens", tokens.len()),
                });
            }
        }
        match crate::model::formats::gguf_tokenizer::from_metadata(file, metadata) {
            Ok(Some(t)) => Ok(Tokenizer::HuggingFace(Box::new(t))),
            Ok(None) => Ok(Self::without_file(
                &format!("a tokenizer in {file}'s metadata or one named with --tokenizer"),
                vocab,
            )),
            Err(e) => Ok(Tokenizer::Missing {
                expected: "a tokenizer the file's metadata describes, one named with \
                           --tokenizer, or the prompt as token ids (--prompt-ids)"
                    .into(),
                found: e.to_string(),
            }),
        }
    }

    /// `file` when the user names one (`--tokenizer`), else the model's own
    /// ([`Tokenizer::for_model`]) (native).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn named_or_for_model(
        file: Option<&std::path::Path>,
        model: &std::path::Path,
        vocab: usize,
    ) -> crate::Result<Self> {
        match file {
            Some(path) => Self::from_file(path),
            None => Self::for_model(model, vocab),
        }
    }

    /// The Hugging Face `tokenizer.json` at `path` (native).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_file(path: &std::path::Path) -> crate::Result<Self> {
        let bytes = crate::files::read_capped(path, crate::files::TOKENIZER_CAP)?;
        tokenizers::Tokenizer::from_bytes(bytes)
            .map(|t| Tokenizer::HuggingFace(Box::new(t)))
            .map_err(|e| crate::Error::Invalid {
                what: format!("tokenizer {}", crate::files::shown_path(path)),
                expected: "a Hugging Face tokenizer.json".into(),
                found: e.to_string(),
            })
    }

    /// The tokenizer of a model whose tokenizer file, looked for as `looked_for`, is absent:
    /// byte-level for a vocabulary of at most 256 tokens (this project's models), else
    /// [`Tokenizer::Missing`].
    pub fn without_file(looked_for: &str, vocab: usize) -> Self {
        match vocab <= 256 {
            true => Tokenizer::Bytes,
            false => Tokenizer::Missing {
                expected: format!(
                    "{looked_for} (the model's {vocab} tokens are not bytes), or the prompt as \
                     token ids (--prompt-ids)"
                ),
                found: "no such file".into(),
            },
        }
    }

    /// A Hugging Face tokenizer from the text of its `tokenizer.json` (e.g. a file a web page
    /// was given).
    pub fn from_json(json: &str) -> crate::Result<Self> {
        tokenizers::Tokenizer::from_bytes(json.as_bytes())
            .map(|t| Tokenizer::HuggingFace(Box::new(t)))
            .map_err(|e| crate::Error::Invalid {
                what: "tokenizer.json".into(),
                expected: "a Hugging Face tokenizer.json".into(),
                found: e.to_string(),
            })
    }

    /// Token ids of a prompt: special tokens (BOS) added exactly as the tokenizer's
    /// post-processor defines them, as transformers' `tokenizer(text)` does.
    pub fn encode(&self, text: &str) -> crate::Result<Vec<u32>> {
        self.encode_with(text, true)
    }

    /// Token ids of `text` alone, without special tokens (e.g. a stop sequence).
    pub fn encode_plain(&self, text: &str) -> crate::Result<Vec<u32>> {
        self.encode_with(text, false)
    }

    /// The text of `ids`, special tokens skipped; an id the tokenizer cannot decode is an
    /// error.
    pub fn decode(&self, ids: &[u32]) -> crate::Result<String> {
        match self {
            Tokenizer::Bytes => Ok(decode(ids)),
            Tokenizer::HuggingFace(t) => hf_decode(t, ids),
            Tokenizer::Missing { .. } => Ok(ids.iter().map(|&i| id_text(i)).collect()),
        }
    }

    fn encode_with(&self, text: &str, special: bool) -> crate::Result<Vec<u32>> {
        match self {
            Tokenizer::Bytes => Ok(encode(text)),
            Tokenizer::Missing { expected, found } => Err(crate::Error::Invalid {
                what: "tokenizer".into(),
                expected: expected.clone(),
                found: found.clone(),
            }),
            Tokenizer::HuggingFace(t) => t
                .encode(text, special)
                .map(|e| e.get_ids().to_vec())
                .map_err(|e| crate::Error::Invalid {
                    what: "text to encode".into(),
                    expected: "text the tokenizer accepts".into(),
                    found: e.to_string(),
                }),
        }
    }

    /// A streaming decoder for this tokenizer.
    pub fn decoder(&self) -> StreamDecoder<'_> {
        StreamDecoder {
            tokenizer: self,
            bytes: ByteDecoder::default(),
            ids: Vec::new(),
            shown: 0,
        }
    }
}

/// Turns generated tokens into text as they arrive.
pub struct StreamDecoder<'a> {
    tokenizer: &'a Tokenizer,
    bytes: ByteDecoder,
    /// Tokens so far and bytes of their text shown (Hugging Face tokenizers only).
    ids: Vec<u32>,
    shown: usize,
}

impl StreamDecoder<'_> {
    /// Adds a token; returns the new text it completes.
    pub fn push(&mut self, token: u32) -> crate::Result<String> {
        match self.tokenizer {
            Tokenizer::Bytes => Ok(self.bytes.push(token)),
            Tokenizer::Missing { .. } => Ok(id_text(token)),
            Tokenizer::HuggingFace(t) => {
                // Decode everything so far and show the new suffix: merges and byte-fallback
                // tokens are handled by the tokenizer itself; a suffix ending in an incomplete
                // character (U+FFFD) waits for the next token.
                self.ids.push(token);
                let text = hf_decode(t, &self.ids)?;
                if text.ends_with('\u{FFFD}')
                    || text.len() < self.shown
                    || !text.is_char_boundary(self.shown)
                {
                    return Ok(String::new());
                }
                let new = text[self.shown..].to_string();
                self.shown = text.len();
                Ok(new)
            }
        }
    }

    /// Whatever is held back.
    pub fn finish(&mut self) -> crate::Result<String> {
        match self.tokenizer {
            Tokenizer::Bytes => Ok(self.bytes.finish()),
            Tokenizer::Missing { .. } => Ok(String::new()),
            Tokenizer::HuggingFace(t) => {
                let text = hf_decode(t, &self.ids)?;
                let rest = text.get(self.shown..).unwrap_or("").to_string();
                self.shown = text.len();
                Ok(rest)
            }
        }
    }
}

/// A token shown without a tokenizer: its id, `<id>`.
fn id_text(id: u32) -> String {
    format!("<{id}>")
}

/// A Hugging Face tokenizer's text for `ids`, special tokens skipped.
fn hf_decode(t: &tokenizers::Tokenizer, ids: &[u32]) -> crate::Result<String> {
    t.decode(ids, true).map_err(|e| crate::Error::Invalid {
        what: format!("decoding {} token ids", ids.len()),
        expected: "ids the tokenizer can turn into text".into(),
        found: e.to_string(),
    })
}
