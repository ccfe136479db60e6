//! `latentgpu chat`, scripted through standard input on the `llama-gqa3` fixture with a chat
//! template (`reference/export_chat_fixture.py`): each turn's prompt is transformers'
//! `apply_chat_template` tokens, each reply transformers' greedy tokens, turn after turn, and the
//! second turn prefills only what the conversation adds to the cache. A model without a
//! template is an error that names what was looked for.

mod common;

use common::{fixture, json_ids};
use std::io::Write;
use std::process::{Command, Stdio};

/// The fixture model with the chat template beside it, in a scratch directory.
fn model_with_template(tag: &str, template: bool) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("latentgpu-chat-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let src = fixture("hf-dense").join("llama-gqa3").join("model");
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, d.join(f.file_name().unwrap())).unwrap();
    }
    if template {
        let t = fixture("chat").join("chat_template.jinja");
        std::fs::copy(t, d.join("chat_template.jinja")).unwrap();
    }
    d
}

/// Runs `chat` with `input` on standard input; returns standard output and error.
fn chat(args: &[&str], input: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_latentgpu"))
        .arg("chat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A chat that refuses its model exits before reading; its closed pipe is
    // not the test's failure (the exit status and the error text are).
    match child.stdin.take().unwrap().write_all(input.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r.unwrap(),
    }
    let out = child.wait_with_output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn a_scripted_conversation_gives_transformers_tokens_turn_after_turn() {
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("chat").join("expected.json")).unwrap(),
    )
    .unwrap();
    let dir = model_with_template("turns", true);
    let turns = expected["turns"].as_array().unwrap();
    let input: String = turns
        .iter()
        .map(|t| format!("{}\n", t["user"].as_str().unwrap()))
        .collect();
    let max = expected["max_tokens"].to_string();
    let system = expected["system"].as_str().unwrap();
    let args = [
        "--model",
        dir.to_str().unwrap(),
        "--system",
        system,
        "--max-tokens",
        &max,
        "--json",
    ];
    let (ok, out, err) = chat(&args, &input);
    assert!(ok, "{err}");
    let replies: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(replies.len(), turns.len(), "{out}");
    for (i, (got, want)) in replies.iter().zip(turns).enumerate() {
        assert_eq!(
            json_ids(&got["prompt_ids"]),
            json_ids(&want["prompt_ids"]),
            "turn {i}"
        );
        assert_eq!(json_ids(&got["ids"]), json_ids(&want["ids"]), "turn {i}");
        assert_eq!(got["text"], want["text"], "turn {i}");
    }
    // The second turn runs only what follows the first turn's prompt and reply in the cache.
    let first = json_ids(&turns[0]["prompt_ids"]).len() + json_ids(&turns[0]["ids"]).len();
    let prompt = json_ids(&turns[1]["prompt_ids"]).len();
    let reused = replies[1]["reused"].as_u64().unwrap() as usize;
    assert!(reused >= first - 1, "reused {reused} of {first}");
    assert_eq!(
        replies[1]["prefilled"].as_u64().unwrap() as usize,
        prompt - reused
    );
    // /reset starts over: the same first turn again, nothing reused.
    let (ok, out, err) = chat(&args, &format!("{}/reset\n{}", input, input));
    assert!(ok, "{err}");
    let replies: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(replies.len(), 4);
    assert_eq!(replies[2]["ids"], replies[0]["ids"]);
    assert_eq!(replies[2]["reused"], 0);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_model_without_a_chat_template_is_an_error_that_names_what_was_looked_for() {
    let dir = model_with_template("none", false);
    let (ok, _, err) = chat(&["--model", dir.to_str().unwrap()], "hello\n");
    assert!(!ok);
    assert!(
        err.starts_with("error:") && !err.contains("panicked"),
        "{err}"
    );
    assert!(
        err.contains("chat_template") && err.contains("--chat-template"),
        "{err}"
    );
    // --chat-template FILE supplies one.
    let t = fixture("chat").join("chat_template.jinja");
    let args = [
        "--model",
        dir.to_str().unwrap(),
        "--chat-template",
        t.to_str().unwrap(),
        "--json",
    ];
    let (ok, out, err) = chat(&args, "w10 w11\n");
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let _ = std::fs::remove_dir_all(dir);
}
