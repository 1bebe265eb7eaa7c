#!/usr/bin/env python3
"""Checks a file `slm quantize` wrote, reading it with the `gguf` package:

  check_quantized.py IN.gguf OUT.gguf MIX [--imatrix FILE]

- every metadata key of IN is in OUT with the same value, except
  general.file_type (llama.cpp's number for MIX) and
  general.quantization_version (2); the only extra keys are quantize.imatrix.*;
- the same tensors in the same order and shapes, each of the type the
  documented mix rules give it (docs/QUANTIZATION.md, restated below
  independently of src/quant/quant_mix.c);
- each tensor, dequantized by gguf.quants, is within a per-type relative rms
  error of IN's tensor (dequantized the same way); a tensor the importance
  matrix has an entry for is measured with each column's error weighted by
  its importance (what the quantizer then minimises: it may trade accuracy on
  unimportant columns for the important ones)
Prints one line per problem; exit status 1 if any."""
import sys

import numpy as np
from gguf import GGUFReader, GGMLQuantizationType as T
import gguf.quants as gq

FILE_TYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9, "q2_k": 10,
             "q3_k_s": 11, "q3_k_m": 12, "q3_k_l": 13, "q4_k_s": 14, "q4_k_m": 15, "q5_k_s": 16,
             "q5_k_m": 17, "q6_k": 18, "bf16": 32}
BASE = {"f32": T.F32, "f16": T.F16, "bf16": T.BF16, "q8_0": T.Q8_0, "q6_k": T.Q6_K, "q5_k_m": T.Q5_K,
        "q5_k_s": T.Q5_K, "q5_1": T.Q5_1, "q5_0": T.Q5_0, "q4_k_m": T.Q4_K, "q4_k_s": T.Q4_K,
        "q4_1": T.Q4_1, "q4_0": T.Q4_0, "q3_k_l": T.Q3_K, "q3_k_m": T.Q3_K, "q3_k_s": T.Q3_K, "q2_k": T.Q2_K}
# largest relative rms error accepted per output type (weights with outliers)
MAX_ERR = {T.F32: 0.0, T.F16: 1e-3, T.BF16: 8e-3, T.Q8_0: 0.01, T.Q6_K: 0.04, T.Q5_1: 0.07, T.Q5_K: 0.07,
           T.Q5_0: 0.08, T.Q4_1: 0.14, T.Q4_K: 0.14, T.Q4_0: 0.16, T.Q3_K: 0.28, T.Q2_K: 0.5}
FALLBACK = {T.Q2_K: T.Q4_0, T.Q3_K: T.Q4_0, T.Q4_K: T.Q5_0, T.Q5_K: T.Q5_1, T.Q6_K: T.Q8_0}
K_TYPES = set(FALLBACK)


def more_bits(i, n):
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def expected_type(mix, name, shape, n_layer, gqa, has_output):
    base = BASE[mix]
    layer = int(name.split(".")[1]) if name.startswith("blk.") else -1
    if len(shape) < 2 or "_norm" in name:
        return T.F32
    if base in (T.F32, T.F16, T.BF16):
        t = base
    elif name == "output.weight" or (name == "token_embd.weight" and not has_output):
        t = T.Q8_0 if mix == "q8_0" else T.Q6_K
    elif "attn_v.weight" in name:
        t = {"q2_k": T.Q4_K, "q3_k_s": T.Q4_K if gqa >= 4 else T.Q3_K,
             "q3_k_m": T.Q5_K if layer < 2 else T.Q4_K, "q3_k_l": T.Q5_K,
             "q4_k_s": T.Q5_K if layer < 4 else T.Q4_K,
             "q4_k_m": T.Q6_K if more_bits(layer, n_layer) else T.Q4_K,
             "q5_k_m": T.Q6_K if more_bits(layer, n_layer) else T.Q5_K}.get(mix, base)
        if gqa >= 8 and t in (T.Q3_K, T.Q4_K):
            t = T.Q5_K
    elif "ffn_down" in name:
        t = {"q2_k": T.Q3_K, "q3_k_s": T.Q3_K, "q3_k_m": T.Q5_K if layer < 2 else T.Q4_K, "q3_k_l": T.Q5_K,
             "q4_k_s": T.Q5_K if layer < n_layer // 8 else T.Q4_K,
             "q4_k_m": T.Q6_K if more_bits(layer, n_layer) else T.Q4_K,
             "q5_k_m": T.Q6_K if more_bits(layer, n_layer) else T.Q5_K}.get(mix, base)
    elif "attn_output.weight" in name:
        t = {"q2_k": T.Q3_K, "q3_k_m": T.Q4_K, "q3_k_l": T.Q5_K}.get(mix, base)
    else:
        t = base
    row = shape[0]
    if t in K_TYPES and row % 256:
        t = FALLBACK[t]
    if t not in (T.F32, T.F16, T.BF16) and row % 32:
        t = T.F16
    return t


def field_value(f):
    return f.contents()


def main():
    inp, out, mix = sys.argv[1], sys.argv[2], sys.argv[3]
    imatrix = sys.argv[5] if len(sys.argv) > 5 and sys.argv[4] == "--imatrix" else None
    a, b = GGUFReader(inp), GGUFReader(out)
    problems = []
    ka = {k: f for k, f in a.fields.items() if not k.startswith("GGUF.")}
    kb = {k: f for k, f in b.fields.items() if not k.startswith("GGUF.")}
    for k, f in ka.items():
        if k in ("general.file_type", "general.quantization_version"):
            continue
        if k not in kb:
            problems.append(f"key {k} missing")
        elif field_value(f) != field_value(kb[k]) or f.types != kb[k].types:
            problems.append(f"key {k}: {field_value(kb[k])!r} != {field_value(f)!r}")
    for k in kb:
        if k not in ka and k not in ("general.file_type", "general.quantization_version") \
                and not k.startswith("quantize.imatrix."):
            problems.append(f"unexpected key {k}")
    if "general.file_type" not in kb or field_value(kb["general.file_type"]) != FILE_TYPE[mix]:
        problems.append("general.file_type")
    if "general.quantization_version" not in kb or field_value(kb["general.quantization_version"]) != 2:
        problems.append("general.quantization_version")
    if imatrix:
        if "quantize.imatrix.file" not in kb or field_value(kb["quantize.imatrix.file"]) != imatrix:
            problems.append("quantize.imatrix.file")
        if "quantize.imatrix.entries_count" not in kb:
            problems.append("quantize.imatrix.entries_count")
    arch = field_value(ka["general.architecture"])
    n_layer = int(field_value(ka[f"{arch}.block_count"]))
    gqa = int(field_value(ka[f"{arch}.attention.head_count"])) // int(field_value(ka[f"{arch}.attention.head_count_kv"]))
    importance = {}
    if imatrix:
        im = {t.name: t for t in GGUFReader(imatrix).tensors}
        for n, t in im.items():
            if n.endswith(".in_sum2") and int(np.prod(t.data.shape)) == int(t.shape[0]):  # one matrix
                cnt = float(np.asarray(im[n[:-8] + ".counts"].data).reshape(-1)[0])
                importance[n[:-8]] = np.asarray(t.data, dtype=np.float64).reshape(-1) / max(cnt, 1.0)
    names_a = [t.name for t in a.tensors]
    has_output = "output.weight" in names_a
    if names_a != [t.name for t in b.tensors]:
        problems.append("tensor names or order differ")
    for ta, tb in zip(a.tensors, b.tensors):
        shape = [int(x) for x in ta.shape]
        if shape != [int(x) for x in tb.shape]:
            problems.append(f"{ta.name}: shape {list(tb.shape)} != {shape}")
            continue
        want = expected_type(mix, ta.name, shape, n_layer, gqa, has_output)
        if tb.tensor_type != want:
            problems.append(f"{ta.name}: type {tb.tensor_type.name}, documented {want.name}")
        x = gq.dequantize(ta.data, ta.tensor_type).astype(np.float64).reshape(-1)
        y = gq.dequantize(tb.data, tb.tensor_type).astype(np.float64).reshape(-1)
        imp = importance.get(ta.name)
        if imp is not None and x.size % imp.size == 0 and imp.sum() > 0:
            wcol = np.tile(imp, x.size // imp.size)
            rel = np.sqrt(np.sum(wcol * (x - y) ** 2)) / max(np.sqrt(np.sum(wcol * x ** 2)), 1e-30)
        else:
            rel = np.sqrt(np.mean((x - y) ** 2)) / max(np.sqrt(np.mean(x ** 2)), 1e-30)
        if ta.tensor_type == tb.tensor_type and rel != 0:
            problems.append(f"{ta.name}: same type but bytes changed")
        elif rel > MAX_ERR.get(tb.tensor_type, 0):
            problems.append(f"{ta.name}: {tb.tensor_type.name} relative rms error {rel:.4g} > {MAX_ERR[tb.tensor_type]}")
    for p in problems:
        print(f"check_quantized {mix}: {p}", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
