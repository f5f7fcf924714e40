#!/usr/bin/env bash
# bench/metacpu.sh: the mount's per-file (metadata) cost, a base azmount against this one.
#
# Usage: bench/metacpu.sh [-h]       (make bench runs it)
#
# Backs each corpus up once with this azfs (both azmounts read the vault), then BENCH_RUNS
# times, interleaved (the order of base and new alternating), for each corpus:
#   ls -lR of a fresh mount (`azmount --cache-size 256MiB --point latest`): every entry's
#          attributes (READDIRPLUS) and one tree part per directory, no file content
#   cp -a  out of a fresh mount: the same and every file's content
# For each: the mount server's CPU s (user + system, /proc/PID/stat) during the command, and
# the wall s. Prints medians, per-entry CPU of ls -lR (µs), new/base ratios per run, into
# $BENCH_DIR/results-metacpu-<time>.md.
#
# Environment knobs:
#   BIN=DIR                        azfs and azmount to measure (default: built from the repo)
#   BENCH_BASELINE=DIR             the azmount to compare with (default $BENCH_DIR/baseline-8cf8197)
#   BENCH_DIR=/var/tmp/azfs-bench  the corpora (made by bench.sh or peers.sh), results
#   BENCH_RUNS=5                   runs; medians reported
#   METACPU_CORPORA="corpus-quick corpus"  which corpora under BENCH_DIR (those missing are left out)
#   BENCH_CP_DIR=DIR               where the copies go (default: a directory of its own in
#                                  /dev/shm when that tmpfs has room; see copy_dest in lib.sh)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
bench_start "${BASH_SOURCE[0]}" "${1:-}"
BENCH_RUNS=${BENCH_RUNS:-5}
check_runs
CORPORA=${METACPU_CORPORA:-corpus-quick corpus}
starting_azmount
found=
for c in $CORPORA; do
	if [[ -d $BENCH_DIR/$c ]]; then found+="$c "; else echo "no corpus in $BENCH_DIR/$c (BENCH_QUICK=1 bash bench/peers.sh makes corpus-quick, bench/bench.sh corpus): left out" >&2; fi
done
[[ -n $found ]] || exit 2
CORPORA=$found
pair_run metacpu
copy_dest metacpu "$(du -sb "$BENCH_DIR/corpus" 2>/dev/null | cut -f1 || echo 2000000000)" "$WORK"
OUT=$CP_DIR/metacpu-out
ON_EXIT_RM=("$OUT" ${CP_DIR_OWN:+"$CP_DIR_OWN"})
if [[ -z ${BIN:-} ]]; then
	BIN=$WORK/bin
	(cd "$REPO" && go build -o "$BIN/" ./cmd/azfs ./cmd/azmount)
fi
export HOME=$WORK/home AZFS_CACHE_DIR=$WORK/cache
mkdir -p "$HOME" "$AZFS_CACHE_DIR"

declare -A V=()
add() { V[$1]+="$2 "; }
med() { tr ' ' '\n' <<<"${V[$1]}" | grep . | median; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# step CORPUS TOOL AZMOUNT OP: one OP (ls or cp) out of a fresh mount of CORPUS's vault.
step() {
	local c=$1 t=$2 op=$4 src=$BENCH_DIR/$1 c0 c1 t0 wall
	export AZFS_CONFIG_DIR=$WORK/config-$c
	"$3" --cache-size 256MiB --point latest "$MNT" 2>"$WORK/azmount.err" &
	MPID=$!
	for _ in $(seq 1200); do [[ -d $MNT$src ]] && break; sleep 0.05; done
	[[ -d $MNT$src ]] || { echo "the mount did not show $src: $(tail -3 "$WORK/azmount.err")" >&2; exit 1; }
	c0=$(proc_cpu "$MPID")
	t0=$EPOCHREALTIME
	if [[ $op == ls ]]; then ls -lR "$MNT$src" >/dev/null; else cp -a "$MNT$src" "$OUT"; fi
	wall=$(secs "$t0" "$EPOCHREALTIME")
	c1=$(proc_cpu "$MPID")
	end_mount "$MPID" "$MNT"
	MPID=
	rm -rf "$OUT"
	add "$c.$t.$op.cpu" "$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')"
	add "$c.$t.$op.wall" "$wall"
	echo "run $i $c $t $op: wall $wall s, mount CPU $(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }') s" >&2
}

declare -A ENTRIES=()
for c in $CORPORA; do
	export AZFS_CONFIG_DIR=$WORK/config-$c
	mkdir -p -m 700 "$AZFS_CONFIG_DIR"
	"$BIN/azfs" vault create "$WORK/vault-$c" --generate-passphrase "$WORK/pass-$c" >/dev/null 2>&1
	"$BIN/azfs" backup -q "$BENCH_DIR/$c"
	ENTRIES[$c]=$(find "$BENCH_DIR/$c" | wc -l)
done

for i in $(seq "$BENCH_RUNS"); do
	if ((i % 2)); then order="base new"; else order="new base"; fi
	for c in $CORPORA; do
		for op in ls cp; do
			for t in $order; do
				if [[ $t == base ]]; then step "$c" base "$BASE/azmount" "$op"; else step "$c" new "$BIN/azmount" "$op"; fi
			done
		done
	done
done

pairs() { # A B: per-run A/B
	paste <(tr ' ' '\n' <<<"${V[$1]}") <(tr ' ' '\n' <<<"${V[$2]}") | awk -F'\t' '$1 != "" && $2 > 0 { printf "%.2f ", $1 / $2 }'
}
{
	echo "# azmount's per-file cost: ls -lR and cp -a out of a fresh mount, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
	echo
	echo "Medians of $BENCH_RUNS interleaved runs; --cache-size 256MiB; copies into \`$CP_DIR\` ($(stat -f -c %T "$CP_DIR")); base = \`$BASE/azmount\`, new = \`$BIN/azmount\`. CPU = the mount server's user + system seconds during the command."
	echo
	echo "| corpus (entries) | step | base CPU s | new CPU s | new/base CPU (per run) | base wall s | new wall s | CPU µs per entry, base / new |"
	echo "|---|---|---|---|---|---|---|---|"
	for c in $CORPORA; do
		for op in ls cp; do
			b=$(med "$c.base.$op.cpu")
			n=$(med "$c.new.$op.cpu")
			r=$(tr ' ' '\n' <<<"$(pairs "$c.new.$op.cpu" "$c.base.$op.cpu")" | grep . | median)
			printf '| %s (%s) | %s | %s | %s | %s (%s) | %s | %s | %s |\n' "$c" "${ENTRIES[$c]}" "$([[ $op == ls ]] && echo 'ls -lR' || echo 'cp -a')" \
				"$b" "$n" "$r" "$(pairs "$c.new.$op.cpu" "$c.base.$op.cpu")" "$(med "$c.base.$op.wall")" "$(med "$c.new.$op.wall")" \
				"$(awk -v b="$b" -v n="$n" -v e="${ENTRIES[$c]}" 'BEGIN { printf "%.0f / %.0f", b / e * 1e6, n / e * 1e6 }')"
		done
	done
} | tee "$RESULTS"
