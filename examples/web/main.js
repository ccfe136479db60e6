// The page: fetches a shipped model's files, loads them onto the browser's WebGPU adapter
// through the wasm module built by scripts/build-web.sh, and streams generated text.
// `?model=NAME&prompt=TEXT&tokens=N&temperature=T&seed=S&autorun=1` fill the form (and start);
// every run ends with a console line "latentgpu-web: done ..." or "latentgpu-web: error ...".
import init, { WebModel, GenerateOptions } from "./pkg/latentgpu_web.js";

const $ = (id) => document.getElementById(id);
const status = (text, error = false) => {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
};

// Models are served from the repository's models/ directory (serve the repository root).
const modelUrl = (name, file) => new URL(`../../models/${name}/${file}`, import.meta.url);

async function fetchText(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`fetching ${url}: HTTP ${r.status}`);
  return r.text();
}

// The bytes of `url`, reporting progress(received, total) as they arrive.
async function fetchBytes(url, progress) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`fetching ${url}: HTTP ${r.status}`);
  const total = Number(r.headers.get("Content-Length")) || 0;
  const chunks = [];
  let received = 0;
  for (const reader = r.body.getReader(); ;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    progress(received, total);
  }
  const bytes = new Uint8Array(received);
  let at = 0;
  for (const c of chunks) { bytes.set(c, at); at += c.length; }
  return bytes;
}

const loaded = new Map(); // model name -> WebModel

// What the browser says of its adapter (wgpu sees only the often empty description).
let browserAdapter = "";
async function describeBrowserAdapter() {
  const a = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!a) return "";
  const i = a.info || {};
  const parts = [i.vendor, i.architecture, i.device, i.description].filter((x) => x);
  return (parts.join(" / ") || "(unnamed)") + (i.isFallbackAdapter ? " (fallback, software)" : "");
}

async function model(name) {
  if (!loaded.has(name)) {
    status(`Loading ${name}…`);
    const mib = (n) => (n / 2 ** 20).toFixed(1);
    const [config, weights] = await Promise.all([
      fetchText(modelUrl(name, "config.json")),
      fetchBytes(modelUrl(name, "model.safetensors"), (got, total) =>
        status(`Loading ${name}: ${mib(got)}${total ? ` of ${mib(total)}` : ""} MiB…`)),
    ]);
    status(`Uploading ${name} to the GPU…`);
    const m = await WebModel.load(config, weights);
    loaded.set(name, m);
    const a = JSON.parse(m.adapter());
    $("adapter").textContent =
      `adapter: ${a.name || browserAdapter || "(unnamed)"}\nbackend: ${a.backend}, ${a.device_type}, driver ${a.driver || "-"} ${a.driver_info || ""}\n` +
      `features: shader-f16 ${a.shader_f16}, subgroups ${a.subgroups}\n` +
      `limits: storage binding ${(a.max_storage_buffer_binding_size / 2 ** 20).toFixed(0)} MiB, ` +
      `${a.max_compute_invocations_per_workgroup} invocations/workgroup, ${a.max_storage_buffers_per_shader_stage} storage buffers/stage\n` +
      `model: ${name}: ${m.describe()}`;
    console.log(`latentgpu-web: adapter ${a.name || browserAdapter} (${a.backend})`);
  }
  return loaded.get(name);
}

let running = null; // the WebModel generating now

async function run() {
  $("generate").disabled = true;
  const name = $("model").value;
  const prompt = $("prompt").value;
  try {
    const m = await model(name);
    const options = new GenerateOptions();
    options.max_tokens = Number($("tokens").value);
    options.temperature = Number($("temperature").value);
    options.top_k = Number($("top_k").value);
    options.top_p = Number($("top_p").value);
    options.seed = Number($("seed").value);
    const out = $("output");
    out.replaceChildren();
    const p = document.createElement("span");
    p.className = "prompt";
    p.textContent = prompt;
    out.append(p);
    const text = document.createTextNode("");
    out.append(text);
    status(`Generating with ${name}…`);
    running = m;
    $("stop").disabled = false;
    const start = performance.now();
    const n = await m.generate(prompt, options, (piece) => { text.data += piece; });
    const secs = (performance.now() - start) / 1000;
    status(`${n} tokens in ${secs.toFixed(2)} s (${(n / secs).toFixed(1)} tokens/s, prefill included)`);
    // For scripts/check-web-page.py, which records the figures in bench-results/.
    window.latentgpuLastRun = { model: name, tokens: n, seconds: secs, adapter: browserAdapter };
    console.log(`latentgpu-web: done ${n} tokens in ${secs.toFixed(2)} s: ${JSON.stringify(prompt + text.data)}`);
  } catch (e) {
    status(String(e.message || e), true);
    console.log(`latentgpu-web: error ${e.message || e}`);
  } finally {
    running = null;
    $("stop").disabled = true;
    $("generate").disabled = false;
  }
}

async function main() {
  const params = new URLSearchParams(location.search);
  for (const key of ["model", "prompt", "tokens", "temperature", "top_k", "top_p", "seed"]) {
    if (params.has(key)) $(key).value = params.get(key);
  }
  if (!navigator.gpu) {
    const msg = "This browser has no WebGPU (navigator.gpu). Use Chrome/Edge 113+, Safari 26+ or Firefox 141+; " +
      "on Linux, Chromium needs --enable-unsafe-webgpu (and --enable-features=Vulkan for a real GPU).";
    $("adapter").textContent = msg;
    console.log(`latentgpu-web: error ${msg}`);
    return;
  }
  await init();
  browserAdapter = await describeBrowserAdapter();
  $("adapter").textContent = browserAdapter
    ? `WebGPU adapter: ${browserAdapter}; opened with the first model.`
    : "WebGPU is present but offers no adapter (on Linux, Chromium needs --enable-unsafe-webgpu).";
  $("generate").disabled = false;
  $("generate").addEventListener("click", run);
  $("stop").addEventListener("click", () => running && running.stop());
  if (params.get("autorun") === "1") await run();
}

main().catch((e) => {
  status(String(e.message || e), true);
  console.log(`latentgpu-web: error ${e.message || e}`);
});
