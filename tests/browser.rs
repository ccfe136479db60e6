//! The kernels and the shipped models in the browser, on its WebGPU adapter: the same
//! CPU-reference checks as `tests/kernels.rs` and the same greedy tokens as the native run
//! (`tests/fixtures/generate/greedy.json`). Runs in headless Chromium with wasm-bindgen-test:
//! `scripts/test-browser.sh`. A browser without a WebGPU adapter fails every test.
#![cfg(target_arch = "wasm32")]

#[path = "common/big_vocab.rs"]
mod big_vocab;
#[path = "common/greedy.rs"]
mod greedy;
#[path = "common/kernel_checks.rs"]
mod kernel_checks;
#[path = "common/numeric.rs"]
mod numeric;
#[path = "common/paged_checks.rs"]
mod paged_checks;
#[path = "common/quant_checks.rs"]
mod quant_checks;
#[path = "common/sampling_checks.rs"]
mod sampling_checks;

use latentgpu::gpu::{BackendChoice, GpuContext};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// A JSON array of token ids (a fixture's `expected.json`).
fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// Greedy generation of `max_tokens` tokens, ignoring end-of-sequence tokens.
fn greedy_config(max_tokens: usize) -> latentgpu::model::GenerateConfig {
    latentgpu::model::GenerateConfig {
        max_tokens,
        stop: None,
        eos_token_ids: Vec::new(),
        sampling: latentgpu::model::SamplingConfig {
            temperature: 0.0,
            ..Default::default()
        },
        cancel: None,
    }
}

/// A device on the browser's adapter; none is a failure, never a skip.
async fn browser_gpu() -> GpuContext {
    GpuContext::new_async(BackendChoice::Browser)
        .await
        .expect("a WebGPU adapter in the browser (Chromium needs --enable-unsafe-webgpu)")
}

/// A Hugging Face checkpoint (Qwen2 with q/k/v biases, saved by transformers) loaded from
/// bytes gives exactly transformers' greedy tokens in the browser too.
#[wasm_bindgen_test]
async fn a_hugging_face_checkpoint_decodes_transformers_tokens() {
    let ctx = browser_gpu().await;
    let model = latentgpu::model::Model::from_bytes(
        &ctx,
        include_str!("fixtures/hf-dense/qwen2-bias/model/config.json"),
        include_bytes!("fixtures/hf-dense/qwen2-bias/model/model.safetensors").to_vec(),
        latentgpu::model::LoadOptions::default(),
    )
    .unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/hf-dense/qwen2-bias/expected.json")).unwrap();
    let want = ids(&expected["greedy_ids"]);
    let cfg = greedy_config(want.len());
    let got =
        latentgpu::model::generate_async(&ctx, &model, &ids(&expected["prompt_ids"]), &cfg, |_| {})
            .await
            .unwrap();
    assert_eq!(got, want);
}

#[wasm_bindgen_test]
async fn the_adapter_is_the_browsers_webgpu() {
    let ctx = browser_gpu().await;
    assert_eq!(ctx.adapter.backend, "browser", "{}", ctx.name());
    // Browsers keep the adapter's description to themselves unless asked (it is often empty).
    let a = &ctx.adapter;
    wasm_bindgen_test::console_log!(
        "browser test adapter: '{}' ({}, {}), subgroups {}, shader-f16 {}, {} invocations/workgroup, storage binding {} MiB",
        a.name,
        a.backend,
        a.device_type,
        a.subgroups,
        a.shader_f16,
        a.max_compute_invocations_per_workgroup,
        a.max_storage_buffer_binding_size >> 20
    );
}

#[wasm_bindgen_test]
async fn matmul_matches_reference_on_awkward_shapes() {
    kernel_checks::matmul_on_awkward_shapes(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn batched_matmul_matches_reference() {
    kernel_checks::batched_matmul(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
fn quantizers_stay_within_half_a_step() {
    quant_checks::quantizer_error();
}

#[wasm_bindgen_test]
async fn quant_products_match_reference() {
    quant_checks::quant_products(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn moe_experts_match_reference() {
    kernel_checks::moe_experts(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn moe_quantized_experts_match_reference() {
    quant_checks::moe_quantized_experts(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn moe_routing_matches_reference() {
    kernel_checks::moe_routing(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn matmul_writes_nothing_past_its_output() {
    kernel_checks::matmul_writes_nothing_past_its_output(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn matvec_decode_path_matches_reference() {
    kernel_checks::matvec_decode_path(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn softmax_matches_reference() {
    kernel_checks::softmax(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn norms_match_reference() {
    kernel_checks::norms(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn elementwise_ops_match_reference() {
    kernel_checks::elementwise_ops(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn rope_matches_reference_in_both_conventions() {
    kernel_checks::rope_in_both_conventions(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn embedding_matches_reference() {
    kernel_checks::embedding(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn attention_matches_reference() {
    kernel_checks::attention(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn bias_and_geglu_match_reference() {
    kernel_checks::bias_and_geglu(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn attention_sliding_window_matches_reference() {
    kernel_checks::attention_sliding_window(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn attention_decode_over_kv_cache_matches_reference() {
    kernel_checks::attention_decode_over_kv_cache(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn half_weight_matmul_matches_reference_on_rounded_weights() {
    kernel_checks::half_weight_matmul(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn fused_gated_matvec_equals_the_unfused_ops() {
    kernel_checks::fused_gated_matvec(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn qkv_step_matches_reference() {
    kernel_checks::qkv_rope(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn cast_to_f16_rounds_to_nearest_even() {
    kernel_checks::cast_to_f16(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn matvec_paths_match_reference() {
    kernel_checks::matvec_paths(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn gpu_sampler_matches_transformers_logits_processors() {
    sampling_checks::gpu_sampler_matches_transformers(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn paged_attention_reads_the_rows_of_a_whole_cache() {
    paged_checks::paged_attention(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn paged_qkv_step_writes_the_rows_of_a_whole_cache() {
    paged_checks::paged_qkv_rope(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn paged_mla_step_writes_the_rows_of_a_whole_cache() {
    paged_checks::paged_mla_rope(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn f16_cache_attention_matches_reference() {
    paged_checks::f16_attention(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn mla_step_matches_reference() {
    kernel_checks::mla_rope(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn permute_matches_reference() {
    kernel_checks::permute(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn fused_add_norm_equals_the_add_then_the_norm() {
    kernel_checks::fused_add_norm(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn latent_gather_state_absorbs_tokens_in_pieces_exactly() {
    kernel_checks::latent_gather_in_pieces(&browser_gpu().await).await;
}

#[wasm_bindgen_test]
async fn greedy_tokens_of_the_latent_model_match_the_native_run() {
    greedy::check_greedy(&browser_gpu().await, "shakespeare-latent").await;
}

#[wasm_bindgen_test]
async fn greedy_tokens_of_the_mha_model_match_the_native_run() {
    greedy::check_greedy(&browser_gpu().await, "shakespeare-mha").await;
}

#[wasm_bindgen_test]
async fn greedy_tokens_of_the_mla_model_match_the_native_run() {
    greedy::check_greedy(&browser_gpu().await, "shakespeare-mla").await;
}

/// Weights forced into tiny row blocks (every matrix, the embedding, the LM head and the
/// stacked experts split) give the unsplit logits and greedy tokens bit for bit in the browser
/// too, for each attention kind (Qwen2's MHA, DeepSeek-V2's MLA with experts, latent, MLA with
/// q_lora and YaRN); and transformers' greedy tokens where the fixture has them.
#[wasm_bindgen_test]
async fn split_weights_give_the_unsplit_logits_bit_for_bit() {
    use latentgpu::model::{LoadOptions, Model};
    let ctx = browser_gpu().await;
    // (config, weights, transformers' expected tokens if any, block bytes)
    let models: [(&str, &[u8], Option<&str>, u64); 4] = [
        (
            include_str!("fixtures/hf-dense/qwen2-bias/model/config.json"),
            include_bytes!("fixtures/hf-dense/qwen2-bias/model/model.safetensors"),
            Some(include_str!("fixtures/hf-dense/qwen2-bias/expected.json")),
            512,
        ),
        (
            include_str!("fixtures/hf-dense/deepseek-v2-moe/model/config.json"),
            include_bytes!("fixtures/hf-dense/deepseek-v2-moe/model/model.safetensors"),
            Some(include_str!(
                "fixtures/hf-dense/deepseek-v2-moe/expected.json"
            )),
            // One whole expert (12·32 f32) per block.
            1536,
        ),
        (
            include_str!("fixtures/latent-tiny/config.json"),
            include_bytes!("fixtures/latent-tiny/model.safetensors"),
            None,
            1024,
        ),
        (
            include_str!("fixtures/mla-tiny-qlora-yarn/config.json"),
            include_bytes!("fixtures/mla-tiny-qlora-yarn/model.safetensors"),
            None,
            1024,
        ),
    ];
    for (config, weights, expected, block_bytes) in models {
        let whole =
            Model::from_bytes(&ctx, config, weights.to_vec(), LoadOptions::default()).unwrap();
        let options = LoadOptions {
            block_bytes: Some(block_bytes),
            ..LoadOptions::default()
        };
        let split = Model::from_bytes(&ctx, config, weights.to_vec(), options).unwrap();
        let expected: Option<serde_json::Value> =
            expected.map(|e| serde_json::from_str(e).unwrap());
        let prompt = match &expected {
            Some(e) => ids(&e["prompt_ids"]),
            None => vec![1, 5, 9, 2, 7, 3, 11],
        };
        let logits = [
            all_logit_bits(&ctx, &whole, &prompt).await,
            all_logit_bits(&ctx, &split, &prompt).await,
        ];
        assert!(logits[0] == logits[1], "split logits differ");
        let cfg = greedy_config(24);
        let whole_got = latentgpu::model::generate_async(&ctx, &whole, &prompt, &cfg, |_| {})
            .await
            .unwrap();
        let got = latentgpu::model::generate_async(&ctx, &split, &prompt, &cfg, |_| {})
            .await
            .unwrap();
        if let Some(e) = &expected {
            assert_eq!(whole_got, ids(&e["greedy_ids"]), "unsplit");
        }
        assert_eq!(got, whole_got);
    }
}

/// Gemma 3 (four norms a block, a window, two RoPE bases, a scaled embedding) and SmolLM3
/// (NoPE layers) in the browser: the Hugging Face directory gives transformers' greedy tokens,
/// and the GGUF file llama.cpp's converter wrote gives the directory's logits bit for bit.
#[wasm_bindgen_test]
async fn gemma3_and_smollm3_give_transformers_tokens_from_both_formats() {
    use latentgpu::model::{LoadOptions, Model};
    let ctx = browser_gpu().await;
    // (config, weights, GGUF twin, transformers' expected tokens)
    let models: [(&str, &[u8], &[u8], &str); 2] = [
        (
            include_str!("fixtures/hf-dense/gemma3-window-full/model/config.json"),
            include_bytes!("fixtures/hf-dense/gemma3-window-full/model/model.safetensors"),
            include_bytes!("fixtures/gguf/families/gemma3-window-full-f32.gguf"),
            include_str!("fixtures/hf-dense/gemma3-window-full/expected.json"),
        ),
        (
            include_str!("fixtures/hf-dense/smollm3-nope/model/config.json"),
            include_bytes!("fixtures/hf-dense/smollm3-nope/model/model.safetensors"),
            include_bytes!("fixtures/gguf/families/smollm3-nope-f32.gguf"),
            include_str!("fixtures/hf-dense/smollm3-nope/expected.json"),
        ),
    ];
    for (config, weights, gguf, expected) in models {
        let dir =
            Model::from_bytes(&ctx, config, weights.to_vec(), LoadOptions::default()).unwrap();
        let file = Model::from_gguf_bytes(&ctx, "twin.gguf", gguf.to_vec(), LoadOptions::default())
            .unwrap();
        let e: serde_json::Value = serde_json::from_str(expected).unwrap();
        let prompt = ids(&e["prompt_ids"]);
        assert!(
            all_logit_bits(&ctx, &dir, &prompt).await == all_logit_bits(&ctx, &file, &prompt).await,
            "the GGUF file's logits differ from the directory's"
        );
        let cfg = greedy_config(24);
        for model in [&dir, &file] {
            let got = latentgpu::model::generate_async(&ctx, model, &prompt, &cfg, |_| {})
                .await
                .unwrap();
            assert_eq!(got, ids(&e["greedy_ids"]));
        }
    }
}

/// The shipped MHA model with its tied embedding padded by zero rows to 2^18 tokens (168 MB in
/// f32, past the browser's 128 MiB binding limit) loads, split, and gives the shipped model's
/// logits and greedy tokens.
#[wasm_bindgen_test]
async fn an_embedding_past_the_binding_limit_loads_and_generates() {
    use latentgpu::model::{LoadOptions, Logits, Model};
    let ctx = browser_gpu().await;
    let config = include_str!("../models/shakespeare-mha/config.json");
    let weights = include_bytes!("../models/shakespeare-mha/model.safetensors");
    let (big_config, big_weights) = big_vocab::padded_model(config, weights);
    let vocab = big_vocab::VOCAB;
    let small = Model::from_bytes(&ctx, config, weights.to_vec(), LoadOptions::default()).unwrap();
    let big = Model::from_bytes(&ctx, &big_config, big_weights, LoadOptions::default()).unwrap();
    let prompt = latentgpu::model::formats::tokenizer::encode("ROMEO:");
    let mut logits = Vec::new();
    for model in [&small, &big] {
        let mut cache = model.new_cache(&ctx).unwrap();
        logits.push(
            model
                .forward_async(&ctx, &prompt, &mut cache, Logits::Last)
                .await
                .unwrap(),
        );
    }
    assert_eq!(logits[1].len(), vocab);
    assert_eq!(numeric::bits(&logits[1][..256]), numeric::bits(&logits[0]));
    assert!(logits[1][256..].iter().all(|&v| v == 0.0));
    let cfg = greedy_config(12);
    let mut tokens = Vec::new();
    for model in [&small, &big] {
        tokens.push(
            latentgpu::model::generate_async(&ctx, model, &prompt, &cfg, |_| {})
                .await
                .unwrap(),
        );
    }
    assert_eq!(tokens[0], tokens[1]);
}

/// A GGUF file written by the `gguf` package gives its safetensors twin's logits bit for bit in
/// the browser too: q4_0 and q4_1 blocks as stored against the twin quantized at load, q8_0,
/// and f32.
#[wasm_bindgen_test]
async fn gguf_files_give_their_safetensors_twins_logits() {
    use latentgpu::model::{LoadOptions, Model};
    use latentgpu::ops::WeightFormat;
    let ctx = browser_gpu().await;
    let config = include_str!("fixtures/gguf/llama/model/config.json");
    let twin = include_bytes!("fixtures/gguf/llama/model/model.safetensors");
    let files: [(&str, &[u8]); 4] = [
        ("f32", include_bytes!("fixtures/gguf/llama/model-f32.gguf")),
        (
            "q8_0",
            include_bytes!("fixtures/gguf/llama/model-q8_0.gguf"),
        ),
        (
            "q4_0",
            include_bytes!("fixtures/gguf/llama/model-q4_0.gguf"),
        ),
        (
            "q4_1",
            include_bytes!("fixtures/gguf/llama/model-q4_1.gguf"),
        ),
    ];
    let prompt = [1u32, 5, 9, 2, 7, 3, 11, 60, 0, 33];
    for (kind, bytes) in files {
        let gguf =
            Model::from_gguf_bytes(&ctx, kind, bytes.to_vec(), LoadOptions::default()).unwrap();
        let format = WeightFormat::parse(kind).unwrap();
        let st =
            Model::from_bytes(&ctx, config, twin.to_vec(), LoadOptions::weights(format)).unwrap();
        let logits = [
            all_logit_bits(&ctx, &gguf, &prompt).await,
            all_logit_bits(&ctx, &st, &prompt).await,
        ];
        assert!(logits[0] == logits[1], "{kind}: GGUF differs from its twin");
    }
}

/// A DeepSeek-V2 GGUF file (MLA with kv_b_proj split, stacked experts) gives its safetensors
/// twin's logits bit for bit in the browser: the f16 file holds the twin's values.
#[wasm_bindgen_test]
async fn deepseek_v2_gguf_gives_its_twins_logits() {
    use latentgpu::model::{LoadOptions, Model};
    let ctx = browser_gpu().await;
    let config = include_str!("fixtures/gguf/deepseek-v2/model/config.json");
    let twin = include_bytes!("fixtures/gguf/deepseek-v2/model/model.safetensors");
    let file = include_bytes!("fixtures/gguf/deepseek-v2/model-f16.gguf");
    let gguf = Model::from_gguf_bytes(&ctx, "f16", file.to_vec(), LoadOptions::default()).unwrap();
    let st = Model::from_bytes(&ctx, config, twin.to_vec(), LoadOptions::default()).unwrap();
    let prompt = [1u32, 5, 9, 2, 7, 3, 11, 60, 0, 33];
    let logits = [
        all_logit_bits(&ctx, &gguf, &prompt).await,
        all_logit_bits(&ctx, &st, &prompt).await,
    ];
    assert!(
        logits[0] == logits[1],
        "DeepSeek-V2 GGUF differs from its twin"
    );
}

/// The bits of the logits at every position of `prompt`, from a new cache.
async fn all_logit_bits(
    ctx: &GpuContext,
    model: &latentgpu::model::Model,
    prompt: &[u32],
) -> Vec<u32> {
    let mut cache = model.new_cache(ctx).unwrap();
    let logits = model
        .forward_async(ctx, prompt, &mut cache, latentgpu::model::Logits::All)
        .await
        .unwrap();
    numeric::bits(&logits)
}
