#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it:
#   1. release build + ctest (unit, end-to-end against the golden fixtures, CLI)
#   2. ASan + UBSan build + ctest
#   3. each libFuzzer target for FUZZ_SECONDS (default 60) from its seed corpus
#   4. the ARM64 (NEON) build, cross-compiled, its kernel tests under qemu
# Ends with one line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc 2>/dev/null || echo 2)
MODEL=$(./scripts/fetch_model.sh) || { echo "run_tests: cannot fetch the model"; echo "0 passed, 1 failed"; exit 1; }
# The other real models (Qwen2.5-Coder 0.5B, SmolLM2 135M) for the BPE and
# real-architecture golden tests; those tests skip only where this failed.
EXTRA_OK=1
./scripts/fetch_models_extra.sh qwen2.5-coder-0.5b-instruct-q4_k_m smollm2-135m-instruct-q4_1 >/dev/null || EXTRA_OK=0
# The light Python venv (gguf, numpy, jinja2, openai) that several tests use
# as an independent reader or client: made once, before any test needs it.
VENV_OK=1
SLM_TEST_PYTHON=$(./scripts/test_venv.sh) || VENV_OK=0
export SLM_TEST_PYTHON
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
passed=0; failed=0; failures=()

record() {  # name rc
    if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$1"); fi
}

ctest_counts() {  # builddir label: adds ctest's per-test results to the totals
    local log; log=$(mktemp)
    (cd "$1" && ctest --output-on-failure -j1 2>&1) | tee "$log"
    local p f
    p=$(grep -cE 'Test +#[0-9]+: .* Passed' "$log")
    f=$(grep -cE 'Test +#[0-9]+: .* (\*\*\*Failed|Failed|\*\*\*Exception|\*\*\*Timeout|Not Run)' "$log")
    passed=$((passed + p)); failed=$((failed + f))
    [ "$f" -eq 0 ] || failures+=("$2: $f ctest failures")
    rm -f "$log"
}

echo "== release build"
if cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSLM_TEST_MODEL="$MODEL" >/dev/null && cmake --build build -j "$JOBS"; then
    ctest_counts build release
else record "release build" 1; fi

echo "== ASan + UBSan build"
if cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLM_SANITIZE=ON -DSLM_TEST_MODEL="$MODEL" >/dev/null &&
   cmake --build build-asan -j "$JOBS"; then
    SLM_TEST_LIGHT=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 ctest_counts build-asan sanitizers
else record "sanitizer build" 1; fi

echo "== fuzzers (${FUZZ_SECONDS}s each)"
if command -v clang >/dev/null &&
   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLM_FUZZ=ON -DSLM_TEST_MODEL="$MODEL" >/dev/null &&
   cmake --build build-fuzz -j "$JOBS"; then
    for fz in build-fuzz/fuzz_*; do
        name=$(basename "$fz"); corpus=tests/fuzz/corpus/${name#fuzz_}
        work=$(mktemp -d); [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
        echo "-- $name"
        SLM_TEST_MODEL="$MODEL" "$fz" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 -artifact_prefix=build-fuzz/ "$work" 2>&1 | tail -n 12
        record "$name" "${PIPESTATUS[0]}"
        rm -rf "$work"
    done
else record "fuzz build" 1; fi

echo "== aarch64 (NEON) cross build, kernel tests under qemu"
if command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64-static >/dev/null; then
    # The model-free unit tests that cover the NEON kernels and the parsers;
    # the rest are too slow under emulation to add anything here.
    if cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DCMAKE_BUILD_TYPE=Release >/dev/null &&
       cmake --build build-arm64 -j "$JOBS" --target test_quant test_ops test_utf8 test_gguf >/dev/null; then
        (cd build-arm64 && SLM_TEST_MODEL= ctest --output-on-failure -R '^test_(quant|ops|utf8|gguf)$' 2>&1) | tee build-arm64/ctest.log
        p=$(grep -cE 'Test +#[0-9]+: .* Passed' build-arm64/ctest.log); f=$(grep -cE 'Test +#[0-9]+: .* (Failed|Exception|Timeout|Not Run)' build-arm64/ctest.log)
        passed=$((passed + p)); failed=$((failed + f)); [ "$f" -eq 0 ] || failures+=("aarch64: $f failures")
        [ "$p" -eq 4 ] || { failed=$((failed + 1)); failures+=("aarch64: expected 4 passing tests, got $p"); }
    else record "aarch64 build" 1; fi
    # The same kernels built for ARMv8.2 with the dot-product extension (SDOT
    # path); qemu's default CPU has it.
    if cmake -S . -B build-arm64-dotprod -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DCMAKE_BUILD_TYPE=Release \
             -DCMAKE_C_FLAGS=-march=armv8.2-a+dotprod >/dev/null &&
       cmake --build build-arm64-dotprod -j "$JOBS" --target test_quant >/dev/null; then
        echo "-- test_quant (armv8.2-a+dotprod)"
        (cd build-arm64-dotprod && SLM_TEST_MODEL= ctest --output-on-failure -R '^test_quant$' 2>&1 | tail -n 4)
        record "aarch64 dotprod test_quant" "${PIPESTATUS[0]}"
    else record "aarch64 dotprod build" 1; fi
else record "aarch64 toolchain (gcc-aarch64-linux-gnu, qemu-user-static) missing" 1; fi

[ "$VENV_OK" -eq 1 ] || record "creating the test venv (scripts/test_venv.sh)" 1
[ "$EXTRA_OK" -eq 1 ] || record "fetching the extra models (scripts/fetch_models_extra.sh)" 1
[ ${#failures[@]} -eq 0 ] || printf 'FAILED: %s\n' "${failures[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
