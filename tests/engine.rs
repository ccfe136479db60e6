//! The engine's steady state: no buffer, bind group or pipeline is created per decoded token
//! once a model is warm, and a pipeline is compiled once however many threads ask for it.
//! These tests open their own contexts, so other tests' work does not show in the counters.

mod common;

use latentgpu::gpu::{Batch, GpuContext, GpuTensor};
use latentgpu::model::{generate, GenerateConfig, Model, SamplingConfig};
use latentgpu::ops;

const MODELS: &[&str] = &["shakespeare-mha", "shakespeare-mla", "shakespeare-latent"];

fn fresh_contexts() -> Vec<GpuContext> {
    let all = GpuContext::all().expect("a device on every adapter");
    assert!(!all.is_empty(), "no GPU adapter found");
    all
}

#[test]
fn decoding_creates_no_buffer_bind_group_or_pipeline_per_token() {
    // Tokens 40..=100 of a 6-token prompt: past the warm-up, and across the latent model's
    // chunk boundaries (every 32 positions), whose extra dispatches were met once before 40.
    const FROM: usize = 40;
    const TO: usize = 100;
    for ctx in fresh_contexts() {
        for name in MODELS {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("models")
                .join(name);
            let model = Model::load_dir(&ctx, &dir).unwrap();
            let cfg = GenerateConfig {
                max_tokens: TO,
                stop: None,
                eos_token_ids: Vec::new(),
                sampling: SamplingConfig {
                    temperature: 0.9,
                    top_k: 20,
                    top_p: 0.9,
                    repetition_penalty: 1.1,
                    seed: 4,
                },
                cancel: None,
            };
            // A first sequence warms every pipeline and the decode batches' sizes: the decoder
            // sizes a batch by the time the last one took, and a batch longer than any before
            // binds scratch buffers in new places (slow first tokens, while shaders compile,
            // would otherwise let batches grow past token 40).
            let prompt = b"ROMEO:".map(u32::from);
            generate(&ctx, &model, &prompt, &cfg, |_| {}).unwrap();
            let mut seen = Vec::new();
            generate(&ctx, &model, &prompt, &cfg, |_| seen.push(ctx.counters())).unwrap();
            assert_eq!(seen.len(), TO, "{name}: generated {} tokens", seen.len());
            let (a, b) = (seen[FROM - 1], seen[TO - 1]);
            let per_token = |x: u64, y: u64| (y - x) as f64 / (TO - FROM) as f64;
            eprintln!(
                "{} {name}: {:.1} dispatches per token",
                ctx.name(),
                per_token(a.dispatches, b.dispatches)
            );
            assert_eq!(
                a.buffers,
                b.buffers,
                "{name} on {}: buffers created while decoding",
                ctx.name()
            );
            assert_eq!(
                a.bind_groups,
                b.bind_groups,
                "{name} on {}: bind groups created while decoding",
                ctx.name()
            );
            assert_eq!(
                a.pipelines,
                b.pipelines,
                "{name} on {}: pipelines compiled while decoding",
                ctx.name()
            );
        }
    }
}

#[test]
fn a_pipeline_is_compiled_once_when_threads_ask_together() {
    for ctx in fresh_contexts() {
        let before = ctx.counters();
        let x = GpuTensor::from_f32(&ctx, "x", &[3, 5], &[0.5; 15]).unwrap();
        let barrier = std::sync::Barrier::new(8);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    barrier.wait();
                    let mut b = Batch::new(&ctx);
                    let y = ops::softmax(&mut b, &x, None).unwrap();
                    let rows = b.read(&[&y]).unwrap();
                    assert!((rows[0][..5].iter().sum::<f32>() - 1.0).abs() < 1e-6);
                });
            }
        });
        let after = ctx.counters();
        assert_eq!(
            after.pipelines - before.pipelines,
            1,
            "{}: softmax compiled more than once",
            ctx.name()
        );
        assert_eq!(
            after.shader_modules - before.shader_modules,
            1,
            "{}",
            ctx.name()
        );
    }
}

/// A scratch buffer that a batch recorded on one thread still writes (its tensor dropped, the
/// batch not yet submitted) must not be handed to another thread for a tensor that outlives
/// its own batch: the first batch, submitted later, would overwrite it.
#[test]
fn a_scratch_buffer_another_threads_pending_batch_writes_is_not_handed_out() {
    for ctx in fresh_contexts() {
        // A size class no other tensor here uses.
        let n = 3_000_001;
        let ones = GpuTensor::from_f32(&ctx, "ones", &[n], &vec![1.0; n]).unwrap();
        let (recorded, kept) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
        let submitted = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut b = Batch::new(&ctx);
                let twos = ops::binary(&mut b, ops::BinaryOp::Add, &ones, &ones).unwrap();
                let _fours = ops::binary(&mut b, ops::BinaryOp::Add, &twos, &twos).unwrap();
                drop(twos);
                recorded.wait();
                kept.wait();
                b.submit().unwrap();
                submitted.wait();
            });
            s.spawn(|| {
                recorded.wait();
                let mut b = Batch::new(&ctx);
                let result = ops::binary(&mut b, ops::BinaryOp::Mul, &ones, &ones).unwrap();
                b.submit().unwrap();
                kept.wait();
                submitted.wait();
                let values = result.read(&ctx).unwrap();
                assert!(
                    values.iter().all(|&v| v == 1.0),
                    "{}: a kept result was overwritten by another thread's batch",
                    ctx.name()
                );
            });
        });
    }
}
