//! Which WebGPU backend to run on, chosen by name or by `LATENTGPU_BACKEND`.

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// The environment variable that picks the backend when no argument does.
pub const BACKEND_ENV: &str = "LATENTGPU_BACKEND";

/// A backend choice: one native API, the browser's WebGPU, or any of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// Vulkan (Linux, Windows, Android; Mesa lavapipe without a GPU).
    Vulkan,
    /// Metal (macOS, iOS).
    Metal,
    /// Direct3D 12 (Windows).
    Dx12,
    /// OpenGL / GLES (Mesa llvmpipe without a GPU).
    Gl,
    /// The browser's WebGPU (wasm32 only).
    Browser,
    /// The best adapter of any backend.
    #[default]
    Any,
}

impl BackendChoice {
    /// Every choice, in the order `any` prefers them.
    pub const ALL: [BackendChoice; 6] = [
        BackendChoice::Vulkan,
        BackendChoice::Metal,
        BackendChoice::Dx12,
        BackendChoice::Gl,
        BackendChoice::Browser,
        BackendChoice::Any,
    ];

    /// The wgpu backends this choice enumerates.
    pub fn backends(self) -> wgpu::Backends {
        match self {
            BackendChoice::Vulkan => wgpu::Backends::VULKAN,
            BackendChoice::Metal => wgpu::Backends::METAL,
            BackendChoice::Dx12 => wgpu::Backends::DX12,
            BackendChoice::Gl => wgpu::Backends::GL,
            BackendChoice::Browser => wgpu::Backends::BROWSER_WEBGPU,
            BackendChoice::Any => wgpu::Backends::all(),
        }
    }

    /// The choice from `LATENTGPU_BACKEND`, or `Any` when it is unset or empty.
    pub fn from_env() -> Result<Self> {
        match std::env::var(BACKEND_ENV) {
            Ok(s) if !s.trim().is_empty() => s.parse(),
            _ => Ok(BackendChoice::Any),
        }
    }

    /// The choice that matches a wgpu backend.
    pub fn of(backend: wgpu::Backend) -> Self {
        match backend {
            wgpu::Backend::Vulkan => BackendChoice::Vulkan,
            wgpu::Backend::Metal => BackendChoice::Metal,
            wgpu::Backend::Dx12 => BackendChoice::Dx12,
            wgpu::Backend::Gl => BackendChoice::Gl,
            wgpu::Backend::BrowserWebGpu => BackendChoice::Browser,
            _ => BackendChoice::Any,
        }
    }
}

impl FromStr for BackendChoice {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "vulkan" | "vk" => Ok(BackendChoice::Vulkan),
            "metal" | "mtl" => Ok(BackendChoice::Metal),
            "dx12" | "d3d12" => Ok(BackendChoice::Dx12),
            "gl" | "gles" | "opengl" => Ok(BackendChoice::Gl),
            "browser" | "webgpu" => Ok(BackendChoice::Browser),
            "any" | "auto" => Ok(BackendChoice::Any),
            _ => Err(Error::UnknownBackend {
                found: crate::error::shown(s),
            }),
        }
    }
}

impl fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendChoice::Vulkan => "vulkan",
            BackendChoice::Metal => "metal",
            BackendChoice::Dx12 => "dx12",
            BackendChoice::Gl => "gl",
            BackendChoice::Browser => "browser",
            BackendChoice::Any => "any",
        })
    }
}
