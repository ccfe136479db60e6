"""GGUF files whose only content is a tokenizer, as llama.cpp's `convert_hf_to_gguf.py` writes a
byte-level BPE vocabulary (`tokenizer.ggml.model` gpt2: tokens, token types, merges, BOS/EOS ids,
`add_bos_token`) and a sentencepiece one (`llama`: tokens, scores, token types, byte tokens, no
merges), and the ids transformers' own GGUF tokenizer gives for a few texts.

    python reference/export_gguf_tokenizer.py          # tests/fixtures/gguf/tokenizer/

A byte-level BPE of 400 tokens is trained with the `tokenizers` package on the first lines of the
shipped test slice and a line of numbers, with two control tokens and one user-defined token. It is written twice:
- `qwen2.gguf`: architecture qwen2, `tokenizer.ggml.pre` qwen2 (digits one at a time), no BOS;
- `llama3.gguf`: architecture llama, `tokenizer.ggml.pre` llama-bpe (digits in threes), BOS added.
The same BPE with `tokenizer.ggml.pre` smollm (digits one by one, then GPT-2's split) is
`smollm.gguf`: transformers' GGUF loader does not map that split (it falls back to GPT-2's), so
its ids come from the `tokenizers` package with the pipeline of SmolLM's own `tokenizer.json`.
A sentencepiece-style vocabulary (`<unk>`, `<s>`, `</s>`, the 256 byte tokens, then the pieces of
a BPE trained with `▁` for spaces, scored by rank) is written as `spm.gguf` (architecture llama,
no `add_bos_token`: BOS by default, merges recovered from the scores), as `phi3.gguf`
(architecture phi3: the prefix `▁` from a normalizer) and, with three tokens of spaces and every
score 0, as `gemma3.gguf` (architecture gemma3: no prefix, merges in the tokens' order).
`expected.json` holds, per file and text, `AutoTokenizer.from_pretrained(dir, gguf_file=...)`'s
`input_ids` and its decoding with special tokens skipped. `tests/tokenizer.rs` expects the same.
"""
import json
import os

from gguf import GGUFWriter
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "gguf", "tokenizer")
CORPUS = os.path.join(HERE, "..", "tests", "fixtures", "eval", "test-slice.txt")

CONTROL = ["<|endoftext|>", "<|begin_of_text|>"]
USER_DEFINED = ["<think>"]
TEXTS = [
    "ROMEO: my love,  it's night!",
    "Year 1597, act 12345; scene 7.\n\n  Enter JULIET.\n",
    "Caf\u00e9 na\u00efve \u2014 \u5929\u6c14 \U0001F600 tabs\tand\r\nlines",
    "<|endoftext|>Hello<think>world</think>",
    "   leading and trailing spaces   ",
    " one space first, then  two and   three",
    "",
]


def train():
    with open(CORPUS, encoding="utf-8") as f:
        lines = f.read().splitlines()[:400]
    # Numbers, so that digit merges exist and the two splits (digits one at a time or in threes)
    # give different ids.
    lines += ["12 123 1234 2024 1597 12345 300 45"] * 50
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=CONTROL + USER_DEFINED,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer)
    model = json.loads(tok.to_str())["model"]
    tokens = [None] * len(model["vocab"])
    for token, i in model["vocab"].items():
        tokens[i] = token
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return tokens, merges


def train_spm():
    """Sentencepiece-style tokens and scores: specials, byte tokens, then learned pieces."""
    with open(CORPUS, encoding="utf-8") as f:
        lines = f.read().splitlines()[:400]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=[])
    tok.train_from_iterator(lines, trainer)
    vocab = json.loads(tok.to_str())["model"]["vocab"]
    pieces = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + pieces + USER_DEFINED
    types = [2, 3, 3] + [6] * 256 + [1] * len(pieces) + [4] * len(USER_DEFINED)
    scores = [0.0] * 259 + [-float(i) for i in range(len(pieces))] + [0.0] * len(USER_DEFINED)
    return tokens, types, scores


def write_spm(path, tokens, types, scores, arch="llama"):
    writer = GGUFWriter(path, arch)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def write(path, arch, pre, add_bos, tokens, merges):
    writer = GGUFWriter(path, arch)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types([3 if t in CONTROL else 4 if t in USER_DEFINED else 1 for t in tokens])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokens.index("<|begin_of_text|>"))
    writer.add_eos_token_id(tokens.index("<|endoftext|>"))
    writer.add_add_bos_token(add_bos)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main():
    os.makedirs(OUT, exist_ok=True)
    tokens, merges = train()
    spm = train_spm()
    write_spm(os.path.join(OUT, "spm.gguf"), *spm)
    # The same vocabulary as Phi-3's and Gemma 3's files: Gemma's with tokens of spaces stored
    # as spaces, and scores that do not follow the merges' order (its tokens' order does).
    write_spm(os.path.join(OUT, "phi3.gguf"), *spm, arch="phi3")
    pieces, types, _ = spm
    spaces = ["  ", "   ", "\t  "]
    gemma = (pieces[:-1] + spaces + pieces[-1:], types[:-1] + [1] * 3 + types[-1:],
             [0.0] * (len(pieces) + 3))
    write_spm(os.path.join(OUT, "gemma3.gguf"), *gemma, arch="gemma3")
    expected = {}
    for name, arch, pre, add_bos in [("qwen2", "qwen2", "qwen2", False),
                                     ("llama3", "llama", "llama-bpe", True),
                                     ("spm", None, None, None),
                                     ("phi3", None, None, None),
                                     ("gemma3", None, None, None)]:
        if arch is not None:
            write(os.path.join(OUT, f"{name}.gguf"), arch, pre, add_bos, tokens, merges)
        tok = AutoTokenizer.from_pretrained(OUT, gguf_file=f"{name}.gguf")
        cases = []
        for text in TEXTS:
            ids = tok(text).input_ids
            cases.append({"text": text, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=True)})
        expected[f"{name}.gguf"] = cases
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False)
        f.write("\n")
    write(os.path.join(OUT, "smollm.gguf"), "llama", "smollm", False, tokens, merges)
    own = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)},
                               merges=[tuple(m.split(" ")) for m in merges]))
    own.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    own.decoder = decoders.ByteLevel()
    own.add_special_tokens(CONTROL)
    own.add_tokens(USER_DEFINED)
    cases = []
    for text in TEXTS:
        ids = own.encode(text).ids
        cases.append({"text": text, "ids": ids, "decoded": own.decode(ids, skip_special_tokens=True)})
    expected["smollm.gguf"] = cases
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False)
        f.write("\n")
    for name in sorted(os.listdir(OUT)):
        print(name, os.path.getsize(os.path.join(OUT, name)), "bytes")


if __name__ == "__main__":
    main()
