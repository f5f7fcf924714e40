#!/usr/bin/env bash
# bench/verify.sh: what `azfs backup --verify-reused` costs.
#
# Usage: bench/verify.sh [-h]
#
# Backs up a corpus once into a local vault, then measures, BENCH_RUNS times each in
# alternation, with the page cache warm and azfs's file cache deleted before each run
# (so that every file is read and every chunk found in the vault, the case the flag is
# for):
#   rerun           azfs backup CORPUS                   (reuses every chunk, trusting the index)
#   rerun-verified  azfs backup --verify-reused CORPUS   (reads back and authenticates each)
#   cat             cat of every file of the corpus      (the cost of reading the source)
# and prints the medians and the ratio verified / plain.
#
# Environment knobs:
#   BIN=DIR                       azfs binary in DIR (default: built into the work dir)
#   BENCH_DIR=/var/tmp/azfs-bench results-verify-*.md go here; work dir run-verify.* (removed)
#   BENCH_RUNS=3                  measurements of each; medians reported
#   VERIFY_CORPUS=DIR             what to back up (default: $BENCH_DIR/corpus if it exists,
#                                 else /usr/local/go)
set -euo pipefail

export LC_ALL=C
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

help_if_asked "${BASH_SOURCE[0]}" "${1:-}"

BENCH_DIR=$(realpath -m "${BENCH_DIR:-/var/tmp/azfs-bench}")
BENCH_RUNS=${BENCH_RUNS:-3}
check_runs
CORPUS=${VERIFY_CORPUS:-}
if [ -z "$CORPUS" ]; then
	CORPUS=/usr/local/go
	[ -d "$BENCH_DIR/corpus" ] && CORPUS=$BENCH_DIR/corpus
fi

STAMP=$(date +%Y%m%d-%H%M%S)
WORK=$BENCH_DIR/run-verify.$STAMP.$$
RESULTS=$BENCH_DIR/results-verify-$STAMP.md
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
if [ -z "${BIN:-}" ]; then
	BIN=$WORK/bin
	(cd "$REPO" && go build -o "$BIN/" ./cmd/azfs)
fi
export AZFS_CONFIG_DIR=$WORK/config AZFS_CACHE_DIR=$WORK/cache HOME=$WORK/home
mkdir -p -m 700 "$AZFS_CONFIG_DIR" && mkdir -p "$AZFS_CACHE_DIR" "$HOME"

"$BIN/azfs" vault create "$WORK/vault" --generate-passphrase "$WORK/pass" >/dev/null 2>&1
"$BIN/azfs" backup -q "$CORPUS"
bytes=$(du -sb "$CORPUS" | cut -f1)

# seconds CMD...: wall seconds of CMD, its output discarded.
seconds() {
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >/dev/null 2>&1
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc -l
}

declare -a plain verified cats
for _ in $(seq "$BENCH_RUNS"); do
	cats+=("$(seconds find "$CORPUS" -type f -exec cat {} +)")
	rm -rf "$AZFS_CACHE_DIR" && mkdir -p "$AZFS_CACHE_DIR"
	plain+=("$(seconds "$BIN/azfs" backup -q "$CORPUS")")
	rm -rf "$AZFS_CACHE_DIR" && mkdir -p "$AZFS_CACHE_DIR"
	verified+=("$(seconds "$BIN/azfs" backup -q --verify-reused "$CORPUS")")
done
p=$(printf '%s\n' "${plain[@]}" | median)
v=$(printf '%s\n' "${verified[@]}" | median)
c=$(printf '%s\n' "${cats[@]}" | median)
{
	echo "# backup --verify-reused, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"
	echo
	echo "Corpus \`$CORPUS\`, $((bytes / 1000000)) MB; medians of $BENCH_RUNS runs; file cache deleted before each backup."
	echo
	echo "| run | seconds | MB/s |"
	echo "|---|---|---|"
	echo "| cat of every file | $c | $(echo "$bytes / $c / 1000000" | bc) |"
	echo "| rerun (every chunk reused) | $p | $(echo "$bytes / $p / 1000000" | bc) |"
	echo "| rerun --verify-reused | $v | $(echo "$bytes / $v / 1000000" | bc) |"
	echo
	echo "--verify-reused / plain rerun: $(echo "scale=2; $v / $p" | bc)x"
} | tee "$RESULTS"
