# shellcheck shell=bash
# Sourced by the bench/*.sh scripts, after their `set -euo pipefail`:
#   ROOT           the repository
#   usage          prints the calling script's header comment (its help:
#                  the lines from the second to the one before `set -euo`)
#   die MSG        "<script>: error: MSG" on stderr, exit 1
#   bench_options "OPT=VAR ..." ARGS...
#                  the option loop: "OPT VALUE" sets VAR to VALUE; -h/--help
#                  prints the help and exits 0; any other word that starts
#                  with '-' is an unknown option (exit 2). It stops at the
#                  first other word: that word and the rest are left in the
#                  array BENCH_ARGS (`set -- "${BENCH_ARGS[@]}"`).
#   bench_no_args  exit 2 when bench_options left words behind
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_NAME=$(basename "$0" .sh)
BENCH_ARGS=()

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "$BENCH_NAME: error: $*" >&2; exit 1; }

bench_options() {
    local spec=$1 s matched
    shift
    while [ $# -gt 0 ]; do
        case "$1" in -h|--help) usage; exit 0;; esac
        matched=0
        for s in $spec; do
            [ "$1" = "${s%%=*}" ] || continue
            [ $# -ge 2 ] || { echo "$BENCH_NAME: $1 needs a value" >&2; exit 2; }
            printf -v "${s#*=}" '%s' "$2"
            matched=1
            shift 2
            break
        done
        [ "$matched" -eq 1 ] && continue
        case "$1" in -*) echo "$BENCH_NAME: unknown option $1" >&2; exit 2;; esac
        break
    done
    BENCH_ARGS=("$@")
}

bench_no_args() {
    [ ${#BENCH_ARGS[@]} -eq 0 ] || { echo "$BENCH_NAME: unknown option ${BENCH_ARGS[0]}" >&2; exit 2; }
}
