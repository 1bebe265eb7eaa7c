#!/usr/bin/env bash
# slm against llama.cpp on the same GGUF file, on this machine.
#
#   bench/compare_llamacpp.sh [options]
#
#   -m FILE          model (default: the file scripts/fetch_model.sh prints)
#   -t "1 2"         thread counts (default "1 2")
#   -p N             prompt length of the pp test (default 512; 0: none)
#   -n N             generation length of the tg test (default 128; 0: none)
#   -r N             timed runs per engine invocation (default 3)
#   -R N             interleaved rounds (default 3): every round runs, for each
#                    thread count, slm tg, llama tg, slm pp, llama pp
#   -o DIR           where the raw JSON and results.md go
#                    (default .cache/bench/compare-<UTC time>)
#   --llama-version V   llama-cpp-python sdist that carries llama.cpp (default 0.3.36)
#   --build-only     build llama.cpp, slm and membw, measure nothing
#   -j N             build jobs (default 2)
#
# What it does:
#   1. builds llama.cpp's llama-bench ONCE into .cache/llama.cpp/ (git-ignored)
#      from the source that the llama-cpp-python sdist on PyPI vendors; later
#      runs reuse it (an up-to-date incremental build is a no-op);
#   2. rebuilds slm from the working tree (.cache/bench/build-slm, Release)
#      and bench/membw.c (-O2 -march=native);
#   3. measures memory bandwidth, then both engines, interleaved;
#   4. prints a table: tokens/s of both, the ratio slm/llama.cpp, and for tg
#      the share of the bandwidth roofline:
#        bytes of weights read per token x tokens/s / bandwidth(threads)
#      where bytes per token = every blk.* tensor + the output head
#      (output.weight, or token_embd.weight when the head is tied) +
#      output_norm, read from `slm info`.
# Every result names the CPU (model name, family/model number, AVX-512 and
# AMX flags). llama.cpp 0c1e570's own weight repacking (its CPU "extra"
# buffer types) segfaults in prompt processing on some Intel hosts with AMX
# (llama-bench -p 512 exits 139); when a llama-bench run fails, it is run
# again with `--repack 0`, that test keeps `--repack 0` for the later rounds,
# and the table says so.
# Exits non-zero, with a message, when a download, build or run fails.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
LLAMA_VERSION=0.3.36
THREADS="1 2"
NP=512
NG=128
REPS=3
ROUNDS=3
MODEL=""
OUT=""
BUILD_ONLY=0
JOBS=2

need_val() { [ $# -ge 2 ] || { echo "compare_llamacpp: $1 needs a value" >&2; exit 2; }; }
is_uint() { case "$1" in ''|*[!0-9]*) return 1;; *) return 0;; esac; }

while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0;;
        -m) need_val "$@"; MODEL=$2; shift 2;;
        -t) need_val "$@"; THREADS=$(echo "$2" | tr ',' ' '); shift 2;;
        -p) need_val "$@"; NP=$2; shift 2;;
        -n) need_val "$@"; NG=$2; shift 2;;
        -r) need_val "$@"; REPS=$2; shift 2;;
        -R) need_val "$@"; ROUNDS=$2; shift 2;;
        -o) need_val "$@"; OUT=$2; shift 2;;
        -j) need_val "$@"; JOBS=$2; shift 2;;
        --llama-version) need_val "$@"; LLAMA_VERSION=$2; shift 2;;
        --build-only) BUILD_ONLY=1; shift;;
        *) echo "compare_llamacpp: unknown option '$1' (see --help)" >&2; exit 2;;
    esac
done
for v in "$NP" "$NG" "$REPS" "$ROUNDS" "$JOBS" $THREADS; do
    is_uint "$v" || { echo "compare_llamacpp: '$v' is not a non-negative integer" >&2; exit 2; }
done
[ "$REPS" -ge 1 ] && [ "$ROUNDS" -ge 1 ] || { echo "compare_llamacpp: -r and -R must be >= 1" >&2; exit 2; }

command -v cmake >/dev/null || die "cmake not found"
command -v python3 >/dev/null || die "python3 not found (needed for pip and the JSON)"
CC=${CC:-cc}
command -v "$CC" >/dev/null || die "C compiler '$CC' not found"

# ---- 1. llama.cpp ------------------------------------------------------------
LLAMA_DIR=$ROOT/.cache/llama.cpp
LSRC=$LLAMA_DIR/src-$LLAMA_VERSION
LBUILD=$LLAMA_DIR/build-$LLAMA_VERSION
LBENCH=$LBUILD/bin/llama-bench
LLOG=$LLAMA_DIR/build-$LLAMA_VERSION.log
LLAMA_CMAKE_FLAGS=(-DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF
    -DGGML_OPENMP=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON
    -DLLAMA_BUILD_SERVER=OFF -DBUILD_SHARED_LIBS=OFF)

mkdir -p "$LLAMA_DIR/dl"
SDIST=$LLAMA_DIR/dl/llama_cpp_python-$LLAMA_VERSION.tar.gz
if [ ! -d "$LSRC/vendor/llama.cpp" ]; then
    if [ ! -f "$SDIST" ]; then
        echo "compare_llamacpp: downloading the llama-cpp-python $LLAMA_VERSION sdist (source of llama.cpp) ..." >&2
        python3 -m pip download --no-deps --no-binary :all: \
            "llama-cpp-python==$LLAMA_VERSION" -d "$LLAMA_DIR/dl" >"$LLAMA_DIR/dl/pip.log" 2>&1 \
            || { tail -20 "$LLAMA_DIR/dl/pip.log" >&2; die "pip download of llama-cpp-python==$LLAMA_VERSION failed (log: $LLAMA_DIR/dl/pip.log)"; }
        [ -f "$SDIST" ] || die "pip did not leave $SDIST"
    fi
    rm -rf "$LSRC.tmp" && mkdir -p "$LSRC.tmp"
    tar xzf "$SDIST" -C "$LSRC.tmp" --strip-components=1 || die "cannot unpack $SDIST"
    [ -f "$LSRC.tmp/vendor/llama.cpp/CMakeLists.txt" ] || die "$SDIST carries no vendor/llama.cpp"
    mv "$LSRC.tmp" "$LSRC"
fi
# The commit the sdist vendors: its git submodule HEAD (the sdist ships .git/modules).
LLAMA_COMMIT=unknown
if [ -f "$LSRC/.git/modules/vendor/llama.cpp/HEAD" ]; then
    LLAMA_COMMIT=$(head -c 40 "$LSRC/.git/modules/vendor/llama.cpp/HEAD")
elif command -v git >/dev/null; then
    LLAMA_COMMIT=$(git -C "$LSRC/vendor/llama.cpp" rev-parse HEAD 2>/dev/null || echo unknown)
fi
LLAMA_COMMIT_DATE=$(git -C "$LSRC/vendor/llama.cpp" log -1 --format=%cI 2>/dev/null || echo unknown)

if [ ! -f "$LBUILD/CMakeCache.txt" ]; then
    echo "compare_llamacpp: configuring llama.cpp ($LLAMA_COMMIT) in $LBUILD ..." >&2
    cmake -S "$LSRC/vendor/llama.cpp" -B "$LBUILD" "${LLAMA_CMAKE_FLAGS[@]}" >"$LLOG" 2>&1 \
        || { tail -30 "$LLOG" >&2; rm -f "$LBUILD/CMakeCache.txt"; die "llama.cpp cmake configure failed (log: $LLOG)"; }
fi
if [ ! -x "$LBENCH" ]; then
    echo "compare_llamacpp: building llama-bench with -j$JOBS (once; takes a while) ..." >&2
fi
cmake --build "$LBUILD" -j "$JOBS" --target llama-bench >>"$LLOG" 2>&1 \
    || { tail -30 "$LLOG" >&2; die "llama.cpp build failed (log: $LLOG)"; }
[ -x "$LBENCH" ] || die "llama.cpp build finished but $LBENCH is missing"
cat >"$LBUILD/SLM_BENCH_INFO" <<EOF
llama-cpp-python $LLAMA_VERSION (PyPI sdist)
llama.cpp commit $LLAMA_COMMIT ($LLAMA_COMMIT_DATE)
cmake ${LLAMA_CMAKE_FLAGS[*]}
EOF

# ---- 2. slm and membw -----------------------------------------------------
SBUILD=${SLM_BUILD_DIR:-$ROOT/.cache/bench/build-slm}
SLOG=$ROOT/.cache/bench/build-slm.log
mkdir -p "$ROOT/.cache/bench"
echo "compare_llamacpp: building slm from the working tree in $SBUILD ..." >&2
{ cmake -S "$ROOT" -B "$SBUILD" -DCMAKE_BUILD_TYPE=Release && cmake --build "$SBUILD" -j "$JOBS" --target slm; } \
    >"$SLOG" 2>&1 || { tail -30 "$SLOG" >&2; die "slm build failed (log: $SLOG)"; }
SLM=$SBUILD/slm
# the revision the binary was built from (+dirty: tracked files differ from it)
SLM_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then SLM_REV="$SLM_REV+dirty"; fi
MEMBW=$ROOT/.cache/bench/membw
"$CC" -std=c11 -O2 -march=native -pthread "$ROOT/bench/membw.c" -o "$MEMBW" \
    || die "building bench/membw.c failed"

if [ "$BUILD_ONLY" = 1 ]; then
    echo "llama-bench: $LBENCH"
    echo "slm:         $SLM"
    echo "membw:       $MEMBW"
    exit 0
fi

# ---- 3. measure -------------------------------------------------------------
if [ -z "$MODEL" ]; then
    MODEL=$("$ROOT/scripts/fetch_model.sh") || die "scripts/fetch_model.sh failed; pass -m FILE"
fi
[ -f "$MODEL" ] || die "model $MODEL not found"
[ -n "$OUT" ] || OUT=$ROOT/.cache/bench/compare-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"

# bytes of weights read per decoded token
"$SLM" info -m "$MODEL" >"$OUT/tensors.txt" || die "slm info failed on $MODEL"
BYTES_PER_TOKEN=$(awk '
    $1 ~ /^[0-9]+$/ && NF >= 6 {
        name = $2; b = $NF
        if (name ~ /^blk\./ || name == "output_norm.weight") layers += b
        else if (name == "output.weight") head = b
        else if (name == "token_embd.weight") embd = b
    }
    END { if (head == 0) head = embd; printf "%.0f\n", layers + head }' "$OUT/tensors.txt")
[ "${BYTES_PER_TOKEN:-0}" -gt 0 ] || die "could not read the tensor table of $MODEL"

MT=$(echo $THREADS | tr ' ' ',')
: >"$OUT/membw.txt"

run_slm() {   # name threads p n
    "$SLM" bench -m "$MODEL" -t "$2" -p "$3" -n "$4" -r "$REPS" -o json >"$OUT/$1.json" 2>>"$OUT/slm.stderr" \
        || die "slm bench failed (-t $2 -p $3 -n $4); see $OUT/slm.stderr"
}
# tests (e.g. "pp512 t2") that run with --repack 0 after their first run failed
: >"$OUT/llama-norepack.txt"
run_llama() {   # name threads p n
    local key="p$3 n$4 t$2" rc=0
    if ! grep -qxF "$key" "$OUT/llama-norepack.txt"; then
        "$LBENCH" -m "$MODEL" -t "$2" -p "$3" -n "$4" -r "$REPS" -o json >"$OUT/$1.json" 2>>"$OUT/llama.stderr" && return 0
        rc=$?
        echo "compare_llamacpp: llama-bench -t $2 -p $3 -n $4 failed (exit $rc$([ $rc -eq 139 ] && echo ': segfault')); again with --repack 0" >&2
        echo "$key" >>"$OUT/llama-norepack.txt"
    fi
    "$LBENCH" -m "$MODEL" -t "$2" -p "$3" -n "$4" -r "$REPS" --repack 0 -o json >"$OUT/$1.json" 2>>"$OUT/llama.stderr" \
        || die "llama-bench failed (-t $2 -p $3 -n $4, also with --repack 0); see $OUT/llama.stderr"
}

for round in $(seq 1 "$ROUNDS"); do
    for t in $THREADS; do
        echo "compare_llamacpp: round $round/$ROUNDS, $t thread(s)" >&2
        if [ "$t" = "$(echo $THREADS | cut -d' ' -f1)" ]; then
            # bandwidth once per round too: the table uses the best of all rounds
            "$MEMBW" -t "$MT" -r 5 | tee -a "$OUT/membw.txt" >&2 || die "membw failed"
        fi
        if [ "$NG" -gt 0 ]; then
            run_slm "slm-tg-t$t-r$round" "$t" 0 "$NG"
            run_llama "llama-tg-t$t-r$round" "$t" 0 "$NG"
        fi
        if [ "$NP" -gt 0 ]; then
            run_slm "slm-pp-t$t-r$round" "$t" "$NP" 0
            run_llama "llama-pp-t$t-r$round" "$t" "$NP" 0
        fi
    done
done

# ---- 4. the table -------------------------------------------------------------
CPU_NAME=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
# the name alone can be generic ("Intel(R) Xeon(R) Processor" in VMs): add the
# family/model numbers and the flags that decide the kernels
CPU_FAM=$(sed -n 's/^cpu family[[:space:]]*: *//p' /proc/cpuinfo 2>/dev/null | head -1)
CPU_MOD=$(sed -n 's/^model[[:space:]]*: *//p' /proc/cpuinfo 2>/dev/null | head -1)
CPU_FLAGS=$(sed -n 's/^\(flags\|Features\)[[:space:]]*: *//p' /proc/cpuinfo 2>/dev/null | head -1 | tr ' ' '\n' |
    grep -xE 'avx2|avx512f|avx512_vnni|avx512_bf16|amx_tile|amx_int8|amx_bf16|asimddp|sve' | paste -sd ' ' -)
case " $CPU_FLAGS " in *" amx_int8 "*) CPU_AMX=yes;; *) CPU_AMX=no;; esac
[ -n "$CPU_FAM" ] && CPU_NAME="$CPU_NAME (family $CPU_FAM, model $CPU_MOD; AMX: $CPU_AMX; flags: ${CPU_FLAGS:-none of note})"
echo "$CPU_NAME" >"$OUT/cpu.txt"

OUT="$OUT" BYTES_PER_TOKEN="$BYTES_PER_TOKEN" MODEL="$MODEL" CPU_NAME="$CPU_NAME" NCPU="$(nproc)" \
LLAMA_VERSION="$LLAMA_VERSION" LLAMA_COMMIT="$LLAMA_COMMIT" SLM_REV="$SLM_REV" \
KERNELS="$("$SLM" --version | sed -n 's/.*CPU kernels: \([^)]*\)).*/\1/p')" \
REPS="$REPS" ROUNDS="$ROUNDS" python3 - <<'PY' | tee "$OUT/results.md"
import glob, json, math, os, re, statistics, time

out = os.environ["OUT"]
bpt = int(os.environ["BYTES_PER_TOKEN"])
bw = {}        # threads -> best GB/s over every membw run
for line in open(os.path.join(out, "membw.txt")):
    m = re.search(r"threads=(\d+) .*best_gbs=([\d.]+)", line)
    if m:
        t, g = int(m.group(1)), float(m.group(2))
        bw[t] = max(bw.get(t, 0.0), g)

runs = {}   # (engine, test, threads) -> {round: [t/s samples]}
for path in sorted(glob.glob(os.path.join(out, "*-r*.json"))):
    base = os.path.basename(path)[:-5]
    engine, rnd = base.split("-")[0], int(base.rsplit("-r", 1)[1])
    with open(path) as f:
        rows = json.load(f)
    for r in rows:
        test = "pp%d" % r["n_prompt"] if r["n_prompt"] > 0 else "tg%d" % r["n_gen"]
        runs.setdefault((engine, test, r["n_threads"]), {}).setdefault(rnd, []).extend(r["samples_ts"])

def flat(k):
    return [x for v in runs.get(k, {}).values() for x in v]

def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))

tests = sorted({(k[1], k[2]) for k in runs}, key=lambda x: (x[0][:2] != "tg", x[1], x[0]))
print("## slm vs llama.cpp, %s" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
print()
print("- CPU: %s, %s CPUs; kernels: slm `%s`" % (os.environ["CPU_NAME"], os.environ["NCPU"], os.environ["KERNELS"]))
print("- model: `%s`" % os.path.basename(os.environ["MODEL"]))
print("- slm: %s; llama.cpp: %s (llama-cpp-python %s sdist)" % (os.environ["SLM_REV"], os.environ["LLAMA_COMMIT"][:9], os.environ["LLAMA_VERSION"]))
print("- %s interleaved rounds x %s runs per engine and test (after each tool's warm-up)" % (os.environ["ROUNDS"], os.environ["REPS"]))
print("- weights read per decoded token: %.1f MiB (%d bytes)" % (bpt / 1048576, bpt))
print("- read bandwidth (bench/membw.c, 1 GiB, best over all rounds): %s" % ", ".join("%d thread%s %.1f GB/s" % (t, "" if t == 1 else "s", g) for t, g in sorted(bw.items())))
print()
print("| test | threads | slm t/s | slm best | llama.cpp t/s | llama.cpp best | slm / llama.cpp | slm % roofline | llama.cpp % roofline |")
print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
norepack = {l.strip() for l in open(os.path.join(out, "llama-norepack.txt")) if l.strip()}
def llama_note(test, t):
    p, n = (test[2:], "0") if test.startswith("pp") else ("0", test[2:])
    return " ¹" if "p%s n%s t%d" % (p, n, t) in norepack else ""
for test, t in tests:
    ks, kl = ("slm", test, t), ("llama", test, t)
    s_all, l_all = flat(ks), flat(kl)
    def fmt(xs):
        if not xs:
            return "—", "—"
        sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
        return "%.2f ± %.2f" % (statistics.mean(xs), sd), "%.2f" % max(xs)
    (s_ms, s_best), (l_ms, l_best) = fmt(s_all), fmt(l_all)
    # ratio: geometric mean of per-round ratios (each round's runs are neighbours in time)
    pairs = [statistics.mean(runs[ks][r]) / statistics.mean(runs[kl][r])
             for r in sorted(runs.get(ks, {})) if r in runs.get(kl, {})]
    ratio = "—" if not pairs else "%.2f (%.2f–%.2f)" % (geomean(pairs), min(pairs), max(pairs))
    def roof(xs):
        if not xs or not test.startswith("tg") or t not in bw:
            return "—"
        f = lambda v: 100.0 * bpt * v / (bw[t] * 1e9)
        return "%.0f%% (best %.0f%%)" % (f(statistics.mean(xs)), f(max(xs)))
    print("| %s | %d | %s | %s | %s%s | %s | %s | %s | %s |" % (test, t, s_ms, s_best, l_ms, llama_note(test, t), l_best, ratio, roof(s_all), roof(l_all)))
print()
if norepack:
    print("¹ llama-bench failed (exit 139 on AMX hosts: llama.cpp's weight repacking) and was run with `--repack 0`")
    print("  for this test in every round: llama.cpp's numbers here are without its repacked (extra) buffer types.")
    print()
print("t/s: mean ± sd over all timed runs of all rounds; best: the fastest run. slm / llama.cpp:")
print("geometric mean of the per-round ratios of means (min–max over rounds). Roofline: bytes per")
print("token x t/s / best measured bandwidth at the same thread count (tg only; pp is compute-bound).")
print("Raw JSON: %s" % out)
PY
