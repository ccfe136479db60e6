//! The KV-cache arithmetic of math.md §3 and the `kv-cache` command.

use latentgpu::model::runtime::kv_cache::{mla_report, preset};

#[test]
fn deepseek_v3_numbers_match_the_published_arithmetic() {
    let (name, layers, shape) = preset("v3").unwrap();
    assert_eq!((name.as_str(), layers), ("DeepSeek-V3", 61));
    let r = mla_report(&name, layers, &shape, 1000, 2);
    let numbers: Vec<usize> = r
        .rows
        .iter()
        .map(|r| r.numbers_per_token_per_layer)
        .collect();
    assert_eq!(numbers[..3], [576, 32768, 40960]);
    assert!(
        (r.rows[1].ratio_to_mla - 56.89).abs() < 0.01,
        "{}",
        r.rows[1].ratio_to_mla
    );
    assert!(
        (r.rows[2].ratio_to_mla - 71.11).abs() < 0.01,
        "{}",
        r.rows[2].ratio_to_mla
    );
    assert_eq!(r.rows[0].bytes_per_token, 576 * 61 * 2);
    assert_eq!(r.rows[0].bytes_at_context, 576 * 61 * 2 * 1000);
}

#[test]
fn every_preset_caches_576_numbers_per_token_per_layer() {
    for p in ["v2-lite", "v2", "v3"] {
        let (_, _, s) = preset(p).unwrap();
        assert_eq!(s.cache_numbers_per_token(), 576, "{p}");
    }
    assert!(preset("v4").is_err());
}

#[test]
fn the_command_prints_the_table_and_json() {
    let bin = env!("CARGO_BIN_EXE_latentgpu");
    let out = std::process::Command::new(bin)
        .args(["kv-cache", "--preset", "v3"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("576")
            && text.contains("32768")
            && text.contains("56.9x")
            && text.contains("71.1x"),
        "{text}"
    );
    let out = std::process::Command::new(bin)
        .args([
            "kv-cache",
            "--config",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/hf/v2-qlora-yarn/config.json"
            ),
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rows"][0]["numbers_per_token_per_layer"], 26);
    let out = std::process::Command::new(bin)
        .args(["kv-cache", "--preset", "v9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("v2-lite, v2 or v3"));
}
