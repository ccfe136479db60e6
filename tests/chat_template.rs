//! Real models' chat templates (llama.cpp's `models/templates/`, a chosen eighteen) rendered as
//! transformers' `apply_chat_template` renders them (`reference/export_chat_templates.py`): the
//! same text for a system + user turn, several turns and a finished exchange, and an error where
//! the template raises one (Gemma 2 refuses a system message). With `--all DIR` the exporter
//! writes every template of the collection; `LATENTGPU_CHAT_TEMPLATES=DIR cargo test --test
//! chat_template -- --ignored` checks them all.

use latentgpu::model::formats::chat_template::ChatTemplate;
use latentgpu::model::runtime::chat::Message;
use serde_json::Value;
use std::path::Path;

/// What comparing a directory of cases gave: texts equal to transformers', errors where
/// transformers errs too, and every other outcome named.
struct Outcome {
    matched: usize,
    both_refused: usize,
    differences: Vec<String>,
}

fn compare_dir(dir: &Path) -> Outcome {
    let cases: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    let now =
        chrono::NaiveDateTime::parse_from_str(cases["now"].as_str().unwrap(), "%Y-%m-%dT%H:%M:%S")
            .unwrap();
    let special: Vec<(String, String)> = cases["special_tokens"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let mut outcome = Outcome {
        matched: 0,
        both_refused: 0,
        differences: Vec::new(),
    };
    for (name, renders) in cases["templates"].as_object().unwrap() {
        let template = ChatTemplate {
            source: name.clone(),
            text: std::fs::read_to_string(dir.join(name)).unwrap(),
            special_tokens: special.clone(),
        };
        for case in renders.as_array().unwrap() {
            let messages: Vec<Message> = serde_json::from_value(case["messages"].clone()).unwrap();
            let add = case["add_generation_prompt"].as_bool().unwrap();
            let what = format!("{name}, {} messages", messages.len());
            match (case.get("text"), template.render_at(&messages, add, now)) {
                (Some(want), Ok(got)) if got == want.as_str().unwrap() => outcome.matched += 1,
                (None, Err(e)) if e.to_string().contains(name.as_str()) => {
                    outcome.both_refused += 1
                }
                (want, got) => outcome.differences.push(format!(
                    "{what}: transformers gave {:?}, we gave {got:?}",
                    want.or(case.get("error"))
                )),
            }
        }
    }
    outcome
}

#[test]
fn every_template_renders_transformers_text() {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/chat_templates"
    ));
    let outcome = compare_dir(dir);
    assert!(outcome.differences.is_empty(), "{:#?}", outcome.differences);
    assert!(
        outcome.matched >= 50,
        "{} renders compared",
        outcome.matched
    );
    assert!(outcome.both_refused >= 1, "Gemma 2's system message");
}

/// Every template of llama.cpp's collection (not committed): each text transformers renders is
/// ours byte for byte; where transformers raises, so do we, but for templates that iterate
/// `tools`, which transformers passes as None and we iterate as empty.
#[test]
#[ignore = "needs LATENTGPU_CHAT_TEMPLATES: the exporter's --all output"]
fn every_template_of_the_collection_renders_transformers_text() {
    let dir = std::env::var("LATENTGPU_CHAT_TEMPLATES").expect("LATENTGPU_CHAT_TEMPLATES=DIR");
    let outcome = compare_dir(Path::new(&dir));
    let unexplained: Vec<&String> = outcome
        .differences
        .iter()
        .filter(|d| !d.contains("not iterable"))
        .collect();
    println!(
        "{} texts equal, {} refused by both, {} differences (tools as None)",
        outcome.matched,
        outcome.both_refused,
        outcome.differences.len()
    );
    assert!(unexplained.is_empty(), "{unexplained:#?}");
}

/// A template's own errors are ours too, named, never a panic: `raise_exception`, a syntax
/// error, a date format `strftime_now` cannot read.
#[test]
fn a_template_that_fails_is_an_error_naming_it() {
    for (text, fragment) in [
        ("{{ raise_exception('no system role') }}", "no system role"),
        ("{% for m in messages %}", "syntax"),
        ("{{ strftime_now('%Q%') }}", "strftime_now"),
    ] {
        let t = ChatTemplate {
            source: "the test's template".into(),
            text: text.into(),
            special_tokens: Vec::new(),
        };
        let e = t
            .render(&[Message::new("user", "hi")], true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the test's template") && e.contains(fragment),
            "{e}"
        );
    }
}
