// A cache row written as f32 words: word w is value w of the workgroup's `out_sh` (declared by
// the shader that includes this).
alias KvWord = f32;

fn kv_words(width: u32) -> u32 {
    return width;
}

fn kv_word(w: u32) -> KvWord {
    return out_sh[w];
}
