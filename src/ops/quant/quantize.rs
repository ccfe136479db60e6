//! The host quantizers of the formats `latentgpu` writes itself (q8_0, q4_0, q4_1), as llama.cpp's
//! reference quantizers and the `gguf` Python package write them. The K-quants and q5 formats
//! load from files only.

use super::{QuantHost, QuantScheme, QUANT_BLOCK};
use crate::error::{shape_err, Result};
use half::f16;

/// Rounds to the nearest f16 value, as llama.cpp stores a block's scale.
fn to_f16(v: f32) -> f32 {
    f16::from_f32(v).to_f32()
}

/// `data` `[rows, k]` (k a multiple of 32) in `scheme`, block by block as the `gguf` Python
/// package (0.19) and llama.cpp's reference quantizers do it:
/// - q8_0: `d = max|w| / 127`, `q = round(w / d)` (half away from zero);
/// - q4_0: `d = w* / -8` for the `w*` of largest magnitude, `q = min(15, trunc(w / d + 8.5))`;
/// - q4_1: `d = (max - min) / 15`, `m = min`, `q = min(15, trunc((w - m) / d + 0.5))`.
///
/// The codes use `1 / d` before `d` is rounded to f16; an all-zero block has `d = 0`.
pub fn quantize(scheme: QuantScheme, data: &[f32], k: usize) -> Result<QuantHost> {
    if !scheme.quantizable() {
        return Err(shape_err(
            "quantize",
            "format",
            "q8_0, q4_0 or q4_1 (the others load from GGUF files as they are)",
            scheme.name(),
        ));
    }
    if k == 0 || !k.is_multiple_of(QUANT_BLOCK) || !data.len().is_multiple_of(k) {
        return Err(shape_err(
            "quantize",
            format!("row length for {}", scheme.name()),
            "a multiple of 32 that divides the data",
            format!("{k} for {} values", data.len()),
        ));
    }
    let blocks = data.len() / QUANT_BLOCK;
    let mut out = QuantHost::with_capacity(scheme, blocks);
    let inverse = |d: f32| if d != 0.0 { 1.0 / d } else { 0.0 };
    for block in data.chunks(QUANT_BLOCK) {
        match scheme {
            QuantScheme::Q8_0 => {
                let amax = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let d = amax / 127.0;
                let id = inverse(d);
                let byte = |v: f32| (v * id).round().clamp(-127.0, 127.0) as i8 as u8;
                for four in block.chunks(4) {
                    out.codes.push(u32::from_le_bytes(
                        [four[0], four[1], four[2], four[3]].map(byte),
                    ));
                }
                out.scales.push(to_f16(d));
            }
            _ => {
                let (d, m) = if scheme == QuantScheme::Q4_0 {
                    // The first value of largest magnitude, sign kept.
                    let max = block
                        .iter()
                        .fold(0.0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
                    (max / -8.0, 0.0)
                } else {
                    let min = block.iter().fold(f32::INFINITY, |m, &v| m.min(v));
                    let max = block.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                    ((max - min) / 15.0, min)
                };
                let id = inverse(d);
                // f32 operations rounded one at a time, as the gguf package computes them.
                let code = |v: f32| match scheme {
                    QuantScheme::Q4_0 => (v * id + 8.5).trunc().clamp(0.0, 15.0),
                    _ => ((v - m) * id + 0.5).trunc().clamp(0.0, 15.0),
                } as u32;
                for word in 0..4 {
                    let mut w = 0u32;
                    for byte in 0..4 {
                        let i = 4 * word + byte;
                        let pair = code(block[i]) | (code(block[i + 16]) << 4);
                        w |= pair << (8 * byte);
                    }
                    out.codes.push(w);
                }
                out.scales.push(to_f16(d));
                if scheme.has_min() {
                    out.mins.push(to_f16(m));
                }
            }
        }
    }
    Ok(out)
}
