//! Weights from safetensors files (read tensor by tensor natively, or bytes fetched by a web
//! page):
//! one file or the shards of a Hugging Face `model.safetensors.index.json`; f32/f16/bf16
//! converted to f32 on load; every tensor looked up by name and checked against the shape the
//! config implies.

use crate::error::{Error, Result};
use safetensors::tensor::Metadata;
use safetensors::{Dtype, SafeTensors};
use std::collections::{BTreeMap, BTreeSet};

/// What a tensor the files hold and the model did not take means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unused {
    /// An error: this project's own files hold exactly the model's tensors.
    Error,
    /// A warning: checkpoints carry extras (a tied `lm_head.weight`, an old
    /// `rotary_emb.inv_freq`, a multimodal model's vision tower).
    Warn,
    /// An error for a tensor of a block (`blk.N.`: the metadata's `block_count` is smaller than
    /// the blocks the file holds, and running fewer would be a wrong answer), else a warning.
    ErrorInBlocks,
}

/// How the files spell and lay out the model's tensors (`layers.3.attn.q_proj.weight`): a
/// family's to say (`model::families`); the reader reads what the files hold.
pub trait TensorLayout: Send + Sync {
    /// The name in the files of the model's tensor `name`.
    fn file_name(&self, name: &str) -> String;

    /// Reads the model's tensor `name`, checked to have `shape` (default: the files'
    /// [`TensorLayout::file_name`] as it is). A family whose files hold a tensor otherwise
    /// (stacked, split, reordered, offset) makes it here.
    fn take(&self, files: &mut WeightFile, name: &str, shape: &[usize]) -> Result<HostMatrix> {
        files.read_tensor(&self.file_name(name), shape, None)
    }

    /// Whether the model's tensor `name` is one tensor of the files as it is, so that a few
    /// rows of it can be read at a time.
    fn reads_rows(&self, _name: &str) -> bool {
        true
    }

    /// What a tensor the model did not take means.
    fn unused(&self) -> Unused;
}

/// This project's own files: the model's names as they are, every tensor used.
pub struct OwnLayout;

impl TensorLayout for OwnLayout {
    fn file_name(&self, name: &str) -> String {
        name.to_string()
    }

    fn unused(&self) -> Unused {
        Unused::Error
    }
}

/// A matrix as the files hold it: values (converted to f32), or quantized blocks kept as they
/// are (a GGUF file's quantized tensors, every type).
#[derive(Clone, Debug)]
pub enum HostMatrix {
    /// f32 values.
    F32(Vec<f32>),
    /// Quantized blocks, in the GPU layout.
    Quant(crate::ops::QuantHost),
}

impl HostMatrix {
    /// Its values (quantized blocks dequantized).
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            HostMatrix::F32(v) => v.clone(),
            HostMatrix::Quant(q) => crate::ops::dequantize(q),
        }
    }

    /// Its values, taking them where they are values already.
    pub fn into_f32(self) -> Vec<f32> {
        match self {
            HostMatrix::F32(v) => v,
            HostMatrix::Quant(q) => crate::ops::dequantize(&q),
        }
    }

    /// The rows of `parts` one after another: quantized blocks when all are in one scheme,
    /// else values.
    pub fn concat(parts: Vec<HostMatrix>) -> HostMatrix {
        let scheme = match parts.first() {
            Some(HostMatrix::Quant(q)) => Some(q.scheme),
            _ => None,
        };
        let same = parts
            .iter()
            .all(|p| matches!(p, HostMatrix::Quant(q) if Some(q.scheme) == scheme));
        match (scheme, same) {
            (Some(scheme), true) => {
                let mut out = crate::ops::QuantHost::with_capacity(scheme, 0);
                for p in &parts {
                    if let HostMatrix::Quant(q) = p {
                        out.extend(q);
                    }
                }
                HostMatrix::Quant(out)
            }
            _ => HostMatrix::F32(parts.into_iter().flat_map(HostMatrix::into_f32).collect()),
        }
    }
}

/// The metadata key naming the scheme of a safetensors file written by `latentgpu quantize`.
pub const SCHEME_KEY: &str = "quantization";

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
    /// The header, parsed and validated once.
    header: Header,
}

/// A shard's header: a safetensors file's byte length and tensor table, or a GGUF file's.
enum Header {
    Safetensors(usize, Metadata),
    Gguf(super::gguf::GgufHeader),
}

impl Header {
    /// The names of the tensors it lists.
    fn names(&self) -> Vec<String> {
        match self {
            Header::Safetensors(_, meta) => meta.tensors().into_keys().collect(),
            Header::Gguf(g) => g.tensors.keys().cloned().collect(),
        }
    }

    /// Shape, dtype name, data start in the file and byte length of tensor `name`.
    fn locate(&self, name: &str) -> Option<(Vec<usize>, Stored, usize, usize)> {
        match self {
            Header::Safetensors(header_len, meta) => {
                let info = meta.info(name)?;
                let (start, end) = info.data_offsets;
                let at = 8 + header_len + start;
                // A quantized matrix (`latentgpu quantize`): U8 rows of llama.cpp's blocks, its
                // shape given in weights.
                let scheme = meta
                    .metadata()
                    .as_ref()
                    .and_then(|m| m.get(SCHEME_KEY))
                    .and_then(|s| crate::ops::QuantScheme::from_name(s));
                if let (Some(scheme), Dtype::U8, [rows, row_bytes]) =
                    (scheme, info.dtype, &info.shape[..])
                {
                    let kind = super::gguf::GgmlType::of_scheme(scheme);
                    let (per, size) = kind.block()?;
                    if row_bytes % size == 0 {
                        let shape = vec![*rows, row_bytes / size * per];
                        return Some((shape, Stored::Ggml(kind), at, end - start));
                    }
                }
                Some((
                    info.shape.clone(),
                    Stored::Safetensors(info.dtype),
                    at,
                    end - start,
                ))
            }
            Header::Gguf(g) => {
                let t = g.tensors.get(name)?;
                Some((
                    t.shape.clone(),
                    Stored::Ggml(t.kind),
                    t.start as usize,
                    t.bytes as usize,
                ))
            }
        }
    }
}

/// How a tensor's elements are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stored {
    /// A safetensors dtype.
    Safetensors(Dtype),
    /// llama.cpp's types and blocks (a GGUF file, or a quantized safetensors file).
    Ggml(super::gguf::GgmlType),
}

impl Stored {
    fn name(self) -> String {
        match self {
            Stored::Safetensors(d) => format!("{d:?}"),
            Stored::Ggml(t) => t.name().to_uppercase(),
        }
    }
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
            header: Header::Safetensors(header.0, header.1),
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
            header: Header::Safetensors(n as usize, meta),
        })
    }

    /// A GGUF file in memory; `name` names it in errors.
    fn gguf_bytes(name: String, bytes: Vec<u8>) -> Result<Self> {
        let head = &bytes[..bytes.len().min(super::gguf::MAX_HEADER_BYTES)];
        let header = super::gguf::parse_header(&name, head, bytes.len() as u64)?;
        Ok(Shard {
            name,
            source: Source::Bytes(bytes),
            header: Header::Gguf(header),
        })
    }

    /// Reads the header of the GGUF file at `path`; tensors are read when taken (native).
    #[cfg(not(target_arch = "wasm32"))]
    fn open_gguf(path: &std::path::Path) -> Result<Self> {
        let (file, len, header) = super::gguf::read_header(path)?;
        Ok(Shard {
            name: path.display().to_string(),
            source: Source::File(file, len),
            header: Header::Gguf(header),
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
    /// Its dtype on disk (`F32`, `BF16`, `Q8_0`, ...).
    pub dtype: String,
    /// Bytes on disk.
    pub bytes: u64,
}

/// Open safetensors files whose tensors are taken one by one; `finish` reports any left over.
pub struct WeightFile {
    shards: Vec<Shard>,
    /// Which shard holds each tensor.
    index: BTreeMap<String, usize>,
    taken: BTreeSet<String>,
    /// How the files spell and lay out the model's tensors.
    pub layout: std::sync::Arc<dyn TensorLayout>,
    /// How matrices (the `W` of `x·Wᵀ` products) are kept on the GPU: f32, f16, bf16 or
    /// quantized; `None`: as the files hold them (quantized blocks as they are, float values
    /// in [`WeightFile::values_format`]). Norms, embeddings not tied to the LM head, routers
    /// and latents stay f32.
    pub weights: Option<crate::ops::WeightFormat>,
    /// The most bytes a weight block may hold on the GPU (the adapter's binding limit, or a
    /// forced smaller one): a matrix past it is split into row blocks, and a tensor that cannot
    /// be (one of its rows, or a vector, past it) is an error before it is read.
    pub max_tensor_bytes: Option<u64>,
    /// Forces weights into row blocks of at most this many bytes, below the adapter's limit
    /// (tests split every weight with it; `None`: split only past the adapter's limit).
    pub block_bytes: Option<u64>,
    /// The format float matrices take when none is asked (see [`WeightFile::values_format`]),
    /// found once when the files are opened.
    values: crate::ops::WeightFormat,
}

impl WeightFile {
    /// Maps `path` and checks its header is well formed and its data complete (native).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &std::path::Path) -> Result<Self> {
        Self::from_shards(vec![Shard::open(path)?])
    }

    /// A GGUF file, or all the files of a split model when `path` names one of them
    /// (`*-00001-of-00003.gguf`, as `llama-gguf-split` writes them: each split checked to say
    /// its number and the count) (native); its tensors are named as llama.cpp names them.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open_gguf(path: &std::path::Path) -> Result<Self> {
        let paths = super::gguf::split_paths(path)?;
        let mut shards = Vec::with_capacity(paths.len());
        for (i, p) in paths.iter().enumerate() {
            let shard = Shard::open_gguf(p)?;
            if paths.len() > 1 {
                let Header::Gguf(h) = &shard.header else {
                    unreachable!("a GGUF shard")
                };
                super::gguf::check_split(&shard.name, &h.metadata, i, paths.len())?;
            }
            shards.push(shard);
        }
        Self::from_shards(shards)
    }

    /// A GGUF file already in memory; `name` names it in errors.
    pub fn from_gguf_bytes(name: &str, bytes: Vec<u8>) -> Result<Self> {
        Self::from_shards(vec![Shard::gguf_bytes(name.to_string(), bytes)?])
    }

    /// A GGUF file's metadata (`None` for safetensors files).
    pub fn gguf_metadata(&self) -> Option<&BTreeMap<String, super::gguf::Value>> {
        match &self.shards.first()?.header {
            Header::Gguf(g) => Some(&g.metadata),
            Header::Safetensors(..) => None,
        }
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
            for name in shard.header.names() {
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
        let values = values_format_of(&shards, &index);
        Ok(WeightFile {
            shards,
            index,
            taken: BTreeSet::new(),
            layout: std::sync::Arc::new(OwnLayout),
            weights: None,
            max_tensor_bytes: None,
            block_bytes: None,
            values,
        })
    }

    /// An error about `what` (a tensor of the files, or the files), naming its file.
    pub(crate) fn err(
        &self,
        what: &str,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Error {
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

    /// The files' names, as errors name them.
    pub fn shard_names(&self) -> Vec<String> {
        self.shards.iter().map(|s| s.name.clone()).collect()
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
                let (shape, stored, _, bytes) = self.shards[i].header.locate(name)?;
                Some(TensorInfo {
                    name: name.clone(),
                    shape,
                    dtype: stored.name(),
                    bytes: bytes as u64,
                })
            })
            .collect()
    }

    /// The tensor the model calls `name` (spelled in the files as [`WeightFile::names`] says)
    /// as f32, checked to have `shape`.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        Ok(self.take_matrix(name, shape)?.into_f32())
    }

    /// As [`WeightFile::take`], with quantized blocks kept as they are (a GGUF file's
    /// quantized tensors).
    pub fn take_matrix(&mut self, name: &str, shape: &[usize]) -> Result<HostMatrix> {
        let layout = self.layout.clone();
        layout.take(self, name, shape)
    }

    /// Whether [`WeightFile::take_rows`] can read the tensor the model calls `name` a few rows
    /// at a time (the layout's [`TensorLayout::reads_rows`]; else it is read whole).
    pub fn reads_rows(&self, name: &str) -> bool {
        self.layout.reads_rows(name)
    }

    /// Rows `rows` of the matrix the model calls `name`, checked to have `shape`, as
    /// [`WeightFile::take_matrix`] gives the whole: only their bytes are read. An error for a
    /// tensor that must be read whole ([`WeightFile::reads_rows`]).
    pub fn take_rows(
        &mut self,
        name: &str,
        shape: &[usize],
        rows: std::ops::Range<usize>,
    ) -> Result<HostMatrix> {
        if !self.reads_rows(name) {
            return Err(self.err(name, "a tensor read by rows", "one read whole"));
        }
        let name = self.layout.file_name(name);
        self.read_rows(&name, shape, None, Some(rows))
    }

    /// Checks the matrix the model calls `name` as [`WeightFile::take_rows`] does (its shape,
    /// and that a row fits one binding), reading none of it: before its buffers are made.
    pub fn check_rows(&mut self, name: &str, shape: &[usize]) -> Result<()> {
        self.take_rows(name, shape, 0..0).map(drop)
    }

    /// The format float matrices take when none is asked ("as the files hold them"): f16 or
    /// bf16 where every matrix the files hold as values is in it (a checkpoint published in
    /// bf16, an F16 GGUF file), else f32. Quantized matrices and vectors do not count.
    pub fn values_format(&self) -> crate::ops::WeightFormat {
        self.values
    }

    /// The quantized scheme the files hold the tensor the model calls `name` in (GGUF or
    /// `latentgpu quantize` blocks), or `None` for values (or a tensor not found: reading it
    /// says so).
    pub fn stored_scheme(&self, name: &str) -> Option<crate::ops::QuantScheme> {
        let name = self.layout.file_name(name);
        let &i = self.index.get(&name)?;
        match self.shards[i].header.locate(&name)?.1 {
            Stored::Ggml(kind) => kind.scheme(),
            Stored::Safetensors(_) => None,
        }
    }

    /// Reads the tensor the files call `name`, checked to be `shape`, or with `expert`, that
    /// slice of a tensor `[experts, shape..]` (GGUF's stacked routed experts).
    pub fn read_tensor(
        &mut self,
        name: &str,
        shape: &[usize],
        expert: Option<usize>,
    ) -> Result<HostMatrix> {
        self.read_rows(name, shape, expert, None)
    }

    /// As [`WeightFile::read_tensor`], only rows `rows` of it (outermost dimension) when given:
    /// just their bytes are read (a family takes one matrix of a fused stack so).
    pub fn read_rows(
        &mut self,
        name: &str,
        shape: &[usize],
        expert: Option<usize>,
        rows: Option<std::ops::Range<usize>>,
    ) -> Result<HostMatrix> {
        let missing = || {
            self.err(
                name,
                format!("a tensor of shape {shape:?}"),
                "no such tensor",
            )
        };
        let shard_index = *self.index.get(name).ok_or_else(missing)?;
        let (found_shape, stored, mut at, mut len) = self.shards[shard_index]
            .header
            .locate(name)
            .ok_or_else(missing)?;
        let found_slice = match expert {
            None => &found_shape[..],
            Some(_) => found_shape.get(1..).unwrap_or_default(),
        };
        if found_slice != shape {
            let expected = match expert {
                None => format!("shape {shape:?}"),
                Some(_) => format!(
                    "shape [experts, {}]",
                    shape
                        .iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            return Err(self.err(name, expected, format!("shape {found_shape:?}")));
        }
        if let Some(j) = expert {
            let experts = found_shape[0];
            if j >= experts {
                return Err(self.err(
                    name,
                    format!("expert {j} (of the config's experts)"),
                    format!("{experts} experts, shape {found_shape:?}"),
                ));
            }
            // Whole experts of whole rows: quantized blocks never straddle two.
            len /= experts;
            at += j * len;
        }
        if let Some(limit) = self.max_tensor_bytes {
            // Checked before the tensor is read and converted on the host: a matrix is split
            // between rows, so its rows must fit; a vector must fit whole.
            // Quantized codes are at most a byte a weight (their scales are a separate tensor).
            let element = match self.weights {
                Some(crate::ops::WeightFormat::F32) | None => 4,
                Some(crate::ops::WeightFormat::F16 | crate::ops::WeightFormat::BF16) => 2,
                Some(crate::ops::WeightFormat::Quant(_)) => 1,
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
        // Row elements before the piece read (to name a bad value's index in the tensor).
        let mut skipped = 0;
        if let Some(rows) = rows {
            let total = shape.first().copied().unwrap_or(1).max(1);
            if rows.start > rows.end || rows.end > total {
                return Err(self.err(
                    name,
                    format!("rows within 0..{total}"),
                    format!("rows {rows:?}"),
                ));
            }
            // Whole rows of whole blocks (a quantized row is whole blocks): bytes per row exact.
            let row_bytes = len / total;
            at += rows.start * row_bytes;
            len = rows.len() * row_bytes;
            skipped = rows.start * shape.iter().skip(1).product::<usize>();
        }
        // The header was checked against the file's length when it was opened.
        let data = self.shards[shard_index].read(at, len)?.into_owned();
        let unsupported = |what: String| match stored {
            Stored::Safetensors(_) => self.err(name, "dtype F32, F16 or BF16", what),
            Stored::Ggml(_) => self.err(
                name,
                format!("type {}", super::gguf::GgmlType::supported_names()),
                what,
            ),
        };
        let matrix = match stored {
            Stored::Safetensors(dtype) => HostMatrix::F32(match dtype {
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
                other => return Err(unsupported(format!("dtype {other:?}"))),
            }),
            Stored::Ggml(kind) => match kind.scheme() {
                Some(_) => HostMatrix::Quant(
                    super::gguf::to_quant(kind, &data).ok_or_else(|| unsupported(kind.name()))?,
                ),
                None => HostMatrix::F32(
                    super::gguf::to_f32(kind, &data).ok_or_else(|| unsupported(kind.name()))?,
                ),
            },
        };
        let finite = match &matrix {
            HostMatrix::F32(v) => v.iter().position(|v| !v.is_finite()).map(|i| (i, v[i])),
            HostMatrix::Quant(q) => q
                .scales
                .iter()
                .chain(&q.mins)
                .position(|v| !v.is_finite())
                .map(|i| (i, f32::NAN)),
        };
        if let Some((i, v)) = finite {
            let i = match &matrix {
                HostMatrix::F32(_) => skipped + i,
                // An index among the blocks' scales (and minimums).
                HostMatrix::Quant(_) => skipped / crate::ops::QUANT_BLOCK + i,
            };
            return Err(self.err(name, "finite values", format!("{v} at index {i}")));
        }
        self.taken.insert(name.to_string());
        Ok(matrix)
    }

    /// The bytes of the tensor the files call `name`, and how they are stored (safetensors
    /// files: `latentgpu quantize` copies the tensors it keeps).
    pub fn raw(&mut self, name: &str) -> Result<(Dtype, Vec<u8>)> {
        let missing = || self.err(name, "a tensor", "no such tensor");
        let shard_index = *self.index.get(name).ok_or_else(missing)?;
        let Header::Safetensors(header_len, meta) = &self.shards[shard_index].header else {
            return Err(self.err(name, "a safetensors tensor", "a GGUF one"));
        };
        let info = meta.info(name).ok_or_else(missing)?;
        let (dtype, (start, end)) = (info.dtype, info.data_offsets);
        let at = 8 + header_len + start;
        let data = self.shards[shard_index].read(at, end - start)?.into_owned();
        Ok((dtype, data))
    }

    /// Whether the files hold the tensor the model calls `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(&self.layout.file_name(name))
    }

    /// Whether the files hold a tensor they call `name`.
    pub fn holds(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The shape of the tensor the files call `name`, if they hold it.
    pub fn shape_of(&self, name: &str) -> Option<Vec<usize>> {
        let &i = self.index.get(name)?;
        Some(self.shards[i].header.locate(name)?.0)
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

/// [`WeightFile::values_format`] of the tensors `index` names in `shards`.
fn values_format_of(shards: &[Shard], index: &BTreeMap<String, usize>) -> crate::ops::WeightFormat {
    use crate::ops::WeightFormat;
    let mut seen = None;
    for (name, &i) in index {
        let Some((shape, stored, ..)) = shards[i].header.locate(name) else {
            continue;
        };
        if shape.len() < 2 {
            continue;
        }
        let format = match stored {
            Stored::Safetensors(Dtype::F16) => WeightFormat::F16,
            Stored::Safetensors(Dtype::BF16) => WeightFormat::BF16,
            Stored::Ggml(kind) if kind.scheme().is_some() => continue,
            Stored::Ggml(kind) if kind.name().eq_ignore_ascii_case("f16") => WeightFormat::F16,
            Stored::Ggml(kind) if kind.name().eq_ignore_ascii_case("bf16") => WeightFormat::BF16,
            _ => return WeightFormat::F32,
        };
        if seen.is_some_and(|s| s != format) {
            return WeightFormat::F32;
        }
        seen = Some(format);
    }
    seen.unwrap_or(WeightFormat::F32)
}
