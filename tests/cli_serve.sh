#!/usr/bin/env bash
# slm serve against the official `openai` Python client and raw sockets
# (tests/serve_client_test.py): endpoints, streaming, errors, bad clients,
# queue limits, API keys, time limits, a bounded load test, and a clean exit
# on SIGTERM. Two servers on free ports: the main one (4 slots) and a small
# one (1 slot, a queue of 1, an API key, a 3-second time limit).
# Skips (77) without the model, the serve command or the test venv.
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"
need_model
need_serve
PY=$("$HERE/../scripts/test_venv.sh" 2>/dev/null) && "$PY" -c 'import openai' 2>/dev/null \
    || { echo "SKIP: test venv (openai) unavailable (scripts/test_venv.sh)"; exit 77; }

# bad command lines: a message and exit 2 (usage) or 1 (a file), no server
expect 0 "usage: slm serve" -- "$BIN" serve --help
expect 2 "unknown option '--bogus'" -- "$BIN" serve --bogus 1
expect 2 "--port expects an integer" -- "$BIN" serve --port 99999
expect 2 "--slots expects an integer" -- "$BIN" serve --slots 0
expect 2 "missing value" -- "$BIN" serve --port
expect 1 "cannot open --api-key-file" -- "$BIN" serve --api-key-file "$tmp/none"
: > "$tmp/empty"
expect 1 "holds no key" -- "$BIN" serve --api-key-file "$tmp/empty"
expect 1 "not an IPv4 or IPv6 address" -- "$BIN" serve -m "$MODEL" --host localhost. --port 0
[ $fails -eq 0 ] && echo "ok: bad command lines are refused"

printf '  s3cret-key \n' > "$tmp/key"
serve_start main --slots 4 -c 512 -t 2 --max-body 65536 --max-tokens 256 --idle-timeout 5
serve_start small --slots 1 --queue 1 -c 256 -t 1 --api-key-file "$tmp/key" --timeout 3
main_port=$(serve_port main) || exit 1
small_port=$(serve_port small) || exit 1

"$PY" "$HERE/serve_client_test.py" "$main_port" "$small_port" "s3cret-key"
rc=$?
[ $fails -eq 0 ] || rc=1

# graceful shutdown: SIGTERM ends the process with status 0 and a message
kill -TERM "$(serve_pid main)"
serve_wait main; st=$?
if [ "$st" -ne 0 ] || ! grep -q "SIGTERM: finishing" "$tmp/main.log"; then
    echo "FAIL: SIGTERM: exit status $st"; tail -5 "$tmp/main.log"; rc=1
else
    echo "ok: SIGTERM ends the server cleanly"
fi
exit $rc
