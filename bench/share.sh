#!/usr/bin/env bash
# bench/share.sh: a vault on an SMB share against one in a local directory.
#
# Usage: bench/share.sh [-h]       (part of make bench)
#
# Starts a Samba server on 127.0.0.1 (bench/smbserver: smbd as the tests start it, SMB 3.1.1,
# signed and encrypted), then measures, BENCH_RUNS times each in alternation, with the page
# cache warm:
#   first backup of the corpus into a fresh local vault, and into a fresh vault on the share
#   (smb://USER@127.0.0.1:PORT/vault0/...), wall seconds and MB/s;
#   `cp -a` of the tree out of a fresh mount (azmount --point latest) of each vault.
# and prints the medians and the ratios share / local against the targets (backup throughput
# at least 0.7x the local vault's, cp -a at least 0.6x). restic beside it, writing to the same
# share through a kernel CIFS mount, when mount.cifs and the kernel's cifs module allow (the
# table says why not otherwise).
#
# Environment knobs:
#   BIN=DIR                        azfs, azmount in DIR (default: built into the work dir)
#   BENCH_DIR=/var/tmp/azfs-bench  results-share-*.md go here; work dir run-share.* (removed)
#   BENCH_RUNS=3                   measurements of each; medians reported
#   BENCH_QUICK=1                  corpus-quick (as bench.sh makes it) and 1 run
#   SHARE_CORPUS=DIR               what to back up (default: $BENCH_DIR/corpus, which
#                                  bench/bench.sh builds; else /usr/local/go/src)
#   BENCH_MOUNT_TIMEOUT=120        seconds for a mount to show content
#
# Needs: go, root (smbd; FUSE), samba (smbd, smbpasswd), fusermount3.
set -euo pipefail

export LC_ALL=C
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

help_if_asked "${BASH_SOURCE[0]}" "${1:-}"

BENCH_DIR=$(realpath -m "${BENCH_DIR:-/var/tmp/azfs-bench}")
if [[ ${BENCH_QUICK:-0} == 1 ]]; then
	BENCH_RUNS=${BENCH_RUNS:-1}
	DEFAULT_CORPUS=$BENCH_DIR/corpus-quick
else
	BENCH_RUNS=${BENCH_RUNS:-3}
	DEFAULT_CORPUS=$BENCH_DIR/corpus
fi
check_runs
BENCH_MOUNT_TIMEOUT=${BENCH_MOUNT_TIMEOUT:-120}
CORPUS=${SHARE_CORPUS:-}
if [[ -z $CORPUS ]]; then
	CORPUS=/usr/local/go/src
	[[ -d $DEFAULT_CORPUS ]] && CORPUS=$DEFAULT_CORPUS
fi
CORPUS=$(realpath "$CORPUS")

STAMP=$(date +%Y%m%d-%H%M%S)
WORK=$BENCH_DIR/run-share.$STAMP.$$
RESULTS=$BENCH_DIR/results-share-$STAMP.md
mkdir -p "$WORK"
log() { printf '[share %s] %s\n' "$(date +%T)" "$*" >&2; }

SMB_PID= MNT_PID=
cleanup() {
	end_mount "$MNT_PID" "$WORK/mnt"
	if mountpoint -q "$WORK/cifs" 2>/dev/null; then umount "$WORK/cifs" || true; fi
	if [[ -n $SMB_PID ]]; then
		kill -TERM "$SMB_PID" 2>/dev/null || true # smbserver stops smbd by its PID
		wait "$SMB_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

GOCACHE=$(go env GOCACHE) GOMODCACHE=$(go env GOMODCACHE) GOPATH=$(go env GOPATH)
export GOCACHE GOMODCACHE GOPATH
(cd "$REPO" && go build -o "$WORK/bin/" ./bench/smbserver)
if [[ -z ${BIN:-} || ! -x ${BIN:-}/azfs || ! -x ${BIN:-}/azmount ]]; then
	BIN=$WORK/bin
	(cd "$REPO" && go build -o "$BIN/" ./cmd/azfs ./cmd/azmount)
fi

# The server, stopped by cleanup.
coproc SMB { exec "$WORK/bin/smbserver" -password "$WORK/smb-password"; }
read -r SMB_ADDR SMB_USER SHARE_DIR <&"${SMB[0]}" || { log "FATAL: smbserver did not start"; exit 1; }
log "smbd on $SMB_ADDR, share vault0 in $SHARE_DIR"
export AZFS_SMB_PASSWORD_FILE=$WORK/smb-password

bytes=$(find "$CORPUS" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
log "corpus $CORPUS: $((bytes / 1000000)) MB; $BENCH_RUNS runs"
find "$CORPUS" -type f -exec cat {} + >/dev/null # warm the page cache

# seconds CMD...: wall seconds of CMD; its output goes to $WORK/last.log, and a failure
# fails the script.
seconds() {
	local t0 t1
	t0=$(date +%s.%N)
	if ! "$@" >"$WORK/last.log" 2>&1; then
		log "FATAL: $* failed:"
		tail -5 "$WORK/last.log" >&2
		exit 1
	fi
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc -l
}
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }

# use_state NAME: fresh azfs config, cache and home directories (a fresh keyring: the vault
# created next is its default).
use_state() {
	export AZFS_CONFIG_DIR=$WORK/$1/config AZFS_CACHE_DIR=$WORK/$1/cache HOME=$WORK/$1/home
	rm -rf "${WORK:?}/$1"
	mkdir -p -m 700 "$AZFS_CONFIG_DIR" && mkdir -p "$AZFS_CACHE_DIR" "$HOME"
}

# cp_out: seconds of `cp -a` of the corpus out of a fresh mount of the current default vault.
cp_out() {
	local mnt=$WORK/mnt dest=$WORK/cp i t
	mkdir -p "$mnt"
	rm -rf "$dest"
	"$BIN/azmount" --point latest "$mnt" 2>"$WORK/mount.log" &
	MNT_PID=$!
	for ((i = 0; i < BENCH_MOUNT_TIMEOUT * 10; i++)); do
		[[ -d $mnt$CORPUS ]] && break
		kill -0 "$MNT_PID" 2>/dev/null || { log "FATAL: azmount exited: $(tail -2 "$WORK/mount.log")"; exit 1; }
		sleep 0.1
	done
	t=$(seconds cp -a "$mnt$CORPUS" "$dest")
	end_mount "$MNT_PID" "$mnt"
	MNT_PID=
	rm -rf "$dest"
	echo "$t"
}

declare -a local_b share_b local_cp share_cp
for run in $(seq "$BENCH_RUNS"); do
	use_state local
	"$BIN/azfs" vault create "$WORK/local/vault" --generate-passphrase "$WORK/local/pass" >/dev/null 2>&1
	local_b+=("$(seconds "$BIN/azfs" backup -q "$CORPUS")")
	local_cp+=("$(cp_out)")
	rm -rf "$WORK/local/vault"

	use_state share
	rm -rf "${SHARE_DIR:?}/run"
	"$BIN/azfs" vault create "smb://$SMB_USER@$SMB_ADDR/vault0/run" --generate-passphrase "$WORK/share/pass" >/dev/null 2>&1
	share_b+=("$(seconds "$BIN/azfs" backup -q "$CORPUS")")
	share_cp+=("$(cp_out)")
	rm -rf "${SHARE_DIR:?}/run"
	log "run $run: backup local ${local_b[-1]} s, share ${share_b[-1]} s; cp -a local ${local_cp[-1]} s, share ${share_cp[-1]} s"
done

# restic through a kernel CIFS mount of the same share, when the machine allows one.
restic_row="n/a"
RESTIC=$(command -v restic || true)
[[ -z $RESTIC && -x $BENCH_DIR/restic-bin/restic ]] && RESTIC=$BENCH_DIR/restic-bin/restic
if ! command -v mount.cifs >/dev/null; then
	restic_row="n/a: no mount.cifs (apt-get install cifs-utils)"
elif ! grep -qw cifs /proc/filesystems && ! modprobe -n cifs 2>/dev/null; then
	restic_row="n/a: the kernel ($(uname -r)) has no cifs file system and no module to load (no /lib/modules/$(uname -r)): no kernel CIFS mount is possible here"
elif [[ -z $RESTIC ]]; then
	restic_row="n/a: restic not found"
else
	mkdir -p "$WORK/cifs"
	printf 'username=%s\npassword=%s\n' "$SMB_USER" "$(cat "$WORK/smb-password")" >"$WORK/cifs-creds"
	chmod 600 "$WORK/cifs-creds"
	if ! mount -t cifs "//127.0.0.1/vault0" "$WORK/cifs" -o "port=${SMB_ADDR##*:},credentials=$WORK/cifs-creds,vers=3.1.1,seal" 2>"$WORK/cifs.log"; then
		restic_row="n/a: mount.cifs failed: $(tail -1 "$WORK/cifs.log")"
	else
		declare -a restic_b
		for _ in $(seq "$BENCH_RUNS"); do
			rm -rf "$WORK/cifs/restic"
			export RESTIC_PASSWORD=bench RESTIC_REPOSITORY=$WORK/cifs/restic
			"$RESTIC" init >/dev/null 2>&1
			restic_b+=("$(seconds "$RESTIC" backup -q "$CORPUS")")
		done
		r=$(printf '%s\n' "${restic_b[@]}" | median)
		restic_row="$r s, $(echo "$bytes / $r / 1000000" | bc) MB/s ($("$RESTIC" version | head -1))"
		umount "$WORK/cifs"
	fi
fi

lb=$(printf '%s\n' "${local_b[@]}" | median)
sb=$(printf '%s\n' "${share_b[@]}" | median)
lc=$(printf '%s\n' "${local_cp[@]}" | median)
sc=$(printf '%s\n' "${share_cp[@]}" | median)
verdict() { if (($(echo "$1 >= $2" | bc -l))); then echo PASS; else echo FAIL; fi; }
backup_ratio=$(echo "scale=2; $lb / $sb" | bc)
cp_ratio=$(echo "scale=2; $lc / $sc" | bc)
{
	echo "# SMB share vault vs local vault, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, kernel $(uname -r)"
	echo
	echo "Corpus \`$CORPUS\`, $((bytes / 1000000)) MB of files; medians of $BENCH_RUNS runs; smbd $(smbd --version 2>/dev/null || /usr/sbin/smbd --version) on loopback, SMB 3.1.1 signed and encrypted."
	echo
	echo "| measurement | local vault | share vault | share/local (throughput) | target |"
	echo "|---|---|---|---|---|"
	echo "| first backup | $lb s, $(echo "$bytes / $lb / 1000000" | bc) MB/s | $sb s, $(echo "$bytes / $sb / 1000000" | bc) MB/s | ${backup_ratio}x | >= 0.7x $(verdict "$backup_ratio" 0.7) |"
	echo "| cp -a out of a fresh mount | $lc s | $sc s | ${cp_ratio}x | >= 0.6x $(verdict "$cp_ratio" 0.6) |"
	echo
	echo "restic, first backup into the same share through a kernel CIFS mount: $restic_row"
	echo
	echo "Runs (seconds): backup local ${local_b[*]}; share ${share_b[*]}; cp -a local ${local_cp[*]}; share ${share_cp[*]}."
} | tee "$RESULTS"
