//! The `latentgpu` command line (native). In the browser the library runs from a web page
//! instead: see `examples/web`.

#[cfg(not(target_arch = "wasm32"))]
mod cli;

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    cli::main();
}

/// Nothing to run: a wasm32 build of the command line exists only so that `cargo test` for the
/// browser can build every target.
#[cfg(target_arch = "wasm32")]
fn main() {}
