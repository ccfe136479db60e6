//! Seeded inputs, error measurement and the tolerances of math.md §6; no GPU and no files, so
//! the browser tests share them.

/// Unit roundoff of f32 (2^-24).
pub const U: f64 = 1.0 / 16_777_216.0;

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

/// Largest |x|; NaN when any value is NaN (a scale derived from it fails every check).
pub fn max_abs(x: &[f64]) -> f64 {
    x.iter().fold(0.0, |m, v| match v.is_nan() || m.is_nan() {
        true => f64::NAN,
        false => m.max(v.abs()),
    })
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

/// The bit patterns of `v`, to compare two runs bit for bit (lengths included; NaN equals
/// itself only in the same bits).
pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}
