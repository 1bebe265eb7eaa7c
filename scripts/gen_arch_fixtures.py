#!/usr/bin/env python3
"""Regenerates tests/fixtures/arch/: tiny synthetic models of the llama, qwen2,
phi3 and mistral families with random weights, as GGUF files, plus the logits
HF transformers computes for the same weights.

    "$(scripts/ref_venv.sh)" scripts/gen_arch_fixtures.py [OUTDIR]

For each family the script
  * builds the HF model (LlamaForCausalLM, Qwen2ForCausalLM, Phi3ForCausalLM,
    MistralForCausalLM) from a tiny config (2 layers, hidden 64, 4 query heads
    on 2 KV heads, vocabulary 128) and fills it with seeded random weights,
    rounded to f16 so that the f16 file holds them exactly;
  * writes two GGUF files with the `gguf` package: <name>_f16.gguf (matrices
    f16, vectors f32) and <name>_q8_0.gguf (matrices Q8_0). The Q8_0 file's
    reference logits come from a second HF model loaded with the dequantized
    Q8_0 weights (gguf.quants), so each file has its own exact reference;
  * lays the tensors out as llama.cpp's converter does: Q and K rows of llama
    and mistral permuted so that RoPE rotates adjacent pairs, phi3's fused
    qkv_proj / gate_up_proj kept fused, Llama 3's RoPE scaling written as the
    rope_freqs tensor and Phi-3's LongRoPE as rope_factors_long/short plus
    rope.scaling.attn_factor and rope.scaling.original_context_length;
  * runs HF in f32 (eager attention) on seeded random token sequences and
    stores every logit of the recorded positions.
Before writing it checks that each feature under test changes the reference
logits (so that a reader that ignored it would fail): Llama 3 scaling,
Q/K/V biases, LongRoPE long vs short factors and attention factor, the
sliding window; and that the tied / separate output heads are what the config
says. The fixture's own header records the format and these checks.
"""
import math
import os
import sys
from importlib.metadata import version

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "tests", "fixtures", "arch")
VOCAB = 128
MIN_EFFECT = 0.05      # a feature under test must move some logit at least this much


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# the fuzz seeds (tests/fuzz/corpus/model/) are the same families, much smaller
MICRO = dict(vocab_size=8, hidden_size=32, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
             num_key_value_heads=1)
SIZE = {}


def base_cfg(**kw):
    d = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
             bos_token_id=1, eos_token_id=2, pad_token_id=None)
    d.update(kw)
    d.update(SIZE)
    return d


def families():
    from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                              Phi3Config, Phi3ForCausalLM, Qwen2Config, Qwen2ForCausalLM)
    llama3 = dict(rope_type="llama3", rope_theta=10000.0, factor=8.0, low_freq_factor=1.0,
                  high_freq_factor=4.0, original_max_position_embeddings=64)
    rng = np.random.default_rng(7)
    # LongRoPE factors: rotary dim 12 (partial_rotary_factor 0.75 of head 16)
    short_f = [float(x) for x in np.round(1.0 + rng.uniform(0, 0.5, 6), 4)]
    long_f = [float(x) for x in np.round(np.linspace(1.0, 12.0, 6) * rng.uniform(0.9, 1.1, 6), 4)]
    phi_rope = dict(rope_type="longrope", rope_theta=10000.0, short_factor=short_f, long_factor=long_f,
                    original_max_position_embeddings=32, partial_rotary_factor=0.75)
    return [
        dict(name="llama", arch="llama", cls=LlamaForCausalLM, permute=True,
             cfg=LlamaConfig(**base_cfg(rms_norm_eps=1e-5, tie_word_embeddings=True, rope_parameters=llama3,
                                        head_dim=16))),
        dict(name="qwen2", arch="qwen2", cls=Qwen2ForCausalLM, permute=False,
             cfg=Qwen2Config(**base_cfg(rms_norm_eps=1e-6, tie_word_embeddings=False, use_sliding_window=False,
                                        rope_parameters=dict(rope_type="default", rope_theta=1000000.0)))),
        dict(name="phi3", arch="phi3", cls=Phi3ForCausalLM, permute=False,
             cfg=Phi3Config(**base_cfg(rms_norm_eps=1e-5, tie_word_embeddings=False, rope_parameters=phi_rope,
                                       sliding_window=None, max_position_embeddings=256,
                                       original_max_position_embeddings=32, pad_token_id=0))),
        dict(name="mistral", arch="mistral", cls=MistralForCausalLM, permute=True,
             cfg=MistralConfig(**base_cfg(rms_norm_eps=1e-5, tie_word_embeddings=False, sliding_window=16,
                                          head_dim=16,
                                          rope_parameters=dict(rope_type="default", rope_theta=100000.0)))),
    ]


def randomize(model, seed):
    """Seeded weights with unit-scale activations (HF's init is too small to
    give logits that test anything), rounded to f16."""
    g = torch.Generator().manual_seed(seed)
    sd = model.state_dict()
    new = {}
    for k, v in sd.items():
        if k.endswith("norm.weight"):
            t = 1.0 + 0.2 * torch.randn(v.shape, generator=g)
        elif k.endswith(".bias"):
            t = 0.5 * torch.randn(v.shape, generator=g)
        elif k.endswith("embed_tokens.weight") or k == "lm_head.weight":
            t = torch.randn(v.shape, generator=g)
        elif v.dim() == 2:
            t = torch.randn(v.shape, generator=g) * (1.0 / math.sqrt(v.shape[1]))
        else:
            t = v
        new[k] = t.half().float()
    model.load_state_dict(new, strict=False)
    if model.config.tie_word_embeddings:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


def permute_rows(w, n_head):
    """llama.cpp's converter: within each head, interleave the two rotate_half
    halves so that the rotated pairs become adjacent rows."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_tensors(fam, sd):
    """HF state dict -> {gguf name: f32 numpy array} in llama.cpp's layout."""
    cfg = fam["cfg"]
    out = {"token_embd.weight": sd["model.embed_tokens.weight"], "output_norm.weight": sd["model.norm.weight"]}
    if not cfg.tie_word_embeddings:
        out["output.weight"] = sd["lm_head.weight"]
    names = {"input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
             "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
             "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
             "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias",
             "self_attn.v_proj.bias": "attn_v.bias", "self_attn.qkv_proj.weight": "attn_qkv.weight",
             "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
             "mlp.gate_up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight"}
    for k, v in sd.items():
        if not k.startswith("model.layers."):
            continue
        _, _, il, rest = k.split(".", 3)
        gname = "blk.%s.%s" % (il, names[rest])
        if fam["permute"] and rest in ("self_attn.q_proj.weight", "self_attn.k_proj.weight"):
            nh = cfg.num_attention_heads if "q_proj" in rest else cfg.num_key_value_heads
            v = permute_rows(v, nh)
        out[gname] = v
    return {k: v.numpy().astype(np.float32) for k, v in out.items()}


def llama3_factors(rp, n_rot):
    """Llama 3 scaling as per-frequency divisors (what llama.cpp stores in
    rope_freqs), derived from the published formula."""
    base, factor = rp["rope_theta"], rp["factor"]
    lo, hi, orig = rp["low_freq_factor"], rp["high_freq_factor"], rp["original_max_position_embeddings"]
    out = []
    for i in range(n_rot // 2):
        freq = base ** (-2.0 * i / n_rot)
        wavelen = 2 * math.pi / freq
        if wavelen < orig / hi:
            out.append(1.0)
        elif wavelen > orig / lo:
            out.append(factor)
        else:
            smooth = (orig / wavelen - lo) / (hi - lo)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def write_gguf(path, fam, tensors, qtype):
    import gguf
    cfg = fam["cfg"]
    a = fam["arch"]
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    rp = cfg.rope_parameters
    n_rot = int(head_dim * rp.get("partial_rotary_factor", 1.0))
    tmp = path + ".tmp"
    w = gguf.GGUFWriter(tmp, a)
    w.add_name("slm synthetic %s" % fam["name"])
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(rp["rope_theta"])
    w.add_rope_dimension_count(n_rot)
    w.add_vocab_size(cfg.vocab_size)
    if fam["name"] == "mistral":
        w.add_sliding_window(cfg.sliding_window)
    if fam["name"] == "phi3":
        w.add_sliding_window(0)   # what the converter writes when the config has none
        orig = rp["original_max_position_embeddings"]
        scale = cfg.max_position_embeddings / orig
        w.add_rope_scaling_attn_factors(math.sqrt(1 + math.log(scale) / math.log(orig)))
        w.add_rope_scaling_orig_ctx_len(orig)
        tensors = dict(tensors)
        tensors["rope_factors_long.weight"] = np.array(rp["long_factor"], dtype=np.float32)
        tensors["rope_factors_short.weight"] = np.array(rp["short_factor"], dtype=np.float32)
    if fam["name"] == "llama":
        tensors = dict(tensors)
        tensors["rope_freqs.weight"] = llama3_factors(rp, n_rot)
    # a minimal SentencePiece-style vocabulary (ids are fed directly)
    nv = cfg.vocab_size
    toks = ["<unk>", "<s>", "</s>"] + ["\u2581t%d" % i for i in range(3, nv)]
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores([0.0, 0.0, 0.0] + [-float(i) for i in range(3, nv)])
    w.add_token_types([2, 3, 3] + [1] * (nv - 3))
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    for name in sorted(tensors):
        t = tensors[name]
        if t.ndim == 2 and qtype == "q8_0":
            w.add_tensor(name, gguf.quants.quantize(t, gguf.GGMLQuantizationType.Q8_0),
                         raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        elif t.ndim == 2:
            w.add_tensor(name, t.astype(np.float16))
        else:
            w.add_tensor(name, t.astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, path)


def q8_roundtrip(model):
    """The model's 2-D weights replaced by Q8_0 quantize -> dequantize."""
    import gguf
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    for k, v in sd.items():
        if v.dim() == 2:
            q = gguf.quants.quantize(v.numpy().astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
            sd[k] = torch.from_numpy(gguf.quants.dequantize(q, gguf.GGMLQuantizationType.Q8_0).copy())
    return sd


def logits_of(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float()


def write_fuzz_seeds():
    """One micro model per family (Q8_0 matrices, a few KB) as fuzz seeds."""
    SIZE.update(MICRO)
    seed_dir = os.path.join(REPO, "tests", "fuzz", "corpus", "model")
    os.makedirs(seed_dir, exist_ok=True)
    for fi, fam in enumerate(families()):
        model = fam["cls"](fam["cfg"]).eval()
        randomize(model, 3000 + fi)
        sd = {k: v.detach() for k, v in model.state_dict().items()}
        path = os.path.join(seed_dir, fam["name"] + ".gguf")
        write_gguf(path, fam, gguf_tensors(fam, sd), "q8_0")
        log("fuzz seed %s (%d bytes)" % (path, os.path.getsize(path)))
    SIZE.clear()


def main():
    import transformers
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    write_fuzz_seeds()
    for fi, fam in enumerate(families()):
        cfg = fam["cfg"]
        cfg._attn_implementation = "eager"
        model = fam["cls"](cfg).eval()
        randomize(model, 1000 + fi)
        rng = np.random.default_rng(2000 + fi)
        ctx = cfg.max_position_embeddings
        # (n_ctx for slm, token ids): a sequence longer than a forward chunk (SLM_UBATCH = 128) and,
        # for mistral, far past the window
        seqs = [(ctx, [1] + list(rng.integers(3, VOCAB, 6))), (ctx, [1] + list(rng.integers(3, VOCAB, 39))),
                (ctx, [1] + list(rng.integers(3, VOCAB, 199)))]
        notes = []
        if fam["name"] == "phi3":
            orig = cfg.rope_parameters["original_max_position_embeddings"]
            # short factors: the sequence and slm's context stay within the original length
            seqs = [(orig, [1] + list(rng.integers(3, VOCAB, 6))), (orig, [1] + list(rng.integers(3, VOCAB, 29))),
                    (ctx, [1] + list(rng.integers(3, VOCAB, 199)))]
        variants = [("f16", model)]
        qmodel = fam["cls"](cfg).eval()
        qmodel.load_state_dict(q8_roundtrip(model))
        variants.append(("q8_0", qmodel))

        # ---- each feature under test must matter -------------------------
        ids_long = [int(x) for x in seqs[2][1]]
        ref = logits_of(model, ids_long)
        def effect(alt_cfg_kw, label, state=None, mutate=None):
            c2 = fam["cls"].config_class(**{**cfg.to_dict(), **alt_cfg_kw})
            c2._attn_implementation = "eager"
            m2 = fam["cls"](c2).eval()
            m2.load_state_dict(state if state is not None else model.state_dict())
            if mutate:
                mutate(m2)
            d = float((logits_of(m2, ids_long) - ref).abs().max())
            assert d > MIN_EFFECT, (fam["name"], label, d)
            notes.append("%s changes the logits by up to %.3g" % (label, d))
        if fam["name"] == "llama":
            effect(dict(rope_parameters=dict(rope_type="default", rope_theta=10000.0)), "dropping the llama3 RoPE scaling")
        if fam["name"] == "qwen2":
            def zero_bias(m2):
                for layer in m2.model.layers:
                    for p in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                        p.bias.data.zero_()
            effect({}, "zeroing the Q/K/V biases", mutate=zero_bias)
        if fam["name"] == "mistral":
            effect(dict(sliding_window=None), "dropping the sliding window (16)")
        if fam["name"] == "phi3":
            rp = dict(cfg.rope_parameters)
            effect(dict(rope_parameters={**rp, "long_factor": rp["short_factor"]}),
                   "using the short factors on the 200-token sequence")
            effect(dict(rope_parameters={**rp, "attention_factor": 1.0}), "dropping the attention factor")
        if cfg.tie_word_embeddings:
            assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
        else:
            assert not torch.equal(model.lm_head.weight, model.model.embed_tokens.weight)

        # ---- files and logits ------------------------------------------
        L = []
        c = L.append
        c("# %s: synthetic tiny model, reference logits -- generated by scripts/gen_arch_fixtures.py; do not edit."
          % fam["name"])
        c("# transformers %s (%s, f32, eager attention), torch %s, gguf %s, numpy %s"
          % (transformers.__version__, fam["cls"].__name__, torch.__version__, version("gguf"), np.__version__))
        c("# HF config: " + ", ".join("%s=%s" % (k, getattr(cfg, k, None)) for k in
          ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
           "head_dim", "vocab_size", "rms_norm_eps", "tie_word_embeddings", "sliding_window",
           "max_position_embeddings")))
        c("# rope_parameters: %s" % (cfg.rope_parameters,))
        for n in notes:
            c("# checked: %s (long sequence)" % n)
        c("# Format: 'model <variant> <file>'; 'seq <i> <n_ctx> <n> <id>*n' (ids fed to the model, n_ctx the")
        c("# context slm's session must use); 'row <variant> <i> <p> <logit>*%d': every logit after token p" % VOCAB)
        c("# of sequence i, from HF running the variant's weights (f16 file: the f16 weights; q8_0 file: the")
        c("# Q8_0-dequantized weights).")
        for si, (nctx, ids) in enumerate(seqs):
            c("seq %d %d %d %s" % (si, nctx, len(ids), " ".join(str(int(x)) for x in ids)))
        for vname, vm in variants:
            fname = "%s_%s.gguf" % (fam["name"], vname)
            sd = {k: v.detach() for k, v in vm.state_dict().items()}
            write_gguf(os.path.join(OUT, fname), fam, gguf_tensors(fam, sd), vname)
            c("model %s %s" % (vname, fname))
            for si, (nctx, ids) in enumerate(seqs):
                lg = logits_of(vm, [int(x) for x in ids])
                n = len(ids)
                pos = list(range(n)) if n <= 40 else sorted(set(range(0, n, 4)) | set(range(n - 10, n)))
                for p in pos:
                    c("row %s %d %d %s" % (vname, si, p, " ".join("%.6f" % x for x in lg[p].tolist())))
            log("%s %s: %d bytes" % (fam["name"], vname, os.path.getsize(os.path.join(OUT, fname))))
        path = os.path.join(OUT, fam["name"] + ".txt")
        with open(path + ".tmp", "w") as f:
            f.write("\n".join(L) + "\n")
        os.replace(path + ".tmp", path)
        log("wrote %s (%d bytes); %s" % (path, os.path.getsize(path), "; ".join(notes)))


if __name__ == "__main__":
    main()
