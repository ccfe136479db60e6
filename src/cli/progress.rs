//! The progress bar of a long prompt's prefill: shown on standard error once the prefill has
//! taken a few seconds, so short prompts print nothing.

use latentgpu::model::layers::transformer::PREFILL_CHUNK;
use std::time::{Duration, Instant};

/// How long a prefill runs before its bar appears.
const SHOW_AFTER: Duration = Duration::from_secs(2);

/// A callback for [`latentgpu::model::Decoder::on_prefill_progress`]: `(tokens done, tokens in
/// all)` drives a bar that appears after [`SHOW_AFTER`] and clears itself at the last chunk.
pub fn prefill_bar() -> impl FnMut(usize, usize) {
    let bar = indicatif::ProgressBar::hidden().with_style(
        indicatif::ProgressStyle::with_template(
            "prefill [{bar:30}] {pos}/{len} tokens, {per_sec}, {eta} left",
        )
        .expect("static template"),
    );
    let mut start: Option<Instant> = None;
    move |done, total| {
        let started = *start.get_or_insert_with(Instant::now);
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        if bar.is_hidden() && started.elapsed() >= SHOW_AFTER {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
        // The last report: only the final chunk is left.
        if done + PREFILL_CHUNK >= total {
            bar.finish_and_clear();
            start = None;
        }
    }
}
