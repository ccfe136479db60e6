#!/usr/bin/env bash
# The GGUF quality and speed tables of the README, measured in one sitting on the real-shaped
# files reference/export_real_gguf.py writes (random weights, real widths; not committed):
#   quality  each quantized file against the f32 file, as llama.cpp measures it: llama.cpp's
#            own llama-perplexity writes the f32 base (CPU, f32 cache), then scores each file
#            (--kl-divergence), and ours scores the same file against the same base
#            (eval --kl-divergence-base);
#   speed    prefill and decode of every file (bench model), and llama.cpp's Vulkan backend on
#            the same files and adapter (llama-bench) where LLAMA_VK_BIN names its build.
# Usage: LLAMA_CPP=/path/to/llama.cpp [LLAMA_VK_BIN=/path/to/build-vk/bin] [QUALITY=0] \
#            [TYPES="q8_0 q4_k_m ..."] [PROMPT=256] [DECODE=64] scripts/bench-gguf.sh DIR [SHAPE]
# SHAPE is smollm2 (the default) or qwen3-0.6b (reference/export_real_gguf.py); QUALITY=0 runs
# the speed table only; TYPES, PROMPT and DECODE choose the files and lengths. DIR holds the files (made there first when absent); results go to
# bench-results/gguf-{quality,speed,llama-vk-TYPE}[-SHAPE].json (no suffix for smollm2).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:?usage: scripts/bench-gguf.sh DIR [SHAPE]}
shape=${2:-smollm2}
suffix=""
[ "$shape" = smollm2 ] || suffix="-$shape"
llama=${LLAMA_CPP:?set LLAMA_CPP to a llama.cpp source tree with build/bin}
bin="$llama/build/bin"
target=${CARGO_TARGET_DIR:-target}
types=${TYPES:-q8_0 q6_k q5_k_m q4_k_m q3_k_m q4_0 q4_1}
prompt=${PROMPT:-256}
decode=${DECODE:-64}
[ -f "$dir/$shape-shaped-f32.gguf" ] || python3 reference/export_real_gguf.py "$dir" "$shape"
cargo build --release --quiet
ours="$target/release/latentgpu"
mkdir -p bench-results
uptime

if [ "${QUALITY:-1}" != 0 ]; then
text=tests/fixtures/eval/test-slice.txt
base="$dir/base-f32.bin"
"$bin/llama-perplexity" -m "$dir/$shape-shaped-f32.gguf" -f "$text" -c 128 -b 128 --chunks 8 \
    -t 2 -ctk f32 -ctv f32 --kl-divergence-base "$base" > /dev/null 2>&1
quality="bench-results/gguf-quality$suffix.json"
echo "[" > "$quality"
sep=""
for t in $types; do
    f="$dir/$shape-shaped-$t.gguf"
    "$bin/llama-perplexity" -m "$f" -c 128 -b 128 -t 2 -ctk f32 -ctv f32 \
        --kl-divergence-base "$base" --kl-divergence > "$dir/llama-kl-$t.txt" 2>&1
    mean=$(awk '/Mean    KLD/ {print $3}' "$dir/llama-kl-$t.txt")
    p999=$(awk '/99.9%   KLD/ {print $3}' "$dir/llama-kl-$t.txt")
    same=$(awk '/^Same top p:/ {print $4}' "$dir/llama-kl-$t.txt")
    "$ours" eval --model "$f" --kl-divergence-base "$base" --json > "$dir/ours-kl-$t.json"
    echo "$sep{\"type\": \"$t\", \"llama_cpp\": {\"kld_mean\": $mean, \"kld_p999\": $p999, \"same_top_percent\": $same}, \"ours\": $(cat "$dir/ours-kl-$t.json")}" >> bench-results/gguf-quality.json
    sep=","
    echo "$t: llama.cpp KLD mean $mean, 99.9% $p999, same top $same%"
done
echo "]" >> "$quality"
fi

models="$dir/$shape-shaped-f32.gguf"
for t in $types; do models="$models,$dir/$shape-shaped-$t.gguf"; done
"$ours" bench model --models "$models" --prompt "$prompt" --decode "$decode" --out "bench-results/gguf-speed$suffix.json"
if [ -n "${LLAMA_VK_BIN:-}" ]; then
    for t in f32 $types; do
        out="bench-results/gguf-llama-vk-$t$suffix.json"
        GGML_VK_VISIBLE_DEVICES=0 "$LLAMA_VK_BIN/llama-bench" -m "$dir/$shape-shaped-$t.gguf" \
            -p "$prompt" -n "$decode" -ngl 99 -r 1 -o json > "$out" 2> /dev/null
        echo "llama.cpp Vulkan $t: $(grep -o '"avg_ts": [0-9.]*' "$out" | tr '\n' ' ')"
    done
fi
