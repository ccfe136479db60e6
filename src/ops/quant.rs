//! Block-quantized weights, as llama.cpp's q8_0, q4_0 and q4_1: 32 weights along a row share a
//! scale `d` (and for q4_1 a minimum `m`), quantized on the host (here) and dequantized inside
//! the product kernels with f32 accumulation (`quant_weight.rs`, `matmul_q8.wgsl`,
//! `matmul_q4.wgsl`).
//!
//! On the host (here, and in the files) a matrix `[N, K]` is two or three arrays in row order:
//! the codes, `K/4` (q8) or `K/8` (q4) u32 per row, the scales `K/32` f32 per row and, for
//! q4_1, the minimums `K/32` f32 per row. A block's codes are whole vec4s, so a kernel step
//! loads a block's bytes in one or two loads. On the GPU the same blocks lie in tiles of 32 rows
//! (`quant_weight.rs`). Scales are f16 values (as llama.cpp stores them) kept in f32, so no
//! adapter needs shader-f16 and each dequantized weight is exact in f32 for q8_0 and q4_0.
//!
//! | scheme | weight | bytes a weight on the GPU |
//! |---|---|---|
//! | q8_0 | `d · q`, q in -127..127 | 1.125 |
//! | q4_0 | `d · (q - 8)`, q in 0..15 | 0.625 |
//! | q4_1 | `d · q + m`, q in 0..15 | 0.75 |

use crate::error::{shape_err, Result};
use half::f16;

/// Weights per block (and per scale).
pub const QUANT_BLOCK: usize = 32;

/// A block-quantized format (llama.cpp's name and layout within a block).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuantScheme {
    /// 8-bit: `d · q`.
    Q8_0,
    /// 4-bit with a scale: `d · (q - 8)`.
    Q4_0,
    /// 4-bit with a scale and a minimum: `d · q + m`.
    Q4_1,
}

impl QuantScheme {
    /// llama.cpp's name: `q8_0`, `q4_0`, `q4_1`.
    pub fn name(self) -> &'static str {
        match self {
            QuantScheme::Q8_0 => "q8_0",
            QuantScheme::Q4_0 => "q4_0",
            QuantScheme::Q4_1 => "q4_1",
        }
    }

    /// The scheme llama.cpp calls `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [QuantScheme::Q8_0, QuantScheme::Q4_0, QuantScheme::Q4_1]
            .into_iter()
            .find(|s| s.name() == name)
    }

    /// u32 words of codes per block of 32 weights.
    pub fn words_per_block(self) -> usize {
        match self {
            QuantScheme::Q8_0 => 8,
            _ => 4,
        }
    }

    /// Whether blocks carry a minimum.
    pub fn has_min(self) -> bool {
        self == QuantScheme::Q4_1
    }

    /// Bytes per block on the GPU: codes, an f32 scale and (q4_1) an f32 minimum.
    pub fn gpu_block_bytes(self) -> usize {
        4 * self.words_per_block() + 4 + if self.has_min() { 4 } else { 0 }
    }

    /// The codes' shape for a matrix `[n, k]`.
    pub(crate) fn codes_shape(self, n: usize, k: usize) -> [usize; 2] {
        [n, k / QUANT_BLOCK * self.words_per_block()]
    }
}

/// A matrix `[rows, k]` quantized on the host, blocks in row order (see the module doc).
#[derive(Clone, Debug, PartialEq)]
pub struct QuantHost {
    /// The format.
    pub scheme: QuantScheme,
    /// The codes, `words_per_block` words per block, blocks in row order.
    pub codes: Vec<u32>,
    /// One scale per block (an f16 value).
    pub scales: Vec<f32>,
    /// One minimum per block (an f16 value; q4_1 only, else empty).
    pub mins: Vec<f32>,
}

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
    if k == 0 || !k.is_multiple_of(QUANT_BLOCK) || !data.len().is_multiple_of(k) {
        return Err(shape_err(
            "quantize",
            format!("row length for {}", scheme.name()),
            "a multiple of 32 that divides the data",
            format!("{k} for {} values", data.len()),
        ));
    }
    let blocks = data.len() / QUANT_BLOCK;
    let mut out = QuantHost {
        scheme,
        codes: Vec::with_capacity(blocks * scheme.words_per_block()),
        scales: Vec::with_capacity(blocks),
        mins: Vec::new(),
    };
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
            QuantScheme::Q4_0 | QuantScheme::Q4_1 => {
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

/// The values the kernels multiply by, in order: `d · q`, `d · (q - 8)` or `d · q + m`
/// (rounded once, in f32).
pub fn dequantize(q: &QuantHost) -> Vec<f32> {
    let words = q.scheme.words_per_block();
    let mut out = Vec::with_capacity(q.scales.len() * QUANT_BLOCK);
    for (b, block) in q.codes.chunks(words).enumerate() {
        let d = q.scales[b];
        match q.scheme {
            QuantScheme::Q8_0 => {
                out.extend(
                    block
                        .iter()
                        .flat_map(|w| w.to_le_bytes().map(|byte| d * (byte as i8) as f32)),
                );
            }
            QuantScheme::Q4_0 | QuantScheme::Q4_1 => {
                let bytes: Vec<u8> = block.iter().flat_map(|w| w.to_le_bytes()).collect();
                let m = q.mins.get(b).copied().unwrap_or(0.0);
                let value = |code: u8| match q.scheme {
                    QuantScheme::Q4_0 => d * (code as f32 - 8.0),
                    _ => (code as f32).mul_add(d, m),
                };
                out.extend(bytes.iter().map(|b| value(b & 15)));
                out.extend(bytes.iter().map(|b| value(b >> 4)));
            }
        }
    }
    out
}
