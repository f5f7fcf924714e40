#!/usr/bin/env bash
# bench/backupidle.sh: how long a first backup leaves cores with nothing to run, a base
# revision against this tree, interleaved, from Go execution traces.
#
# Usage: bench/backupidle.sh [-h]
#
# Builds repo/backup's test binary of IDLE_BASE (a commit) and of this working tree, then
# BENCH_RUNS times, interleaved (the order alternates from run to run), runs TestProfileTree
# of each (AZFS_PROFILE_TREE=CORPUS: a first backup of the corpus into a fresh local vault
# with a file cache, traced) and reads its trace figures (traceIdle in
# repo/backup/profile_test.go): core time with no goroutine to run (a runnable one counts
# as work, so the machine's other load does not count), the part of it after the last
# compression (the end of the run: the last packs, the index, the point), and how long of
# it an fsync was under way. Prints the medians in seconds and new/base per run.
#
# Environment knobs:
#   IDLE_BASE=REV                  the base revision (default 708eba9: main before the
#                                  backup's end overlapped its uploads, docs/performance.md §2.4)
#   BENCH_DIR=/var/tmp/azfs-bench  results-backupidle-*.md go here; work dir run-backupidle.*
#                                  (removed)
#   BENCH_RUNS=3                   runs of each; medians reported
#   BACKUPIDLE_CORPUS=DIR          what to back up (default: $BENCH_DIR/corpus, else
#                                  /usr/local/go)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
bench_start "${BASH_SOURCE[0]}" "${1:-}"

BENCH_RUNS=${BENCH_RUNS:-3}
check_runs
IDLE_BASE=${IDLE_BASE:-708eba9}
CORPUS=${BACKUPIDLE_CORPUS:-}
if [ -z "$CORPUS" ]; then
	CORPUS=/usr/local/go
	[ -d "$BENCH_DIR/corpus" ] && CORPUS=$BENCH_DIR/corpus
fi
CORPUS=$(realpath "$CORPUS")

run_dirs backupidle
mkdir -p "$WORK/src"

git -C "$REPO" archive "$IDLE_BASE" | tar -x -C "$WORK/src"
(cd "$WORK/src" && go test -c -o "$WORK/base.test" ./repo/backup)
(cd "$REPO" && go test -c -o "$WORK/new.test" ./repo/backup)
find "$CORPUS" -type f -exec cat {} + >/dev/null # page cache warm

# seconds: a Go duration ("487ms", "1.43s", "1m2.5s", "850µs") in seconds.
seconds() {
	awk -v d="$1" 'BEGIN {
		s = 0
		while (match(d, /^[0-9.]+(h|ms|µs|us|ns|m|s)/)) {
			t = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1)
			match(t, /[a-zµ]+$/); u = substr(t, RSTART); v = substr(t, 1, RSTART - 1)
			s += v * (u == "h" ? 3600 : u == "m" ? 60 : u == "s" ? 1 : u == "ms" ? 1e-3 : u == "ns" ? 1e-9 : 1e-6)
		}
		printf "%.3f", s
	}'
}

# trace TOOL RUN: one traced first backup; appends "wall idle tail fsync" (seconds) to $WORK/TOOL.
trace() {
	local out=$WORK/$1.$2 line
	mkdir -p "$out"
	line=$(cd "$out" && AZFS_PROFILE_TREE=$CORPUS AZFS_PROFILE_OUT=$out "$WORK/$1.test" \
		-test.run '^TestProfileTree$' -test.v -test.count=1 2>&1 | grep "first backup's trace:") ||
		{ echo "$1: TestProfileTree printed no trace figures (run $2)" >&2; exit 1; }
	# "... trace: 11.644s wall; 487ms of core time idle (2.1% of 2 cores), 355ms of it after
	# the last compression; an fsync under way for 309ms of it"
	read -r wall idle tail fsync < <(echo "$line" | sed -E 's/.*trace: ([^ ]+) wall; ([^ ]+) of core time idle .*, ([^ ]+) of it after the last compression; an fsync under way for ([^ ]+) of it.*/\1 \2 \3 \4/')
	echo "$(seconds "$wall") $(seconds "$idle") $(seconds "$tail") $(seconds "$fsync")" >>"$WORK/$1"
	rm -rf "$out"
}

for run in $(seq "$BENCH_RUNS"); do
	order=(base new)
	((run % 2 == 0)) && order=(new base)
	for tool in "${order[@]}"; do
		echo "run $run/$BENCH_RUNS: $tool" >&2
		trace "$tool" "$run"
	done
done

col() { awk "{print \$$2}" "$WORK/$1" | median; }
# paired FIELD: new/base of FIELD (1 wall, 2 idle, 3 tail, 4 fsync), one per run.
paired() { paste -d' ' "$WORK/base" "$WORK/new" | awk -v i="$1" '{if ($i > 0) printf "%.2f ", $(i + 4) / $i; else printf "- "}'; }
{
	echo "# First backup's idle core time: $IDLE_BASE against this tree, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"
	echo
	echo "Corpus \`$CORPUS\`, TestProfileTree's trace (traceIdle); medians of $BENCH_RUNS runs, interleaved; load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
	echo
	echo "| tree | wall s | core time idle s | of it after the last compression s | of it with an fsync under way s |"
	echo "|---|---|---|---|---|"
	for t in base new; do echo "| $t | $(col "$t" 1) | $(col "$t" 2) | $(col "$t" 3) | $(col "$t" 4) |"; done
	echo
	echo "- idle new/base per run: $(paired 2)"
	echo "- idle after the last compression, new/base per run: $(paired 3)"
} | tee "$RESULTS"
