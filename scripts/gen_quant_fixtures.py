#!/usr/bin/env python3
"""Writes tests/fixtures/quant/<type>.bin: golden block dequantization from the
`gguf` Python package (gguf.quants.dequantize), the independent reference of
our block layouts.

File format (little-endian): the raw blocks of one row (nb blocks, nb *
block_bytes bytes), then the nb * block_size float32 values the reference
dequantizes them to. The test derives nb from the file size.

Blocks come from gguf.quants.quantize where the package can quantize the type
(f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0), plus blocks of random bytes
with sane f16 scales (no NaN/Inf) for every type, so that every bit pattern of
the quants is exercised; the K-quants are random bytes only (gguf cannot
quantize them). The f16 / bf16 rows also carry special values (+-0,
subnormals, +-inf; NaN is left out since it does not compare by value).

Run: $(scripts/ref_venv.sh) scripts/gen_quant_fixtures.py
"""
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
import gguf.quants as gq

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "quant")
rng = np.random.default_rng(20240611)


def sane_f16(n, lo=1e-3, hi=2.0, signed=False):
    v = rng.uniform(lo, hi, size=n).astype(np.float32)
    if signed:
        v *= rng.choice([-1.0, 1.0], size=n).astype(np.float32)
    return v.astype(np.float16).view(np.uint8).reshape(n, 2)


# byte offsets of the f16 fields of each type's block (d, m/dmin, ...)
F16_FIELDS = {
    T.Q4_0: [(0, False)], T.Q4_1: [(0, False), (2, True)],
    T.Q5_0: [(0, False)], T.Q5_1: [(0, False), (2, True)],
    T.Q8_0: [(0, True)],
    T.Q2_K: [(80, False), (82, False)], T.Q3_K: [(108, True)],
    T.Q4_K: [(0, False), (2, False)], T.Q5_K: [(0, False), (2, False)],
    T.Q6_K: [(208, True)],
}


def random_blocks(qt, nb):
    bs, tb = GGML_QUANT_SIZES[qt]
    blocks = rng.integers(0, 256, size=(nb, tb), dtype=np.uint8)
    for off, signed in F16_FIELDS[qt]:
        blocks[:, off:off + 2] = sane_f16(nb, signed=signed)
    return blocks


def write(name, raw, ref):
    raw = np.ascontiguousarray(raw, dtype=np.uint8).ravel()
    ref = np.ascontiguousarray(ref, dtype=np.float32).ravel()
    assert np.all(np.isfinite(ref)) or name in ("f16", "bf16", "f32")
    with open(os.path.join(OUT, name + ".bin"), "wb") as f:
        f.write(raw.tobytes())
        f.write(ref.astype("<f4").tobytes())
    print(f"{name}: {raw.size} bytes of blocks, {ref.size} values", file=sys.stderr)


def main():
    os.makedirs(OUT, exist_ok=True)
    specials = np.array([0.0, -0.0, 1.0, -2.5, 65504.0, -65504.0, np.inf, -np.inf,
                         6.1e-5, 5.96e-8, -5.96e-8, 3.0e-6, 1e-40, 3.4e38], dtype=np.float32)

    # float types: 256 values + specials (f16 rounding/overflow done by numpy)
    x = np.concatenate([rng.standard_normal(242).astype(np.float32), specials])
    with np.errstate(over="ignore"):
        x16 = x.astype(np.float16)
    for qt, name in ((T.F32, "f32"), (T.F16, "f16"), (T.BF16, "bf16")):
        raw = x16.reshape(1, -1) if qt == T.F16 else gq.quantize(x.reshape(1, -1), qt)
        ref = gq.dequantize(np.asarray(raw).view(np.uint8), qt)
        write(name, np.asarray(raw).view(np.uint8), ref)

    # 32-blocks: 12 blocks through the package's quantizer + 12 random blocks
    for qt in (T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0):
        bs, tb = GGML_QUANT_SIZES[qt]
        data = (rng.standard_normal((1, 12 * bs)) * rng.uniform(0.01, 3.0)).astype(np.float32)
        data[0, :bs] = 0.0  # an all-zero block (d = 0)
        q = gq.quantize(data, qt).reshape(-1, tb)
        raw = np.concatenate([q, random_blocks(qt, 12)], axis=0)
        ref = gq.dequantize(raw.reshape(1, -1), qt)
        write(qt.name.lower(), raw, ref)

    # K-quants: random bytes with sane scales
    for qt in (T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K):
        bs, tb = GGML_QUANT_SIZES[qt]
        raw = random_blocks(qt, 6)
        ref = gq.dequantize(raw.reshape(1, -1), qt)
        name = qt.name.lower().replace("_k", "_K")
        write(name, raw, ref)

    conversions()


def conversions():
    """conv.bin: n float32 inputs, then numpy's float16 of each (uint16, round to
    nearest even, overflow to inf, subnormals), then gguf's bf16 of each
    (uint16, round to nearest even)."""
    n = 4096
    e = rng.uniform(-30, 18, size=n)
    x = (rng.choice([-1.0, 1.0], size=n) * rng.uniform(1, 2, size=n) * 2.0 ** e).astype(np.float32)
    # exact halfway points between neighbouring halves (normal and subnormal) and
    # between bf16 neighbours, to exercise ties-to-even
    h = rng.integers(0, 0x7bff, size=256, dtype=np.uint16)
    lo = h.view(np.float16).astype(np.float32)
    hi = (h + 1).view(np.float16).astype(np.float32)
    x[:256] = (lo.astype(np.float64) + hi.astype(np.float64)) / 2  # exact in f32
    b = rng.integers(0, 0x7f7f, size=256, dtype=np.uint32) << 16
    x[256:512] = (b | 0x8000).view(np.float32)
    x[512:526] = np.array([0.0, -0.0, np.inf, -np.inf, 65504.0, 65519.99, 65520.0, -65520.0,
                           2.0 ** -24, 2.0 ** -25, 2.0 ** -25 * 1.0001, 2.0 ** -14, 1e-45, 3.4e38],
                          dtype=np.float32)
    with np.errstate(over="ignore"):
        f16 = x.astype(np.float16).view(np.uint16)
    bf = gq.quantize(x.reshape(1, -1), T.BF16).view(np.uint16).ravel()
    with open(os.path.join(OUT, "conv.bin"), "wb") as f:
        f.write(x.astype("<f4").tobytes())
        f.write(f16.astype("<u2").tobytes())
        f.write(bf.astype("<u2").tobytes())


if __name__ == "__main__":
    main()
