// 16-bit weights read as u32 words on any adapter, shader-f16 or not: a word holds two values,
// the first in its low half. BF16 chooses the format: bf16 (the f32's high half, a shift), or
// f16 (unpack2x16float). Both widen to f32 exactly.

override BF16: bool = false;

// The two values of a word.
fn half_pair(word: u32) -> vec2<f32> {
    if (BF16) {
        return vec2<f32>(bitcast<f32>(word << 16u), bitcast<f32>(word & 0xffff0000u));
    }
    return unpack2x16float(word);
}

// The four values of two words.
fn half_quad(words: vec2<u32>) -> vec4<f32> {
    return vec4<f32>(half_pair(words.x), half_pair(words.y));
}
