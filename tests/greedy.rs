//! Greedy generation with every shipped model gives the committed tokens on every adapter
//! (`tests/fixtures/generate/greedy.json`; the browser tests check the browser's adapter against
//! the same file). `LATENTGPU_BLESS=1 cargo test --release --test greedy` rewrites the fixture
//! from the first adapter (run it again without to check every adapter against it).

mod common;
#[path = "common/greedy.rs"]
mod greedy;

use common::{contexts, on_every_adapter};
use greedy::{check_greedy, greedy_run, GreedyFixture};
use pollster::block_on;

/// The runs the fixture holds: every attention kind, a prompt each.
const RUNS: [(&str, &str); 3] = [
    ("shakespeare-latent", "ROMEO:"),
    ("shakespeare-mha", "JULIET:\nO Romeo"),
    ("shakespeare-mla", "First Citizen:\n"),
];

/// Tokens per run: long enough to go well past the prompt, short enough for a software GPU in a
/// browser.
const TOKENS: usize = 48;

#[test]
fn greedy_tokens_match_the_fixture_on_every_adapter() {
    if std::env::var_os("LATENTGPU_BLESS").is_some() {
        let ctx = &contexts()[0];
        let runs = RUNS
            .iter()
            .map(|(model, prompt)| block_on(greedy_run(ctx, model, prompt, TOKENS)))
            .collect();
        let fixture = GreedyFixture {
            made_by: "LATENTGPU_BLESS=1 cargo test --release --test greedy".into(),
            made_on: ctx.name(),
            runs,
        };
        let path = common::fixture("generate/greedy.json");
        let text = serde_json::to_string_pretty(&fixture).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
        // The checks read the fixture at compile time: rebuild to check against the new one.
        eprintln!("wrote {}; run the test again to check it", path.display());
        return;
    }
    on_every_adapter(|ctx| {
        for (model, _) in RUNS {
            block_on(check_greedy(ctx, model));
        }
    });
}
