//! Any bytes given to the GGUF reader give a header and tensors (every quantized type repacked
//! and dequantized) or a named error.
#![no_main]

use latentgpu::model::formats::gguf::{parse_header, to_f32, to_quant};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(header) = parse_header("fuzz.gguf", data, data.len() as u64) else {
        return;
    };
    for t in header.tensors.values() {
        let (start, bytes) = (t.start as usize, t.bytes as usize);
        let Some(block) = data.get(start..start.saturating_add(bytes)) else {
            continue;
        };
        if let Some(q) = to_quant(t.kind, block) {
            let _ = latentgpu::ops::dequantize(&q);
        }
        let _ = to_f32(t.kind, block);
    }
});
