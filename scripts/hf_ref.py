"""What the fixture generators that run HF transformers on a GGUF file share
(gen_model_fixtures.py, gen_train_fixtures.py, gen_real_arch_fixtures.py):
where the models are, logging, the model file's checksum, the top-k line of
the fixtures, and loading tokenizer + model from the GGUF file (weights
dequantized to f32 by the gguf package, eager attention, on the CPU).

They run under the reference venv (scripts/ref_venv.sh); numpy, torch and
transformers are imported only by the functions that need them."""
import hashlib
import os
import sys
import time

MODELS_DIR = os.path.expanduser(os.environ.get("SLM_MODELS", "~/.cache/slm/models"))
DEFAULT_MODEL = os.path.join(MODELS_DIR, "gemma-3-270m-q4_k_m.gguf")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def topk_line(row, k=20):
    """Top-k "id:logit" pairs of a 1-D float tensor, logit desc, ties by id asc."""
    import numpy as np
    v = row.double().numpy()
    order = np.lexsort((np.arange(v.size), -v))[:k]
    return " ".join("%d:%.6f" % (i, v[i]) for i in order)


def load_gguf_model(model_path, label=None):
    """(tokenizer, model) from the GGUF file at model_path: f32, eager
    attention, eval mode. Logs the time it took. Seeds, threads and grad mode
    are the caller's to set first."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    mdir, mname = os.path.split(os.path.abspath(model_path))
    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(mdir, gguf_file=mname)
    model = AutoModelForCausalLM.from_pretrained(mdir, gguf_file=mname, dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    log("%sloaded in %.1f s" % (label + ": " if label else "", time.time() - t0))
    return tok, model


def greedy_with_cache(model, out, n_steps):
    """n_steps greedy tokens after the forward pass `out` (run with
    use_cache=True), decoded one at a time through HF's KV cache and not
    stopped at EOS. Returns (tokens, each step's top-1 minus top-2 logit,
    each step's logits row in f32)."""
    import torch
    past = out.cache
    step = out.logits[0, -1].float()
    gen, margins, rows = [], [], []
    for s in range(n_steps):
        v = step.double()
        top2 = torch.topk(v, 2)
        nxt = int(torch.argmax(v))              # first index of the max
        gen.append(nxt)
        margins.append(float(top2.values[0] - top2.values[1]))
        rows.append(step)
        if s + 1 < n_steps:
            o = model(torch.tensor([[nxt]]), cache=past, use_cache=True)
            past = o.cache
            step = o.logits[0, -1].float()
    return gen, margins, rows
