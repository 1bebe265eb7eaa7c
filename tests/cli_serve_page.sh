#!/usr/bin/env bash
# slm serve's chat page in headless Chromium (Debian package `chromium`):
# the page sends a prompt given in its URL, streams the answer, and the
# test checks the answer arrived and saves a screenshot in the build dir
# (serve_page.png). Skips (77) without the model, the serve command or chromium.
set -u
BIN=${SLM_BIN:?SLM_BIN must name the slm binary}
MODEL=${SLM_TEST_MODEL:-}
[ -n "$MODEL" ] && [ -f "$MODEL" ] || { echo "SKIP: no model (set SLM_TEST_MODEL)"; exit 77; }
"$BIN" --help | grep -q '^  serve.*not in this build' && { echo "SKIP: slm built without serve (libmicrohttpd, cJSON: make deps)"; exit 77; }
command -v chromium >/dev/null || { echo "SKIP: chromium not installed (make deps)"; exit 77; }
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(cd "$(dirname "$BIN")" && pwd)/serve_page.png
tmp=$(mktemp -d)
"$BIN" serve -m "$MODEL" --port 0 --slots 2 -c 1024 -t 2 2>"$tmp/log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
port=
for _ in $(seq 1 600); do
    port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$tmp/log" | sed 's/.*://')
    [ -n "$port" ] && break
    kill -0 $pid 2>/dev/null || { echo "FAIL: the server exited"; cat "$tmp/log"; exit 1; }
    sleep 0.1
done
[ -n "$port" ] || { echo "FAIL: the server did not start"; cat "$tmp/log"; exit 1; }
rm -f "$OUT"
python3 "$HERE/serve_page_check.py" "http://127.0.0.1:$port/?q=Write%20a%20short%20poem%20about%20the%20sea." "$OUT"
rc=$?
[ -s "$OUT" ] || { echo "FAIL: no screenshot at $OUT"; rc=1; }
exit $rc
