//! The byte-level tokenizer of the shipped models: token id = byte value.

/// Encodes text as its UTF-8 bytes.
pub fn encode(text: &str) -> Vec<u32> {
    text.bytes().map(u32::from).collect()
}

/// Turns a stream of byte tokens back into text, holding back incomplete UTF-8 sequences until
/// their last byte arrives (and showing invalid bytes as U+FFFD).
#[derive(Default, Debug)]
pub struct ByteDecoder {
    pending: Vec<u8>,
}

impl ByteDecoder {
    /// Adds one token; returns the text it completes (possibly empty).
    pub fn push(&mut self, token: u32) -> String {
        self.pending.push(token.min(255) as u8);
        match std::str::from_utf8(&self.pending) {
            Ok(s) => {
                let out = s.to_string();
                self.pending.clear();
                out
            }
            Err(e) if e.error_len().is_none() && self.pending.len() < 4 => {
                // An incomplete sequence at the end: wait for more bytes.
                let valid = e.valid_up_to();
                let out = String::from_utf8_lossy(&self.pending[..valid]).into_owned();
                self.pending.drain(..valid);
                out
            }
            Err(_) => {
                let out = String::from_utf8_lossy(&self.pending).into_owned();
                self.pending.clear();
                out
            }
        }
    }

    /// Whatever is still held back, lossily.
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}

/// Decodes a whole token sequence.
pub fn decode(tokens: &[u32]) -> String {
    let mut d = ByteDecoder::default();
    let mut s: String = tokens.iter().map(|&t| d.push(t)).collect();
    s.push_str(&d.finish());
    s
}
