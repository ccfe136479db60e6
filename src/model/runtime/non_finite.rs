//! Where NaN or infinity first appears in a forward pass. The GPU sampler reports scores that
//! are not finite (it reads every one of them anyway); the error then names the first block
//! whose output is not finite, found by running the sequence again in one pass and reading
//! every block's output.

use crate::error::{Error, Result};
use crate::gpu::{Batch, GpuContext, GpuTensor};
use crate::model::layers::transformer::{Logits, Model};

/// The error for values (`what`) that are not finite at `position` of `ids` (a sequence run
/// from an empty cache).
pub async fn non_finite_error(
    ctx: &GpuContext,
    model: &Model,
    ids: &[u32],
    position: usize,
    what: &str,
) -> Error {
    let origin = match first_non_finite(ctx, model, ids).await {
        Ok(origin) => origin,
        Err(e) => format!("a layer not found (running the sequence again failed: {e})"),
    };
    Error::NonFinite {
        what: what.to_string(),
        position,
        origin,
    }
}

/// Which layer's output is the first that is not finite at some position of `ids`, run again
/// in one pass from an empty cache; when every block's is finite, the final norm or the LM head.
async fn first_non_finite(ctx: &GpuContext, model: &Model, ids: &[u32]) -> Result<String> {
    let mut cache = model.new_cache(ctx)?;
    let mut b = Batch::new(ctx);
    let (_, hidden) = model.record_forward(&mut b, ids, &mut cache, Logits::Last)?;
    let outputs: Vec<&GpuTensor> = hidden.iter().collect();
    let values = b.read_async(&outputs).await?;
    let first = values.iter().position(|v| v.iter().any(|x| !x.is_finite()));
    Ok(match first {
        Some(0) => "block 0 (or the embedding of its input)".to_string(),
        Some(i) => format!("block {i}"),
        None => "the final norm or the LM head (every block's output is finite)".to_string(),
    })
}

/// Checks that `values` (named `what`, at `position` of `ids`) are finite; if not, the error
/// names the first layer whose output is not.
pub async fn check_finite(
    ctx: &GpuContext,
    model: &Model,
    (ids, position): (&[u32], usize),
    values: &[f32],
    what: &str,
) -> Result<()> {
    match values.iter().all(|x| x.is_finite()) {
        true => Ok(()),
        false => Err(non_finite_error(ctx, model, ids, position, what).await),
    }
}
