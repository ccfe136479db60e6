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
    assert_eq!(
        on_disk, listed,
        "shaders::ALL must list every file in shaders/"
    );
    for (name, source) in shaders::ALL {
        let on_disk = std::fs::read_to_string(dir.join(name)).unwrap();
        assert_eq!(
            &on_disk, source,
            "{name}: embedded source differs from the file"
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

        // SPIR-V (Vulkan).
        let spv = naga::back::spv::write_vec(&module, &info, &Default::default(), None)
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

        // GLSL (GL backend, one program per entry point). A shader that enables f16 only runs
        // on adapters with shader-f16, which wgpu's GL backend never has: it has no GLSL form.
        if source.contains("enable f16;") {
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

/// The byte size of the WGSL struct `name` in `source`.
fn wgsl_struct_size(source: &str, name: &str) -> u32 {
    let (module, _) = parse(name, source);
    let size = module
        .types
        .iter()
        .find_map(|(_, ty)| match (&ty.name, &ty.inner) {
            (Some(n), naga::TypeInner::Struct { span, .. }) if n == name => Some(*span),
            _ => None,
        })
        .unwrap_or_else(|| panic!("struct {name} not found"));
    size
}

#[test]
fn params_structs_match_their_wgsl_twins() {
    use latentgpu::ops::*;
    use std::mem::size_of;
    let cases: &[(&str, &str, usize)] = &[
        (shaders::ELEMENTWISE, "EwParams", size_of::<EwParams>()),
        (shaders::NORM, "NormParams", size_of::<NormParams>()),
        (
            shaders::SOFTMAX,
            "SoftmaxParams",
            size_of::<SoftmaxParams>(),
        ),
        (shaders::ROPE, "RopeParams", size_of::<RopeParams>()),
        (
            shaders::EMBEDDING,
            "EmbeddingParams",
            size_of::<EmbeddingParams>(),
        ),
        (shaders::MATMUL, "MatmulParams", size_of::<MatmulParams>()),
        (
            shaders::ATTENTION,
            "AttentionParams",
            size_of::<AttentionParams>(),
        ),
        (
            shaders::BENCH,
            "BenchParams",
            size_of::<latentgpu::bench::BenchParams>(),
        ),
    ];
    for &(source, name, rust) in cases {
        let wgsl = wgsl_struct_size(source, name) as usize;
        assert_eq!(rust, wgsl, "{name}: Rust {rust} bytes, WGSL {wgsl} bytes");
        assert_eq!(
            wgsl % 16,
            0,
            "{name}: uniform structs are padded to 16 bytes"
        );
    }
}
