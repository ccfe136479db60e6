//! Block-quantized weights in every format a llama.cpp `Q2_K`…`Q8_0` file holds, and the one
//! form the kernels read them in.
//!
//! Every format dequantizes, chunk of 32 weights by chunk, to `w = d · (q - offset) + m`: an
//! unsigned (q8_0: signed) integer code `q`, and a scale `d` and minimum `m` per half of 16
//! weights (the same for both halves where the format's sub-blocks are 32 wide). For the
//! K-quants `d` and `m` are the super-block's f16 scale times a sub-block's small integer scale,
//! a product that is exact in f32, and so is `d · (q - offset)`: `fma(d, q - offset, m)` gives
//! the value of llama.cpp's and gguf-py's dequantization, bit for bit.
//!
//! On the host (`QuantHost`) a matrix `[N, K]` is its chunks in row order: the codes,
//! [`QuantScheme::words_per_block`] u32 per chunk, the scales and (formats with a minimum) the
//! minimums, [`QuantScheme::halves`] f32 per chunk each. A chunk's codes are packed in planes
//! (what `prelude/quant_formats.wgsl` decodes):
//!
//! | code bits | words | planes (weight `i` of the chunk) |
//! |---|---|---|
//! | 8 (q8_0) | 8 | signed byte `i % 4` of word `i / 4` |
//! | 4 | 4 | nibbles: byte `i % 16` (word `i % 16 / 4`), low nibble for `i < 16`, high for the rest |
//! | 5 | 5 | the nibbles, then bit `i` of word 4 for bit 4 |
//! | 6 | 6 | the nibbles, then bits `2(i % 16)` of word `4 + i / 16` for bits 4 and 5 |
//! | 3 | 3 | bits `2(i % 16)` of word `i / 16` for bits 0 and 1, bit `i` of word 2 for bit 2 |
//! | 2 | 2 | bits `2(i % 16)` of word `i / 16` |
//!
//! On the GPU a chunk is read as one record: its code words, then its scales and minimums. The
//! formats whose block is a chunk (q8_0, q4_0, q4_1, q5_0, q5_1) store the record as it is,
//! scales and minimums as f32 bits. The K-quants keep their super-block's scales packed as the
//! file does: a group of 8 chunks (one super-block) is a header of
//! [`QuantScheme::header_words`] u32 (the f16 scale and minimum scale, and the sub-blocks' small
//! integer scales) then the 8 chunks' code words, and the kernel makes a chunk's f32 scales
//! from the header (`d · sc`, exact) as it reads the chunk: q4_K and q5_K take 0.5625 and 0.6875
//! bytes per weight on the GPU, as in the file (q6_K 0.875, the file 0.82: its header is padded
//! to whole vec4s, which saves the decode a load per chunk). Groups lie in tiles of 32 rows
//! (`quant_weight.rs`). The files' blocks are repacked into this form as they are read
//! (`ggml.rs`); the host never expands a matrix to f32 values.
//!
//! A header (chunk `j` of its group reads sub-block `j`, or `2j` and `2j + 1`):
//!
//! | formats | words | word 0 | words 1… |
//! |---|---|---|---|
//! | q4_K, q5_K | 4 | `d` and `dmin` (f16 bits, low and high) | byte `j` of words 1–2: the 6-bit scale, and bits 4–5 of the 6-bit minimum in its top bits; nibble `j` of word 3: bits 0–3 of the minimum |
//! | q2_K | 8 | `d` and `dmin` | byte `i` of words 1–4: sub-block `i`'s scale (low nibble) and minimum (high); words 5–7 zero |
//! | q3_K, q6_K | 8 | `d` | byte `i` of words 1–4: sub-block `i`'s signed scale (q3_K's less its 32); words 5–7 zero |

mod ggml;
mod quantize;

pub use ggml::{from_ggml_blocks, to_ggml_blocks};
pub use quantize::quantize;

/// Weights per chunk: a scale (or two) and the codes the kernels decode at once.
pub const QUANT_BLOCK: usize = 32;

/// A block-quantized format, as llama.cpp names and lays out its blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuantScheme {
    /// 8-bit: `d · q`.
    Q8_0,
    /// 4-bit with a scale: `d · (q - 8)`.
    Q4_0,
    /// 4-bit with a scale and a minimum: `d · q + m`.
    Q4_1,
    /// 5-bit with a scale: `d · (q - 16)`.
    Q5_0,
    /// 5-bit with a scale and a minimum: `d · q + m`.
    Q5_1,
    /// Super-blocks of 256, sub-blocks of 16 with 4-bit scales and minimums, 2-bit codes.
    Q2K,
    /// Super-blocks of 256, sub-blocks of 16 with 6-bit signed scales, 3-bit codes less 4.
    Q3K,
    /// Super-blocks of 256, sub-blocks of 32 with 6-bit scales and minimums, 4-bit codes.
    Q4K,
    /// Super-blocks of 256, sub-blocks of 32 with 6-bit scales and minimums, 5-bit codes.
    Q5K,
    /// Super-blocks of 256, sub-blocks of 16 with 8-bit signed scales, 6-bit codes less 32.
    Q6K,
}

impl QuantScheme {
    /// Every format.
    pub const ALL: [QuantScheme; 10] = [
        QuantScheme::Q8_0,
        QuantScheme::Q4_0,
        QuantScheme::Q4_1,
        QuantScheme::Q5_0,
        QuantScheme::Q5_1,
        QuantScheme::Q2K,
        QuantScheme::Q3K,
        QuantScheme::Q4K,
        QuantScheme::Q5K,
        QuantScheme::Q6K,
    ];

    /// llama.cpp's name: `q8_0`, `q4_0`, `q4_1`, `q5_0`, `q5_1`, `q2_K` … `q6_K`.
    pub fn name(self) -> &'static str {
        match self {
            QuantScheme::Q8_0 => "q8_0",
            QuantScheme::Q4_0 => "q4_0",
            QuantScheme::Q4_1 => "q4_1",
            QuantScheme::Q5_0 => "q5_0",
            QuantScheme::Q5_1 => "q5_1",
            QuantScheme::Q2K => "q2_K",
            QuantScheme::Q3K => "q3_K",
            QuantScheme::Q4K => "q4_K",
            QuantScheme::Q5K => "q5_K",
            QuantScheme::Q6K => "q6_K",
        }
    }

    /// The scheme llama.cpp calls `name` (any case).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
    }

    /// `(weights, bytes)` of one of the file's blocks (llama.cpp's `ggml_type_traits`).
    pub fn file_block(self) -> (usize, usize) {
        match self {
            QuantScheme::Q8_0 => (32, 34),
            QuantScheme::Q4_0 => (32, 18),
            QuantScheme::Q4_1 => (32, 20),
            QuantScheme::Q5_0 => (32, 22),
            QuantScheme::Q5_1 => (32, 24),
            QuantScheme::Q2K => (256, 84),
            QuantScheme::Q3K => (256, 110),
            QuantScheme::Q4K => (256, 144),
            QuantScheme::Q5K => (256, 176),
            QuantScheme::Q6K => (256, 210),
        }
    }

    /// What a row's length must be a multiple of: the file's block.
    pub fn row_multiple(self) -> usize {
        self.file_block().0
    }

    /// Bits of a code.
    pub fn code_bits(self) -> u32 {
        match self {
            QuantScheme::Q8_0 => 8,
            QuantScheme::Q4_0 | QuantScheme::Q4_1 | QuantScheme::Q4K => 4,
            QuantScheme::Q5_0 | QuantScheme::Q5_1 | QuantScheme::Q5K => 5,
            QuantScheme::Q6K => 6,
            QuantScheme::Q3K => 3,
            QuantScheme::Q2K => 2,
        }
    }

    /// What is subtracted from a code before its scale: 8 (q4_0), 16 (q5_0), 32 (q6_K),
    /// 4 (q3_K), else 0.
    pub fn offset(self) -> i32 {
        match self {
            QuantScheme::Q4_0 => 8,
            QuantScheme::Q5_0 => 16,
            QuantScheme::Q6K => 32,
            QuantScheme::Q3K => 4,
            _ => 0,
        }
    }

    /// u32 words of codes per chunk of 32 weights.
    pub fn words_per_block(self) -> usize {
        self.code_bits() as usize
    }

    /// Scales per chunk: 2 where the format's sub-blocks are 16 weights, else 1.
    pub fn halves(self) -> usize {
        match self {
            QuantScheme::Q2K | QuantScheme::Q3K | QuantScheme::Q6K => 2,
            _ => 1,
        }
    }

    /// Whether chunks carry a minimum.
    pub fn has_min(self) -> bool {
        matches!(
            self,
            QuantScheme::Q4_1
                | QuantScheme::Q5_1
                | QuantScheme::Q2K
                | QuantScheme::Q4K
                | QuantScheme::Q5K
        )
    }

    /// Whether [`quantize`] writes it (the others load from files only).
    pub fn quantizable(self) -> bool {
        matches!(
            self,
            QuantScheme::Q8_0 | QuantScheme::Q4_0 | QuantScheme::Q4_1
        )
    }

    /// u32 words of a chunk's record as the kernels decode it: its codes, scales and minimums.
    pub fn record_words(self) -> usize {
        self.words_per_block() + self.halves() * (1 + self.has_min() as usize)
    }

    /// u32 words of a super-block's header on the GPU (the module doc; q2_K's, q3_K's and
    /// q6_K's 5 padded to 8, so that every group and code plane starts on a vec4 or half of
    /// one), 0 for the formats whose chunk is their block.
    pub fn header_words(self) -> usize {
        match self {
            QuantScheme::Q4K | QuantScheme::Q5K => 4,
            QuantScheme::Q2K | QuantScheme::Q3K | QuantScheme::Q6K => 8,
            _ => 0,
        }
    }

    /// Chunks stored as one group on the GPU: a super-block's 8, or 1.
    pub fn group_chunks(self) -> usize {
        match self.header_words() {
            0 => 1,
            _ => 8,
        }
    }

    /// u32 words of a group on the GPU: a header and its chunks' codes, or one record.
    pub fn group_words(self) -> usize {
        match self.header_words() {
            0 => self.record_words(),
            h => h + self.group_chunks() * self.words_per_block(),
        }
    }

    /// Bytes on the GPU of `weights` weights (whole groups).
    pub fn gpu_bytes(self, weights: usize) -> u64 {
        (weights / (QUANT_BLOCK * self.group_chunks()) * 4 * self.group_words()) as u64
    }

    /// The pipeline constants that select the format in `prelude/quant_formats.wgsl`.
    pub(crate) fn constants(self) -> [(&'static str, f64); 5] {
        [
            ("WORDS", self.words_per_block() as f64),
            ("HALVES", self.halves() as f64),
            ("HAS_MIN", self.has_min() as u32 as f64),
            ("OFFSET", self.offset() as f64),
            ("HEADER", self.header_words() as f64),
        ]
    }

    /// The groups' shape on the GPU for a matrix `[n, k]`: `[n, k/32/group_chunks · group_words]`
    /// u32.
    pub(crate) fn records_shape(self, n: usize, k: usize) -> [usize; 2] {
        [
            n,
            k / (QUANT_BLOCK * self.group_chunks()) * self.group_words(),
        ]
    }
}

/// A matrix `[rows, k]` quantized on the host, chunks in row order (see the module doc).
#[derive(Clone, Debug, PartialEq)]
pub struct QuantHost {
    /// The format.
    pub scheme: QuantScheme,
    /// The codes, `words_per_block` words per chunk, chunks in row order.
    pub codes: Vec<u32>,
    /// `halves` scales per chunk.
    pub scales: Vec<f32>,
    /// `halves` minimums per chunk (formats with a minimum, else empty).
    pub mins: Vec<f32>,
    /// `header_words` words per group of `group_chunks` chunks (the K-quants' super-blocks,
    /// else empty): the scales as the GPU keeps them.
    pub headers: Vec<u32>,
}

impl QuantHost {
    /// An empty matrix in `scheme`, with room for `chunks` chunks.
    pub fn with_capacity(scheme: QuantScheme, chunks: usize) -> Self {
        let halves = chunks * scheme.halves();
        QuantHost {
            scheme,
            codes: Vec::with_capacity(chunks * scheme.words_per_block()),
            scales: Vec::with_capacity(halves),
            mins: Vec::with_capacity(if scheme.has_min() { halves } else { 0 }),
            headers: Vec::with_capacity(chunks / scheme.group_chunks() * scheme.header_words()),
        }
    }

    /// Its chunks.
    pub fn chunks(&self) -> usize {
        self.codes.len() / self.scheme.words_per_block()
    }

    /// Whether its arrays hold `chunks` chunks each.
    pub fn holds(&self, chunks: usize) -> bool {
        let h = chunks * self.scheme.halves();
        self.codes.len() == chunks * self.scheme.words_per_block()
            && self.scales.len() == h
            && self.mins.len() == if self.scheme.has_min() { h } else { 0 }
            && chunks.is_multiple_of(self.scheme.group_chunks())
            && self.headers.len()
                == chunks / self.scheme.group_chunks() * self.scheme.header_words()
    }

    /// Chunks `range` (whole groups) as a matrix of their own.
    pub fn slice(&self, range: std::ops::Range<usize>) -> QuantHost {
        let (w, h) = (self.scheme.words_per_block(), self.scheme.halves());
        let part = |v: &[f32]| {
            v.get(range.start * h..range.end * h)
                .unwrap_or_default()
                .to_vec()
        };
        QuantHost {
            scheme: self.scheme,
            codes: self
                .codes
                .get(range.start * w..range.end * w)
                .unwrap_or_default()
                .to_vec(),
            scales: part(&self.scales),
            mins: part(&self.mins),
            headers: {
                let (g, hw) = (self.scheme.group_chunks(), self.scheme.header_words());
                self.headers
                    .get(range.start / g * hw..range.end / g * hw)
                    .unwrap_or_default()
                    .to_vec()
            },
        }
    }

    /// Appends `other`'s chunks (the same scheme).
    pub fn extend(&mut self, other: &QuantHost) {
        self.codes.extend_from_slice(&other.codes);
        self.scales.extend_from_slice(&other.scales);
        self.mins.extend_from_slice(&other.mins);
        self.headers.extend_from_slice(&other.headers);
    }

    /// Group `g`'s words as the GPU holds them: chunk `g`'s record (its code words, scales and
    /// minimums as f32 bits), or a super-block's header and its 8 chunks' code words.
    pub fn group(&self, g: usize, out: &mut Vec<u32>) {
        let (w, h) = (self.scheme.words_per_block(), self.scheme.halves());
        let hw = self.scheme.header_words();
        if hw > 0 {
            let chunks = self.scheme.group_chunks();
            out.extend_from_slice(&self.headers[g * hw..(g + 1) * hw]);
            out.extend_from_slice(&self.codes[g * chunks * w..(g + 1) * chunks * w]);
            return;
        }
        out.extend_from_slice(&self.codes[g * w..(g + 1) * w]);
        out.extend(self.scales[g * h..(g + 1) * h].iter().map(|v| v.to_bits()));
        if self.scheme.has_min() {
            out.extend(self.mins[g * h..(g + 1) * h].iter().map(|v| v.to_bits()));
        }
    }

    /// The 32 codes of chunk `c` in weight order, less the format's offset (q8_0: the signed
    /// bytes).
    pub fn centered_codes(&self, c: usize) -> [i32; QUANT_BLOCK] {
        let w = self.scheme.words_per_block();
        let words = &self.codes[c * w..(c + 1) * w];
        let offset = self.scheme.offset();
        std::array::from_fn(|i| unpack_code(self.scheme.code_bits(), words, i) - offset)
    }
}

/// Code `i` of a chunk whose code words are `words`, in the planes of `bits` (the module doc).
pub(crate) fn unpack_code(bits: u32, words: &[u32], i: usize) -> i32 {
    let nibble = |i: usize| (words[i % 16 / 4] >> (8 * (i % 4) + 4 * (i / 16)) & 15) as i32;
    let pair = |word: u32, i: usize| ((word >> (2 * (i % 16))) & 3) as i32;
    match bits {
        8 => (words[i / 4] >> (8 * (i % 4))) as u8 as i8 as i32,
        4 => nibble(i),
        5 => nibble(i) | (((words[4] >> i) & 1) as i32) << 4,
        6 => nibble(i) | pair(words[4 + i / 16], i) << 4,
        3 => pair(words[i / 16], i) | (((words[2] >> i) & 1) as i32) << 2,
        _ => pair(words[i / 16], i),
    }
}

/// Packs 32 unsigned codes of `bits` into a chunk's code words (the module doc's planes);
/// q8_0's signed bytes are given as their bytes.
pub(crate) fn pack_codes(bits: u32, codes: &[u8; QUANT_BLOCK], out: &mut Vec<u32>) {
    let at = out.len();
    out.resize(at + bits as usize, 0);
    let w = &mut out[at..];
    for (i, &q) in codes.iter().enumerate() {
        let q = q as u32;
        let nibble = (q & 15) << (8 * (i % 4) + 4 * (i / 16));
        let pair = |v: u32| (v & 3) << (2 * (i % 16));
        match bits {
            8 => w[i / 4] |= q << (8 * (i % 4)),
            4 => w[i % 16 / 4] |= nibble,
            5 => {
                w[i % 16 / 4] |= nibble;
                w[4] |= (q >> 4 & 1) << i;
            }
            6 => {
                w[i % 16 / 4] |= nibble;
                w[4 + i / 16] |= pair(q >> 4);
            }
            3 => {
                w[i / 16] |= pair(q);
                w[2] |= (q >> 2 & 1) << i;
            }
            _ => w[i / 16] |= pair(q),
        }
    }
}

/// The values the kernels multiply by, in order: `d · (q - offset)`, or `fma(d, q, m)` with a
/// minimum (rounded once, as llama.cpp's and gguf-py's dequantization).
pub fn dequantize(q: &QuantHost) -> Vec<f32> {
    let h = q.scheme.halves();
    let mut out = Vec::with_capacity(q.chunks() * QUANT_BLOCK);
    for c in 0..q.chunks() {
        let codes = q.centered_codes(c);
        for (i, code) in codes.iter().enumerate() {
            let half = c * h + i * h / QUANT_BLOCK;
            let d = q.scales[half];
            out.push(match q.mins.get(half) {
                Some(&m) => (*code as f32).mul_add(d, m),
                None => d * *code as f32,
            });
        }
    }
    out
}
