//! Three-phase latent attention: each GPU phase and the composed layer against the f64 reference
//! on awkward shapes, causal perturbation, and the constant-size decode state.

mod common;

use common::{assert_close, contexts, fixture, max_abs, on_every_adapter, Golden, Rng, U};
use latentgpu::cpu::LatentWeights;
use latentgpu::model::layers::latent::{LatentLayer, LatentShape};
use latentgpu::model::{Logits, Model, ModelConfig, WeightFile};
use latentgpu::ops::{self, RopeMode, RopeTable};
use latentgpu::{Batch, GpuContext, GpuTensor};
use safetensors::tensor::TensorView;

/// Random weights of a latent layer, written to a safetensors file the layer loads.
struct Weights {
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
}

impl Weights {
    fn random(rng: &mut Rng, s: &LatentShape) -> Self {
        let d = s.d;
        let w = 1.0 / (d as f32).sqrt();
        let mut tensors = vec![(
            "attn.latents".to_string(),
            vec![s.latents, d],
            rng.vec(s.latents * d, -1.0, 1.0),
        )];
        let mut phases = vec!["gather", "broadcast"];
        if s.synthesis {
            phases.push("synth");
        }
        for phase in phases {
            for p in ["q_proj", "k_proj", "v_proj", "o_proj"] {
                tensors.push((
                    format!("attn.{phase}.{p}.weight"),
                    vec![d, d],
                    rng.vec(d * d, -w, w),
                ));
            }
        }
        Weights { tensors }
    }

    fn get(&self, name: &str) -> &[f32] {
        &self.tensors.iter().find(|t| t.0 == name).unwrap().2
    }

    fn proj(&self, phase: &str) -> [&[f32]; 4] {
        ["q_proj", "k_proj", "v_proj", "o_proj"]
            .map(|p| self.get(&format!("attn.{phase}.{p}.weight")))
    }

    fn reference(&self, s: &LatentShape) -> LatentWeights<'_> {
        LatentWeights {
            latents: self.get("attn.latents"),
            gather: self.proj("gather"),
            synth: s.synthesis.then(|| self.proj("synth")),
            broadcast: self.proj("broadcast"),
            m: s.latents,
            d: s.d,
            heads: s.heads,
        }
    }

    fn layer(&self, ctx: &GpuContext, s: LatentShape) -> LatentLayer {
        let bytes: Vec<Vec<u8>> = self
            .tensors
            .iter()
            .map(|t| bytemuck::cast_slice(&t.2).to_vec())
            .collect();
        let views: Vec<(String, TensorView)> = self
            .tensors
            .iter()
            .zip(&bytes)
            .map(|(t, b)| {
                (
                    t.0.clone(),
                    TensorView::new(safetensors::Dtype::F32, t.1.clone(), b).unwrap(),
                )
            })
            .collect();
        let bytes = safetensors::serialize(views, None).unwrap();
        let mut file = WeightFile::from_bytes("latent layer weights", bytes).unwrap();
        let layer = LatentLayer::load(ctx, &mut file, s, "attn").unwrap();
        file.finish().unwrap();
        layer
    }
}

/// The layer is a chain of about a dozen f32 stages: 12 reductions of length d (projections,
/// score dots) and 4 of length up to n + M (attention sums). Each stage's rounding error is about
/// sqrt(K)·u relative to the values it produces (math.md §6); the weights are scaled by
/// 1/sqrt(d), so later stages pass earlier errors on with gain about 1, and independent rounding
/// errors add in quadrature: 4·sqrt(12·d + 4·(n + M))·u·max|y|, c = 4 for the tail over all outputs.
fn layer_tol(d: usize, n: usize, m: usize, scale: f64) -> f64 {
    4.0 * ((12 * d + 4 * (n + m)) as f64).sqrt() * U * scale
}

const SHAPES: &[(usize, LatentShape)] = &[
    // (tokens, shape): N not a multiple of the chunk, M = 1, h = 1, odd head widths, tiles of 64.
    (
        37,
        LatentShape {
            d: 24,
            heads: 3,
            latents: 5,
            chunk: 8,
            rope_dim: 4,
            synthesis: true,
        },
    ),
    (
        17,
        LatentShape {
            d: 12,
            heads: 1,
            latents: 1,
            chunk: 4,
            rope_dim: 2,
            synthesis: false,
        },
    ),
    (
        23,
        LatentShape {
            d: 21,
            heads: 3,
            latents: 7,
            chunk: 5,
            rope_dim: 6,
            synthesis: true,
        },
    ),
    (
        130,
        LatentShape {
            d: 64,
            heads: 4,
            latents: 64,
            chunk: 32,
            rope_dim: 8,
            synthesis: true,
        },
    ),
    (
        9,
        LatentShape {
            d: 16,
            heads: 2,
            latents: 3,
            chunk: 16,
            rope_dim: 8,
            synthesis: false,
        },
    ),
];

#[test]
fn causal_layer_matches_reference() {
    on_every_adapter(|ctx| {
        let mut rng = Rng::new(31);
        for &(n, s) in SHAPES {
            let w = Weights::random(&mut rng, &s);
            let layer = w.layer(ctx, s);
            let x = rng.vec(n * s.d, -1.0, 1.0);
            for mode in [RopeMode::HalfSplit, RopeMode::Interleaved] {
                let table = RopeTable::new(ctx, s.rope_dim, 10000.0, n).unwrap();
                let (cos, sin) =
                    ops::rope::rope_tables(&ops::rope::inv_freq(s.rope_dim, 10000.0), n, 1.0);
                let state = layer.new_state(ctx).unwrap();
                let mut b = Batch::new(ctx);
                let gx = GpuTensor::from_f32(ctx, "x", &[n, s.d], &x).unwrap();
                let y = layer.forward(&mut b, &gx, 0, &state, &table, mode).unwrap();
                let out = b.read(&[&y]).unwrap().remove(0);
                let reference = w
                    .reference(&s)
                    .causal(&x, n, s.chunk, s.rope_dim, &cos, &sin, mode);
                let tol = layer_tol(s.d, n, s.latents, max_abs(&reference));
                assert_close(
                    &format!("causal latent n{n} {s:?} {mode:?}"),
                    &out,
                    &reference,
                    tol,
                );
            }
        }
    });
}

#[test]
fn bidirectional_layer_matches_the_seed_equations() {
    on_every_adapter(|ctx| {
        let mut rng = Rng::new(32);
        for &(n, s) in SHAPES {
            let w = Weights::random(&mut rng, &s);
            let layer = w.layer(ctx, s);
            let x = rng.vec(n * s.d, -1.0, 1.0);
            let mut b = Batch::new(ctx);
            let gx = GpuTensor::from_f32(ctx, "x", &[n, s.d], &x).unwrap();
            let y = layer.forward_bidirectional(&mut b, &gx).unwrap();
            let out = b.read(&[&y]).unwrap().remove(0);
            let reference = w.reference(&s).bidirectional(&x, n);
            let tol = layer_tol(s.d, n, s.latents, max_abs(&reference));
            assert_close(
                &format!("bidirectional latent n{n} {s:?}"),
                &out,
                &reference,
                tol,
            );
        }
    });
}

#[test]
fn gather_state_absorbs_tokens_in_pieces_exactly() {
    on_every_adapter(|ctx| pollster::block_on(common::kernel_checks::latent_gather_in_pieces(ctx)));
}

#[test]
fn causal_outputs_ignore_later_tokens_bit_for_bit() {
    on_every_adapter(|ctx| {
        for name in ["latent-tiny", "latent-tiny-nosynth"] {
            let dir = fixture(name);
            let tokens = Golden::open(&dir.join("golden.safetensors")).tokens("tokens");
            let model = Model::load_dir(ctx, &dir).unwrap();
            let v = model.config.vocab_size;
            let run = |ids: &[u32]| {
                let mut cache = model.new_cache(ctx).unwrap();
                model.forward(ctx, ids, &mut cache, Logits::All).unwrap()
            };
            let base = run(&tokens);
            // Positions inside a chunk, at its last token, and at the first of the next.
            for t in [0, 6, 7, 14, 15, 16, 30, 47, 55] {
                let mut changed = tokens.clone();
                changed[t + 1] = (changed[t + 1] + 1) % 256;
                let other = run(&changed);
                assert_eq!(
                    base[..(t + 1) * v],
                    other[..(t + 1) * v],
                    "{name}: changing token {} changed an output at a position <= {t}",
                    t + 1
                );
                assert_ne!(
                    base[(t + 1) * v..],
                    other[(t + 1) * v..],
                    "{name}: token {} had no effect",
                    t + 1
                );
            }
        }
    });
}

#[test]
fn decode_state_does_not_grow_with_context() {
    let ctx = &contexts()[0];
    for (name, grows) in [("latent-tiny", false), ("mha-tiny", true)] {
        let dir = fixture(name);
        let mut cfg = ModelConfig::load(&dir.join("config.json")).unwrap();
        let bytes_at = |max_context: usize, cfg: &mut ModelConfig| {
            cfg.max_context = max_context;
            let mut file = WeightFile::open(&dir.join("model.safetensors")).unwrap();
            let model = Model::load(ctx, cfg.clone(), &mut file, |_| {}).unwrap();
            let mut cache = model.new_cache(ctx).unwrap();
            let before = cache.bytes();
            let ids: Vec<u32> = (0..40).map(|i| i % 256).collect();
            model.forward(ctx, &ids, &mut cache, Logits::Last).unwrap();
            assert_eq!(
                cache.bytes(),
                before,
                "{name}: decoding must not allocate state"
            );
            before
        };
        let small = bytes_at(64, &mut cfg);
        let large = bytes_at(4096, &mut cfg);
        assert_eq!(
            small != large,
            grows,
            "{name}: state bytes {small} at 64 tokens, {large} at 4096"
        );
    }
    // The latent state is O(M·d + C·d): keys/values of M latents and C chunk tokens, the chunk's
    // raw keys/values, and the gather state (max, sum per latent-head; acc, summary M·d).
    let (layers, m, c, d, h) = (2u64, 5u64, 16u64, 64u64, 4u64);
    let per_layer = 4 * (2 * (m + c) * d + 2 * c * d + 2 * m * h + 2 * m * d);
    let mut cfg = ModelConfig::load(&fixture("latent-tiny").join("config.json")).unwrap();
    cfg.max_context = 64;
    let mut file = WeightFile::open(&fixture("latent-tiny").join("model.safetensors")).unwrap();
    let model = Model::load(ctx, cfg, &mut file, |_| {}).unwrap();
    assert_eq!(model.new_cache(ctx).unwrap().bytes(), layers * per_layer);
}
