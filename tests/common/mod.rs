//! Shared test support: one context per adapter present, seeded inputs, error measurement.
#![allow(dead_code, unused_imports)]

pub mod big_vocab;
pub mod cli;
pub mod kernel_checks;
pub mod llama_checkpoint;
pub mod numeric;
pub mod paged_checks;
pub mod quant_checks;
pub mod sampling_checks;

pub use numeric::*;

use latentgpu::gpu::GpuContext;
use std::sync::OnceLock;

/// Backends that must be present, comma separated (CI sets `vulkan,gl`).
pub const REQUIRE_ENV: &str = "LATENTGPU_REQUIRE_BACKENDS";

/// One context per adapter present. No adapter at all is a failure, and so is a backend named in
/// `LATENTGPU_REQUIRE_BACKENDS` that has no adapter.
pub fn contexts() -> &'static [GpuContext] {
    static CONTEXTS: OnceLock<Vec<GpuContext>> = OnceLock::new();
    CONTEXTS.get_or_init(|| {
        let all = GpuContext::all().expect("creating a device on every adapter");
        assert!(
            !all.is_empty(),
            "no GPU adapter found: the GPU tests need one (run scripts/setup-gpu.sh for Mesa lavapipe)"
        );
        let required = std::env::var(REQUIRE_ENV).unwrap_or_default();
        for name in required.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            assert!(
                all.iter().any(|c| c.adapter.backend == name),
                "{REQUIRE_ENV} requires backend '{name}', but the adapters are: {:?}",
                all.iter().map(|c| c.name()).collect::<Vec<_>>()
            );
        }
        // Record which adapters the tests ran on, so CI can show it (one line per adapter).
        let record = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("gpu-test-adapters.txt");
        let lines: String = all.iter().map(|c| format!("{}\n", c.name())).collect();
        let _ = std::fs::write(record, lines);
        for c in &all {
            eprintln!("GPU test adapter: {}", c.name());
        }
        all
    })
}

/// Runs `f` on every adapter, naming the adapter if it panics.
pub fn on_every_adapter(mut f: impl FnMut(&GpuContext)) {
    for ctx in contexts() {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(ctx)));
        if let Err(e) = r {
            eprintln!("failed on adapter {}", ctx.name());
            std::panic::resume_unwind(e);
        }
    }
}

/// A golden file written by `reference/export_fixtures.py`.
pub struct Golden {
    bytes: Vec<u8>,
}

impl Golden {
    /// Reads `path`.
    pub fn open(path: &std::path::Path) -> Self {
        Golden {
            bytes: std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        }
    }

    fn view(&self, name: &str) -> safetensors::tensor::TensorView<'_> {
        safetensors::SafeTensors::deserialize(&self.bytes)
            .unwrap()
            .tensor(name)
            .unwrap_or_else(|_| panic!("golden has no '{name}'"))
    }

    /// An F64 tensor's values and shape.
    pub fn f64(&self, name: &str) -> (Vec<f64>, Vec<usize>) {
        let v = self.view(name);
        assert_eq!(v.dtype(), safetensors::Dtype::F64, "{name}");
        let data = v
            .data()
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        (data, v.shape().to_vec())
    }

    /// An F32 tensor's values.
    pub fn f32(&self, name: &str) -> Vec<f32> {
        let v = self.view(name);
        assert_eq!(v.dtype(), safetensors::Dtype::F32, "{name}");
        bytemuck::pod_collect_to_vec(v.data())
    }

    /// An I64 tensor as token ids.
    pub fn tokens(&self, name: &str) -> Vec<u32> {
        let v = self.view(name);
        assert_eq!(v.dtype(), safetensors::Dtype::I64, "{name}");
        v.data()
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as u32)
            .collect()
    }
}

/// Largest |a − b|; infinity when any value is NaN or infinite (so that every "within
/// tolerance" check fails on it). Slices of different lengths fail the test.
pub fn max_diff(a: &[f32], b: &[f64]) -> f64 {
    let a: Vec<f64> = a.iter().map(|&x| x as f64).collect();
    max_diff64(&a, b)
}

/// Largest |a − b| of two f64 slices, as [`max_diff`].
pub fn max_diff64(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "compared slices differ in length");
    a.iter().zip(b).fold(0.0, |m, (x, y)| {
        let d = (x - y).abs();
        match x.is_finite() && y.is_finite() {
            true => m.max(d),
            false => f64::INFINITY,
        }
    })
}

/// Runs the command line with `args`, asserting that it succeeds (its stderr in the message);
/// returns its standard output.
pub fn cli_stdout<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> Vec<u8> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latentgpu"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    out.stdout
}

/// The committed fixture directory `name`.
pub fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The ids of a JSON list.
pub fn json_ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .expect("a list of ids")
        .iter()
        .map(|x| x.as_u64().expect("an id") as u32)
        .collect()
}

/// Greedy decoding with the cache (the prompt in one pass, then a token at a time) from
/// `expected`'s `prompt_ids`, as many tokens as its `greedy_ids` (transformers' `generate`):
/// `(ours, theirs)`.
pub fn greedy_and_expected(
    ctx: &GpuContext,
    model: &latentgpu::model::Model,
    expected: &serde_json::Value,
) -> (Vec<u32>, Vec<u32>) {
    let want = json_ids(&expected["greedy_ids"]);
    let cfg = latentgpu::model::GenerateConfig {
        max_tokens: want.len(),
        stop: None,
        eos_token_ids: Vec::new(),
        sampling: latentgpu::model::SamplingConfig {
            temperature: 0.0,
            ..Default::default()
        },
        cancel: None,
    };
    let prompt = json_ids(&expected["prompt_ids"]);
    let got = latentgpu::model::generate(ctx, model, &prompt, &cfg, |_| {}).unwrap();
    (got, want)
}
