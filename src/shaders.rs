//! The WGSL sources in `shaders/`, embedded at compile time, and the kernels they define.
//! What several shaders share (params structs, activations, workgroup reductions, the grid's
//! index idiom) is written once in
//! `shaders/prelude/` and spliced in front of each shader that uses it.

use crate::gpu::pipeline::Binding::{Read, ReadWrite, Uniform};
use crate::gpu::Kernel;

/// The directive a browser's WGSL wants before subgroup operations; native wgpu enables them
/// with the device feature.
#[cfg(target_arch = "wasm32")]
macro_rules! enable_subgroups {
    () => {
        "enable subgroups;\n"
    };
}
#[cfg(not(target_arch = "wasm32"))]
macro_rules! enable_subgroups {
    () => {
        ""
    };
}

/// `(file name, source)` of every shader file, for the translation tests.
pub const ALL: &[(&str, &str)] = &[
    ("attention.wgsl", ATTENTION),
    ("attention.wgsl", ATTENTION_F16),
    ("attention_decode.wgsl", ATTENTION_DECODE_SRC),
    ("attention_decode.wgsl", ATTENTION_DECODE_F16_SRC),
    ("attention_lanes.wgsl", ATTENTION_LANES_SRC),
    ("attention_lanes.wgsl", ATTENTION_LANES_F16_SRC),
    ("latent_lanes.wgsl", LATENT_LANES),
    ("bench.wgsl", BENCH),
    ("cast.wgsl", CAST),
    ("elementwise.wgsl", ELEMENTWISE),
    ("embedding.wgsl", EMBEDDING),
    ("embedding.wgsl", EMBEDDING_F16),
    ("embedding.wgsl", EMBEDDING_HALF),
    ("embedding_quant.wgsl", EMBEDDING_QUANT),
    ("latent.wgsl", LATENT),
    ("matmul.wgsl", MATMUL),
    ("matmul_quant.wgsl", MATMUL_QUANT),
    ("matmul_quant.wgsl", MATMUL_QUANT_SUBGROUP),
    ("matmul_vec4.wgsl", MATMUL_VEC4),
    ("matmul_vec4.wgsl", MATMUL_VEC4_F16),
    ("matmul_vec4.wgsl", MATMUL_VEC4_HALF),
    ("matvec_coop.wgsl", MATVEC_COOP_SRC),
    ("mla_rope.wgsl", MLA_ROPE_SRC),
    ("mla_rope.wgsl", MLA_ROPE_F16_SRC),
    ("moe_ffn.wgsl", MOE_FFN_SRC),
    ("moe_ffn.wgsl", MOE_FFN_HALF_SRC),
    ("moe_route.wgsl", MOE_ROUTE_SRC),
    ("matvec_subgroup.wgsl", MATVEC_SUBGROUP_SRC),
    ("norm.wgsl", NORM),
    ("permute.wgsl", PERMUTE),
    ("qkv_rope.wgsl", QKV_ROPE_SRC),
    ("qkv_rope.wgsl", QKV_ROPE_F16_SRC),
    ("rope.wgsl", ROPE),
    ("sample.wgsl", SAMPLE),
    ("softmax.wgsl", SOFTMAX),
];

/// Fused multi-head attention (prefill and decode).
pub const ATTENTION: &str = concat!(
    include_str!("../shaders/prelude/kv_read_f32.wgsl"),
    include_str!("../shaders/prelude/cache_pages.wgsl"),
    include_str!("../shaders/prelude/attention_params.wgsl"),
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/prelude/reduce.wgsl"),
    include_str!("../shaders/attention.wgsl")
);
/// Attention of one query row, heads sharing each key/value row.
pub const ATTENTION_DECODE_SRC: &str = concat!(
    include_str!("../shaders/prelude/kv_read_f32.wgsl"),
    include_str!("../shaders/prelude/cache_pages.wgsl"),
    include_str!("../shaders/prelude/attention_params.wgsl"),
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/attention_decode.wgsl")
);
/// Attention of one query row, a subgroup per head.
pub const ATTENTION_LANES_SRC: &str = concat!(
    enable_subgroups!(),
    include_str!("../shaders/prelude/kv_read4_f32.wgsl"),
    include_str!("../shaders/prelude/cache_pages.wgsl"),
    include_str!("../shaders/prelude/attention_params.wgsl"),
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/attention_lanes.wgsl")
);
/// Decode attention, a subgroup per head, over packed 16-bit keys and values.
pub const ATTENTION_LANES_F16_SRC: &str = concat!(
    enable_subgroups!(),
    include_str!("../shaders/prelude/kv_read4_f16.wgsl"),
    include_str!("../shaders/prelude/cache_pages.wgsl"),
    include_str!("../shaders/prelude/attention_params.wgsl"),
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/attention_lanes.wgsl")
);
/// Fused attention over a cache of packed 16-bit keys and values.
pub const ATTENTION_F16: &str = concat!(
    include_str!("../shaders/prelude/kv_read_f16.wgsl"),
    include_str!("../shaders/prelude/cache_pages.wgsl"),
    include_str!("../shaders/prelude/attention_params.wgsl"),
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/prelude/reduce.wgsl"),
    include_str!("../shaders/attention.wgsl")
);
/// Decode attention, heads sharing rows, over packed 16-bit keys and values.
pub const ATTENTION_DECODE_F16_SRC: &str = concat!(
    include_str!("../shaders/prelude/kv_read_f16.wgsl"),
    include_str!("../shaders/prelude/cache_pages.wgsl"),
    include_str!("../shaders/prelude/attention_params.wgsl"),
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/attention_decode.wgsl")
);
/// The q|k|v step writing keys and values as packed 16-bit floats.
pub const QKV_ROPE_F16_SRC: &str = concat!(
    include_str!("../shaders/prelude/kv_write_f16.wgsl"),
    include_str!("../shaders/prelude/cache_pages.wgsl"),
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/prelude/reduce.wgsl"),
    include_str!("../shaders/qkv_rope.wgsl")
);
/// MLA's step writing c_kv and k_pe as packed 16-bit floats.
pub const MLA_ROPE_F16_SRC: &str = concat!(
    include_str!("../shaders/prelude/kv_write_f16.wgsl"),
    include_str!("../shaders/prelude/cache_pages.wgsl"),
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/prelude/reduce.wgsl"),
    include_str!("../shaders/mla_rope.wgsl")
);
/// Roofline probes (FMA loop, copy).
pub const BENCH: &str = concat!(
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/bench.wgsl")
);
/// f32 to f16.
pub const CAST: &str = concat!(
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/cast.wgsl")
);
/// Elementwise unary and binary ops.
pub const ELEMENTWISE: &str = concat!(
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/prelude/activations.wgsl"),
    include_str!("../shaders/elementwise.wgsl")
);
/// Embedding lookup (f32 table).
pub const EMBEDDING: &str = concat!(
    "alias TableElem = f32;\n",
    include_str!("../shaders/prelude/table_elements.wgsl"),
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/prelude/embedding_params.wgsl"),
    include_str!("../shaders/embedding.wgsl")
);
/// Embedding lookup from an f16 table (shader-f16): the same file with f16 elements.
pub const EMBEDDING_F16: &str = concat!(
    "enable f16;\nalias TableElem = f16;\n",
    include_str!("../shaders/prelude/table_elements.wgsl"),
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/prelude/embedding_params.wgsl"),
    include_str!("../shaders/embedding.wgsl")
);
/// Embedding lookup from a table of 16-bit values in u32 words (any adapter; override `BF16`).
pub const EMBEDDING_HALF: &str = concat!(
    include_str!("../shaders/prelude/half_words.wgsl"),
    include_str!("../shaders/prelude/table_words.wgsl"),
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/prelude/embedding_params.wgsl"),
    include_str!("../shaders/embedding.wgsl")
);
/// The gather phase of causal latent attention.
pub const LATENT: &str = concat!(
    include_str!("../shaders/prelude/gather_params.wgsl"),
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/latent.wgsl")
);
/// The latent gather update, a subgroup per latent query and head.
pub const LATENT_LANES: &str = concat!(
    enable_subgroups!(),
    include_str!("../shaders/prelude/gather_params.wgsl"),
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/latent_lanes.wgsl")
);
/// Matrix products.
pub const MATMUL: &str = concat!(
    include_str!("../shaders/prelude/matmul_params.wgsl"),
    include_str!("../shaders/matmul.wgsl")
);
/// Products with quantized weights, every format (`prelude/quant_formats.wgsl`).
pub const MATMUL_QUANT: &str = concat!(
    include_str!("../shaders/prelude/matmul_params.wgsl"),
    include_str!("../shaders/prelude/activations.wgsl"),
    include_str!("../shaders/prelude/gate_act.wgsl"),
    include_str!("../shaders/prelude/quant_formats.wgsl"),
    include_str!("../shaders/prelude/quant_rows.wgsl"),
    include_str!("../shaders/prelude/block_acts.wgsl"),
    include_str!("../shaders/prelude/matvec_quant_entry.wgsl"),
    include_str!("../shaders/matmul_quant.wgsl")
);
/// The same with a subgroup sharing each chunk's activation loads (see `MATVEC_SUBGROUP_SRC`
/// for the `enable` directive).
pub const MATMUL_QUANT_SUBGROUP: &str = concat!(
    enable_subgroups!(),
    include_str!("../shaders/prelude/matmul_params.wgsl"),
    include_str!("../shaders/prelude/activations.wgsl"),
    include_str!("../shaders/prelude/gate_act.wgsl"),
    include_str!("../shaders/prelude/quant_formats.wgsl"),
    include_str!("../shaders/prelude/quant_rows.wgsl"),
    include_str!("../shaders/prelude/block_acts_subgroup.wgsl"),
    include_str!("../shaders/prelude/matvec_quant_entry_subgroup.wgsl"),
    include_str!("../shaders/matmul_quant.wgsl")
);
/// Embedding lookup from a block-quantized table.
pub const EMBEDDING_QUANT: &str = concat!(
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/prelude/quant_formats.wgsl"),
    include_str!("../shaders/prelude/embedding_params.wgsl"),
    include_str!("../shaders/embedding_quant.wgsl")
);
/// Matrix products for shapes aligned to 4 (vec4 loads).
pub const MATMUL_VEC4: &str = concat!(
    include_str!("../shaders/prelude/matmul_params.wgsl"),
    include_str!("../shaders/prelude/activations.wgsl"),
    include_str!("../shaders/prelude/gate_act.wgsl"),
    include_str!("../shaders/prelude/weights_f32.wgsl"),
    include_str!("../shaders/matmul_vec4.wgsl")
);
/// The same products with f16 weights read natively (shader-f16 adapters).
pub const MATMUL_VEC4_F16: &str = concat!(
    "enable f16;\n",
    include_str!("../shaders/prelude/matmul_params.wgsl"),
    include_str!("../shaders/prelude/activations.wgsl"),
    include_str!("../shaders/prelude/gate_act.wgsl"),
    include_str!("../shaders/prelude/weights_f16.wgsl"),
    include_str!("../shaders/matmul_vec4.wgsl")
);
/// The same products with f16 or bf16 weights read as u32 words (any adapter).
pub const MATMUL_VEC4_HALF: &str = concat!(
    include_str!("../shaders/prelude/matmul_params.wgsl"),
    include_str!("../shaders/prelude/activations.wgsl"),
    include_str!("../shaders/prelude/gate_act.wgsl"),
    include_str!("../shaders/prelude/half_words.wgsl"),
    include_str!("../shaders/prelude/weights_packed.wgsl"),
    include_str!("../shaders/matmul_vec4.wgsl")
);
/// The decode product with a workgroup per output.
pub const MATVEC_COOP_SRC: &str = concat!(
    include_str!("../shaders/prelude/matmul_params.wgsl"),
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/prelude/reduce.wgsl"),
    include_str!("../shaders/matvec_coop.wgsl")
);
/// The same with subgroup sums (native: wgpu enables subgroup operations with the device
/// feature; the browser's WGSL also wants the `enable` directive).
#[cfg(not(target_arch = "wasm32"))]
pub const MATVEC_SUBGROUP_SRC: &str = concat!(
    include_str!("../shaders/prelude/matmul_params.wgsl"),
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/matvec_subgroup.wgsl")
);
/// The same with subgroup sums (native: wgpu enables subgroup operations with the device
/// feature; the browser's WGSL also wants the `enable` directive).
#[cfg(target_arch = "wasm32")]
pub const MATVEC_SUBGROUP_SRC: &str = concat!(
    "enable subgroups;\n",
    include_str!("../shaders/prelude/matmul_params.wgsl"),
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/matvec_subgroup.wgsl")
);
/// MLA's step between its products and its attention.
pub const MLA_ROPE_SRC: &str = concat!(
    include_str!("../shaders/prelude/kv_write_f32.wgsl"),
    include_str!("../shaders/prelude/cache_pages.wgsl"),
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/prelude/reduce.wgsl"),
    include_str!("../shaders/mla_rope.wgsl")
);
/// RMSNorm and LayerNorm.
pub const NORM: &str = concat!(
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/prelude/reduce.wgsl"),
    include_str!("../shaders/norm.wgsl")
);
/// Swapping the first two dimensions.
pub const PERMUTE: &str = concat!(
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/permute.wgsl")
);
/// Bias, q/k norm, RoPE and cache writes after the fused q|k|v product.
pub const QKV_ROPE_SRC: &str = concat!(
    include_str!("../shaders/prelude/kv_write_f32.wgsl"),
    include_str!("../shaders/prelude/cache_pages.wgsl"),
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/prelude/reduce.wgsl"),
    include_str!("../shaders/qkv_rope.wgsl")
);
/// Rotary position embedding.
pub const ROPE: &str = concat!(
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/rope.wgsl")
);
/// The routed experts of a mixture-of-experts feed-forward.
pub const MOE_FFN_SRC: &str = concat!(
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/prelude/quant_formats.wgsl"),
    include_str!("../shaders/prelude/activations.wgsl"),
    include_str!("../shaders/prelude/gate_act.wgsl"),
    include_str!("../shaders/prelude/experts_f32.wgsl"),
    include_str!("../shaders/moe_ffn.wgsl")
);
/// The same with 16-bit expert matrices in u32 words for the vec4 kernels (override `BF16`).
pub const MOE_FFN_HALF_SRC: &str = concat!(
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/prelude/quant_formats.wgsl"),
    include_str!("../shaders/prelude/activations.wgsl"),
    include_str!("../shaders/prelude/gate_act.wgsl"),
    include_str!("../shaders/prelude/half_words.wgsl"),
    include_str!("../shaders/prelude/experts_packed.wgsl"),
    include_str!("../shaders/moe_ffn.wgsl")
);
/// Mixture-of-experts routing.
pub const MOE_ROUTE_SRC: &str = include_str!("../shaders/moe_route.wgsl");
/// Token choice from logits.
pub const SAMPLE: &str = concat!(
    include_str!("../shaders/prelude/reduce.wgsl"),
    include_str!("../shaders/sample.wgsl")
);
/// Row softmax.
pub const SOFTMAX: &str = concat!(
    include_str!("../shaders/prelude/grid.wgsl"),
    include_str!("../shaders/prelude/reduce.wgsl"),
    include_str!("../shaders/softmax.wgsl")
);

const fn kernel(
    shader: &'static str,
    source: &'static str,
    entry: &'static str,
    bindings: &'static [crate::gpu::Binding],
) -> Kernel {
    Kernel {
        shader,
        source,
        entry,
        bindings,
        trusted: false,
    }
}

/// As `kernel`, compiled without runtime bounds checks (see [`Kernel::trusted`]).
const fn trusted(k: Kernel) -> Kernel {
    Kernel { trusted: true, ..k }
}

const U_R_W: &[crate::gpu::Binding] = &[Uniform, Read, ReadWrite];
const U_RR_W: &[crate::gpu::Binding] = &[Uniform, Read, Read, ReadWrite];
const U_RRR_W: &[crate::gpu::Binding] = &[Uniform, Read, Read, Read, ReadWrite];

/// `out = f(a, b)`.
pub const EW_BINARY: Kernel = kernel("elementwise.wgsl", ELEMENTWISE, "binary", U_RR_W);
/// `out = f(a)`.
pub const EW_UNARY: Kernel = kernel("elementwise.wgsl", ELEMENTWISE, "unary", U_RR_W);
/// RMSNorm rows.
pub const RMSNORM: Kernel = kernel("norm.wgsl", NORM, "rmsnorm", U_RRR_W);
/// LayerNorm rows.
pub const LAYERNORM: Kernel = kernel("norm.wgsl", NORM, "layernorm", U_RRR_W);
/// Residual add, then RMSNorm.
pub const ADD_RMSNORM: Kernel = kernel(
    "norm.wgsl",
    NORM,
    "add_rmsnorm",
    &[Uniform, Read, Read, Read, ReadWrite, Read, ReadWrite],
);
/// Residual add, then LayerNorm.
pub const ADD_LAYERNORM: Kernel = kernel(
    "norm.wgsl",
    NORM,
    "add_layernorm",
    &[Uniform, Read, Read, Read, ReadWrite, Read, ReadWrite],
);
/// Softmax rows.
pub const SOFTMAX_ROWS: Kernel = kernel("softmax.wgsl", SOFTMAX, "softmax_rows", U_R_W);
/// RoPE in place.
pub const ROPE_INPLACE: Kernel = kernel("rope.wgsl", ROPE, "rope", U_RR_W);
/// Embedding lookup.
pub const EMBEDDING_LOOKUP: Kernel = kernel("embedding.wgsl", EMBEDDING, "embedding", U_RR_W);
/// Embedding lookup from a table of 16-bit values as u32 words (override `BF16`).
pub const EMBEDDING_LOOKUP_HALF: Kernel = kernel(
    "embedding.wgsl (16-bit words)",
    EMBEDDING_HALF,
    "embedding",
    U_RR_W,
);
/// Embedding lookup from an f16 table (shader-f16 adapters).
pub const EMBEDDING_LOOKUP_F16: Kernel = kernel(
    "embedding.wgsl (f16 table)",
    EMBEDDING_F16,
    "embedding",
    U_RR_W,
);
/// `C = A·B`.
pub const MATMUL_NN: Kernel = trusted(kernel("matmul.wgsl", MATMUL, "matmul_nn", U_RR_W));
/// `C = A·Bᵀ`.
pub const MATMUL_NT: Kernel = trusted(kernel("matmul.wgsl", MATMUL, "matmul_nt", U_RR_W));
/// `c = a·Bᵀ` for one row (decode).
pub const MATVEC_NT: Kernel = trusted(kernel("matmul.wgsl", MATMUL, "matvec_nt", U_RR_W));
/// `C = A·Bᵀ`, K % 4 == 0.
pub const MATMUL_NT_V4: Kernel = trusted(kernel(
    "matmul_vec4.wgsl",
    MATMUL_VEC4,
    "matmul_nt_v4",
    U_RR_W,
));
/// `C = A·B`, K % 4 == 0 and N % 4 == 0.
pub const MATMUL_NN_V4: Kernel = trusted(kernel(
    "matmul_vec4.wgsl",
    MATMUL_VEC4,
    "matmul_nn_v4",
    U_RR_W,
));
/// `c = a·Bᵀ` for one row, K % 4 == 0.
pub const MATVEC_NT_V4: Kernel = trusted(kernel(
    "matmul_vec4.wgsl",
    MATMUL_VEC4,
    "matvec_nt_v4",
    U_RR_W,
));
/// Fused attention.
pub const ATTENTION_FUSED: Kernel = kernel(
    "attention.wgsl",
    ATTENTION,
    "attention",
    &[Uniform, Read, Read, Read, Read, ReadWrite, Read],
);
/// The latent gather update (phase 1), a subgroup per latent query and head.
pub const GATHER_LANES: Kernel = kernel(
    "latent_lanes.wgsl",
    LATENT_LANES,
    "gather_lanes",
    &[
        Uniform, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, ReadWrite,
    ],
);
/// The latent gather update (phase 1), a workgroup per latent query and head.
pub const GATHER_UPDATE: Kernel = kernel(
    "latent.wgsl",
    LATENT,
    "gather_update",
    &[
        Uniform, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, ReadWrite,
    ],
);
/// FMA roof probe.
pub const FMA_ROOF: Kernel = kernel("bench.wgsl", BENCH, "fma_roof", U_R_W);
/// Copy roof probe.
pub const COPY_ROOF: Kernel = kernel("bench.wgsl", BENCH, "copy_roof", U_R_W);
/// `x·Wᵀ` with quantized weights (any format: its constants), `MV_ROWS` outputs per
/// invocation.
pub const MATVEC_QUANT: Kernel = trusted(kernel(
    "matmul_quant.wgsl",
    MATMUL_QUANT,
    "matvec_quant",
    U_RR_W,
));
/// The same, the chunk's activations shared by the subgroup.
pub const MATVEC_QUANT_SUBGROUP: Kernel = trusted(kernel(
    "matmul_quant.wgsl (subgroups)",
    MATMUL_QUANT_SUBGROUP,
    "matvec_quant",
    U_RR_W,
));
/// `x·Wᵀ` with quantized weights, 8×8 outputs per invocation (prefill).
pub const MATMUL_NT_QUANT: Kernel = trusted(kernel(
    "matmul_quant.wgsl",
    MATMUL_QUANT,
    "matmul_nt_quant",
    U_RR_W,
));
/// `act(x·Gᵀ) · (x·Uᵀ)` for one row with quantized `G` and `U` of one format.
pub const MATVEC_GLU_QUANT: Kernel = trusted(kernel(
    "matmul_quant.wgsl",
    MATMUL_QUANT,
    "matvec_glu_quant",
    U_RRR_W,
));
/// The same, the chunk's activations shared by the subgroup.
pub const MATVEC_GLU_QUANT_SUBGROUP: Kernel = trusted(kernel(
    "matmul_quant.wgsl (subgroups)",
    MATMUL_QUANT_SUBGROUP,
    "matvec_glu_quant",
    U_RRR_W,
));
/// Embedding lookup from a quantized table (any format).
pub const EMBEDDING_Q: Kernel = kernel(
    "embedding_quant.wgsl",
    EMBEDDING_QUANT,
    "embedding_quant",
    U_RR_W,
);
/// The rows of a quantized row block as f32 (for the prefill products).
pub const DEQUANTIZE_ROWS: Kernel = kernel(
    "embedding_quant.wgsl",
    EMBEDDING_QUANT,
    "dequantize_rows",
    U_R_W,
);
/// The slots of each expert in use, grouped (a counting sort of the router's choices).
pub const MOE_SORT: Kernel = kernel(
    "moe_ffn.wgsl",
    MOE_FFN_SRC,
    "moe_sort",
    &[Uniform, Read, ReadWrite],
);
/// The chosen experts' gated products, tokens grouped by expert.
pub const MOE_GATE_UP: Kernel = kernel(
    "moe_ffn.wgsl",
    MOE_FFN_SRC,
    "moe_gate_up",
    &[Uniform, Read, Read, Read, Read, ReadWrite],
);
/// The chosen experts' down products, per slot.
pub const MOE_DOWN: Kernel = kernel(
    "moe_ffn.wgsl",
    MOE_FFN_SRC,
    "moe_down",
    &[Uniform, Read, Read, Read, ReadWrite],
);
/// As [`MOE_GATE_UP`] with vec4 loads (d % 4 == 0).
pub const MOE_GATE_UP_V4: Kernel = kernel(
    "moe_ffn.wgsl",
    MOE_FFN_SRC,
    "moe_gate_up_v4",
    &[Uniform, Read, Read, Read, Read, ReadWrite],
);
/// As [`MOE_DOWN`] with vec4 loads (inter % 4 == 0).
pub const MOE_DOWN_V4: Kernel = kernel(
    "moe_ffn.wgsl",
    MOE_FFN_SRC,
    "moe_down_v4",
    &[Uniform, Read, Read, Read, ReadWrite],
);
/// As [`MOE_GATE_UP_V4`] with 16-bit gate and up in u32 words (override `BF16`).
pub const MOE_GATE_UP_HALF_V4: Kernel = kernel(
    "moe_ffn.wgsl (16-bit words)",
    MOE_FFN_HALF_SRC,
    "moe_gate_up_v4",
    &[Uniform, Read, Read, Read, Read, ReadWrite],
);
/// As [`MOE_DOWN_V4`] with a 16-bit down projection in u32 words (override `BF16`).
pub const MOE_DOWN_HALF_V4: Kernel = kernel(
    "moe_ffn.wgsl (16-bit words)",
    MOE_FFN_HALF_SRC,
    "moe_down_v4",
    &[Uniform, Read, Read, Read, ReadWrite],
);
/// As [`MOE_GATE_UP_V4`] with quantized gate and up (any format: its constants).
pub const MOE_GATE_UP_Q: Kernel = kernel(
    "moe_ffn.wgsl",
    MOE_FFN_SRC,
    "moe_gate_up_q",
    &[Uniform, Read, Read, Read, Read, ReadWrite],
);
/// As [`MOE_DOWN_V4`] with a quantized down projection.
pub const MOE_DOWN_Q: Kernel = kernel(
    "moe_ffn.wgsl",
    MOE_FFN_SRC,
    "moe_down_q",
    &[Uniform, Read, Read, Read, ReadWrite],
);
/// As [`MOE_GATE_UP_Q`] for one token, four rows per invocation.
pub const MOE_GATE_UP_Q_ONE: Kernel = kernel(
    "moe_ffn.wgsl",
    MOE_FFN_SRC,
    "moe_gate_up_q_one",
    &[Uniform, Read, Read, Read, Read, ReadWrite],
);
/// As [`MOE_DOWN_Q`] for one token, four rows per invocation.
pub const MOE_DOWN_Q_ONE: Kernel = kernel(
    "moe_ffn.wgsl",
    MOE_FFN_SRC,
    "moe_down_q_one",
    &[Uniform, Read, Read, Read, ReadWrite],
);
/// Each token's expert outputs, weighted and summed in choice order.
pub const MOE_COMBINE: Kernel = kernel(
    "moe_ffn.wgsl",
    MOE_FFN_SRC,
    "moe_combine",
    &[Uniform, Read, Read, ReadWrite],
);
/// Each token's experts and their weights from the router's logits.
pub const MOE_ROUTE: Kernel = kernel(
    "moe_route.wgsl",
    MOE_ROUTE_SRC,
    "route",
    &[Uniform, Read, Read, ReadWrite, ReadWrite],
);
/// Next-token choice on the GPU.
pub const SAMPLE_TOKEN: Kernel = kernel(
    "sample.wgsl",
    SAMPLE,
    "sample",
    &[Uniform, Read, ReadWrite, ReadWrite, ReadWrite, ReadWrite],
);
/// `C = A·Bᵀ` with f16 `B` (shader-f16), K % 4 == 0.
pub const MATMUL_NT_F16W_V4: Kernel = trusted(kernel(
    "matmul_vec4.wgsl (f16 weights)",
    MATMUL_VEC4_F16,
    "matmul_nt_v4",
    U_RR_W,
));
/// `c = a·Bᵀ` for one row, f16 `B` (shader-f16), K % 4 == 0.
pub const MATVEC_NT_F16W_V4: Kernel = trusted(kernel(
    "matmul_vec4.wgsl (f16 weights)",
    MATMUL_VEC4_F16,
    "matvec_nt_v4",
    U_RR_W,
));
/// `C = A·Bᵀ` with 16-bit `B` as u32 words (override `BF16`), K % 4 == 0.
pub const MATMUL_NT_HALF_V4: Kernel = trusted(kernel(
    "matmul_vec4.wgsl (16-bit words)",
    MATMUL_VEC4_HALF,
    "matmul_nt_v4",
    U_RR_W,
));
/// `c = a·Bᵀ` for one row, 16-bit `B` as u32 words (override `BF16`), K % 4 == 0.
pub const MATVEC_NT_HALF_V4: Kernel = trusted(kernel(
    "matmul_vec4.wgsl (16-bit words)",
    MATMUL_VEC4_HALF,
    "matvec_nt_v4",
    U_RR_W,
));
/// `c = act(a·Gᵀ)·(a·Uᵀ)` for one row, K % 4 == 0 (override `ACT`).
pub const MATVEC_GLU_V4: Kernel = trusted(kernel(
    "matmul_vec4.wgsl",
    MATMUL_VEC4,
    "matvec_glu_v4",
    U_RRR_W,
));
/// As [`MATVEC_GLU_V4`] with f16 `G` and `U` (shader-f16).
pub const MATVEC_GLU_F16W_V4: Kernel = trusted(kernel(
    "matmul_vec4.wgsl (f16 weights)",
    MATMUL_VEC4_F16,
    "matvec_glu_v4",
    U_RRR_W,
));
/// As [`MATVEC_GLU_V4`] with 16-bit `G` and `U` as u32 words (override `BF16`).
pub const MATVEC_GLU_HALF_V4: Kernel = trusted(kernel(
    "matmul_vec4.wgsl (16-bit words)",
    MATMUL_VEC4_HALF,
    "matvec_glu_v4",
    U_RRR_W,
));
/// Bias, q/k norm, RoPE and cache writes after the fused q|k|v product.
pub const QKV_ROPE: Kernel = kernel(
    "qkv_rope.wgsl",
    QKV_ROPE_SRC,
    "qkv_rope",
    &[
        Uniform, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, Read,
    ],
);
/// `[A, B, C]` -> `[B, A, C]`.
pub const PERMUTE01: Kernel = kernel("permute.wgsl", PERMUTE, "permute", U_R_W);
/// f32 -> f16 pairs.
pub const CAST_TO_F16: Kernel = kernel("cast.wgsl", CAST, "to_f16", U_R_W);
/// Decode attention, a subgroup per head, over packed 16-bit keys and values.
pub const ATTENTION_LANES_F16: Kernel = kernel(
    "attention_lanes.wgsl (f16 cache)",
    ATTENTION_LANES_F16_SRC,
    "attention_lanes",
    &[Uniform, Read, Read, Read, Read, ReadWrite, Read],
);
/// Fused attention over packed 16-bit keys and values (scalar loads).
pub const ATTENTION_FUSED_F16: Kernel = kernel(
    "attention.wgsl (f16 cache)",
    ATTENTION_F16,
    "attention",
    &[Uniform, Read, Read, Read, Read, ReadWrite, Read],
);
/// Decode attention, heads sharing rows, over packed 16-bit keys and values.
pub const ATTENTION_DECODE_F16: Kernel = kernel(
    "attention_decode.wgsl (f16 cache)",
    ATTENTION_DECODE_F16_SRC,
    "attention_decode",
    &[Uniform, Read, Read, Read, Read, ReadWrite, Read],
);
/// The q|k|v step, keys and values into a packed 16-bit cache.
pub const QKV_ROPE_F16: Kernel = kernel(
    "qkv_rope.wgsl (f16 cache)",
    QKV_ROPE_F16_SRC,
    "qkv_rope",
    &[
        Uniform, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, Read,
    ],
);
/// MLA's step, c_kv and k_pe into a packed 16-bit cache.
pub const MLA_ROPE_F16: Kernel = kernel(
    "mla_rope.wgsl (f16 cache)",
    MLA_ROPE_F16_SRC,
    "mla_rope",
    &[
        Uniform, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, Read,
    ],
);
/// Packed f16 pairs -> f32.
pub const CAST_TO_F32: Kernel = kernel("cast.wgsl", CAST, "to_f32", U_R_W);
/// `c = a·Bᵀ` for one row, a workgroup per output (workgroup reduction).
pub const MATVEC_COOP: Kernel = trusted(kernel(
    "matvec_coop.wgsl",
    MATVEC_COOP_SRC,
    "matvec_coop",
    U_RR_W,
));
/// `c = a·Bᵀ` for one row, a workgroup per output (subgroup reduction).
pub const MATVEC_SUBGROUP: Kernel = trusted(kernel(
    "matvec_subgroup.wgsl",
    MATVEC_SUBGROUP_SRC,
    "matvec_subgroup",
    U_RR_W,
));
/// Decode attention, a workgroup per key/value head and block of its query heads.
pub const ATTENTION_DECODE: Kernel = kernel(
    "attention_decode.wgsl",
    ATTENTION_DECODE_SRC,
    "attention_decode",
    &[Uniform, Read, Read, Read, Read, ReadWrite, Read],
);
/// Decode attention, a workgroup of one subgroup per head (adapters with subgroups).
pub const ATTENTION_LANES: Kernel = kernel(
    "attention_lanes.wgsl",
    ATTENTION_LANES_SRC,
    "attention_lanes",
    &[Uniform, Read, Read, Read, Read, ReadWrite, Read],
);
/// Fused attention, keys and values read as vec4s (aligned views).
pub const ATTENTION_FUSED_V4: Kernel = kernel(
    "attention.wgsl",
    ATTENTION,
    "attention_v4",
    &[Uniform, Read, Read, Read, Read, ReadWrite, Read],
);
/// MLA: q's RoPE part, c_kv normalised and k_pe rotated into the cache.
pub const MLA_ROPE: Kernel = kernel(
    "mla_rope.wgsl",
    MLA_ROPE_SRC,
    "mla_rope",
    &[
        Uniform, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, Read,
    ],
);
