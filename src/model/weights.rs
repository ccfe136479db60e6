//! Weights from a safetensors file: memory-mapped, f32/f16/bf16 converted to f32 on load, every
//! tensor looked up by name and checked against the shape the config implies.

use crate::error::{Error, Result};
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// An open safetensors file whose tensors are taken one by one; `finish` reports any left over.
pub struct WeightFile {
    path: PathBuf,
    map: memmap2::Mmap,
    taken: BTreeSet<String>,
    /// Keep matrices (the `B` of `x·Bᵀ` products) in f16 on the GPU (needs shader-f16);
    /// norms, embeddings and latents stay f32.
    pub f16_matrices: bool,
}

impl WeightFile {
    /// Maps `path` and checks its header is well formed and its data complete.
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the file is only read, and the mapping lives as long as this struct; a file
        // changed underneath a running model is outside what we can defend against.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let wf = WeightFile {
            path: path.to_path_buf(),
            map,
            taken: BTreeSet::new(),
            f16_matrices: false,
        };
        wf.tensors()?;
        Ok(wf)
    }

    fn err(&self, what: &str, expected: impl Into<String>, found: impl Into<String>) -> Error {
        Error::Weights {
            file: self.path.display().to_string(),
            what: what.to_string(),
            expected: expected.into(),
            found: found.into(),
        }
    }

    fn tensors(&self) -> Result<SafeTensors<'_>> {
        SafeTensors::deserialize(&self.map).map_err(|e| {
            self.err(
                "file",
                "a complete safetensors file",
                format!("{e} ({} bytes)", self.map.len()),
            )
        })
    }

    /// Every tensor name in the file.
    pub fn names(&self) -> Result<Vec<String>> {
        Ok(self
            .tensors()?
            .names()
            .into_iter()
            .map(String::from)
            .collect())
    }

    /// The tensor `name` as f32, checked to have `shape`.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let st = self.tensors()?;
        let view = st.tensor(name).map_err(|_| {
            self.err(
                name,
                format!("a tensor of shape {shape:?}"),
                "no such tensor",
            )
        })?;
        if view.shape() != shape {
            return Err(self.err(
                name,
                format!("shape {shape:?}"),
                format!("shape {:?}", view.shape()),
            ));
        }
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
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
    pub fn contains(&self, name: &str) -> Result<bool> {
        Ok(self.tensors()?.tensor(name).is_ok())
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
