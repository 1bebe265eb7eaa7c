#!/usr/bin/env python3
"""Writes, with the `gguf` package's writer (independent of ours), the small
inputs tests/cli_quantize.sh feeds to `slm quantize`:

  DIR/tiny.gguf        a 2-layer llama-style model: a 640-wide embedding (not a
                       multiple of 256, so the K-quants fall back), 512- and
                       1024-wide matrices (K-quants apply), norms, one F16 and
                       one Q8_0 source tensor (requantized from their type)
  DIR/tiny_nan.gguf    the same with a NaN in blk.1.attn_q.weight
  DIR/imatrix.gguf     a matching importance matrix (llama.cpp's layout)
  DIR/imatrix_bad.gguf an importance matrix whose attn_q entry has the wrong width
  DIR/imatrix_other.gguf  entries for tensors the model does not have
"""
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
import gguf.quants as gq

rng = np.random.default_rng(7)


def weights(rows, cols, scale=0.05):
    # per-column scales and a few outliers, like trained weights
    w = rng.normal(0, scale, (rows, cols)) * np.exp(rng.normal(0, 0.5, cols))
    idx = rng.integers(0, w.size, w.size // 500)
    w.flat[idx] *= 8
    return w.astype(np.float32)


def tiny_model(path, nan=False):
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("tiny quantize test")
    w.add_block_count(2)
    w.add_embedding_length(640)
    w.add_feed_forward_length(1024)
    w.add_head_count(4)
    w.add_head_count_kv(1)
    w.add_context_length(128)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_file_type(0)
    w.add_array("tokenizer.ggml.tokens", [f"t{i}" for i in range(32)])
    w.add_string("test.marker", "carried over \u2581")
    w.add_tensor("token_embd.weight", weights(32, 640))
    w.add_tensor("output_norm.weight", np.ones(640, dtype=np.float32))
    for b in range(2):
        p = f"blk.{b}."
        w.add_tensor(p + "attn_norm.weight", (1 + rng.normal(0, 0.1, 640)).astype(np.float32))
        q = weights(64, 640)
        if nan and b == 1:
            q[5, 7] = np.nan
        w.add_tensor(p + "attn_q.weight", q)
        w.add_tensor(p + "attn_k.weight", weights(32, 640).astype(np.float16), raw_dtype=T.F16)
        w.add_tensor(p + "attn_v.weight", weights(32, 512))
        q8 = gq.quantize(weights(16, 512), T.Q8_0)
        w.add_tensor(p + "attn_output.weight", q8, raw_dtype=T.Q8_0)
        w.add_tensor(p + "ffn_up.weight", weights(32, 512))
        w.add_tensor(p + "ffn_down.weight", weights(16, 1024))
        w.add_tensor(p + "ffn_norm.weight", np.ones(512, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def imatrix(path, entries):
    w = gguf.GGUFWriter(path, "")
    # the imatrix file has no architecture; llama.cpp writes general.type
    w.add_string("general.type", "imatrix")
    w.add_array("imatrix.datasets", ["tiny-calibration.txt"])
    w.add_uint32("imatrix.chunk_count", 3)
    w.add_uint32("imatrix.chunk_size", 512)
    for name, cols in entries:
        sums = (rng.gamma(0.5, 2.0, cols) * 100).astype(np.float32).reshape(1, cols)
        w.add_tensor(name + ".in_sum2", sums)
        w.add_tensor(name + ".counts", np.array([[100.0]], dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main(out):
    os.makedirs(out, exist_ok=True)
    tiny_model(os.path.join(out, "tiny.gguf"))
    tiny_model(os.path.join(out, "tiny_nan.gguf"), nan=True)
    good = []
    for b in range(2):
        p = f"blk.{b}."
        good += [(p + "attn_q.weight", 640), (p + "attn_k.weight", 640), (p + "attn_v.weight", 512),
                 (p + "ffn_up.weight", 512), (p + "ffn_down.weight", 1024)]
    imatrix(os.path.join(out, "imatrix.gguf"), good)
    bad = [(n, 256 if n.endswith("attn_q.weight") else c) for n, c in good]
    imatrix(os.path.join(out, "imatrix_bad.gguf"), bad)
    imatrix(os.path.join(out, "imatrix_other.gguf"), [("blk.9.nothing.weight", 640)])


if __name__ == "__main__":
    main(sys.argv[1])
