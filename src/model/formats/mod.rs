//! What model files hold, read as they are: safetensors and GGUF tensors, GGUF metadata, and
//! tokenizers. Which family a file is, and what its tensors mean, is `families`' to say.

pub mod chat_template;
pub mod gguf;
pub mod gguf_tokenizer;
pub mod hf_json;
pub mod tokenizer;
pub mod weights;
