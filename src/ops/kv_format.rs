//! How a KV cache stores its values: f32, or packed 16-bit floats (half the memory, on every
//! adapter: the kernels pack and unpack pairs of them in u32 words, no shader-f16 needed).

use crate::error::{Error, Result};
use crate::gpu::{DType, GpuTensor};

/// The storage of a KV cache's keys and values (MLA's `c_kv` and `k_pe`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum KvFormat {
    /// 4 bytes a value.
    #[default]
    F32,
    /// 2 bytes a value, each rounded to the nearest f16 as it is written.
    F16,
}

impl KvFormat {
    /// The formats `--kv-cache` takes, by name.
    pub const ALL: [KvFormat; 2] = [KvFormat::F32, KvFormat::F16];

    /// Its name (`f32`, `f16`).
    pub fn name(self) -> &'static str {
        match self {
            KvFormat::F32 => "f32",
            KvFormat::F16 => "f16",
        }
    }

    /// The format named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The dtype of its tensors (an f16 cache's are f16 tensors, bound as u32 words).
    pub fn dtype(self) -> DType {
        match self {
            KvFormat::F32 => DType::F32,
            KvFormat::F16 => DType::F16,
        }
    }

    /// Bytes of one value.
    pub fn value_bytes(self) -> u64 {
        self.dtype().size() as u64
    }

    /// The format of cache tensor `t` (`op` and `what` name it in the error).
    pub fn of(op: &'static str, what: &str, t: &GpuTensor) -> Result<Self> {
        match t.dtype() {
            DType::F32 => Ok(KvFormat::F32),
            DType::F16 => Ok(KvFormat::F16),
            other => Err(Error::Invalid {
                what: format!("{op}: {what} '{}'", t.label()),
                expected: "an f32 or f16 cache".into(),
                found: format!("{other:?}"),
            }),
        }
    }

    /// The one format of the cache tensors `(what, tensor)` (the first names it), or an error
    /// naming the tensor in another.
    pub fn of_all(op: &'static str, tensors: &[(&str, &GpuTensor)]) -> Result<Self> {
        let (first, t) = tensors
            .first()
            .copied()
            .ok_or_else(|| crate::error::shape_err(op, "cache tensors", "at least one", 0))?;
        let format = Self::of(op, first, t)?;
        for &(what, t) in &tensors[1..] {
            if Self::of(op, what, t)? != format {
                return Err(crate::error::shape_err(
                    op,
                    format!("{what} '{}'", t.label()),
                    format!("{} as {first}", format.name()),
                    format!("{:?}", t.dtype()),
                ));
            }
        }
        Ok(format)
    }

    /// An element count or offset of a view as the kernels count it: words of the format
    /// (`what` names it in the error when a packed format's count is odd).
    pub(crate) fn words(self, op: &'static str, what: &str, elements: usize) -> Result<u32> {
        match self {
            KvFormat::F32 => super::as_u32(op, what, elements),
            KvFormat::F16 if elements.is_multiple_of(2) => super::as_u32(op, what, elements / 2),
            KvFormat::F16 => Err(crate::error::shape_err(
                op,
                what,
                "an even number of 16-bit values (whole words)",
                elements,
            )),
        }
    }

    /// `t` as the kernels bind it: itself, or an f16 tensor's u32 words.
    pub(crate) fn bound(self, t: &GpuTensor) -> Result<GpuTensor> {
        match self {
            KvFormat::F32 => Ok(t.clone()),
            KvFormat::F16 => t.view_words(),
        }
    }
}
