#!/usr/bin/env bash
# OpenAI tool calling in `slm serve` against the official `openai` Python
# client (tests/serve_tools_test.py): tool_choice required / named / none /
# auto, arguments validated against their schemas, a follow-up turn with a
# tool result, streamed tool-call deltas, and malformed tools refused with
# 400. Qwen2.5-Coder 0.5B Instruct (its template renders tools;
# scripts/fetch_models_extra.sh, or $SLM_TOOLS_MODEL) for the template path,
# the default test model (Gemma 3 270M: no tools in its template) for the
# generic system-prompt path. Skips (77) without Qwen, serve or the venv.
set -u
BIN=${SLM_BIN:?SLM_BIN must name the slm binary}
QWEN=${SLM_TOOLS_MODEL:-${SLM_MODELS:-$HOME/.cache/slm/models}/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}
GEMMA=${SLM_TEST_MODEL:-}
[ -f "$QWEN" ] || { echo "SKIP: no Qwen2.5-Coder 0.5B model at $QWEN (scripts/fetch_models_extra.sh)"; exit 77; }
"$BIN" --help | grep -q '^  serve.*not in this build' && { echo "SKIP: slm built without serve (libmicrohttpd, cJSON: make deps)"; exit 77; }
HERE=$(cd "$(dirname "$0")" && pwd)
PY=$("$HERE/../scripts/test_venv.sh" 2>/dev/null) && "$PY" -c 'import openai, jsonschema' 2>/dev/null \
    || { echo "SKIP: test venv (openai, jsonschema) unavailable (scripts/test_venv.sh)"; exit 77; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT

start() {  # name model
    "$BIN" serve -m "$2" --port 0 --slots 2 -c 2048 -t "${SLM_TEST_THREADS:-2}" 2>"$tmp/$1.log" &
    local pid=$!
    pids+=("$pid")
    echo "$pid" > "$tmp/$1.pid"
}
wait_port() {  # name; prints the port
    local port
    for _ in $(seq 1 600); do
        port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$tmp/$1.log" | sed 's/.*://')
        [ -n "$port" ] && { echo "$port"; return 0; }
        kill -0 "$(cat "$tmp/$1.pid")" 2>/dev/null || break
        sleep 0.1
    done
    echo "FAIL: server $1 did not start:" >&2; cat "$tmp/$1.log" >&2
    return 1
}

start qwen "$QWEN"
qport=$(wait_port qwen) || exit 1
gport=-
if [ -n "$GEMMA" ] && [ -f "$GEMMA" ]; then
    start gemma "$GEMMA"
    gport=$(wait_port gemma) || exit 1
else
    echo "note: no SLM_TEST_MODEL: the generic (no tools in the template) path is not tested"
fi
"$PY" "$HERE/serve_tools_test.py" "$qport" "$gport"
rc=$?
# a clean exit on SIGTERM, and no sanitizer report (leaks show at exit)
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" || { echo "FAIL: server $p exited with $?"; rc=1; }; done
pids=()
for n in qwen gemma; do
    [ -f "$tmp/$n.log" ] && grep -qiE 'AddressSanitizer|runtime error|LeakSanitizer' "$tmp/$n.log" && {
        echo "FAIL: sanitizer report in the $n server's log:"; cat "$tmp/$n.log"; rc=1; }
done
exit $rc
