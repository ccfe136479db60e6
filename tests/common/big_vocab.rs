//! The shipped MHA model with its tied embedding padded by zero rows to a large vocabulary: a
//! weight past the binding limit from a model whose outputs are known (the first 256 logits are
//! the shipped model's, the others zero).

/// Rows of the padded embedding: 2^18, 168 MB in f32 (past WebGPU's default 128 MiB binding).
pub const VOCAB: usize = 1 << 18;

/// The padded model's `(config.json text, model.safetensors bytes)` from the shipped model's.
pub fn padded_model(config: &str, weights: &[u8]) -> (String, Vec<u8>) {
    let st = safetensors::SafeTensors::deserialize(weights).unwrap();
    let embed = st.tensor("embed_tokens.weight").unwrap();
    assert_eq!(embed.dtype(), safetensors::Dtype::F16);
    let d = embed.shape()[1];
    let mut padded = embed.data().to_vec();
    padded.resize(VOCAB * d * 2, 0);
    let mut tensors: Vec<(String, safetensors::tensor::TensorView)> = st
        .tensors()
        .into_iter()
        .filter(|(name, _)| name != "embed_tokens.weight")
        .collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F16, vec![VOCAB, d], &padded)
            .unwrap();
    tensors.push(("embed_tokens.weight".into(), view));
    let bytes = safetensors::serialize(tensors, None).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(config).unwrap();
    json["vocab_size"] = VOCAB.into();
    (json.to_string(), bytes)
}
