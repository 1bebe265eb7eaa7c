#!/usr/bin/env bash
# Decode speed of every quantized file, slm and llama.cpp on the same file.
#
#   bench/quant_speed.sh [-t THREADS] [-n TOKENS] [-r RUNS] [-R ROUNDS] [-o DIR] FILE...
#
# For each FILE (a GGUF, e.g. the files bench/quant_table.sh wrote), runs
# bench/compare_llamacpp.sh -m FILE -p 0 (decode only, interleaved rounds of
# slm bench and llama-bench) and collects one line per file into DIR/results.md:
# file size, weights read per token, tokens/s of both engines, the ratio
# (geometric mean of the per-round ratios) and slm's share of the bandwidth
# roofline. The name of the row is the file name without .gguf.
# Defaults: -t 2 -n 64 -r 3 -R 3 -o .cache/quant_speed.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
THREADS=2 NG=64 REPS=3 ROUNDS=3 OUT=$ROOT/.cache/quant_speed
bench_options "-t=THREADS -n=NG -r=REPS -R=ROUNDS -o=OUT" "$@"
set -- "${BENCH_ARGS[@]}"
[ $# -ge 1 ] || { usage >&2; exit 2; }
for f in "$@"; do [ -f "$f" ] || { echo "quant_speed: $f not found" >&2; exit 1; }; done
mkdir -p "$OUT"
ROWS=$OUT/rows.md
: > "$ROWS"
for f in "$@"; do
    name=$(basename "$f" .gguf)
    echo "quant_speed: $name" >&2
    "$ROOT/bench/compare_llamacpp.sh" -m "$f" -t "$THREADS" -p 0 -n "$NG" -r "$REPS" -R "$ROUNDS" \
        -o "$OUT/$name" > "$OUT/$name.log" 2>&1 || { tail -5 "$OUT/$name.log" >&2; exit 1; }
    # the compare table's tg row: | tgN | threads | slm t/s | best | llama t/s | best | ratio | roofline | roofline |
    wpt=$(sed -n 's/^- weights read per decoded token: \([0-9.]*\) MiB.*/\1/p' "$OUT/$name/results.md")
    awk -F'|' -v n="$name" -v mib="$(echo "$(stat -c %s "$f") / 1048576" | bc -l)" -v wpt="$wpt" \
        '$2 ~ /tg/ {printf "| %s | %.1f | %s | %s | %s | %s | %s |\n", n, mib, wpt, $4, $6, $8, $9}' \
        "$OUT/$name/results.md" | tee -a "$ROWS" >&2
done
{
    echo "| file | size MiB | weights read per token MiB | slm tok/s | llama.cpp tok/s | slm / llama.cpp | slm % roofline |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    cat "$ROWS"
    echo
    echo "tg$NG, $THREADS threads, $ROUNDS interleaved rounds x $REPS runs; t/s mean ± sd;" \
         "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores;" \
         "per-file details in $OUT/<file>/results.md"
} > "$OUT/results.md"
cat "$OUT/results.md"
