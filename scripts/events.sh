#!/usr/bin/env bash
# The event-extraction fine-tune, end to end (docs/TRAINING.md, "The task"):
# fetch Gemma 3 270M, generate the data, train a LoRA adapter, merge it,
# quantize the result to Q4_K_M, score it on the committed test set, and
# store
#   $SLM_MODELS/gemma-3-270m-events.gguf        the merged, quantized model
#   $SLM_MODELS/gemma-3-270m-events.lora.gguf   the adapter (use with --lora)
# (SLM_MODELS defaults to ~/.cache/slm/models). Each stage is skipped when its
# output exists and is newer than its inputs, so a rerun resumes; an
# interrupted training run continues from its checkpoint.
#
#   scripts/events.sh            or    make events
#
# Settings (environment): SLM_BIN (default build/slm), EVENTS_WORK (default
# build-events/), THREADS (default: all CPUs), EPOCHS (2), LR (2e-4), RANK (16),
# ALPHA (32), BATCH (8), SEQ (512), WARMUP (20), SEED (1), STEPS (unset; set:
# that many optimizer steps instead of EPOCHS, for a quick run), EVAL_LIMIT
# (0: all 200 test items).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BIN=${SLM_BIN:-$ROOT/build/slm}
MODELS=${SLM_MODELS:-$HOME/.cache/slm/models}
WORK=${EVENTS_WORK:-$ROOT/build-events}
THREADS=${THREADS:-$(nproc 2>/dev/null || echo 2)}
EPOCHS=${EPOCHS:-2} LR=${LR:-2e-4} RANK=${RANK:-16} ALPHA=${ALPHA:-32} BATCH=${BATCH:-8}
SEQ=${SEQ:-512} WARMUP=${WARMUP:-20} SEED=${SEED:-1} STEPS=${STEPS:-} EVAL_LIMIT=${EVAL_LIMIT:-0}
TASK=$ROOT/tasks/events/events_test.jsonl
OUT_MODEL=$MODELS/gemma-3-270m-events.gguf
OUT_LORA=$MODELS/gemma-3-270m-events.lora.gguf

say() { echo "events: $*" >&2; }
# fresh OUT IN... : OUT exists and is newer than every IN
fresh() {
    local out=$1 f
    shift
    [ -s "$out" ] || return 1
    for f in "$@"; do [ "$out" -nt "$f" ] || return 1; done
}

[ -x "$BIN" ] || { say "no slm binary at $BIN (run make first, or set SLM_BIN)"; exit 1; }
"$BIN" finetune --help >/dev/null 2>&1 || { say "$BIN has no finetune command"; exit 1; }
mkdir -p "$WORK/data" "$MODELS"

say "1/6 base model"
BASE=$("$ROOT/scripts/fetch_model.sh")

say "2/6 data (tasks/events/gen_events.py)"
GEN=$ROOT/tasks/events/gen_events.py
if fresh "$WORK/data/train.jsonl" "$GEN" && fresh "$WORK/data/val.jsonl" "$GEN"; then
    say "    up to date"
else
    python3 "$GEN" --out "$WORK/data" >&2
fi
cmp -s "$WORK/data/events_test.jsonl" "$TASK" || say "    note: $TASK differs from what the generator writes now"

# The options the adapter depends on: a change retrains.
SETTINGS="epochs=$EPOCHS steps=$STEPS lr=$LR rank=$RANK alpha=$ALPHA batch=$BATCH seq=$SEQ warmup=$WARMUP seed=$SEED"
if [ "$(cat "$WORK/settings" 2>/dev/null)" != "$SETTINGS" ]; then echo "$SETTINGS" > "$WORK/settings"; fi

say "3/6 fine-tune ($SETTINGS, $THREADS threads)"
ADAPTER=$WORK/adapter.gguf
if fresh "$ADAPTER" "$BASE" "$WORK/data/train.jsonl" "$WORK/data/val.jsonl" "$WORK/settings"; then
    say "    up to date"
else
    RESUME=() LENGTH=(--epochs "$EPOCHS")
    [ -n "$STEPS" ] && LENGTH=(--steps "$STEPS")
    [ -d "$ADAPTER.ckpt" ] && [ "$ADAPTER.ckpt" -nt "$WORK/settings" ] && \
        [ "$ADAPTER.ckpt" -nt "$WORK/data/train.jsonl" ] && RESUME=(--resume)
    "$BIN" finetune -m "$BASE" --data "$WORK/data/train.jsonl" --val "$WORK/data/val.jsonl" -o "$ADAPTER" \
        --rank "$RANK" --alpha "$ALPHA" "${LENGTH[@]}" --lr "$LR" --warmup "$WARMUP" --batch "$BATCH" \
        --seq "$SEQ" --seed "$SEED" --save-every 50 -t "$THREADS" "${RESUME[@]}"
fi

say "4/6 merge"
MERGED=$WORK/merged-f32.gguf
if fresh "$MERGED" "$BASE" "$ADAPTER"; then say "    up to date"; else "$BIN" merge "$BASE" "$ADAPTER" "$MERGED"; fi

say "5/6 quantize to q4_k_m"
if fresh "$OUT_MODEL" "$MERGED"; then
    say "    up to date"
else
    "$BIN" quantize "$MERGED" "$OUT_MODEL.tmp" --type q4_k_m -t "$THREADS" -q
    mv "$OUT_MODEL.tmp" "$OUT_MODEL"
fi
fresh "$OUT_LORA" "$ADAPTER" || cp "$ADAPTER" "$OUT_LORA"

say "6/6 evaluate on $TASK"
RESULT=$WORK/eval.txt DUMP=$WORK/eval_dump.jsonl
[ "$EVAL_LIMIT" -gt 0 ] && RESULT=$WORK/eval-first$EVAL_LIMIT.txt DUMP=$WORK/eval_dump-first$EVAL_LIMIT.jsonl
if fresh "$RESULT" "$OUT_MODEL" "$TASK"; then
    say "    up to date"
else
    LIMIT=()
    [ "$EVAL_LIMIT" -gt 0 ] && LIMIT=(--limit "$EVAL_LIMIT")
    "$BIN" eval -m "$OUT_MODEL" --task "$TASK" -t "$THREADS" "${LIMIT[@]}" --dump "$DUMP" \
        > "$RESULT.tmp"
    python3 "$ROOT/tests/py/events_rescore.py" "$TASK" "$DUMP" "$RESULT.tmp" >&2
    mv "$RESULT.tmp" "$RESULT"
fi
cat "$RESULT"
say "model: $OUT_MODEL ($(du -h "$OUT_MODEL" | cut -f1)), adapter: $OUT_LORA"
