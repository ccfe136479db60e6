"""A two-turn conversation with the `llama-gqa3` fixture through a chat template, as
transformers runs it: `apply_chat_template(..., add_generation_prompt=True)` tokenized, greedy
`generate` with the model's generation_config (its stop tokens), the reply decoded without
special tokens and added to the conversation before the next turn.

    python reference/export_chat_fixture.py        # tests/fixtures/chat/

Writes `chat_template.jinja` (a template in the fixture's word vocabulary: w5 opens a system
message, w3 a user's, w4 an assistant's) and `expected.json` (per turn the user's text, the prompt's
ids, the reply's ids and text), which `tests/chat.rs` expects from `latentgpu chat`.
"""
import json
import os
import shutil
import tempfile

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "..", "tests", "fixtures", "hf-dense", "llama-gqa3", "model")
OUT = os.path.join(HERE, "..", "tests", "fixtures", "chat")
TEMPLATE = (
    "{% for m in messages %}"
    "{% if m.role == 'system' %}w5 {% elif m.role == 'user' %}w3 {% else %}w4 {% endif %}"
    "{{ m.content }} "
    "{% endfor %}"
    "{% if add_generation_prompt %}w4{% endif %}"
)
SYSTEM = "w40 w41"
TURNS = ["w10 w11 w12", "w20 w21 w22 w23"]
MAX_NEW = 8


def main():
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "chat_template.jinja"), "w") as f:
        f.write(TEMPLATE)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = os.path.join(tmp, "model")
        shutil.copytree(MODEL, model_dir)
        shutil.copy(os.path.join(OUT, "chat_template.jinja"), model_dir)
        tok = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        messages = [{"role": "system", "content": SYSTEM}]
        turns = []
        for user in TURNS:
            messages.append({"role": "user", "content": user})
            ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                          return_dict=False)
            with torch.no_grad():
                out = model.generate(torch.tensor([ids]), max_new_tokens=MAX_NEW, do_sample=False,
                                     pad_token_id=0)
            new = out[0, len(ids):].tolist()
            text = tok.decode(new, skip_special_tokens=True)
            turns.append({"user": user, "prompt_ids": ids, "ids": new, "text": text})
            messages.append({"role": "assistant", "content": text})
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump({"system": SYSTEM, "max_tokens": MAX_NEW, "turns": turns}, f, indent=1)
    print(json.dumps(turns))


if __name__ == "__main__":
    main()
