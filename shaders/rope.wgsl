// Rotary position embedding, in place on x [tokens, heads, head_dim]: values
// [rot_start, rot_start + rot_dim) of every head are rotated by the angle (offset + token) * theta_i, read from host-built tables
// cos/sin [positions, rot_dim / 2].
//   mode 0, interleaved pairs (x[2i], x[2i+1]);  mode 1, half-split pairs (x[i], x[i + rot_dim/2]).

struct RopeParams {
    tokens: u32,
    heads: u32,
    head_dim: u32,
    rot_dim: u32,
    offset: u32,
    mode: u32,
    positions: u32,
    rot_start: u32,
}

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: RopeParams;
@group(0) @binding(1) var<storage, read> cos_t: array<f32>;   // [positions, rot_dim / 2]
@group(0) @binding(2) var<storage, read> sin_t: array<f32>;   // [positions, rot_dim / 2]
@group(0) @binding(3) var<storage, read_write> x: array<f32>; // [tokens, heads, head_dim]

@compute @workgroup_size(WG)
fn rope(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let half = p.rot_dim / 2u;
    let id = linear_index(wid, nwg, lid);
    if (id >= p.tokens * p.heads * half) {
        return;
    }
    let i = id % half;
    let head_row = id / half; // token * heads + head
    let token = head_row / p.heads;
    let pos = p.offset + token;
    let c = cos_t[pos * half + i];
    let s = sin_t[pos * half + i];
    let base = head_row * p.head_dim + p.rot_start;
    var i0 = base + 2u * i;
    var i1 = i0 + 1u;
    if (p.mode == 1u) {
        i0 = base + i;
        i1 = base + i + half;
    }
    let x0 = x[i0];
    let x1 = x[i1];
    x[i0] = x0 * c - x1 * s;
    x[i1] = x0 * s + x1 * c;
}
