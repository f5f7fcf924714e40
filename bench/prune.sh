#!/usr/bin/env bash
# bench/prune.sh: azfs prune beside restic forget --prune, on the same history, in one run.
#
# Usage: bench/prune.sh [-h]
#
# Builds a history of PRUNE_POINTS backups of a changing synthetic tree into an azfs vault
# and a restic repository (both local directories), forgets all but the newest
# PRUNE_POINTS - PRUNE_FORGET points of each (about 30% of the stored bytes become garbage),
# then measures, on fresh copies of both each time, wall time and peak RSS
# (/usr/bin/time %M) of:
#   restic forget --keep-last K --prune --max-unused 10%
#   azfs prune --safety-margin 0 --no-backups-running --max-unused 10%   (mark and delete in one run)
#   azfs prune --max-unused 10%, then a second run that deletes (the safe default: the
#     second run is what the first prune after the margin does; the bench runs it at once
#     with --safety-margin 0 --no-backups-running, which acts on the mark the first made)
# The point objects azfs forgets are deleted from the vault directory before the
# measurement (what a purge of forgotten points does first); restic's forget is measured
# with its prune.
#
# Environment knobs:
#   BIN=DIR                           azfs binary in DIR (default: built into the work dir)
#   BENCH_DIR=/var/tmp/azfs-bench     results-prune-*.md and logs/ go here; work dir run-prune.* (removed)
#   BENCH_RUNS=3                      measurements of each (fresh copies each time); medians reported
#   PRUNE_POINTS=50 PRUNE_FORGET=25   history length, points forgotten
#   PRUNE_BASE_MB=200 PRUNE_STEP_MB=5 size of the tree, bytes rewritten between backups
#   BENCH_KEEP_STATE=1                keep the work dir
#
# Needs: go, restic, /usr/bin/time, jq.
set -euo pipefail

export LC_ALL=C
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

case "${1:-}" in
-h | --help)
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
	exit 0
	;;
esac

BENCH_DIR=$(realpath -m "${BENCH_DIR:-/var/tmp/azfs-bench}")
BENCH_RUNS=${BENCH_RUNS:-3}
POINTS=${PRUNE_POINTS:-50}
FORGET=${PRUNE_FORGET:-25}
BASE_MB=${PRUNE_BASE_MB:-200}
STEP_MB=${PRUNE_STEP_MB:-5}
KEEP=$((POINTS - FORGET))
for v in BENCH_RUNS POINTS FORGET BASE_MB STEP_MB KEEP; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "$v must be a positive integer (got ${!v})" >&2; exit 2; }
done
for tool in restic jq /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "bench/prune.sh needs $tool" >&2; exit 2; }
done

STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$BENCH_DIR/logs"
WORK=$BENCH_DIR/run-prune.$STAMP.$$
LOG=$BENCH_DIR/logs/prune-$STAMP.log
RESULTS=$BENCH_DIR/results-prune-$STAMP.md
mkdir -p "$WORK"
cleanup() { [[ ${BENCH_KEEP_STATE:-0} == 1 ]] || rm -rf -- "$WORK"; }
trap cleanup EXIT

log() { printf '[prune-bench %s] %s\n' "$(date +%T)" "$*" | tee -a "$LOG" >&2; }

if [[ -n ${BIN:-} ]]; then
	AZFS=$(realpath "$BIN")/azfs
else
	log "building azfs"
	(cd "$REPO" && go build -o "$WORK/bin/" ./cmd/azfs)
	AZFS=$WORK/bin/azfs
fi

# Each tool gets its own HOME and state directories.
AZ_HOME=$WORK/azfs-home
RS_HOME=$WORK/restic-home
mkdir -p "$AZ_HOME/config" "$AZ_HOME/cache" "$RS_HOME/cache"
# az ARGS... runs azfs; rs CACHE REPO ARGS... runs restic (env, so that /usr/bin/time can run them).
AZ=(env HOME="$AZ_HOME" AZFS_CONFIG_DIR="$AZ_HOME/config" AZFS_CACHE_DIR="$AZ_HOME/cache" "$AZFS")
az() { "${AZ[@]}" "$@"; }
rs_cmd() { RS=(env HOME="$RS_HOME" XDG_CACHE_HOME="$1" RESTIC_PASSWORD_FILE="$RS_HOME/password" RESTIC_REPOSITORY="$2" restic); }
rs() { rs_cmd "$1" "$2"; "${RS[@]}" "${@:3}"; }

# ---------------------------------------------------------------- the history

CORPUS=$WORK/corpus
# rand_file PATH BYTES: BYTES of fresh random data.
rand_file() { head -c "$2" /dev/urandom >"$1"; }

make_corpus() {
	local i n made=0
	mkdir -p "$CORPUS/small" "$CORPUS/large"
	# About 80% of the bytes in files of 1 to 3 MB, 20% in 2,000 files of 1 to 40 KB.
	for ((i = 0; made < BASE_MB * 8 / 10; i++)); do
		n=$((1 + i % 3))
		rand_file "$CORPUS/large/f$i" $((n * 1000 * 1000))
		made=$((made + n))
	done
	for ((i = 0; i < 2000; i++)); do
		rand_file "$CORPUS/small/s$i" $((1000 + (i * 7919) % 40000))
	done
}

# mutate STEP: rewrite about STEP_MB of the tree: large files, and 20 small ones.
mutate() {
	local step=$1 done_mb=0 f
	local -a large=("$CORPUS"/large/*)
	while ((done_mb < STEP_MB)); do
		f=${large[$(((step * 131 + done_mb * 17) % ${#large[@]}))]}
		rand_file "$f" $(((1 + (step + done_mb) % 3) * 1000 * 1000))
		done_mb=$((done_mb + 1 + (step + done_mb) % 3))
	done
	for ((i = 0; i < 20; i++)); do
		rand_file "$CORPUS/small/s$(((step * 97 + i * 101) % 2000))" $((1000 + (step * i * 7919) % 40000))
	done
}

log "corpus: ${BASE_MB} MB, $POINTS backups rewriting ${STEP_MB} MB each; forgetting $FORGET"
make_corpus
az vault create "$WORK/vault" --generate-passphrase "$WORK/azfs-passphrase" >>"$LOG" 2>&1
echo "bench-prune-password" >"$RS_HOME/password"
rs "$RS_HOME/cache" "$WORK/restic" init >>"$LOG" 2>&1
for ((s = 1; s <= POINTS; s++)); do
	((s == 1)) || mutate "$s"
	az backup -q "$CORPUS" >>"$LOG" 2>&1
	rs "$RS_HOME/cache" "$WORK/restic" backup -q "$CORPUS" >>"$LOG" 2>&1
	((s % 10)) || log "backup $s of $POINTS"
done

# Forget in azfs: delete the oldest point objects (a purge of forgotten points).
AREA=$(ls -d "$WORK"/vault/machines/*/)
az points --json | jq -r 'sort_by(.time) | .[].id' | head -n "$FORGET" | while read -r id; do
	rm -- "$AREA/points/$id"
done
[[ $(ls "$AREA/points" | wc -l) == "$KEEP" ]] || { log "azfs keeps $(ls "$AREA/points" | wc -l) points, want $KEEP"; exit 1; }
AZ_STORED=$(du -sb "$AREA/data" | cut -f1)
RS_STORED=$(du -sb "$WORK/restic/data" | cut -f1)
DRY=$(az prune --dry-run --max-unused 10%)
echo "$DRY" | tee -a "$LOG" >&2
# "machine M: N points need B blobs (U MiB) of S MiB in P packs"
GARBAGE=$(echo "$DRY" | awk '
	function bytes(v, unit) { gsub(/[()]/, "", v); gsub(/[()]/, "", unit); return v * (unit ~ /^K/ ? 2^10 : unit ~ /^M/ ? 2^20 : unit ~ /^G/ ? 2^30 : unit ~ /^T/ ? 2^40 : 1) }
	NR == 1 { for (i = 1; i <= NF; i++) if ($i == "of") { u = bytes($(i - 2), $(i - 1)); s = bytes($(i + 1), $(i + 2)) }; printf "%.0f", 100 * (1 - u / s) }')

# ---------------------------------------------------------------- measurements

# timed NAME CMD...: runs CMD under /usr/bin/time; appends "seconds kB" to $WORK/t-NAME.
timed() {
	local name=$1
	shift
	/usr/bin/time -f '%e %M' -o "$WORK/time.out" "$@" >>"$LOG" 2>&1 || { log "$name failed: $*"; tail -20 "$LOG" >&2; exit 1; }
	cat "$WORK/time.out" >>"$WORK/t-$name"
}

for ((r = 1; r <= BENCH_RUNS; r++)); do
	log "run $r of $BENCH_RUNS"
	rm -rf "$WORK/rs-copy" "$WORK/rs-cache" "$WORK/az-one" "$WORK/az-two"
	cp -a "$WORK/restic" "$WORK/rs-copy"
	cp -a "$RS_HOME/cache" "$WORK/rs-cache"
	cp -a "$WORK/vault" "$WORK/az-one"
	cp -a "$WORK/vault" "$WORK/az-two"
	sync
	rs_cmd "$WORK/rs-cache" "$WORK/rs-copy"
	timed restic "${RS[@]}" forget --keep-last "$KEEP" --prune --max-unused 10%
	timed azfs-one "${AZ[@]}" prune --vault "$WORK/az-one" --safety-margin 0 --no-backups-running --max-unused 10%
	timed azfs-mark "${AZ[@]}" prune --vault "$WORK/az-two" --max-unused 10%
	timed azfs-delete "${AZ[@]}" prune --vault "$WORK/az-two" --safety-margin 0 --no-backups-running --max-unused 10%
	RS_AFTER=$(du -sb "$WORK/rs-copy/data" | cut -f1)
	AZ_AFTER=$(du -sb "$WORK"/az-one/machines/*/data | cut -f1)
	AZ2_AFTER=$(du -sb "$WORK"/az-two/machines/*/data | cut -f1)
done
log "checking the pruned vault and repository"
az check --vault "$WORK/az-one" --read-data >>"$LOG" 2>&1 || { log "azfs check of the pruned vault failed"; exit 1; }
rs "$WORK/rs-cache" "$WORK/rs-copy" check >>"$LOG" 2>&1 || { log "restic check of the pruned repository failed"; exit 1; }

# median FILE COLUMN
median() { cut -d' ' -f"$2" "$WORK/t-$1" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.0f MB", b / 1e6 }'; }
sum2() { awk -v a="$1" -v b="$2" 'BEGIN { print a + b }'; }

RS_T=$(median restic 1) RS_M=$(median restic 2)
ONE_T=$(median azfs-one 1) ONE_M=$(median azfs-one 2)
MARK_T=$(median azfs-mark 1) MARK_M=$(median azfs-mark 2)
DEL_T=$(median azfs-delete 1) DEL_M=$(median azfs-delete 2)
TWO_T=$(sum2 "$MARK_T" "$DEL_T")
TWO_M=$((MARK_M > DEL_M ? MARK_M : DEL_M))
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }

{
	echo "# azfs prune vs restic forget --prune ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs)"
	echo
	echo "History: $POINTS backups of a ${BASE_MB} MB tree rewriting ${STEP_MB} MB each; $FORGET forgotten: ${GARBAGE}% of the stored bytes unused."
	echo "Medians of $BENCH_RUNS runs, each on fresh copies. \`--max-unused 10%\` for both."
	echo
	echo "| | wall | peak RSS | stored before → after | vs restic (time, RSS) |"
	echo "|---|---|---|---|---|"
	echo "| restic 0.14 \`forget --keep-last $KEEP --prune\` | ${RS_T} s | $((RS_M / 1024)) MB | $(mb "$RS_STORED") → $(mb "$RS_AFTER") | |"
	echo "| azfs prune, margin 0 (one run) | ${ONE_T} s | $((ONE_M / 1024)) MB | $(mb "$AZ_STORED") → $(mb "$AZ_AFTER") | $(ratio "$ONE_T" "$RS_T"), $(ratio "$ONE_M" "$RS_M") |"
	echo "| azfs prune, mark then delete (two runs) | ${MARK_T} + ${DEL_T} s | $((TWO_M / 1024)) MB | $(mb "$AZ_STORED") → $(mb "$AZ2_AFTER") | $(ratio "$TWO_T" "$RS_T"), $(ratio "$TWO_M" "$RS_M") |"
} | tee "$RESULTS"
log "results: $RESULTS; log: $LOG"
