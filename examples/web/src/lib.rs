//! latentgpu in the browser: the bindings `index.html` calls to load a model from fetched bytes
//! (this project's files, a Hugging Face checkpoint or a GGUF file) and generate text on the browser's WebGPU adapter, streaming tokens to the page.
//!
//! Built by `scripts/build-web.sh` (cargo for `wasm32-unknown-unknown`, then `wasm-bindgen
//! --target web` into `examples/web/pkg/`). On other targets this crate is empty.
#![cfg(target_arch = "wasm32")]

use latentgpu::gpu::{BackendChoice, GpuContext};
use latentgpu::model::formats::tokenizer::Tokenizer;
use latentgpu::model::{
    generate_async, GenerateConfig, LoadOptions, Model, SamplingConfig, WeightFile,
};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use wasm_bindgen::prelude::*;

/// Sends Rust panics and `log` records to the browser console (once, when the module loads).
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    let _ = console_log::init_with_level(log::Level::Info);
}

fn js_err(e: latentgpu::Error) -> JsError {
    JsError::new(&e.to_string())
}

/// The browser's WebGPU adapter, opened once; models loaded on it share its device.
#[wasm_bindgen]
pub struct WebGpu {
    ctx: Rc<GpuContext>,
}

#[wasm_bindgen]
impl WebGpu {
    /// Opens the browser's WebGPU adapter (an error says so when there is none).
    pub async fn open() -> Result<WebGpu, JsError> {
        let ctx = GpuContext::new_async(BackendChoice::Browser)
            .await
            .map_err(js_err)?;
        log::info!("opened {}", ctx.name());
        Ok(WebGpu { ctx: Rc::new(ctx) })
    }

    /// The adapter: name, backend, features and limits, as JSON.
    pub fn adapter(&self) -> String {
        serde_json::to_string(&self.ctx.adapter).unwrap_or_default()
    }

    /// Whether the device has shader-f16 (f16 weights are then read natively; without it, as
    /// u32 words).
    pub fn has_f16(&self) -> bool {
        self.ctx.has_f16()
    }

    /// Uploads a model from the text of its `config.json` and the bytes of its
    /// `model.safetensors`, keeping weight matrices in f16 when `f16_weights` (any adapter).
    /// Errors name the file, tensor or field, what was expected and what was found.
    pub fn load(
        &self,
        config_json: &str,
        weights: Vec<u8>,
        f16_weights: bool,
    ) -> Result<WebModel, JsError> {
        let model = Model::from_bytes(
            &self.ctx,
            config_json,
            weights,
            LoadOptions::f16(f16_weights),
        )
        .map_err(js_err)?;
        Ok(self.loaded(model, Tokenizer::Bytes, Vec::new()))
    }

    /// Uploads a checkpoint a user picked: the text of its `config.json` (this project's or a
    /// Hugging Face one), of its `tokenizer.json` if any (else byte-level tokens), and its
    /// safetensors files as `[name, Uint8Array]` pairs (one file, or every shard). Generation
    /// stops at the config's `eos_token_id`.
    pub fn load_checkpoint(
        &self,
        config_json: &str,
        tokenizer_json: Option<String>,
        files: js_sys::Array,
        f16_weights: bool,
    ) -> Result<WebModel, JsError> {
        let shards = files
            .iter()
            .map(|pair| {
                let pair = js_sys::Array::from(&pair);
                let name = pair.get(0).as_string().unwrap_or_default();
                (name, js_sys::Uint8Array::new(&pair.get(1)).to_vec())
            })
            .collect();
        let model = Model::from_shards_bytes(
            &self.ctx,
            config_json,
            shards,
            LoadOptions::f16(f16_weights),
        )
        .map_err(js_err)?;
        let tokenizer = match tokenizer_json {
            Some(json) => Tokenizer::from_json(&json).map_err(js_err)?,
            None => Tokenizer::without_file("tokenizer.json", model.config.vocab_size),
        };
        let config: serde_json::Value = serde_json::from_str(config_json).unwrap_or_default();
        let eos = latentgpu::model::formats::hf_json::token_ids(
            "eos_token_id",
            config.get("eos_token_id"),
        )
        .map_err(js_err)?;
        Ok(self.loaded(model, tokenizer, eos))
    }

    /// Uploads a GGUF file a user picked (its `name` names it in errors): its config,
    /// tokenizer and stop tokens from its metadata, its tensors as the file holds them (a
    /// quantized file stays quantized; `f16_weights` keeps float matrices 16-bit).
    pub fn load_gguf(
        &self,
        name: &str,
        bytes: Vec<u8>,
        f16_weights: bool,
    ) -> Result<WebModel, JsError> {
        let file = WeightFile::from_gguf_bytes(name, bytes).map_err(js_err)?;
        let eos = latentgpu::model::families::gguf_stop_tokens(&file).map_err(js_err)?;
        let metadata = file.gguf_metadata().cloned().unwrap_or_default();
        let options = match f16_weights {
            true => LoadOptions::f16(true),
            false => LoadOptions::default(),
        };
        let model = Model::from_gguf_file(&self.ctx, file, options).map_err(js_err)?;
        let tokenizer = Tokenizer::from_gguf_metadata(name, &metadata, model.config.vocab_size)
            .map_err(js_err)?;
        Ok(self.loaded(model, tokenizer, eos))
    }

    fn loaded(&self, model: Model, tokenizer: Tokenizer, eos_token_ids: Vec<u32>) -> WebModel {
        WebModel {
            inner: Rc::new(Loaded {
                ctx: self.ctx.clone(),
                model,
                tokenizer,
                eos_token_ids,
                cancel: Arc::new(AtomicBool::new(false)),
            }),
        }
    }
}

/// A model on the browser's WebGPU adapter.
#[wasm_bindgen]
pub struct WebModel {
    inner: Rc<Loaded>,
}

struct Loaded {
    ctx: Rc<GpuContext>,
    model: Model,
    tokenizer: Tokenizer,
    /// Generation stops after any of these.
    eos_token_ids: Vec<u32>,
    /// Set by [`WebModel::stop`]; cleared when a generation starts.
    cancel: Arc<AtomicBool>,
}

/// How to generate: the CLI's `generate` options.
#[wasm_bindgen]
#[derive(Clone, Copy)]
pub struct GenerateOptions {
    /// New tokens at most.
    pub max_tokens: usize,
    /// 0 is greedy.
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = all).
    pub top_k: usize,
    /// Nucleus probability (1 = all).
    pub top_p: f32,
    /// Seed of the sampler (the same seed gives the same text on the same adapter).
    pub seed: u32,
}

#[wasm_bindgen]
impl GenerateOptions {
    /// The CLI's defaults: 200 tokens, temperature 0.8, top-k 40, top-p 0.95, seed 0.
    #[wasm_bindgen(constructor)]
    pub fn new() -> GenerateOptions {
        let s = SamplingConfig::default();
        GenerateOptions {
            max_tokens: 200,
            temperature: s.temperature,
            top_k: s.top_k,
            top_p: s.top_p,
            seed: 0,
        }
    }
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self::new()
    }
}

#[wasm_bindgen]
impl WebModel {
    /// The model's attention kind (`mha`, `latent` or `mla`), layers and width, in words.
    pub fn describe(&self) -> String {
        let c = &self.inner.model.config;
        format!(
            "{} attention, {} layers, d_model {}, {} heads, context {}",
            c.attention_kind(),
            c.n_layers,
            c.d_model,
            c.n_heads,
            c.max_context
        )
    }

    /// Ends a running generation after the token being chosen.
    pub fn stop(&self) {
        self.inner.cancel.store(true, Ordering::Relaxed);
    }

    /// Generates after `prompt` (tokenized by the model's tokenizer), calling `on_text(piece)` with the text of
    /// each new token as it is chosen; resolves to the number of tokens generated.
    pub fn generate(
        &self,
        prompt: String,
        options: &GenerateOptions,
        on_text: js_sys::Function,
    ) -> js_sys::Promise {
        let loaded = self.inner.clone();
        let cfg = GenerateConfig {
            eos_token_ids: loaded.eos_token_ids.clone(),
            max_tokens: options.max_tokens,
            stop: None,
            sampling: SamplingConfig {
                temperature: options.temperature,
                top_k: options.top_k,
                top_p: options.top_p,
                repetition_penalty: 1.0,
                seed: options.seed as u64,
            },
            cancel: Some(loaded.cancel.clone()),
        };
        loaded.cancel.store(false, Ordering::Relaxed);
        wasm_bindgen_futures::future_to_promise(async move {
            let ids = loaded
                .tokenizer
                .encode(&prompt)
                .map_err(|e| JsValue::from(js_err(e)))?;
            let mut decoder = loaded.tokenizer.decoder();
            let show = |text: String| {
                if !text.is_empty() {
                    let _ = on_text.call1(&JsValue::NULL, &JsValue::from_str(&text));
                }
            };
            // A token the tokenizer cannot decode ends generation and is reported.
            let mut decoded = Ok(());
            let tokens = generate_async(&loaded.ctx, &loaded.model, &ids, &cfg, |t| match decoder
                .push(t)
            {
                Ok(text) => show(text),
                Err(e) if decoded.is_ok() => {
                    decoded = Err(e);
                    loaded.cancel.store(true, Ordering::Relaxed);
                }
                Err(_) => {}
            })
            .await
            .map_err(|e| JsValue::from(js_err(e)))?;
            decoded.map_err(|e| JsValue::from(js_err(e)))?;
            show(decoder.finish().map_err(|e| JsValue::from(js_err(e)))?);
            Ok(JsValue::from(tokens.len() as u32))
        })
    }
}
