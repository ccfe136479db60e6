//! Any bytes given to the weight loader as a safetensors file give tensors or a named error.
#![no_main]

use latentgpu::model::WeightFile;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("latentgpu-fuzz-{}.safetensors", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(mut file) = WeightFile::open(&path) {
        for name in file.names().unwrap_or_default() {
            for shape in [&[1usize][..], &[4, 4], &[64, 64]] {
                let _ = file.take(&name, shape);
            }
        }
        let _ = file.finish();
    }
});
