#!/usr/bin/env python3
"""Reads a model and its `slm trim-vocab` copy with the `gguf` Python package
(an independent reader) and checks that the copy is the original with a
subset of the vocabulary: every kept token keeps its text, score and type,
the ids stay in their old order, the byte tokens and every control /
user-defined token are kept, the special ids name the same texts, each row
of token_embd.weight (and output.weight) equals the original's row of the
same token byte for byte, and every other tensor and key is unchanged.

usage: check_trimmed.py ORIGINAL.gguf TRIMMED.gguf [PIECE ...]
PIECEs (vocabulary texts, e.g. "▁Room") must be in the trimmed vocabulary.
Exit status 0 when everything holds; the first problem is printed."""
import sys

import numpy as np
from gguf import GGUFReader


def fail(msg):
    print("check_trimmed: " + msg, file=sys.stderr)
    sys.exit(1)


def arr(r, key):
    f = r.fields.get(key)
    if f is None:
        return None
    return [f.parts[i] for i in f.data]


def strs(r, key):
    return [bytes(p).decode("utf-8") for p in arr(r, key)]


def nums(r, key):
    a = arr(r, key)
    return None if a is None else [p[0].item() for p in a]


def main(orig_path, trim_path, pieces):
    a, b = GGUFReader(orig_path), GGUFReader(trim_path)
    ta, tb = strs(a, "tokenizer.ggml.tokens"), strs(b, "tokenizer.ggml.tokens")
    if not 0 < len(tb) < len(ta):
        fail(f"vocabulary {len(ta)} -> {len(tb)}: not a proper subset")
    index = {t: i for i, t in enumerate(ta)}
    old = []
    for t in tb:
        if t not in index:
            fail(f"token {t!r} is not in the original vocabulary")
        old.append(index[t])
    if old != sorted(old) or len(set(old)) != len(old):
        fail("kept ids are not in their original order")
    for key in ("tokenizer.ggml.scores", "tokenizer.ggml.token_type"):
        va, vb = nums(a, key), nums(b, key)
        if (va is None) != (vb is None):
            fail(f"{key} present in only one file")
        if va is not None and any(vb[i] != va[o] for i, o in enumerate(old)):
            fail(f"{key} differs for a kept token")
    types = nums(a, "tokenizer.ggml.token_type")
    kept = set(old)
    for i, ty in enumerate(types):
        if ty in (2, 3, 4, 6) and i not in kept:
            fail(f"token {i} ({ta[i]!r}, type {ty}) was dropped")
    for p in pieces:
        if p not in set(tb):
            fail(f"piece {p!r} is missing from the trimmed vocabulary")
    for key in a.fields:
        if key.startswith("tokenizer.ggml.") and key.endswith("_token_id"):
            ia, ib = a.fields[key].contents(), b.fields[key].contents()
            if ta[ia] != tb[ib]:
                fail(f"{key}: {ta[ia]!r} became {tb[ib]!r}")
    skip = {"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
            "tokenizer.ggml.merges"}
    ka = [k for k in a.fields if not k.startswith("GGUF.")]
    kb = [k for k in b.fields if not k.startswith("GGUF.")]
    if ka != kb:
        fail(f"the keys differ: {set(ka) ^ set(kb)}")
    for k in ka:
        if k in skip or k.endswith("_token_id") or k.endswith(".vocab_size"):
            continue
        if a.fields[k].contents() != b.fields[k].contents():
            fail(f"metadata {k} changed")
    tensors_a = {t.name: t for t in a.tensors}
    tensors_b = {t.name: t for t in b.tensors}
    if list(tensors_a) != list(tensors_b):
        fail("the tensor lists differ")
    n_rows = 0
    for name, t in tensors_a.items():
        u = tensors_b[name]
        if t.tensor_type != u.tensor_type:
            fail(f"{name}: type changed")
        da = np.asarray(t.data).view(np.uint8).reshape(int(t.shape[-1]), -1)
        db = np.asarray(u.data).view(np.uint8).reshape(int(u.shape[-1]), -1)
        if name in ("token_embd.weight", "output.weight"):
            if db.shape[0] != len(tb) or not np.array_equal(da[old], db):
                fail(f"{name}: rows are not the original's rows of the kept tokens")
            n_rows += db.shape[0]
        elif not np.array_equal(da, db):
            fail(f"{name}: bytes changed")
    print(f"check_trimmed: {len(ta)} -> {len(tb)} tokens, {n_rows} embedding rows equal the original's, "
          f"{len(tensors_a) - 1} other tensors unchanged")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        fail("usage: check_trimmed.py ORIGINAL.gguf TRIMMED.gguf [PIECE ...]")
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
