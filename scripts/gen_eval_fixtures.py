#!/usr/bin/env python3
"""Writes tests/fixtures/eval/tiny_gemma3.gguf, a tiny random Gemma 3 model
(F32 norms and embeddings, Q8_0 layer matrices, 2 layers, 32-wide, ~300-token SentencePiece-style vocabulary)
with the `gguf` PyPI package, for the perplexity / KL / eval / imatrix tests
(test_eval, tests/cli_eval.sh). Its numbers mean nothing; what the tests
check is that our scoring equals plain formulas applied to its logits.

Run with the light test venv:  $(scripts/test_venv.sh) scripts/gen_eval_fixtures.py
"""
import os

import numpy as np
import gguf

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "eval", "tiny_gemma3.gguf")

N_EMBD, N_LAYER, N_HEAD, N_HEAD_KV, HEAD_DIM, N_FF, N_CTX = 32, 2, 2, 1, 16, 64, 256
SP = "\u2581"


def vocab():
    toks = [("<pad>", 3), ("<eos>", 3), ("<bos>", 3), ("<unk>", 2)]
    toks += [(f"<0x{b:02X}>", 6) for b in range(256)]
    words = ["the", "and", "of", "to", "in", "that", "he", "shall", "unto", "lord", "his", "is",
             "be", "for", "they", "him", "not", "them", "with", "all", "it", "was", "thou", "a"]
    toks += [(SP, 1)] + [(c, 1) for c in "abcdefghijklmnopqrstuvwxyz,.;:"]
    toks += [(SP + w, 1) for w in words]
    scores = [0.0] * 260 + [-float(i) for i in range(len(toks) - 260)]
    return [t for t, _ in toks], [ty for _, ty in toks], scores


def main():
    rng = np.random.default_rng(1234)
    names, types, scores = vocab()
    n_vocab = len(names)
    w = gguf.GGUFWriter(OUT + ".tmp", "gemma3")
    w.add_name("tiny-gemma3-test")
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_key_length(HEAD_DIM)
    w.add_value_length(HEAD_DIM)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_sliding_window(8)
    w.add_rope_freq_base(10000.0)
    w.add_tokenizer_model("llama")
    w.add_token_list(names)
    w.add_token_types(types)
    w.add_token_scores(scores)
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_unk_token_id(3)
    w.add_pad_token_id(0)
    w.add_add_bos_token(True)

    def mat(rows, cols, scale):
        return (rng.standard_normal((rows, cols)) * scale).astype(np.float32)

    def q8(a):  # layer matrices in Q8_0, so the fast path (8-bit activations) and precise mode differ
        return gguf.quants.quantize(a, gguf.GGMLQuantizationType.Q8_0), gguf.GGMLQuantizationType.Q8_0

    def norm(n):
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    w.add_tensor("token_embd.weight", mat(n_vocab, N_EMBD, 0.2))
    w.add_tensor("output_norm.weight", norm(N_EMBD))
    q, kv = N_HEAD * HEAD_DIM, N_HEAD_KV * HEAD_DIM
    for il in range(N_LAYER):
        p = f"blk.{il}."
        w.add_tensor(p + "attn_norm.weight", norm(N_EMBD))
        d, t = q8(mat(q, N_EMBD, 0.2))
        w.add_tensor(p + "attn_q.weight", d, raw_dtype=t)
        d, t = q8(mat(kv, N_EMBD, 0.2))
        w.add_tensor(p + "attn_k.weight", d, raw_dtype=t)
        d, t = q8(mat(kv, N_EMBD, 0.2))
        w.add_tensor(p + "attn_v.weight", d, raw_dtype=t)
        d, t = q8(mat(N_EMBD, q, 0.2))
        w.add_tensor(p + "attn_output.weight", d, raw_dtype=t)
        w.add_tensor(p + "attn_q_norm.weight", norm(HEAD_DIM))
        w.add_tensor(p + "attn_k_norm.weight", norm(HEAD_DIM))
        w.add_tensor(p + "post_attention_norm.weight", norm(N_EMBD))
        w.add_tensor(p + "ffn_norm.weight", norm(N_EMBD))
        d, t = q8(mat(N_FF, N_EMBD, 0.2))
        w.add_tensor(p + "ffn_gate.weight", d, raw_dtype=t)
        d, t = q8(mat(N_FF, N_EMBD, 0.2))
        w.add_tensor(p + "ffn_up.weight", d, raw_dtype=t)
        d, t = q8(mat(N_EMBD, N_FF, 0.2))
        w.add_tensor(p + "ffn_down.weight", d, raw_dtype=t)
        w.add_tensor(p + "post_ffw_norm.weight", norm(N_EMBD))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(OUT + ".tmp", OUT)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes, {n_vocab} tokens)")


if __name__ == "__main__":
    main()
