#!/usr/bin/env bash
# bench/randread.sh: issue 15's random-read target, the starting azmount against this one.
#
# Usage: bench/randread.sh [-h]       (make bench runs it)
#
# Backs the corpus's big.bin (~210 MB, an ELF binary that zstd halves) up alone with this azfs
# (both azmounts read the vault), then BENCH_RUNS times, interleaved (the order of base and
# new alternating), for each azmount: a fresh mount, big.bin's first 4 KiB read (peers.sh's
# "warm mount"), 200 random 4 KiB reads (bench/randread, seeded per run, the same for both
# binaries); once plain and once, on another fresh mount, with POSIX_FADV_RANDOM. Each read
# either finds its chunk loaded or waits for it to be fetched, authenticated and decoded
# (docs/performance.md §3.9). Reports, medians: p50 and p90 ms, and the mount's CPU seconds
# (user + system, /proc/PID/stat) during the 200 reads; per-run ratios new/base of the p50.
# The table goes to $BENCH_DIR/results-randread-<time>.md.
#
# Environment knobs:
#   BIN=DIR                        azfs and azmount to measure (default: built from the repo)
#   BENCH_BASELINE=DIR             the starting binaries (default $BENCH_DIR/baseline-8cf8197)
#   BENCH_DIR=/var/tmp/azfs-bench  the corpus (made by bench.sh or peers.sh), results
#   BENCH_RUNS=5                   runs; medians reported
#   RANDREAD_CACHE=256MiB          azmount --cache-size
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
bench_start "${BASH_SOURCE[0]}" "${1:-}"
BENCH_RUNS=${BENCH_RUNS:-5}
check_runs
CACHE=${RANDREAD_CACHE:-256MiB}
FILE=$BENCH_DIR/corpus/big.bin
[[ -f $FILE ]] || { echo "no $FILE: run bench/bench.sh or bench/peers.sh once" >&2; exit 2; }
starting_azmount
pair_run randread
bench_vault
"$BIN/azfs" backup -q "$FILE"
BIG=$MNT$FILE
cat "$FILE" >/dev/null

declare -A V=()
add() { V[$1]+="$2 "; }
med() { tr ' ' '\n' <<<"${V[$1]}" | grep . | median; }
field() { sed "s/.*$1=\([0-9.]*\).*/\1/" <<<"$2"; }

# reads TOOL AZMOUNT KEY [RANDREAD FLAGS]: one fresh mount, its first 4 KiB, 200 random reads.
reads() {
	local t=$1 azmount=$2 key=$3 rr c0 c1
	shift 3
	"$azmount" --cache-size "$CACHE" --point latest "$MNT" 2>"$WORK/azmount.err" &
	MPID=$!
	for _ in $(seq 1200); do [[ -f $BIG ]] && break; sleep 0.05; done
	[[ -f $BIG ]] || { echo "the mount did not show $FILE: $(tail -3 "$WORK/azmount.err")" >&2; exit 1; }
	head -c 4096 "$BIG" >/dev/null
	c0=$(proc_cpu "$MPID")
	rr=$("$WORK/bin/randread" -file "$BIG" -n 200 -size 4096 -seed "$((1000 + i))" "$@")
	c1=$(proc_cpu "$MPID")
	end_mount "$MPID" "$MNT"
	MPID=
	add "$t.$key.p50" "$(field p50_ms "$rr")"
	add "$t.$key.p90" "$(field p90_ms "$rr")"
	add "$t.$key.cpu" "$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')"
	echo "run $i $t $key: $rr" >&2
}

for i in $(seq "$BENCH_RUNS"); do
	if ((i % 2)); then order="base new"; else order="new base"; fi
	for t in $order; do
		if [[ $t == base ]]; then m=$BASE/azmount; else m=$BIN/azmount; fi
		reads "$t" "$m" plain
		reads "$t" "$m" random -fadvise-random
	done
done

pairs() { # A B: per-run A/B
	paste <(tr ' ' '\n' <<<"${V[$1]}") <(tr ' ' '\n' <<<"${V[$2]}") | awk -F'\t' '$1 != "" && $2 > 0 { printf "%.2f ", $1 / $2 }'
}
pass() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo FAIL; fi; }
{
	echo "# random 4 KiB reads of big.bin on a warm mount, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
	echo
	echo "\`$FILE\` backed up alone; --cache-size $CACHE; fresh mount, first 4 KiB read, 200 random 4 KiB reads; medians of $BENCH_RUNS interleaved runs; base = \`$BASE/azmount\`, new = \`$BIN/azmount\`."
	echo
	echo "| azmount | reads | p50 ms | p90 ms | mount CPU s during the reads | p50 new/base per run |"
	echo "|---|---|---|---|---|---|"
	for key in plain random; do
		for t in base new; do
			r=""
			[[ $t == new ]] && r=$(pairs "new.$key.p50" "base.$key.p50")
			echo "| $t | ${key/random/POSIX_FADV_RANDOM} | $(med "$t.$key.p50") | $(med "$t.$key.p90") | $(med "$t.$key.cpu") | $r |"
		done
	done
	echo
	echo "| target | value | |"
	echo "|---|---|---|"
	echo "| p50 < 1 ms, warm mount (base: $(med base.plain.p50)) | $(med new.plain.p50) | $(pass "$(med new.plain.p50) < 1") |"
	echo "| … with POSIX_FADV_RANDOM (base: $(med base.random.p50)) | $(med new.random.p50) | $(pass "$(med new.random.p50) < 1") |"
} | tee "$RESULTS"
