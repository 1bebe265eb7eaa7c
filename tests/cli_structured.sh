#!/usr/bin/env bash
# Structured output end to end (issue 17): grammar options of `slm run`, their
# errors, truncation, and the validity suite: every schema in
# tests/fixtures/grammar/schemas x 2 prompts x $SLM_STRUCTURED_SEEDS seeds (default 2)
# sampled at temperature 1, each output parsed and validated with Python's
# jsonschema (tests/py/structured_check.py). A few minutes on 2 cores.
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"
need_model
PY=$(bash scripts/test_venv.sh) || { echo "SKIP: no test venv"; exit 77; }
P=$'<start_of_turn>user\nName a colour.<end_of_turn>\n<start_of_turn>model\n'

# an inline grammar: the output is one of the alternatives
"$BIN" run -m "$MODEL" -t 2 --temp 1 --seed 3 -n 16 --grammar 'root ::= "red" | "green" | "blue"' -p "$P" >"$tmp/out" 2>"$tmp/err"
rc=$?; got=$(tail -c +$((${#P} + 1)) "$tmp/out" | tr -d '\n')
[ $rc -eq 0 ] && [[ "$got" =~ ^(red|green|blue)$ ]] || fail "inline grammar: rc $rc, output '$got'"

# a grammar file with an error: exit 1, message with line and column, before any generation
printf 'root ::= colour\ncolour ::= "red" | "blue\n' >"$tmp/bad.gbnf"
"$BIN" run -m "$MODEL" -n 4 --grammar-file "$tmp/bad.gbnf" -p "$P" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && grep -q 'line 2, column 20: unterminated string literal' "$tmp/err" || { fail "bad grammar: rc $rc"; cat "$tmp/err"; }
printf 'root ::= root "a" | "b"\n' >"$tmp/lr.gbnf"
"$BIN" run -m "$MODEL" -n 4 --grammar-file "$tmp/lr.gbnf" -p "$P" >"$tmp/out" 2>"$tmp/err"
[ $? -eq 1 ] && grep -q "left-recursive" "$tmp/err" || { fail "left recursion not refused"; cat "$tmp/err"; }
echo '{"type":"string","pattern":"^a"}' >"$tmp/s.json"
"$BIN" run -m "$MODEL" -n 4 --json-schema "$tmp/s.json" -p "$P" >"$tmp/out" 2>"$tmp/err"
[ $? -eq 1 ] && grep -q "keyword 'pattern' is not supported" "$tmp/err" || { fail "unsupported keyword not named"; cat "$tmp/err"; }
"$BIN" run -m "$MODEL" -n 4 --json --grammar 'root ::= "a"' -p "$P" >"$tmp/out" 2>"$tmp/err"
[ $? -eq 2 ] || fail "two grammar options accepted"

# the token limit cuts a document short: reported as truncated (exit 3), not as valid
echo '{"type":"object","properties":{"story":{"type":"string","minLength":200}},"required":["story"]}' >"$tmp/long.json"
"$BIN" run -m "$MODEL" -t 2 --seed 1 -n 5 --json-schema "$tmp/long.json" -p "$P" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 3 ] && grep -q "output truncated" "$tmp/err" || { fail "truncation: rc $rc"; cat "$tmp/err"; }

# --json: one JSON object, checked by Python
"$BIN" run -m "$MODEL" -t 2 --temp 1 --seed 5 -n 200 --json -p $'<start_of_turn>user\nDescribe a cat as JSON.<end_of_turn>\n<start_of_turn>model\n' >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 0 ]; then
    tail -c +$((${#P} + 1)) "$tmp/out" >/dev/null
    "$PY" - "$tmp/out" <<'PYEOF' || fail "--json output is not one JSON object"
import json, sys
text = open(sys.argv[1], encoding="utf-8").read()
gen = text.split("<start_of_turn>model\n", 1)[1].rstrip("\n")
assert isinstance(json.loads(gen), dict), gen
PYEOF
elif [ $rc -ne 3 ]; then fail "--json: rc $rc"; cat "$tmp/err"; fi

# validity over the schema corpus
"$PY" tests/py/structured_check.py "$BIN" "$MODEL" --seeds "${SLM_STRUCTURED_SEEDS:-$([ -n "${SLM_TEST_LIGHT:-}" ] && echo 1 || echo 2)}" --n-predict 160 >"$tmp/suite" 2>&1 || { fail "schema suite"; }
grep -v '^ok ' "$tmp/suite" | tail -40
finish "$fails failed"
