#!/usr/bin/env bash
# The event-extraction task (docs/TRAINING.md, "The task"):
#  - tests/py/events_check.py: the generator is deterministic, the committed
#    test set is what it writes, every answer follows the rules (recomputed
#    from the message text), held-out vocabulary stays out of training;
#  - slm eval on chat + json_fields items: --dump output rescored by
#    tests/py/events_rescore.py gives the numbers slm printed (tiny fixture
#    model; and, when SLM_TEST_MODEL is set, Gemma 3 on test items, zero-shot
#    and 3-shot); the rescorer itself refuses a doctored summary;
#  - bad items and options give a message and a non-zero exit.
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"
TINY=tests/fixtures/eval/tiny_gemma3.gguf
TASK=tasks/events/events_test.jsonl
SHOT=tasks/events/events_test_3shot.jsonl
PY=python3

ok "generator rules and determinism (tests/py/events_check.py)" $PY tests/py/events_check.py

# the tiny model: its chat replies are bytes that are not UTF-8 -> all wrong,
# and the dump must say so
# (short prompts: the tiny model holds 256 tokens)
$PY - "$TASK" > "$tmp/t3.jsonl" <<'PYEOF'
import json, sys
for i, line in enumerate(open(sys.argv[1], encoding="utf-8")):
    if i == 3:
        break
    item = json.loads(line)
    item["prompt"] = ["the lord said", "he shall be with them", "and the"][i]
    print(json.dumps(item, ensure_ascii=False))
PYEOF
ok "tiny model eval" "$BIN" eval -m "$TINY" --task "$tmp/t3.jsonl" -t 1 --dump "$tmp/d.jsonl"
"$BIN" eval -m "$TINY" --task "$tmp/t3.jsonl" -t 1 --dump "$tmp/d.jsonl" > "$tmp/s.txt" 2>/dev/null
ok "tiny model: rescoring agrees" $PY tests/py/events_rescore.py "$tmp/t3.jsonl" "$tmp/d.jsonl" "$tmp/s.txt"
ok "tiny model: five fields reported" grep -qE "^field location +\(3\): 0\.0000" "$tmp/s.txt"
ok "tiny model: three dump records" test "$(wc -l < "$tmp/d.jsonl")" -eq 3
# a doctored summary or dump must be refused by the rescorer
sed 's/^field date \(.*\): 0\.0000/field date \1: 0.3333/' "$tmp/s.txt" > "$tmp/bad_s.txt"
expect 1 "field date: slm says" -- $PY tests/py/events_rescore.py "$tmp/t3.jsonl" "$tmp/d.jsonl" "$tmp/bad_s.txt"
sed '1s/"fields_right": 0/"fields_right": 2/' "$tmp/d.jsonl" > "$tmp/bad_d.jsonl"
expect 1 "item 0: 0 fields right here, 2 in slm" -- \
    $PY tests/py/events_rescore.py "$tmp/t3.jsonl" "$tmp/bad_d.jsonl" "$tmp/s.txt"

# a plain (not chat) json_fields item: one generated token is no object
printf '%s\n' '{"prompt": "x", "answer": "{\"a\": 1}", "score": "json_fields", "max_tokens": 1}' > "$tmp/f.jsonl"
expect 0 "field a +\(1\): 0\.0000" -- "$BIN" eval -m "$TINY" --task "$tmp/f.jsonl" -t 1

# bad items
printf '%s\n' '{"prompt": "x", "answer": "[1]", "score": "json_fields"}' > "$tmp/b1.jsonl"
expect 1 "line 1: a \"json_fields\" answer must be a JSON object" -- "$BIN" eval -m "$TINY" --task "$tmp/b1.jsonl"
printf '%s\n' '{"messages": [{"role": "assistant", "content": "x"}], "answer": "y"}' > "$tmp/b2.jsonl"
expect 1 "line 1: the last message must be a \"user\" turn" -- "$BIN" eval -m "$TINY" --task "$tmp/b2.jsonl"
expect 1 "cannot write .*no/such/dir" -- "$BIN" eval -m "$TINY" --task "$tmp/t3.jsonl" --dump "$tmp/no/such/dir/d.jsonl"
expect 2 "--dump needs a value" -- "$BIN" eval -m "$TINY" --task "$tmp/t3.jsonl" --dump
expect 0 "--dump FILE" -- "$BIN" eval --help

# the real model, when there is one: zero-shot and 3-shot on a few test items
if have_model; then
    for t in "$TASK" "$SHOT"; do
        head -3 "$t" > "$tmp/r.jsonl"
        "$BIN" eval -m "$MODEL" --task "$tmp/r.jsonl" -t 2 --dump "$tmp/rd.jsonl" > "$tmp/rs.txt" 2>"$tmp/re.txt" ||
            { fail "eval of $t"; cat "$tmp/re.txt"; }
        ok "real model, $(basename "$t"): rescoring agrees" \
            $PY tests/py/events_rescore.py "$tmp/r.jsonl" "$tmp/rd.jsonl" "$tmp/rs.txt"
    done
else
    skip_part "no SLM_TEST_MODEL: the real-model part did not run"
fi

finish "$((n - fails)) of $n passed"
