//! Seeded mutation fuzzing of the config and weight loaders: thousands of truncated, bit-flipped
//! and spliced inputs must each give `Ok` or a named error, never a panic. (cargo-fuzz needs a
//! nightly toolchain, which this project's CI does not have; this loop runs on stable everywhere.)

mod common;

use common::{fixture, Rng};
use latentgpu::model::{ModelConfig, WeightFile};

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    match rng.next_u64() % 5 {
        0 => out.truncate((rng.next_u64() as usize) % (input.len() + 1)),
        1 => {
            for _ in 0..1 + rng.next_u64() % 8 {
                let i = (rng.next_u64() as usize) % out.len().max(1);
                if let Some(b) = out.get_mut(i) {
                    *b ^= 1 << (rng.next_u64() % 8);
                }
            }
        }
        2 => {
            // Corrupt the safetensors header length or the JSON's first bytes.
            let i = (rng.next_u64() as usize) % out.len().clamp(1, 16);
            if let Some(b) = out.get_mut(i) {
                *b = rng.next_u64() as u8;
            }
        }
        3 => {
            let a = (rng.next_u64() as usize) % (out.len() + 1);
            let b = (rng.next_u64() as usize) % (input.len() + 1);
            out.splice(a..a, input[..b].iter().copied());
        }
        _ => {
            let i = (rng.next_u64() as usize) % (out.len() + 1);
            let digits = format!("{}", rng.next_u64() as i64);
            out.splice(i..i, digits.bytes());
        }
    }
    out
}

#[test]
fn config_loader_never_panics() {
    let base = std::fs::read(fixture("latent-tiny").join("config.json")).unwrap();
    let mut rng = Rng::new(77);
    for _ in 0..20_000 {
        let input = mutate(&mut rng, &base);
        let text = String::from_utf8_lossy(&input);
        let r = std::panic::catch_unwind(|| ModelConfig::from_json(&text));
        assert!(r.is_ok(), "config loader panicked on {text:?}");
    }
}

#[test]
fn weight_loader_never_panics() {
    let base = std::fs::read(fixture("mha-tiny").join("model.safetensors")).unwrap();
    let cfg = ModelConfig::load(&fixture("mha-tiny").join("config.json")).unwrap();
    let names = [
        "embed_tokens.weight",
        "layers.0.attn.q_proj.weight",
        "norm.weight",
    ];
    let shapes: [&[usize]; 3] = [
        &[cfg.vocab_size, cfg.d_model],
        &[cfg.d_model, cfg.d_model],
        &[cfg.d_model],
    ];
    let path = std::env::temp_dir().join(format!("fuzz-{}.safetensors", std::process::id()));
    let mut rng = Rng::new(78);
    for _ in 0..3_000 {
        let input = mutate(&mut rng, &base);
        std::fs::write(&path, &input).unwrap();
        let r = std::panic::catch_unwind(|| {
            if let Ok(mut f) = WeightFile::open(&path) {
                for (n, s) in names.iter().zip(shapes) {
                    let _ = f.take(n, s);
                }
                let _ = f.finish();
            }
        });
        assert!(
            r.is_ok(),
            "weight loader panicked on a {}-byte input",
            input.len()
        );
    }
}
