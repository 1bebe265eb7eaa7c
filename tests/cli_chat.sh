#!/usr/bin/env bash
# slm chat end to end on the real model: two turns rendered through the chat
# template, the second reusing the KV cache of the first; /reset starts over.
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"
need_model

printf 'Hello there.\nWhat did I just say?\n/reset\nHello there.\n' |
    "$BIN" chat -m "$MODEL" -n 8 --temp 0 -t 2 -v >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -ne 0 ]; then fail "chat exited $rc"; cat "$tmp/err"; fi
# three answers; the first turn and the one after /reset reuse nothing, the second reuses the first turn
mapfile -t reuse < <(grep -oE '[0-9]+ cached tokens reused' "$tmp/err" | cut -d' ' -f1)
if [ "${#reuse[@]}" -ne 3 ] || [ "${reuse[0]}" -ne 0 ] || [ "${reuse[1]}" -le 5 ] || [ "${reuse[2]}" -ne 0 ]; then
    fail "cache reuse per turn: ${reuse[*]:-none}"; cat "$tmp/err"
fi
# greedy: a fresh chat's first answer starts the output, and /reset gives it again at the end
printf 'Hello there.\n' | "$BIN" chat -m "$MODEL" -n 8 --temp 0 -t 2 >"$tmp/one" 2>/dev/null
one=$(cat "$tmp/one"; echo x); all=$(cat "$tmp/out"; echo x)
one=${one%x}; all=${all%x}
if [ -z "$one" ] || [ "${all:0:${#one}}" != "$one" ] || [ "${all: -${#one}}" != "$one" ]; then
    fail "answers after /reset differ from a fresh chat:"; cat "$tmp/one"; echo ---; cat "$tmp/out"
fi
finish "$fails failed"
