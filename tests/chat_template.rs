//! Real models' chat templates (llama.cpp's `models/templates/`, a chosen fifteen) rendered as
//! transformers' `apply_chat_template` renders them (`reference/export_chat_templates.py`): the
//! same text for a system + user turn, several turns and a finished exchange, and an error where
//! the template raises one (Gemma 2 refuses a system message).

use latentgpu::model::formats::chat_template::ChatTemplate;
use latentgpu::model::runtime::chat::Message;
use serde_json::Value;
use std::path::Path;

fn dir() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/chat_templates"
    ))
}

#[test]
fn every_template_renders_transformers_text() {
    let cases: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("cases.json")).unwrap()).unwrap();
    let now =
        chrono::NaiveDateTime::parse_from_str(cases["now"].as_str().unwrap(), "%Y-%m-%dT%H:%M:%S")
            .unwrap();
    let special: Vec<(String, String)> = cases["special_tokens"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let mut rendered = 0;
    for (name, renders) in cases["templates"].as_object().unwrap() {
        let template = ChatTemplate {
            source: name.clone(),
            text: std::fs::read_to_string(dir().join(name)).unwrap(),
            special_tokens: special.clone(),
        };
        for case in renders.as_array().unwrap() {
            let messages: Vec<Message> = serde_json::from_value(case["messages"].clone()).unwrap();
            let add = case["add_generation_prompt"].as_bool().unwrap();
            let got = template.render_at(&messages, add, now);
            match (&case.get("text"), got) {
                (Some(want), Ok(got)) => {
                    assert_eq!(
                        &got,
                        want.as_str().unwrap(),
                        "{name}, {} messages",
                        messages.len()
                    );
                    rendered += 1;
                }
                (None, Err(e)) => {
                    let e = e.to_string();
                    assert!(e.contains(name.as_str()), "{e}");
                }
                (want, got) => panic!("{name}: transformers gave {want:?}, we gave {got:?}"),
            }
        }
    }
    assert!(rendered >= 35, "{rendered} renders compared");
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
