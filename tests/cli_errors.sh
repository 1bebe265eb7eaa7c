#!/usr/bin/env bash
# Bad input to the CLI: every case must exit non-zero with a message that
# names the problem, and never crash (exit codes >= 128 are signals).
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"

expect 2 "unknown command" -- "$BIN" frobnicate
expect 2 "usage" -- "$BIN"
expect 0 "usage: slm run" -- "$BIN" run --help
expect 0 "usage: slm chat" -- "$BIN" chat --help
expect 0 "usage: slm info" -- "$BIN" info --help
expect 0 "^slm [0-9]" -- "$BIN" --version
expect 2 "unknown option '--bogus'" -- "$BIN" run --bogus -p hi
expect 2 "needs a value" -- "$BIN" run -p
expect 2 "-n expects an integer" -- "$BIN" run -p hi -n abc
expect 2 "--temp expects a number" -- "$BIN" run -p hi --temp nan
expect 2 "give a prompt" -- "$BIN" run
expect 1 "cannot load .*nope.gguf" -- "$BIN" run -m "$tmp/nope.gguf" -p hi
printf 'not a gguf file at all' > "$tmp/junk.gguf"
expect 1 "magic" -- "$BIN" run -m "$tmp/junk.gguf" -p hi
expect 1 "magic" -- "$BIN" info "$tmp/junk.gguf"
: > "$tmp/empty.gguf"
expect 1 "truncated" -- "$BIN" info "$tmp/empty.gguf"

if have_model; then
    head -c 100000 "$MODEL" > "$tmp/trunc.gguf"
    expect 1 "truncated|out of bounds" -- "$BIN" run -m "$tmp/trunc.gguf" -p hi
    expect 1 "invalid UTF-8" -- "$BIN" run -m "$MODEL" -p $'caf\xc3 au lait' -n 1
    expect 1 "prompt has [0-9]+ tokens" -- "$BIN" run -m "$MODEL" -c 8 -p "one two three four five six seven eight nine ten" -n 1
    expect 2 "--ctx-size expects an integer" -- "$BIN" run -m "$MODEL" --ctx-size 0 -p hi
    expect 1 "cannot open .*nope.gbnf" -- "$BIN" run -m "$MODEL" --grammar-file "$tmp/nope.gbnf" -p hi -n 1
else
    skip_part "no model (set SLM_TEST_MODEL): the model-dependent CLI cases did not run"
fi
finish "$((n - fails)) passed, $fails failed"
