#!/usr/bin/env bash
# bench/images.sh: what a rerun stores after 1% of a disk image changed (issue 16).
#
# Usage: bench/images.sh [-h]
#
# Makes an image of pseudo-random (incompressible) bytes, IMAGE_SIZE (default 4 GiB), with
# bench/mkimage, backs it up into a fresh local vault, then twice changes 1% of it and backs
# it up again, reporting what each rerun stored:
#   scattered   1% of the image's 4 KiB blocks rewritten at random offsets
#               (small random writes: a database, file system metadata);
#   runs        1% rewritten in runs of 1 MiB at random 4 KiB-aligned offsets
#               (files written);
# each as a share of the image and as a ratio to the bytes changed. It does so twice in
# each of BENCH_RUNS rounds: for the image as it is (an MBR signature: azfs cuts it as a
# disk image, in fixed blocks) and for the same bytes without the signature (azfs chunks
# it as any file, with FastCDC): the ratio of the two is what the image rule buys. Last,
# the image is read whole (cat) through a fresh azmount of the latest point: many small
# blocks cost reads more than few large chunks. The table holds medians; the first
# backups' throughput and the reads' are printed beside.
#
# Environment knobs:
#   BIN=DIR                       azfs and azmount binaries in DIR (default: built into the
#                                 work dir)
#   BENCH_DIR=/var/tmp/azfs-bench results-images-*.md go here; work dir run-images.* (removed)
#   BENCH_RUNS=3                  rounds; medians reported
#   IMAGE_SIZE=4GiB               image size (KiB, MiB, GiB suffixes); the work dir needs
#                                 about 2.2 times this
set -euo pipefail

export LC_ALL=C
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

help_if_asked "${BASH_SOURCE[0]}" "${1:-}"

BENCH_DIR=$(realpath -m "${BENCH_DIR:-/var/tmp/azfs-bench}")
BENCH_RUNS=${BENCH_RUNS:-3}
IMAGE_SIZE=${IMAGE_SIZE:-4GiB}
check_runs
command -v jq >/dev/null || { echo "missing jq (apt-get install -y jq)" >&2; exit 1; }

STAMP=$(date +%Y%m%d-%H%M%S)
WORK=$BENCH_DIR/run-images.$STAMP.$$
RESULTS=$BENCH_DIR/results-images-$STAMP.md
mkdir -p "$WORK"
MNT=$WORK/mnt
MOUNT_PID=
trap 'end_mount "$MOUNT_PID" "$MNT"; rm -rf "$WORK"' EXIT
if [ -z "${BIN:-}" ]; then
	BIN=$WORK/bin
	(cd "$REPO" && go build -o "$BIN/" ./cmd/azfs ./cmd/azmount)
fi
MKIMAGE=$WORK/mkimage
(cd "$REPO" && go build -o "$MKIMAGE" ./bench/mkimage)

median() { sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }

# backup_json: backs up the image into the current vault; prints the JSON summary.
backup_json() { "$BIN/azfs" backup -q --json "$WORK/disk.img"; }

# round KIND SEED: one fresh vault, first backup and the two reruns of KIND
# (image or plain); appends "KIND first_MBps scattered_pct scattered_ratio runs_pct runs_ratio"
# and the read through a mount, MB/s, to $WORK/rows.
round() {
	local kind=$1 seed=$2 flag="" out size secs changed stored
	[[ $kind == plain ]] && flag=-plain
	rm -rf "$WORK/state" "$WORK/disk.img"
	export AZFS_CONFIG_DIR=$WORK/state/config AZFS_CACHE_DIR=$WORK/state/cache HOME=$WORK/state/home
	mkdir -p -m 700 "$AZFS_CONFIG_DIR" && mkdir -p "$AZFS_CACHE_DIR" "$HOME"
	"$BIN/azfs" vault create "$WORK/state/vault" --generate-passphrase "$WORK/state/pass" >/dev/null 2>&1
	"$MKIMAGE" create -size "$IMAGE_SIZE" -seed "$seed" $flag "$WORK/disk.img"
	size=$(stat -c %s "$WORK/disk.img")
	cat "$WORK/disk.img" >/dev/null # page cache warm, as for the reruns
	out=$(backup_json)
	secs=$(jq -r .seconds <<<"$out")
	local row="$kind $(echo "$size / $secs / 1000000" | bc -l)"
	for run in 4KiB 1MiB; do
		changed=$("$MKIMAGE" change -percent 1 -run "$run" -seed "$((seed * 7 + ${#row}))" "$WORK/disk.img")
		out=$(backup_json)
		stored=$(jq -r .stats.bytes_stored <<<"$out")
		row+=" $(echo "100 * $stored / $size" | bc -l) $(echo "$stored / $changed" | bc -l)"
	done
	mkdir -p "$MNT"
	"$BIN/azmount" --point latest "$MNT" 2>"$WORK/azmount.log" &
	MOUNT_PID=$!
	local inmount=$MNT$WORK/disk.img t0 t1
	for _ in $(seq 300); do [ -e "$inmount" ] && break; sleep 0.1; done
	t0=$(date +%s.%N)
	cat "$inmount" >/dev/null
	t1=$(date +%s.%N)
	end_mount "$MOUNT_PID" "$MNT"
	MOUNT_PID=
	row+=" $(echo "$size / ($t1 - $t0) / 1000000" | bc -l)"
	echo "$row" >>"$WORK/rows"
}

for r in $(seq "$BENCH_RUNS"); do
	round image "$r"
	round plain "$r"
done

col() { awk -v k="$1" -v c="$2" '$1 == k {print $c}' "$WORK/rows" | median; }
{
	echo "# Disk image reruns, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"
	echo
	echo "A $IMAGE_SIZE image of random bytes; a rerun after 1% of it changed (medians of $BENCH_RUNS rounds)."
	echo "Stored: what the rerun added to the vault (\`stats.bytes_stored\`: data, its node's new list of"
	echo "blocks, index), as a share of the image and as a multiple of the bytes changed."
	echo
	echo "| cut as | first backup MB/s | 4 KiB scattered: stored % | × changed | 1 MiB runs: stored % | × changed | read through a mount MB/s |"
	echo "|---|---|---|---|---|---|---|"
	echo "| disk image (fixed blocks) | $(col image 2) | $(col image 3) | $(col image 4) | $(col image 5) | $(col image 6) | $(col image 7) |"
	echo "| ordinary file (FastCDC) | $(col plain 2) | $(col plain 3) | $(col plain 4) | $(col plain 5) | $(col plain 6) | $(col plain 7) |"
	echo
	echo "FastCDC / image, stored after scattered writes: $(echo "scale=1; $(col plain 3) / $(col image 3)" | bc)x;" \
		"after runs: $(echo "scale=1; $(col plain 5) / $(col image 5)" | bc)x;" \
		"read through a mount, image / file: $(echo "scale=2; $(col image 7) / $(col plain 7)" | bc)x"
} | tee "$RESULTS"
