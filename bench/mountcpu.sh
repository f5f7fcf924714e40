#!/usr/bin/env bash
# bench/mountcpu.sh: issue 15's mount targets, the starting azmount against this one, in one run.
#
# Usage: bench/mountcpu.sh [-h]       (make bench runs it)
#
# Backs the corpus up once with this azfs (both azmounts read the vault), then BENCH_RUNS
# times, interleaved (plain copy, base, new; the order of base and new alternating):
#   plain   cp -a of the corpus (the reference), into the same destination as the others
#   base    cp -a out of a fresh mount by the starting azmount
#   new     cp -a out of a fresh mount by this azmount
# For each mount: wall s, MB/s, the mount server's CPU s (user + system, /proc/PID/stat)
# during the copy and per GB, its VmHWM against --cache-size + 64 MiB; then `cat big.bin`
# (warms the mount), the page cache of big.bin dropped (POSIX_FADV_DONTNEED), 200 random
# 4 KiB reads with POSIX_FADV_RANDOM (bench/randread): p50/p90 with the chunks cached; then, as
# peers.sh measures issue 15's target, on fresh mounts with big.bin's first 4 KiB read, 200
# random 4 KiB reads (seeded per run, the same for both binaries), plain and with
# POSIX_FADV_RANDOM: p50 (the reads load their chunks: misses and hits both count). Once per
# binary, on fresh mounts: the storage loads (azmount's exit log) of a cold 4 KiB read in
# the middle of big.bin, beyond those of a mount that only looked the file up.
# Prints medians, per-run ratios and the targets; the table goes to
# $BENCH_DIR/results-mountcpu-<time>.md.
#
# Environment knobs:
#   BIN=DIR                        azfs and azmount to measure (default: built from the repo)
#   BENCH_BASELINE=DIR             the starting binaries (default $BENCH_DIR/baseline-8cf8197)
#   BENCH_DIR=/var/tmp/azfs-bench  the corpus (made by bench.sh or peers.sh), results
#   BENCH_RUNS=3                   runs; medians reported
#   MOUNTCPU_CACHE=256MiB          azmount --cache-size
#   BENCH_CP_DIR=DIR               where the copies go, the plain one too (default: a directory
#                                  of its own in /dev/shm when that tmpfs has room, else the work
#                                  dir; see copy_dest in lib.sh)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
bench_start "${BASH_SOURCE[0]}" "${1:-}"
BENCH_RUNS=${BENCH_RUNS:-3}
check_runs
CACHE=${MOUNTCPU_CACHE:-256MiB}
CACHE_MIB=$(numfmt --from=iec-i --to-unit=1Mi "${CACHE%B}")
CORPUS=$BENCH_DIR/corpus
[[ -d $CORPUS ]] || { echo "no corpus in $CORPUS: run bench/bench.sh or bench/peers.sh once" >&2; exit 2; }
starting_azmount
pair_run mountcpu
BYTES=$(find "$CORPUS" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
copy_dest mountcpu "$BYTES" "$WORK"
OUT=$CP_DIR/mountcpu-out
mkdir -p "$OUT"
ON_EXIT_RM=("$OUT" ${CP_DIR_OWN:+"$CP_DIR_OWN"})
bench_vault
"$BIN/azfs" backup -q "$CORPUS"
BIG=$MNT$CORPUS/big.bin
find "$CORPUS" -type f -exec cat {} + >/dev/null

# mount AZMOUNT: a fresh mount in MNT, MPID its server.
mount() {
	"$1" --cache-size "$CACHE" --point latest "$MNT" 2>"$WORK/azmount.err" &
	MPID=$!
	for _ in $(seq 1200); do [[ -d $MNT$CORPUS ]] && return; sleep 0.05; done
	echo "the mount did not show $CORPUS: $(tail -3 "$WORK/azmount.err")" >&2
	exit 1
}
# unmount: ends the mount; LOADS is the storage loads its exit log counts.
unmount() {
	end_mount "$MPID" "$MNT"
	MPID=
	LOADS=$(sed -n 's/.*msg=unmounted .*loads=\([0-9]*\).*/\1/p' "$WORK/azmount.err")
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
declare -A V=()
add() { V[$1]+="$2 "; }
med() { tr ' ' '\n' <<<"${V[$1]}" | grep . | median; }

# copy TOOL AZMOUNT: one cp -a out of a fresh mount, then the warm random reads.
copy() {
	local t=$1 t0 c0 c1 wall rr
	rm -rf "$OUT/$t" && sync
	mount "$2"
	c0=$(proc_cpu "$MPID")
	t0=$EPOCHREALTIME
	cp -a "$MNT$CORPUS" "$OUT/$t"
	wall=$(secs "$t0" "$EPOCHREALTIME")
	c1=$(proc_cpu "$MPID")
	add "$t.wall" "$wall"
	add "$t.cpu" "$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')"
	add "$t.hwm" "$(vmhwm_mb "$MPID")"
	cat "$BIG" >/dev/null
	rr=$("$WORK/bin/randread" -file "$BIG" -n 200 -size 4096 -seed 7 -fadvise-dontneed -fadvise-random)
	add "$t.p50" "$(sed 's/.*p50_ms=\([0-9.]*\).*/\1/' <<<"$rr")"
	add "$t.p90" "$(sed 's/.*p90_ms=\([0-9.]*\).*/\1/' <<<"$rr")"
	unmount
	echo "run $i $t: cp -a $wall s, $rr" >&2
	fresh_reads "$t" "$2"
}

# fresh_reads TOOL AZMOUNT: random 4 KiB reads of big.bin on fresh mounts whose first 4 KiB
# was read (peers.sh's "warm mount"), plain (TOOL.fp50) and with FADV_RANDOM (TOOL.ff50).
fresh_reads() {
	local t=$1 key args rr
	for key in fp50 ff50; do
		if [[ $key == fp50 ]]; then args=(); else args=(-fadvise-random); fi
		mount "$2"
		head -c 4096 "$BIG" >/dev/null
		rr=$("$WORK/bin/randread" -file "$BIG" -n 200 -size 4096 -seed "$((1000 + i))" "${args[@]}")
		add "$t.$key" "$(sed 's/.*p50_ms=\([0-9.]*\).*/\1/' <<<"$rr")"
		unmount
		echo "run $i $t: fresh mount, random reads ${args[*]:-plain}: $rr" >&2
	done
}

for i in $(seq "$BENCH_RUNS"); do
	rm -rf "$OUT/plain" && sync
	t0=$EPOCHREALTIME
	cp -a "$CORPUS" "$OUT/plain"
	add plain.wall "$(secs "$t0" "$EPOCHREALTIME")"
	if ((i % 2)); then order="base new"; else order="new base"; fi
	for t in $order; do
		if [[ $t == base ]]; then copy base "$BASE/azmount"; else copy new "$BIN/azmount"; fi
	done
done

# cold LOADS of a 4 KiB read in the middle of big.bin beyond those of a lookup.
cold() {
	local stat read
	mount "$1" && stat "$BIG" >/dev/null && unmount
	stat=$LOADS
	mount "$1" && stat "$BIG" >/dev/null
	"$WORK/bin/randread" -file "$BIG" -n 1 -size 4096 -seed 3 -fadvise-random >/dev/null
	unmount
	read=$LOADS
	echo $((read - stat))
}
cold_base=$(cold "$BASE/azmount")
cold_new=$(cold "$BIN/azmount")

gb=$(awk -v b="$BYTES" 'BEGIN { print b / 1e9 }')
row() { # TOOL
	local w c
	w=$(med "$1.wall")
	c=$(med "$1.cpu")
	printf '| %s | %s | %.0f | %s | %.2f | %s | %s / %s | %s / %s |\n' "$1" "$w" "$(awk -v b="$BYTES" -v w="$w" 'BEGIN { print b / 1e6 / w }')" \
		"$c" "$(awk -v c="$c" -v g="$gb" 'BEGIN { print c / g }')" "$(med "$1.hwm")" "$(med "$1.p50")" "$(med "$1.p90")" "$(med "$1.fp50")" "$(med "$1.ff50")"
}
pairs() { # A B: per-run A/B
	paste <(tr ' ' '\n' <<<"${V[$1]}") <(tr ' ' '\n' <<<"${V[$2]}") | awk -F'\t' '$1 != "" && $2 > 0 { printf "%.2f ", $1 / $2 }'
}
pass() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo FAIL; fi; }
nb=$(tr ' ' '\n' <<<"$(pairs base.wall new.wall)" | grep . | median)
np=$(tr ' ' '\n' <<<"$(pairs new.wall plain.wall)" | grep . | median)
cpugb=$(awk -v c="$(med new.cpu)" -v g="$gb" 'BEGIN { printf "%.2f", c / g }')
{
	echo "# azmount serving cp -a, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
	echo
	echo "Corpus \`$CORPUS\`, $((BYTES / 1000000)) MB of files; --cache-size $CACHE; copies into \`$OUT\` ($(stat -f -c %T "$OUT")); medians of $BENCH_RUNS interleaved runs; base = \`$BASE/azmount\`, new = \`$BIN/azmount\`."
	echo
	echo "| copy | wall s | MB/s | mount CPU s | CPU s/GB | VmHWM MiB | random 4 KiB, chunks cached, p50 / p90 ms | random 4 KiB, fresh mount, p50 plain / FADV_RANDOM ms |"
	echo "|---|---|---|---|---|---|---|---|"
	echo "| plain | $(med plain.wall) | $(awk -v b="$BYTES" -v w="$(med plain.wall)" 'BEGIN { printf "%.0f", b / 1e6 / w }') | | | | | |"
	row base
	row new
	echo
	echo "| target | value | |"
	echo "|---|---|---|"
	echo "| throughput ≥ 3x base (per run: $(pairs base.wall new.wall)) | ${nb}x | $(pass "$nb >= 3") |"
	echo "| time ≤ 2x plain cp -a (per run: $(pairs new.wall plain.wall)) | ${np}x | $(pass "$np <= 2") |"
	echo "| mount CPU ≤ 3 s per GB | $cpugb | $(pass "$cpugb <= 3") |"
	echo "| VmHWM ≤ --cache-size + 64 MiB ($((CACHE_MIB + 64)) MiB) | $(med new.hwm) | $(pass "$(med new.hwm) <= $CACHE_MIB + 64") |"
	echo "| random 4 KiB p50 < 1 ms, chunks cached | $(med new.p50) | $(pass "$(med new.p50) < 1") |"
	echo "| random 4 KiB p50 < 1 ms, fresh mount (as peers.sh; base: $(med base.fp50)) | $(med new.fp50) | $(pass "$(med new.fp50) < 1") |"
	echo "| … with POSIX_FADV_RANDOM (base: $(med base.ff50)) | $(med new.ff50) | $(pass "$(med new.ff50) < 1") |"
	echo "| cold 4 KiB read: chunk loads beyond the lookup ≤ 1 (base: $cold_base) | $cold_new | $(pass "$cold_new <= 1") |"
} | tee "$RESULTS"
