// The index idiom of the grids `gpu::batch::grid` makes (more workgroups than one dimension
// allows are laid out in x, then y): workgroup (x, y) is number x + y·nwg.x, and invocation
// lid of it is element number·WG + lid.
fn workgroup_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

fn linear_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return workgroup_index(wid, nwg) * WG + lid;
}
