//! The newer families' configs as transformers writes them, old spellings and refused options:
//! each maps to the description its modeling file runs, or is an error naming the field. The
//! model-level checks against transformers are `tests/hf_models.rs` and `tests/families_gguf.rs`.

mod common;

use common::{contexts, fixture};
use latentgpu::model::config::LayerRope;
use latentgpu::model::tools::compare::{compare, Golden};
use latentgpu::model::{AttentionConfig, HfConfig, Model};
use serde_json::{json, Value};

fn config_of(name: &str) -> Value {
    let path = fixture("hf-dense").join(name).join("model/config.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn err(json: &Value) -> String {
    HfConfig::from_json(json).unwrap_err().to_string()
}

#[test]
fn gemma3_reads_its_scalar_layer_types_and_ropes() {
    let mut json = config_of("gemma3-window-full");
    json["query_pre_attn_scalar"] = 24.into();
    let c = HfConfig::from_json(&json).unwrap().config;
    let AttentionConfig::Mha { scale, .. } = &c.attention else {
        panic!("{:?}", c.attention)
    };
    assert_eq!(*scale, Some((24f64).powf(-0.5) as f32));
    assert_eq!(c.layer_rope(5), LayerRope::Global, "the full layer");
    assert_eq!(c.layer_rope(6), LayerRope::Sliding);
    assert_eq!(c.rope_sliding.unwrap().base, 10000.0);
    assert_eq!(c.embed_scale, Some((24f64).sqrt() as f32));
}

#[test]
fn gemma3_older_configs_load_as_the_new_ones() {
    // Before transformers 5: rope_theta, rope_local_base_freq, rope_scaling (the full layers')
    // and sliding_window_pattern instead of layer_types.
    // Bases and a pattern other than the defaults, so that a key read wrong or not at all shows.
    let mut new = config_of("gemma3-window-full");
    new["rope_parameters"]["full_attention"]["rope_theta"] = json!(500_000.0);
    new["rope_parameters"]["sliding_attention"]["rope_theta"] = json!(20_000.0);
    new["layer_types"] = (0..7)
        .map(|i| match (i + 1) % 3 {
            0 => "full_attention",
            _ => "sliding_attention",
        })
        .collect();
    let mut old = new.clone();
    let o = old.as_object_mut().unwrap();
    for key in ["rope_parameters", "layer_types", "_sliding_window_pattern"] {
        o.remove(key);
    }
    o.insert("rope_theta".into(), json!(500_000.0));
    o.insert("rope_local_base_freq".into(), json!(20_000.0));
    o.insert(
        "rope_scaling".into(),
        json!({"rope_type": "linear", "factor": 2.0}),
    );
    o.insert("sliding_window_pattern".into(), json!(3));
    let (a, b) = (
        HfConfig::from_json(&new).unwrap(),
        HfConfig::from_json(&old).unwrap(),
    );
    assert_eq!(a.config, b.config);
}

#[test]
fn a_multimodal_gemma3_checkpoint_runs_its_text_part() {
    // config.json as Gemma3ForConditionalGeneration saves it: the decoder's config nested, its
    // tensors under model.language_model. (a vision tower beside them is left unused).
    let d = tempfile::tempdir().unwrap();
    let src = fixture("hf-dense").join("gemma3-window-full");
    let text = config_of("gemma3-window-full");
    let config = json!({"model_type": "gemma3", "text_config": text, "vision_config": {}});
    std::fs::write(d.path().join("config.json"), config.to_string()).unwrap();
    let bytes = std::fs::read(src.join("model/model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, safetensors::tensor::TensorView)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n.replace("model.", "model.language_model."), t))
        .collect();
    let vision = vec![0u8; 16];
    tensors.push((
        "model.vision_tower.patch.weight".into(),
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![4], &vision).unwrap(),
    ));
    safetensors::serialize_to_file(tensors, None, &d.path().join("model.safetensors")).unwrap();
    let ctx = &contexts()[0];
    let model = Model::load_dir(ctx, d.path()).unwrap();
    let golden = Golden::open(&src.join("golden.safetensors")).unwrap();
    assert_eq!(compare(ctx, &model, &golden).unwrap().first_failure, None);
}

#[test]
fn options_gemma3_does_not_run_are_errors_that_name_them() {
    let base = config_of("gemma3-window-full");
    let cases: [(&str, Value, &[&str]); 5] = [
        (
            "final_logit_softcapping",
            json!(30.0),
            &["final_logit_softcapping", "30"],
        ),
        (
            "attn_logit_softcapping",
            json!(50.0),
            &["attn_logit_softcapping"],
        ),
        (
            "use_bidirectional_attention",
            json!(true),
            &["use_bidirectional_attention"],
        ),
        (
            "layer_types",
            json!(["full_attention"]),
            &["layer_types", "7 layer types"],
        ),
        (
            "rope_parameters",
            json!({"full_attention": {"rope_type": "mrope", "mrope_section": [2]}}),
            &["rope_parameters.full_attention.rope_type", "mrope"],
        ),
    ];
    for (field, value, fragments) in cases {
        let mut json = base.clone();
        json[field] = value;
        let e = err(&json);
        for f in fragments {
            assert!(e.contains(f), "{field}: {e:?} lacks {f:?}");
        }
    }
}

#[test]
fn smollm3_reads_its_nope_layers_from_the_list_or_the_interval() {
    let mut json = config_of("smollm3-nope");
    assert_eq!(
        HfConfig::from_json(&json).unwrap().config.nope_layers,
        vec![3]
    );
    json["no_rope_layers"] = json!([1, 0, 1, 0]);
    let c = HfConfig::from_json(&json).unwrap().config;
    assert_eq!(c.nope_layers, vec![1, 3]);
    assert_eq!(c.layer_rope(1), LayerRope::None);
    json.as_object_mut().unwrap().remove("no_rope_layers");
    json["no_rope_layer_interval"] = 2.into();
    assert_eq!(
        HfConfig::from_json(&json).unwrap().config.nope_layers,
        vec![1, 3]
    );
    json["no_rope_layers"] = json!([1, 2, 1, 0]);
    let e = err(&json);
    assert!(
        e.contains("no_rope_layers") && e.contains("0 (no RoPE) or 1"),
        "{e}"
    );
}

#[test]
fn qwen3_moe_places_its_mixtures_as_step_and_mlp_only_layers_say() {
    let mut json = config_of("qwen3-moe-sparse-step");
    let c = HfConfig::from_json(&json).unwrap().config;
    let moe = c.moe.as_ref().unwrap();
    let mixtures: Vec<usize> = (0..c.n_layers).filter(|&i| moe.is_moe_layer(i)).collect();
    assert_eq!(mixtures, vec![1, 5]);
    // Configs from before transformers 5 call the expert count num_experts.
    let experts = json["num_local_experts"].take();
    json.as_object_mut().unwrap().remove("num_local_experts");
    json["num_experts"] = experts;
    assert_eq!(HfConfig::from_json(&json).unwrap().config, c);
    json["mlp_only_layers"] = json!([6]);
    let e = err(&json);
    assert!(
        e.contains("mlp_only_layers") && e.contains("below 6"),
        "{e}"
    );
}

#[test]
fn options_phi3_and_the_rope_types_do_not_run_are_errors_that_name_them() {
    let base = config_of("phi4-mini-longrope");
    let mut json = base.clone();
    json["attention_bias"] = true.into();
    let e = err(&json);
    assert!(e.contains("attention_bias") && e.contains("phi3"), "{e}");
    // One LongRoPE factor per rotated pair: 3 here (three quarters of a head of 8).
    let mut json = base.clone();
    json["rope_parameters"]["short_factor"] = json!([1.0, 1.0]);
    let e = err(&json);
    assert!(
        e.contains("short_factor") && e.contains("(3)") && e.contains("2 factors"),
        "{e}"
    );
    let mut json = base;
    json["rope_parameters"]["partial_rotary_factor"] = json!(1.5);
    let e = err(&json);
    assert!(
        e.contains("partial_rotary_factor") && e.contains("(0, 1]"),
        "{e}"
    );
    let mut json = config_of("qwen3-yarn");
    json["rope_parameters"]["truncate"] = false.into();
    let e = err(&json);
    assert!(e.contains("truncate"), "{e}");
}
