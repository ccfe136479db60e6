//! Every kernel against its f64 CPU reference, on every adapter present, on awkward shapes.
//! The checks themselves are in `common/kernel_checks.rs`, shared with the browser tests.

mod common;

use common::kernel_checks as checks;
use common::on_every_adapter;
use common::paged_checks;
use common::quant_checks;
use pollster::block_on;

#[test]
fn matmul_matches_reference_on_awkward_shapes() {
    on_every_adapter(|ctx| block_on(checks::matmul_on_awkward_shapes(ctx)));
}

#[test]
fn batched_matmul_matches_reference() {
    on_every_adapter(|ctx| block_on(checks::batched_matmul(ctx)));
}

#[test]
fn moe_experts_match_reference() {
    on_every_adapter(|ctx| block_on(checks::moe_experts(ctx)));
}

#[test]
fn moe_quantized_experts_match_reference() {
    on_every_adapter(|ctx| block_on(quant_checks::moe_quantized_experts(ctx)));
}

#[test]
fn quantizers_stay_within_half_a_step() {
    quant_checks::quantizer_error();
}

#[test]
fn quant_products_match_reference() {
    on_every_adapter(|ctx| block_on(quant_checks::quant_products(ctx)));
}

#[test]
fn moe_routing_matches_reference() {
    on_every_adapter(|ctx| block_on(checks::moe_routing(ctx)));
}

#[test]
fn matmul_writes_nothing_past_its_output() {
    on_every_adapter(|ctx| block_on(checks::matmul_writes_nothing_past_its_output(ctx)));
}

#[test]
fn matvec_decode_path_matches_reference() {
    on_every_adapter(|ctx| block_on(checks::matvec_decode_path(ctx)));
}

#[test]
fn softmax_matches_reference() {
    on_every_adapter(|ctx| block_on(checks::softmax(ctx)));
}

#[test]
fn norms_match_reference() {
    on_every_adapter(|ctx| block_on(checks::norms(ctx)));
}

#[test]
fn elementwise_ops_match_reference() {
    on_every_adapter(|ctx| block_on(checks::elementwise_ops(ctx)));
}

#[test]
fn rope_matches_reference_in_both_conventions() {
    on_every_adapter(|ctx| block_on(checks::rope_in_both_conventions(ctx)));
}

#[test]
fn rope_table_matches_pytorch_fp32_construction() {
    // θ_i = 1 / base^(2i/r) rounded to f32, the angle pos·θ_i in f32: spot values.
    let f = latentgpu::ops::rope::inv_freq(8, 10000.0);
    assert_eq!(f[0], 1.0);
    assert!((f[1] as f64 - 0.1).abs() < 1e-8);
    assert!((f[3] as f64 - 10000f64.powf(-0.75)).abs() < 1e-10);
}

#[test]
fn embedding_matches_reference() {
    on_every_adapter(|ctx| block_on(checks::embedding(ctx)));
}

#[test]
fn attention_matches_reference() {
    on_every_adapter(|ctx| block_on(checks::attention(ctx)));
}

#[test]
fn bias_and_geglu_match_reference() {
    on_every_adapter(|ctx| block_on(checks::bias_and_geglu(ctx)));
}

#[test]
fn attention_sliding_window_matches_reference() {
    on_every_adapter(|ctx| block_on(checks::attention_sliding_window(ctx)));
}

#[test]
fn attention_decode_over_kv_cache_matches_reference() {
    on_every_adapter(|ctx| block_on(checks::attention_decode_over_kv_cache(ctx)));
}

#[test]
fn half_weight_matmul_matches_reference_on_rounded_weights() {
    on_every_adapter(|ctx| block_on(checks::half_weight_matmul(ctx)));
}

#[test]
fn fused_gated_matvec_equals_the_unfused_ops() {
    on_every_adapter(|ctx| block_on(checks::fused_gated_matvec(ctx)));
}

#[test]
fn fused_add_norm_equals_the_add_then_the_norm() {
    on_every_adapter(|ctx| block_on(checks::fused_add_norm(ctx)));
}

#[test]
fn qkv_step_matches_reference() {
    on_every_adapter(|ctx| block_on(checks::qkv_rope(ctx)));
}

#[test]
fn permute_matches_reference() {
    on_every_adapter(|ctx| block_on(checks::permute(ctx)));
}

#[test]
fn cast_to_f16_rounds_to_nearest_even() {
    on_every_adapter(|ctx| block_on(checks::cast_to_f16(ctx)));
}

#[test]
fn matvec_paths_match_reference() {
    on_every_adapter(|ctx| block_on(checks::matvec_paths(ctx)));
}

#[test]
fn paged_attention_reads_the_rows_of_a_whole_cache() {
    on_every_adapter(|ctx| block_on(paged_checks::paged_attention(ctx)));
}

#[test]
fn paged_qkv_step_writes_the_rows_of_a_whole_cache() {
    on_every_adapter(|ctx| block_on(paged_checks::paged_qkv_rope(ctx)));
}

#[test]
fn paged_mla_step_writes_the_rows_of_a_whole_cache() {
    on_every_adapter(|ctx| block_on(paged_checks::paged_mla_rope(ctx)));
}

#[test]
fn f16_cache_attention_matches_reference() {
    on_every_adapter(|ctx| block_on(paged_checks::f16_attention(ctx)));
}

#[test]
fn mla_step_matches_reference() {
    on_every_adapter(|ctx| block_on(checks::mla_rope(ctx)));
}
