// The params of every matrix product kernel (mirrored by `ops::MatmulParams`).
struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_stride: u32,
    b_stride: u32,
    c_stride: u32,
    _pad: u32,
}
