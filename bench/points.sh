#!/usr/bin/env bash
# Measures what scales with the number of recovery points (issue 5): one
# machine with BENCH_POINTS points (10,000 by default), made cheaply by
# bench/mkpoints (copies of one backup's point, sharing its tree below a
# root tree part of their own, as real points have; BENCH_POINTS_SHARED=1
# shares the root part too):
#
#   - azfs points: the first run (which fills the local cache of sealed
#     points) and warm runs (median of 3);
#   - azmount of the all-points root until it is mounted, and then ls of
#     the machine's directory;
#   - retention: azfs policy set of the default retention, which applies it
#     at once and forgets all but a few dozen points (one tombstone), and
#     azfs policy apply, dry run and real, afterwards.
#
#   bash bench/points.sh               # BIN= to use built binaries (azfs, azmount, mkpoints)
#
# Work goes to a directory under BENCH_DIR (/var/tmp/azfs-bench), removed at
# the end. Needs FUSE for the mount (else that row says so).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
N=${BENCH_POINTS:-10000}
BENCH_DIR=${BENCH_DIR:-/var/tmp/azfs-bench}
mkdir -p "$BENCH_DIR"
work=$(mktemp -d "$BENCH_DIR/points.XXXXXX")
mnt=$work/mnt
mount_pid=

# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

cleanup() {
	end_mount "$mount_pid" "$mnt"
	rm -rf "$work"
}
trap cleanup EXIT

if [ -z "${BIN:-}" ]; then
	BIN=$work/bin
	(cd "$root" && go build -o "$BIN/" ./cmd/azfs ./cmd/azmount ./bench/mkpoints)
elif [ ! -x "$BIN/mkpoints" ]; then
	(cd "$root" && go build -o "$BIN/" ./bench/mkpoints)
fi
export AZFS_CONFIG_DIR=$work/config AZFS_CACHE_DIR=$work/cache HOME=$work/home
mkdir -p -m 700 "$AZFS_CONFIG_DIR" && mkdir -p "$AZFS_CACHE_DIR" "$HOME" "$work/src" "$mnt"
azfs() { "$BIN/azfs" "$@"; }

# now_ns prints the time in nanoseconds; elapsed START prints seconds since.
now_ns() { date +%s%N; }
elapsed() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
# timed CMD...: runs CMD with its output discarded and prints its seconds.
timed() {
	local t0
	t0=$(now_ns)
	"$@" >/dev/null 2>>"$work/log"
	elapsed "$t0"
}
# median3 CMD...: the median of three timed runs.
median3() {
	printf '%s\n' "$(timed "$@")" "$(timed "$@")" "$(timed "$@")" | sort -n | sed -n 2p
}

declare -a rows
row() { rows+=("| $1 | $2 |"); }

azfs vault create "$work/vault" --generate-passphrase "$work/pass" --machine bench 2>>"$work/log"
for i in $(seq 1 20); do echo "file $i" >"$work/src/f$i"; done
azfs backup -q "$work/src" 2>>"$work/log"
t0=$(now_ns)
distinct=-distinct
[ "${BENCH_POINTS_SHARED:-0}" = 1 ] && distinct=
"$BIN/mkpoints" -n $((N - 1)) $distinct >>"$work/log"
row "make $N points (mkpoints, not azfs)" "$(elapsed "$t0") s"
count=$(azfs points --json | grep -c '"id"')
[ "$count" -eq "$N" ] || { echo "points: $count, want $N" >&2; exit 1; }

rm -rf "${AZFS_CACHE_DIR:?}"/*
row "azfs points, $N points, no cache" "$(timed azfs points) s"
row "azfs points, $N points, warm (median of 3)" "$(median3 azfs points) s"
row "azfs points --json, warm (median of 3)" "$(median3 azfs points --json) s"

# mount_ls: mounts the all-points root, prints the seconds until it is
# mounted and until ls of the machine's directory is done, and unmounts.
mount_ls() {
	local t0 ready listed entries
	t0=$(now_ns)
	"$BIN/azmount" "$mnt" 2>>"$work/log" &
	mount_pid=$!
	until mountpoint -q "$mnt"; do
		kill -0 "$mount_pid" 2>/dev/null || { echo "azmount exited; see $work/log" >&2; return 1; }
		sleep 0.01
	done
	ready=$(elapsed "$t0")
	entries=$(ls "$mnt/bench" | wc -l)
	listed=$(elapsed "$t0")
	end_mount "$mount_pid" "$mnt"
	mount_pid=
	echo "$ready $listed $entries"
}
if [ -e /dev/fuse ] && { [ "$(id -u)" -eq 0 ] || command -v fusermount3 >/dev/null; }; then
	read -r ready listed entries < <(mount_ls)
	row "azmount all-points root, $N points: mounted" "$ready s"
	row "... and ls of the machine's directory ($entries entries)" "$listed s (from the start of azmount)"
else
	row "azmount all-points root" "not measured: no FUSE here"
fi

pin=$(azfs vault pin 2>>"$work/log")
t0=$(now_ns)
azfs policy set --keep-daily 14 --keep-weekly 8 --keep-monthly 12 --keep-yearly 3 --timezone UTC --pin "$pin" >"$work/set.out" 2>>"$work/log"
row "azfs policy set + apply (default retention, forgets $(grep -c '^forgot' "$work/set.out") of $N)" "$(elapsed "$t0") s"
row "azfs policy apply --dry-run afterwards (median of 3)" "$(median3 azfs policy apply --dry-run) s"
row "azfs policy apply afterwards, nothing to forget (median of 3)" "$(median3 azfs policy apply) s"
row "azfs points afterwards, $(azfs points --json | grep -c '"id"') live (median of 3)" "$(median3 azfs points) s"
row "azfs points --deleted afterwards (median of 3)" "$(median3 azfs points --deleted) s"

echo "| $N points of one machine, $(date -u +%Y-%m-%d), $(nproc) CPUs | time |"
echo "|---|---|"
printf '%s\n' "${rows[@]}"
