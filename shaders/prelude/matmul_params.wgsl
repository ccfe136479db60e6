// The params of every matrix product kernel (mirrored by `ops::MatmulParams`).
struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_stride: u32,
    b_stride: u32,
    c_stride: u32,
    // C's row stride (N unless C is a wider output that a row block of B writes part of).
    ldc: u32,
    // C's first element: the column a row block of B starts at.
    c_offset: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
