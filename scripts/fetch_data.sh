#!/usr/bin/env bash
# Builds the evaluation and calibration texts from Debian packages (text we
# did not write), checks their pinned SHA-256 and stores them in a git-ignored
# cache, $SLM_DATA (default ~/.cache/slm/data):
#
#   kjv.txt          evaluation prose: the King James Bible (Debian packages
#                    bible-kjv + bible-kjv-text), every chapter as a heading
#                    line and its verses one per line, verse numbers removed.
#   calibration.txt  importance-matrix calibration text from a different
#                    source: the licence texts Debian's base-files package
#                    ships in /usr/share/common-licenses.
#
# Needs: apt-get install bible-kjv bible-kjv-text (base-files is always there).
# Prints the data directory on stdout. See docs/EVAL.md for the provenance.
set -euo pipefail

DIR=${SLM_DATA:-$HOME/.cache/slm/data}
KJV_SHA256=d01523693d29e4aafa70b91bed70ea413e3736737ba434e462daa54228178dc3
CAL_SHA256=42034978aa6452b1851fb1a723f3a5492d72b331af9f1423d9a95d21ba55e6fd
# Fixed order; GFDL/GPL/LGPL without a version are symlinks to these.
CAL_FILES="GPL-3 GPL-2 LGPL-2.1 LGPL-3 Apache-2.0 Artistic MPL-2.0 GFDL-1.3 CC0-1.0 BSD"

check() {  # file sha -> 0 if the file exists with that checksum
    [ -f "$1" ] && echo "$2  $1" | sha256sum --check --status
}

mkdir -p "$DIR"
tmp=$(mktemp -d "$DIR/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if ! check "$DIR/kjv.txt" "$KJV_SHA256"; then
    command -v bible >/dev/null || {
        echo "fetch_data: the 'bible' program is missing: apt-get install bible-kjv bible-kjv-text" >&2; exit 1; }
    # -l0: no line wrapping. The tool prints "Book N" chapter headings and
    # "  V text" verse lines; keep the headings, drop the verse numbers.
    bible -l0 Gen1:1-Rev22:21 | sed -E -e '/^$/d' -e 's/^ +[0-9]+ //' > "$tmp/kjv.txt"
    check "$tmp/kjv.txt" "$KJV_SHA256" || {
        echo "fetch_data: kjv.txt checksum $(sha256sum < "$tmp/kjv.txt" | cut -c1-64) is not the pinned one" \
             "(another bible-kjv-text version?)" >&2; exit 1; }
    mv -f "$tmp/kjv.txt" "$DIR/kjv.txt"
fi

if ! check "$DIR/calibration.txt" "$CAL_SHA256"; then
    for f in $CAL_FILES; do
        p=/usr/share/common-licenses/$f
        [ -f "$p" ] || { echo "fetch_data: $p is missing (Debian's base-files package)" >&2; exit 1; }
        cat "$p"; echo
    done > "$tmp/calibration.txt"
    check "$tmp/calibration.txt" "$CAL_SHA256" || {
        echo "fetch_data: calibration.txt checksum $(sha256sum < "$tmp/calibration.txt" | cut -c1-64)" \
             "is not the pinned one" >&2; exit 1; }
    mv -f "$tmp/calibration.txt" "$DIR/calibration.txt"
fi
echo "$DIR"
