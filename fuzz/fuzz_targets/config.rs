//! Any bytes given to the config parser give a config or a named error, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = latentgpu::model::ModelConfig::from_json(text);
    }
});
