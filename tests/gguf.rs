//! GGUF files written by the `gguf` Python package (`reference/export_gguf_fixtures.py`) load
//! as they are and give the logits of their safetensors twin at the same precision, bit for
//! bit: f32, f16, and the q8_0, q4_0 and q4_1 blocks against the twin quantized at load (our
//! quantizer matches the package's), on every adapter; a DeepSeek-V2 file (MLA, experts) the
//! same. Malformed files give named errors.

mod common;

use common::{bits, on_every_adapter};
use latentgpu::gpu::GpuContext;
use latentgpu::model::tools::eval::compare_formats;
use latentgpu::model::{LoadOptions, Logits, Model};
use latentgpu::ops::WeightFormat;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf/llama")
}

fn logits(ctx: &GpuContext, model: &Model) -> Vec<u32> {
    let ids = [1u32, 5, 9, 2, 7, 3, 11, 60, 0, 33];
    let mut cache = model.new_cache(ctx).unwrap();
    bits(&model.forward(ctx, &ids, &mut cache, Logits::All).unwrap())
}

fn load(ctx: &GpuContext, path: &Path, weights: Option<WeightFormat>) -> Model {
    let options = LoadOptions {
        weights,
        ..LoadOptions::default()
    };
    Model::load_dir_with(ctx, path, options, |_, _| {})
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn gguf_files_give_their_safetensors_twins_logits_bit_for_bit() {
    on_every_adapter(|ctx| {
        let twin = dir().join("model");
        // (file, format the file is loaded in, format the twin is loaded in)
        let cases = vec![
            ("f32", None, WeightFormat::F32),
            // f16 values are the twin's (its weights are f16 values): kept in f16 as the file
            // holds them, on every adapter, or in f32 when asked.
            ("f16", None, WeightFormat::F16),
            ("f16", Some(WeightFormat::F32), WeightFormat::F32),
            ("q8_0", None, WeightFormat::parse("q8_0").unwrap()),
            ("q4_0", None, WeightFormat::parse("q4_0").unwrap()),
            ("q4_1", None, WeightFormat::parse("q4_1").unwrap()),
        ];
        for (kind, file_format, twin_format) in cases {
            let path = dir().join(format!("model-{kind}.gguf"));
            let gguf = load(ctx, &path, file_format);
            let st = load(ctx, &twin, Some(twin_format));
            assert_eq!(gguf.config.vocab_size, 64);
            assert!(gguf.config.tie_embeddings, "no output.weight: tied");
            assert_eq!(
                gguf.weight_format(),
                twin_format,
                "{kind}: loaded as {:?}",
                gguf.weight_format()
            );
            assert!(
                logits(ctx, &gguf) == logits(ctx, &st),
                "{kind} GGUF ({file_format:?}) differs from the twin in {}",
                twin_format.name()
            );
        }
    });
}

fn deepseek_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf/deepseek-v2")
}

/// A DeepSeek-V2 GGUF as `convert_hf_to_gguf.py` writes it (`reference/export_gguf_deepseek.py`):
/// MLA with kv_b_proj split into attn_k_b and attn_v_b, stacked routed experts, a shared one.
/// The f16 file holds the twin's values: its logits are the twin's bit for bit, in f32 and in
/// f16. The q8_0 file is its own model (attn_k_b's blocks run along other rows
/// than kv_b_proj's), held to q8_0's agreement bound with the twin.
#[test]
fn deepseek_v2_gguf_gives_its_twins_logits() {
    on_every_adapter(|ctx| {
        let twin = deepseek_dir().join("model");
        let f16_file = deepseek_dir().join("model-f16.gguf");
        let gguf = load(ctx, &f16_file, Some(WeightFormat::F32));
        let st = load(ctx, &twin, Some(WeightFormat::F32));
        assert_eq!(gguf.config.n_layers, 2);
        assert!(
            logits(ctx, &gguf) == logits(ctx, &st),
            "f16 DeepSeek-V2 GGUF differs from the twin in f32"
        );
        let gguf = load(ctx, &f16_file, Some(WeightFormat::F16));
        let st = load(ctx, &twin, Some(WeightFormat::F16));
        assert!(
            logits(ctx, &gguf) == logits(ctx, &st),
            "f16 DeepSeek-V2 GGUF differs from the twin in f16"
        );
        // The q8_0 file against the twin, and the twin quantized to q8_0 at load against
        // itself: both are q8_0 roundings of the same weights, only along other rows for k_b,
        // so they should stray from f32 by as much (measured: mean KLD 2.8e-3 and 2.3e-3 on
        // this tiny model of large random weights); a head or expert mapped wrong strays by
        // tenths of a nat.
        let q8_file = load(ctx, &deepseek_dir().join("model-q8_0.gguf"), None);
        let q8_twin = load(ctx, &twin, WeightFormat::parse("q8_0"));
        let ids = || (0..64u32).map(|i| (i * 7 + 3) % 64).map(Ok);
        let agree = |m: &Model| {
            compare_formats(ctx, &st, m, ids(), 64, |_| {})
                .unwrap()
                .kld_mean
        };
        let (file_kld, twin_kld) = (agree(&q8_file), agree(&q8_twin));
        assert!(
            file_kld <= 2.0 * twin_kld,
            "q8_0 DeepSeek-V2 GGUF: mean KLD {file_kld:e} against f32, the twin in q8_0 {twin_kld:e}"
        );
    });
}
