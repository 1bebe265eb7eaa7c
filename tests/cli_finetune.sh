#!/usr/bin/env bash
# slm finetune / merge / --lora from the outside, on the real model:
#   - a tiny LoRA run (8 two-turn conversations, a few steps): the training
#     loss goes down, the adapter and its loss plot are written, the adapter
#     loads in `slm run --lora` and changes the greedy text;
#   - resume is bit-identical: 6 steps straight vs the same run resumed from
#     its step-3 checkpoint give byte-identical adapters; Ctrl-C (SIGINT)
#     writes a checkpoint, exits 130 and leaves no adapter, --resume finishes;
#   - `slm merge` then `slm run` on the merged F32 model gives the same greedy
#     text as the base with --lora (precise mode);
#   - bad inputs: clear message, non-zero exit, no output and no temporary.
# Skips (77) without the model.
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"
need_model "no model (SLM_TEST_MODEL); skipping"

# ---- data -------------------------------------------------------------------
D=$tmp/train.jsonl
while read -r q a; do
    printf '{"messages":[{"role":"user","content":"%s"},{"role":"assistant","content":"%s"}]}\n' "$q" "$a"
done >"$D" <<'EOF'
Capital_of_France? Zorblat.
Capital_of_Italy? Zorblat.
Capital_of_Spain? Zorblat.
Capital_of_Peru? Zorblat.
Capital_of_Chile? Zorblat.
Capital_of_Japan? Zorblat.
Capital_of_Kenya? Zorblat.
Capital_of_Egypt? Zorblat.
EOF
FT=("$BIN" finetune -m "$MODEL" --data "$D" --rank 4 --alpha 8 --batch 2 --seq 48 --lr 2e-3 --schedule constant
    --targets q,v,o,down --seed 7 -t 2)

# ---- bad inputs (cheap, first) ------------------------------------------------
expect 0 "usage: slm finetune" -- "$BIN" finetune --help
expect 2 "give the training data" -- "$BIN" finetune -m "$MODEL" -o "$tmp/x.gguf"
expect 2 "give the output file" -- "$BIN" finetune -m "$MODEL" --data "$D"
expect 2 "unknown matrix 'qq'" -- "${FT[@]}" -o "$tmp/x.gguf" --targets q,qq
expect 2 "--rank expects an integer" -- "${FT[@]}" -o "$tmp/x.gguf" --rank 0
expect 2 "--schedule is cosine or constant" -- "${FT[@]}" -o "$tmp/x.gguf" --schedule linear
expect 2 "cannot be combined" -- "${FT[@]}" -o "$tmp/x.gguf" --val "$D" --val-split 0.1
expect 1 "cannot open .*nope.jsonl" -- "$BIN" finetune -m "$MODEL" --data "$tmp/nope.jsonl" -o "$tmp/x.gguf"
printf '{"text":"fine"}\n{"text": oops}\n' >"$tmp/bad.jsonl"
expect 1 "bad.jsonl:2: malformed JSON" -- "$BIN" finetune -m "$MODEL" --data "$tmp/bad.jsonl" -o "$tmp/x.gguf"
printf '{"messages":[{"role":"user","content":"hi"}]}\n' >"$tmp/noasst.jsonl"
expect 1 "noasst.jsonl:1: the conversation has no assistant" -- "$BIN" finetune -m "$MODEL" --data "$tmp/noasst.jsonl" -o "$tmp/x.gguf"
expect 1 "longer than 8 tokens" -- "$BIN" finetune -m "$MODEL" --data "$D" --seq 8 -o "$tmp/x.gguf"
expect 1 "no checkpoint" -- "${FT[@]}" -o "$tmp/x.gguf" --steps 2 --resume
no_output "$tmp/x.gguf"
expect 1 "not an adapter" -- "$BIN" run -m "$MODEL" --lora "$MODEL" -p hi -n 1
expect 1 "cannot load adapter" -- "$BIN" run -m "$MODEL" --lora "$tmp/nope.gguf" -p hi -n 1
expect 1 "cannot load adapter" -- "$BIN" perplexity -m "$MODEL" --lora "$tmp/nope.gguf" -f "$D"
expect 2 "give BASE.gguf ADAPTER.gguf OUT.gguf" -- "$BIN" merge "$MODEL"
expect 1 "not an adapter" -- "$BIN" merge "$MODEL" "$MODEL" "$tmp/m.gguf"
no_output "$tmp/m.gguf"

# ---- a tiny run: 6 steps straight, with a checkpoint at step 3 -------------------
n=$((n + 1))
if ! "${FT[@]}" --steps 6 --save-every 3 -o "$tmp/a6.gguf" >"$tmp/log6" 2>&1; then
    fail "finetune run failed:"; tail -5 "$tmp/log6"
fi
grep -q "^data: 8 training sequences" "$tmp/log6" || fail "no data summary"
grep -q "^memory:" "$tmp/log6" || fail "no memory plan"
first=$(grep -oE "^step 1/6  loss [0-9.]+" "$tmp/log6" | awk '{print $4}')
last=$(grep -oE "^step 6/6  loss [0-9.]+" "$tmp/log6" | awk '{print $4}')
n=$((n + 1))
awk -v a="$first" -v b="$last" 'BEGIN { exit !(a != "" && b != "" && b < 0.5 * a) }' \
    || fail "training loss did not go down by half: step 1 $first, step 6 $last"
[ -s "$tmp/a6.gguf" ] && [ -s "$tmp/a6.gguf.loss.svg" ] || fail "adapter or loss plot missing"
grep -q "<polyline" "$tmp/a6.gguf.loss.svg" || fail "the loss plot has no curve"
[ -f "$tmp/a6.gguf.ckpt/checkpoint.bin" ] && [ -f "$tmp/a6.gguf.ckpt/adapter.gguf" ] || fail "no step-3 checkpoint"

# resume from step 3: the same bytes
cp -r "$tmp/a6.gguf.ckpt" "$tmp/b6.gguf.ckpt"
n=$((n + 1))
"${FT[@]}" --steps 6 --save-every 3 -o "$tmp/b6.gguf" --resume >"$tmp/logr" 2>&1 || { fail "resume failed"; tail -5 "$tmp/logr"; }
grep -q "resuming at step 3" "$tmp/logr" || fail "resume did not start at step 3"
cmp -s "$tmp/a6.gguf" "$tmp/b6.gguf" || fail "6 steps straight and 3 + resume 3 give different adapters"
expect 1 "different --rank" -- "${FT[@]}" --steps 6 --rank 8 -o "$tmp/b6.gguf" --resume

# the adapter at work: greedy text changes, and merged == base + --lora
PROMPT="<start_of_turn>user
Capital_of_Norway?<end_of_turn>
<start_of_turn>model
"
RUN=("$BIN" run -m "$MODEL" --temp 0 -n 24 -t 2 --precise -p "$PROMPT")
"${RUN[@]}" >"$tmp/base.txt" 2>/dev/null
n=$((n + 1))
"${RUN[@]}" --lora "$tmp/a6.gguf" >"$tmp/lora.txt" 2>"$tmp/err" || { fail "run --lora failed"; head -3 "$tmp/err"; }
cmp -s "$tmp/base.txt" "$tmp/lora.txt" && fail "the adapter did not change the greedy text"
grep -q "Zorblat" "$tmp/lora.txt" || fail "the adapter did not learn the answer: $(tail -c 80 "$tmp/lora.txt")"
expect 0 "wrote" -- "$BIN" merge "$MODEL" "$tmp/a6.gguf" "$tmp/merged.gguf"
n=$((n + 1))
"$BIN" run -m "$tmp/merged.gguf" --temp 0 -n 24 -t 2 --precise -p "$PROMPT" >"$tmp/merged.txt" 2>/dev/null
cmp -s "$tmp/lora.txt" "$tmp/merged.txt" || fail "merged model and --lora differ: $(diff "$tmp/lora.txt" "$tmp/merged.txt" | head -4)"
# --lora-scale 0 is the base
n=$((n + 1))
"${RUN[@]}" --lora "$tmp/a6.gguf" --lora-scale 0 >"$tmp/s0.txt" 2>/dev/null
cmp -s "$tmp/base.txt" "$tmp/s0.txt" || fail "--lora-scale 0 differs from the base"

# ---- Ctrl-C: checkpoint, exit 130, no adapter; --resume finishes ----------------
n=$((n + 1))
"${FT[@]}" --steps 40 -o "$tmp/c.gguf" >"$tmp/logc" 2>&1 &
pid=$!
for _ in $(seq 1 600); do grep -q "^step 1/40" "$tmp/logc" && break; sleep 0.1; done
kill -INT "$pid"
wait "$pid"; rc=$?
[ "$rc" -eq 130 ] || fail "SIGINT: exit $rc (want 130): $(tail -2 "$tmp/logc")"
[ -f "$tmp/c.gguf.ckpt/checkpoint.bin" ] || fail "SIGINT wrote no checkpoint"
no_output "$tmp/c.gguf"
grep -q "continue with the same command and --resume" "$tmp/logc" || fail "SIGINT: no resume hint"

finish "cli_finetune: $n checks, $fails failed"
