//! Standard output as Unix tools treat it: a reader that went away (`latentgpu info | head -1`)
//! ends the command quietly, any other failure to write (a full disk) is an error that names
//! standard output. Rust ignores SIGPIPE, so without this `println!` would panic in both cases.

use std::io::Write;

/// Standard output's reader has gone: the command stops quietly (exit 0).
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed by its reader")]
pub struct PipeClosed;

/// The error for a failed write to standard output.
pub fn write_error(e: std::io::Error) -> anyhow::Error {
    match e.kind() {
        std::io::ErrorKind::BrokenPipe => PipeClosed.into(),
        _ => anyhow::Error::new(e).context("writing to standard output"),
    }
}

/// Writes `args` to standard output and flushes it.
pub fn write(args: std::fmt::Arguments) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.flush())
        .map_err(write_error)
}

/// Lines written from a callback that cannot return an error: the first failure is kept,
/// later lines are dropped, and [`Lines::finish`] returns it.
pub struct Lines(anyhow::Result<()>);

impl Lines {
    /// No line written yet.
    pub fn new() -> Self {
        Lines(Ok(()))
    }

    /// Writes `args` and a newline unless an earlier write failed.
    pub fn line(&mut self, args: std::fmt::Arguments) {
        if self.0.is_ok() {
            self.0 = write(format_args!("{args}\n"));
        }
    }

    /// The first failure, if any.
    pub fn finish(self) -> anyhow::Result<()> {
        self.0
    }
}

/// Whether `e` is (or was caused by) a closed standard output.
pub fn is_pipe_closed(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<PipeClosed>())
}

/// `println!` that returns the write's error from the enclosing function (see the module).
macro_rules! outln {
    () => { $crate::cli::output::write(format_args!("\n"))? };
    ($($arg:tt)*) => { $crate::cli::output::write(format_args!("{}\n", format_args!($($arg)*)))? };
}
