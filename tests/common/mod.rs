//! Shared test support: one context per adapter present, seeded inputs, error measurement.
#![allow(dead_code)]

use latentgpu::gpu::GpuContext;
use std::sync::OnceLock;

/// Unit roundoff of f32 (2^-24).
pub const U: f64 = 1.0 / 16_777_216.0;

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

/// A small seeded generator (SplitMix64): the same inputs on every run and machine.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }
    /// `n` values uniform in [lo, hi).
    pub fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }
}

/// Largest |x|.
pub fn max_abs(x: &[f64]) -> f64 {
    x.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// Asserts `|gpu[i] − reference[i]| <= tol(i)` everywhere, reporting how many elements fail, the
/// worst one and where.
pub fn assert_close_by(what: &str, gpu: &[f32], reference: &[f64], tol: impl Fn(usize) -> f64) {
    assert_eq!(gpu.len(), reference.len(), "{what}: length");
    let mut bad = 0;
    // (index, error, tolerance, error / tolerance) of the worst element; NaN counts as worst.
    let mut worst = (0usize, 0.0f64, tol(0), f64::NEG_INFINITY);
    for (i, (&g, &r)) in gpu.iter().zip(reference).enumerate() {
        let err = (g as f64 - r).abs();
        let t = tol(i);
        let within = err <= t;
        if !within {
            bad += 1;
        }
        let ratio = if err.is_nan() {
            f64::INFINITY
        } else if t > 0.0 {
            err / t
        } else if err > 0.0 {
            f64::INFINITY
        } else {
            0.0
        };
        if ratio > worst.3 {
            worst = (i, err, t, ratio);
        }
    }
    if std::env::var_os("LATENTGPU_TEST_VERBOSE").is_some() {
        eprintln!(
            "{what}: worst error {:.3e} = {:.3} of its tolerance",
            worst.1, worst.3
        );
    }
    assert!(
        bad == 0,
        "{what}: {bad} of {} elements out of tolerance; worst at {}: gpu {} ref {} err {:.3e} tol {:.3e}",
        gpu.len(),
        worst.0,
        gpu[worst.0],
        reference[worst.0],
        worst.1,
        worst.2
    );
}

/// Asserts every element within the same absolute tolerance.
pub fn assert_close(what: &str, gpu: &[f32], reference: &[f64], tol: f64) {
    assert_close_by(what, gpu, reference, |_| tol);
}

/// math.md §6: a reduction of length `k` in f32 is within `c · sqrt(k) · 2^-24 · scale` of the
/// exact value, with `scale` the largest magnitude involved (random rounding errors add up like a
/// random walk; `c` covers the tail over all elements tested).
pub fn reduction_tol(k: usize, scale: f64, c: f64) -> f64 {
    c * (k as f64).sqrt() * U * scale
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

/// Largest |a − b|.
pub fn max_diff(a: &[f32], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .fold(0.0, |m, (&x, &y)| m.max((x as f64 - y).abs()))
}

/// Largest |a − b| of two f64 slices.
pub fn max_diff64(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

/// The committed fixture directory `name`.
pub fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}
