#!/usr/bin/env bash
# slm quantize from the outside: bad input fails with a clear message, a
# non-zero exit and no output file (nor a temporary one); every mix writes a
# file the `gguf` Python package reads back with the metadata carried over,
# the documented type per tensor and values within a per-type error
# (tests/py/check_quantized.py); importance matrices in llama.cpp's layout
# are used, and mismatched ones refused. The inputs are written by the gguf
# package (tests/py/make_quantize_inputs.py). Without the test venv's python
# (scripts/test_venv.sh) only the cases that need no input file run.
# shellcheck source=tests/cli_lib.sh
. "$(dirname "$0")/cli_lib.sh"
PY=${SLM_TEST_PYTHON:-.cache/test-venv/bin/python}

expect 0 "usage: slm quantize" -- "$BIN" quantize --help
expect 0 "q4_k_m" -- "$BIN" quantize --help
expect 2 "give an input and an output" -- "$BIN" quantize
expect 2 "give --type" -- "$BIN" quantize a.gguf b.gguf
expect 2 "unknown option '--bogus'" -- "$BIN" quantize a.gguf b.gguf --type q4_0 --bogus
expect 2 "--type needs a value" -- "$BIN" quantize a.gguf b.gguf --type
expect 2 "-t expects an integer" -- "$BIN" quantize a.gguf b.gguf --type q4_0 -t 0
expect 2 "unexpected argument" -- "$BIN" quantize a.gguf b.gguf c.gguf --type q4_0
expect 1 "cannot open .*nope.gguf" -- "$BIN" quantize "$tmp/nope.gguf" "$tmp/o.gguf" --type q4_0
no_output "$tmp/o.gguf"
printf 'not a gguf file at all' > "$tmp/junk.gguf"
expect 1 "magic" -- "$BIN" quantize "$tmp/junk.gguf" "$tmp/o.gguf" --type q8_0
no_output "$tmp/o.gguf"

if [ -x "$PY" ] && "$PY" -c 'import gguf, numpy' 2>/dev/null; then
    "$PY" tests/py/make_quantize_inputs.py "$tmp/in" || { echo "FAIL: could not make the inputs"; exit 1; }
    tiny=$tmp/in/tiny.gguf
    expect 1 "unknown quantization type 'q9_z'.*q4_k_m" -- "$BIN" quantize "$tiny" "$tmp/o.gguf" --type q9_z
    no_output "$tmp/o.gguf"
    head -c 5000 "$tiny" > "$tmp/trunc.gguf"
    expect 1 "out of bounds|truncated" -- "$BIN" quantize "$tmp/trunc.gguf" "$tmp/o.gguf" --type q4_0
    no_output "$tmp/o.gguf"
    expect 1 "NaN or infinity" -- "$BIN" quantize "$tmp/in/tiny_nan.gguf" "$tmp/o.gguf" --type q4_0
    no_output "$tmp/o.gguf"
    expect 1 "cannot create" -- "$BIN" quantize "$tiny" "$tmp/no/such/dir/o.gguf" --type q4_0
    expect 1 "has 256 columns.*another model" -- "$BIN" quantize "$tiny" "$tmp/o.gguf" --type q4_k_m --imatrix "$tmp/in/imatrix_bad.gguf"
    no_output "$tmp/o.gguf"
    expect 1 "no entry for any tensor" -- "$BIN" quantize "$tiny" "$tmp/o.gguf" --type q4_k_m --imatrix "$tmp/in/imatrix_other.gguf"
    no_output "$tmp/o.gguf"
    expect 1 "imatrix.*unexpected tensor" -- "$BIN" quantize "$tiny" "$tmp/o.gguf" --type q4_k_m --imatrix "$tiny"
    expect 1 "imatrix: cannot open" -- "$BIN" quantize "$tiny" "$tmp/o.gguf" --type q4_k_m --imatrix "$tmp/none.gguf"
    no_output "$tmp/o.gguf"

    # an existing output is replaced only by a complete new file
    cp "$tiny" "$tmp/keep.gguf"
    expect 1 "NaN" -- "$BIN" quantize "$tmp/in/tiny_nan.gguf" "$tmp/keep.gguf" --type q4_0
    n=$((n + 1)); cmp -s "$tiny" "$tmp/keep.gguf" || fail "a failed run changed the existing output file"

    for mix in q2_k q3_k_s q3_k_m q3_k_l q4_0 q4_1 q5_0 q5_1 q4_k_s q4_k_m q5_k_s q5_k_m q6_k q8_0 f16 bf16 f32; do
        expect 0 "bits per weight" -- "$BIN" quantize "$tiny" "$tmp/$mix.gguf" --type "$mix" -t 2
        n=$((n + 1))
        "$PY" tests/py/check_quantized.py "$tiny" "$tmp/$mix.gguf" "$mix" || fail "check_quantized $mix"
        rm -f "$tmp/$mix.gguf"
    done
    expect 0 "10 with importance weights" -- "$BIN" quantize "$tiny" "$tmp/im.gguf" --type Q4_K_M --imatrix "$tmp/in/imatrix.gguf"
    n=$((n + 1))
    "$PY" tests/py/check_quantized.py "$tiny" "$tmp/im.gguf" q4_k_m --imatrix "$tmp/in/imatrix.gguf" || fail "check_quantized with imatrix"
    # progress lines name each tensor and its type
    expect 0 "\[ *14/18\] blk.1.attn_v.weight +q6_K" -- "$BIN" quantize "$tiny" "$tmp/p.gguf" --type q4_k_m
else
    skip_part "no test venv python ($PY; scripts/test_venv.sh makes it): the file-based cases did not run"
fi

# the real model: quantized files load and generate (slow under ASan, so the
# light sanitizer run leaves it to the release run: not a skip)
if [ -n "${SLM_TEST_LIGHT:-}" ]; then
    echo "note: SLM_TEST_LIGHT set: the real-model case runs in the release build only"
elif have_model; then
    expect 0 "bits per weight" -- "$BIN" quantize "$MODEL" "$tmp/m.gguf" --type q8_0 -q
    expect 0 "generated 4 tokens" -- "$BIN" run -m "$tmp/m.gguf" -p "The capital of France is" -n 4 --temp 0
    rm -f "$tmp/m.gguf"
else
    skip_part "no model (set SLM_TEST_MODEL): the real-model case did not run"
fi
finish "$((n - fails)) passed, $fails failed"
