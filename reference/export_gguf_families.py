"""GGUF twins of the Hugging Face fixtures of the newer families, written by llama.cpp's own
converter classes (`convert_hf_to_gguf.py`'s `Gemma3Model`, `SmolLM3Model`, `Qwen3MoeModel`,
`Phi3MiniModel`, and `LlamaModel` for Mixtral): their tensor names, metadata keys and value changes (Gemma's norms
stored as 1 + weight, SmolLM3's and Mixtral's q and k rows permuted, routed experts stacked), in
f32 so that each file holds its directory's values exactly.

    python reference/export_gguf_families.py --llama-cpp /path/to/llama.cpp
    python reference/export_gguf_families.py --llama-cpp /path/to/llama.cpp --real-shape DIR [--outtype q8_0]

The fixtures have no real tokenizer, so the converter's vocabulary step is replaced by a small
one: `<pad>`, `<eos>`, `<bos>`, `<unk>`, then words; Gemma's has `<end_of_turn>` at id 5, which
generation must stop at as llama.cpp does. Writes tests/fixtures/gguf/families/<name>-f32.gguf
from tests/fixtures/hf-dense/<name>/model. With --real-shape, converts the checkpoint that
`export_hf_fixtures.py --real-shape DIR --shape gemma3-270m` (or `phi4-mini-slice`) wrote, to
DIR.gguf (DIR-q8_0.gguf with --outtype q8_0), not committed.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures")
OUT = os.path.join(FIXTURES, "gguf", "families")
# fixture -> (llama.cpp conversion module, class)
FAMILIES = {
    "gemma3-window-full": ("conversion.gemma", "Gemma3Model"),
    "smollm3-nope": ("conversion.llama", "SmolLM3Model"),
    "qwen3-moe-normed": ("conversion.qwen", "Qwen3MoeModel"),
    "phi4-mini-longrope": ("conversion.phi", "Phi3MiniModel"),
    # Mixtral is a Llama to the converter: its experts stacked, its q and k rows permuted.
    "mixtral-top2": ("conversion.llama", "LlamaModel"),
}
END_OF_TURN = 5


def tokens_for(name, vocab):
    words = ["<pad>", "<eos>", "<bos>", "<unk>"] + [f"w{i}" for i in range(4, vocab)]
    if name.startswith("gemma3"):
        words[END_OF_TURN] = "<end_of_turn>"
    return words


def convert(cls, src, out, words, ftype):
    """llama.cpp's converter class `cls` on the checkpoint `src`, its vocabulary `words`."""
    import gguf
    import torch

    vocab = len(words)

    class Converter(cls):
        model_arch = cls.model_arch

        def set_vocab(self):
            self.gguf_writer.add_tokenizer_model("llama")
            self.gguf_writer.add_tokenizer_pre("default")
            self.gguf_writer.add_token_list(words)
            self.gguf_writer.add_token_scores([0.0] * vocab)
            self.gguf_writer.add_token_types([3 if w.startswith("<") else 1 for w in words])
            self.gguf_writer.add_bos_token_id(2)
            self.gguf_writer.add_eos_token_id(1)

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        shutil.copytree(src, model_dir)
        # Gemma's converter counts the vocabulary in tokenizer.json to drop rows past it.
        with open(model_dir / "tokenizer.json", "w") as f:
            json.dump({"model": {"vocab": {w: i for i, w in enumerate(words)}}, "added_tokens": []}, f)
        with torch.inference_mode():
            Converter(model_dir, ftype, Path(out)).write()
    print(f"{out}: {os.path.getsize(out) / 1024:.0f} KB")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-cpp", required=True, help="a llama.cpp source tree (its conversion/ and gguf-py/)")
    ap.add_argument("--real-shape", help="convert this real-shaped checkpoint instead (not committed)")
    ap.add_argument("--outtype", choices=["f32", "q8_0"], default="f32", help="with --real-shape")
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(args.llama_cpp, "gguf-py"))
    sys.path.insert(0, args.llama_cpp)
    import importlib

    import gguf

    if args.real_shape:
        src = args.real_shape.rstrip("/")
        with open(os.path.join(src, "config.json")) as f:
            config = json.load(f)
        module, cls_name = {"gemma3_text": ("conversion.gemma", "Gemma3Model"),
                            "phi3": ("conversion.phi", "Phi3MiniModel")}[config["model_type"]]
        cls = getattr(importlib.import_module(module), cls_name)
        ftype = {"f32": gguf.LlamaFileType.ALL_F32, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[args.outtype]
        suffix = "" if args.outtype == "f32" else f"-{args.outtype}"
        convert(cls, src, f"{src}{suffix}.gguf", tokens_for(config["model_type"], config["vocab_size"]), ftype)
        return
    os.makedirs(OUT, exist_ok=True)
    for name, (module, cls_name) in FAMILIES.items():
        cls = getattr(importlib.import_module(module), cls_name)
        src = os.path.join(FIXTURES, "hf-dense", name, "model")
        with open(os.path.join(src, "config.json")) as f:
            vocab = json.load(f)["vocab_size"]
        out = Path(OUT) / f"{name}-f32.gguf"
        convert(cls, src, out, tokens_for(name, vocab), gguf.LlamaFileType.ALL_F32)


if __name__ == "__main__":
    main()
