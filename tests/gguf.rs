//! GGUF files written by the `gguf` Python package (`reference/export_gguf_fixtures.py`) load
//! as they are and give the logits of their safetensors twin at the same precision, bit for
//! bit: f32, f16, and the q8_0, q4_0 and q4_1 blocks against the twin quantized at load (our
//! quantizer matches the package's), on every adapter. Malformed files give named errors.

mod common;

use common::{bits, on_every_adapter};
use latentgpu::gpu::GpuContext;
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
        let mut cases = vec![
            ("f32", None, WeightFormat::F32),
            // f16 values are the twin's (its weights are f16 values), kept in f32.
            ("f16", None, WeightFormat::F32),
            ("q8_0", None, WeightFormat::parse("q8_0").unwrap()),
            ("q4_0", None, WeightFormat::parse("q4_0").unwrap()),
            ("q4_1", None, WeightFormat::parse("q4_1").unwrap()),
        ];
        if ctx.has_f16() {
            cases.push(("f16", Some(WeightFormat::F16), WeightFormat::F16));
        }
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
