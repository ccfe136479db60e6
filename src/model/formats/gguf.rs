//! GGUF files, the format llama.cpp's tools write: a header of typed key-value metadata and a
//! tensor table, then the tensors' data, each aligned. This reads the header (checking every
//! count, length and offset against the file's size before allocating anything for it), maps a
//! Llama/Mistral/Qwen2/Qwen3 file's metadata to a Hugging Face style config, and decodes the
//! tensor types the model runs: f32, f16, bf16, q8_0, q4_0 and q4_1 (the quantized blocks kept
//! as they are, deinterleaved into the GPU layout of `ops::quant`).
//!
//! The crates that read GGUF are small single-author projects; this reader is short, and it
//! treats the file as untrusted input.

use crate::error::{Error, Result};
use crate::ops::{QuantHost, QuantScheme};
use std::collections::BTreeMap;

/// The file's first four bytes.
const MAGIC: &[u8; 4] = b"GGUF";
/// The alignment of tensor data when `general.alignment` does not say.
const DEFAULT_ALIGNMENT: u64 = 32;

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Any unsigned integer type.
    Uint(u64),
    /// Any signed integer type.
    Int(i64),
    /// f32 or f64.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A UTF-8 string.
    Str(String),
    /// An array of values of one type.
    Array(Vec<Value>),
}

impl Value {
    /// The value as an unsigned integer, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Uint(v) => Some(v),
            Value::Int(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float, if it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Float(v) => Some(v),
            Value::Uint(v) => Some(v as f64),
            Value::Int(v) => Some(v as f64),
            _ => None,
        }
    }

    /// The value as a string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// A tensor type of the GGML library, by its number in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GgmlType {
    /// 32-bit floats.
    F32,
    /// 16-bit floats.
    F16,
    /// bfloat16.
    Bf16,
    /// Blocks of a quantized format (q8_0 … q6_K).
    Quant(QuantScheme),
    /// A type this reader does not decode (named in errors).
    Other(u32),
}

/// llama.cpp's type numbers of the quantized formats (`enum ggml_type`).
const QUANT_IDS: [(u32, QuantScheme); 10] = [
    (8, QuantScheme::Q8_0),
    (2, QuantScheme::Q4_0),
    (3, QuantScheme::Q4_1),
    (6, QuantScheme::Q5_0),
    (7, QuantScheme::Q5_1),
    (10, QuantScheme::Q2K),
    (11, QuantScheme::Q3K),
    (12, QuantScheme::Q4K),
    (13, QuantScheme::Q5K),
    (14, QuantScheme::Q6K),
];

impl GgmlType {
    fn from_id(id: u32) -> Self {
        match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            30 => GgmlType::Bf16,
            other => QUANT_IDS
                .iter()
                .find(|(i, _)| *i == other)
                .map_or(GgmlType::Other(other), |(_, s)| GgmlType::Quant(*s)),
        }
    }

    /// llama.cpp's number for the type.
    fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Bf16 => 30,
            GgmlType::Quant(s) => QUANT_IDS
                .iter()
                .find(|(_, q)| *q == s)
                .map_or(u32::MAX, |(i, _)| *i),
            GgmlType::Other(id) => id,
        }
    }

    /// llama.cpp's name for the type.
    pub fn name(self) -> String {
        const NAMES: &[&str] = &[
            "f32",
            "f16",
            "q4_0",
            "q4_1",
            "q4_2",
            "q4_3",
            "q5_0",
            "q5_1",
            "q8_0",
            "q8_1",
            "q2_K",
            "q3_K",
            "q4_K",
            "q5_K",
            "q6_K",
            "q8_K",
            "iq2_xxs",
            "iq2_xs",
            "iq3_xxs",
            "iq1_s",
            "iq4_nl",
            "iq3_s",
            "iq2_s",
            "iq4_xs",
            "i8",
            "i16",
            "i32",
            "i64",
            "f64",
            "iq1_m",
            "bf16",
            "q4_0_4_4",
            "q4_0_4_8",
            "q4_0_8_8",
            "tq1_0",
            "tq2_0",
            "iq4_nl_4_4",
            "iq4_nl_4_8",
            "iq4_nl_8_8",
            "mxfp4",
        ];
        let id = self.id();
        NAMES
            .get(id as usize)
            .map_or(format!("type {id}"), |n| n.to_string())
    }

    /// The types this reader decodes, by name, for errors about the others.
    pub fn supported_names() -> String {
        let mut names = vec!["f32", "f16", "bf16"];
        names.extend(QuantScheme::ALL.iter().map(|s| s.name()));
        names.join(", ")
    }

    /// `(weights per block, bytes per block)` of the types this reader decodes.
    pub(crate) fn block(self) -> Option<(usize, usize)> {
        match self {
            GgmlType::F32 => Some((1, 4)),
            GgmlType::F16 | GgmlType::Bf16 => Some((1, 2)),
            GgmlType::Quant(s) => Some(s.file_block()),
            GgmlType::Other(_) => None,
        }
    }

    /// The type whose blocks are `scheme`'s.
    pub fn of_scheme(scheme: QuantScheme) -> Self {
        GgmlType::Quant(scheme)
    }

    /// The quantized scheme it is, if it is one.
    pub fn scheme(self) -> Option<QuantScheme> {
        match self {
            GgmlType::Quant(s) => Some(s),
            _ => None,
        }
    }
}

/// One tensor of the table.
#[derive(Clone, Debug)]
pub struct GgufTensor {
    /// The shape, outermost first (GGUF lists dimensions innermost first).
    pub shape: Vec<usize>,
    /// Its type.
    pub kind: GgmlType,
    /// Offset of its data from the start of the file.
    pub start: u64,
    /// Bytes of data (0 for a type this reader does not decode).
    pub bytes: u64,
}

/// A GGUF file's header: metadata and tensor table.
#[derive(Clone, Debug)]
pub struct GgufHeader {
    /// The metadata, by key.
    pub metadata: BTreeMap<String, Value>,
    /// The tensors, by name.
    pub tensors: BTreeMap<String, GgufTensor>,
}

/// Reads a header from `bytes` (the start of the file, at least the whole header) of a file of
/// `file_len` bytes named `file`.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    file: &'a str,
}

impl Reader<'_> {
    fn bad(&self, expected: &str, found: String) -> Error {
        Error::Weights {
            file: self.file.to_string(),
            what: format!("GGUF header at byte {}", self.at),
            expected: expected.to_string(),
            found,
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(self.bad(
                &format!("{n} more bytes"),
                format!("{} left in the file", self.bytes.len() - self.at),
            ));
        };
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// A count of items of at least `min_bytes` each, checked against what is left.
    fn count(&mut self, what: &str, min_bytes: usize) -> Result<usize> {
        let n = self.u64()?;
        let left = (self.bytes.len() - self.at) as u64;
        if n.checked_mul(min_bytes as u64).is_none_or(|b| b > left) {
            return Err(self.bad(
                &format!("a {what} count that fits the {left} bytes left"),
                n.to_string(),
            ));
        }
        Ok(n as usize)
    }

    fn string(&mut self) -> Result<String> {
        let n = self.count("string length", 1)?;
        let b = self.take(n)?.to_vec();
        String::from_utf8(b).map_err(|e| self.bad("a UTF-8 string", e.to_string()))
    }

    fn value(&mut self, kind: u32, depth: usize) -> Result<Value> {
        let mut num = |n: usize| -> Result<u64> {
            let b = self.take(n)?;
            let mut w = [0u8; 8];
            w[..n].copy_from_slice(b);
            Ok(u64::from_le_bytes(w))
        };
        Ok(match kind {
            0 => Value::Uint(num(1)?),
            1 => Value::Int(num(1)? as u8 as i8 as i64),
            2 => Value::Uint(num(2)?),
            3 => Value::Int(num(2)? as u16 as i16 as i64),
            4 => Value::Uint(num(4)?),
            5 => Value::Int(num(4)? as u32 as i32 as i64),
            6 => Value::Float(f32::from_bits(num(4)? as u32) as f64),
            7 => Value::Bool(num(1)? != 0),
            8 => Value::Str(self.string()?),
            9 if depth == 0 => {
                let inner = self.u32()?;
                let n = self.count("array length", 1)?;
                if n > MAX_ARRAY_ITEMS {
                    return Err(self.bad(
                        &format!(
                            "a metadata array of at most {MAX_ARRAY_ITEMS} items (the largest \
                             vocabularies are a tenth of that)"
                        ),
                        format!("{n} items"),
                    ));
                }
                let mut items = Vec::with_capacity(n.min(1 << 16));
                for _ in 0..n {
                    items.push(self.value(inner, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::Uint(num(8)?),
            11 => Value::Int(num(8)? as i64),
            12 => Value::Float(f64::from_bits(num(8)?)),
            other => {
                return Err(self.bad(
                    "a metadata type 0..=12 (arrays not nested)",
                    other.to_string(),
                ))
            }
        })
    }
}

/// Items a metadata array may hold: 16 times the largest vocabularies (262,144 tokens), so that
/// a file cannot make the reader hold gigabytes for one array (each item is a [`Value`]).
pub const MAX_ARRAY_ITEMS: usize = 1 << 22;

/// How many bytes of a file's start hold its header at most: the header is read from this
/// much (or the whole file when shorter).
pub const MAX_HEADER_BYTES: usize = 256 << 20;

/// The GGUF file at `path` opened, its length, and its header read from its first bytes and
/// parsed (native). The first 16 MiB are read, then four times more while the header does not
/// parse and the file and [`MAX_HEADER_BYTES`] allow: a header is a few MiB (the vocabulary),
/// so a load does not hold a quarter of a GiB, or a small file whole, to read it.
#[cfg(not(target_arch = "wasm32"))]
pub fn read_header(path: &std::path::Path) -> Result<(std::fs::File, u64, GgufHeader)> {
    use std::io::Read;
    let file = crate::files::open_regular(path)?;
    let len = file
        .metadata()
        .map_err(|e| crate::Error::io(path, e))?
        .len();
    let cap = (MAX_HEADER_BYTES as u64).min(len);
    let name = path.display().to_string();
    let mut head = Vec::new();
    let mut want = (16u64 << 20).min(cap);
    loop {
        let asked = want - head.len() as u64;
        let got = (&file)
            .take(asked)
            .read_to_end(&mut head)
            .map_err(|e| crate::Error::io(path, e))?;
        // A read that ends early (a file that shrank while read, or one whose size is not its
        // length, as under /sys) reads no further: parsed as it is, never read again.
        let short = (got as u64) < asked;
        match parse_header(&name, &head, len) {
            Ok(header) => return Ok((file, len, header)),
            Err(e) if short => {
                return Err(Error::Weights {
                    file: name,
                    what: "the file's bytes".into(),
                    expected: format!("{len} bytes (its size) or a whole header in fewer"),
                    found: format!("reading ended at byte {}: {e}", head.len()),
                })
            }
            Err(_) if (head.len() as u64) < cap => want = (want * 4).min(cap),
            Err(e) => return Err(e),
        }
    }
}

/// Parses the header of the GGUF file `file` of `file_len` bytes from its first bytes `head`
/// (at most [`MAX_HEADER_BYTES`]): metadata, tensor table, and each tensor's place, checked to
/// lie in the file.
pub fn parse_header(file: &str, head: &[u8], file_len: u64) -> Result<GgufHeader> {
    let mut r = Reader {
        bytes: head,
        at: 0,
        file,
    };
    let magic = r.take(4)?.to_vec();
    if magic != MAGIC {
        return Err(r.bad("the GGUF magic 'GGUF'", format!("{magic:?}")));
    }
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(r.bad("GGUF version 2 or 3", version.to_string()));
    }
    let n_tensors = r.count("tensor", 24)?;
    let n_kv = r.count("metadata", 12)?;
    let mut metadata = BTreeMap::new();
    for _ in 0..n_kv {
        let key = r.string()?;
        let kind = r.u32()?;
        let value = r.value(kind, 0)?;
        // A second value for a key would silently win (a second block_count running 1 of 30
        // blocks): refused.
        if metadata.contains_key(&key) {
            return Err(r.bad("metadata keys used once", format!("'{key}' twice")));
        }
        metadata.insert(key, value);
    }
    let mut table = Vec::with_capacity(n_tensors);
    for _ in 0..n_tensors {
        let name = r.string()?;
        let n_dims = r.u32()?;
        if n_dims == 0 || n_dims > 4 {
            return Err(r.bad("1 to 4 dimensions", format!("{n_dims} for '{name}'")));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(r.u64()?);
        }
        let kind = GgmlType::from_id(r.u32()?);
        let offset = r.u64()?;
        table.push((name, dims, kind, offset));
    }
    let alignment = match metadata.get("general.alignment") {
        Some(v) => v
            .as_u64()
            .filter(|a| a.is_power_of_two())
            .ok_or_else(|| r.bad("general.alignment a power of two", format!("{v:?}")))?,
        None => DEFAULT_ALIGNMENT,
    };
    let data_start = (r.at as u64).div_ceil(alignment) * alignment;
    let mut tensors = BTreeMap::new();
    for (name, dims, kind, offset) in table {
        let numel = dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let bytes = match (numel, kind.block()) {
            (Some(n), Some((per, size))) => {
                if n % per as u64 != 0 || dims[0] % per as u64 != 0 {
                    return Err(r.bad(
                        &format!("rows of whole {}-weight blocks for {}", per, kind.name()),
                        format!("'{name}' with dimensions {dims:?}"),
                    ));
                }
                n / per as u64 * size as u64
            }
            (Some(_), None) => 0,
            (None, _) => return Err(r.bad("dimensions below 2^64", format!("{dims:?}"))),
        };
        let start = data_start.checked_add(offset);
        let end = start.and_then(|s| s.checked_add(bytes));
        if offset % alignment != 0 || end.is_none_or(|e| e > file_len) {
            return Err(Error::Weights {
                file: file.to_string(),
                what: name,
                expected: format!("{bytes} bytes of data, aligned, within the file's {file_len}"),
                found: format!("offset {offset} from the data at {data_start}"),
            });
        }
        let shape: Vec<usize> = dims.iter().rev().map(|&d| d as usize).collect();
        let tensor = GgufTensor {
            shape,
            kind,
            start: start.unwrap_or(0),
            bytes,
        };
        if tensors.insert(name.clone(), tensor).is_some() {
            return Err(r.bad("tensor names used once", format!("'{name}' twice")));
        }
    }
    Ok(GgufHeader { metadata, tensors })
}

/// The files of the model `path` names: itself, or for one file of a split model
/// (`NAME-00002-of-00003.gguf`) every file of it, first to last, each checked to exist (native).
#[cfg(not(target_arch = "wasm32"))]
pub fn split_paths(path: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(vec![path.to_path_buf()]);
    };
    // NAME-NNNNN-of-MMMMM.gguf
    let split = name
        .strip_suffix(".gguf")
        .and_then(|stem| stem.rsplit_once("-of-"))
        .and_then(|(head, count)| Some((head.rsplit_once('-')?, count)))
        .filter(|((_, no), count)| {
            no.len() == 5
                && count.len() == 5
                && no.bytes().chain(count.bytes()).all(|b| b.is_ascii_digit())
        });
    let Some(((prefix, _), count)) = split else {
        return Ok(vec![path.to_path_buf()]);
    };
    let count: usize = count.parse().unwrap_or(0);
    if count == 0 {
        return Err(Error::Weights {
            file: path.display().to_string(),
            what: "its name".into(),
            expected: "a split of at least one file (-of-00001 or more)".into(),
            found: name.into(),
        });
    }
    let paths: Vec<_> = (1..=count)
        .map(|i| path.with_file_name(format!("{prefix}-{i:05}-of-{count:05}.gguf")))
        .collect();
    if let Some(missing) = paths.iter().find(|p| !p.exists()) {
        return Err(Error::Weights {
            file: path.display().to_string(),
            what: "the files of its split".into(),
            expected: format!("{count} files, {prefix}-00001-of-{count:05}.gguf on"),
            found: format!("no {}", missing.display()),
        });
    }
    Ok(paths)
}

/// The metadata of the GGUF model at `path`: its first file's, for a split model (native).
#[cfg(not(target_arch = "wasm32"))]
pub fn metadata_of(path: &std::path::Path) -> Result<BTreeMap<String, Value>> {
    let first = split_paths(path)?.remove(0);
    Ok(read_header(&first)?.2.metadata)
}

/// Checks that split `i` (from 0) of `count` says so in its metadata (`split.no`,
/// `split.count`, as `llama-gguf-split` writes them).
pub fn check_split(
    file: &str,
    meta: &BTreeMap<String, Value>,
    i: usize,
    count: usize,
) -> Result<()> {
    let get = |key: &str| meta.get(key).and_then(Value::as_u64).map(|v| v as usize);
    match (get("split.no"), get("split.count")) {
        (Some(no), Some(n)) if no == i && n == count => Ok(()),
        found => Err(Error::Weights {
            file: file.to_string(),
            what: "split.no and split.count".into(),
            expected: format!("split {i} of {count}, as its name says"),
            found: format!("{found:?}"),
        }),
    }
}

/// The tokens a GGUF file's metadata says generation ends at: `tokenizer.ggml.eos_token_id`
/// and, where it names them, the end-of-turn and end-of-message tokens (`eot_token_id`,
/// `eom_token_id`), in that order, each once.
pub fn stop_token_ids(meta: &BTreeMap<String, Value>) -> Vec<u32> {
    let mut ids = Vec::new();
    for key in ["eos", "eot", "eom"] {
        let id = meta
            .get(&format!("tokenizer.ggml.{key}_token_id"))
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok());
        if let Some(id) = id.filter(|id| !ids.contains(id)) {
            ids.push(id);
        }
    }
    ids
}

/// The values of a tensor's `data` of type `kind` as f32 (quantized blocks dequantized as the
/// kernels do).
pub fn to_f32(kind: GgmlType, data: &[u8]) -> Option<Vec<f32>> {
    Some(match kind {
        GgmlType::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        GgmlType::F16 => data
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        GgmlType::Bf16 => data
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        _ => crate::ops::dequantize(&to_quant(kind, data)?),
    })
}

/// A quantized tensor's blocks in the chunks the kernels read (see `ops::quant`); `None` for
/// other types or data that is not whole blocks.
pub fn to_quant(kind: GgmlType, data: &[u8]) -> Option<QuantHost> {
    crate::ops::quant::from_ggml_blocks(kind.scheme()?, data)
}
