#!/usr/bin/env bash
# slm's LoRA adapters against llama.cpp's own adapter loading, on the same
# files.
#
#   bench/lora_llamacpp.sh [-m MODEL] [-o DIR] [--rank R] [--amp A] [-n N] [--chunks C]
#
# 1. writes a LoRA adapter with random A and B (every q,k,v,o,gate,up,down
#    matrix of every layer, rank R, B of relative size A) with the `gguf`
#    Python package — an independent writer, the layout llama.cpp's
#    convert_lora_to_gguf.py produces;
# 2. builds llama.cpp's llama-completion and llama-perplexity once into
#    .cache/llama.cpp (the llama-cpp-python sdist that bench/compare_llamacpp.sh
#    uses; reused when present);
# 3. greedy text, N tokens, base and base + adapter, both engines
#    (llama-completion --lora --temp 0 vs slm run --lora --temp 0);
# 4. perplexity over C windows of 128 tokens of the repository's docs, base
#    and base + adapter, both engines.
# Prints the texts and PPLs, and "same" / "differ" per text pair.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
MODEL=$HOME/.cache/slm/models/gemma-3-270m-q4_k_m.gguf
OUT=""
RANK=8
AMP=0.5
NTOK=32
CHUNKS=8
LLAMA_VERSION=0.3.36
bench_options "-m=MODEL -o=OUT --rank=RANK --amp=AMP -n=NTOK --chunks=CHUNKS" "$@"
bench_no_args
[ -f "$MODEL" ] || die "model $MODEL not found"
[ -n "$OUT" ] || OUT=$ROOT/.cache/bench/lora-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
PY=$("$ROOT/scripts/test_venv.sh")

# ---- 1. the adapter ----------------------------------------------------------------
"$PY" - "$MODEL" "$OUT/random_lora.gguf" "$RANK" "$AMP" <<'EOF'
import sys
import numpy as np
import gguf
base, out, rank, amp = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
r = gguf.GGUFReader(base)
arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
rng = np.random.default_rng(1234)
w = gguf.GGUFWriter(out, arch)
w.add_string("general.type", "adapter")
w.add_string("adapter.type", "lora")
w.add_float32("adapter.lora.alpha", float(rank))   # alpha = rank: scale 1
n = 0
for t in r.tensors:
    if not t.name.startswith("blk.") or not any(f".{k}.weight" in t.name for k in
            ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")):
        continue
    n_in, n_out = int(t.shape[0]), int(t.shape[1])
    a = (rng.standard_normal((rank, n_in)) / np.sqrt(n_in)).astype(np.float32)
    b = (amp * rng.standard_normal((n_out, rank)) / np.sqrt(rank)).astype(np.float32)
    w.add_tensor(t.name + ".lora_a", a)    # numpy (rank, n_in): ne0 = n_in, ne1 = rank
    w.add_tensor(t.name + ".lora_b", b)    # (n_out, rank): ne0 = rank, ne1 = n_out
    n += 1
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
print(f"wrote {out}: {n} adapted matrices, rank {rank}, B amplitude {amp}", file=sys.stderr)
EOF

# ---- 2. llama.cpp -------------------------------------------------------------------
LD=$ROOT/.cache/llama.cpp
LSRC=$LD/src-$LLAMA_VERSION
LB=$LD/build-$LLAMA_VERSION
if [ ! -x "$LB/bin/llama-completion" ] || [ ! -x "$LB/bin/llama-perplexity" ]; then
    [ -d "$LSRC/vendor/llama.cpp" ] || "$ROOT/bench/compare_llamacpp.sh" --build-only >/dev/null \
        || die "could not fetch llama.cpp (bench/compare_llamacpp.sh --build-only)"
    [ -f "$LB/CMakeCache.txt" ] || cmake -S "$LSRC/vendor/llama.cpp" -B "$LB" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
        -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DGGML_OPENMP=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=OFF -DBUILD_SHARED_LIBS=OFF >"$OUT/llama-build.log" 2>&1
    cmake --build "$LB" -j2 --target llama-completion llama-perplexity >>"$OUT/llama-build.log" 2>&1 \
        || die "llama.cpp build failed (log: $OUT/llama-build.log)"
fi

# ---- 3. slm -----------------------------------------------------------------------------
SB=${SLM_BUILD_DIR:-$ROOT/build-ft}
[ -x "$SB/slm" ] || die "no slm binary in $SB (set SLM_BUILD_DIR)"
SLM=$SB/slm

PROMPT="The history of the printing press begins"
ADP=$OUT/random_lora.gguf
for mode in base lora; do
    la=(); ll=()
    [ $mode = lora ] && la=(--lora "$ADP") && ll=(--lora "$ADP")
    "$SLM" run -m "$MODEL" -p "$PROMPT" -n "$NTOK" --temp 0 -t 2 "${la[@]}" 2>/dev/null >"$OUT/slm-$mode.txt"
    "$LB/bin/llama-completion" -m "$MODEL" -p "$PROMPT" -n "$NTOK" --temp 0 -t 2 -no-cnv --no-warmup \
        "${ll[@]}" 2>"$OUT/llama-$mode.err" >"$OUT/llama-$mode.raw" </dev/null \
        || die "llama-completion failed (see $OUT/llama-$mode.err)"
    # llama-completion echoes the prompt (after the BOS it prints nothing for)
    sed -e 's/^<bos>//' "$OUT/llama-$mode.raw" | sed -e 's/ \[end of text\]$//' >"$OUT/llama-$mode.txt"
    s=$(tr -d '\n' <"$OUT/slm-$mode.txt"); l=$(tr -d '\n' <"$OUT/llama-$mode.txt")
    if [ "$s" = "$l" ]; then v=same; else v=differ; fi
    printf '%-5s greedy %d tokens: %s\n  slm:   %s\n  llama: %s\n' "$mode" "$NTOK" "$v" "$s" "$l"
done

# ---- 4. perplexity ---------------------------------------------------------------------
TXT=$OUT/text.txt
cat "$ROOT/README.md" "$ROOT"/docs/*.md >"$TXT"
for mode in base lora; do
    la=(); [ $mode = lora ] && la=(--lora "$ADP")
    sp=$("$SLM" perplexity -m "$MODEL" -f "$TXT" --ctx 128 --chunks "$CHUNKS" -t 2 "${la[@]}" 2>/dev/null \
         | sed -n 's/^Final PPL = \([0-9.]*\).*/\1/p')
    lp=$("$LB/bin/llama-perplexity" -m "$MODEL" -f "$TXT" -c 128 --chunks "$CHUNKS" -t 2 -b 128 "${la[@]}" 2>&1 \
         | sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p')
    printf '%-5s PPL (%d x 128 tokens): slm %s  llama.cpp %s\n' "$mode" "$CHUNKS" "$sp" "$lp"
done
echo "files in $OUT"
