#!/usr/bin/env bash
# Measures azfs at scale (issue 6, item 6): a synthetic tree of about two
# million files (bench/mkscale: one directory of 500,000 entries, a chain of
# 200 directories, 1,500 directories of 1,000 small and empty files) and a
# sparse 1 TiB file with a few KiB of data, of which the last byte:
#
#   - first backup into a fresh local vault: wall time, files/s, peak RSS;
#   - second backup, nothing changed: wall time, peak RSS;
#   - a mount of the point: ls -f of the 500,000-entry directory (its count
#     checked), the mount's requests, bytes fetched and peak RSS (VmHWM);
#   - a mount that reads nothing (what mounting alone fetches: the index
#     and the root), then a fresh mount: the last byte of the sparse file (dd with skip), its
#     value checked, and what the mount fetched for it (azmount's exit line:
#     requests, loads, bytes_down), which must be KiB, not the file;
#   - restic beside it when installed (SCALE_SKIP_RESTIC=1 skips it): first
#     and second backup, wall time and peak RSS. restic reads the holes of a
#     sparse file (1 TiB of zeros), so its runs exclude sparse.img.
#
#   BIN=bin bash bench/scale.sh           # make scale; BIN must hold azfs, azmount
#
# Knobs: BENCH_DIR (/var/tmp/azfs-bench); SCALE_TREE ($BENCH_DIR/scale-tree:
# made by mkscale when it lacks the .mkscale marker, reused otherwise; it
# takes about 2.3 million inodes and 1 GB, and is kept unless SCALE_CLEAN=1);
# SCALE_ARGS (mkscale flags, e.g. "-wide 100000 -broad 200000" for a smaller
# run; the ls check follows -wide); SCALE_SKIP_RESTIC=1. Peak RSS comes from
# /usr/bin/time %M, else from polling VmHWM. The results table goes to
# stdout and to $BENCH_DIR/scale-<date>-<time>.md, logs to the work directory
# (removed at the end unless SCALE_KEEP_WORK=1).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/var/tmp/azfs-bench}
TREE=${SCALE_TREE:-$BENCH_DIR/scale-tree}
ARGS=${SCALE_ARGS:-}
mkdir -p "$BENCH_DIR"
work=$(mktemp -d "$BENCH_DIR/scale.XXXXXX")
mnt=$work/mnt
log=$work/log
mount_pid=
restic_pid=

# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

cleanup() {
	end_mount "$mount_pid" "$mnt"
	if [ "${SCALE_KEEP_WORK:-0}" = 1 ]; then
		echo "work directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
	if [ "${SCALE_CLEAN:-0}" = 1 ]; then rm -rf "$TREE"; fi
}
trap cleanup EXIT

if [ -z "${BIN:-}" ]; then
	BIN=$work/bin
	(cd "$root" && go build -o "$BIN/" ./cmd/azfs ./cmd/azmount ./bench/mkscale)
elif [ ! -x "$BIN/mkscale" ]; then
	(cd "$root" && go build -o "$BIN/" ./bench/mkscale)
fi
BIN=$(cd "$BIN" && pwd)
export AZFS_CONFIG_DIR=$work/config AZFS_CACHE_DIR=$work/cache HOME=$work/home
mkdir -p -m 700 "$AZFS_CONFIG_DIR" && mkdir -p "$AZFS_CACHE_DIR" "$HOME" "$mnt"

now_ns() { date +%s%N; }
elapsed() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; } # KiB -> MB (MiB)
declare -a rows
row() { rows+=("| $1 | $2 |"); }

# measured OUT CMD...: runs CMD with stdout to OUT, stderr to the log; sets
# T_WALL (s), T_RSS (MB, peak) and T_RC.
measured() {
	local out=$1 t0 hwm=0 h pid
	shift
	T_RC=0
	t0=$(now_ns)
	if [ -x /usr/bin/time ]; then
		/usr/bin/time -f '%M' -o "$work/.time" "$@" >"$out" 2>>"$log" || T_RC=$?
		T_WALL=$(elapsed "$t0")
		T_RSS=$(mb "$(tail -1 "$work/.time")")
	else
		"$@" >"$out" 2>>"$log" &
		pid=$!
		while kill -0 "$pid" 2>/dev/null; do
			h=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
			[ -n "$h" ] && [ "$h" -gt "$hwm" ] && hwm=$h
			sleep 0.1
		done
		wait "$pid" || T_RC=$?
		T_WALL=$(elapsed "$t0")
		T_RSS="$(mb "$hwm") (polled)"
	fi
}

# The tree.
if [ -f "$TREE/.mkscale" ]; then
	row "tree" "reused: $TREE ($(cat "$TREE/.mkscale"))"
else
	rm -rf "$TREE"
	echo "scale: making the tree in $TREE ($(df -i "$BENCH_DIR" | awk 'NR == 2 { print $4 }') inodes free)" >&2
	# shellcheck disable=SC2086 # ARGS are flags
	"$BIN/mkscale" $ARGS "$TREE" | tee -a "$log" >&2
	row "make the tree (mkscale, not azfs)" "$(tail -1 "$log" | sed 's/^mkscale: //')"
fi
wide=$(sed -n 's/.*wide=\([0-9]*\).*/\1/p' "$TREE/.mkscale")
sync

# azfs: first and second backup.
"$BIN/azfs" vault create "$work/vault" --generate-passphrase "$work/pass" --machine scale 2>>"$log"
for k in first second; do
	sync
	measured "$work/backup-$k.json" "$BIN/azfs" backup --json "$TREE"
	[ "$T_RC" = 0 ] || { echo "azfs backup ($k) exited $T_RC; see $log" >&2; tail -5 "$log" >&2; exit 1; }
	files=$(jq .stats.files "$work/backup-$k.json")
	dirs=$(jq .stats.dirs "$work/backup-$k.json")
	up=$(jq '.storage.bytes_up // 0' "$work/backup-$k.json")
	rate=$(awk -v n="$files" -v s="$T_WALL" 'BEGIN { printf "%.0f", n / s }')
	[ $k = first ] && what="first backup ($files files, $dirs dirs, $(jq .stats.bytes_read "$work/backup-$k.json") bytes read)" ||
		what="second backup, nothing changed ($(jq .stats.files_unchanged "$work/backup-$k.json") unchanged)"
	row "azfs $what" "$T_WALL s, $rate files/s, peak RSS $T_RSS MB, $((up / 1000000)) MB up"
	eval "azfs_${k}_s=\$T_WALL azfs_${k}_rss=\"\$T_RSS\""
done
row "vault size" "$(du -sm "$work/vault" | cut -f1) MB"

# mount_start: mounts the latest point on $mnt in the background.
mount_start() {
	: >"$work/mount.err"
	"$BIN/azmount" --point latest "$mnt" 2>"$work/mount.err" &
	mount_pid=$!
	until mountpoint -q "$mnt"; do
		kill -0 "$mount_pid" 2>/dev/null || { echo "azmount exited; see $work/mount.err" >&2; cat "$work/mount.err" >&2; exit 1; }
		sleep 0.02
	done
}
# mount_stop: prints the mount's peak RSS (MB) and its exit line's counters,
# and unmounts. It runs in a subshell ($(mount_stop)): end_mount waits for
# azmount to be gone, so its exit line is in mount.err.
mount_stop() {
	local hwm
	hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$mount_pid/status")
	end_mount "$mount_pid" "$mnt"
	mount_pid=
	cat "$work/mount.err" >>"$log"
	printf '%s MB; %s\n' "$(mb "$hwm")" "$(grep -o 'requests=[0-9]* loads=[0-9]* bytes_down=[0-9]*' "$work/mount.err" | tail -1)"
}

if [ -e /dev/fuse ] && { [ "$(id -u)" -eq 0 ] || command -v fusermount3 >/dev/null; }; then
	t0=$(now_ns)
	mount_start
	row "azmount: mounted" "$(elapsed "$t0") s"
	t0=$(now_ns)
	n=$(ls -f "$mnt$TREE/wide" | wc -l)
	t=$(elapsed "$t0")
	# ls -f lists what readdir returns: the entries, and . and .. when
	# the file system returns them.
	case $n in
	$((wide + 2))) row "\`ls -f | wc -l\` of wide/ ($n entries incl. . and ..)" "$t s" ;;
	"$wide") row "\`ls -f | wc -l\` of wide/ ($n entries: the mount's readdir returns no . and ..)" "$t s" ;;
	*) echo "ls -f of wide/: $n entries, want $((wide + 2))" >&2; exit 1 ;;
	esac
	row "... mount peak RSS; counters at unmount" "$(mount_stop)"

	mount_start
	row "a fresh mount, nothing read: peak RSS; counters at unmount (index, root)" "$(mount_stop)"
	mount_start
	t0=$(now_ns)
	last=$(dd if="$mnt$TREE/sparse.img" bs=1 skip=$(((1 << 40) - 1)) count=1 status=none | od -An -tx1 | tr -d ' \n')
	row "last byte of sparse.img (1 TiB) on a fresh mount" "$(elapsed "$t0") s, 0x$last"
	[ "$last" = 5a ] || { echo "last byte of sparse.img: 0x$last, want 0x5a" >&2; exit 1; }
	t0=$(now_ns)
	cmp <(dd if="$mnt$TREE/sparse.img" bs=4096 skip=$((1 << 18)) count=1 status=none) \
		<(dd if="$TREE/sparse.img" bs=4096 skip=$((1 << 18)) count=1 status=none)
	row "... then 4 KiB at 1 GiB, compared with the source" "$(elapsed "$t0") s, equal"
	row "... mount peak RSS; counters at unmount (sparse reads only)" "$(mount_stop)"
else
	row "mount" "not measured: no FUSE here"
fi

# restic beside, on the tree without sparse.img.
if [ "${SCALE_SKIP_RESTIC:-0}" != 1 ] && command -v restic >/dev/null; then
	export RESTIC_REPOSITORY=$work/restic RESTIC_PASSWORD=azfs-scale-bench
	restic init >>"$log" 2>&1
	for k in first second; do
		sync
		measured "$work/restic-$k.out" restic backup --exclude "$TREE/sparse.img" "$TREE"
		[ "$T_RC" = 0 ] || row "restic $k backup" "exited $T_RC (see log)"
		r="restic_${k}_s"
		eval "$r=\$T_WALL restic_${k}_rss=\"\$T_RSS\""
	done
	ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
	row "restic $(restic version | cut -d' ' -f2) first backup (no sparse.img)" "$restic_first_s s, peak RSS $restic_first_rss MB (azfs/restic: time $(ratio "$azfs_first_s" "$restic_first_s"), RSS $(ratio "${azfs_first_rss%% *}" "${restic_first_rss%% *}"))"
	row "restic second backup, nothing changed" "$restic_second_s s, peak RSS $restic_second_rss MB (azfs/restic: time $(ratio "$azfs_second_s" "$restic_second_s"), RSS $(ratio "${azfs_second_rss%% *}" "${restic_second_rss%% *}"))"
	row "restic repository size" "$(du -sm "$RESTIC_REPOSITORY" | cut -f1) MB"
fi

out=$BENCH_DIR/scale-$(date +%Y%m%d-%H%M%S).md
{
	echo "| scale, $(date -u +%Y-%m-%d), $(nproc) CPUs, local vault | result |"
	echo "|---|---|"
	printf '%s\n' "${rows[@]}"
} | tee "$out"
echo "written to $out" >&2
