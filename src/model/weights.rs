//! Weights from safetensors files (read tensor by tensor natively, or bytes fetched by a web
//! page):
//! one file or the shards of a Hugging Face `model.safetensors.index.json`; f32/f16/bf16
//! converted to f32 on load; every tensor looked up by name and checked against the shape the
//! config implies.

use crate::error::{Error, Result};
use safetensors::tensor::Metadata;
use safetensors::{Dtype, SafeTensors};
use std::collections::{BTreeMap, BTreeSet};

/// How the model's tensor names (`layers.3.attn.q_proj.weight`) are spelled in the files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorNames {
    /// This project's own names, as they are.
    Native,
    /// Hugging Face transformers' names: `model.layers.3.self_attn.q_proj.weight`,
    /// `input_layernorm`, `post_attention_layernorm`, `mlp`, `model.embed_tokens`, `model.norm`.
    HuggingFace,
}

impl TensorNames {
    /// The name a tensor of the model has in the files.
    pub fn file_name(self, name: &str) -> String {
        if self == TensorNames::Native || name.starts_with("lm_head.") {
            return name.to_string();
        }
        let Some(rest) = name.strip_prefix("layers.") else {
            return format!("model.{name}");
        };
        let (index, inner) = rest.split_once('.').unwrap_or((rest, ""));
        let inner = [
            ("attn_norm.", "input_layernorm."),
            ("ffn_norm.", "post_attention_layernorm."),
            ("attn.", "self_attn."),
            ("ffn.", "mlp."),
        ]
        .iter()
        .find_map(|(ours, theirs)| inner.strip_prefix(ours).map(|r| format!("{theirs}{r}")))
        .unwrap_or_else(|| inner.to_string());
        format!("model.layers.{index}.{inner}")
    }
}

/// Where a shard's bytes are.
enum Source {
    /// The whole file in memory (fetched by a web page, or given by a caller).
    Bytes(Vec<u8>),
    /// A file read a tensor at a time (not mapped: a file truncated or rewritten while it is
    /// read gives an error, not a SIGBUS), and its length when opened.
    #[cfg(not(target_arch = "wasm32"))]
    File(std::fs::File, u64),
}

/// One safetensors file.
struct Shard {
    /// The file's name in error messages.
    name: String,
    source: Source,
    /// The header, parsed and validated once: byte length and tensor table.
    header: (usize, Metadata),
}

/// The largest header the safetensors format allows (its `MAX_HEADER_SIZE`).
#[cfg(not(target_arch = "wasm32"))]
const MAX_HEADER_BYTES: u64 = 100_000_000;

impl Shard {
    fn new(name: String, bytes: Vec<u8>) -> Result<Self> {
        let header = SafeTensors::read_metadata(&bytes).map_err(|e| Error::Weights {
            file: name.clone(),
            what: "file".into(),
            expected: "a complete safetensors file".into(),
            found: format!("{e} ({} bytes)", bytes.len()),
        })?;
        Ok(Shard {
            name,
            source: Source::Bytes(bytes),
            header,
        })
    }

    /// Reads the header of the regular file at `path` and checks that its tensors fill the
    /// file exactly; their data is read when taken.
    #[cfg(not(target_arch = "wasm32"))]
    fn open(path: &std::path::Path) -> Result<Self> {
        use std::io::Read;
        let mut file = crate::files::open_regular(path)?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let name = path.display().to_string();
        let bad = |found: String| Error::Weights {
            file: name.clone(),
            what: "file".into(),
            expected: "a complete safetensors file".into(),
            found,
        };
        let mut n = [0u8; 8];
        file.read_exact(&mut n)
            .map_err(|e| bad(format!("no header length ({len} bytes): {e}")))?;
        let n = u64::from_le_bytes(n);
        if n > MAX_HEADER_BYTES || 8 + n > len {
            return Err(bad(format!("a header of {n} bytes in a file of {len}")));
        }
        let mut header = vec![0u8; n as usize];
        file.read_exact(&mut header)
            .map_err(|e| bad(format!("a header cut short: {e}")))?;
        // Deserializing validates the table: offsets in order, contiguous, sizes consistent.
        let meta: Metadata =
            serde_json::from_slice(&header).map_err(|e| bad(format!("an invalid header: {e}")))?;
        let data_end = meta
            .tensors()
            .values()
            .map(|info| info.data_offsets.1 as u64)
            .max()
            .unwrap_or(0);
        if 8 + n + data_end != len {
            return Err(bad(format!(
                "{} bytes of tensor data in a file with room for {}",
                data_end,
                len - 8 - n
            )));
        }
        Ok(Shard {
            name,
            source: Source::File(file, len),
            header: (n as usize, meta),
        })
    }

    /// `len` bytes of the file from `start`.
    fn read(&mut self, start: usize, len: usize) -> Result<std::borrow::Cow<'_, [u8]>> {
        match &mut self.source {
            Source::Bytes(bytes) => Ok(std::borrow::Cow::Borrowed(&bytes[start..start + len])),
            #[cfg(not(target_arch = "wasm32"))]
            Source::File(file, opened_len) => {
                use std::io::{Read, Seek};
                let changed = |found: String| Error::Weights {
                    file: self.name.clone(),
                    what: "file".into(),
                    expected: format!("the {opened_len} bytes it had when opened"),
                    found,
                };
                let now = file.metadata().map(|m| m.len()).unwrap_or(0);
                if now != *opened_len {
                    return Err(changed(format!("{now} bytes while loading")));
                }
                let mut data = vec![0u8; len];
                file.seek(std::io::SeekFrom::Start(start as u64))
                    .and_then(|_| file.read_exact(&mut data))
                    .map_err(|e| changed(format!("{e} reading {len} bytes at {start}")))?;
                Ok(std::borrow::Cow::Owned(data))
            }
        }
    }
}

/// What the files say about one tensor, before any of it is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// Its name in the files.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its dtype on disk.
    pub dtype: Dtype,
    /// Bytes on disk.
    pub bytes: u64,
}

/// Open safetensors files whose tensors are taken one by one; `finish` reports any left over.
pub struct WeightFile {
    shards: Vec<Shard>,
    /// Which shard holds each tensor.
    index: BTreeMap<String, usize>,
    taken: BTreeSet<String>,
    /// How the model's names are spelled in the files.
    pub names: TensorNames,
    /// How matrices (the `W` of `x·Wᵀ` products) are kept on the GPU: f32, f16 (needs
    /// shader-f16) or quantized; norms, embeddings not tied to the LM head, routers and latents
    /// stay f32.
    pub weights: crate::ops::WeightFormat,
    /// The most bytes a weight block may hold on the GPU (the adapter's binding limit, or a
    /// forced smaller one): a matrix past it is split into row blocks, and a tensor that cannot
    /// be (one of its rows, or a vector, past it) is an error before it is read.
    pub max_tensor_bytes: Option<u64>,
    /// Forces weights into row blocks of at most this many bytes, below the adapter's limit
    /// (tests split every weight with it; `None`: split only past the adapter's limit).
    pub block_bytes: Option<u64>,
}

impl WeightFile {
    /// Maps `path` and checks its header is well formed and its data complete (native).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &std::path::Path) -> Result<Self> {
        Self::from_shards(vec![Shard::open(path)?])
    }

    /// A safetensors file already in memory (e.g. fetched by a web page); `name` names it in
    /// errors. Checks its header is well formed and its data complete.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Self> {
        Self::from_shards(vec![Shard::new(name.to_string(), bytes)?])
    }

    /// Several safetensors files already in memory, as `(name, bytes)` (the shards of a Hugging
    /// Face checkpoint a web page fetched); each tensor is looked up in whichever file holds it.
    pub fn from_shards_bytes(files: Vec<(String, Vec<u8>)>) -> Result<Self> {
        let shards = files
            .into_iter()
            .map(|(name, bytes)| Shard::new(name, bytes))
            .collect::<Result<Vec<_>>>()?;
        Self::from_shards(shards)
    }

    /// The weights of a Hugging Face model directory: `model.safetensors`, or the shards that
    /// `model.safetensors.index.json` lists. A missing shard, or an index entry whose shard does
    /// not hold the tensor, is an error naming it (native).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open_dir(dir: &std::path::Path) -> Result<Self> {
        let index_path = dir.join("model.safetensors.index.json");
        if !index_path.exists() {
            return Self::open(&dir.join("model.safetensors"));
        }
        let text = crate::files::read_text_capped(&index_path, crate::files::CONFIG_CAP)?;
        let bad_index = |found: String| Error::Weights {
            file: index_path.display().to_string(),
            what: "weight_map".into(),
            expected: "an object mapping tensor names to shard file names".into(),
            found,
        };
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad_index(e.to_string()))?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| bad_index("no weight_map object".into()))?;
        let mut wanted: BTreeMap<String, String> = BTreeMap::new();
        for (tensor, file) in map {
            let file = file
                .as_str()
                .filter(|f| !f.contains('/') && !f.contains('\\') && !f.is_empty())
                .ok_or_else(|| bad_index(format!("{tensor} -> {file}")))?;
            wanted.insert(tensor.clone(), file.to_string());
        }
        let files: BTreeSet<&String> = wanted.values().collect();
        let shards = files
            .iter()
            .map(|f| {
                let path = dir.join(f);
                if !path.exists() {
                    return Err(Error::Weights {
                        file: path.display().to_string(),
                        what: "shard".into(),
                        expected: format!("the shard {} lists", index_path.display()),
                        found: "no such file".into(),
                    });
                }
                Shard::open(&path)
            })
            .collect::<Result<Vec<_>>>()?;
        let loaded = Self::from_shards(shards)?;
        for (tensor, file) in &wanted {
            let holder = loaded.index.get(tensor).map(|&i| &loaded.shards[i].name);
            let holder_file = holder.and_then(|h| std::path::Path::new(h).file_name());
            if holder_file != Some(std::ffi::OsStr::new(file)) {
                return Err(Error::Weights {
                    file: dir.join(file).display().to_string(),
                    what: tensor.clone(),
                    expected: format!("the tensor {} places in this shard", index_path.display()),
                    found: match holder {
                        Some(h) => format!("it in {h}"),
                        None => "it in no shard".into(),
                    },
                });
            }
        }
        Ok(loaded)
    }

    fn from_shards(shards: Vec<Shard>) -> Result<Self> {
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for (i, shard) in shards.iter().enumerate() {
            for name in shard.header.1.tensors().into_keys() {
                if let Some(&other) = index.get(&name) {
                    return Err(Error::Weights {
                        file: shard.name.clone(),
                        what: name,
                        expected: "each tensor in one file".into(),
                        found: format!("it in {} too", shards[other].name),
                    });
                }
                index.insert(name, i);
            }
        }
        Ok(WeightFile {
            shards,
            index,
            taken: BTreeSet::new(),
            names: TensorNames::Native,
            weights: crate::ops::WeightFormat::F32,
            max_tensor_bytes: None,
            block_bytes: None,
        })
    }

    fn err(&self, what: &str, expected: impl Into<String>, found: impl Into<String>) -> Error {
        let file = match self.index.get(what) {
            Some(&i) => self.shards[i].name.clone(),
            None => self
                .shards
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        };
        Error::Weights {
            file,
            what: what.to_string(),
            expected: expected.into(),
            found: found.into(),
        }
    }

    /// Every tensor name in the files.
    pub fn names(&self) -> Result<Vec<String>> {
        Ok(self.index.keys().cloned().collect())
    }

    /// What the files say of every tensor (name, shape, dtype, bytes), sorted by name.
    pub fn infos(&self) -> Vec<TensorInfo> {
        self.index
            .iter()
            .filter_map(|(name, &i)| {
                let info = self.shards[i].header.1.info(name)?;
                Some(TensorInfo {
                    name: name.clone(),
                    shape: info.shape.clone(),
                    dtype: info.dtype,
                    bytes: (info.data_offsets.1 - info.data_offsets.0) as u64,
                })
            })
            .collect()
    }

    /// The tensor the model calls `name` (spelled in the files as [`WeightFile::names`] says)
    /// as f32, checked to have `shape`.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let name = self.names.file_name(name);
        let name = name.as_str();
        let missing = || {
            self.err(
                name,
                format!("a tensor of shape {shape:?}"),
                "no such tensor",
            )
        };
        let shard_index = *self.index.get(name).ok_or_else(missing)?;
        let (header_len, meta) = &self.shards[shard_index].header;
        let info = meta.info(name).ok_or_else(missing)?;
        if info.shape != shape {
            return Err(self.err(
                name,
                format!("shape {shape:?}"),
                format!("shape {:?}", info.shape),
            ));
        }
        if let Some(limit) = self.max_tensor_bytes {
            // Checked before the tensor is read and converted on the host: a matrix is split
            // between rows, so its rows must fit; a vector must fit whole.
            // Quantized codes are at most a byte a weight (their scales are a separate tensor).
            let element = match self.weights {
                crate::ops::WeightFormat::F32 => 4,
                crate::ops::WeightFormat::F16 => 2,
                crate::ops::WeightFormat::Quant(_) => 1,
            };
            let unit = if shape.len() > 1 { &shape[1..] } else { shape };
            let bytes = unit
                .iter()
                .try_fold(element, |a: u64, &d| a.checked_mul(d as u64));
            if bytes.is_none_or(|b| b > limit) {
                let what = if shape.len() > 1 { "rows" } else { "vectors" };
                return Err(self.err(
                    name,
                    format!("{what} of at most {limit} bytes in one GPU binding"),
                    format!(
                        "shape {shape:?}: {} bytes {}",
                        bytes.map_or("over 2^64".into(), |b| b.to_string()),
                        if shape.len() > 1 { "per row" } else { "" }
                    ),
                ));
            }
        }
        // The header was checked against the file's length when it was opened.
        let (start, end) = info.data_offsets;
        let dtype = info.dtype;
        let at = 8 + header_len + start;
        let data = self.shards[shard_index].read(at, end - start)?;
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

    /// Whether the files hold the tensor the model calls `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(&self.names.file_name(name))
    }

    /// The tensors the files hold that the model did not take.
    pub fn unused(&self) -> Vec<String> {
        self.index
            .keys()
            .filter(|n| !self.taken.contains(*n))
            .cloned()
            .collect()
    }

    /// Errors if the files hold tensors the model did not use (a config/weights mismatch).
    pub fn finish(self) -> Result<()> {
        let unused = self.unused();
        if let Some(first) = unused.first() {
            const LISTED: usize = 8;
            let more = match unused.len() > LISTED {
                true => format!(" and {} more", unused.len() - LISTED),
                false => String::new(),
            };
            let listed = unused[..unused.len().min(LISTED)].join(", ");
            return Err(self.err(
                first,
                "only tensors the config uses",
                format!("{} unused tensor(s): {listed}{more}", unused.len()),
            ));
        }
        Ok(())
    }
}
