#!/usr/bin/env bash
# slm serve's chat page in headless Chromium (Debian package `chromium`):
# the page sends a prompt given in its URL, streams the answer, and the
# test checks the answer arrived and saves a screenshot in the build dir
# (serve_page.png). Skips (77) without the model, the serve command or chromium.
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"
need_model
need_serve
command -v chromium >/dev/null || { echo "SKIP: chromium not installed (make deps)"; exit 77; }
OUT=$(cd "$(dirname "$BIN")" && pwd)/serve_page.png
serve_start page --slots 2 -c 1024 -t 2
port=$(serve_port page) || exit 1
rm -f "$OUT"
python3 "$HERE/serve_page_check.py" "http://127.0.0.1:$port/?q=Write%20a%20short%20poem%20about%20the%20sea." "$OUT"
rc=$?
[ -s "$OUT" ] || { echo "FAIL: no screenshot at $OUT"; rc=1; }
exit $rc
