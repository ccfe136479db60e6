//! Reading the files a user points us at: regular files only (a FIFO would block, `/dev/zero`
//! never ends), no more bytes than a cap checked before reading, and paths shown with control
//! characters escaped.

use crate::error::{shown, Error, Result};
use std::path::Path;

/// `config.json`, `generation_config.json`, `model.safetensors.index.json` (real ones are a
/// few KB to a few hundred KB).
pub const CONFIG_CAP: u64 = 16 << 20;
/// `tokenizer.json` (real ones are up to a few tens of MB).
pub const TOKENIZER_CAP: u64 = 512 << 20;
/// A golden file of `compare` (every layer's outputs for a short sequence).
pub const GOLDEN_CAP: u64 = 4 << 30;

/// `path` as an error message shows it (see [`shown`]).
pub fn shown_path(path: &Path) -> String {
    shown(&path.display().to_string())
}

/// What kind of file `path` is, when it is not a regular file.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

/// Opens `path` for reading if it is a regular file (following symlinks), checked before it
/// is opened: opening a FIFO would block.
pub fn open_regular(path: &Path) -> Result<std::fs::File> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::Invalid {
            what: format!("file {}", shown_path(path)),
            expected: "a regular file".into(),
            found: kind_of(&meta).into(),
        });
    }
    std::fs::File::open(path).map_err(|e| Error::io(path, e))
}

/// The bytes of the regular file `path`, at most `cap` of them (checked before reading, and
/// again while reading, should the file grow).
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = open_regular(path)?;
    let too_big = |found: u64| Error::Invalid {
        what: format!("file {}", shown_path(path)),
        expected: format!("at most {cap} bytes"),
        found: format!("{found} bytes"),
    };
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len > cap {
        return Err(too_big(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > cap {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The UTF-8 text of the regular file `path`, at most `cap` bytes.
pub fn read_text_capped(path: &Path, cap: u64) -> Result<String> {
    String::from_utf8(read_capped(path, cap)?).map_err(|e| Error::Invalid {
        what: format!("file {}", shown_path(path)),
        expected: "UTF-8 text".into(),
        found: format!("invalid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
    })
}
