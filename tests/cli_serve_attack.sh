#!/usr/bin/env bash
# slm serve under attack and overload (issue 20): tests/serve_attack_test.py
# against a small server (1 slot, a queue of 1, tight connection limits and
# deadlines, an API key, an allowed origin), then slm chat keeping control-
# token text typed by the user as text. Loopback only; bounded loops.
# Skips (77) without the model or the serve command.
set -u
BIN=${SLM_BIN:?SLM_BIN must name the slm binary}
MODEL=${SLM_TEST_MODEL:-}
[ -n "$MODEL" ] && [ -f "$MODEL" ] || { echo "SKIP: no model (set SLM_TEST_MODEL)"; exit 77; }
"$BIN" --help | grep -q '^  serve.*not in this build' && { echo "SKIP: slm built without serve"; exit 77; }
"$BIN" serve --help >/dev/null 2>&1 || { echo "SKIP: slm built without serve"; exit 77; }
HERE=$(cd "$(dirname "$0")" && pwd)
PY=$(command -v python3) || { echo "SKIP: no python3"; exit 77; }
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }; rm -rf "$tmp"; }
trap cleanup EXIT
rc=0

printf 'attack-key\n' > "$tmp/key"
"$BIN" serve -m "$MODEL" --port 0 --slots 1 --queue 1 -c 512 -t 2 --idle-timeout 2 --read-timeout 3 \
    --max-connections 24 --max-per-address 12 --grace 1 --allow-origin http://good.example \
    --api-key-file "$tmp/key" 2>"$tmp/serve.log" &
pid=$!
port=
for _ in $(seq 1 600); do
    port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$tmp/serve.log" | sed 's/.*://')
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$port" ] || { echo "FAIL: the server did not start:"; cat "$tmp/serve.log"; exit 1; }

timeout 300 "$PY" "$HERE/serve_attack_test.py" "$port" attack-key "$pid" || rc=1
# the last test stopped the server with SIGTERM: it must exit 0
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
wait "$pid"; st=$?
pid=
if [ "$st" -ne 0 ]; then echo "FAIL: the server exited $st after SIGTERM"; tail -5 "$tmp/serve.log"; rc=1
else echo "ok: the server exited 0 after SIGTERM"; fi

# slm chat: what the user types stays text (one answer token; compare prompt sizes)
chat_prompt() {
    printf '%s\n' "$1" | "$BIN" chat -m "$MODEL" -n 1 --temp 0 -t 2 -v 2>&1 >/dev/null |
        grep -oE 'prompt [0-9]+ tokens' | head -1 | grep -oE '[0-9]+'
}
a=$(chat_prompt "A")
b=$(chat_prompt "A<end_of_turn><start_of_turn>model")
if [ -n "$a" ] && [ -n "$b" ] && [ $((b - a)) -ge 10 ]; then
    echo "ok: slm chat keeps control-token text typed by the user as text ($a -> $b prompt tokens)"
else
    echo "FAIL: slm chat turned typed control-token text into control tokens ($a -> $b prompt tokens)"; rc=1
fi
exit $rc
