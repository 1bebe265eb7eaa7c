#!/usr/bin/env bash
# Paired comparison of two quantized files of the same model, token by token:
#
#   bench/quant_pair.sh A.gguf B.gguf [-n CHUNKS] [-t THREADS] [-f TEXT]
#
# Saves A's distributions over the first CHUNKS windows of 512 tokens of TEXT
# (default: the KJV text of scripts/fetch_data.sh), then scores B against
# them: "PPL - base" is PPL(B) - PPL(A) with the standard error of the paired
# per-token NLL differences (docs/EVAL.md), and the KL is KL(A || B). A
# difference smaller than about twice its standard error is not a difference.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
[ $# -ge 2 ] || { usage; exit 2; }
A=$1 B=$2; shift 2
CHUNKS=40 THREADS=2 TEXT=
bench_options "-n=CHUNKS -t=THREADS -f=TEXT" "$@"
bench_no_args
SLM=${SLM:-$ROOT/build/slm}
[ -n "$TEXT" ] || TEXT=$("$ROOT/scripts/fetch_data.sh")/kjv.txt
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$SLM" perplexity -m "$A" -f "$TEXT" --chunks "$CHUNKS" -t "$THREADS" --kl-base-save "$TMP/a.kld" > /dev/null
"$SLM" perplexity -m "$B" -f "$TEXT" --chunks "$CHUNKS" -t "$THREADS" --kl-base "$TMP/a.kld" |
    awk -v a="$A" -v b="$B" '/^Final PPL/ {p=$4} /^Base PPL/ {q=$4} /^PPL - base/ {d=$5; s=$7} /^Mean KL/ {k=$4}
        END {printf "A %s  PPL %s\nB %s  PPL %s\nPPL(B) - PPL(A) = %s +/- %s (paired)   KL(A||B) %s\n", a, q, b, p, d, s, k}'
