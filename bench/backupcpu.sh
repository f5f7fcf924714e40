#!/usr/bin/env bash
# bench/backupcpu.sh: a first backup's throughput, CPU and stored size, the binary
# issue 15 starts from against this one (and restic 0.19), in one run.
#
# Usage: bench/backupcpu.sh [-h]
#
# BENCH_RUNS times, interleaved (the order alternates from run to run, so that both
# binaries share the machine's mood), with the page cache warm and `sync` before each,
# each into a fresh local vault with fresh config, cache and HOME directories:
#   old      $OLD backup -q CORPUS     (the starting binary, main at 8cf8197)
#   new      $BIN/azfs backup -q CORPUS
#   restic   restic backup -q CORPUS   (into a fresh repository; skipped with BENCH_SKIP_RESTIC=1)
# and prints the medians of wall time, MB/s (corpus bytes / wall), CPU seconds (user +
# sys, /usr/bin/time), CPU seconds per GB, peak RSS and the vault's size (du -sb), then
# the ratios the issue names: new/old throughput (target >= 2), CPU s/GB (target <= 5),
# vault size against restic's repository (target <=), with the paired per-run ratios,
# which are steadier than the ratio of medians on a noisy machine.
#
# Environment knobs:
#   BIN=DIR                        the new azfs in DIR (default: built into the work dir)
#   OLD=PATH                       the starting azfs (default: $BENCH_DIR/baseline-8cf8197/azfs,
#                                  built from commit 8cf8197 when missing)
#   BENCH_DIR=/var/tmp/azfs-bench  results-backupcpu-*.md go here; work dir run-backupcpu.*
#                                  (removed)
#   BENCH_RUNS=3                   runs; medians reported
#   BACKUPCPU_CORPUS=DIR           what to back up (default: $BENCH_DIR/corpus, made by
#                                  bench.sh, else /usr/local/go)
#   RESTIC=PATH                    restic to compare with (default: restic 0.19.0, built once
#                                  with go install into $BENCH_DIR/restic-0.19.0/)
#   BENCH_SKIP_RESTIC=1            leave restic out
set -euo pipefail

export LC_ALL=C
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"

help_if_asked "${BASH_SOURCE[0]}" "${1:-}"

BENCH_DIR=$(realpath -m "${BENCH_DIR:-/var/tmp/azfs-bench}")
BENCH_RUNS=${BENCH_RUNS:-3}
check_runs
CORPUS=${BACKUPCPU_CORPUS:-}
if [ -z "$CORPUS" ]; then
	CORPUS=/usr/local/go
	[ -d "$BENCH_DIR/corpus" ] && CORPUS=$BENCH_DIR/corpus
fi
CORPUS=$(realpath "$CORPUS")
BASE_COMMIT=8cf8197

run_dirs backupcpu

if [ -z "${BIN:-}" ]; then
	BIN=$WORK/bin
	(cd "$REPO" && go build -o "$BIN/" ./cmd/azfs)
fi
OLD=${OLD:-$BENCH_DIR/baseline-$BASE_COMMIT/azfs}
if [ ! -x "$OLD" ]; then
	echo "building the starting binary (commit $BASE_COMMIT) into $(dirname "$OLD") (once)" >&2
	src=$WORK/src-$BASE_COMMIT
	mkdir -p "$src" "$(dirname "$OLD")"
	git -C "$REPO" archive "$BASE_COMMIT" | tar -x -C "$src"
	(cd "$src" && go build -o "$OLD" ./cmd/azfs)
	rm -rf "$src"
fi
tools=(old new)
if [ "${BENCH_SKIP_RESTIC:-}" != 1 ]; then
	RESTIC_VERSION=0.19.0
	if [ -z "${RESTIC:-}" ]; then
		RESTIC=$BENCH_DIR/restic-$RESTIC_VERSION/restic
		if [ ! -x "$RESTIC" ]; then
			echo "building restic $RESTIC_VERSION into $(dirname "$RESTIC") (once)" >&2
			mkdir -p "$(dirname "$RESTIC")"
			GOBIN=$(dirname "$RESTIC") GOFLAGS=-mod=mod go install "github.com/restic/restic/cmd/restic@v$RESTIC_VERSION"
		fi
	fi
	tools+=(restic)
fi

bytes=$(find "$CORPUS" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
find "$CORPUS" -type f -exec cat {} + >/dev/null # page cache warm

# backup TOOL RUN: one first backup into a fresh vault; appends "wall user sys rss_kb
# vault_bytes" to $WORK/TOOL.
backup() {
	local tool=$1 dir=$WORK/$1.$2
	mkdir -p -m 700 "$dir/config" && mkdir -p "$dir/cache" "$dir/home"
	local -a cmd
	case $tool in
	old | new)
		local azfs=$OLD
		[ "$tool" = new ] && azfs=$BIN/azfs
		AZFS_CONFIG_DIR=$dir/config AZFS_CACHE_DIR=$dir/cache HOME=$dir/home \
			"$azfs" vault create "$dir/vault" --generate-passphrase "$dir/pass" >/dev/null 2>&1
		cmd=(env AZFS_CONFIG_DIR="$dir/config" AZFS_CACHE_DIR="$dir/cache" HOME="$dir/home" "$azfs" backup -q "$CORPUS")
		;;
	restic)
		head -c 32 /dev/urandom | base64 >"$dir/pass"
		RESTIC_PASSWORD_FILE=$dir/pass RESTIC_CACHE_DIR=$dir/cache "$RESTIC" init -q -r "$dir/vault" >/dev/null
		cmd=(env RESTIC_PASSWORD_FILE="$dir/pass" RESTIC_CACHE_DIR="$dir/cache" HOME="$dir/home" "$RESTIC" backup -q -r "$dir/vault" "$CORPUS")
		;;
	esac
	sync
	if ! /usr/bin/time -o "$dir/time" -f '%e %U %S %M' "${cmd[@]}" >"$dir/log" 2>&1; then
		echo "$tool backup failed (run $2):" >&2
		cat "$dir/log" >&2
		exit 1
	fi
	echo "$(cat "$dir/time") $(du -sb "$dir/vault" | cut -f1)" >>"$WORK/$tool"
	rm -rf "$dir"
}

for run in $(seq "$BENCH_RUNS"); do
	order=("${tools[@]}")
	if ((run % 2 == 0)); then
		order=()
		for ((i = ${#tools[@]} - 1; i >= 0; i--)); do order+=("${tools[i]}"); done
	fi
	for tool in "${order[@]}"; do
		echo "run $run/$BENCH_RUNS: $tool" >&2
		backup "$tool" "$run"
	done
done

# col TOOL AWK-EXPR: the median over runs of AWK-EXPR of TOOL's "wall user sys rss vault" lines.
col() { awk -v b="$bytes" "{print $2}" "$WORK/$1" | median; }
row() {
	local t=$1
	echo "| $t | $(col "$t" '$1') | $(col "$t" 'b/$1/1e6') | $(col "$t" '$2+$3') | $(col "$t" '($2+$3)/(b/1e9)') | $(col "$t" '$4/1024') | $(col "$t" '$5/1e6') |"
}
# paired TOOL_A TOOL_B AWK-EXPR: per-run values of AWK-EXPR over A's and B's line $0 (a[]
# and b[] fields), one per run.
paired() {
	paste -d' ' "$WORK/$1" "$WORK/$2" | awk "{split(\$0, f, \" \"); for (i = 1; i <= 5; i++) {a[i] = f[i]; b[i] = f[i + 5]}; printf \"%.2f \", $3}"
}
{
	echo "# First backup: the starting binary ($BASE_COMMIT) against this one, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"
	echo
	echo "Corpus \`$CORPUS\`, $((bytes / 1000000)) MB, page cache warm; medians of $BENCH_RUNS runs, interleaved; fresh vault each."
	echo
	echo "| tool | wall s | MB/s | CPU s (user+sys) | CPU s/GB | peak RSS MB | stored MB |"
	echo "|---|---|---|---|---|---|---|"
	for t in "${tools[@]}"; do row "$t"; done
	echo
	old_wall=$(col old '$1')
	new_wall=$(col new '$1')
	new_cpu_gb=$(col new '($2+$3)/(b/1e9)')
	echo "- throughput new/old: $(echo "scale=2; $old_wall / $new_wall" | bc)x (target >= 2); per run: $(paired old new 'a[1]/b[1]')"
	echo "- CPU new/old: $(echo "scale=2; $(col new '$2+$3') / $(col old '$2+$3')" | bc)x; per run: $(paired new old '(a[2]+a[3])/(b[2]+b[3])')"
	echo "- CPU per GB, new: $new_cpu_gb s (target <= 5)"
	if [ -f "$WORK/restic" ]; then
		echo "- stored size new/restic: $(echo "scale=3; $(col new '$5') / $(col restic '$5')" | bc)x (target <= 1); per run: $(paired new restic 'a[5]/b[5]')"
		echo "- throughput new/restic: $(echo "scale=2; $(col restic '$1') / $new_wall" | bc)x"
	fi
} | tee "$RESULTS"
