// A cache row written as packed 16-bit floats: word w holds values 2w and 2w + 1 of the
// workgroup's `out_sh` (declared by the shader that includes this), low half first, each
// rounded to the nearest f16.
alias KvWord = u32;

fn kv_words(width: u32) -> u32 {
    return width / 2u;
}

fn kv_word(w: u32) -> KvWord {
    return pack2x16float(vec2<f32>(out_sh[2u * w], out_sh[2u * w + 1u]));
}
