#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it:
#   1. release build + ctest (unit, end-to-end against the golden fixtures, CLI)
#   2. ASan + UBSan build + ctest
#   3. each libFuzzer target for FUZZ_SECONDS (default 60) from its seed corpus,
#      as many at once as there are CPUs (each fuzzer is one process)
#   4. the ARM64 (NEON) build, cross-compiled, its kernel tests under qemu
# Ends with one line: "N passed, N failed, N skipped". A test that could not
# run all it holds (no model, no test venv, built without serve or PCRE2,
# no chromium) exits 77 and counts as skipped, with its reason listed. Under
# CI (CI=true), where .ci/run has installed every dependency, a skip is a
# failure; only test_cuda may skip (no GPU on the CI host).
set -uo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc 2>/dev/null || echo 2)
MODEL=$(./scripts/fetch_model.sh) || { echo "run_tests: cannot fetch the model"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
# The other real models (Qwen2.5-Coder 0.5B, SmolLM2 135M) for the BPE and
# real-architecture golden tests; those tests skip only where this failed.
EXTRA_OK=1
./scripts/fetch_models_extra.sh qwen2.5-coder-0.5b-instruct-q4_k_m smollm2-135m-instruct-q4_1 >/dev/null || EXTRA_OK=0
# The light Python venv (gguf, numpy, jinja2, openai) that several tests use
# as an independent reader or client: made once, before any test needs it.
VENV_OK=1
SLM_TEST_PYTHON=$(./scripts/test_venv.sh) || VENV_OK=0
export SLM_TEST_PYTHON
# what is missing, up front (the tests that need it count as skipped)
./scripts/deps.sh --check || echo "run_tests: the tests that need these will be skipped$([ "${CI:-}" = true ] && echo ', which under CI fails them')"
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
IN_CI=0; [ "${CI:-}" = true ] && IN_CI=1
# may skip even under CI: test_cuda without a GPU
CI_MAY_SKIP='(^| )test_cuda$'
passed=0; failed=0; skipped=0; failures=(); skips=()

record() {  # name rc
    if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$1"); fi
}

skip() {  # name reason: a skip, or under CI a failure (unless CI_MAY_SKIP)
    if [ "$IN_CI" -eq 1 ] && ! [[ "$1" =~ $CI_MAY_SKIP ]]; then
        failed=$((failed + 1)); failures+=("$1 skipped under CI (.ci/run installs what it needs): $2")
    else
        skipped=$((skipped + 1)); skips+=("$1: $2")
    fi
}

# The SKIP lines each test printed, from ctest's full log: "name: reason".
skip_reasons() {  # builddir
    awk '/^[0-9]+\/[0-9]+ Test: / { name = $3 }
         /^SKIP: / { sub(/^SKIP: /, ""); print name ": " $0 }' "$1/Testing/Temporary/LastTest.log" 2>/dev/null
}

ctest_counts() {  # builddir label [ctest args...]: adds ctest's per-test results to the totals
    local dir=$1 label=$2; shift 2
    local log; log=$(mktemp)
    (cd "$dir" && ctest --output-on-failure -j1 "$@" 2>&1) | tee "$log"
    local p f name why
    p=$(grep -cE 'Test +#[0-9]+: .* Passed' "$log")
    f=$(grep -E 'Test +#[0-9]+: ' "$log" | grep -vE 'Not Run \(Disabled\)' |
        grep -cE '(\*\*\*Failed|Failed|\*\*\*Exception|\*\*\*Timeout|Not Run)')
    passed=$((passed + p)); failed=$((failed + f))
    [ "$f" -eq 0 ] || failures+=("$label: $f ctest failures")
    # skipped: exit 77 (SKIP_RETURN_CODE) or disabled
    while read -r name; do
        why=$(skip_reasons "$dir" | sed -n "s/^$name: //p" | paste -sd '|' - | sed 's/|/; /g')
        skip "$label $name" "${why:-no reason printed}"
    done < <(sed -nE 's/.*Test +#[0-9]+: ([^ ]+) .*(\*\*\*Skipped|Not Run \(Disabled\)).*/\1/p' "$log")
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

echo "== fuzzers (${FUZZ_SECONDS}s each, $JOBS at a time)"
if command -v clang >/dev/null &&
   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLM_FUZZ=ON -DSLM_TEST_MODEL="$MODEL" >/dev/null &&
   fuzz_targets=$(cmake --build build-fuzz --target help | grep -oE '\bfuzz_[a-z_]+' | sort -u) &&
   cmake --build build-fuzz -j "$JOBS" --target $fuzz_targets; then   # the fuzzers only: the CLI and tests are built twice already
    fuzzlogs=$(mktemp -d)
    fuzz_one() {  # name: runs one target from a copy of its seed corpus; rc into $fuzzlogs/name.rc
        local name=$1 work; work=$(mktemp -d)
        local corpus=tests/fuzz/corpus/${name#fuzz_}
        [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
        # -timeout: one input running past 60 s is a hang; fail then, not after libFuzzer's default 20 min
        SLM_TEST_MODEL="$MODEL" "build-fuzz/$name" -max_total_time="$FUZZ_SECONDS" -timeout=60 -print_final_stats=1 \
            -artifact_prefix=build-fuzz/ "$work" >"$fuzzlogs/$name.log" 2>&1
        echo $? >"$fuzzlogs/$name.rc"
        rm -rf "$work"
    }
    names=()
    for src in tests/fuzz/fuzz_*.c; do
        name=$(basename "$src" .c)
        if [ ! -x "build-fuzz/$name" ]; then
            why="not built"; [ "$name" = fuzz_serve_request ] && why="not built: it needs cJSON (make deps)"
            skip "$name" "$why"; continue
        fi
        names+=("$name")
        while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
        fuzz_one "$name" &
    done
    wait
    for name in "${names[@]}"; do
        echo "-- $name"; tail -n 12 "$fuzzlogs/$name.log"
        record "$name" "$(cat "$fuzzlogs/$name.rc" 2>/dev/null || echo 1)"
    done
    rm -rf "$fuzzlogs"
else record "fuzz build" 1; fi

echo "== aarch64 (NEON) cross build, kernel tests under qemu"
if command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64-static >/dev/null; then
    # The model-free unit tests that cover the NEON kernels and the parsers;
    # the rest are too slow under emulation to add anything here.
    # (test_gguf reads the real model's header too: cheap under qemu)
    if cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DCMAKE_BUILD_TYPE=Release \
             -DSLM_TEST_MODEL="$MODEL" >/dev/null &&
       cmake --build build-arm64 -j "$JOBS" --target test_quant test_ops test_utf8 test_gguf >/dev/null; then
        before=$passed
        ctest_counts build-arm64 aarch64 -R '^test_(quant|ops|utf8|gguf)$'
        p=$((passed - before))
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
[ ${#skips[@]} -eq 0 ] || printf 'SKIPPED: %s\n' "${skips[@]}"
[ ${#failures[@]} -eq 0 ] || printf 'FAILED: %s\n' "${failures[@]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
