#!/usr/bin/env python3
"""Regenerates the training engine's reference fixtures (tests/fixtures/train/):

  ops.txt          per-operation forward + backward on small seeded inputs
                   (PyTorch float64 autograd), read by the training ops' C test
  gemma3_lora.txt  the whole model: LoRA loss and gradients, full fine-tuning
                   gradients and a 20-step AdamW loss curve on Gemma 3 270M
                   (HF transformers + PEFT), read by tests/test_train_model.c

Run it with the reference environment's python:

    "$(scripts/ref_venv.sh)" scripts/gen_train_fixtures.py [ops|model|all] [MODEL.gguf]

(default: all, model ~/.cache/slm/models/gemma-3-270m-q4_k_m.gguf). The ops
part takes seconds; the model part about 6 minutes of CPU (2 threads): loss
and gradients run in float64 (the stored reference) and in float32 (to
measure how far an ordinary f32 implementation drifts); the 20-step AdamW
curve runs in float32, its first 3 steps in float64 too.

Nothing of slm is used: the model is HF transformers' Gemma3ForCausalLM
reading the GGUF file (weights dequantized to f32 by the gguf package), the
LoRA layers are PEFT's, the optimizer is torch.optim.AdamW. The file formats
are written into each fixture's header.
"""
import math
import os
import sys
import time
from importlib.metadata import version

import numpy as np
import torch
import torch.nn.functional as F

from hf_ref import DEFAULT_MODEL, load_gguf_model, log, sha256_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(REPO, "tests", "fixtures", "train")

FORMAT_NOTE = [
    "# Format: records of two lines each. The first line is",
    "#   tensor <name> <ndim> <d0> <d1> ...",
    "# the next holds all d0*d1*... values, space-separated, row-major (last index fastest).",
    "# Integers (token ids, positions, masks, counts) are stored as floats too.",
]


class Writer:
    def __init__(self, fmt):
        self.lines = []
        self.fmt = fmt

    def comment(self, text=""):
        for ln in text.split("\n"):
            self.lines.append(("# " + ln).rstrip())

    def tensor(self, name, t, fmt=None):
        a = t.detach().cpu().double().numpy() if torch.is_tensor(t) else np.asarray(t, dtype=np.float64)
        if a.ndim == 0:
            a = a.reshape(1)
        assert " " not in name
        f = fmt or self.fmt
        self.lines.append("tensor %s %d %s" % (name, a.ndim, " ".join(str(d) for d in a.shape)))
        self.lines.append(" ".join(f % v for v in a.reshape(-1)))

    def write(self, path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(self.lines) + "\n")
        os.replace(tmp, path)
        log("wrote %s (%d bytes)" % (path, os.path.getsize(path)))


# ---------------------------------------------------------------------------
# Part 1: per-operation fixtures (float64 autograd)
# ---------------------------------------------------------------------------

def rope_angles(pos, D, base):
    i = torch.arange(D // 2, dtype=torch.float64)
    inv = base ** (-2.0 * i / D)                       # theta_i = base^(-2i/D)
    ang = pos.double()[:, None] * inv[None, :]         # [T, D/2]
    return torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]


def rope_neox(x, pos, base):
    """HF rotate_half pairing: dimension i with i + D/2."""
    D = x.shape[-1]
    c, s = rope_angles(pos, D, base)
    x1, x2 = x[..., : D // 2], x[..., D // 2:]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)


def rope_norm(x, pos, base):
    """Interleaved pairing: dimensions (0,1), (2,3), ..."""
    D = x.shape[-1]
    c, s = rope_angles(pos, D, base)
    xe, xo = x[..., 0::2], x[..., 1::2]
    return torch.stack([xe * c - xo * s, xo * c + xe * s], dim=-1).reshape(x.shape)


def attention(q, k, v, scale, window):
    """q [T,Hq,D], k/v [T,Hkv,D]; query head h reads kv head h // (Hq/Hkv)
    (HF repeat_kv); key j visible to query i iff j <= i and (window == 0 or
    i - j < window)."""
    T, Hq, D = q.shape
    Hkv = k.shape[1]
    rep = Hq // Hkv
    kk = k.repeat_interleave(rep, dim=1)
    vv = v.repeat_interleave(rep, dim=1)
    s = torch.einsum("ihd,jhd->hij", q, kk) * scale
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    vis = j <= i
    if window > 0:
        vis = vis & (i - j < window)
    s = s.masked_fill(~vis[None], float("-inf"))
    p = torch.softmax(s, dim=-1)
    return torch.einsum("hij,jhd->ihd", p, vv)


def check_rope_against_hf(x, pos, y):
    """Our NEOX formula must be transformers' Gemma 3 apply_rotary_pos_emb."""
    from transformers.models.gemma3.modeling_gemma3 import apply_rotary_pos_emb
    with torch.no_grad():
        D = x.shape[-1]
        inv = 10000.0 ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)
        f = pos.double()[:, None] * inv[None, :]
        emb = torch.cat([f, f], dim=-1)[None]              # [1, T, D]
        xh = x.detach().permute(1, 0, 2)[None]             # [1, H, T, D]
        yh, _ = apply_rotary_pos_emb(xh, xh, emb.cos(), emb.sin())
        d = float((yh[0].permute(1, 0, 2) - y).abs().max())
        assert d < 1e-12, d


def check_attention_against_sdpa(q, k, v, scale, window, y):
    """Our masked softmax attention must be torch's scaled_dot_product_attention."""
    T, Hq, _ = q.shape
    rep = Hq // k.shape[1]
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    vis = (j <= i) & ((i - j < window) if window > 0 else True)
    ys = F.scaled_dot_product_attention(
        q.detach().permute(1, 0, 2), k.detach().repeat_interleave(rep, 1).permute(1, 0, 2),
        v.detach().repeat_interleave(rep, 1).permute(1, 0, 2), attn_mask=vis, scale=scale)
    d = float((ys.permute(1, 0, 2) - y).abs().max())
    assert d < 1e-12, d


def gen_ops(path):
    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(20261207)

    def rnd(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).requires_grad_(True)

    w = Writer("%.9g")
    w.comment("Training ops reference -- generated by scripts/gen_train_fixtures.py ops; do not edit.")
    w.comment("torch %s, float64 autograd on CPU; inputs from torch.randn (Generator seed 20261207)."
              % torch.__version__)
    w.comment("For each op: the inputs, an upstream gradient dy (<op>.dy), the output y and the")
    w.comment("gradients of sum(y * dy) with respect to every input (<op>.d<input>).")
    w.comment("  rmsnorm: y = x / sqrt(mean(x^2 over the last axis) + 1e-6) * w     x [T,n], w [n]")
    w.comment("  rope_neox / rope_norm: base 10000, theta_i = pos * base^(-2i/D), i < D/2;")
    w.comment("     neox pairs dimension i with i + D/2 (HF rotate_half), norm pairs (2i, 2i+1);")
    w.comment("     (a, b) -> (a cos - b sin, b cos + a sin).   x [T,H,D], pos [T]")
    w.comment("  gelu: y = gelu_tanh(g) * u (torch approximate='tanh');  silu: y = silu(g) * u   [N]")
    w.comment("  attn: y[i,h] = sum_j softmax_j(scale * q[i,h].k[j,h/(Hq/Hkv)]) v[j,h/(Hq/Hkv)] over the")
    w.comment("     keys j <= i with i - j < window (window 0: causal only).  q [T,Hq,D], k/v [T,Hkv,D]")
    w.comment("  ce: loss = mean over t of -log softmax(h[t] . w^T)[target[t]].  h [T,E], w [V,E];")
    w.comment("     ce.dy is absent: the gradients are of the loss itself.")
    w.comment("  linear: y = x . w^T.  x [T,in], w [out,in]")
    for ln in FORMAT_NOTE:
        w.lines.append(ln)

    # rmsnorm
    T, n = 5, 24
    x, ww, dy = rnd(T, n, scale=2.0), rnd(n, scale=0.5), rnd(T, n)
    with torch.no_grad():
        ww += 1.0
    y = x / torch.sqrt((x * x).mean(-1, keepdim=True) + 1e-6) * ww
    y.backward(dy)
    for nm, t in [("x", x), ("w", ww), ("dy", dy), ("y", y), ("dx", x.grad), ("dw", ww.grad)]:
        w.tensor("rmsnorm." + nm, t)

    # rope (positions not contiguous, one large enough to wrap the angles)
    T, H, D = 5, 3, 8
    pos = torch.tensor([0.0, 1.0, 2.0, 9.0, 37.0], dtype=torch.float64)
    for name, fn in [("rope_neox", rope_neox), ("rope_norm", rope_norm)]:
        x, dy = rnd(T, H, D), rnd(T, H, D)
        y = fn(x, pos, 10000.0)
        y.backward(dy)
        if name == "rope_neox":
            check_rope_against_hf(x, pos, y)
        for nm, t in [("x", x), ("pos", pos), ("dy", dy), ("y", y), ("dx", x.grad)]:
            w.tensor(name + "." + nm, t)

    # gated activations
    N = 48
    for name, act in [("gelu", lambda z: F.gelu(z, approximate="tanh")), ("silu", F.silu)]:
        gg, u, dy = rnd(N, scale=2.5), rnd(N), rnd(N)
        y = act(gg) * u
        y.backward(dy)
        for nm, t in [("g", gg), ("u", u), ("dy", dy), ("y", y), ("dg", gg.grad), ("du", u.grad)]:
            w.tensor(name + "." + nm, t)

    # attention: GQA 4/2, sliding window 3 over 8 positions
    T, Hq, Hkv, D, W, scale = 8, 4, 2, 8, 3, 0.3
    q, k, v, dy = rnd(T, Hq, D), rnd(T, Hkv, D), rnd(T, Hkv, D), rnd(T, Hq, D)
    y = attention(q, k, v, scale, W)
    y.backward(dy)
    with torch.no_grad():     # the window must matter: without it the output differs
        assert float((attention(q, k, v, scale, 0) - y).abs().max()) > 1e-2
        check_attention_against_sdpa(q, k, v, scale, W, y)
    for nm, t in [("q", q), ("k", k), ("v", v), ("dy", dy), ("scale", torch.tensor([scale])),
                  ("window", torch.tensor([float(W)])), ("y", y), ("dq", q.grad), ("dk", k.grad),
                  ("dv", v.grad)]:
        w.tensor("attn." + nm, t)

    # cross-entropy through the output projection
    T, E, V = 6, 12, 30
    h, wo = rnd(T, E), rnd(V, E, scale=0.7)
    target = torch.randint(0, V, (T,), generator=g)
    loss = F.cross_entropy(h @ wo.T, target, reduction="mean")
    loss.backward()
    for nm, t in [("h", h), ("w", wo), ("target", target.double()), ("loss", loss.reshape(1)),
                  ("dh", h.grad), ("dw", wo.grad)]:
        w.tensor("ce." + nm, t)

    # linear
    T, n_in, n_out = 4, 12, 7
    x, wl, dy = rnd(T, n_in), rnd(n_out, n_in), rnd(T, n_out)
    y = x @ wl.T
    y.backward(dy)
    for nm, t in [("x", x), ("w", wl), ("dy", dy), ("y", y), ("dx", x.grad), ("dw", wl.grad)]:
        w.tensor("linear." + nm, t)

    w.write(path)


# ---------------------------------------------------------------------------
# Part 2: the whole model (HF transformers Gemma 3 + PEFT LoRA)
# ---------------------------------------------------------------------------

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]  # trainer.h order
RANK, ALPHA = 4, 8.0
LR, BETA1, BETA2, ADAM_EPS, WD = 1e-3, 0.9, 0.999, 1e-8, 0.0
N_STEPS = 20
N_STEPS_F64 = 3     # the float64 curve: its first steps only (float64 runs ~5x slower on the CPU)
N_TOK = 64
# (layer, target) pairs whose LoRA gradients are stored whole
FULL_PAIRS = [(0, 0), (0, 6), (8, 2), (8, 4), (17, 3), (17, 5)]
DOWN_ROWS = [0, 1, 320, 639]          # rows of blk.17.ffn_down.weight whose full-FT gradient is stored
N_EMBD_ROWS = 8                        # embedding rows (scored target tokens) whose full-FT gradient is stored

TEXTS = [
    "<start_of_turn>user\nHow do I keep basil alive on a windowsill?<end_of_turn>\n<start_of_turn>model\n"
    "Give it at least six hours of sun a day, water it when the top of the soil feels dry, and pinch off "
    "the flower buds so that the plant keeps making leaves instead of seeds. A pot with drainage holes "
    "matters more than the soil you choose.<end_of_turn>\n",
    "<start_of_turn>user\nWhat is the difference between weather and climate?<end_of_turn>\n"
    "<start_of_turn>model\nWeather is what the atmosphere does on a given day: rain this afternoon, wind "
    "tomorrow. Climate is the long-run average of that weather over thirty years or more, so a cold week "
    "says little about the climate of a region, just as one good day says little about a season."
    "<end_of_turn>\n",
    "<start_of_turn>user\nWrite a haiku about a train at night.<end_of_turn>\n<start_of_turn>model\n"
    "Lit windows slide past,\na long sentence of strangers\nread once by the dark.\n\nThe rails hum "
    "after it, and the crossing bell keeps ringing for a while in the empty field, long after the last "
    "carriage has gone.<end_of_turn>\n",
]


def lora_init(layer, target, n_out, n_in, rank=RANK):
    """The known init the C test recomputes: float64 formula, cast to float32."""
    r = np.arange(rank, dtype=np.float64)[:, None]
    c = np.arange(n_in, dtype=np.float64)[None, :]
    a = 0.01 * np.sin(0.37 * c + 1.3 * r + 0.11 * layer + 0.7 * target)
    o = np.arange(n_out, dtype=np.float64)[:, None]
    r2 = np.arange(rank, dtype=np.float64)[None, :]
    b = 0.01 * np.cos(0.23 * o + 0.9 * r2 + 0.05 * layer + 0.3 * target)
    return a.astype(np.float32), b.astype(np.float32)


def patch_hf_for_float64():
    """HF's Gemma 3 computes RMSNorm, the attention softmax and the RoPE angles
    in float32 whatever the model's dtype. For the float64 reference run these
    three use the input's dtype instead (float32 runs are unchanged)."""
    from transformers.models.gemma3 import modeling_gemma3 as mg
    norm_fwd = mg.Gemma3RMSNorm.forward

    def norm64(self, x):
        if x.dtype != torch.float64:
            return norm_fwd(self, x)
        return self._norm(x) * (1.0 + self.weight)
    mg.Gemma3RMSNorm.forward = norm64

    rope_fwd = mg.Gemma3RotaryEmbedding.forward

    def rope64(self, x, position_ids, layer_type):
        if x.dtype != torch.float64:
            return rope_fwd(self, x, position_ids, layer_type)
        assert self.rope_type[layer_type] == "default"
        assert getattr(self, layer_type + "_attention_scaling") == 1.0
        base = float(self.config.rope_parameters[layer_type]["rope_theta"])
        dim = self.config.head_dim
        inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
        f = position_ids[..., None].double() * inv
        emb = torch.cat((f, f), dim=-1)
        return emb.cos(), emb.sin()
    mg.Gemma3RotaryEmbedding.forward = rope64

    eager = mg.eager_attention_forward

    def eager64(module, query, key, value, attention_mask, dropout=0.0, scaling=None, softcap=None, **kw):
        if query.dtype != torch.float64:
            return eager(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                         softcap=softcap, **kw)
        assert softcap is None and not (module.training and dropout)
        ks = mg.repeat_kv(key, module.num_key_value_groups)
        vs = mg.repeat_kv(value, module.num_key_value_groups)
        s = torch.matmul(query, ks.transpose(2, 3)) * scaling
        if attention_mask is not None:
            s = s + attention_mask
        p = torch.softmax(s, dim=-1)
        return torch.matmul(p, vs).transpose(1, 2).contiguous(), p
    mg.eager_attention_forward = eager64


def seq_loss(model, ids, mask):
    """Summed cross-entropy of predicting ids[i+1] at position i where mask[i+1].
    Only the positions from the first scored one on go through the output head
    (HF's logits_to_keep keeps the last rows): the head is the costliest matrix."""
    first = mask.index(1) - 1
    keep = len(ids) - first
    logits = model(input_ids=torch.tensor([ids]), logits_to_keep=keep).logits[0]
    assert logits.shape[0] == keep
    tgt = torch.tensor(ids[first + 1:])
    sel = torch.tensor(mask[first + 1:], dtype=torch.bool)
    return F.cross_entropy(logits[:-1][sel], tgt[sel], reduction="sum"), int(sel.sum())


def lora_modules(pm, n_layer):
    """mods[layer][target]: PEFT's LoRA-wrapped Linear."""
    mods = []
    for li in range(n_layer):
        layer = pm.base_model.model.model.layers[li]
        row = []
        for name in TARGETS:
            parent = layer.self_attn if name.endswith("_proj") and name[0] in "qkvo" else layer.mlp
            row.append(getattr(parent, name))
        mods.append(row)
    return mods


def make_lora(base, dtype, n_layer):
    import copy
    from peft import LoraConfig, get_peft_model
    m = copy.deepcopy(base).to(dtype)
    cfg = LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=TARGETS,
                     use_rslora=False, bias="none", init_lora_weights=True)
    pm = get_peft_model(m, cfg)
    pm.eval()
    mods = lora_modules(pm, n_layer)
    for li in range(n_layer):
        for ti, mod in enumerate(mods[li]):
            la, lb = mod.lora_A["default"].weight, mod.lora_B["default"].weight
            a, b = lora_init(li, ti, lb.shape[0], la.shape[1])
            assert tuple(la.shape) == a.shape and tuple(lb.shape) == b.shape, (li, ti)
            assert mod.scaling["default"] == ALPHA / RANK
            with torch.no_grad():
                la.copy_(torch.from_numpy(a))
                lb.copy_(torch.from_numpy(b))
    n_train = sum(p.numel() for p in pm.parameters() if p.requires_grad)
    assert n_train == sum(mod.lora_A["default"].weight.numel() + mod.lora_B["default"].weight.numel()
                          for row in mods for mod in row)
    return pm, mods


def rel_l2(x, ref):
    x, ref = x.double(), ref.double()
    return float((x - ref).norm() / ref.norm())


def run_lora(base, dtype, n_layer, seqs, n_steps):
    """The AdamW curve at one precision, n_steps steps. Step 0 runs seqs[0] at
    the init: its loss and gradients (times n_scored: of the summed loss) are
    the LoRA record."""
    t0 = time.time()
    pm, mods = make_lora(base, dtype, n_layer)
    params = [p for p in pm.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=LR, betas=(BETA1, BETA2), eps=ADAM_EPS, weight_decay=WD)
    curve, norms, which = [], [], []
    res = {}
    for step in range(n_steps):
        k = step % len(seqs)
        opt.zero_grad(set_to_none=True)
        ls, n = seq_loss(pm, *seqs[k])
        (ls / n).backward()
        gn = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in params))
        if step == 0:
            res["loss_sum"], res["n_scored"] = float(ls), n
            res["grads"] = [[(mod.lora_A["default"].weight.grad.detach().double() * n,
                              mod.lora_B["default"].weight.grad.detach().double() * n) for mod in row]
                            for row in mods]
            log("  %s LoRA loss %.9g over %d tokens (%.1f s)" % (dtype, float(ls) / n, n, time.time() - t0))
        curve.append(float(ls) / n)
        norms.append(gn)
        which.append(k)
        opt.step()
    res.update(curve=curve, norms=norms, which=which)
    log("  %s curve %s (%.1f s)" % (dtype, " ".join("%.4f" % c for c in curve), time.time() - t0))
    del pm, mods, opt
    return res


def run_full(base, dtype, seqs, gguf_names):
    """Full fine-tuning gradients of a few base weights on seqs[0], no LoRA.
    The tied embedding is untied into two copies so that its two gradient
    contributions (input lookup, output head) come out separately."""
    import copy
    m = copy.deepcopy(base).to(dtype)
    m.eval()
    emb = m.model.embed_tokens.weight
    assert m.lm_head.weight is emb
    m.lm_head.weight = torch.nn.Parameter(emb.detach().clone())
    for p in m.parameters():
        p.requires_grad_(False)
    named = {g: getattr_path(m, h) for g, h in gguf_names.items()}
    for p in named.values():
        p.requires_grad_(True)
    emb.requires_grad_(True)
    m.lm_head.weight.requires_grad_(True)
    ids, mask = seqs[0]
    loss, n_sc = seq_loss(m, ids, mask)
    loss.backward()
    out = dict(loss_sum=float(loss), n_scored=n_sc)
    out["grads"] = {g: p.grad.detach().double().clone() for g, p in named.items()}
    rows = []
    for j in range(1, len(ids)):
        if mask[j] and ids[j] not in rows:
            rows.append(ids[j])
    rows = rows[:N_EMBD_ROWS]
    out["rows"] = rows
    out["emb_in"] = emb.grad[rows].detach().double().clone()
    out["emb_out"] = m.lm_head.weight.grad[rows].detach().double().clone()
    del m
    return out


def getattr_path(obj, path):
    for part in path.split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj


def gen_model(model_path, out_path):
    import gguf
    import peft
    import transformers

    torch.set_num_threads(2)
    torch.manual_seed(0)
    mname = os.path.basename(model_path)
    tok, base = load_gguf_model(model_path)
    cfg = base.config
    n_layer = cfg.num_hidden_layers
    assert cfg._attn_implementation == "eager"
    assert n_layer == 18 and cfg.hidden_size == 640 and cfg.head_dim == 256
    assert cfg.query_pre_attn_scalar == 256 and cfg.tie_word_embeddings
    assert cfg.hidden_activation == "gelu_pytorch_tanh" and cfg.final_logit_softcapping is None
    assert cfg.attention_dropout == 0.0

    # GGUF stores every norm weight as 1 + w; HF holds w and multiplies by (1 + w)
    reader = gguf.GGUFReader(model_path)
    gt = {t.name: t for t in reader.tensors}
    sd = base.state_dict()
    g0 = np.asarray(gt["blk.0.attn_norm.weight"].data, dtype=np.float32).reshape(-1)
    assert np.array_equal(g0 - 1.0, sd["model.layers.0.input_layernorm.weight"].numpy())
    del reader, gt, sd

    seqs = []
    for text in TEXTS:
        ids = tok(text)["input_ids"]
        assert ids[0] == tok.bos_token_id and len(ids) >= N_TOK, len(ids)
        ids = ids[:N_TOK]
        mask = [1 if j >= N_TOK - N_TOK // 3 else 0 for j in range(N_TOK)]
        seqs.append((ids, mask))

    patch_hf_for_float64()
    gguf_names = {
        "blk.0.attn_norm.weight": "model.layers.0.input_layernorm.weight",
        "blk.5.attn_q_norm.weight": "model.layers.5.self_attn.q_norm.weight",
        "blk.17.ffn_down.weight": "model.layers.17.mlp.down_proj.weight",
    }
    r32 = run_lora(base, torch.float32, n_layer, seqs, N_STEPS)
    r64 = run_lora(base, torch.float64, n_layer, seqs, N_STEPS_F64)
    f64 = run_full(base, torch.float64, seqs, gguf_names)
    f32 = run_full(base, torch.float32, seqs, gguf_names)
    log("full-FT loss %.9g (f64) %.9g (f32)" % (f64["loss_sum"] / f64["n_scored"], f32["loss_sum"] / f32["n_scored"]))

    # ---- how far float32 drifts from float64 (the tolerance's yardstick) ----
    d_loss = abs(r32["loss_sum"] - r64["loss_sum"]) / abs(r64["loss_sum"])
    d_grad = max(rel_l2(r32["grads"][l][t][i], r64["grads"][l][t][i])
                 for l in range(n_layer) for t in range(7) for i in range(2))
    d_grad_med = float(np.median([rel_l2(r32["grads"][l][t][i], r64["grads"][l][t][i])
                                  for l in range(n_layer) for t in range(7) for i in range(2)]))
    d_curve = max(abs(a - b) for a, b in zip(r32["curve"], r64["curve"]))   # first N_STEPS_F64 steps
    d_norm = max(abs(a - b) / b for a, b in zip(r32["norms"], r64["norms"]))
    d_full_loss = abs(f32["loss_sum"] - f64["loss_sum"]) / abs(f64["loss_sum"])
    d_full = {g: rel_l2(f32["grads"][g], f64["grads"][g]) for g in gguf_names}
    d_full["emb_in"] = rel_l2(f32["emb_in"], f64["emb_in"])
    d_full["emb_out"] = rel_l2(f32["emb_out"], f64["emb_out"])
    log("f32 vs f64: loss %.3g, LoRA grads worst %.3g median %.3g, curve %.3g, grad norm %.3g, full %s"
        % (d_loss, d_grad, d_grad_med, d_curve, d_norm, {k: "%.3g" % v for k, v in d_full.items()}))

    # ---- write ----------------------------------------------------------------
    w = Writer("%.8e")
    w.comment("Gemma 3 270M training reference -- generated by scripts/gen_train_fixtures.py model; do not edit.")
    w.comment("torch %s, transformers %s, peft %s, gguf %s, numpy %s"
              % (torch.__version__, transformers.__version__, peft.__version__, version("gguf"), np.__version__))
    w.comment("model %s sha256 %s" % (mname, sha256_file(model_path)))
    w.comment("""HF Gemma3ForCausalLM reads the GGUF file (weights dequantized to f32 by the gguf package),
eager attention, eval mode (no dropout). The loss and gradient values below come from a float64
run of it (weights cast from their f32 values; RMSNorm, softmax and RoPE, which HF keeps in f32,
patched to float64 too); the same computations were repeated in plain float32 HF to measure the
spread. The 20-step curve is the plain float32 run (float64 costs ~5x more; its first %d steps
are stored beside it).

Sequences: seq<k>.tokens are the first %d ids of HF's tokenizer on a chat-like text (BOS first);
seq<k>.mask[j] = 1 for j >= %d: token j is a scored target, predicted from position j-1 (as
trainer_accumulate's loss_mask). Loss = cross-entropy, SUMMED over the scored targets
(*.loss_sum); *.n_scored = their number; mean = loss_sum / n_scored. Gradients are of the SUM.

LoRA (PEFT LoraConfig r=%d, lora_alpha=%g, lora_dropout=0, use_rslora=False, bias none) on
q_proj k_proj v_proj o_proj gate_proj up_proj down_proj of every layer (targets 0..6, trainer.h's
LORA_* order): y = W x + (alpha/r) B (A x), alpha/r = %g. A (r x n_in), B (n_out x r) set to
    A[r][c] = (float)(0.01 * sin(0.37*c + 1.3*r + 0.11*layer + 0.7*target))
    B[o][r] = (float)(0.01 * cos(0.23*o + 0.9*r + 0.05*layer + 0.3*target))
(evaluated in double, left to right, then rounded to float).
  lora.loss_sum, lora.n_scored        on seq0
  lora.grad.<layer>.<target>.a / .b  full gradient tensors of A [r, n_in] and B [n_out, r]
  lora.summary [n_layer*7, 4]         for every (layer, target), row layer*7+target:
                                      sum(dA), |dA|_2, sum(dB), |dB|_2
AdamW curve: a fresh adapter at the same init; step s (0..%d) runs seq<s %% 3>, divides the
gradient by n_scored (mean loss), then torch.optim.AdamW(lr=%g, betas=(%g, %g), eps=%g,
weight_decay=%g), no clipping.
  curve.loss [%d]     the mean loss of step s, before its update (float32 HF)
  curve.grad_norm     the L2 norm of all LoRA gradients of the mean loss at step s (float32 HF)
  curve.seq           which sequence step s ran
  curve.loss_f64, curve.grad_norm_f64   the same, float64, first %d steps

Full fine-tuning (no LoRA) on seq0, gradients of the summed loss:
  full.loss_sum, full.n_scored
  full.grad.<gguf name>            gradient of that GGUF tensor, row-major as GGUF's (ne1, ne0);
                                   for norm weights the GGUF value is 1 + w_HF (HF multiplies by
                                   1 + w): the gradient is the same for both.
  full.grad.blk.17.ffn_down.rows   the rows (output units) of the ffn_down gradient stored in
  full.grad.blk.17.ffn_down.weight [len(rows), 2048]
  full.embd.rows                   token ids: the first %d distinct scored target tokens
  full.embd.grad_in / .grad_out    gradient of those rows of token_embd.weight through the input
                                   lookup (x sqrt(640) included) / through the tied output head;
                                   the tied weight's gradient is their sum.

float32 HF vs this float64 reference, relative: loss %.2e; LoRA gradients (relative L2 per tensor)
worst %.2e, median %.2e; curve (first %d steps) max |diff| %.2e (absolute, nats), grad norms
%.2e (relative);
full-FT loss %.2e, gradients %s."""
              % (N_STEPS_F64, N_TOK, N_TOK - N_TOK // 3, RANK, ALPHA, ALPHA / RANK, N_STEPS - 1, LR, BETA1,
                 BETA2, ADAM_EPS, WD, N_STEPS, N_STEPS_F64, N_EMBD_ROWS, d_loss, d_grad, d_grad_med,
                 N_STEPS_F64, d_curve, d_norm,
                 d_full_loss, ", ".join("%s %.2e" % kv for kv in d_full.items())))
    for ln in FORMAT_NOTE:
        w.lines.append(ln)
    w.tensor("meta.rank", [RANK], "%.9g")
    w.tensor("meta.alpha", [ALPHA], "%.9g")
    w.tensor("meta.adamw", [LR, BETA1, BETA2, ADAM_EPS, WD], "%.9g")
    for k, (ids, mask) in enumerate(seqs):
        w.tensor("seq%d.tokens" % k, ids, "%.0f")
        w.tensor("seq%d.mask" % k, mask, "%.0f")
    w.tensor("lora.loss_sum", [r64["loss_sum"]], "%.12g")
    w.tensor("lora.n_scored", [r64["n_scored"]], "%.0f")
    for (l, t) in FULL_PAIRS:
        ga, gb = r64["grads"][l][t]
        w.tensor("lora.grad.%d.%d.a" % (l, t), ga)
        w.tensor("lora.grad.%d.%d.b" % (l, t), gb)
    summ = [[float(ga.sum()), float(ga.norm()), float(gb.sum()), float(gb.norm())]
            for row in r64["grads"] for (ga, gb) in row]
    w.tensor("lora.summary", np.array(summ), "%.10e")
    w.tensor("curve.loss", r32["curve"], "%.10g")
    w.tensor("curve.grad_norm", r32["norms"], "%.10g")
    w.tensor("curve.seq", r32["which"], "%.0f")
    w.tensor("curve.loss_f64", r64["curve"], "%.10g")
    w.tensor("curve.grad_norm_f64", r64["norms"], "%.10g")
    w.tensor("full.loss_sum", [f64["loss_sum"]], "%.12g")
    w.tensor("full.n_scored", [f64["n_scored"]], "%.0f")
    for g in gguf_names:
        gr = f64["grads"][g]
        if g == "blk.17.ffn_down.weight":
            w.tensor("full.grad.blk.17.ffn_down.rows", DOWN_ROWS, "%.0f")
            gr = gr[DOWN_ROWS]
        w.tensor("full.grad." + g, gr)
    w.tensor("full.embd.rows", f64["rows"], "%.0f")
    w.tensor("full.embd.grad_in", f64["emb_in"])
    w.tensor("full.embd.grad_out", f64["emb_out"])
    w.write(out_path)
    log("total %.1f s" % (time.time() - t0))


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    model_path = sys.argv[2] if len(sys.argv) > 2 else DEFAULT_MODEL
    if what not in ("ops", "model", "all"):
        sys.exit("usage: gen_train_fixtures.py [ops|model|all] [MODEL.gguf]")
    if what in ("ops", "all"):
        gen_ops(os.path.join(OUT_DIR, "ops.txt"))
    if what in ("model", "all"):
        gen_model(model_path, os.path.join(OUT_DIR, "gemma3_lora.txt"))


if __name__ == "__main__":
    main()
