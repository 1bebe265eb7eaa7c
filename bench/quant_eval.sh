#!/usr/bin/env bash
# Task accuracy of several model files on one slm eval task, as a table.
#
#   bench/quant_eval.sh [-t THREADS] [--task FILE] [-o FILE] MODEL.gguf...
#
# Runs `slm eval` on every file (default task: tasks/kjv_endings.jsonl) and
# writes a markdown table, one row per file (its name without .gguf):
# multiple-choice acc and acc_norm with their standard errors, and
# exact-match accuracy where the task has such items. Default output
# .cache/quant_eval.md. Env: SLM (default build/slm).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
THREADS=2 TASK=$ROOT/tasks/kjv_endings.jsonl OUT=$ROOT/.cache/quant_eval.md
bench_options "-t=THREADS --task=TASK -o=OUT" "$@"
set -- "${BENCH_ARGS[@]}"
[ $# -ge 1 ] || { echo "quant_eval: no model files (see --help)" >&2; exit 2; }
SLM=${SLM:-$ROOT/build/slm}
trap 'rm -f "$OUT.tmp"' EXIT
{
    echo "| file | acc | acc_norm | exact match |"
    echo "|---|---:|---:|---:|"
} > "$OUT.tmp"
for f in "$@"; do
    r=$("$SLM" eval -m "$f" --task "$TASK" -t "$THREADS" 2>/dev/null) || { echo "quant_eval: slm eval failed on $f" >&2; exit 1; }
    echo "$r" | awk -v n="$(basename "$f" .gguf)" '
        /^multiple choice/ {for (i = 1; i <= NF; i++) {if ($i == "acc") a = $(i+1) " ± " $(i+3); if ($i == "acc_norm") b = $(i+1) " ± " $(i+3)}}
        /^generation/ {e = $5 " ± " $7}
        END {printf "| %s | %s | %s | %s |\n", n, a ? a : "—", b ? b : "—", e ? e : "—"}' | tee -a "$OUT.tmp" >&2
done
mv "$OUT.tmp" "$OUT"
cat "$OUT"
