"""Real models' chat templates (from llama.cpp's `models/templates/`, as the `llama-cpp-python`
sdist vendors them) rendered by transformers' own `render_jinja_template` (what
`apply_chat_template` calls) on a few conversations, for `tests/chat_template.rs`.

    python reference/export_chat_templates.py --templates LLAMA_CPP/models/templates
    python reference/export_chat_templates.py --templates LLAMA_CPP/models/templates --all DIR

Writes tests/fixtures/chat_templates/: each chosen template as it is, and `cases.json`: per
template its file, the special tokens given, and per conversation (system + user with a
generation prompt, several turns with one, a finished exchange without one) transformers' text,
or the error it raises. `strftime_now` sees a fixed date (`NOW`), which the test gives too. With
`--all DIR`, every template of the directory, written to DIR (not committed).
"""
import argparse
import datetime as real_datetime
import json
import os
import shutil

import transformers.utils.chat_template_utils as ctu

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "chat_templates")
NOW = real_datetime.datetime(2026, 7, 4, 9, 30, 0)

# The families this project runs, and the other most downloaded instruct models' templates.
# Not the `*-tool_use` ones: they iterate `tools`, which transformers passes as None when a call
# gives none, so it raises where Jinja engines that iterate None as empty (ours) render.
CHOSEN = [
    "HuggingFaceTB-SmolLM3-3B.jinja",
    "Qwen-Qwen2.5-7B-Instruct.jinja",
    "Qwen-Qwen3-0.6B.jinja",
    "meta-llama-Llama-3.1-8B-Instruct.jinja",
    "meta-llama-Llama-3.2-3B-Instruct.jinja",
    "microsoft-Phi-3.5-mini-instruct.jinja",
    "google-gemma-2-2b-it.jinja",
    "mistralai-Mistral-Nemo-Instruct-2407.jinja",
    "Mistral-Small-3.2-24B-Instruct-2506.jinja",
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja",
    "deepseek-ai-DeepSeek-V3.1.jinja",
    "ibm-granite-granite-3.3-2B-Instruct.jinja",
    "meta-llama-Llama-3.3-70B-Instruct.jinja",
    "Qwen3-Coder.jinja",
    "ibm-granite-granite-4.0.jinja",
    "openai-gpt-oss-120b.jinja",
    "Qwen-QwQ-32B.jinja",
    # transformers' `{% generation %}` blocks (its AssistantTracker), rendered as their body.
    "LFM2.5-8B-A1B.jinja",
]

SPECIAL = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}

CONVERSATIONS = [
    ([{"role": "system", "content": "You are terse."},
      {"role": "user", "content": "What is the capital of France?"}], True),
    ([{"role": "user", "content": "Hi!"},
      {"role": "assistant", "content": "Hello. How can I help?"},
      {"role": "user", "content": "Name a prime  number,\nplease."}], True),
    ([{"role": "user", "content": "2 + 2?"},
      {"role": "assistant", "content": "4"}], False),
]


class FixedDatetime(real_datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return NOW


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--templates", required=True, help="llama.cpp's models/templates directory")
    ap.add_argument("--all", help="write every template of the directory here instead")
    args = ap.parse_args()
    ctu.datetime = FixedDatetime
    out = args.all or OUT
    chosen = sorted(f for f in os.listdir(args.templates) if f.endswith(".jinja")) if args.all else CHOSEN
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    cases = {"now": NOW.isoformat(), "special_tokens": SPECIAL, "templates": {}}
    for name in chosen:
        with open(os.path.join(args.templates, name), encoding="utf-8") as f:
            template = f.read()
        shutil.copy(os.path.join(args.templates, name), os.path.join(out, name))
        renders = []
        for messages, add_generation_prompt in CONVERSATIONS:
            entry = {"messages": messages, "add_generation_prompt": add_generation_prompt}
            try:
                text = ctu.render_jinja_template([messages], chat_template=template,
                                                 add_generation_prompt=add_generation_prompt, **SPECIAL)[0][0]
                entry["text"] = text
            except Exception as e:  # noqa: BLE001 - a template's own refusal is part of what we record
                entry["error"] = str(e)
            renders.append(entry)
        cases["templates"][name] = renders
    with open(os.path.join(out, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, indent=1, ensure_ascii=False)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(out, x)) for x in os.listdir(out))
    print(f"{out}: {len(chosen)} templates, {size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
