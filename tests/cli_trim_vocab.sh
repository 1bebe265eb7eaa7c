#!/usr/bin/env bash
# slm trim-vocab from the outside. Bad input (no corpus, a missing or corrupt
# model, an output folder that does not exist) fails with a clear message, a
# non-zero exit and no output file. On the real model and a small in-domain
# corpus: the copy loads, tokenizes every corpus line to the same pieces as the
# original (slm tokenize), generates the same greedy tokens on an in-domain
# prompt, tokenizes out-of-corpus text (other scripts, emoji) without error,
# and, read back by the `gguf` Python package (tests/py/check_trimmed.py),
# is the original with the kept tokens' rows copied byte for byte.
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"
PY=${SLM_TEST_PYTHON:-.cache/test-venv/bin/python}

expect 0 "usage: slm trim-vocab" -- "$BIN" trim-vocab --help
expect 0 "trim-vocab" -- "$BIN" --help
expect 2 "give -m IN.gguf and -o OUT.gguf" -- "$BIN" trim-vocab --corpus x.txt
expect 2 "at least one --corpus" -- "$BIN" trim-vocab -m a.gguf -o "$tmp/o.gguf"
expect 2 "--corpus needs a value" -- "$BIN" trim-vocab -m a.gguf -o "$tmp/o.gguf" --corpus
expect 2 "unknown argument '--bogus'" -- "$BIN" trim-vocab -m a.gguf -o "$tmp/o.gguf" --corpus x --bogus
expect 2 "--keep-top expects" -- "$BIN" trim-vocab -m a.gguf -o "$tmp/o.gguf" --corpus x --keep-top -3
expect 1 "cannot open .*nope.txt" -- "$BIN" trim-vocab -m a.gguf -o "$tmp/o.gguf" --corpus "$tmp/nope.txt"
no_output "$tmp/o.gguf"
printf 'The meeting is in Room 118 at 3:00pm.\n' > "$tmp/corpus.txt"
expect 1 "cannot read .*nope.gguf" -- "$BIN" trim-vocab -m "$tmp/nope.gguf" -o "$tmp/o.gguf" --corpus "$tmp/corpus.txt"
printf 'not a gguf file at all' > "$tmp/junk.gguf"
expect 1 "cannot read .*magic" -- "$BIN" trim-vocab -m "$tmp/junk.gguf" -o "$tmp/o.gguf" --corpus "$tmp/corpus.txt"
no_output "$tmp/o.gguf"

need_model "SKIP: the trimming checks need the model (set SLM_TEST_MODEL)"
head -c 4000000 "$MODEL" > "$tmp/trunc.gguf"
expect 1 "cannot read .*(truncated|out of bounds)" -- "$BIN" trim-vocab -m "$tmp/trunc.gguf" -o "$tmp/o.gguf" --corpus "$tmp/corpus.txt"
no_output "$tmp/o.gguf"
expect 1 "cannot create|no such file" -- "$BIN" trim-vocab -m "$MODEL" -o "$tmp/no/such/dir/o.gguf" --corpus "$tmp/corpus.txt"
printf '{"prompt": "unterminated\n' > "$tmp/bad.jsonl"
expect 1 "JSONL document 1, line 1" -- "$BIN" trim-vocab -m "$MODEL" -o "$tmp/o.gguf" --task "$tmp/bad.jsonl"
no_output "$tmp/o.gguf"

# a small in-domain corpus: event messages, plain and as an eval task
cat > "$tmp/corpus.txt" <<'TXT'
Today is Monday, 2026-10-26. Extract the event from the message as JSON with the keys date, start, duration_min, attendees, location.
Message: Greetings, pencil me in for a design review for 45 min in Room 118 at 3:00pm later today.
Message: Hi folks, the sprint planning? At the Golden Dragon on Monday at 9:50 AM works for me.
Message: Hello all, I've booked lunch tomorrow from 9am until 9:30 am in the Maple Room.
TXT
head -3 tasks/events/events_test.jsonl > "$tmp/task.jsonl"
out=$tmp/trim.gguf
expect 0 "vocabulary  262144 -> [0-9]+ tokens" -- "$BIN" trim-vocab -m "$MODEL" -o "$out" --corpus "$tmp/corpus.txt" --task "$tmp/task.jsonl"
cat "$tmp/err"
expect 0 "tokens" -- "$BIN" info "$out"

# the corpus tokenizes to the same pieces, line by line and whole
n_lines=0
while IFS= read -r line; do
    n=$((n + 1)); n_lines=$((n_lines + 1))
    a=$("$BIN" tokenize -m "$MODEL" -p "$line") || fail "tokenize (original): $line"
    b=$("$BIN" tokenize -m "$out" -p "$line") || fail "tokenize (trimmed): $line"
    [ -n "$a" ] && [ "$a" = "$b" ] || fail "tokenized differently: $line"
done < "$tmp/corpus.txt"
n=$((n + 1))
cmp -s <("$BIN" tokenize -m "$MODEL" -f "$tmp/corpus.txt") <("$BIN" tokenize -m "$out" -f "$tmp/corpus.txt") ||
    fail "the corpus file tokenizes differently"

# greedy decoding on an in-domain prompt whose continuation stays in the corpus
prompt='Message: Greetings, pencil me in for a design review for 45 min in Room'
n=$((n + 1))
ga=$("$BIN" run -m "$MODEL" -p "$prompt" -n 4 --temp 0 -t 2 2>/dev/null) || fail "run (original)"
gb=$("$BIN" run -m "$out" -p "$prompt" -n 4 --temp 0 -t 2 2>/dev/null) || fail "run (trimmed)"
[ -n "$ga" ] && [ "$ga" = "$gb" ] || fail "greedy generations differ: '$ga' vs '$gb'"
echo "greedy: $gb"

# text outside the kept set still tokenizes (byte fallback), and round-trips
odd='Ωμέγα 東京 😀 zyzzyva'
expect 0 "." -- "$BIN" tokenize -m "$out" -p "$odd"
n=$((n + 1))
na=$("$BIN" tokenize -m "$MODEL" -p "$odd" | wc -l); nb=$(wc -l < "$tmp/out")
[ "$nb" -gt "$na" ] || fail "out-of-corpus text: $nb tokens trimmed, $na with the full vocabulary (byte fallback expected)"
n=$((n + 1))
[ "$("$BIN" tokenize -m "$out" -p "$odd" | tr -d '\n')" = "$odd" ] || fail "out-of-corpus text does not round-trip"

# word forms: words read after a space are also kept as written without one
# (a JSON answer quotes them); --no-word-forms keeps the corpus's tokens only
words="Dragon Golden Maple Greetings sprint pencil"
for w in $words; do
    n=$((n + 1))
    [ "$("$BIN" tokenize -m "$MODEL" -p "$w")" = "$("$BIN" tokenize -m "$out" -p "$w")" ] ||
        fail "word form '$w' (no leading space) tokenizes differently in the trimmed model"
done
expect 0 "vocabulary" -- "$BIN" trim-vocab -m "$MODEL" -o "$tmp/nowf.gguf" --corpus "$tmp/corpus.txt" --no-word-forms
differ=0
for w in $words; do
    [ "$("$BIN" tokenize -m "$MODEL" -p "$w")" = "$("$BIN" tokenize -m "$tmp/nowf.gguf" -p "$w")" ] || differ=$((differ + 1))
done
n=$((n + 1))
[ "$differ" -gt 0 ] || fail "--no-word-forms: every word form still tokenizes as in the full model (the option does nothing?)"

# --keep-top adds the lowest ids
expect 0 "vocabulary  262144 -> [0-9]+" -- "$BIN" trim-vocab -m "$MODEL" -o "$tmp/top.gguf" --corpus "$tmp/corpus.txt" --keep-top 20000
n=$((n + 1))
k1=$(grep -oE -- '-> [0-9]+' "$tmp/err" | tr -dc 0-9)
[ "${k1:-0}" -gt 20000 ] || fail "--keep-top 20000 kept only ${k1:-?} tokens"
rm -f "$tmp/top.gguf"

# an independent reader: same tokens, same rows, everything else unchanged
if [ -x "$PY" ] && "$PY" -c 'import gguf, numpy' 2>/dev/null; then
    n=$((n + 1))
    "$PY" tests/py/check_trimmed.py "$MODEL" "$out" "▁Room" "▁Golden" "<end_of_turn>" "<0xF0>" || fail "check_trimmed"
    # a special id behind dropped tokens must be renumbered (Gemma's own are all below the first dropped id)
    rm -f "$out"
    cp "$MODEL" "$tmp/moved.gguf"
    n=$((n + 1))
    "$PY" tests/py/set_token_id.py "$tmp/moved.gguf" tokenizer.ggml.padding_token_id "<start_of_image>" >/dev/null ||
        fail "set_token_id"
    expect 0 "vocabulary" -- "$BIN" trim-vocab -m "$tmp/moved.gguf" -o "$out" --corpus "$tmp/corpus.txt"
    n=$((n + 1))
    "$PY" tests/py/check_trimmed.py "$tmp/moved.gguf" "$out" "<start_of_image>" || fail "check_trimmed (moved pad id)"
else
    skip_part "no test venv python with gguf (scripts/test_venv.sh)"
fi

finish "cli_trim_vocab: $n checks"
