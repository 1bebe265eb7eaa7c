#!/usr/bin/env bash
# OpenAI tool calling in `slm serve` against the official `openai` Python
# client (tests/serve_tools_test.py): tool_choice required / named / none /
# auto, arguments validated against their schemas with jsonschema, a
# follow-up turn with a tool result, streamed tool-call deltas, and malformed
# tools refused with 400. Qwen2.5-Coder 0.5B Instruct (its template renders
# tools; scripts/fetch_models_extra.sh, or $SLM_TOOLS_MODEL) for the template
# path; the test model (SLM_TEST_MODEL, Gemma 3 270M: no tools in its
# template) for the generic system-prompt path. Skips (77) without Qwen, the
# serve command or the test venv; without SLM_TEST_MODEL the generic part is
# skipped (77 at the end).
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"
QWEN=${SLM_TOOLS_MODEL:-${SLM_MODELS:-$HOME/.cache/slm/models}/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}
[ -f "$QWEN" ] || { echo "SKIP: no Qwen2.5-Coder 0.5B model at $QWEN (scripts/fetch_models_extra.sh)"; exit 77; }
need_serve
PY=$("$HERE/../scripts/test_venv.sh" 2>/dev/null) && "$PY" -c 'import openai, jsonschema' 2>/dev/null \
    || { echo "SKIP: test venv (openai, jsonschema) unavailable (scripts/test_venv.sh)"; exit 77; }

servers=(qwen)
MODEL=$QWEN serve_start qwen --slots 2 -c 2048 -t "${SLM_TEST_THREADS:-2}"
gport=-
if have_model; then
    serve_start gemma --slots 2 -c 2048 -t "${SLM_TEST_THREADS:-2}"
    servers+=(gemma)
else
    skip_part "no SLM_TEST_MODEL: the generic convention (a template without tools) is not tested"
fi
qport=$(serve_port qwen) || exit 1
if have_model; then gport=$(serve_port gemma) || exit 1; fi

"$PY" "$HERE/serve_tools_test.py" "$qport" "$gport" || fails=$((fails + 1))

# a clean exit on SIGTERM, and no sanitizer report (leaks show at exit)
for s in "${servers[@]}"; do
    kill -TERM "$(serve_pid "$s")"
    serve_wait "$s" 60 || fail "server $s exited with status $?"
    if grep -qiE 'AddressSanitizer|runtime error|LeakSanitizer' "$tmp/$s.log"; then
        fail "sanitizer report in the $s server's log:"; cat "$tmp/$s.log"
    fi
done
finish "cli_serve_tools: $fails failed"
