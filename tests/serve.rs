//! `latentgpu serve` on loopback, spoken to over plain HTTP: `/health`, `/v1/models`, a chat
//! completion whole and streamed as server-sent events giving the reply `latentgpu chat` and
//! transformers give (`tests/fixtures/chat/expected.json`), a plain completion, `usage`, the
//! OpenAI error shape and status of bad requests, and the API key. The same server spoken to
//! with the `openai` package is `tests/serve_openai.py` (run by the ignored test below).

mod common;

use common::{fixture, json_ids};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

/// A running server over the chat fixture; killed when dropped.
struct Server {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start(tag: &str, extra: &[&str]) -> Server {
    let dir = std::env::temp_dir().join(format!("latentgpu-serve-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in std::fs::read_dir(fixture("hf-dense").join("llama-gqa3").join("model")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::copy(
        fixture("chat").join("chat_template.jinja"),
        dir.join("chat_template.jinja"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_latentgpu"))
        .args(["serve", "--model", dir.to_str().unwrap(), "--port", "0"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut port = None;
    for _ in 0..50 {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(addr) = line.trim().strip_prefix("listening on http://") {
            port = addr.rsplit(':').next().and_then(|p| p.parse().ok());
            break;
        }
    }
    // Keep draining standard error so the server never blocks on it.
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let server = Server {
        child,
        port: port.expect("the server's address on standard error"),
        dir,
    };
    // The model loads after the socket opens: /health says when it is ready.
    for _ in 0..600 {
        if request(&server, "GET", "/health", None, &[]).0 == 200 {
            return server;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the server did not become healthy");
}

/// One request (`Connection: close`); returns the status and the body.
fn request(
    server: &Server,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[&str],
) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let body = body.unwrap_or("");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    // A server that refuses a body (413) may answer and close before reading all of it: what
    // it answered is read whatever the write gave.
    let _ = s.write_all(format!("{head}\r\n{body}").as_bytes());
    let mut raw = Vec::new();
    let read = s.read_to_end(&mut raw);
    assert!(!raw.is_empty(), "{method} {path}: no response ({read:?})");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text[9..12].parse().unwrap();
    let (headers, mut rest) = text.split_once("\r\n\r\n").unwrap();
    let mut out = String::new();
    if headers
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        // Chunked: sizes in hex, each chunk after its line.
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
    } else {
        out.push_str(rest);
    }
    (status, out)
}

fn post(server: &Server, path: &str, body: Value) -> (u16, Value) {
    let (status, text) = request(server, "POST", path, Some(&body.to_string()), &[]);
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixture("chat").join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn first_turn() -> Value {
    let e = expected();
    json!({
        "model": "any",
        "messages": [
            {"role": "system", "content": e["system"]},
            {"role": "user", "content": e["turns"][0]["user"]},
        ],
        "max_tokens": e["max_tokens"],
        "temperature": 0,
    })
}

#[test]
fn chat_completions_give_transformers_reply_whole_and_streamed() {
    let server = start("chat", &[]);
    let want = expected()["turns"][0].clone();
    let (status, models) = request(&server, "GET", "/v1/models", None, &[]);
    assert_eq!(status, 200, "{models}");
    assert!(models.contains("\"object\":\"list\""), "{models}");

    let (status, r) = post(&server, "/v1/chat/completions", first_turn());
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["object"], "chat.completion");
    assert_eq!(r["choices"][0]["message"]["content"], want["text"]);
    assert_eq!(r["choices"][0]["finish_reason"], "length");
    let prompt = json_ids(&want["prompt_ids"]).len();
    let completion = json_ids(&want["ids"]).len();
    assert_eq!(
        r["usage"],
        json!({"prompt_tokens": prompt, "completion_tokens": completion,
                                  "total_tokens": prompt + completion})
    );

    let mut body = first_turn();
    body["stream"] = true.into();
    body["stream_options"] = json!({"include_usage": true});
    let (status, text) = request(
        &server,
        "POST",
        "/v1/chat/completions",
        Some(&body.to_string()),
        &[],
    );
    assert_eq!(status, 200, "{text}");
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(streamed, want["text"].as_str().unwrap());
    assert_eq!(
        chunks.last().unwrap()["usage"]["completion_tokens"],
        completion
    );

    let (status, r) = post(
        &server,
        "/v1/completions",
        json!({"prompt": "w10 w11 w12", "max_tokens": 4, "temperature": 0}),
    );
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["object"], "text_completion");
    assert_eq!(r["usage"]["completion_tokens"], 4);
    let (status, metrics) = request(&server, "GET", "/metrics", None, &[]);
    assert_eq!(status, 200);
    assert!(metrics.contains("latentgpu_requests_total 3"), "{metrics}");
}

#[test]
fn bad_requests_get_openai_errors_with_their_status() {
    let server = start("bad", &["--api-key", "sesame"]);
    let key = ["Authorization: Bearer sesame"];
    let cases: [(&str, u16, &str); 7] = [
        ("not json", 400, "not JSON"),
        (r#"{"messages": [], "max_tokens": 4}"#, 400, "messages"),
        (
            r#"{"messages": [{"role": "user", "content": "w1"}], "n": 2}"#,
            400,
            "'n'",
        ),
        (
            r#"{"messages": [{"role": "user", "content": "w1"}], "tools": []}"#,
            400,
            "'tools'",
        ),
        (
            r#"{"messages": [{"role": "user", "content": 7}]}"#,
            400,
            "messages[0].content",
        ),
        (
            r#"{"messages": [{"role": "user", "content": "w1"}], "temperature": "hot"}"#,
            400,
            "temperature",
        ),
        (
            r#"{"messages": [{"role": "user", "content": "w1"}], "max_tokens": 0}"#,
            400,
            "max_tokens",
        ),
    ];
    for (body, want, fragment) in cases {
        let (status, text) = request(&server, "POST", "/v1/chat/completions", Some(body), &key);
        assert_eq!(status, want, "{body}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(fragment), "{body}: {message}");
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }
    // A prompt past the context (the fixture's 2048 tokens) names both lengths.
    let long = vec!["w7"; 2100].join(" ");
    let body = json!({"messages": [{"role": "user", "content": long}]}).to_string();
    let (status, text) = request(&server, "POST", "/v1/chat/completions", Some(&body), &key);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("context holds 2048"), "{text}");
    // No key, a wrong key: 401.
    let (status, text) = request(&server, "GET", "/v1/models", None, &[]);
    assert_eq!(status, 401, "{text}");
    let (status, _) = request(
        &server,
        "GET",
        "/v1/models",
        None,
        &["Authorization: Bearer nope"],
    );
    assert_eq!(status, 401);
    // A body past the cap: 413.
    let big = format!(r#"{{"prompt": "{}"}}"#, "w".repeat(2 << 20));
    let (status, _) = request(&server, "POST", "/v1/completions", Some(&big), &key);
    assert_eq!(status, 413);
}

/// The `openai` Python package against the server: `LATENTGPU_PYTHON` names a Python that has
/// it (`python3 -m pip install openai`).
#[test]
#[ignore = "needs LATENTGPU_PYTHON: a Python with the openai package"]
fn the_openai_package_gets_transformers_reply() {
    let python = std::env::var("LATENTGPU_PYTHON").expect("LATENTGPU_PYTHON");
    let server = start("openai", &[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/serve_openai.py");
    let out = Command::new(python)
        .args([script, &format!("http://127.0.0.1:{}/v1", server.port)])
        .arg(fixture("chat").join("expected.json"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("passed"), "{text}");
}

/// Clients at once, each sending several requests: every response is complete and is its own
/// request's (each prompt's greedy reply, as it gets alone), nothing is lost, and the server is
/// healthy after.
#[test]
fn concurrent_clients_each_get_their_own_replies() {
    let server = start("load", &[]);
    let body = |i: usize| json!({"prompt": format!("w{} w{}", 10 + i, 30 + i), "max_tokens": 6, "temperature": 0});
    // Each prompt's reply alone first.
    let alone: Vec<Value> = (0..4)
        .map(|i| post(&server, "/v1/completions", body(i)).1["choices"][0]["text"].clone())
        .collect();
    std::thread::scope(|scope| {
        for (i, want) in alone.iter().enumerate() {
            let server = &server;
            scope.spawn(move || {
                for _ in 0..3 {
                    let (status, r) = post(server, "/v1/completions", body(i));
                    assert_eq!(status, 200, "{r}");
                    assert_eq!(&r["choices"][0]["text"], want, "client {i}");
                    assert_eq!(r["usage"]["completion_tokens"], 6);
                }
            });
        }
    });
    assert_eq!(request(&server, "GET", "/health", None, &[]).0, 200);
    let (_, metrics) = request(&server, "GET", "/metrics", None, &[]);
    assert!(metrics.contains("latentgpu_requests_total 16"), "{metrics}");
    assert!(metrics.contains("latentgpu_queue_length 0"), "{metrics}");
}

/// A client that goes away mid-stream stops its generation: the server generates a few tokens
/// past the disconnect, not the 1500 asked, and serves the next request.
#[test]
fn a_client_that_disconnects_cancels_its_generation() {
    let server = start("gone", &[]);
    let body =
        json!({"prompt": "w10", "max_tokens": 1500, "temperature": 0, "stream": true}).to_string();
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    write!(
        s,
        "POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // Read until the first token's chunk, then hang up.
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while !String::from_utf8_lossy(&seen).contains("\"text\"") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before a token");
        seen.extend_from_slice(&buf[..n]);
    }
    drop(s);
    // The next request is served, and far fewer than 1500 tokens were generated.
    let (status, r) = post(
        &server,
        "/v1/completions",
        json!({"prompt": "w11", "max_tokens": 2}),
    );
    assert_eq!(status, 200, "{r}");
    let (_, metrics) = request(&server, "GET", "/metrics", None, &[]);
    let generated: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("latentgpu_generated_tokens_total "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        generated < 600,
        "{generated} tokens generated after the disconnect: {metrics}"
    );
}
