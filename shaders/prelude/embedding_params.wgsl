// The params of the embedding gathers (embedding.wgsl, embedding_quant.wgsl); mirrors
// `ops::EmbeddingParams`.
struct EmbeddingParams {
    tokens: u32,
    d: u32,
    vocab: u32,
    first_row: u32,
    rows: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
