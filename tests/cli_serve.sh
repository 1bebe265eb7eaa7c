#!/usr/bin/env bash
# slm serve against the official `openai` Python client and raw sockets
# (tests/serve_client_test.py): endpoints, streaming, errors, bad clients,
# queue limits, API keys, time limits, a bounded load test, and a clean exit
# on SIGTERM. Two servers on free ports: the main one (4 slots) and a small
# one (1 slot, a queue of 1, an API key, a 3-second time limit).
# Skips (77) without the model, the serve command or the test venv.
set -u
BIN=${SLM_BIN:?SLM_BIN must name the slm binary}
MODEL=${SLM_TEST_MODEL:-}
[ -n "$MODEL" ] && [ -f "$MODEL" ] || { echo "SKIP: no model (set SLM_TEST_MODEL)"; exit 77; }
"$BIN" --help | grep -q '^  serve.*not in this build' && { echo "SKIP: slm built without serve (libmicrohttpd, cJSON: make deps)"; exit 77; }
HERE=$(cd "$(dirname "$0")" && pwd)
PY=$("$HERE/../scripts/test_venv.sh" 2>/dev/null) && "$PY" -c 'import openai' 2>/dev/null \
    || { echo "SKIP: test venv (openai) unavailable (scripts/test_venv.sh)"; exit 77; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT

start() {  # name args... ; prints the port
    local name=$1; shift
    "$BIN" serve -m "$MODEL" --port 0 "$@" 2>"$tmp/$name.log" &
    local pid=$!
    pids+=("$pid")
    echo "$pid" > "$tmp/$name.pid"
}
wait_port() {  # name
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

# bad command lines: a message and exit 2 (usage) or 1 (a file), no server
bad=0
expect() {  # want_rc pattern -- args...
    local want=$1 pat=$2; shift 3
    "$BIN" serve "$@" >"$tmp/out" 2>&1 </dev/null; local rc=$?
    if [ "$rc" -ne "$want" ] || ! grep -qiE -- "$pat" "$tmp/out"; then
        echo "FAIL: slm serve $* -> rc $rc (want $want):"; head -3 "$tmp/out"; bad=1
    fi
}
expect 0 "usage: slm serve" -- --help
expect 2 "unknown option '--bogus'" -- --bogus 1
expect 2 "--port expects an integer" -- --port 99999
expect 2 "--slots expects an integer" -- --slots 0
expect 2 "missing value" -- --port
expect 1 "cannot open --api-key-file" -- --api-key-file "$tmp/none"
: > "$tmp/empty"
expect 1 "holds no key" -- --api-key-file "$tmp/empty"
expect 1 "not an IPv4 or IPv6 address" -- -m "$MODEL" --host localhost. --port 0
[ $bad -eq 0 ] && echo "ok: bad command lines are refused"

printf '  s3cret-key \n' > "$tmp/key"
start main --slots 4 -c 512 -t 2 --max-body 65536 --max-tokens 256 --idle-timeout 5
start small --slots 1 --queue 1 -c 256 -t 1 --api-key-file "$tmp/key" --timeout 3
main_port=$(wait_port main) || exit 1
small_port=$(wait_port small) || exit 1

"$PY" "$HERE/serve_client_test.py" "$main_port" "$small_port" "s3cret-key"
rc=$?
[ $bad -eq 0 ] || rc=1

# graceful shutdown: SIGTERM ends the process with status 0 and a message
main_pid=$(cat "$tmp/main.pid")
kill -TERM "$main_pid"
wait "$main_pid"; st=$?
if [ "$st" -ne 0 ] || ! grep -q "SIGTERM: finishing" "$tmp/main.log"; then
    echo "FAIL: SIGTERM: exit status $st"; tail -5 "$tmp/main.log"; rc=1
else
    echo "ok: SIGTERM ends the server cleanly"
fi
exit $rc
