#!/usr/bin/env python3
"""End-to-end check of the web page (examples/web, built by scripts/build-web.sh): serves the
repository on localhost, opens the page in headless Chromium through ChromeDriver, lets it
generate greedily with each shipped model, and checks the text it shows is the prompt followed by
the native run's tokens (tests/fixtures/generate/greedy.json); presses Stop during a long run;
loads a model from files picked in the page, a mismatched pair that must fail, a Hugging Face
checkpoint and a GGUF file (which generates). Saves a screenshot of the last
page to target/web-page.png and the page's tokens/s to bench-results/web-page.json (figures, not
assertions). Standard library only; exits 1 on any mismatch or error."""

import base64
import functools
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = [
    "--headless", "--no-sandbox", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--disable-dev-shm-usage",
    "--enable-unsafe-webgpu", "--window-size=1000,900",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(port):
    handler = functools.partial(QuietHandler, directory=ROOT)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm"}

    def log_message(self, *args):
        pass


def call(base, method, path, body=None, timeout=60):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())["value"]


def script(base, s, js):
    return call(base, "POST", s + "/execute/sync", {"script": js, "args": []})


def page_text(base, s, element):
    return script(base, s, f"return document.getElementById('{element}').textContent")


def open_page(base, s, http_port, **params):
    """Opens the page with `params` in its query (autorun starts a generation)."""
    query = urllib.parse.urlencode(dict(params, autorun=1))
    call(base, "POST", s + "/url", {"url": f"http://127.0.0.1:{http_port}/examples/web/?{query}"})


def wait_for_run(base, s, seconds):
    """Waits until the page reports a finished generation or an error; returns its status."""
    deadline = time.time() + seconds
    status = ""
    while time.time() < deadline:
        status = page_text(base, s, "status")
        if "tokens in" in status or "error" in status.lower():
            break
        time.sleep(0.2)
    return status


def check_greedy_run(base, s, http_port, run, figures):
    """Generates greedily with the run's model and prompt; the page must show the fixture's text."""
    open_page(base, s, http_port, model=run["model"], prompt=run["prompt"],
              tokens=len(run["tokens"]), temperature=0)
    status = wait_for_run(base, s, 300)
    shown = page_text(base, s, "output")
    figures.append(script(base, s, "return window.latentgpuLastRun || null"))
    want = run["prompt"] + bytes(run["tokens"]).decode("utf-8", "replace")
    ok = shown == want
    print(f"{'ok  ' if ok else 'FAIL'} {run['model']}: {status}")
    if not ok:
        print(f"     shown:    {shown!r}\n     expected: {want!r}")
    return ok


def check_stop_button(base, s, http_port):
    """Starts a 500-token generation, presses Stop once some text is shown, and checks the
    page reports fewer tokens than asked for."""
    open_page(base, s, http_port, model="shakespeare-mha", prompt="ROMEO:", tokens=500,
              temperature=0.8)
    deadline = time.time() + 120
    while time.time() < deadline and len(page_text(base, s, "output")) < len("ROMEO:") + 10:
        time.sleep(0.1)
    call(base, "POST", element(base, s, "#stop") + "/click", {})
    status = wait_for_run(base, s, 120)
    words = status.split()
    ok = bool(words) and words[0].isdigit() and int(words[0]) < 500
    print(f"{'ok  ' if ok else 'FAIL'} stop button: {status}")
    return ok


def element(base, s, css):
    found = call(base, "POST", s + "/element", {"using": "css selector", "value": css})
    return f"{s}/element/{list(found.values())[0]}"


def load_own_model(base, s, config, weights, tokenizer=None):
    """Picks files in the page's "Your own model" inputs (`weights`: one path or a list of
    shards; `config` None for a GGUF file), presses Load; returns the status."""
    script(base, s, "document.querySelector('details').open = true;"
                    "document.getElementById('status').textContent = '';"
                    "for (const id of ['own_config', 'own_tokenizer', 'own_weights'])"
                    "  document.getElementById(id).value = ''")
    weights = [weights] if isinstance(weights, str) else weights
    picks = [("#own_config", [config])] if config else []
    picks.append(("#own_weights", weights))
    if tokenizer:
        picks.append(("#own_tokenizer", [tokenizer]))
    for css, paths in picks:
        text = "\n".join(os.path.join(ROOT, p) for p in paths)
        call(base, "POST", element(base, s, css) + "/value", {"text": text})
    call(base, "POST", element(base, s, "#own_load") + "/click", {})
    # Loading shows progress first: wait for "Loaded ..." or an error.
    deadline = time.time() + 60
    status, error = "", False
    while time.time() < deadline and not (status.startswith("Loaded") or error):
        time.sleep(0.2)
        status, error = script(base, s, "const e = document.getElementById('status');"
                                        "return [e.textContent, e.className === 'error']")
    return status


def check_own_model(base, s):
    """Loads a model from the user's files, then a mismatched pair, whose error must name the
    weights file and what it expected."""
    good = load_own_model(base, s, "tests/fixtures/mha-tiny/config.json",
                          "tests/fixtures/mha-tiny/model.safetensors")
    bad = load_own_model(base, s, "models/shakespeare-latent/config.json",
                         "tests/fixtures/mha-tiny/model.safetensors")
    ok = good.startswith("Loaded") and "model.safetensors" in bad and "expected" in bad
    print(f"{'ok  ' if ok else 'FAIL'} own model files: {good} / mismatched: {bad}")
    return ok


def check_hugging_face_checkpoint(base, s):
    """Loads a Hugging Face checkpoint with its tokenizer.json and generates greedily: the page
    must show transformers' continuation (tests/fixtures/hf-dense/llama-gqa3/expected.json);
    then a sharded checkpoint, all its shards picked at once, must load."""
    fixture = "tests/fixtures/hf-dense/llama-gqa3"
    expected = json.load(open(os.path.join(ROOT, fixture, "expected.json")))
    loaded = load_own_model(base, s, f"{fixture}/model/config.json",
                            f"{fixture}/model/model.safetensors",
                            tokenizer=f"{fixture}/model/tokenizer.json")
    prompt = expected["tokenizer_text"]
    tokens = len(expected["tokenizer_greedy_ids"])
    script(base, s, f"document.getElementById('prompt').value = {json.dumps(prompt)};"
                    f"document.getElementById('tokens').value = {tokens};"
                    "document.getElementById('temperature').value = 0;"
                    "document.getElementById('output').textContent = '';"
                    "document.getElementById('status').textContent = ''")
    call(base, "POST", element(base, s, "#generate") + "/click", {})
    status = wait_for_run(base, s, 120)
    shown = page_text(base, s, "output")
    want = prompt + expected["tokenizer_greedy_text"]
    sharded = "tests/fixtures/hf-dense/mistral-window-sharded/model"
    shards = sorted(f"{sharded}/{f}" for f in os.listdir(os.path.join(ROOT, sharded)) if f.endswith(".safetensors"))
    shard_status = load_own_model(base, s, f"{sharded}/config.json", shards)
    ok = loaded.startswith("Loaded") and shown == want and shard_status.startswith("Loaded")
    print(f"{'ok  ' if ok else 'FAIL'} Hugging Face checkpoint: {loaded} {status} / sharded: {shard_status}")
    if shown != want:
        print(f"     shown:    {shown!r}\n     expected: {want!r}")
    return ok


def check_gguf_file(base, s):
    """Loads a GGUF file alone (Gemma 3's twin, as llama.cpp's converter wrote it: its config,
    tokenizer and stop tokens from its metadata) and generates from it."""
    loaded = load_own_model(base, s, None, "tests/fixtures/gguf/families/gemma3-window-full-f32.gguf")
    script(base, s, "document.getElementById('prompt').value = 'w10 w11 w12';"
                    "document.getElementById('tokens').value = 8;"
                    "document.getElementById('temperature').value = 0;"
                    "document.getElementById('output').textContent = '';"
                    "document.getElementById('status').textContent = ''")
    call(base, "POST", element(base, s, "#generate") + "/click", {})
    status = wait_for_run(base, s, 120)
    ok = loaded.startswith("Loaded") and "tokens in" in status
    print(f"{'ok  ' if ok else 'FAIL'} GGUF file: {loaded} {status}")
    return ok


def main():
    fixture = json.load(open(os.path.join(ROOT, "tests/fixtures/generate/greedy.json")))
    if not os.path.exists(os.path.join(ROOT, "examples/web/pkg/latentgpu_web.js")):
        sys.exit("examples/web/pkg is missing: run scripts/build-web.sh first")
    # scripts/browser-env.sh finds them (scripts/test.sh sources it).
    browser = os.environ.get("LATENTGPU_CHROME") or shutil.which("chromium")
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if not browser or not driver:
        sys.exit("need Chromium (or Chrome) and ChromeDriver: run scripts/setup-browser.sh")
    http_port, driver_port = free_port(), free_port()
    server = serve(http_port)
    proc = subprocess.Popen([driver, f"--port={driver_port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{driver_port}"
    failures = 0
    figures = []
    try:
        for _ in range(100):
            try:
                call(base, "GET", "/status", timeout=2)
                break
            except OSError:
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": browser, "args": FLAGS + [f"--user-data-dir=/tmp/latentgpu-web-{os.getpid()}"]}}}}
        session = call(base, "POST", "/session", caps)["sessionId"]
        s = f"/session/{session}"
        for run in fixture["runs"]:
            failures += not check_greedy_run(base, s, http_port, run, figures)
        adapter = page_text(base, s, "adapter")
        print("adapter: " + adapter.replace("\n", "\n         "))
        failures += not check_stop_button(base, s, http_port)
        failures += not check_own_model(base, s)
        failures += not check_hugging_face_checkpoint(base, s)
        failures += not check_gguf_file(base, s)
        shot = call(base, "GET", s + "/screenshot")
        os.makedirs(os.path.join(ROOT, "target"), exist_ok=True)
        with open(os.path.join(ROOT, "target/web-page.png"), "wb") as f:
            f.write(base64.b64decode(shot))
        call(base, "DELETE", s)
    finally:
        proc.terminate()
        server.shutdown()
    runs = [dict(f, tokens_per_second=f["tokens"] / f["seconds"]) for f in figures if f]
    os.makedirs(os.path.join(ROOT, "bench-results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench-results/web-page.json"), "w") as f:
        json.dump({"what": "greedy generation in the web page, prefill included", "runs": runs}, f, indent=2)
    checks = len(fixture["runs"]) + 4
    print(f"{checks - failures} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
