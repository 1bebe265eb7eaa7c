#!/usr/bin/env bash
# The quantization results table of docs/QUANTIZATION.md ("## Results").
#
#   bench/quant_table.sh [-n CHUNKS] [-i IMATRIX_CHUNKS] [-t THREADS] [-o DIR] [--types "q8_0 ..."]
#                        [--llama-types "q8_0 ..."] [--imatrix-types "q4_k_m ..."]
#
# Base: the Q4_K_M Gemma 3 270M file dequantized to F32 (`slm quantize --type f32`),
# the highest precision available here. For every type: quantize the base with
# `slm quantize` (and, where listed, with llama.cpp's llama-quantize, built
# from the tree bench/compare_llamacpp.sh configures), then measure EVERY file
# with OUR `slm perplexity` (same method for both quantizers) on the first
# CHUNKS windows of 512 tokens of the KJV text (scripts/fetch_data.sh): PPL,
# ΔPPL against the base with its paired standard error (same tokens),
# mean KL divergence against the base's saved
# distributions (top-64 log-probs, docs/EVAL.md), top-1 agreement; decode
# tokens/s with `slm bench -p 0 -n 32 -r 2`. The importance matrix comes from
# `slm imatrix` on the base over IMATRIX_CHUNKS windows of the calibration
# text (a different source than the evaluation text); both quantizers read
# that same file.
#
# Env: SLM (the slm binary, default build/slm), LLAMA_BIN (default
# .cache/llama.cpp/build-0.3.36/bin). Writes DIR/results.md (default
# .cache/quant_table) and keeps every log there.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
CHUNKS=10
IM_CHUNKS=8
THREADS=2
OUT=.cache/quant_table
# in the order they are measured: the pairs that matter most first
TYPES="q4_k_m q8_0 q2_k q3_k_m q6_k q5_k_m q4_0 q4_k_s q5_k_s q3_k_l q3_k_s q5_0"
LLAMA_TYPES="q4_k_m q8_0 q2_k q3_k_m q6_k q5_k_m q4_0"
IM_TYPES="q4_k_m q2_k q3_k_m"
bench_options "-n=CHUNKS -i=IM_CHUNKS -t=THREADS -o=OUT --types=TYPES --llama-types=LLAMA_TYPES
               --imatrix-types=IM_TYPES" "$@"
bench_no_args
SLM=${SLM:-build/slm}
LLAMA_BIN=${LLAMA_BIN:-.cache/llama.cpp/build-0.3.36/bin}
[ -x "$SLM" ] || { echo "quant_table: $SLM is missing (make, or set SLM=)" >&2; exit 1; }
DATA=$(scripts/fetch_data.sh)
MODEL=$(scripts/fetch_model.sh)
TEXT=$DATA/kjv.txt
CAL=$DATA/calibration.txt
mkdir -p "$OUT"
BASE=$OUT/base-f32.gguf
ROWS=$OUT/rows.tsv
: > "$ROWS"

log() { echo "quant_table: $*" >&2; }
[ -f "$BASE" ] || "$SLM" quantize "$MODEL" "$BASE" --type f32 -t "$THREADS" -q
if [ ! -f "$OUT/base.kld" ] || [ ! -f "$OUT/base.ppl.txt" ]; then
    log "base distributions ($CHUNKS windows)"
    "$SLM" perplexity -m "$BASE" -f "$TEXT" --chunks "$CHUNKS" -t "$THREADS" --kl-base-save "$OUT/base.kld" \
        > "$OUT/base.ppl.txt"
fi
BASE_PPL=$(awk '/^Final PPL/ {print $4}' "$OUT/base.ppl.txt")
if [ -n "$IM_TYPES" ] && [ ! -f "$OUT/imatrix.gguf" ]; then
    log "importance matrix ($IM_CHUNKS windows of the calibration text)"
    "$SLM" imatrix -m "$BASE" -f "$CAL" -o "$OUT/imatrix.gguf" --chunks "$IM_CHUNKS" -t "$THREADS" > /dev/null
fi

# bits per weight = 8 * tensor bytes / weights, read with the gguf package's reader
bpw() {
    "$(scripts/test_venv.sh)" - "$1" <<'EOF'
import sys, gguf
r = gguf.GGUFReader(sys.argv[1])
print("%.3f" % (8 * sum(int(t.n_bytes) for t in r.tensors) / sum(int(t.n_elements) for t in r.tensors)))
EOF
}

measure() {  # label file
    local label=$1 f=$2 log=$OUT/$1.ppl.txt
    if [ "$f" = "$BASE" ] && [ ! -f "$log" ]; then   # the base against itself: KL 0 by definition
        { cat "$OUT/base.ppl.txt"; echo "Mean KL   = 0.000000"; echo "Top-1 agreement = 100.000%"; } > "$log"
    fi
    if [ ! -f "$log" ]; then
        "$SLM" perplexity -m "$f" -f "$TEXT" --chunks "$CHUNKS" -t "$THREADS" --kl-base "$OUT/base.kld" > "$log.tmp"
        mv "$log.tmp" "$log"
    fi
    local ppl kl top1 tg size dse
    ppl=$(awk '/^Final PPL/ {print $4}' "$log")
    dse=$(awk '/^PPL - base/ {print $7}' "$log")
    kl=$(awk '/^Mean KL/ {print $4}' "$log")
    top1=$(awk '/^Top-1 agreement/ {print $4}' "$log")
    tg=$("$SLM" bench -m "$f" -p 0 -n 32 -r 2 -t "$THREADS" -o json | tr ',' '\n' | awk -F: '/"avg_ts"/ {print $2; exit}')
    size=$(stat -c %s "$f")
    printf '%s\t%.1f\t%s\t%s\t%+.4f ± %s\t%s\t%s\t%.1f\n' "$label" "$(echo "$size / 1048576" | bc -l)" "$(bpw "$f")" \
        "$ppl" "$(echo "$ppl - $BASE_PPL" | bc -l)" "${dse:-0}" "$kl" "$top1" "$tg" | tee -a "$ROWS" >&2
}

slm_q() {  # type [imatrix]
    local f=$OUT/slm-$1${2:+-imatrix}.gguf
    [ -f "$f" ] || "$SLM" quantize "$BASE" "$f" --type "$1" ${2:+--imatrix "$OUT/imatrix.gguf"} -t "$THREADS" -q \
        > /dev/null
    measure "slm-$1${2:+-imatrix}" "$f"
}
llama_q() {  # type [imatrix]
    [ -x "$LLAMA_BIN/llama-quantize" ] || { log "no llama-quantize in $LLAMA_BIN"; return 0; }
    local f=$OUT/llama-$1${2:+-imatrix}.gguf T
    T=$(echo "$1" | tr a-z A-Z)
    [ -f "$f" ] || "$LLAMA_BIN/llama-quantize" ${2:+--imatrix "$OUT/imatrix.gguf"} "$BASE" "$f" "$T" "$THREADS" \
        > "$OUT/llama-$1${2:+-imatrix}.quant.log" 2>&1
    measure "llama-$1${2:+-imatrix}" "$f"
}

measure "f32-base" "$BASE"
for t in $TYPES; do
    slm_q "$t"
    case " $LLAMA_TYPES " in *" $t "*) llama_q "$t";; esac
    case " $IM_TYPES " in *" $t "*) slm_q "$t" imatrix; llama_q "$t" imatrix;; esac
done

{
    echo "| file | size MiB | bits/weight | PPL | ΔPPL ± paired SE | mean KL | top-1 % | decode tok/s |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8}' "$ROWS"
    echo
    echo "$CHUNKS windows of 512 tokens of kjv.txt ($((CHUNKS * 255)) scored tokens); imatrix: $IM_CHUNKS windows" \
         "of calibration.txt; $THREADS threads; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores."
} > "$OUT/results.md"
cat "$OUT/results.md"
