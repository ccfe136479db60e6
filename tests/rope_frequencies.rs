//! RoPE frequencies against transformers' own initialisation (`ROPE_INIT_FUNCTIONS`, exported
//! by `reference/export_rope_fixtures.py`): for each RoPE type a family runs (default, linear,
//! llama3, YaRN with and without its magnitude settings, LongRoPE over a partial rotation, and
//! Gemma 3's two kinds of layers), the loader's config gives the inverse frequencies and the
//! attention factor transformers computes, and so does the f64 reference of `src/cpu/rope.rs`.

use latentgpu::cpu::rope as oracle;
use latentgpu::model::HfConfig;
use serde_json::Value;

fn cases() -> serde_json::Map<String, Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/rope/frequencies.json"
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json.as_object().unwrap().clone()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// Units in the last place between two f32 values of one sign.
fn ulps(a: f32, b: f32) -> u32 {
    (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
}

/// transformers raises the base to each exponent with float32 `pow` (`base ** tensor`), which
/// is within an ulp of the exact power but not always the nearest float; we round the f64
/// power to nearest. So each `base^e` may differ by 1 ulp, and the quotient `1 / (s · base^e)`
/// (one more rounding each for the factor's product and the division, the same in both) by 1.
const POW_ULPS: u32 = 1;

fn check(name: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{name}: {got:?} vs {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            ulps(*g, *w) <= POW_ULPS,
            "{name}[{i}]: {g} vs transformers' {w}"
        );
    }
}

#[test]
fn the_loader_computes_transformers_frequencies_for_every_rope_type() {
    for (name, case) in cases() {
        let c = HfConfig::from_json(&case["config"]).unwrap().config;
        let dim = c.rope_dim();
        if name == "gemma3" {
            let want = &case["full_attention"];
            check(
                "gemma3 full",
                &c.rope.inv_freq(dim),
                &floats(&want["inv_freq"]),
            );
            let local = c.rope_sliding.as_ref().unwrap();
            let want = &case["sliding_attention"];
            check(
                "gemma3 sliding",
                &local.inv_freq(dim),
                &floats(&want["inv_freq"]),
            );
            continue;
        }
        check(&name, &c.rope.inv_freq(dim), &floats(&case["inv_freq"]));
        let factor = case["attention_factor"].as_f64().unwrap() as f32;
        assert_eq!(
            c.rope.attention_factor(),
            factor,
            "{name}: attention factor"
        );
        if let Some(long) = case.get("long_inv_freq") {
            let (got, original) = c.rope.long_inv_freq(dim).unwrap();
            check(&format!("{name} long"), &got, &floats(long));
            assert_eq!(original, 4096);
        }
    }
}

#[test]
fn the_f64_reference_computes_transformers_frequencies_for_every_rope_type() {
    for (name, case) in cases() {
        let cfg = &case["config"];
        if name == "gemma3" {
            let p = &cfg["rope_parameters"];
            let full = oracle::inv_freq(&p["full_attention"], cfg, 32);
            check(
                "gemma3 full",
                &full.0,
                &floats(&case["full_attention"]["inv_freq"]),
            );
            let local = oracle::inv_freq(&p["sliding_attention"], cfg, 32);
            check(
                "gemma3 sliding",
                &local.0,
                &floats(&case["sliding_attention"]["inv_freq"]),
            );
            continue;
        }
        let head = cfg["head_dim"].as_u64().map(|h| h as usize).unwrap_or(
            cfg["hidden_size"].as_u64().unwrap() as usize
                / cfg["num_attention_heads"].as_u64().unwrap() as usize,
        );
        let partial = cfg["rope_parameters"]["partial_rotary_factor"]
            .as_f64()
            .unwrap_or(1.0);
        let dim = (head as f64 * partial) as usize;
        let (inv, factor) = oracle::inv_freq(&cfg["rope_parameters"], cfg, dim);
        check(&name, &inv, &floats(&case["inv_freq"]));
        let want = case["attention_factor"].as_f64().unwrap();
        assert!(
            (factor - want).abs() <= 1e-6 * want,
            "{name}: {factor} vs {want}"
        );
        if let Some(long) = case.get("long_inv_freq") {
            let (inv, _) = oracle::long_inv_freq(&cfg["rope_parameters"], dim);
            check(&format!("{name} long"), &inv, &floats(long));
        }
    }
}
