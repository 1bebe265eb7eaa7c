#!/usr/bin/env python3
"""Coverage of a trimmed vocabulary on a text: the fraction of the full
vocabulary's tokens of the text that the trimmed vocabulary also produces
(same bytes at the same place). Reads `slm tokenize` output.

usage: token_coverage.py SLM FULL.gguf TRIMMED.gguf TEXT_FILE"""
import subprocess
import sys


def spans(slm, model, path):
    out = subprocess.run([slm, "tokenize", "-m", model, "-f", path], check=True,
                         capture_output=True).stdout
    pos, res = 0, set()
    lines = out.split(b"\n")[:-1]
    for line in lines:
        piece = line.decode("unicode_escape").encode("latin-1") if b"\\" in line else line
        res.add((pos, len(piece)))
        pos += len(piece)
    return res, len(lines)


def main():
    slm, full, trimmed, text = sys.argv[1:5]
    a, n_full = spans(slm, full, text)
    b, n_trim = spans(slm, trimmed, text)
    same = len(a & b)
    print(f"{text}: {n_full} tokens with the full vocabulary, {n_trim} with the trimmed one; "
          f"{same} ({100.0 * same / max(n_full, 1):.1f} %) identical")


if __name__ == "__main__":
    main()
