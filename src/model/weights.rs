//! Weights from a safetensors file (memory-mapped natively, or bytes fetched by a web page):
//! f32/f16/bf16 converted to f32 on load, every tensor looked up by name and checked against the
//! shape the config implies.

use crate::error::{Error, Result};
use safetensors::tensor::Metadata;
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeSet;

/// An open safetensors file whose tensors are taken one by one; `finish` reports any left over.
pub struct WeightFile {
    /// The file's name in error messages.
    name: String,
    /// The whole file: a memory map or an owned buffer.
    map: Box<dyn AsRef<[u8]>>,
    /// The header, parsed and validated once: byte length and tensor table.
    header: (usize, Metadata),
    taken: BTreeSet<String>,
    /// Keep matrices (the `B` of `x·Bᵀ` products) in f16 on the GPU (needs shader-f16);
    /// norms, embeddings and latents stay f32.
    pub f16_matrices: bool,
}

impl WeightFile {
    /// Maps `path` and checks its header is well formed and its data complete (native).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &std::path::Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the file is only read, and the mapping lives as long as this struct; a file
        // changed underneath a running model is outside what we can defend against.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        Self::new(path.display().to_string(), Box::new(map))
    }

    /// A safetensors file already in memory (e.g. fetched by a web page); `name` names it in
    /// errors. Checks its header is well formed and its data complete.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Self> {
        Self::new(name.to_string(), Box::new(bytes))
    }

    fn new(name: String, map: Box<dyn AsRef<[u8]>>) -> Result<Self> {
        let bytes = (*map).as_ref();
        let header = SafeTensors::read_metadata(bytes).map_err(|e| Error::Weights {
            file: name.clone(),
            what: "file".into(),
            expected: "a complete safetensors file".into(),
            found: format!("{e} ({} bytes)", bytes.len()),
        })?;
        Ok(WeightFile {
            name,
            map,
            header,
            taken: BTreeSet::new(),
            f16_matrices: false,
        })
    }

    fn err(&self, what: &str, expected: impl Into<String>, found: impl Into<String>) -> Error {
        Error::Weights {
            file: self.name.clone(),
            what: what.to_string(),
            expected: expected.into(),
            found: found.into(),
        }
    }

    /// Every tensor name in the file.
    pub fn names(&self) -> Result<Vec<String>> {
        Ok(self.header.1.tensors().into_keys().collect())
    }

    /// The tensor `name` as f32, checked to have `shape`.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let (header_len, meta) = &self.header;
        let info = meta.info(name).ok_or_else(|| {
            self.err(
                name,
                format!("a tensor of shape {shape:?}"),
                "no such tensor",
            )
        })?;
        if info.shape != shape {
            return Err(self.err(
                name,
                format!("shape {shape:?}"),
                format!("shape {:?}", info.shape),
            ));
        }
        // read_metadata checked every tensor's offsets against the file's length.
        let (start, end) = info.data_offsets;
        let data = &(*self.map).as_ref()[8 + header_len + start..8 + header_len + end];
        let dtype = info.dtype;
        let values: Vec<f32> = match dtype {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                return Err(self.err(name, "dtype F32, F16 or BF16", format!("dtype {other:?}")));
            }
        };
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(self.err(name, "finite values", format!("{} at index {i}", values[i])));
        }
        self.taken.insert(name.to_string());
        Ok(values)
    }

    /// Whether the file holds `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.header.1.info(name).is_some()
    }

    /// Errors if the file holds tensors the model did not use (a config/weights mismatch).
    pub fn finish(self) -> Result<()> {
        let unused: Vec<String> = self
            .names()?
            .into_iter()
            .filter(|n| !self.taken.contains(n))
            .collect();
        if let Some(first) = unused.first() {
            return Err(self.err(
                first,
                "only tensors the config uses",
                format!("{} unused tensor(s): {}", unused.len(), unused.join(", ")),
            ));
        }
        Ok(())
    }
}
