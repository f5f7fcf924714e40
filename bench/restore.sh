#!/usr/bin/env bash
# bench/restore.sh: azfs restore against restic 0.19's restore and against cp -a out of
# a fresh azfs mount, in one run, on the bench corpus.
#
# Usage: bench/restore.sh [-h]
#
# Backs the corpus up once into a local azfs vault and a local restic repository, then,
# BENCH_RUNS times, interleaved (so that each run's three share the machine's mood),
# each into a new empty directory, the page cache warm, `sync` before each:
#   azfs     azfs restore latest --target DIR
#   restic   restic restore latest --target DIR
#   cp       cp -a out of a fresh `azmount --point latest` (the copy timed, as in bench.sh)
# Nothing is deleted until the last run has ended (the target needs room for 3 x
# BENCH_RUNS copies of the corpus): on ext4 without a journal, creating a file after
# thousands were deleted in the last 30 seconds scans past each of them
# (recently_deleted in the inode allocator), which made whichever tool ran right after a
# `rm -rf` of the previous tree spend most of its time there, not restoring.
# It checks the first azfs restore against the corpus (diff -r, and type, mode, owner,
# size, mtime and link target of every entry), and prints the medians, peak RSS, and the
# ratios the issue names: azfs restore throughput >= 1.5x restic's, azfs restore time
# <= cp -a's.
#
# Environment knobs:
#   BIN=DIR                        azfs and azmount in DIR (default: built into the work dir)
#   BENCH_DIR=/var/tmp/azfs-bench  results-restore-*.md go here; work dir run-restore.* (removed)
#   BENCH_RUNS=3                   runs; medians reported
#   RESTORE_CORPUS=DIR             what to back up (default: $BENCH_DIR/corpus, made by
#                                  bench.sh, else /usr/local/go)
#   RESTIC=PATH                    restic to compare with (default: restic 0.19.0, built once
#                                  with go install into $BENCH_DIR/restic-0.19.0/)
#   BENCH_CP_DIR=DIR               where the restores and the copy write (default: the work dir)
set -euo pipefail

export LC_ALL=C
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$REPO/bench/lib.sh"

help_if_asked "${BASH_SOURCE[0]}" "${1:-}"

BENCH_DIR=$(realpath -m "${BENCH_DIR:-/var/tmp/azfs-bench}")
BENCH_RUNS=${BENCH_RUNS:-3}
check_runs
CORPUS=${RESTORE_CORPUS:-}
if [ -z "$CORPUS" ]; then
	CORPUS=/usr/local/go
	[ -d "$BENCH_DIR/corpus" ] && CORPUS=$BENCH_DIR/corpus
fi
CORPUS=$(realpath "$CORPUS")

ensure_restic 0.19.0

STAMP=$(date +%Y%m%d-%H%M%S)
WORK=$BENCH_DIR/run-restore.$STAMP.$$
RESULTS=$BENCH_DIR/results-restore-$STAMP.md
OUT=${BENCH_CP_DIR:-$WORK}/restore-out
MNT=$WORK/mnt
MPID=
mkdir -p "$WORK" "$MNT" "$OUT"
cleanup() {
	end_mount "$MPID" "$MNT"
	rm -rf "$WORK" "$OUT"
}
trap cleanup EXIT
if [ -z "${BIN:-}" ]; then
	BIN=$WORK/bin
	(cd "$REPO" && go build -o "$BIN/" ./cmd/azfs ./cmd/azmount)
fi
export AZFS_CONFIG_DIR=$WORK/config AZFS_CACHE_DIR=$WORK/cache HOME=$WORK/home
export RESTIC_REPOSITORY=$WORK/restic RESTIC_PASSWORD=azfs-bench-password RESTIC_CACHE_DIR=$WORK/restic-cache
mkdir -p -m 700 "$AZFS_CONFIG_DIR" && mkdir -p "$AZFS_CACHE_DIR" "$HOME"

"$BIN/azfs" vault create "$WORK/vault" --generate-passphrase "$WORK/pass" >/dev/null 2>&1
"$BIN/azfs" backup -q "$CORPUS"
"$RESTIC" init -q
"$RESTIC" backup -q "$CORPUS" >/dev/null
bytes=$(find "$CORPUS" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
find "$CORPUS" -type f -exec cat {} + >/dev/null # page cache warm for the verification

# timed NAME CMD...: runs CMD, its output discarded, and appends its wall seconds, CPU
# seconds (user + system) and peak RSS (MB) to the arrays NAME_s, NAME_cpu and NAME_rss.
timed() {
	local name=$1 t0 t1 rss cpu
	shift
	sync
	t0=$(date +%s.%N)
	/usr/bin/time -f '%M %U %S' -o "$WORK/rss" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" ||
		{ echo "$name: $* failed:" >&2; tail -5 "$WORK/$name.err" >&2; exit 1; }
	t1=$(date +%s.%N)
	read -r rss cpu < <(tail -1 "$WORK/rss" | awk '{ print $1, $2 + $3 }')
	eval "${name}_s+=(\"$(echo "$t1 - $t0" | bc -l)\")"
	eval "${name}_cpu+=(\"$cpu\")"
	eval "${name}_rss+=(\"$((rss / 1024))\")"
}
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }

# meta DIR: type, mode, owner, size (files), mtime (ns), link target of every entry.
meta() {
	(cd "$1" && find . -printf '%P\t%y\t%m\t%U\t%G\t%s\t%T@\t%l\n') | awk -F'\t' -v OFS='\t' '$2 == "d" { $6 = "" } 1' | sort
}

room=$(df -B1 --output=avail "$OUT" | tail -1)
if [ "$room" -lt $((3 * BENCH_RUNS * bytes + bytes)) ]; then
	echo "restore.sh: $OUT has $((room / 1000000)) MB free; the runs need $((3 * BENCH_RUNS * bytes / 1000000)) MB (3 x BENCH_RUNS copies of the corpus): set BENCH_CP_DIR or fewer BENCH_RUNS" >&2
	exit 1
fi
declare -a azfs_s azfs_cpu azfs_rss restic_s restic_cpu restic_rss cp_s cp_cpu cp_rss
verdict=
for i in $(seq "$BENCH_RUNS"); do
	timed azfs "$BIN/azfs" restore latest --target "$OUT/azfs.$i"
	if [ "$i" = 1 ]; then
		if diff -r --no-dereference "$CORPUS" "$OUT/azfs.$i$CORPUS" >"$WORK/diff.txt" 2>&1 && cmp -s <(meta "$CORPUS") <(meta "$OUT/azfs.$i$CORPUS"); then
			verdict=identical
		else
			verdict="**DIFFERENT**: $(head -c 300 "$WORK/diff.txt" | tr '\n' ' ')"
		fi
	fi
	timed restic "$RESTIC" restore latest --target "$OUT/restic.$i"
	"$BIN/azmount" --point latest "$MNT" 2>"$WORK/azmount.err" &
	MPID=$!
	for _ in $(seq 600); do [ -d "$MNT$CORPUS" ] && break; sleep 0.05; done
	timed cp cp -a "$MNT$CORPUS" "$OUT/cp.$i"
	end_mount "$MPID" "$MNT"
	MPID=
done

a=$(printf '%s\n' "${azfs_s[@]}" | median)
r=$(printf '%s\n' "${restic_s[@]}" | median)
c=$(printf '%s\n' "${cp_s[@]}" | median)
mbps() { echo "scale=1; $bytes / $1 / 1000000" | bc; }
vs_restic=$(echo "scale=2; $r / $a" | bc)
vs_cp=$(echo "scale=2; $a / $c" | bc)
pass() { if [ "$(echo "$1" | bc)" = 1 ]; then echo PASS; else echo FAIL; fi; }
paired() { # paired A B: per-run ratios B/A
	local -n x=$1 y=$2
	local out="" k
	for k in "${!x[@]}"; do out+="$(echo "scale=2; ${y[$k]} / ${x[$k]}" | bc) "; done
	echo "${out% }"
}
{
	echo "# azfs restore, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"
	echo
	echo "Corpus \`$CORPUS\`, $((bytes / 1000000)) MB of files; local vault and repository; medians of $BENCH_RUNS interleaved runs; $("$RESTIC" version | head -1)."
	echo
	echo "| what | seconds | MB/s | CPU seconds | peak RSS (MB) |"
	echo "|---|---|---|---|---|"
	echo "| \`azfs restore latest --target DIR\` | $a | $(mbps "$a") | $(printf '%s\n' "${azfs_cpu[@]}" | median) | $(printf '%s\n' "${azfs_rss[@]}" | median) |"
	echo "| \`restic restore latest --target DIR\` | $r | $(mbps "$r") | $(printf '%s\n' "${restic_cpu[@]}" | median) | $(printf '%s\n' "${restic_rss[@]}" | median) |"
	echo "| \`cp -a\` out of a fresh azfs mount | $c | $(mbps "$c") | (cp) $(printf '%s\n' "${cp_cpu[@]}" | median) | (cp) $(printf '%s\n' "${cp_rss[@]}" | median) |"
	echo
	echo "| target | ratio | |"
	echo "|---|---|---|"
	echo "| azfs restore throughput ≥ 1.5x restic's | ${vs_restic}x | $(pass "$vs_restic >= 1.5") |"
	echo "| azfs restore time ≤ cp -a out of a fresh mount | ${vs_cp}x | $(pass "$vs_cp <= 1") |"
	echo "| azfs restore == corpus (diff -r, metadata) | $verdict | |"
	echo
	echo "Paired per-run ratios: restic/azfs time $(paired azfs_s restic_s); cp/azfs time $(paired azfs_s cp_s); restic/azfs CPU seconds $(paired azfs_cpu restic_cpu)."
} | tee "$RESULTS"
