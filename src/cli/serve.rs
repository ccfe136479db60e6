//! `latentgpu serve`: an OpenAI-compatible HTTP server (`/v1/chat/completions`,
//! `/v1/completions`, `/v1/models`, `/health`, `/metrics`) on loopback by default. One GPU
//! worker thread owns the model and runs the requests in turn from a bounded queue; each
//! request's tokens stream back to its handler, and a client that goes away cancels its
//! generation.

use super::args::ServeArgs;
use super::generate::{generation_defaults, sampling};
use super::{load_model, model_dir};
use anyhow::Result;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use latentgpu::gpu::{BackendChoice, GpuContext};
use latentgpu::model::formats::chat_template::{self, ChatTemplate};
use latentgpu::model::formats::tokenizer::Tokenizer;
use latentgpu::model::runtime::chat::Message;
use latentgpu::model::{self, GenerateConfig, GenerationDefaults, SamplingConfig};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// The largest request body accepted (bytes).
const BODY_CAP: usize = 1 << 20;

/// One request for the worker: the prompt's ids, how to generate, where the tokens go.
struct Job {
    prompt: Vec<u32>,
    cfg: GenerateConfig,
    events: mpsc::UnboundedSender<Event>,
    received: Instant,
}

/// What the worker tells a request's handler.
enum Event {
    /// The text of the next token.
    Token(String),
    /// Generation ended: why (`stop` or `length`) and the tokens generated.
    Done(&'static str, usize),
    /// It failed: the error.
    Failed(String),
}

/// What every handler shares.
struct Shared {
    model_id: String,
    /// The model's tokenizer, once the worker has loaded the model.
    tokenizer: std::sync::OnceLock<Arc<Tokenizer>>,
    template: Option<ChatTemplate>,
    defaults: GenerationDefaults,
    jobs: std::sync::mpsc::SyncSender<Job>,
    api_key: Option<String>,
    /// The model's context once it is loaded (0 while it loads).
    context: AtomicUsize,
    metrics: Metrics,
    next_id: AtomicU64,
}

/// Counters `/metrics` shows.
#[derive(Default)]
struct Metrics {
    requests: AtomicU64,
    errors: AtomicU64,
    tokens: AtomicU64,
    queued: AtomicU64,
    first_token_ms: AtomicU64,
    first_tokens: AtomicU64,
    generate_ms: AtomicU64,
}

/// An OpenAI-shaped error response.
fn error(status: StatusCode, message: impl Into<String>, param: Option<&str>) -> Response {
    let kind = match status {
        StatusCode::UNAUTHORIZED => "authentication_error",
        StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
        StatusCode::SERVICE_UNAVAILABLE => "server_error",
        s if s.is_server_error() => "server_error",
        _ => "invalid_request_error",
    };
    let body =
        json!({"error": {"message": message.into(), "type": kind, "param": param, "code": null}});
    (status, Json(body)).into_response()
}

/// Serves until interrupted.
pub fn serve(choice: BackendChoice, args: &ServeArgs) -> Result<()> {
    let dir = model_dir(&args.files.model);
    let template = match chat_template::for_model(&dir, args.files.chat_template.as_deref()) {
        Ok(t) => Some(t),
        Err(e) => {
            log::warn!("no chat template ({e}): /v1/chat/completions will refuse requests");
            None
        }
    };
    let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(args.queue);
    let shared = Arc::new(Shared {
        model_id: dir
            .file_name()
            .map_or("model".into(), |n| n.to_string_lossy().into_owned()),
        tokenizer: std::sync::OnceLock::new(),
        template,
        defaults: generation_defaults(&dir)?,
        jobs,
        api_key: args.api_key.clone(),
        context: AtomicUsize::new(0),
        metrics: Metrics::default(),
        next_id: AtomicU64::new(1),
    });
    let worker_shared = shared.clone();
    let worker_dir = dir.clone();
    let tokenizer_file = args.files.tokenizer.clone();
    std::thread::spawn(move || {
        let loaded = worker(
            choice,
            &worker_dir,
            tokenizer_file.as_deref(),
            &worker_shared,
            queue,
        );
        if let Err(e) = loaded {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    });
    let app = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/completions", post(completions))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_CAP))
        .with_state(shared);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port)).await?;
        // Scripts and tests read the port from this line (with --port 0, the system's choice).
        eprintln!("listening on http://{}", listener.local_addr()?);
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok(())
    })
}

/// Loads the model, then runs the queue's requests one after another.
fn worker(
    choice: BackendChoice,
    dir: &std::path::Path,
    tokenizer_file: Option<&std::path::Path>,
    shared: &Shared,
    queue: std::sync::mpsc::Receiver<Job>,
) -> Result<()> {
    let ctx = GpuContext::new(choice)?;
    let model = load_model(&ctx, dir)?;
    let tokenizer = Arc::new(Tokenizer::named_or_for_model(
        tokenizer_file,
        dir,
        model.config.vocab_size,
    )?);
    let _ = shared.tokenizer.set(tokenizer.clone());
    shared
        .context
        .store(model.config.max_context, Ordering::Relaxed);
    log::info!("serving {} on {}", dir.display(), ctx.name());
    for job in queue {
        shared.metrics.queued.fetch_sub(1, Ordering::Relaxed);
        let cancel = Arc::new(AtomicBool::new(false));
        let cfg = GenerateConfig {
            cancel: Some(cancel.clone()),
            ..job.cfg
        };
        let mut stream = tokenizer.decoder();
        let started = Instant::now();
        let mut first = true;
        let result = model::generate(&ctx, &model, &job.prompt, &cfg, |t| {
            if first {
                first = false;
                let ms = job.received.elapsed().as_millis() as u64;
                shared
                    .metrics
                    .first_token_ms
                    .fetch_add(ms, Ordering::Relaxed);
                shared.metrics.first_tokens.fetch_add(1, Ordering::Relaxed);
            }
            let piece = stream.push(t).unwrap_or_default();
            // The client went away: stop after this token.
            if job.events.send(Event::Token(piece)).is_err() {
                cancel.store(true, Ordering::Relaxed);
            }
        });
        let ms = started.elapsed().as_millis() as u64;
        shared.metrics.generate_ms.fetch_add(ms, Ordering::Relaxed);
        let event = match result {
            Ok(tokens) => {
                shared
                    .metrics
                    .tokens
                    .fetch_add(tokens.len() as u64, Ordering::Relaxed);
                let rest = stream.finish().unwrap_or_default();
                if !rest.is_empty() {
                    let _ = job.events.send(Event::Token(rest));
                }
                let stopped = tokens.last().is_some_and(|t| cfg.eos_token_ids.contains(t));
                let reason = match tokens.len() >= cfg.max_tokens && !stopped {
                    true => "length",
                    false => "stop",
                };
                Event::Done(reason, tokens.len())
            }
            Err(e) => {
                shared.metrics.errors.fetch_add(1, Ordering::Relaxed);
                Event::Failed(e.to_string())
            }
        };
        let _ = job.events.send(event);
    }
    Ok(())
}

async fn health(State(shared): State<Arc<Shared>>) -> Response {
    match shared.context.load(Ordering::Relaxed) {
        0 => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the model is loading",
            None,
        ),
        _ => Json(json!({"status": "ok"})).into_response(),
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> String {
    let m = &shared.metrics;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let tokens_per_second = get(&m.tokens) as f64 / (get(&m.generate_ms).max(1) as f64 / 1e3);
    format!(
        "# TYPE latentgpu_requests_total counter\nlatentgpu_requests_total {}\n\
         # TYPE latentgpu_request_errors_total counter\nlatentgpu_request_errors_total {}\n\
         # TYPE latentgpu_generated_tokens_total counter\nlatentgpu_generated_tokens_total {}\n\
         # TYPE latentgpu_queue_length gauge\nlatentgpu_queue_length {}\n\
         # TYPE latentgpu_time_to_first_token_seconds summary\n\
         latentgpu_time_to_first_token_seconds_sum {}\nlatentgpu_time_to_first_token_seconds_count {}\n\
         # TYPE latentgpu_tokens_per_second gauge\nlatentgpu_tokens_per_second {tokens_per_second:.3}\n",
        get(&m.requests),
        get(&m.errors),
        get(&m.tokens),
        get(&m.queued),
        get(&m.first_token_ms) as f64 / 1e3,
        get(&m.first_tokens),
    )
}

async fn models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(denied) = check_key(&shared, &headers) {
        return denied;
    }
    Json(json!({"object": "list", "data": [
        {"id": shared.model_id, "object": "model", "created": 0, "owned_by": "latentgpu"}
    ]}))
    .into_response()
}

/// A 401 unless the request carries the server's `--api-key` (when it has one).
fn check_key(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let key = shared.api_key.as_ref()?;
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    (given != Some(key.as_str())).then(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "expected the header 'Authorization: Bearer <the server's --api-key>'",
            None,
        )
    })
}

/// A request's settings, read from its JSON body with errors that name the field.
struct Request {
    body: Value,
}

type Checked<T> = std::result::Result<T, Response>;

impl Request {
    fn parse(body: std::result::Result<Bytes, BytesRejection>) -> Checked<Self> {
        let bytes = body.map_err(|r| {
            let status = r.status();
            error(status, format!("request body: {}", r.body_text()), None)
        })?;
        let body: Value = serde_json::from_slice(&bytes).map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                format!("request body: not JSON: {e}"),
                None,
            )
        })?;
        if !body.is_object() {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "request body: expected a JSON object",
                None,
            ));
        }
        Ok(Request { body })
    }

    fn bad(field: &str, expected: &str, found: &Value) -> Response {
        error(
            StatusCode::BAD_REQUEST,
            format!("'{field}': expected {expected}, found {found}"),
            Some(field),
        )
    }

    /// Refuses the fields this server does not support, by name.
    fn refuse_unsupported(&self) -> Checked<()> {
        for field in [
            "tools",
            "tool_choice",
            "functions",
            "function_call",
            "response_format",
        ] {
            if let Some(v) = self.body.get(field).filter(|v| !v.is_null()) {
                return Err(Self::bad(field, "absent (not supported)", v));
            }
        }
        if let Some(v) = self
            .body
            .get("n")
            .filter(|v| !v.is_null() && v.as_u64() != Some(1))
        {
            return Err(Self::bad("n", "1 (one choice per request)", v));
        }
        for field in ["logprobs", "echo"] {
            if let Some(v) = self
                .body
                .get(field)
                .filter(|v| !v.is_null() && v.as_bool() != Some(false))
            {
                return Err(Self::bad(field, "false or absent (not supported)", v));
            }
        }
        Ok(())
    }

    fn number(&self, field: &str, range: std::ops::RangeInclusive<f64>) -> Checked<Option<f64>> {
        match self.body.get(field).filter(|v| !v.is_null()) {
            None => Ok(None),
            Some(v) => match v.as_f64().filter(|x| range.contains(x)) {
                Some(x) => Ok(Some(x)),
                None => Err(Self::bad(
                    field,
                    &format!("a number from {} to {}", range.start(), range.end()),
                    v,
                )),
            },
        }
    }

    fn boolean(&self, field: &str) -> Checked<bool> {
        match self.body.get(field).filter(|v| !v.is_null()) {
            None => Ok(false),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| Self::bad(field, "true or false", v)),
        }
    }

    /// The generation settings: max tokens, sampling, the stop text, the model's stop tokens.
    fn generate_config(&self, shared: &Shared) -> Checked<GenerateConfig> {
        let max = match ["max_completion_tokens", "max_tokens"]
            .iter()
            .find_map(|f| self.body.get(*f).filter(|v| !v.is_null()).map(|v| (*f, v)))
        {
            None => 512,
            Some((field, v)) => v
                .as_u64()
                .filter(|&n| n > 0)
                .ok_or_else(|| Self::bad(field, "a positive integer", v))?
                as usize,
        };
        let stop = match self.body.get("stop").filter(|v| !v.is_null()) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Array(items)) if items.len() <= 1 => items
                .first()
                .map(|s| {
                    s.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| Self::bad("stop", "strings", s))
                })
                .transpose()?,
            Some(v) => {
                return Err(Self::bad(
                    "stop",
                    "one stop text (a string or a list of one)",
                    v,
                ))
            }
        };
        let stop = match stop.filter(|s| !s.is_empty()) {
            Some(s) => Some(
                tokenizer(shared)?
                    .encode_plain(&s)
                    .map_err(|e| error(StatusCode::BAD_REQUEST, e.to_string(), Some("stop")))?,
            ),
            None => None,
        };
        let base = sampling(&Default::default(), &shared.defaults);
        let seed = match self.body.get("seed").filter(|v| !v.is_null()) {
            None => 0,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| Self::bad("seed", "a non-negative integer", v))?,
        };
        Ok(GenerateConfig {
            max_tokens: max,
            stop,
            eos_token_ids: shared.defaults.eos_token_ids.clone(),
            sampling: SamplingConfig {
                temperature: self
                    .number("temperature", 0.0..=2.0)?
                    .map_or(base.temperature, |t| t as f32),
                top_p: self
                    .number("top_p", 0.0..=1.0)?
                    .map_or(base.top_p, |p| p as f32),
                seed,
                ..base
            },
            cancel: None,
        })
    }
}

/// The model's tokenizer, or a 503 while the model loads.
fn tokenizer(shared: &Shared) -> Checked<&Tokenizer> {
    shared.tokenizer.get().map(|t| t.as_ref()).ok_or_else(|| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the model is loading",
            None,
        )
    })
}

/// The rendered prompt of a chat request's `messages`.
fn chat_prompt(shared: &Shared, request: &Request) -> Checked<String> {
    let template = shared.template.as_ref().ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "the model has no chat template (serve it with --chat-template FILE)",
            Some("messages"),
        )
    })?;
    let list = request
        .body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            Request::bad(
                "messages",
                "a non-empty list of messages",
                request.body.get("messages").unwrap_or(&Value::Null),
            )
        })?;
    let mut messages = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let field = |name: &str| format!("messages[{i}].{name}");
        let role = m.get("role").and_then(Value::as_str);
        let role = role
            .filter(|r| ["system", "user", "assistant", "developer"].contains(r))
            .ok_or_else(|| {
                Request::bad(
                    &field("role"),
                    "system, user or assistant",
                    m.get("role").unwrap_or(&Value::Null),
                )
            })?;
        let content = m.get("content").and_then(Value::as_str).ok_or_else(|| {
            Request::bad(
                &field("content"),
                "a string",
                m.get("content").unwrap_or(&Value::Null),
            )
        })?;
        let role = if role == "developer" { "system" } else { role };
        messages.push(Message::new(role, content));
    }
    template
        .render(&messages, true)
        .map_err(|e| error(StatusCode::BAD_REQUEST, e.to_string(), Some("messages")))
}

/// Queues `prompt` and returns the receiver of its tokens, or the error response.
fn submit(
    shared: &Shared,
    prompt: Vec<u32>,
    cfg: GenerateConfig,
) -> Checked<mpsc::UnboundedReceiver<Event>> {
    let context = shared.context.load(Ordering::Relaxed);
    if context == 0 {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the model is loading",
            None,
        ));
    }
    if prompt.is_empty() || prompt.len() >= context {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!(
                "the prompt is {} tokens; the context holds {context} (the prompt and at least one new token)",
                prompt.len()
            ),
            Some("messages"),
        ));
    }
    let (events, receiver) = mpsc::unbounded_channel();
    let job = Job {
        prompt,
        cfg,
        events,
        received: Instant::now(),
    };
    shared.metrics.queued.fetch_add(1, Ordering::Relaxed);
    if shared.jobs.try_send(job).is_err() {
        shared.metrics.queued.fetch_sub(1, Ordering::Relaxed);
        return Err(error(
            StatusCode::TOO_MANY_REQUESTS,
            "the queue is full: try again shortly",
            None,
        ));
    }
    Ok(receiver)
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    respond(shared, headers, body, true).await
}

async fn completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    respond(shared, headers, body, false).await
}

/// Runs a chat (`chat`) or plain completion request, streamed or whole.
async fn respond(
    shared: Arc<Shared>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
    chat: bool,
) -> Response {
    shared.metrics.requests.fetch_add(1, Ordering::Relaxed);
    let result = async {
        if let Some(denied) = check_key(&shared, &headers) {
            return Err(denied);
        }
        let request = Request::parse(body)?;
        request.refuse_unsupported()?;
        let cfg = request.generate_config(&shared)?;
        let prompt = match chat {
            true => {
                let text = chat_prompt(&shared, &request)?;
                // The template adds BOS where the model wants one.
                tokenizer(&shared)?.encode_plain(&text)
            }
            false => {
                let p = request
                    .body
                    .get("prompt")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        Request::bad(
                            "prompt",
                            "a string",
                            request.body.get("prompt").unwrap_or(&Value::Null),
                        )
                    })?;
                tokenizer(&shared)?.encode(p)
            }
        }
        .map_err(|e| error(StatusCode::BAD_REQUEST, e.to_string(), None))?;
        let prompt_tokens = prompt.len();
        let stream = request.boolean("stream")?;
        let usage_in_stream = request
            .body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let receiver = submit(&shared, prompt, cfg)?;
        Ok((receiver, prompt_tokens, stream, usage_in_stream))
    }
    .await;
    let (receiver, prompt_tokens, stream, usage_in_stream) = match result {
        Ok(r) => r,
        Err(response) => {
            shared.metrics.errors.fetch_add(1, Ordering::Relaxed);
            return response;
        }
    };
    let id = format!(
        "{}-{}",
        if chat { "chatcmpl" } else { "cmpl" },
        shared.next_id.fetch_add(1, Ordering::Relaxed)
    );
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let shape = Shape {
        id,
        created,
        model: shared.model_id.clone(),
        chat,
        prompt_tokens,
    };
    match stream {
        true => streamed(shape, receiver, usage_in_stream).into_response(),
        false => whole(shape, receiver).await,
    }
}

/// What every response of one request carries.
struct Shape {
    id: String,
    created: u64,
    model: String,
    chat: bool,
    prompt_tokens: usize,
}

impl Shape {
    fn usage(&self, completion: usize) -> Value {
        json!({"prompt_tokens": self.prompt_tokens, "completion_tokens": completion,
               "total_tokens": self.prompt_tokens + completion})
    }

    /// A response or chunk object with `choices`.
    fn object(&self, chunk: bool, choices: Value) -> Value {
        let object = match (self.chat, chunk) {
            (true, true) => "chat.completion.chunk",
            (true, false) => "chat.completion",
            (false, _) => "text_completion",
        };
        json!({"id": self.id, "object": object, "created": self.created, "model": self.model,
               "choices": choices})
    }

    /// One choice: the text so far (chat: a message or a delta), and why it ended if it did.
    fn choice(&self, chunk: bool, text: &str, finish: Option<&str>) -> Value {
        match (self.chat, chunk) {
            (true, true) => {
                json!({"index": 0, "delta": {"content": text}, "finish_reason": finish})
            }
            (true, false) => json!({"index": 0, "message": {"role": "assistant", "content": text},
                                    "finish_reason": finish}),
            (false, _) => {
                json!({"index": 0, "text": text, "finish_reason": finish, "logprobs": null})
            }
        }
    }
}

/// The whole response once generation ends.
async fn whole(shape: Shape, mut receiver: mpsc::UnboundedReceiver<Event>) -> Response {
    let mut text = String::new();
    while let Some(event) = receiver.recv().await {
        match event {
            Event::Token(piece) => text.push_str(&piece),
            Event::Done(reason, completion) => {
                let mut body =
                    shape.object(false, json!([shape.choice(false, &text, Some(reason))]));
                body["usage"] = shape.usage(completion);
                return Json(body).into_response();
            }
            Event::Failed(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e, None),
        }
    }
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the worker stopped",
        None,
    )
}

/// Server-sent events: a chunk per token, a last one with the finish reason, the usage when
/// asked, then `[DONE]`.
fn streamed(
    shape: Shape,
    receiver: mpsc::UnboundedReceiver<Event>,
    usage: bool,
) -> Sse<impl tokio_stream::Stream<Item = std::result::Result<SseEvent, std::convert::Infallible>>>
{
    let (tx, rx) = mpsc::unbounded_channel::<SseEvent>();
    tokio::spawn(async move {
        let mut receiver = receiver;
        let data = |v: Value| SseEvent::default().data(v.to_string());
        if shape.chat {
            let first = json!({"index": 0, "delta": {"role": "assistant", "content": ""},
                               "finish_reason": null});
            if tx.send(data(shape.object(true, json!([first])))).is_err() {
                return;
            }
        }
        while let Some(event) = receiver.recv().await {
            let sent = match event {
                Event::Token(piece) if piece.is_empty() => Ok(()),
                Event::Token(piece) => tx.send(data(
                    shape.object(true, json!([shape.choice(true, &piece, None)])),
                )),
                Event::Done(reason, completion) => {
                    let last = shape.object(true, json!([shape.choice(true, "", Some(reason))]));
                    let _ = tx.send(data(last));
                    if usage {
                        let mut u = shape.object(true, json!([]));
                        u["usage"] = shape.usage(completion);
                        let _ = tx.send(data(u));
                    }
                    let _ = tx.send(SseEvent::default().data("[DONE]"));
                    return;
                }
                Event::Failed(e) => {
                    let _ = tx.send(data(
                        json!({"error": {"message": e, "type": "server_error"}}),
                    ));
                    return;
                }
            };
            // The client went away: dropping the receiver cancels the generation.
            if sent.is_err() {
                return;
            }
        }
    });
    Sse::new(tokio_stream::StreamExt::map(
        tokio_stream::wrappers::UnboundedReceiverStream::new(rx),
        Ok,
    ))
}
