//! The architectures this runtime runs, one file each: how a family's `config.json` and GGUF
//! metadata map to the model description, and how its files name and lay out its tensors.

pub mod hf;
