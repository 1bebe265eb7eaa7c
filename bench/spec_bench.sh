#!/usr/bin/env bash
# Speculative vs plain decoding per kind of text (docs/PERFORMANCE.md,
# "Speculative decoding"): for each prompt and round, `slm run` greedy with
# --speculative off, then with each KIND, interleaved; checks that the outputs
# are byte-identical and prints decode tok/s and the drafts kept.
#   bench/spec_bench.sh [-s SLM] [-t THREADS] [-n TOKENS] [-R ROUNDS] [-k "ngram"]
set -euo pipefail
SLM=./build/slm THREADS=2 N=128 ROUNDS=3 KINDS="ngram"
while getopts "s:t:n:R:k:" o; do
    case $o in s) SLM=$OPTARG ;; t) THREADS=$OPTARG ;; n) N=$OPTARG ;; R) ROUNDS=$OPTARG ;; k) KINDS=$OPTARG ;;
    *) echo "usage: $0 [-s SLM] [-t THREADS] [-n TOKENS] [-R ROUNDS] [-k KINDS]" >&2; exit 2 ;; esac
done
[ -x "$SLM" ] || { echo "$0: no slm binary at $SLM (build it, or pass -s)" >&2; exit 1; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
turn() { printf '<start_of_turn>user\n%s<end_of_turn>\n<start_of_turn>model\n' "$1"; }
turn "Write a short story about a lighthouse keeper who finds a message in a bottle." >"$OUT/prose.txt"
turn "Write a Python function that reads a CSV file and returns its rows as a list of dictionaries, with a docstring and type hints." >"$OUT/code.txt"
# the event-extraction task's first test item (tasks/events/test.jsonl), in the chat template
python3 - "$OUT/json.txt" <<'PY'
import json, sys
with open("tasks/events/test.jsonl") as f:
    user = json.loads(f.readline())["messages"][0]["content"]
open(sys.argv[1], "w").write("<start_of_turn>user\n" + user + "<end_of_turn>\n<start_of_turn>model\n")
PY
rate() { sed -n 's/.*(\([0-9.]*\) tok\/s decode).*/\1/p' "$1"; }
kept() { sed -n 's/.*speculative: \([0-9]*\) forward passes, \([0-9]*\) tokens drafted, \([0-9]*\) kept.*/\1 \2 \3/p' "$1"; }
echo "| text | kind | round | tokens | plain tok/s | spec tok/s | speed-up | forward passes | drafted | kept |"
echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"
for text in prose code json; do
    for r in $(seq 1 "$ROUNDS"); do
        for kind in $KINDS; do
            "$SLM" run -t "$THREADS" --temp 0 -n "$N" --speculative off -f "$OUT/$text.txt" >"$OUT/off.out" 2>"$OUT/off.err"
            "$SLM" run -t "$THREADS" --temp 0 -n "$N" --speculative "$kind" -f "$OUT/$text.txt" >"$OUT/on.out" 2>"$OUT/on.err"
            cmp -s "$OUT/off.out" "$OUT/on.out" || { echo "$0: $text, $kind: the outputs differ" >&2; exit 1; }
            ntok=$(sed -n 's/.*generated \([0-9]*\) tokens.*/\1/p' "$OUT/on.err")
            a=$(rate "$OUT/off.err") b=$(rate "$OUT/on.err")
            read -r passes drafted kept_n <<<"$(kept "$OUT/on.err")"
            echo "| $text | $kind | $r | $ntok | $a | $b | $(awk "BEGIN{printf \"%.2f\", $b/$a}") | $passes | $drafted | $kept_n |"
        done
    done
done
