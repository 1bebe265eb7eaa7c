#!/usr/bin/env python3
"""Regenerates tests/fixtures/model/gemma3_270m.txt: independent reference
logits for the Gemma 3 forward pass.

Run it with the reference environment's python:

    "$(scripts/ref_venv.sh)" scripts/gen_model_fixtures.py [MODEL.gguf] [OUT.txt]

(ref_venv.sh creates the venv once and prints its python; set SLM_REF_VENV to
reuse an existing one.) Defaults: the model from scripts/fetch_model.sh
(~/.cache/slm/models/gemma-3-270m-q4_k_m.gguf) and
tests/fixtures/model/gemma3_270m.txt.

The reference is HF transformers' own Gemma3 implementation: it reads the GGUF
file, dequantizes every weight to f32 (with the gguf package) and runs the
model in f32 on the CPU with the eager attention code. Nothing of slm is used.
Loading takes about a minute; the whole run a few minutes on 2 cores.

Before writing, the script checks (and aborts otherwise):
  * the HF config is the one this fixture describes (sliding window 512, local
    layers everywhere except every 6th, rope thetas 1e6 / 1e4, ...);
  * the sliding window is really applied in eager mode: in the attention
    probabilities of the long prompt, a local layer gives exactly 0 to every
    key with q - k >= 512 and > 0 to q - k = 511, while a global layer still
    looks further back; and switching the window off changes the logits;
  * the greedy continuation (decoded step by step with HF's KV cache) agrees
    with one full forward pass over prompt + continuation.
The file format is written into the fixture's own header.
"""
import os
import sys
import time
from importlib.metadata import version

import numpy as np
import torch

from hf_ref import DEFAULT_MODEL, greedy_with_cache, load_gguf_model, log, sha256_file, topk_line

TOPK = 20          # logits stored per position
N_GREEDY = 32      # greedy continuation length
LONG_MIN = 521     # the long prompt must be longer than this (window 512)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "tests", "fixtures", "model", "gemma3_270m.txt")

LONG_TEXT = """\
The history of the printing press is often told as the story of one man and one machine, but the \
reality was slower, messier and far more interesting. Long before Johannes Gutenberg set up his \
workshop in Mainz, craftsmen in China and Korea had experimented with movable type made of clay, \
wood and bronze. Those early systems worked, yet they never spread as widely, partly because \
writing systems with thousands of characters made each font enormous and expensive to cast.

Gutenberg's contribution was not a single invention but a combination of several. He developed a \
hand mould that allowed letters to be cast quickly and with consistent dimensions, an alloy of \
lead, tin and antimony that melted at a low temperature and cooled without shrinking too much, \
and an oil-based ink that clung to metal rather than sliding off it. He adapted the screw press \
that vintners and papermakers already used, and he organised the work so that several people \
could compose, ink and print pages at the same time.

The first large book printed this way, the famous Bible of around 1455, was a commercial gamble. \
It required years of labour and a great deal of borrowed money, and Gutenberg eventually lost his \
workshop to his financial partner after a lawsuit. Nevertheless, the technique spread with \
astonishing speed. Within fifty years there were presses in more than two hundred European \
towns, and millions of books had been produced. Venice became a centre of the trade, where \
printers such as Aldus Manutius introduced small, portable editions of classical authors and a \
new slanted typeface that we still call italic.

The consequences reached far beyond the book trade. Scholars could compare identical copies of a \
text instead of relying on manuscripts that differed from one another in countless small ways. \
Errors could be corrected in a later edition and the correction would reach every reader. \
Pamphlets carried religious and political arguments across borders faster than any authority \
could suppress them, and the Reformation is hard to imagine without them. Scientific results, \
tables of numbers and detailed illustrations of plants and machines could be reproduced \
accurately, which made it possible for researchers in distant cities to build on each other's \
work.

Printing also changed the languages themselves. Printers wanted to sell as many copies as \
possible, so they favoured spellings and forms that readers in a wide region would understand. \
Over time this pressure helped to standardise written English, French, German and many other \
languages. Dictionaries and grammars followed, and the idea that a word has one correct spelling \
became common sense rather than a scholarly preference.

Today, when text can be copied instantly and sent around the world in a fraction of a second, it \
is easy to forget how radical the printed page once was. Yet many of the questions raised in the \
fifteenth century are familiar: who controls the flow of information, how can readers tell a \
reliable source from a forgery, and what happens to the people whose skills are made obsolete by \
a new machine? The scribes who copied books by hand did not disappear overnight, but within a few \
generations their craft had become a specialised art rather than the backbone of written culture. \
In the end, the story of the press reminds us that"""

PROMPTS = [
    ("capital", "The capital of France is"),
    ("paragraph",
     "Photosynthesis is the process by which green plants, algae and some bacteria convert light "
     "energy into chemical energy. Inside the chloroplasts, chlorophyll absorbs sunlight, and the "
     "energy is used to split water molecules, releasing oxygen as a by-product. The hydrogen and "
     "the energy captured are then used to turn carbon dioxide from the air into sugars that"),
    ("code",
     "def fibonacci(n):\n"
     "    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"
     "    a, b = 0, 1\n"
     "    for _ in range(n):\n"
     "        a, b = b, a + b\n"
     "    return a\n"
     "\n"
     "\n"
     "def is_prime(n):\n"),
    ("multilingual",
     "Grüße aus Köln! 東京は日本の首都です。 Привет, мир! ¿Qué tal? 🙂🚀👍🏽 naïve café — "
     "안녕하세요 · مرحبا · नमस्ते"),
    ("chat",
     "<start_of_turn>user\nWrite one sentence about the sea.<end_of_turn>\n<start_of_turn>model\n"),
    ("long", LONG_TEXT),
]


def main():
    model_path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_MODEL
    out_path = sys.argv[2] if len(sys.argv) > 2 else DEFAULT_OUT
    mname = os.path.basename(model_path)

    import transformers
    torch.manual_seed(0)
    torch.set_grad_enabled(False)

    tok, model = load_gguf_model(model_path)
    cfg = model.config

    # ---- the config this fixture describes -------------------------------
    n_layer = cfg.num_hidden_layers
    layer_types = list(cfg.layer_types)
    rope = cfg.rope_parameters
    theta_global = float(rope["full_attention"]["rope_theta"])
    theta_local = float(rope["sliding_attention"]["rope_theta"])
    expect_types = ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(n_layer)]
    assert cfg._attn_implementation == "eager", cfg._attn_implementation
    assert cfg.sliding_window == 512, cfg.sliding_window
    assert layer_types == expect_types, layer_types
    assert cfg.query_pre_attn_scalar == 256 and cfg.head_dim == 256
    assert theta_global == 1e6 and theta_local == 1e4, rope
    assert rope["full_attention"]["rope_type"] == "default"
    assert rope["sliding_attention"]["rope_type"] == "default"
    assert cfg.final_logit_softcapping is None and cfg.attn_logit_softcapping is None
    assert cfg.hidden_activation == "gelu_pytorch_tanh"
    assert cfg.tie_word_embeddings
    for layer in model.model.layers:
        want = cfg.sliding_window if layer.self_attn.is_sliding else None
        assert layer.self_attn.sliding_window == want

    # ---- norm weights: GGUF stores w + 1; does the loader subtract 1? -----
    import gguf
    reader = gguf.GGUFReader(model_path)
    gt = {t.name: t for t in reader.tensors}
    sd = model.state_dict()
    norm_pairs = [("output_norm.weight", "model.norm.weight")]
    for i in range(n_layer):
        norm_pairs += [
            ("blk.%d.attn_norm.weight" % i, "model.layers.%d.input_layernorm.weight" % i),
            ("blk.%d.attn_q_norm.weight" % i, "model.layers.%d.self_attn.q_norm.weight" % i),
            ("blk.%d.attn_k_norm.weight" % i, "model.layers.%d.self_attn.k_norm.weight" % i),
            ("blk.%d.post_attention_norm.weight" % i, "model.layers.%d.post_attention_layernorm.weight" % i),
            ("blk.%d.ffn_norm.weight" % i, "model.layers.%d.pre_feedforward_layernorm.weight" % i),
            ("blk.%d.post_ffw_norm.weight" % i, "model.layers.%d.post_feedforward_layernorm.weight" % i),
        ]
    worst = 0.0
    for gname, hname in norm_pairs:
        g = np.asarray(gt[gname].data, dtype=np.float32).reshape(-1)
        h = sd[hname].numpy().reshape(-1)
        assert np.abs(g - h).max() > 0.5, gname     # they differ ...
        worst = max(worst, float(np.abs((g - 1.0) - h).max()))
    assert worst == 0.0, worst                      # ... by exactly 1
    norm_note = ("transformers' GGUF loader subtracts 1 from every *norm.weight "
                 "(HF weight = GGUF weight - 1, exactly, all %d norm tensors) and its Gemma3RMSNorm "
                 "multiplies by (1 + w): so the GGUF weight is used as is" % len(norm_pairs))
    gguf_keys = {}
    for f in reader.fields.values():
        if f.name.startswith("gemma3."):
            gguf_keys[f.name] = f.contents()
    del reader, gt, sd

    model_sha = sha256_file(model_path)

    # ---- run the prompts ---------------------------------------------------
    records = []
    window_notes = []
    for idx, (name, text) in enumerate(PROMPTS):
        ids = tok(text)["input_ids"]
        assert ids[0] == tok.bos_token_id
        n = len(ids)
        t1 = time.time()
        inp = torch.tensor([ids])
        is_long = name == "long"
        if is_long:
            assert n >= LONG_MIN, n
            out = model(inp, output_attentions=True)
            W = cfg.sliding_window
            q = n - 1
            for li, att in enumerate(out.attentions):
                a = att[0, :, q, :]                         # heads x keys
                far = a[:, : q - W + 1]                      # q - k >= W
                near = a[:, q - W + 1]                       # q - k == W - 1
                if layer_types[li] == "sliding_attention":
                    assert float(far.abs().max()) == 0.0, li
                    assert float(near.min()) > 0.0, li
                else:
                    assert float(far.min()) > 0.0, li
            del out
            # switching the window off must change the logits
            cfg.sliding_window = 1 << 20
            for layer in model.model.layers:
                if layer.self_attn.is_sliding:
                    layer.self_attn.sliding_window = cfg.sliding_window
            nowin = model(inp).logits[0].float()
            cfg.sliding_window = W
            for layer in model.model.layers:
                if layer.self_attn.is_sliding:
                    layer.self_attn.sliding_window = W
        logits = model(inp).logits[0].float()       # n x vocab
        if is_long:
            d_last = float((logits[-1] - nowin[-1]).abs().max())
            d_early = float((logits[:W] - nowin[:W]).abs().max())
            assert d_early == 0.0 and d_last > 1e-3, (d_early, d_last)
            window_notes.append("long prompt (%d tokens): max |logit diff| vs. the same model without "
                                "the window: %.4g at the last position, %.3g over positions < %d"
                                % (n, d_last, d_early, W))
            del nowin
        if is_long:
            positions = sorted(set(range(0, n, 8)) | set(range(n - 16, n)))
            posset = "every8+last16"
        else:
            positions = list(range(n))
            posset = "all"
        last = logits[-1].double()
        stats = (float(last.max()), float(last.mean()), float(last.std(correction=0)))

        # greedy continuation with HF's KV cache, all N_GREEDY steps (no stop at EOS)
        o = model(inp, use_cache=True)
        gen, margins, cached_rows = greedy_with_cache(model, o, N_GREEDY)
        del o
        # the cached decode must agree with one full pass over prompt + continuation
        full = model(torch.tensor([ids + gen[:-1]])).logits[0].float()
        dmax = 0.0
        for s in range(N_GREEDY):
            row = full[n - 1 + s]
            dmax = max(dmax, float((row - cached_rows[s]).abs().max()))
            if margins[s] > 1e-3:
                assert int(torch.argmax(row)) == gen[s], (name, s)
        assert dmax < 2e-3, (name, dmax)
        del full
        log("%-12s %4d tokens  %.1f s  greedy: %r  (cache vs full max diff %.2g)"
            % (name, n, time.time() - t1, tok.decode(gen), dmax))
        records.append(dict(name=name, text=text, ids=ids, posset=posset,
                            pos=[(p, topk_line(logits[p], TOPK)) for p in positions],
                            stats=stats, gen=gen, margins=margins))

    # ---- write -------------------------------------------------------------
    L = []
    c = L.append
    c("# Gemma 3 270M reference logits -- generated by scripts/gen_model_fixtures.py; do not edit.")
    c("# transformers %s, torch %s, gguf %s, numpy %s; f32 on CPU, attn_implementation=eager"
      % (transformers.__version__, torch.__version__, version("gguf"), np.__version__))
    c("# model %s sha256 %s" % (mname, model_sha))
    c("# The reference is HF transformers' Gemma3ForCausalLM reading the GGUF file: weights")
    c("# dequantized to f32 by the gguf package, forward pass by transformers (independent of slm).")
    c("#")
    c("# Format: one record per line, fields separated by single spaces; lines starting with '#'")
    c("# are comments. <i> is the prompt index (0-based), <p> a 0-based token position.")
    c("#   config <key> <value...>        HF config values the reference ran with (see below)")
    c("#   prompt <i> <name> <hex>        the prompt's UTF-8 bytes in lowercase hex")
    c("#   tokens <i> <n> <id>*n          HF tokenizer ids (BOS added; special tokens written in the")
    c("#                                  text, e.g. <start_of_turn>, are parsed as control tokens)")
    c("#   posset <i> all|every8+last16   which positions have a 'pos' line: all of them, or (long")
    c("#                                  prompt) p % 8 == 0 plus the last 16 positions")
    c("#   pos <i> <p> <id>:<logit> *%d   top-%d logits of the next-token distribution after token p"
      % (TOPK, TOPK))
    c("#                                  (%.6f), sorted by logit desc, ties by id asc")
    c("#   stats <i> <n_vocab> <max> <mean> <std>   over all n_vocab logits of the last position")
    c("#                                  (std = population std, ddof 0; computed in f64)")
    c("#   greedy <i> <n> <id>*n          greedy continuation of the full prompt (argmax each step,")
    c("#                                  %d steps, not stopped at EOS)" % N_GREEDY)
    c("#   margin <i> <n> <m>*n           top1 - top2 logit at each greedy step: steps with a small")
    c("#                                  margin may legitimately flip under other arithmetic")
    c("#")
    c("# Checked by the generator before writing:")
    c("#   - %s." % norm_note)
    c("#   - sliding window in eager mode: a key k is visible to query q in a local layer iff")
    c("#     0 <= q - k < sliding_window (attention probabilities exactly 0 for q - k >= 512 in every")
    c("#     local layer, > 0 in the global layers); " + window_notes[0] + ".")
    c("#   - the greedy steps (decoded with HF's KV cache) agree with one full forward pass.")
    c("# GGUF metadata of the file (gemma3.*):")
    for k in sorted(gguf_keys):
        c("#   %s = %s" % (k, gguf_keys[k]))
    c("#   Note: the file has no rope.freq_base_swa key (and no query_pre_attn_scalar or window-pattern")
    c("#   key): HF takes the local rope theta 10000, query_pre_attn_scalar 256 and the every-6th")
    c("#   pattern from its Gemma3 defaults, as llama.cpp does.")
    c("config n_layer %d" % n_layer)
    c("config hidden_size %d" % cfg.hidden_size)
    c("config intermediate_size %d" % cfg.intermediate_size)
    c("config n_head %d" % cfg.num_attention_heads)
    c("config n_head_kv %d" % cfg.num_key_value_heads)
    c("config head_dim %d" % cfg.head_dim)
    c("config vocab_size %d" % cfg.vocab_size)
    c("config rms_norm_eps %.9g" % cfg.rms_norm_eps)
    c("config rope_theta_global %.1f" % theta_global)
    c("config rope_theta_local %.1f" % theta_local)
    c("config query_pre_attn_scalar %d" % cfg.query_pre_attn_scalar)
    c("config sliding_window %d" % cfg.sliding_window)
    c("config layer_types " + " ".join("global" if t == "full_attention" else "local" for t in layer_types))
    c("config final_logit_softcapping none")
    c("config hidden_activation %s" % cfg.hidden_activation)
    c("config bos %d" % tok.bos_token_id)
    c("config eos %d" % tok.eos_token_id)
    for i, r in enumerate(records):
        c("prompt %d %s %s" % (i, r["name"], r["text"].encode("utf-8").hex()))
        c("tokens %d %d %s" % (i, len(r["ids"]), " ".join(map(str, r["ids"]))))
        c("posset %d %s" % (i, r["posset"]))
        for p, line in r["pos"]:
            c("pos %d %d %s" % (i, p, line))
        c("stats %d %d %.6f %.6f %.6f" % ((i, cfg.vocab_size) + r["stats"]))
        c("greedy %d %d %s" % (i, len(r["gen"]), " ".join(map(str, r["gen"]))))
        c("margin %d %d %s" % (i, len(r["margins"]), " ".join("%.4f" % m for m in r["margins"])))
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as f:
        f.write("\n".join(L) + "\n")
    log("wrote %s (%d bytes)" % (out_path, os.path.getsize(out_path)))


if __name__ == "__main__":
    main()
