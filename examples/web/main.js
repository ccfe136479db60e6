// The page: opens the browser's WebGPU adapter through the wasm module built by
// scripts/build-web.sh, fetches a shipped model's files (or takes the user's own), and streams
// generated text.
// `?model=NAME&prompt=TEXT&tokens=N&temperature=T&top_k=K&top_p=P&seed=S&autorun=1` fill the
// form (and start); every run ends with a console line "latentgpu-web: done ..." or
// "latentgpu-web: error ...", and leaves its figures in `window.latentgpuLastRun`.
import init, { WebGpu, GenerateOptions } from "./pkg/latentgpu_web.js";

const $ = (id) => document.getElementById(id);
const status = (text, error = false) => {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
};
const mib = (n) => (n / 2 ** 20).toFixed(1);

// Shipped models are served from the repository's models/ directory (serve the repository root).
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

let gpu = null; // the WebGpu: one device for every model
let adapterText = ""; // what the adapter box shows before the model line
const loaded = new Map(); // "name|f16" -> WebModel
const ownFiles = new Map(); // name of a user's model -> { config, tokenizer, files: [[name, bytes]] }

// What the browser says of its adapter (wgpu sees only the often empty description).
async function describeBrowserAdapter() {
  const a = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!a) return "";
  const i = a.info || {};
  const parts = [i.vendor, i.architecture, i.device, i.description].filter((x) => x);
  return (parts.join(" / ") || "(unnamed)") + (i.isFallbackAdapter ? " (fallback, software)" : "");
}

async function openGpu() {
  const browserAdapter = await describeBrowserAdapter();
  gpu = await WebGpu.open();
  const a = JSON.parse(gpu.adapter());
  adapterText =
    `adapter: ${a.name || browserAdapter || "(unnamed)"}\n` +
    `backend: ${a.backend}, ${a.device_type}\n` +
    `features: shader-f16 ${a.shader_f16}, subgroups ${a.subgroups}\n` +
    `limits: storage binding ${(a.max_storage_buffer_binding_size / 2 ** 20).toFixed(0)} MiB, ` +
    `${a.max_compute_invocations_per_workgroup} invocations/workgroup, ` +
    `${a.max_storage_buffers_per_shader_stage} storage buffers/stage`;
  $("adapter").textContent = adapterText;
  console.log(`latentgpu-web: adapter ${a.name || browserAdapter} (${a.backend})`);
}

async function model(name, f16) {
  const key = `${name}|${f16}`;
  if (!loaded.has(key)) {
    const own = ownFiles.get(name);
    let files = own;
    if (!files) {
      status(`Loading ${name}…`);
      const [config, weights] = await Promise.all([
        fetchText(modelUrl(name, "config.json")),
        fetchBytes(modelUrl(name, "model.safetensors"), (got, total) =>
          status(`Loading ${name}: ${mib(got)}${total ? ` of ${mib(total)}` : ""} MiB…`)),
      ]);
      files = { config, weights };
    }
    status(`Uploading ${name} to the GPU${f16 ? " (f16 weights)" : ""}…`);
    // Give the status a frame to show: the upload itself runs without yielding.
    await new Promise(requestAnimationFrame);
    loaded.set(key, own
      ? (own.gguf
        ? gpu.load_gguf(own.gguf[0], own.gguf[1], f16)
        : gpu.load_checkpoint(own.config, own.tokenizer, own.files, f16))
      : gpu.load(files.config, files.weights, f16));
  }
  const m = loaded.get(key);
  $("adapter").textContent = `${adapterText}\nmodel: ${name}: ${m.describe()}${f16 ? ", f16 weights" : ""}`;
  return m;
}

let running = null; // the WebModel generating now

async function run() {
  $("generate").disabled = true;
  const name = $("model").value;
  const prompt = $("prompt").value;
  try {
    const m = await model(name, $("f16").checked);
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
    window.latentgpuLastRun = { model: name, tokens: n, seconds: secs, adapter: adapterText.split("\n")[0] };
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

// The user's own model: read the files, load to check them, and add it to the list.
async function loadOwn() {
  const configFile = $("own_config").files[0];
  const tokenizerFile = $("own_tokenizer").files[0];
  const weightFiles = [...$("own_weights").files];
  // A GGUF file holds its config and tokenizer: it needs nothing beside it.
  const gguf = weightFiles.length === 1 && weightFiles[0].name.toLowerCase().endsWith(".gguf");
  if ((!configFile && !gguf) || weightFiles.length === 0) {
    status("Choose a GGUF file, or a config.json and its safetensors file(s).", true);
    return;
  }
  const bytes = weightFiles.reduce((sum, f) => sum + f.size, 0);
  const shown = weightFiles.length === 1 ? weightFiles[0].name : `${weightFiles.length} files`;
  const name = `yours ${ownFiles.size + 1}: ${shown} (${mib(bytes)} MiB)`;
  try {
    ownFiles.set(name, gguf
      ? { gguf: [weightFiles[0].name, new Uint8Array(await weightFiles[0].arrayBuffer())] }
      : {
        config: await configFile.text(),
        tokenizer: tokenizerFile ? await tokenizerFile.text() : undefined,
        files: await Promise.all(weightFiles.map(async (f) => [f.name, new Uint8Array(await f.arrayBuffer())])),
      });
    await model(name, $("f16").checked);
    $("model").add(new Option(name, name));
    $("model").value = name;
    status(`Loaded ${name}.`);
  } catch (e) {
    ownFiles.delete(name);
    status(String(e.message || e), true);
    console.log(`latentgpu-web: error ${e.message || e}`);
  }
}

async function main() {
  const params = new URLSearchParams(location.search);
  for (const key of ["model", "prompt", "tokens", "temperature", "top_k", "top_p", "seed"]) {
    if (params.has(key)) $(key).value = params.get(key);
  }
  if (!navigator.gpu) {
    const msg = "This browser has no WebGPU (navigator.gpu). Use Chrome/Edge 113+, Safari 26+ or Firefox 141+ " +
      "(Windows); on Linux, Chromium needs --enable-unsafe-webgpu (and --enable-features=Vulkan for a real GPU).";
    $("adapter").textContent = msg;
    console.log(`latentgpu-web: error ${msg}`);
    return;
  }
  await init();
  await openGpu();
  $("generate").disabled = false;
  $("generate").addEventListener("click", run);
  $("stop").addEventListener("click", () => running && running.stop());
  $("own_load").addEventListener("click", loadOwn);
  if (params.get("autorun") === "1") await run();
}

main().catch((e) => {
  const msg = String(e.message || e);
  $("adapter").textContent = msg;
  status(msg, true);
  console.log(`latentgpu-web: error ${msg}`);
});
