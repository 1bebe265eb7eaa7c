"""The reference side of bench/train_vs_peft.sh: LoRA training steps of
PyTorch + PEFT on the same GGUF model, shaped like bench/train_bench.c's
(one sequence of N tokens per step, the loss on its last third, rank R on
all seven projection matrices, AdamW), reporting tokens/s.

    python bench/train_peft.py MODEL.gguf [-t THREADS] [-n TOKENS] [-r RANK] [-s STEPS] [--bf16]

--bf16 runs the forward and backward under torch.autocast(bfloat16) (the
LoRA weights and the optimizer stay f32), PyTorch's fast CPU setting on
machines with AVX512-BF16 or AMX. Needs the reference venv
(scripts/ref_venv.sh). Peak RSS is measured from outside (/usr/bin/time).
"""
import argparse
import os
import sys
import time

TEXT = ("The old lighthouse keeper climbed the spiral stairs every evening, counting the steps as his father had "
        "taught him. At the top he trimmed the wick, polished the great lens and watched the ships pass along the "
        "dark line of the coast. In winter the storms came in from the west and the rain drummed on the glass for "
        "days, but the light never failed. Years later, when the lamp was replaced by an automatic beacon, he still "
        "walked up the stairs at dusk, out of habit, to see the beam sweep across the water. ")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("-t", type=int, default=2)
    ap.add_argument("-n", type=int, default=256)
    ap.add_argument("-r", type=int, default=16)
    ap.add_argument("-s", type=int, default=3)
    ap.add_argument("--bf16", action="store_true")
    a = ap.parse_args()

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(a.t)
    torch.manual_seed(0)
    mdir, mname = os.path.split(os.path.abspath(a.model))
    tok = AutoTokenizer.from_pretrained(mdir, gguf_file=mname)
    base = AutoModelForCausalLM.from_pretrained(mdir, gguf_file=mname, dtype=torch.float32)
    cfg = LoraConfig(r=a.r, lora_alpha=2 * a.r, lora_dropout=0.0, bias="none",
                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    model = get_peft_model(base, cfg)
    model.train()
    ids = tok(TEXT * 8, add_special_tokens=True)["input_ids"]
    ids = (ids * (a.n // len(ids) + 1))[:a.n]
    x = torch.tensor([ids])
    labels = x.clone()
    labels[0, :a.n - a.n // 3] = -100   # the loss on the last third, as train_bench
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print("model %s, %d tokens/step (loss on the last %d), %d threads, torch %s, %s, %d trainable"
          % (a.model, a.n, a.n // 3, a.t, torch.__version__, "bf16 autocast" if a.bf16 else "f32", n_train))
    best, tot = 1e30, 0.0
    for s in range(a.s + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            loss = model(input_ids=x, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        print("step %d: loss %.4f, %.3f s wall (%.1f tokens/s), %.3f s CPU" % (s, loss.item(), dt, a.n / dt, dc))
        if s > 0:
            tot += dt
            best = min(best, dt)
    if a.s > 0:
        print("peft %s: best %.1f tokens/s, mean %.1f tokens/s" % ("bf16" if a.bf16 else "f32", a.n / best, a.n * a.s / tot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
