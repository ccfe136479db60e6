//! The paged KV cache at the model level: pages of 1, 7 and 256 tokens, in order or reused in
//! reverse, give the logits of one whole cache bit for bit, f32 or f16 (the kernels read the
//! same rows);
//! sliding-window layers keep only their window and still give transformers' tokens; pages go
//! back to the pool when a sequence is cut or ends; running out of the memory allowed is a
//! named error.

mod common;

use common::llama_checkpoint::{write_checkpoint, LlamaCheckpoint};
use common::{contexts, fixture, greedy_and_expected, max_diff, max_diff64, on_every_adapter};
use latentgpu::cpu::LlamaShape;
use latentgpu::gpu::GpuContext;
use latentgpu::model::layers::transformer::PREFILL_CHUNK;
use latentgpu::model::{CacheOptions, Decoder, LoadOptions, Logits, Model, SamplingConfig};
use latentgpu::ops::KvFormat;
use std::path::{Path, PathBuf};

/// Models with each paged cache: MHA (the shipped Shakespeare), MLA, GQA with q/k norms and a
/// head width of its own, a sliding window (Mistral, window 7), Gemma 3's mix of windowed and
/// full layers (window 5), a latent layer's state beside nothing paged.
fn model_dirs() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let hf = |name: &str| fixture("hf-dense").join(name).join("model");
    vec![
        root.join("models/shakespeare-mha"),
        root.join("models/shakespeare-mla"),
        hf("qwen3-head-dim"),
        hf("mistral-window-sharded"),
        hf("gemma3-window-full"),
        root.join("models/shakespeare-latent"),
    ]
}

fn load(ctx: &GpuContext, dir: &Path) -> Model {
    Model::load_dir(ctx, dir).unwrap()
}

fn pages(page_tokens: usize) -> CacheOptions {
    CacheOptions {
        page_tokens,
        ..CacheOptions::default()
    }
}

/// The logits of a prompt of 20 tokens in two passes (13 + 7), then of 9 tokens one at a time:
/// every pass crosses pages of 1 and 7 tokens, and the prefill takes the products path.
fn logits_of_a_sequence(
    ctx: &GpuContext,
    model: &Model,
    cache: &mut latentgpu::model::Cache,
) -> Vec<Vec<f32>> {
    let vocab = model.config.vocab_size as u32;
    let ids: Vec<u32> = (0..29).map(|i| (i * 7 + 3) % vocab).collect();
    let mut out = vec![model.forward(ctx, &ids[..13], cache, Logits::All).unwrap()];
    out.push(
        model
            .forward(ctx, &ids[13..20], cache, Logits::All)
            .unwrap(),
    );
    for &id in &ids[20..] {
        out.push(model.forward(ctx, &[id], cache, Logits::Last).unwrap());
    }
    out
}

#[test]
fn paged_caches_give_the_logits_of_one_whole_cache_bit_for_bit() {
    on_every_adapter(|ctx| {
        for (dir, format) in model_dirs()
            .into_iter()
            .flat_map(|d| [(d.clone(), KvFormat::F32), (d, KvFormat::F16)])
        {
            let model = load(ctx, &dir);
            let context = model.config.max_context;
            let pages = |page_tokens| CacheOptions {
                page_tokens,
                format,
                ..CacheOptions::default()
            };
            // One page of the whole context: the rows in order in one buffer, as a cache
            // allocated up front holds them (in the same format).
            let mut whole = model.new_cache_with(ctx, pages(context)).unwrap();
            let want = logits_of_a_sequence(ctx, &model, &mut whole);
            for p in [1, 7, 256] {
                let mut cache = model.new_cache_with(ctx, pages(p)).unwrap();
                // Pages in order as the pool grows, then (after the sequence is cut to nothing
                // and its pages returned) reused in reverse order.
                for order in ["in order", "reused"] {
                    let got = logits_of_a_sequence(ctx, &model, &mut cache);
                    for (pass, (g, w)) in got.iter().zip(&want).enumerate() {
                        let same = g.len() == w.len()
                            && g.iter().zip(w).all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(
                            same,
                            "{} ({} cache): pages of {p} {order}: pass {pass} differs",
                            dir.display(),
                            format.name()
                        );
                    }
                    cache.truncate(0);
                    assert_eq!(cache.pages().held, 0, "{}: pages returned", dir.display());
                }
            }
        }
    });
}

#[test]
fn sliding_window_layers_keep_only_their_window_and_give_transformers_tokens() {
    let ctx = &contexts()[0];
    let dir = fixture("hf-dense").join("mistral-window-sharded");
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    // 8 prompt tokens and 24 decoded: more than four windows of 7.
    for p in [1, 2, 7] {
        let options = LoadOptions {
            cache: pages(p),
            ..LoadOptions::default()
        };
        let model = Model::load_dir_with(ctx, &dir.join("model"), options, |_, _| {}).unwrap();
        let (got, want) = greedy_and_expected(ctx, &model, &expected);
        assert_eq!(got, want, "pages of {p}");
        // Decoding token by token, the layers (one page table: all have the window) hold the
        // pages of the 7 positions a query sees, one more where they straddle a page boundary.
        let mut cache = model.new_cache(ctx).unwrap();
        model
            .forward(ctx, &[1, 2, 3], &mut cache, Logits::Last)
            .unwrap();
        for t in 0..40 {
            model
                .forward(ctx, &[t % 80], &mut cache, Logits::Last)
                .unwrap();
            let held = cache.pages().held;
            let bound = 7usize.div_ceil(p) + 1;
            assert!(
                held <= bound,
                "pages of {p} at {}: {held} held, the window spans {bound}",
                cache.len
            );
        }
    }
}

#[test]
fn pages_return_to_the_pool_and_the_pool_keeps_what_it_grew() {
    let ctx = &contexts()[0];
    let model = load(ctx, &model_dirs()[0]);
    let mut cache = model.new_cache_with(ctx, pages(7)).unwrap();
    assert_eq!(cache.pages().held, 0);
    let layers = model.config.n_layers;
    let ids: Vec<u32> = (0..30).collect();
    model.forward(ctx, &ids, &mut cache, Logits::Last).unwrap();
    // 30 tokens: 5 pages of 7 in every layer's group (one group: no windows).
    assert_eq!(
        cache.pages().held,
        5,
        "{layers} layers share one page table"
    );
    let allocated = cache.pages().allocated;
    assert!(
        (5..=8).contains(&allocated),
        "grown by doubling: {allocated}"
    );
    cache.truncate(15);
    assert_eq!(
        cache.pages().held,
        3,
        "positions 15.. returned: pages 3 and 4 free"
    );
    cache.truncate(0);
    assert_eq!(cache.pages().held, 0);
    assert_eq!(
        cache.pages().allocated,
        allocated,
        "the pool keeps its buffers for reuse"
    );
    // The memory held is the pages': a new sequence of 30 tokens takes no more.
    let bytes = cache.bytes();
    model.forward(ctx, &ids, &mut cache, Logits::Last).unwrap();
    assert_eq!(cache.bytes(), bytes);
}

#[test]
fn running_out_of_cache_memory_is_an_error_naming_the_context_reached() {
    let ctx = &contexts()[0];
    let model = load(ctx, &model_dirs()[0]);
    let probe = model.new_cache_with(ctx, pages(8)).unwrap();
    let page_bytes = probe.bytes();
    // Room for 3 pages of 8 tokens in every layer: 24 tokens.
    let options = CacheOptions {
        page_tokens: 8,
        memory: Some(3 * page_bytes),
        ..CacheOptions::default()
    };
    let mut cache = model.new_cache_with(ctx, options).unwrap();
    let ids: Vec<u32> = (0..24).collect();
    model.forward(ctx, &ids, &mut cache, Logits::Last).unwrap();
    let e = model
        .forward(ctx, &[1], &mut cache, Logits::Last)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("KV cache memory at 25 tokens") && e.contains("--cache-memory"),
        "{e}"
    );
    assert_eq!(cache.len, 24, "a failed pass leaves the cache as it was");
    // Less than one page per layer is refused up front.
    let tiny = CacheOptions {
        page_tokens: 8,
        memory: Some(page_bytes - 1),
        ..CacheOptions::default()
    };
    let e = model.new_cache_with(ctx, tiny).err().unwrap().to_string();
    assert!(e.contains("at least one page per layer"), "{e}");
}

#[test]
fn a_prompt_of_several_prefill_chunks_stays_within_the_reference_bound() {
    // Three chunks (512, 512 and 77 tokens) of a small Llama against the CPU reference.
    let tokens = 2 * PREFILL_CHUNK + 77;
    let checkpoint = LlamaCheckpoint {
        shape: LlamaShape {
            d: 32,
            heads: 4,
            kv_heads: 2,
            head_dim: 8,
            hidden: 48,
            vocab: 97,
            eps: 1e-5,
            rope_base: 10000.0,
        },
        layers: 2,
        context: 2048,
        tokens,
    };
    let root = std::env::temp_dir().join(format!("latentgpu-long-prompt-{}", std::process::id()));
    let (dir, golden) = write_checkpoint(&checkpoint, &root, "llama");
    let golden = common::Golden::open(&golden);
    let ids = golden.tokens("tokens");
    let (ref64, _) = golden.f64("logits_f64");
    let ref32 = golden.f32("logits");
    let vocab = checkpoint.shape.vocab;
    let last = |v: &[f64]| v[(tokens - 1) * vocab..].to_vec();
    let (want, f32_last) = (last(&ref64), ref32[(tokens - 1) * vocab..].to_vec());
    // math.md §6: our error against the float64 reference at most twice that of a correct f32
    // implementation (the reference's own, sequential sums) on the same logits.
    let f32_err = max_diff64(
        &f32_last.iter().map(|&x| x as f64).collect::<Vec<_>>(),
        &want,
    );
    on_every_adapter(|ctx| {
        let model = Model::load_dir(ctx, &dir).unwrap();
        let mut cache = model.new_cache(ctx).unwrap();
        let mut seen = Vec::new();
        let done = pollster::block_on(
            model.prefill_chunks(ctx, &ids, &mut cache, &mut |d, n| seen.push((d, n))),
        )
        .unwrap();
        assert_eq!(seen, [(512, tokens), (1024, tokens)]);
        assert_eq!((done, cache.len), (1024, 1024));
        let ours = model
            .forward(ctx, &ids[done..], &mut cache, Logits::Last)
            .unwrap();
        let err = max_diff(&ours, &want);
        eprintln!(
            "{}: chunked prefill error {err:.3e}, f32 reference {f32_err:.3e}",
            ctx.name()
        );
        assert!(err <= 2.0 * f32_err, "{err:.3e} > 2 x {f32_err:.3e}");
        // The decoder reports the same chunks.
        let mut reported = Vec::new();
        let mut decoder = Decoder::new(ctx, &model, SamplingConfig::default()).unwrap();
        decoder.on_prefill_progress(|d, n| reported.push((d, n)));
        pollster::block_on(decoder.prefill(&ids)).unwrap();
        drop(decoder);
        assert_eq!(reported, [(512, tokens), (1024, tokens)]);
    });
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn the_command_line_takes_the_cache_memory_and_page_size() {
    use common::cli::{fails, succeeds};
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/shakespeare-mha");
    let m = model.to_str().unwrap();
    let generate = [
        "generate",
        "--model",
        m,
        "--prompt",
        "ROMEO:",
        "--max-tokens",
        "40",
    ];
    // Pages of 8 tokens, room for 2 of them: the prompt and a few tokens fit, 40 do not.
    let mut args = generate.to_vec();
    args.extend(["--page-tokens", "8", "--cache-memory", "80K"]);
    fails(
        &args,
        1,
        &["KV cache memory at 17 tokens", "--cache-memory"],
    );
    let mut args = generate.to_vec();
    args.extend(["--page-tokens", "7", "--cache-memory", "1M"]);
    succeeds(&args);
    let mut args = generate.to_vec();
    args.extend(["--kv-cache", "f16"]);
    succeeds(&args);
    for (flag, value, says) in [
        ("--kv-cache", "q3", "expected one of f32, f16, found 'q3'"),
        ("--cache-memory", "12X", "expected a byte count like 512M"),
        ("--cache-memory", "0", "a positive whole number of bytes"),
        ("--page-tokens", "0", "--page-tokens"),
    ] {
        let mut args = generate.to_vec();
        args.extend([flag, value]);
        fails(&args, 2, &[says]);
    }
}

#[test]
fn eval_reports_what_an_f16_cache_costs_against_f32() {
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/shakespeare-mha");
    // 4 KiB of the README: 32 windows of 128 tokens.
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md"));
    let head: String = readme.unwrap().chars().take(4096).collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), head).unwrap();
    let text = file.path().to_path_buf();
    let out = common::cli::succeeds(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--text",
        text.to_str().unwrap(),
        "--window",
        "128",
        "--kv-cache",
        "f16",
        "--against-kv-cache",
        "f32",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["weights"], "f16 weights, f16 KV cache", "{v}");
    assert_eq!(v["against"], "f16 weights, f32 KV cache", "{v}");
    // f16 keys and values move each score by at most 2^-11 of |q|·|k|: the distributions stay
    // close but not equal (a KL of exactly 0 would mean the f16 cache was never read).
    let kld = v["kld_mean"].as_f64().unwrap();
    eprintln!(
        "f16 KV cache against f32: mean KLD {kld:.3e}, same top {}",
        v["same_top"]
    );
    assert!(kld > 0.0 && kld < 1e-4, "{v}");
}
