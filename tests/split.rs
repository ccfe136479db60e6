//! Weights split into row blocks (as past the binding limit) give the values of the unsplit
//! weights, bit for bit: with a forced tiny block size every matrix of every attention kind, the
//! embedding, the LM head and the stacked experts are split, on every adapter.

mod common;

use common::{bits, fixture, on_every_adapter};
use latentgpu::gpu::{Batch, GpuContext};
use latentgpu::model::{generate, GenerateConfig, LoadOptions, Logits, Model, SamplingConfig};
use latentgpu::ops::WeightFormat;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The models, and the block size that splits their weights: a block must hold one row, or
/// one whole expert of a stacked expert matrix (12·32 f32 in the DeepSeek fixtures). Quantized
/// weights split between tiles of 32 rows: [`load_split`] grows the block to the largest tile.
fn models() -> Vec<(PathBuf, u64)> {
    let hf = |name: &str| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/hf-dense")
            .join(name)
            .join("model")
    };
    let mut all = vec![
        (fixture("mha-tiny"), 1024),
        (fixture("mla-tiny"), 1024),
        (fixture("mla-tiny-qlora-yarn"), 1024),
        (fixture("latent-tiny"), 1024),
        (fixture("gqa-tiny-gelu-layernorm"), 1024),
    ];
    for name in [
        "llama-gqa3",
        "llama3-mqa-bf16",
        "qwen2-bias",
        "qwen3-head-dim",
        "mistral-window-sharded",
        "deepseek-v2-moe",
        "deepseek-v2-groups-yarn",
        "deepseek-v3-noaux",
        "deepseek-v3-unnormed",
    ] {
        let block = if name.starts_with("deepseek") {
            1536
        } else {
            512
        };
        all.push((hf(name), block));
    }
    all
}

/// What a prefill of `ids` gave: the logits of every position (bit patterns), the weights it
/// bound as row blocks, and the weights it bound whole with their bytes.
struct Prefill {
    logits: Vec<u32>,
    split: BTreeSet<String>,
    whole: BTreeSet<(String, u64)>,
}

fn prefill(ctx: &GpuContext, model: &Model, ids: &[u32]) -> Prefill {
    let mut cache = model.new_cache(ctx).unwrap();
    let mut b = Batch::logged(ctx);
    let (logits, _) = model
        .record_forward(&mut b, ids, &mut cache, Logits::All)
        .unwrap();
    let bound = b.recorded().iter().flat_map(|d| d.tensors.iter());
    // Weights are named for their checkpoint tensors; a block's name adds its rows `[a..b]`.
    let is_weight =
        |l: &str| l.starts_with("layers.") || l == "embed_tokens.weight" || l == "lm_head.weight";
    let split = bound
        .clone()
        .filter_map(|t| t.label().split_once('[').map(|(name, _)| name.to_string()))
        .collect();
    let whole = bound
        .filter(|t| is_weight(t.label()) && !t.label().contains('['))
        .map(|t| (t.label().to_string(), t.bytes()))
        .collect();
    let values = b.read(&[&logits]).unwrap().remove(0);
    Prefill {
        logits: bits(&values),
        split,
        whole,
    }
}

/// `dir` loaded with its weights in blocks of at most `block_bytes`, or of its largest
/// quantized tile where that is more (the refusal names the tile's bytes), and that block size.
fn load_split(
    ctx: &GpuContext,
    dir: &Path,
    weights: WeightFormat,
    mut block_bytes: u64,
) -> latentgpu::Result<(Model, u64)> {
    loop {
        let options = LoadOptions {
            block_bytes: Some(block_bytes),
            weights: Some(weights),
            ..LoadOptions::default()
        };
        match Model::load_dir_with(ctx, dir, options, |_, _| {}) {
            Err(latentgpu::Error::BufferTooLarge {
                bytes, limit_name, ..
            }) if limit_name.contains("tile") && bytes > block_bytes => block_bytes = bytes,
            other => return other.map(|m| (m, block_bytes)),
        }
    }
}

fn greedy(ctx: &GpuContext, model: &Model, ids: &[u32]) -> Vec<u32> {
    let cfg = GenerateConfig {
        eos_token_ids: Vec::new(),
        max_tokens: 12,
        stop: None,
        sampling: SamplingConfig {
            temperature: 0.0,
            ..Default::default()
        },
        cancel: None,
    };
    generate(ctx, model, ids, &cfg, |_| {}).unwrap()
}

#[test]
fn split_weights_give_the_unsplit_logits_bit_for_bit() {
    on_every_adapter(|ctx| {
        // f32, f16 and bf16 matrices, and the quantized formats (their codes, scales and
        // minimums split alike).
        let mut formats = vec![WeightFormat::F32, WeightFormat::F16, WeightFormat::BF16];
        formats.extend(["q8_0", "q4_0", "q4_1"].map(|n| WeightFormat::parse(n).unwrap()));
        for ((dir, block_bytes), &weights) in models()
            .into_iter()
            .flat_map(|m| formats.iter().map(move |p| (m.clone(), p)))
        {
            let name = format!("{} {}", dir.display(), weights.name());
            let whole = Model::load_dir_with(ctx, &dir, LoadOptions::weights(weights), |_, _| {})
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let (split, block_bytes) = load_split(ctx, &dir, weights, block_bytes)
                .unwrap_or_else(|e| panic!("{name} split: {e}"));
            let vocab = whole.config.vocab_size as u32;
            let ids: Vec<u32> = [1, 5, 9, 2, 7, 3, 11].iter().map(|i| i % vocab).collect();
            let want = prefill(ctx, &whole, &ids);
            let got = prefill(ctx, &split, &ids);
            // Quantized latent projections are stacked as the blocks of their three parts.
            let stacked =
                |w: &&String| w.contains(".qkv_proj") && matches!(weights, WeightFormat::Quant(_));
            assert!(
                want.split.iter().all(|w| stacked(&w)),
                "{name}: unsplit run bound blocks"
            );
            assert!(
                got.logits == want.logits,
                "{name}: split logits differ from the unsplit ones"
            );
            // Every weight the unsplit pass bound that is bigger than a block was split.
            let unsplit: Vec<&(String, u64)> = want
                .whole
                .iter()
                .filter(|(w, bytes)| *bytes > block_bytes && !got.split.contains(w))
                .collect();
            assert!(unsplit.is_empty(), "{name}: not split: {unsplit:?}");
            assert!(
                got.split
                    .iter()
                    .any(|w| w.starts_with("embed_tokens.weight")),
                "{name}: embedding not split"
            );
            assert_eq!(
                greedy(ctx, &whole, &ids),
                greedy(ctx, &split, &ids),
                "{name}: greedy decode"
            );
        }
    });
}

/// A model whose tied embedding (the LM head) is past the adapter's binding limit loads, split,
/// and gives the logits of the model it extends: the shipped MHA model with its vocabulary
/// padded by zero rows to 2^18 tokens (168 MB in f32 against lavapipe's 128 MiB). The table is
/// read, converted and uploaded in pieces of 16 MiB (`gpu::split::PIECE_BYTES`): ten of them,
/// as f32 values across two row blocks, and quantized to q4_0 at load.
#[test]
fn an_embedding_past_the_binding_limit_loads_and_generates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/shakespeare-mha");
    let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let (big_config, big_weights) = common::big_vocab::padded_model(&config, &bytes);
    let (vocab, d) = (common::big_vocab::VOCAB, 160);
    let prompt = latentgpu::model::formats::tokenizer::encode("ROMEO:");
    on_every_adapter(|ctx| {
        let limit = ctx.limits.max_storage_buffer_binding_size;
        if (vocab * d * 4) as u64 <= limit {
            eprintln!("{}: binds {limit} bytes, the embedding fits", ctx.name());
        }
        for weights in [WeightFormat::F32, WeightFormat::parse("q4_0").unwrap()] {
            let name = format!("{} {}", ctx.name(), weights.name());
            let options = LoadOptions::weights(weights);
            let small = Model::load_dir_with(ctx, &dir, options, |_, _| {}).unwrap();
            let big = Model::from_bytes(ctx, &big_config, big_weights.clone(), options).unwrap();
            let logits = |m: &Model| {
                let mut cache = m.new_cache(ctx).unwrap();
                m.forward(ctx, &prompt, &mut cache, Logits::Last).unwrap()
            };
            let (want, got) = (logits(&small), logits(&big));
            assert_eq!(got.len(), vocab, "{name}");
            // The first 256 rows lie in the first block: the same products, bit for bit.
            assert_eq!(bits(&got[..256]), bits(&want), "{name}");
            assert!(
                got[256..].iter().all(|&v| v == 0.0),
                "{name}: zero rows give zero logits"
            );
            assert_eq!(
                greedy(ctx, &big, &prompt),
                greedy(ctx, &small, &prompt),
                "{name}"
            );
        }
    });
}
