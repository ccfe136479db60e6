//! The command line run by the tests: a hang fails the test instead of stalling it, and a
//! failure must be a named error, never a panic.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `latentgpu` binary of this build.
pub fn latentgpu() -> Command {
    Command::new(env!("CARGO_BIN_EXE_latentgpu"))
}

/// Runs the CLI, killing it after a minute.
pub fn run(args: &[&str]) -> Output {
    let mut child = latentgpu()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("latentgpu {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Asserts `args` fail with exit `code`, an `error:` line of ours naming every fragment, and
/// no panic.
pub fn fails(args: &[&str], code: i32, fragments: &[&str]) {
    let out = run(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    assert!(err.starts_with("error:"), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    for f in fragments {
        assert!(err.contains(f), "{args:?}: '{f}' not in: {err}");
    }
}

/// Runs `args` and asserts they succeed, showing standard error when they do not.
pub fn succeeds(args: &[&str]) -> Output {
    let out = run(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {err}");
    out
}
