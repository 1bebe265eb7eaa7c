#!/usr/bin/env bash
# LoRA training speed and memory, slm against PyTorch + PEFT, in the same run
# (issue 14, goal 2): the same GGUF model, sequence length, rank, one
# sequence per step with the loss on its last third. slm keeps the base in
# its quantized form; PEFT loads it through transformers (dequantized to f32)
# and runs once in f32 and once under bf16 autocast. Rounds alternate the
# order so a neighbour's load hits both sides alike.
#
#   bench/train_vs_peft.sh [-m MODEL] [-t THREADS] [-n TOKENS] [-r RANK] [-s STEPS] [-R ROUNDS]
#
# Prints one markdown row per run and the ratios: best tokens/s of each side
# (after one warm-up step) and peak RSS (/usr/bin/time). Needs the reference
# venv (scripts/ref_venv.sh makes it) and /usr/bin/time.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
MODEL="" T=2 N=256 R=16 S=3 ROUNDS=1
while [ $# -gt 0 ]; do
    case $1 in
        -m) MODEL=$2; shift 2 ;; -t) T=$2; shift 2 ;; -n) N=$2; shift 2 ;;
        -r) R=$2; shift 2 ;; -s) S=$2; shift 2 ;; -R) ROUNDS=$2; shift 2 ;;
        *) echo "usage: $0 [-m MODEL] [-t THREADS] [-n TOKENS] [-r RANK] [-s STEPS] [-R ROUNDS]" >&2; exit 2 ;;
    esac
done
[ -n "$MODEL" ] || MODEL=$(./scripts/fetch_model.sh)
command -v /usr/bin/time >/dev/null || { echo "train_vs_peft: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
PY=$(./scripts/ref_venv.sh)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build --target train_bench -j "$T" >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# run NAME CMD...: prints "best_tokens_per_s peak_rss_mib"
run() {
    local name=$1; shift
    /usr/bin/time -f '%M' -o "$out/$name.rss" "$@" >"$out/$name.log" 2>"$out/$name.err" ||
        { echo "train_vs_peft: $name failed:" >&2; tail -n 5 "$out/$name.err" >&2; exit 1; }
    local tps; tps=$(sed -nE 's/.*: best ([0-9.]+) tokens\/s.*/\1/p' "$out/$name.log" | head -n 1)
    echo "$tps $(( $(tail -n 1 "$out/$name.rss") / 1024 ))"
}

echo "CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $T threads; $N tokens/step, rank $R, $S steps after a warm-up"
echo
echo "| round | run | tokens/s (best) | peak RSS MiB |"
echo "|---|---|---|---|"
for round in $(seq 1 "$ROUNDS"); do
    order="slm peft_f32 peft_bf16"; [ $((round % 2)) -eq 0 ] && order="peft_bf16 peft_f32 slm"
    for name in $order; do
        case $name in
            slm) read -r tps rss < <(run slm build/train_bench "$MODEL" -t "$T" -n "$N" -r "$R" -s "$S" --no-ckpt) ;;
            peft_f32) read -r tps rss < <(run peft_f32 "$PY" bench/train_peft.py "$MODEL" -t "$T" -n "$N" -r "$R" -s "$S") ;;
            peft_bf16) read -r tps rss < <(run peft_bf16 "$PY" bench/train_peft.py "$MODEL" -t "$T" -n "$N" -r "$R" -s "$S" --bf16) ;;
        esac
        echo "| $round | $name | $tps | $rss |"
        echo "$name $tps $rss" >>"$out/all"
    done
done
# ratios from the best of each side over the rounds
awk '{ if ($2 > best[$1]) best[$1] = $2; if (!rss[$1] || $3 < rss[$1]) rss[$1] = $3 }
     END {
        p = best["peft_f32"] > best["peft_bf16"] ? "peft_f32" : "peft_bf16";
        printf "\nslm %.1f tokens/s vs PEFT at its fastest (%s) %.1f: %.2fx; peak RSS %d vs %d MiB: %.2f of it\n",
               best["slm"], p, best[p], best["slm"] / best[p], rss["slm"], rss[p], rss["slm"] / rss[p] }' "$out/all"
