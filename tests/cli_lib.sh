# shellcheck shell=bash
# Sourced (never run) by the shell tests tests/cli_*.sh; CMakeLists.txt leaves
# it out of the test list. It sets up what every script starts with:
#   BIN (the slm binary, from SLM_BIN, required), MODEL (SLM_TEST_MODEL or
#   empty), HERE (this folder), tmp (a scratch folder removed at exit, with
#   any server serve_start left running), the counters n, fails, skipped;
# and the helpers below. A script ends with `finish "its summary line"`:
# exit 1 when a check failed, else 77 (ctest: skipped) when a part was
# skipped, else 0.
set -u
BIN=${SLM_BIN:?SLM_BIN must name the slm binary}
MODEL=${SLM_TEST_MODEL:-}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fails=0; n=0; skipped=0
tmp=$(mktemp -d)
cli_servers=()  # pids of the servers serve_start started and nobody reaped yet
cli_cleanup() {
    local p
    for p in "${cli_servers[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cli_cleanup EXIT

fail() { fails=$((fails + 1)); echo "FAIL: $*"; }

have_model() { [ -n "$MODEL" ] && [ -f "$MODEL" ]; }
# need_model [message]: the whole script needs the model; without it, skip (77)
need_model() {
    have_model || { echo "${1:-SKIP: no model (set SLM_TEST_MODEL)}"; exit 77; }
}
# skip_part reason: a part did not run; the script will end as skipped
skip_part() { echo "SKIP: $*"; skipped=1; }

# need_serve [message]: skip (77) when slm was built without the server
need_serve() {
    if "$BIN" --help | grep -q '^  serve.*not in this build'; then
        echo "${1:-SKIP: slm built without serve (libmicrohttpd, cJSON: make deps)}"; exit 77
    fi
}

# expect want_rc pattern -- command...: the command exits want_rc and its
# stdout or stderr matches the (extended, case-insensitive) pattern
expect() {
    local want=$1 pat=$2; shift 3
    n=$((n + 1))
    "$@" >"$tmp/out" 2>"$tmp/err" </dev/null; local rc=$?
    if [ "$rc" -ne "$want" ] || ! grep -qiE -- "$pat" "$tmp/err" "$tmp/out"; then
        fail "$* -> rc $rc (want $want), output:"; head -5 "$tmp/err" "$tmp/out"
    fi
}

# ok description command...: the command succeeds (its log shown when not)
ok() {
    local what=$1; shift
    n=$((n + 1))
    if ! "$@" >"$tmp/log" 2>&1; then
        fail "$what"; tail -20 "$tmp/log"
    fi
}

# no_output path: neither the file nor a temporary of it was left behind
no_output() {
    n=$((n + 1))
    if [ -e "$1" ] || compgen -G "$1.tmp*" >/dev/null; then fail "$1 or a temporary of it was left behind"; fi
}

# serve_start name args...: `slm serve` on the model and a free port, in the
# background; its log is $tmp/name.log. Call it directly (not in $(...)).
serve_start() {
    local name=$1; shift
    "$BIN" serve -m "$MODEL" --port 0 "$@" 2>"$tmp/$name.log" &
    echo $! > "$tmp/$name.pid"
    cli_servers+=("$!")
}
serve_pid() { cat "$tmp/$1.pid"; }
# serve_port name: prints the port once the server listens; fails (with its
# log on stderr) when it exits or has not listened within a minute
serve_port() {
    local port
    for _ in $(seq 1 600); do
        port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$tmp/$1.log" | sed 's/.*://')
        [ -n "$port" ] && { echo "$port"; return 0; }
        kill -0 "$(serve_pid "$1")" 2>/dev/null || break
        sleep 0.1
    done
    echo "FAIL: server $1 did not start:" >&2; cat "$tmp/$1.log" >&2
    return 1
}
# serve_wait name [seconds]: waits for the server to end (the caller or the
# test sent the signal) and returns its exit status; with a time limit, a
# server still running after it is killed (status 137)
serve_wait() {
    local pid p st left=()
    pid=$(serve_pid "$1")
    if [ $# -gt 1 ]; then
        for _ in $(seq 1 $(($2 * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && { echo "server $1 still running after $2 s: killed"; kill -KILL "$pid"; }
    fi
    wait "$pid"; st=$?
    for p in "${cli_servers[@]}"; do [ "$p" = "$pid" ] || left+=("$p"); done
    cli_servers=("${left[@]}")
    return $st
}

# finish line: prints the summary line and exits 1 / 77 / 0 (see the top)
finish() {
    echo "$*"
    [ "$fails" -eq 0 ] || exit 1
    # 77: ctest reports the test as skipped, not passed, when a part did not run
    [ "$skipped" -eq 0 ] || exit 77
    exit 0
}
