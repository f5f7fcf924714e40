#!/usr/bin/env bash
# bench/widels.sh: the mount's cost of listing one very wide directory, a base azmount
# against this one (issue 15's "no regression elsewhere" for bench/scale.sh's `ls -f` step,
# without the scale run's two-million-file backups).
#
# Usage: bench/widels.sh [-h]       (make bench runs it)
#
# Makes (once, kept in BENCH_DIR) a tree of one directory of WIDELS_ENTRIES files with
# bench/mkscale (3 in 4 empty, the rest 1 KiB), backs it up once with this azfs (both
# azmounts read the vault), then BENCH_RUNS times, interleaved (the order of base and new
# alternating): a fresh mount (`azmount --point latest`, each binary's default --cache-size
# unless WIDELS_AZMOUNT_FLAGS), `ls -f` of the directory (its count checked), and for it
# the wall s, the mount server's CPU s (user + system, /proc/PID/stat), its VmHWM and the
# number of garbage collections it ran (GODEBUG=gctrace=1). Prints medians and new/base
# ratios per run into $BENCH_DIR/results-widels-<time>.md.
#
# Environment knobs:
#   BIN=DIR                        azfs and azmount to measure (default: built from the repo)
#   BENCH_BASELINE=DIR             the azmount to compare with (default $BENCH_DIR/baseline-8cf8197)
#   BENCH_DIR=/var/tmp/azfs-bench  the tree (wide-<N>), results
#   BENCH_RUNS=3                   runs; medians reported
#   WIDELS_ENTRIES=500000          files in the directory (bench/scale.sh's wide/)
#   WIDELS_AZMOUNT_FLAGS=          azmount flags for both binaries
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
bench_start "${BASH_SOURCE[0]}" "${1:-}"
BENCH_RUNS=${BENCH_RUNS:-3}
check_runs
N=${WIDELS_ENTRIES:-500000}
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "WIDELS_ENTRIES must be a positive integer" >&2; exit 2; }
read -ra FLAGS <<<"${WIDELS_AZMOUNT_FLAGS:-}"
starting_azmount
TREE=$BENCH_DIR/wide-$N
pair_run widels
if [[ ! -f $TREE/.mkscale ]]; then
	rm -rf "$TREE"
	(cd "$REPO" && go build -o "$WORK/bin/mkscale" ./bench/mkscale)
	"$WORK/bin/mkscale" -wide "$N" -deep 0 -broad 0 -sparse=false "$TREE" >&2
fi
NO_RANDREAD=1 bench_vault
"$BIN/azfs" backup -q "$TREE/wide"

declare -A V=()
add() { V[$1]+="$2 "; }
med() { tr ' ' '\n' <<<"${V[$1]}" | grep . | median; }

# step TOOL AZMOUNT: `ls -f` of the directory out of a fresh mount.
step() {
	local t=$1 dir=$MNT$TREE/wide c0 c1 t0 wall n gcs
	GODEBUG=gctrace=1 "$2" "${FLAGS[@]}" --point latest "$MNT" 2>"$WORK/azmount.err" &
	MPID=$!
	for _ in $(seq 1200); do [[ -d $dir ]] && break; sleep 0.05; done
	[[ -d $dir ]] || { echo "the mount did not show $dir: $(tail -3 "$WORK/azmount.err")" >&2; exit 1; }
	gcs=$(grep -c '^gc ' "$WORK/azmount.err" || true)
	c0=$(proc_cpu "$MPID")
	t0=$EPOCHREALTIME
	n=$(ls -f "$dir" | wc -l)
	wall=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
	c1=$(proc_cpu "$MPID")
	add "$t.rss" "$(vmhwm_mb "$MPID")"
	end_mount "$MPID" "$MNT"
	MPID=
	((n == N || n == N + 2)) || { echo "$t: ls -f listed $n entries, want $N" >&2; exit 1; }
	add "$t.gc" "$(($(grep -c '^gc ' "$WORK/azmount.err" || true) - gcs))"
	add "$t.cpu" "$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')"
	add "$t.wall" "$wall"
	echo "run $i $t: wall $wall s, mount CPU $(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }') s, load $(cut -d' ' -f1 /proc/loadavg)" >&2
}

for i in $(seq "$BENCH_RUNS"); do
	if ((i % 2)); then order="base new"; else order="new base"; fi
	for t in $order; do
		if [[ $t == base ]]; then step base "$BASE/azmount"; else step new "$BIN/azmount"; fi
	done
done

pairs() { # KEY: per-run new/base
	paste <(tr ' ' '\n' <<<"${V[new.$1]}") <(tr ' ' '\n' <<<"${V[base.$1]}") | awk -F'\t' '$1 != "" && $2 > 0 { printf "%.2f ", $1 / $2 }'
}
{
	echo "# azmount listing a directory of $N entries (\`ls -f\`, fresh mount), $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
	echo
	echo "Medians of $BENCH_RUNS interleaved runs; azmount flags: \`${FLAGS[*]:-none}\`; base = \`$BASE/azmount\`, new = \`$BIN/azmount\` (the scripts at $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo ?)). CPU = the mount server's user + system seconds during \`ls -f\`; collections counted from GODEBUG=gctrace=1."
	echo
	echo "| | base | new | new/base (per run) |"
	echo "|---|---|---|---|"
	for k in wall:"wall s" cpu:"mount CPU s" rss:"mount VmHWM MiB" gc:"collections during ls -f"; do
		key=${k%%:*}
		printf '| %s | %s | %s | %s |\n' "${k#*:}" "$(med "base.$key")" "$(med "new.$key")" "$(pairs "$key")"
	done
} | tee "$RESULTS"
