// A quantized block's 32 activations as 8 vec4s, from vec4 x of `a`: lanes 0 to 7 of the
// subgroup each load one (every lane loads, the others a copy) and broadcast it to the rest.
// The activations are the same for every invocation; on a CPU rasteriser a storage load is a
// loop over the lanes, so one load and 8 broadcasts cost less than 8 loads (about 6% of a q4
// decode product's time on lavapipe). Needs subgroups of at least 8 lanes, in uniform control
// flow.
fn block_acts(x: u32, lane: u32) -> array<vec4<f32>, 8> {
    let mine = a[x + (lane & 7u)];
    return array<vec4<f32>, 8>(subgroupBroadcast(mine, 0u), subgroupBroadcast(mine, 1u),
                               subgroupBroadcast(mine, 2u), subgroupBroadcast(mine, 3u),
                               subgroupBroadcast(mine, 4u), subgroupBroadcast(mine, 5u),
                               subgroupBroadcast(mine, 6u), subgroupBroadcast(mine, 7u));
}
