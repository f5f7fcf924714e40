#!/usr/bin/env bash
# bench/profile.sh: where the CPU goes in `azfs backup` of the bench corpus and in `azmount`
# serving `cp -a` of it: pprof CPU and allocation profiles, and with `perf` the kernel's
# share, for one git revision or the working tree (docs/performance.md reads these).
#
# Usage: bench/profile.sh [-h]
#
# It builds azfs and azmount from PROFILE_REV (git archive) or from the working tree, with
# bench/profile/profile_main.go wrapped around their main (so any revision can be
# profiled), then, page cache warm, one after the other:
#   backup   `azfs backup` of the corpus into a fresh vault, with AZFS_CPUPROFILE and
#            AZFS_MEMPROFILE; wall and CPU s from /usr/bin/time
#   mount    `azmount --point latest` of that vault, `cp -a` of the tree out of it, then
#            SIGINT: the mount's profiles cover mounting, the copy and unmounting
#   perf     (when perf works here) the same two again under `perf record -g`: the share of
#            samples in the kernel, by process and by symbol
# Profiles, `go tool pprof -top` summaries and perf reports go to
# $BENCH_DIR/profile-<rev>-<date>-<time>/ (kept; open with `go tool pprof -http : BIN PROFILE`).
#
# Environment knobs:
#   PROFILE_REV=REV                git revision to profile (default: the working tree)
#   BENCH_DIR=/var/tmp/azfs-bench  output and work dirs
#   PROFILE_CORPUS=DIR             what to back up (default: $BENCH_DIR/corpus from bench.sh)
#   BENCH_AZMOUNT_FLAGS="--cache-size 256MiB"   azmount flags
#   PROFILE_PERF=0                 skip the perf runs
#   PROFILE_PPROF=0                skip the pprof runs (perf only)
#   BENCH_CP_DIR=DIR               where `cp -a` writes (default: the work dir)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
bench_start "${BASH_SOURCE[0]}" "${1:-}"
CORPUS=$(realpath "${PROFILE_CORPUS:-$BENCH_DIR/corpus}")
[[ -d $CORPUS ]] || { echo "no corpus $CORPUS: run bench/bench.sh once, or set PROFILE_CORPUS=DIR" >&2; exit 2; }
BENCH_AZMOUNT_FLAGS=${BENCH_AZMOUNT_FLAGS---cache-size 256MiB}
read -ra AZMOUNT_FLAGS <<<"$BENCH_AZMOUNT_FLAGS"
REV=${PROFILE_REV:-}
STAMP=$(date +%Y%m%d-%H%M%S)
if [[ -n $REV ]]; then NAME=$(git -C "$REPO" rev-parse --short=7 "$REV^{commit}"); else NAME=worktree; fi
OUTDIR=$BENCH_DIR/profile-$NAME-$STAMP
WORK=$BENCH_DIR/run-profile.$STAMP.$$
LOGS=$OUTDIR
LOG_TAG=profile
MNT=$WORK/mnt
COPY=${BENCH_CP_DIR:-$WORK}/profile-copy
MPID=
mkdir -p "$OUTDIR" "$WORK/src" "$MNT"
trap 'end_mount "$MPID" "$MNT"; rm -rf "$WORK" "$COPY"' EXIT

# ---------------------------------------------------------------- build

log "building profiling azfs, azmount from ${REV:-the working tree}"
if [[ -n $REV ]]; then
	git -C "$REPO" archive "$REV" | tar -x -C "$WORK/src"
else
	tar -C "$REPO" --exclude=./.git --exclude=./node_modules -c . | tar -x -C "$WORK/src"
fi
for c in azfs azmount; do
	# A command that starts the profiles itself (internal/profile) needs no wrapper: both
	# would start the CPU profile, and the second fails.
	grep -q 'profile.FromEnv()' "$WORK/src/cmd/$c/main.go" && continue
	sed -i 's/^func main() {$/func profiledMain() {/' "$WORK/src/cmd/$c/main.go"
	grep -q '^func profiledMain() {$' "$WORK/src/cmd/$c/main.go" || die "cmd/$c/main.go has no func main() to wrap"
	sed '/^\/\/go:build ignore$/d' "$REPO/bench/profile/profile_main.go" >"$WORK/src/cmd/$c/profile_main.go"
done
(cd "$WORK/src" && go build -o "$OUTDIR/" ./cmd/azfs ./cmd/azmount) >"$OUTDIR/build.log" 2>&1 ||
	die "build failed: $(errtail "$OUTDIR/build.log")"
AZFS=$OUTDIR/azfs AZMOUNT=$OUTDIR/azmount
CORPUS_BYTES=$(find "$CORPUS" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')

export AZFS_CONFIG_DIR=$WORK/config AZFS_CACHE_DIR=$WORK/cache HOME=$WORK/home
mkdir -p -m 700 "$AZFS_CONFIG_DIR" && mkdir -p "$AZFS_CACHE_DIR" "$HOME"
find "$CORPUS" -type f -exec cat -- {} + >/dev/null

# fresh_vault: an empty vault in WORK (the previous one removed).
fresh_vault() {
	rm -rf "$WORK/vault" "$WORK/pass" "$AZFS_CONFIG_DIR"/* "$AZFS_CACHE_DIR"/*
	"$AZFS" vault create "$WORK/vault" --generate-passphrase "$WORK/pass" >"$OUTDIR/vault-create.log" 2>&1 ||
		die "vault create failed: $(errtail "$OUTDIR/vault-create.log")"
}

# summary NAME PROFILE INDEX...: go tool pprof -top of PROFILE for each sample INDEX.
summary() {
	local name=$1 p=$2 idx bin=$AZFS
	shift 2
	[[ $name == mount* ]] && bin=$AZMOUNT
	for idx; do
		go tool pprof -top -nodecount=45 -sample_index="$idx" "$bin" "$p" >"$OUTDIR/$name.$idx.top.txt" 2>&1 || true
		go tool pprof -top -cum -nodecount=45 -sample_index="$idx" "$bin" "$p" >"$OUTDIR/$name.$idx.cum.txt" 2>&1 || true
	done
}

# mount_copy PREFIX...: mounts the latest point (with PREFIX before azmount: env for the
# profiles), copies the tree out with cp -a, stops the mount; sets T_WALL of the copy and
# MOUNT_CPU (the mount server's CPU s during the copy).
mount_copy() {
	local i c0
	rm -rf "$COPY"
	"$@" "$AZMOUNT" "${AZMOUNT_FLAGS[@]}" --point latest "$MNT" >"$OUTDIR/azmount.log" 2>&1 &
	MPID=$!
	for i in $(seq 1200); do [[ -d $MNT$CORPUS ]] && break; sleep 0.05; done
	[[ -d $MNT$CORPUS ]] || die "the mount did not show $CORPUS: $(errtail "$OUTDIR/azmount.log")"
	sync
	c0=$(proc_cpu "$MPID")
	run_timed /dev/null "$OUTDIR/cp.err" cp -a "$MNT$CORPUS" "$COPY"
	MOUNT_CPU=$(awk -v a="$c0" -v b="$(proc_cpu "$MPID")" 'BEGIN { printf "%.2f", b - a }')
	end_mount "$MPID" "$MNT"
	MPID=
	rm -rf "$COPY"
}

# ---------------------------------------------------------------- pprof

if [[ ${PROFILE_PPROF:-1} == 1 ]]; then
	fresh_vault
	sync
	run_timed "$OUTDIR/backup.json" "$OUTDIR/backup.err" \
		env AZFS_CPUPROFILE="$OUTDIR/backup.cpu.pprof" AZFS_MEMPROFILE="$OUTDIR/backup.allocs.pprof" "$AZFS" backup --json "$CORPUS"
	((T_RC == 0)) || die "backup failed: $(errtail "$OUTDIR/backup.err")"
	echo "backup: $T_WALL s wall, $T_CPU s CPU ($(per_gb "$T_CPU") s/GB), peak RSS $T_RSS_MB MB, $((CORPUS_BYTES / 1000000)) MB" | tee "$OUTDIR/summary.txt"
	summary backup "$OUTDIR/backup.cpu.pprof" samples
	summary backup "$OUTDIR/backup.allocs.pprof" alloc_space alloc_objects

	mount_copy env AZFS_CPUPROFILE="$OUTDIR/mount.cpu.pprof" AZFS_MEMPROFILE="$OUTDIR/mount.allocs.pprof"
	echo "mount: cp -a $T_WALL s ($(mbps "$T_WALL") MB/s), cp $T_CPU s CPU, mount server $MOUNT_CPU s CPU ($(per_gb "$MOUNT_CPU") s/GB)" | tee -a "$OUTDIR/summary.txt"
	[[ -s $OUTDIR/mount.cpu.pprof ]] || log "azmount wrote no CPU profile (it exited through os.Exit?)"
	summary mount "$OUTDIR/mount.cpu.pprof" samples
	summary mount "$OUTDIR/mount.allocs.pprof" alloc_space alloc_objects
fi

# ---------------------------------------------------------------- perf: the kernel's share

# perf_report NAME COMMS: the shares of the samples of the processes COMMS (comma-separated
# names; other processes are left out, perf records the whole system for the copy) by process
# and object (the kernel is [kernel.kallsyms]) and by symbol, flat, from NAME.perf.data, which
# it then removes.
perf_report() {
	local d=$OUTDIR/$1.perf.data r=(perf report -i "$OUTDIR/$1.perf.data" --comms "$2" --percentage relative --no-children -g none --stdio)
	"${r[@]}" --percent-limit 0.5 --sort comm,dso 2>/dev/null | grep '%' >"$OUTDIR/$1.perf.dso.txt" || true
	"${r[@]}" --percent-limit 0.3 --sort comm,dso,sym 2>/dev/null | grep '%' >"$OUTDIR/$1.perf.sym.txt" || true
	rm -f "$d"
	echo "perf $1: samples of $2 by process and object ($OUTDIR/$1.perf.dso.txt):" | tee -a "$OUTDIR/summary.txt"
	head -12 "$OUTDIR/$1.perf.dso.txt" | tee -a "$OUTDIR/summary.txt"
}

if [[ ${PROFILE_PERF:-1} == 1 ]] && command -v perf >/dev/null && perf record -q -o /dev/null -- true >/dev/null 2>&1; then
	fresh_vault
	sync
	perf record -q -g -o "$OUTDIR/backup.perf.data" -- "$AZFS" backup -q "$CORPUS" >"$OUTDIR/perf-backup.log" 2>&1 ||
		die "backup under perf failed: $(errtail "$OUTDIR/perf-backup.log")"
	perf_report backup azfs
	# The whole system during the copy: the mount server, cp, and the kernel's work for both.
	rm -rf "$COPY"
	"$AZMOUNT" "${AZMOUNT_FLAGS[@]}" --point latest "$MNT" >"$OUTDIR/azmount-perf.log" 2>&1 &
	MPID=$!
	for i in $(seq 1200); do [[ -d $MNT$CORPUS ]] && break; sleep 0.05; done
	sync
	perf record -q -a -g -o "$OUTDIR/mount.perf.data" -- cp -a "$MNT$CORPUS" "$COPY" >"$OUTDIR/perf-mount.log" 2>&1 || true
	end_mount "$MPID" "$MNT"
	MPID=
	rm -rf "$COPY"
	perf_report mount azmount,cp
else
	log "perf is not usable here: no kernel share measured"
fi
log "profiles and summaries in $OUTDIR"
