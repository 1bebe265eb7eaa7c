#!/usr/bin/env bash
# Checks tests/fixtures/grammar/compat.jsonl against llama.cpp's own GBNF parser
# and matcher (the corpus that tests/test_grammar.c checks slm against), using
# the llama.cpp that bench/compare_llamacpp.sh builds into .cache/llama.cpp.
set -euo pipefail
cd "$(dirname "$0")/.."
L=${LLAMA_CPP_DIR:-.cache/llama.cpp}
SRC=$(ls -d "$L"/src-*/vendor/llama.cpp | head -1)
B=$(ls -d "$L"/build-* | grep -v '\.log$' | head -1)
[ -f "$B/src/libllama.a" ] || { echo "no llama.cpp build in $L (run bench/compare_llamacpp.sh first)"; exit 2; }
out=${TMPDIR:-/tmp}/grammar_llamacpp_compat
g++ -std=c++17 -O1 -I"$SRC/src" -I"$SRC/include" -I"$SRC/ggml/include" -I"$SRC/vendor" \
    bench/grammar_llamacpp_compat.cpp "$B/src/libllama.a" "$B/ggml/src/libggml.a" "$B/ggml/src/libggml-cpu.a" \
    "$B/ggml/src/libggml-base.a" -fopenmp -lpthread -ldl -o "$out"
"$out" tests/fixtures/grammar/compat.jsonl
