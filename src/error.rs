//! The library's error type: every failure names the thing, what was expected and what was found.

/// Errors from the GPU runtime, the kernels' launchers and the model loaders.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No adapter was found for the requested backend(s).
    #[error("no GPU adapter found (backends tried: {tried}).{hint}")]
    NoAdapter {
        /// The backends that were enumerated.
        tried: String,
        /// How to get one (e.g. Mesa lavapipe on Linux), or empty.
        hint: String,
    },
    /// A backend name that is not one of the known ones.
    #[error("unknown backend '{found}': expected one of vulkan, metal, dx12, gl, browser, any")]
    UnknownBackend {
        /// The name that was given.
        found: String,
    },
    /// The adapter refused to create a device.
    #[error("could not create a device on adapter '{adapter}': {reason}")]
    RequestDevice {
        /// The adapter's name and backend.
        adapter: String,
        /// wgpu's reason.
        reason: String,
    },
    /// A tensor given to an operation has the wrong shape.
    #[error("{op}: {what}: expected {expected}, found {found}")]
    Shape {
        /// The operation (kernel launcher) that checked.
        op: &'static str,
        /// Which argument or dimension.
        what: String,
        /// What the operation needs.
        expected: String,
        /// What it was given.
        found: String,
    },
    /// A buffer larger than the adapter allows.
    #[error(
        "buffer '{label}' needs {bytes} bytes, over the adapter's {limit_name} of {limit} bytes"
    )]
    BufferTooLarge {
        /// The buffer's label.
        label: String,
        /// Bytes requested.
        bytes: u64,
        /// Which limit.
        limit_name: &'static str,
        /// The limit's value.
        limit: u64,
    },
    /// An index (token id, position) outside its valid range.
    #[error("{what}: index {found} out of range (expected < {bound})")]
    OutOfRange {
        /// What the index indexes.
        what: String,
        /// The index given.
        found: u64,
        /// The exclusive upper bound.
        bound: u64,
    },
    /// A dispatch too large for the adapter.
    #[error("{op}: {what} needs {found} workgroups, over the adapter's limit of {limit}")]
    DispatchTooLarge {
        /// The operation.
        op: &'static str,
        /// The dimension.
        what: &'static str,
        /// Workgroups needed.
        found: u64,
        /// The limit.
        limit: u64,
    },
    /// Reading a buffer back from the GPU failed.
    #[error("reading back '{label}' from the GPU failed: {reason}")]
    Readback {
        /// The buffer's label.
        label: String,
        /// Why.
        reason: String,
    },
    /// A GPU validation or out-of-memory error caught at submission.
    #[error("GPU error during {during}: {reason}")]
    Gpu {
        /// What was being done.
        during: String,
        /// wgpu's message.
        reason: String,
    },
    /// A file could not be read.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// The OS's reason.
        reason: String,
    },
    /// A weights file is malformed, truncated, or lacks or mis-shapes a tensor.
    #[error("weights {file}: {what}: expected {expected}, found {found}")]
    Weights {
        /// The file.
        file: String,
        /// The tensor (or the file's header).
        what: String,
        /// What the config needs.
        expected: String,
        /// What the file holds.
        found: String,
    },
    /// The model produced NaN or infinity.
    #[error(
        "{what} at position {position} are not finite (NaN or infinity); first produced by \
         {origin}"
    )]
    NonFinite {
        /// What was not finite (e.g. "the next token's scores").
        what: String,
        /// The sequence position.
        position: usize,
        /// The first layer whose output was not finite, as far as it was found.
        origin: String,
    },
    /// An invalid argument that is not a shape.
    #[error("{what}: expected {expected}, found {found}")]
    Invalid {
        /// The argument.
        what: String,
        /// What is allowed.
        expected: String,
        /// What was given.
        found: String,
    },
}

impl Error {
    /// This error with the `what` of an [`Error::Invalid`] rewritten by `f` (to say where the
    /// value came from); other errors as they are.
    pub(crate) fn in_context(self, f: impl FnOnce(&str) -> String) -> Self {
        match self {
            Error::Invalid {
                what,
                expected,
                found,
            } => Error::Invalid {
                what: f(&what),
                expected,
                found,
            },
            other => other,
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: &std::path::Path, e: std::io::Error) -> Self {
        Error::Io {
            path: shown(&path.display().to_string()),
            reason: e.to_string(),
        }
    }
}

/// Longest part of a user's value or path an error message echoes.
pub const SHOWN_CHARS: usize = 200;

/// `text` as an error message shows it: control characters escaped, at most 200 characters
/// (then "…").
pub fn shown(text: &str) -> String {
    escaped(text, SHOWN_CHARS, false)
}

/// `text` with control characters other than newlines escaped, at most `max` characters (then
/// "…"): a whole message as the command line prints it.
pub fn shown_within(text: &str, max: usize) -> String {
    escaped(text, max, true)
}

fn escaped(text: &str, max: usize, keep_newlines: bool) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        match c.is_control() && !(keep_newlines && c == '\n') {
            true => out.extend(c.escape_default()),
            false => out.push(c),
        }
    }
    out
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Builds an [`Error::Shape`] (used by every launcher's guards).
pub(crate) fn shape_err(
    op: &'static str,
    what: impl Into<String>,
    expected: impl std::fmt::Display,
    found: impl std::fmt::Display,
) -> Error {
    Error::Shape {
        op,
        what: what.into(),
        expected: expected.to_string(),
        found: found.to_string(),
    }
}
