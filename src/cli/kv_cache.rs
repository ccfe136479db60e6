//! `latentgpu kv-cache`: MLA's cache against MHA, GQA and MQA of the same heads.

use anyhow::{Context, Result};
use std::path::PathBuf;

/// Prints MLA's cache size against MHA, GQA and MQA for a preset or a Hugging Face config.
pub fn kv_cache(
    config: &Option<PathBuf>,
    preset: &Option<String>,
    context: usize,
    bytes: usize,
    json: bool,
) -> Result<()> {
    use latentgpu::model::runtime::kv_cache;
    let (name, layers, shape) = match (config, preset) {
        (Some(path), _) => {
            let text = latentgpu::files::read_text_capped(path, latentgpu::files::CONFIG_CAP)?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            let shape = latentgpu::model::config::mla::MlaShape::from_hf_config(&value)
                .with_context(|| format!("reading the MLA fields of {}", path.display()))?;
            let layers = value
                .get("num_hidden_layers")
                .and_then(|v| v.as_u64())
                .unwrap_or(1) as usize;
            (path.display().to_string(), layers, shape)
        }
        (None, Some(p)) => kv_cache::preset(p)?,
        (None, None) => kv_cache::preset("v3")?,
    };
    let report = kv_cache::mla_report(&name, layers, &shape, context, bytes);
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    outln!("{name}: {layers} layers, context {context} tokens, {bytes} bytes per number");
    outln!(
        "{:<36} {:>14} {:>16} {:>18} {:>8}",
        "layout",
        "numbers/token",
        "bytes/token",
        "bytes at context",
        "vs MLA"
    );
    outln!(
        "{:<36} {:>14} {:>16} {:>18} {:>8}",
        "",
        "per layer",
        "all layers",
        "",
        ""
    );
    for r in &report.rows {
        outln!(
            "{:<36} {:>14} {:>16} {:>18} {:>7.1}x",
            r.layout,
            r.numbers_per_token_per_layer,
            r.bytes_per_token,
            r.bytes_at_context,
            r.ratio_to_mla
        );
    }
    Ok(())
}
