//! Every shader file parses and validates with naga and translates to SPIR-V, MSL, HLSL and GLSL
//! (so Metal and DX12 are covered where they cannot run); the SPIR-V passes `spirv-val` and the
//! GLSL `glslangValidator` when installed (required when `LATENTGPU_REQUIRE_SHADER_TOOLS` is set,
//! as in CI). Also: every Rust params struct has the size of its WGSL twin.

use latentgpu::shaders;
use naga::back::PipelineConstants;
use naga::valid::{Capabilities, ModuleInfo, ValidationFlags, Validator};
use naga::Module;
use std::path::Path;
use std::process::Command;

fn parse(name: &str, source: &str) -> (Module, ModuleInfo) {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
    let info = Validator::new(ValidationFlags::all(), Capabilities::all())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
    (module, info)
}

fn require_tools() -> bool {
    std::env::var("LATENTGPU_REQUIRE_SHADER_TOOLS").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Runs an external validator on a file if the tool exists (and fails if it must exist).
fn external_check(tool: &str, args: &[&str], file: &Path, what: &str) {
    match Command::new(tool).args(args).arg(file).output() {
        Ok(out) => assert!(
            out.status.success(),
            "{tool} rejected {what}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) if !require_tools() => eprintln!("{tool} not installed: {what} not checked"),
        Err(e) => {
            panic!("{tool} is required (LATENTGPU_REQUIRE_SHADER_TOOLS) but failed to run: {e}")
        }
    }
}

#[test]
fn shader_list_covers_every_file_in_shaders_dir() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wgsl"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = shaders::ALL.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    // A file built two ways (f32 and f16 elements) is listed once per way.
    listed.dedup();
    assert_eq!(
        on_disk, listed,
        "shaders::ALL must list every file in shaders/"
    );
    for (name, source) in shaders::ALL {
        let on_disk = std::fs::read_to_string(dir.join(name)).unwrap();
        // Preludes are spliced in front of the file.
        assert!(
            source.ends_with(&on_disk),
            "{name}: embedded source does not end with the file"
        );
    }
}

#[test]
fn every_shader_translates_to_every_backend_language() {
    let tmp = std::env::temp_dir().join(format!("latentgpu-shaders-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for (name, source) in shaders::ALL {
        let (module, info) = parse(name, source);
        let constants = PipelineConstants::default();
        let (module, info) =
            naga::back::pipeline_constants::process_overrides(&module, &info, None, &constants)
                .unwrap_or_else(|e| panic!("{name}: overrides: {e}"));
        assert!(!module.entry_points.is_empty(), "{name}: no entry point");

        // SPIR-V (Vulkan); subgroup operations need SPIR-V 1.3, which wgpu writes when the
        // device has subgroups.
        let uses_subgroups = source.contains("subgroupAdd") || source.contains("subgroupBroadcast");
        let spv_options = naga::back::spv::Options {
            lang_version: if uses_subgroups { (1, 3) } else { (1, 0) },
            ..Default::default()
        };
        let spv = naga::back::spv::write_vec(&module, &info, &spv_options, None)
            .unwrap_or_else(|e| panic!("{name}: SPIR-V: {e}"));
        let spv_path = tmp.join(format!("{name}.spv"));
        std::fs::write(&spv_path, bytemuck::cast_slice::<u32, u8>(&spv)).unwrap();
        external_check(
            "spirv-val",
            &["--target-env", "vulkan1.1"],
            &spv_path,
            &format!("{name} SPIR-V"),
        );

        // MSL (Metal).
        let msl_options = naga::back::msl::Options {
            lang_version: (2, 1),
            ..Default::default()
        };
        naga::back::msl::write_string(&module, &info, &msl_options, &Default::default())
            .unwrap_or_else(|e| panic!("{name}: MSL: {e}"));

        // HLSL (DX12).
        let hlsl_options = naga::back::hlsl::Options {
            shader_model: naga::back::hlsl::ShaderModel::V6_0,
            ..Default::default()
        };
        let mut hlsl = String::new();
        naga::back::hlsl::Writer::new(&mut hlsl, &hlsl_options, &Default::default())
            .write(&module, &info, None)
            .unwrap_or_else(|e| panic!("{name}: HLSL: {e}"));

        // GLSL (GL backend, one program per entry point). A shader that enables f16 or uses
        // subgroups only runs on adapters with shader-f16 or subgroups, which wgpu's GL backend
        // never has: it has no GLSL form.
        if source.contains("enable f16;") || uses_subgroups {
            continue;
        }
        for ep in &module.entry_points {
            let options = naga::back::glsl::Options {
                version: naga::back::glsl::Version::new_gles(310),
                ..Default::default()
            };
            let pipeline = naga::back::glsl::PipelineOptions {
                shader_stage: ep.stage,
                entry_point: ep.name.clone(),
                multiview: None,
            };
            let mut glsl = String::new();
            naga::back::glsl::Writer::new(
                &mut glsl,
                &module,
                &info,
                &options,
                &pipeline,
                naga::proc::BoundsCheckPolicies::default(),
            )
            .and_then(|mut w| w.write())
            .unwrap_or_else(|e| panic!("{name}::{}: GLSL: {e}", ep.name));
            let path = tmp.join(format!("{name}.{}.comp", ep.name));
            std::fs::write(&path, glsl).unwrap();
            external_check(
                "glslangValidator",
                &[],
                &path,
                &format!("{name}::{} GLSL", ep.name),
            );
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// A WGSL struct's members: (name, byte offset), and its size.
fn wgsl_struct_layout(source: &str, name: &str) -> (Vec<(String, u32)>, u32) {
    let module = naga::front::wgsl::parse_str(source).expect("shader parses");
    let layout = module
        .types
        .iter()
        .find_map(|(_, ty)| match (&ty.name, &ty.inner) {
            (Some(n), naga::TypeInner::Struct { members, span }) if n == name => Some((
                members
                    .iter()
                    .map(|m| (m.name.clone().unwrap_or_default(), m.offset))
                    .collect(),
                *span,
            )),
            _ => None,
        })
        .unwrap_or_else(|| panic!("struct {name} not found"));
    layout
}

/// A Rust params struct's size and `(field name, byte offset)` of each field.
type StructLayout = (usize, Vec<(&'static str, usize)>);

/// `(field name, byte offset)` of each named field of a `#[repr(C)]` params struct.
macro_rules! offsets {
    ($t:ty: $($f:ident),+) => {
        (std::mem::size_of::<$t>(), vec![$((stringify!($f), std::mem::offset_of!($t, $f))),+])
    };
}

#[test]
fn params_structs_match_their_wgsl_twins() {
    use latentgpu::bench::BenchParams;
    use latentgpu::ops::*;
    let cases: Vec<(&str, &str, StructLayout)> = vec![
        (
            shaders::ELEMENTWISE,
            "EwParams",
            offsets!(EwParams: n, op, cols, _pad),
        ),
        (
            shaders::NORM,
            "NormParams",
            offsets!(NormParams: rows, d, eps, _pad),
        ),
        (
            shaders::SOFTMAX,
            "SoftmaxParams",
            offsets!(SoftmaxParams: rows, cols, causal, q_len, offset, scale, _pad),
        ),
        (
            shaders::ROPE,
            "RopeParams",
            offsets!(RopeParams: tokens, heads, head_dim, rot_dim, offset, mode, positions, rot_start),
        ),
        (
            shaders::EMBEDDING,
            "EmbeddingParams",
            offsets!(EmbeddingParams: tokens, d, vocab, first_row, rows, _pad),
        ),
        (
            shaders::MATMUL,
            "MatmulParams",
            offsets!(MatmulParams: m, n, k, batch, a_stride, b_stride, c_stride, ldc, c_offset,
                _pad),
        ),
        (
            shaders::ATTENTION,
            "AttentionParams",
            offsets!(AttentionParams: n_q, n_kv, heads, kv_heads, d_qk, d_a, d_v, causal, offset,
                scale, q, ka, kb, v, o, window, heads_per_group, page_tokens),
        ),
        (
            shaders::QKV_ROPE_SRC,
            "QkvParams",
            offsets!(QkvParams: tokens, heads, kv_heads, dh, rot_dim, mode, pos, positions,
                has_bias, has_norm, eps, row, page_tokens, _pad),
        ),
        (
            shaders::MLA_ROPE_SRC,
            "MlaRopeParams",
            offsets!(MlaRopeParams: tokens, heads, q_width, q_rot, r, rope, pos, positions, eps,
                page_tokens, _pad),
        ),
        (
            shaders::LATENT,
            "GatherParams",
            offsets!(GatherParams: latents, heads, dh, n, scale, _pad),
        ),
        (
            shaders::SAMPLE,
            "SampleParams",
            offsets!(SampleParams: vocab, top_k, top_p, inv_temperature, penalty, inv_penalty, u,
                slot),
        ),
        (
            shaders::MOE_FFN_SRC,
            "MoeParams",
            offsets!(MoeParams: tokens, top_k, d, inter, experts, first_expert, block_experts,
                _pad),
        ),
        (
            shaders::MOE_ROUTE_SRC,
            "RouteParams",
            offsets!(RouteParams: tokens, experts, top_k, groups, topk_group, method, norm,
                scaling),
        ),
        (
            shaders::BENCH,
            "BenchParams",
            offsets!(BenchParams: n, iters, _pad),
        ),
    ];
    for (source, name, (rust_size, rust_fields)) in cases {
        let (members, wgsl_size) = wgsl_struct_layout(source, name);
        assert_eq!(
            rust_size, wgsl_size as usize,
            "{name}: Rust {rust_size} bytes, WGSL {wgsl_size} bytes"
        );
        assert_eq!(
            wgsl_size % 16,
            0,
            "{name}: uniform structs are padded to 16 bytes"
        );
        // Each WGSL member lies in the Rust field that covers its offset, and is that field or
        // an element of it (`q` holds `q_off`, `q_row`, `q_head`; `_pad` holds `_pad0`, ...).
        for (member, offset) in &members {
            let (field, _) = rust_fields
                .iter()
                .rev()
                .find(|(_, o)| *o <= *offset as usize)
                .unwrap_or_else(|| panic!("{name}.{member}: no Rust field at offset {offset}"));
            assert!(
                member.starts_with(field),
                "{name}: WGSL member {member} at byte {offset} falls in Rust field {field}"
            );
        }
        let last = members.last().map_or(0, |(_, o)| *o as usize);
        for (field, offset) in &rust_fields {
            assert!(
                members
                    .iter()
                    .any(|(m, o)| *o as usize == *offset && m.starts_with(field))
                    || *offset > last,
                "{name}: Rust field {field} at byte {offset} starts no WGSL member"
            );
        }
    }
}
