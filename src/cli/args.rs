//! The command line's arguments (clap).

use clap::{Parser, Subcommand};
use latentgpu::ops::WeightFormat;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "latentgpu",
    version,
    about = "Transformer language models with latent attention on any GPU through WebGPU"
)]
pub struct Cli {
    /// Backend: vulkan, metal, dx12, gl, browser or any (default: $LATENTGPU_BACKEND, else any).
    #[arg(long, global = true, env = "LATENTGPU_BACKEND")]
    pub backend: Option<String>,
    /// Weight matrices on the GPU: f32, f16, bf16 (16-bit on every adapter), q8 (q8_0), q4
    /// (q4_0) or q4_1, quantized at load from f32, f16 or bf16 checkpoints; f32 accumulation
    /// everywhere. Norms, routers, latents and embeddings not tied to the LM head stay f32.
    /// Default: as the files hold them (a GGUF file's quantized blocks in their own formats,
    /// q2_K to q8_0; float values in f16 or bf16 where all the matrices are, else f32).
    #[arg(long, global = true, value_parser = parse_weights)]
    pub weights: Option<WeightFormat>,
    /// Tokens a sequence may reach, at most the model's trained context (default: the
    /// model's). The cache grows in pages as tokens come; `info --model` says what a context
    /// costs.
    #[arg(long, global = true, value_parser = at_least_one)]
    pub context: Option<usize>,
    /// The most GPU memory a sequence's KV cache pages may take, in bytes (suffixes K, M, G
    /// for KiB, MiB, GiB); reaching it is an error naming the context reached. Default: what
    /// the context needs.
    #[arg(long, global = true, value_parser = byte_count)]
    pub cache_memory: Option<u64>,
    /// How the KV cache stores keys and values: f32, or f16 (half the memory, every value
    /// rounded to the nearest f16; packed in 32-bit words, so every adapter takes it).
    #[arg(long, global = true, default_value = "f32", value_parser = parse_kv_cache)]
    pub kv_cache: latentgpu::ops::KvFormat,
    /// Tokens per page of the KV cache.
    #[arg(long, global = true, default_value_t = latentgpu::model::DEFAULT_PAGE_TOKENS, value_parser = at_least_one)]
    pub page_tokens: usize,
    /// The same as --weights f16.
    #[arg(long, global = true, conflicts_with = "weights")]
    pub f16_weights: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// List every adapter with its backend, type, driver, features and limits; with --model,
    /// what a model directory holds (read before anything is uploaded).
    Info {
        /// Model directory to summarise: family, parameters, dtypes, weight and cache bytes,
        /// and whether each tensor fits the adapter's binding limit.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write a model directory again with its weight matrices quantized (--weights q8, q4 or
    /// q4_1), so that it loads without quantizing.
    Quantize {
        /// Model directory (safetensors).
        #[arg(long)]
        model: Option<PathBuf>,
        /// The new directory (created; must be empty if it exists).
        #[arg(long)]
        out: PathBuf,
    },
    /// Generate text from a prompt, streaming tokens to stdout.
    Generate(GenerateArgs),
    /// Chat with an instruct model through its chat template, the cache kept between turns:
    /// one user message per line of standard input; /reset starts over, /exit ends.
    Chat(ChatArgs),
    /// An OpenAI-compatible HTTP server: /v1/chat/completions (streamed as server-sent events
    /// or whole), /v1/completions, /v1/models, /health and /metrics.
    Serve(ServeArgs),
    /// Perplexity of a model on a text file (byte tokens), windowed as reference/train.py.
    Eval {
        /// Model directory.
        #[arg(long)]
        model: Option<PathBuf>,
        /// UTF-8 text file.
        #[arg(long, required_unless_present = "kl_divergence_base")]
        text: Option<PathBuf>,
        /// Tokens per window (each window starts from an empty cache).
        #[arg(long, default_value_t = 256, value_parser = at_least_one)]
        window: usize,
        /// Also load the model with its matrices in this format (e.g. f32) and report, against
        /// it, the KL divergence of the next-token distributions and top-1 agreement.
        #[arg(long, value_parser = parse_weights)]
        against: Option<WeightFormat>,
        /// Also run the model with its KV cache in this format (e.g. f32) and report, against
        /// it, the KL divergence and top-1 agreement the cache's format (`--kv-cache`) costs.
        #[arg(long, value_parser = parse_kv_cache)]
        against_kv_cache: Option<latentgpu::ops::KvFormat>,
        /// Score the model against the base file llama.cpp's `llama-perplexity
        /// --kl-divergence-base FILE` wrote (its tokens and log-probabilities), as
        /// `llama-perplexity --kl-divergence` does: KL divergence, same top token, perplexities.
        #[arg(long, conflicts_with_all = ["text", "against", "against_kv_cache"])]
        kl_divergence_base: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Compare every layer and the logits with a golden file from reference/export_golden.py.
    Compare {
        /// Model directory.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Golden safetensors file.
        #[arg(long)]
        golden: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// KV-cache bytes per token and at a context length: MLA against MHA, GQA and MQA.
    KvCache {
        /// A Hugging Face DeepseekV2/V3 config.json.
        #[arg(long, conflicts_with = "preset")]
        config: Option<PathBuf>,
        /// A published shape: v2-lite, v2 or v3.
        #[arg(long)]
        preset: Option<String>,
        /// Context length in tokens.
        #[arg(long, default_value_t = 32768, value_parser = at_least_one)]
        context: usize,
        /// Bytes per cached number (2 for bf16/f16, 4 for f32).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=8))]
        bytes: u8,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a benchmark.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
}

#[derive(clap::Args)]
pub struct GenerateArgs {
    /// Model directory: this project's own, or a Hugging Face one as transformers saves it.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// A Hugging Face tokenizer.json to use instead of the model's own (a GGUF file's own is
    /// its metadata's; a tokenizer.json beside it is used only when named here).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// The prompt (tokenized by the model's tokenizer.json, with BOS where it adds one).
    #[arg(long, default_value = "ROMEO:", conflicts_with = "prompt_ids")]
    pub prompt: String,
    /// The prompt as token ids, e.g. 1,2,3 (bypasses the tokenizer).
    #[arg(long, value_delimiter = ',')]
    pub prompt_ids: Option<Vec<u32>>,
    /// New tokens at most.
    #[arg(long, default_value_t = 200)]
    pub max_tokens: usize,
    /// Sampling settings.
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Stop after generating this text.
    #[arg(long)]
    pub stop: Option<String>,
    /// Keep going past the model's end-of-sequence tokens.
    #[arg(long)]
    pub ignore_eos: bool,
    /// After the text, print the prompt's and the generated token ids.
    #[arg(long)]
    pub print_ids: bool,
    /// Print one JSON object (prompt and generated ids, text) instead of streaming text.
    #[arg(long)]
    pub json: bool,
}

/// How tokens are chosen; each defaults to the model's `generation_config.json`, else the
/// library's default.
#[derive(clap::Args, Default)]
pub struct SamplingArgs {
    /// Sampling temperature; 0 is greedy (default: generation_config.json's, else 0.8).
    #[arg(long, value_parser = temperature)]
    pub temperature: Option<f32>,
    /// Keep the k most likely tokens, 0 = all (default: generation_config.json's, else 40).
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Nucleus sampling threshold, 1 = off (default: generation_config.json's, else 0.95).
    #[arg(long, value_parser = top_p)]
    pub top_p: Option<f32>,
    /// Penalty on tokens already seen, 1 = off (default: generation_config.json's, else 1).
    #[arg(long, value_parser = repetition_penalty)]
    pub repetition_penalty: Option<f32>,
    /// Seed: the same seed on the same adapter gives the same text.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// The model a chat or a server talks through, and what may replace its own files.
#[derive(clap::Args)]
pub struct ChatModelArgs {
    /// Model directory or GGUF file.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// A Hugging Face tokenizer.json to use instead of the model's own.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// A Jinja chat template to use instead of the model's own.
    #[arg(long)]
    pub chat_template: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct ChatArgs {
    /// The model, its tokenizer and chat template.
    #[command(flatten)]
    pub files: ChatModelArgs,
    /// A system message opening the conversation.
    #[arg(long)]
    pub system: Option<String>,
    /// New tokens at most in each reply.
    #[arg(long, default_value_t = 512)]
    pub max_tokens: usize,
    /// Sampling settings.
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Print one JSON object per reply (the prompt's ids, how many the cache held already,
    /// the reply's ids and text) instead of streaming text.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// The model, its tokenizer and chat template.
    #[command(flatten)]
    pub files: ChatModelArgs,
    /// The address to listen on (loopback unless told otherwise).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The port (0: one the system picks; the address is printed on standard error).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Require `Authorization: Bearer KEY` on every request.
    #[arg(long)]
    pub api_key: Option<String>,
    /// Requests waiting for the GPU at most; past it, 429.
    #[arg(long, default_value_t = 16, value_parser = at_least_one)]
    pub queue: usize,
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Matrix products against the FMA and copy roofs of the same adapter.
    Matmul {
        /// Model width for the transformer-shaped products.
        #[arg(long, default_value_t = 1024, value_parser = matrix_size)]
        width: usize,
        /// Only the square products of these sizes (e.g. --sizes 1024).
        #[arg(long, value_delimiter = ',', value_parser = matrix_size)]
        sizes: Vec<usize>,
        /// Where to write the JSON results.
        #[arg(long, default_value = "bench-results/matmul.json")]
        out: PathBuf,
    },
    /// Prefill and decode tokens/s of whole models on the same adapter.
    Model {
        /// Model directories (default: every model shipped in models/).
        #[arg(long, value_delimiter = ',')]
        models: Vec<PathBuf>,
        /// Prompt tokens.
        #[arg(long, default_value_t = 256, value_parser = at_least_one)]
        prompt: usize,
        /// Decoded tokens.
        #[arg(long, default_value_t = 64, value_parser = at_least_one)]
        decode: usize,
        /// Also print where a decoded token's time goes: GPU time per kernel kind, CPU encode
        /// time, and the products replayed alone on the model's shapes.
        #[arg(long)]
        profile: bool,
        /// For mixture-of-experts models, also decode with each layer's chosen experts read
        /// back to the CPU before they are computed (what an engine that dispatches experts
        /// from the host pays), and print the weight bytes a token reads against a dense model
        /// of the same size.
        #[arg(long)]
        expert_readback: bool,
        /// Run each model with its matrices in each of these formats (e.g. f32,q8,q4), the
        /// first the baseline of the speedups (default: --weights, or as the files hold them).
        #[arg(long, value_delimiter = ',', value_parser = parse_weights)]
        formats: Vec<WeightFormat>,
        /// Where to write the JSON results.
        #[arg(long, default_value = "bench-results/model.json")]
        out: PathBuf,
    },
    /// The paged KV cache at long contexts: memory held and decode tokens/s at each context,
    /// prefill tokens/s and peak resident memory against the prompt's length.
    Context {
        /// Model directories.
        #[arg(long, value_delimiter = ',', required = true)]
        models: Vec<PathBuf>,
        /// Contexts to decode at (each at most the model's).
        #[arg(long, value_delimiter = ',', default_value = "1024,8192,32768", value_parser = at_least_one)]
        contexts: Vec<usize>,
        /// Tokens decoded at each context.
        #[arg(long, default_value_t = 33, value_parser = at_least_one)]
        decode: usize,
        /// Prompt lengths to prefill (shortest first).
        #[arg(long, value_delimiter = ',', default_value = "256,1024,4096", value_parser = at_least_one)]
        prompts: Vec<usize>,
        /// Where to write the JSON results.
        #[arg(long, default_value = "bench-results/context.json")]
        out: PathBuf,
    },
    /// MLA decode (naive and absorbed) against MHA of the same width: time and bytes per token.
    Mla {
        /// Model width.
        #[arg(long, default_value_t = 1024, value_parser = matrix_size)]
        width: usize,
        /// Heads.
        #[arg(long, default_value_t = 8, value_parser = at_least_one)]
        heads: usize,
        /// KV compression rank.
        #[arg(long, default_value_t = 256, value_parser = matrix_size)]
        kv_lora_rank: usize,
        /// Context lengths.
        #[arg(long, value_delimiter = ',', default_value = "256,1024,4096,16384", value_parser = context_length)]
        sizes: Vec<usize>,
        /// Where to write the JSON results.
        #[arg(long, default_value = "bench-results/mla.json")]
        out: PathBuf,
    },
    /// Causal latent attention against full causal attention: prefill scaling and decode.
    Attention {
        /// Model width.
        #[arg(long, default_value_t = 256, value_parser = matrix_size)]
        width: usize,
        /// Heads.
        #[arg(long, default_value_t = 4, value_parser = at_least_one)]
        heads: usize,
        /// Latents M.
        #[arg(long, default_value_t = 64, value_parser = at_least_one)]
        latents: usize,
        /// Chunk length C.
        #[arg(long, default_value_t = 64, value_parser = at_least_one)]
        chunk: usize,
        /// Context lengths.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "256,512,1024,2048,4096,8192,16384",
            value_parser = context_length
        )]
        sizes: Vec<usize>,
        /// Where to write the JSON results.
        #[arg(long, default_value = "bench-results/attention.json")]
        out: PathBuf,
    },
}

/// A count of at least 1.
fn at_least_one(s: &str) -> Result<usize, String> {
    in_range(s, 1, usize::MAX)
}

/// A KV cache format by name.
fn parse_kv_cache(s: &str) -> Result<latentgpu::ops::KvFormat, String> {
    latentgpu::ops::KvFormat::parse(s.trim()).ok_or_else(|| {
        let names: Vec<&str> = latentgpu::ops::KvFormat::ALL
            .iter()
            .map(|f| f.name())
            .collect();
        format!("expected one of {}, found '{s}'", names.join(", "))
    })
}

/// A positive number of bytes, with an optional K, M or G (KiB, MiB, GiB) suffix.
fn byte_count(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_uppercase()),
        _ => (t, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        _ => {
            return Err(format!(
                "expected a byte count like 512M or 2G, found '{s}'"
            ))
        }
    };
    match digits.parse::<u64>() {
        Ok(n) if n > 0 => n
            .checked_mul(1 << shift)
            .ok_or_else(|| format!("expected a byte count below 2^64, found '{s}'")),
        _ => Err(format!(
            "expected a positive whole number of bytes (suffix K, M or G), found '{s}'"
        )),
    }
}

/// Largest matrix side the benchmarks take: an 8192² f32 matrix is 256 MiB on the host.
const MAX_MATRIX_SIDE: usize = 8192;

/// A benchmark matrix side, 1 to [`MAX_MATRIX_SIDE`].
fn matrix_size(s: &str) -> Result<usize, String> {
    in_range(s, 1, MAX_MATRIX_SIDE)
}

/// Longest context the attention benchmarks take (their inputs are held on the host).
const MAX_BENCH_CONTEXT: usize = 65536;

/// A benchmark context length, 1 to [`MAX_BENCH_CONTEXT`].
fn context_length(s: &str) -> Result<usize, String> {
    in_range(s, 1, MAX_BENCH_CONTEXT)
}

fn in_range(s: &str, lo: usize, hi: usize) -> Result<usize, String> {
    let expected = match hi {
        usize::MAX => format!("a whole number, at least {lo}"),
        _ => format!("a whole number from {lo} to {hi}"),
    };
    match s.parse::<usize>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        Ok(v) => Err(format!("expected {expected}, found {v}")),
        Err(_) => Err(format!("expected {expected}")),
    }
}

fn float(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| "expected a number".to_string())?;
    if !v.is_finite() {
        return Err(format!("expected a finite number, found {v}"));
    }
    Ok(v)
}

/// A temperature: finite and at least 0 (0 is greedy).
fn temperature(s: &str) -> Result<f32, String> {
    let v = float(s)?;
    if v < 0.0 {
        return Err(format!("expected 0 (greedy) or more, found {v}"));
    }
    Ok(v)
}

/// A top-p threshold in (0, 1].
fn top_p(s: &str) -> Result<f32, String> {
    let v = float(s)?;
    if v <= 0.0 || v > 1.0 {
        return Err(format!(
            "expected more than 0 and at most 1 (off), found {v}"
        ));
    }
    Ok(v)
}

/// A repetition penalty: finite and more than 0 (1 is off).
fn repetition_penalty(s: &str) -> Result<f32, String> {
    let v = float(s)?;
    if v <= 0.0 {
        return Err(format!("expected more than 0 (1 is off), found {v}"));
    }
    Ok(v)
}

/// `--weights`: one of [`WeightFormat::NAMES`].
fn parse_weights(text: &str) -> Result<WeightFormat, String> {
    WeightFormat::parse(text).ok_or_else(|| {
        let names: Vec<&str> = WeightFormat::NAMES.iter().map(|(n, _)| *n).collect();
        format!("expected one of {}, found '{text}'", names.join(", "))
    })
}
