// The latent gather update's params (ops::GatherParams), for latent.wgsl and latent_lanes.wgsl.
struct GatherParams {
    latents: u32,
    heads: u32,
    dh: u32,
    n: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

