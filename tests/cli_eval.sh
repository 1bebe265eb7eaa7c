#!/usr/bin/env bash
# slm perplexity / eval / imatrix from the command line, on the tiny model of
# tests/fixtures/eval: results that must hold (the model against itself has
# KL 0; an eval task whose answers are the model's own picks scores 1), and
# bad input that must give a message and a non-zero exit, never a crash.
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"
M=tests/fixtures/eval/tiny_gemma3.gguf

# a text of plain words the tiny vocabulary covers
for i in $(seq 1 60); do echo "and the lord said unto them that he shall be with all of his"; done > "$tmp/text.txt"

expect 0 "usage: slm perplexity" -- "$BIN" perplexity --help
expect 0 "usage: slm eval" -- "$BIN" eval --help
expect 0 "usage: slm imatrix" -- "$BIN" imatrix --help
expect 0 "Final PPL = [0-9.]+ \+/- [0-9.]+ over 135 tokens \(9 windows of 32\)" -- \
    "$BIN" perplexity -m "$M" -f "$tmp/text.txt" --ctx 32 --chunks 9 -t 1 --kl-base-save "$tmp/base.kld"
[ -f "$tmp/base.kld" ] && ! ls "$tmp"/base.kld.tmp.* >/dev/null 2>&1 || fail "base file"
expect 0 "Mean KL   = 0\.000000 .*max 0\.000000" -- \
    "$BIN" perplexity -m "$M" -f "$tmp/text.txt" --ctx 32 --chunks 9 -t 1 --kl-base "$tmp/base.kld"
expect 0 "Top-1 agreement = 100\.000%" -- \
    "$BIN" perplexity -m "$M" -f "$tmp/text.txt" --ctx 32 --chunks 9 -t 1 --kl-base "$tmp/base.kld"
expect 1 "--chunks 9" -- "$BIN" perplexity -m "$M" -f "$tmp/text.txt" --ctx 32 --chunks 8 --kl-base "$tmp/base.kld"
expect 1 "--ctx 32" -- "$BIN" perplexity -m "$M" -f "$tmp/text.txt" --ctx 64 --chunks 9 --kl-base "$tmp/base.kld"
head -c 1000 "$tmp/base.kld" > "$tmp/cut.kld"
expect 1 "damaged" -- "$BIN" perplexity -m "$M" -f "$tmp/text.txt" --ctx 32 --chunks 9 --kl-base "$tmp/cut.kld"
expect 1 "not a base logits file" -- "$BIN" perplexity -m "$M" -f "$tmp/text.txt" --ctx 32 --kl-base "$M"
expect 1 "cannot open base logits" -- "$BIN" perplexity -m "$M" -f "$tmp/text.txt" --ctx 32 --kl-base "$tmp/none"
expect 1 "cannot open .*missing.txt" -- "$BIN" perplexity -m "$M" -f "$tmp/missing.txt"
echo "the lord" > "$tmp/short.txt"
expect 1 "fewer than one window" -- "$BIN" perplexity -m "$M" -f "$tmp/short.txt" --ctx 32
expect 1 "only [0-9]+" -- "$BIN" perplexity -m "$M" -f "$tmp/text.txt" --ctx 32 --chunks 999
expect 2 "cannot be combined" -- "$BIN" perplexity -m "$M" -f "$tmp/text.txt" --kl-base a --kl-base-save b
expect 2 "give the text" -- "$BIN" perplexity -m "$M"
expect 2 "--ctx expects an integer" -- "$BIN" perplexity -m "$M" -f "$tmp/text.txt" --ctx 2
expect 2 "unknown option" -- "$BIN" perplexity --frob

# eval: the model's own pick (from -v) becomes the answer, so acc must be 1
cat > "$tmp/task.jsonl" <<'EOF'
{"type": "mc", "context": "and the lord", "choices": [" said unto them", " of", " xyz"], "answer": 0}
{"context": "he shall", "choices": [" be", " not be with them"], "answer": 0}
EOF
expect 0 "multiple choice \(2\)" -- "$BIN" eval -m "$M" --task "$tmp/task.jsonl" -t 1 -v
picks=$(grep -o 'pred [0-9]*' "$tmp/out" | awk '{print $2}' | tr '\n' ' ')
set -- $picks
sed -e "1s/\"answer\": 0/\"answer\": ${1:-0}/" -e "2s/\"answer\": 0/\"answer\": ${2:-0}/" "$tmp/task.jsonl" > "$tmp/own.jsonl"
expect 0 "acc 1\.0000 \+/- 0\.0000" -- "$BIN" eval -m "$M" --task "$tmp/own.jsonl" -t 1
printf '{"context": "a", "choices": [" b", " c"], "answer": 0}\n{"context": "a", "choices": [" b", " c"], "answer": 0\n' > "$tmp/bad.jsonl"
expect 1 "line 2: invalid JSON" -- "$BIN" eval -m "$M" --task "$tmp/bad.jsonl"
printf '{"context": "a", "choices": [" b"], "answer": 0}\n' > "$tmp/one.jsonl"
expect 1 "line 1: \"choices\" needs 2" -- "$BIN" eval -m "$M" --task "$tmp/one.jsonl"
{ printf '{"context": "'; for i in $(seq 1 100); do printf ' the lord'; done; printf '", "choices": [" a", " b"], "answer": 0}\n'; } > "$tmp/long.jsonl"
expect 1 "item 0: the context takes [0-9]+ tokens" -- "$BIN" eval -m "$M" --task "$tmp/long.jsonl" -c 64
expect 1 "cannot open .*nope.jsonl" -- "$BIN" eval -m "$M" --task "$tmp/nope.jsonl"
expect 2 "give the task" -- "$BIN" eval -m "$M"

# imatrix
expect 0 "written to" -- "$BIN" imatrix -m "$M" -f "$tmp/text.txt" --ctx 32 --chunks 4 -t 1 -o "$tmp/im.gguf"
expect 0 "general.type +\"imatrix\"" -- "$BIN" info "$tmp/im.gguf"
expect 0 "blk.1.ffn_down.weight.in_sum2 +f32 +64 x 1" -- "$BIN" info "$tmp/im.gguf"
expect 2 "and the output with -o" -- "$BIN" imatrix -m "$M" -f "$tmp/text.txt"
expect 1 "cannot write .*no/such/dir" -- "$BIN" imatrix -m "$M" -f "$tmp/text.txt" --ctx 32 --chunks 1 -o "$tmp/no/such/dir/im.gguf"
expect 1 "fewer than one window" -- "$BIN" imatrix -m "$M" -f "$tmp/short.txt" --ctx 32 -o "$tmp/x.gguf"
expect 1 "exceeds the model's training context" -- "$BIN" imatrix -m "$M" -f "$tmp/text.txt" --ctx 4096 -o "$tmp/x.gguf"

finish "$((n - fails)) of $n passed"
