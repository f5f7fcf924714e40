#!/usr/bin/env bash
# bench/scale.sh: azfs at scale (issue 6, item 6), and issue 15's "no regression" for it:
# azfs as built now ("new") against the binary issue 15 starts from ("base"), runs
# interleaved (the order of base and new alternating from run to run), on a synthetic tree of
# about two million files (bench/mkscale: one directory of 500,000 entries, a chain of 200
# directories, 1,500 directories of 1,000 small and empty files) and a sparse 1 TiB file
# with a few KiB of data, of which the last byte 0x5a.
#
# Usage: bench/scale.sh [-h]       (or: make scale)
#
# Each of BENCH_RUNS runs, for base and new in turn, into a fresh local vault:
#   1. first backup: wall s, files/s, CPU s (user + system, /usr/bin/time), peak RSS, MB up;
#      then the vault's size
#   2. second backup, nothing changed: wall s, CPU s, peak RSS
#   3. a fresh mount (time until the tree shows): `ls -f` of the 500,000-entry directory
#      (its count checked), the mount server's CPU s during it (/proc/PID/stat), its VmHWM,
#      and its requests and bytes fetched (azmount's exit line)
#   4. a fresh mount that reads nothing (what mounting alone fetches: the index and the root):
#      VmHWM, requests, bytes fetched
#   5. a fresh mount: the last byte of sparse.img (dd with skip; its value checked), then
#      4 KiB at 1 GiB compared with the source: wall s; VmHWM, requests, bytes fetched (KiB,
#      not the file)
# Before the runs every file is read once (the page cache warm for both binaries alike; 5
# minutes on a loaded machine, SCALE_WARM=0 leaves it out when the cache is warm already).
# After the runs, unless SCALE_SKIP_RESTIC=1: restic's first and second backup of the tree
# without sparse.img (restic reads the holes of a sparse file: 1 TiB of zeros), once.
# Prints a table of medians, new / base ratios (median of each, and per run) and the load
# average at each step; the table goes to $BENCH_DIR/scale-<date>-<time>.md.
#
# Environment knobs:
#   BIN=DIR                        new is DIR/azfs and DIR/azmount (make passes bin); otherwise
#                                  built from the repo into the work dir
#   BENCH_BASELINE=DIR             base is DIR/azfs and DIR/azmount (default
#                                  $BENCH_DIR/baseline-8cf8197; when missing, new is measured alone)
#   SCALE_SKIP_BASE=1              new alone
#   SCALE_WARM=0                   do not read the tree before the runs
#   BENCH_RUNS=3                   runs of each binary; medians reported
#   BENCH_DIR=/var/tmp/azfs-bench  the tree, results, logs/scale-<time>/
#   SCALE_TREE=DIR                 the tree ($BENCH_DIR/scale-tree): made by mkscale when it lacks
#                                  the .mkscale marker, reused otherwise (2.3 million inodes,
#                                  2.3 GB); kept unless SCALE_CLEAN=1
#   SCALE_ARGS="-wide N -broad M"  mkscale flags for a smaller tree (with another SCALE_TREE);
#                                  the ls check follows -wide
#   SCALE_AZMOUNT_FLAGS=           azmount flags, for new and base alike (default: none, each
#                                  binary's own defaults)
#   SCALE_SKIP_RESTIC=1            no restic (RESTIC=PATH, else $BENCH_DIR/restic-0.19.0/restic,
#                                  else restic on PATH)
#   SCALE_CLEAN=1                  delete the tree at the end
#   BENCH_KEEP_STATE=1             keep the last run's vaults in the work dir
#   BENCH_MOUNT_TIMEOUT=120        seconds for a mount to show the tree
#   BENCH_LOCK_WAIT=0              seconds to wait for another bench.sh/peers.sh/scale.sh
#
# Needs: go, jq, /usr/bin/time, fusermount3 and /dev/fuse (the mount steps), about 2.3 GB
# and 2.3 million inodes for the tree, 1.2 GB per vault (two at a time).
# Exit status: 0 when both binaries were measured, 1 when one could not be.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
bench_start "${BASH_SOURCE[0]}" "${1:-}"
BENCH_RUNS=${BENCH_RUNS:-3}
check_runs
BENCH_MOUNT_TIMEOUT=${BENCH_MOUNT_TIMEOUT:-120}
read -ra AZMOUNT_FLAGS <<<"${SCALE_AZMOUNT_FLAGS:-}"
TREE=$(realpath -m "${SCALE_TREE:-$BENCH_DIR/scale-tree}")
BASE_DIR=${BENCH_BASELINE:-$BENCH_DIR/baseline-8cf8197}

TOOLS=(new)
if [[ ${SCALE_SKIP_BASE:-0} != 1 ]]; then
	if [[ -x $BASE_DIR/azfs && -x $BASE_DIR/azmount ]]; then
		TOOLS+=(base)
	else
		echo "scale: no starting binary in $BASE_DIR (BENCH_BASELINE): new alone" >&2
	fi
fi

work_dirs scale
RESULTS=$BENCH_DIR/scale-$STAMP.md
LOG_TAG=scale
MOUNT_DIRS=("$WORK/mnt-azfs")

# scale_cleanup: SCALE_CLEAN's removal of the tree, then harness_cleanup (which exits with
# the script's status).
scale_cleanup() {
	local rc=$?
	if [[ ${SCALE_CLEAN:-0} == 1 ]]; then safe_rm "$TREE"; fi
	(exit "$rc")
	harness_cleanup
}
trap scale_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

harness_lock
remove_stale "$BENCH_DIR"/scale.*
mkdir -p "$WORK" "$LOGS" "$STATE" "$SCRATCH" "$BIN" "${MOUNT_DIRS[@]}"

for c in go jq /usr/bin/time; do command -v "$c" >/dev/null || die "missing $c"; done
FUSE=1
if [[ ! -e /dev/fuse ]] || ! command -v fusermount3 >/dev/null; then
	FUSE=0
	log "no FUSE here: the mount steps are not measured"
fi
keep_go_env
resolve_azfs "$NEW_DIR" "$BIN"
NEW_AZFS=$AZFS NEW_AZMOUNT=$AZMOUNT

azfs_of() { if [[ $1 == base ]]; then AZFS=$BASE_DIR/azfs AZMOUNT=$BASE_DIR/azmount; else AZFS=$NEW_AZFS AZMOUNT=$NEW_AZMOUNT; fi; }
# The harness's hooks (lib.sh): every tool's state has its own HOME and XDG dirs.
tool_env() { :; }
mount_cmd() {
	azfs_of "$1"
	MNT=$WORK/mnt-azfs
	MCMD=("$AZMOUNT" "${AZMOUNT_FLAGS[@]}" --point latest "$MNT")
	MTARGET=$MNT$TREE
}
load() { cut -d' ' -f1 /proc/loadavg; }

# ---------------------------------------------------------------- the tree

if [[ -f $TREE/.mkscale ]]; then
	log "reusing the tree $TREE ($(cat "$TREE/.mkscale"))"
	MADE=""
else
	safe_rm "$TREE"
	(cd "$REPO" && go build -o "$BIN/" ./bench/mkscale) || die "bench/mkscale does not build"
	log "making the tree in $TREE ($(df -i "$BENCH_DIR" | awk 'NR == 2 { print $4 }') inodes free)"
	# shellcheck disable=SC2086 # SCALE_ARGS are flags
	"$BIN/mkscale" ${SCALE_ARGS:-} "$TREE" | tee "$LOGS/mkscale.log" >&2
	MADE=$(tail -1 "$LOGS/mkscale.log" | sed 's/^mkscale: //')
fi
WIDE=$(sed -n 's/.*wide=\([0-9]*\).*/\1/p' "$TREE/.mkscale")
if [[ ${SCALE_WARM:-1} == 1 ]]; then
	log "warming the page cache: every file but sparse.img read once"
	sync
	run_timed /dev/null "$LOGS/warm.err" find "$TREE" -type f ! -name sparse.img -exec cat -- {} +
	WARM="every file read once in $(fmt "$T_WALL" 1) s ($(fmt "$T_CPU" 1) s CPU) before the runs"
else
	WARM="not read before the runs (SCALE_WARM=0)"
fi

# ---------------------------------------------------------------- steps

# backup TOOL RUN STEP: a backup of the tree with TOOL's azfs into its vault; adds
# STEP_s, STEP_cpu, STEP_rss, STEP_fps (files/s), STEP_up_mb, STEP_load.
backup() {
	local t=$1 i=$2 k=$3 out=$LOGS/$1-$2-$3 files
	azfs_of "$t"
	sync
	add "$t.${k}_load" "$(load)"
	run_timed "$out.json" "$out.err" "$AZFS" backup --json "$TREE"
	if ((T_RC != 0)); then
		kill_tool "$t" "$t run $i: $k backup exited $T_RC: $(errtail "$out.err")"
		return 1
	fi
	files=$(jq .stats.files "$out.json")
	add "$t.${k}_s" "$T_WALL"
	add "$t.${k}_cpu" "$T_CPU"
	add "$t.${k}_rss" "$T_RSS_MB"
	add "$t.${k}_fps" "$(awk -v n="$files" -v s="$T_WALL" 'BEGIN { printf "%.0f", n / s }')"
	add "$t.${k}_up_mb" "$(jq '(.storage.bytes_up // 0) / 1e6' "$out.json")"
	add "$t.${k}_files" "$files"
	[[ $k == second ]] && add "$t.second_unchanged" "$(jq .stats.files_unchanged "$out.json")"
	log "$t run $i: $k backup $T_WALL s, $T_CPU s CPU, peak RSS $T_RSS_MB MB ($files files)"
}

# mount_end TOOL KEY: the mount server's VmHWM (KEY_rss), then stops it and adds its exit
# line's requests and bytes fetched (KEY_req, KEY_down_mb).
mount_end() {
	local t=$1 k=$2 line
	add "$t.${k}_rss" "$(vmhwm_mb "$MPID")"
	unmount_tool "$t"
	line=$(grep -o 'requests=[0-9]* loads=[0-9]* bytes_down=[0-9]*' "$MLOG" | tail -1)
	if [[ -n $line ]]; then
		add "$t.${k}_req" "$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$line")"
		add "$t.${k}_down_mb" "$(sed 's/.*bytes_down=\([0-9]*\).*/\1/' <<<"$line" | awk '{ printf "%.2f", $1 / 1e6 }')"
	fi
}

# mounts TOOL RUN: the three fresh mounts of the latest point.
mounts() {
	local t=$1 i=$2 cpu0 n last
	start_mount "$t" "$i-ls" || return 0
	sync
	add "$t.ls_load" "$(load)"
	cpu0=$(proc_cpu "$MPID")
	run_timed "$SCRATCH/ls.out" "$LOGS/$t-$i-ls.err" ls -f "$MTARGET/wide"
	add "$t.ls_mount_cpu" "$(awk -v a="$cpu0" -v b="$(proc_cpu "$MPID")" 'BEGIN { printf "%.2f", b - a }')"
	n=$(wc -l <"$SCRATCH/ls.out")
	# ls -f lists what readdir returns: the entries, and . and .. when the file system
	# returns them (azmount does not).
	if ((T_RC != 0)) || ((n != WIDE && n != WIDE + 2)); then
		contract "$t run $i: ls -f of wide/ listed $n entries (rc=$T_RC), want $WIDE: $(errtail "$LOGS/$t-$i-ls.err")"
	fi
	add "$t.ls_s" "$T_WALL"
	add "$t.ls_n" "$n"
	mount_end "$t" ls
	log "$t run $i: ls -f of wide/ $T_WALL s, $n entries"

	start_mount "$t" "$i-idle" || return 0
	mount_end "$t" idle

	start_mount "$t" "$i-sparse" || return 0
	run_timed "$SCRATCH/last.out" "$LOGS/$t-$i-sparse.err" \
		dd if="$MTARGET/sparse.img" bs=1 skip=$(((1 << 40) - 1)) count=1 status=none
	add "$t.sparse_s" "$T_WALL"
	last=$(od -An -tx1 "$SCRATCH/last.out" | tr -d ' \n')
	[[ $last == 5a ]] || contract "$t run $i: last byte of sparse.img through the mount 0x$last, want 0x5a"
	run_timed "$SCRATCH/4k.out" "$LOGS/$t-$i-sparse4k.err" \
		dd if="$MTARGET/sparse.img" bs=4096 skip=$((1 << 18)) count=1 status=none
	add "$t.sparse4k_s" "$T_WALL"
	dd if="$TREE/sparse.img" bs=4096 skip=$((1 << 18)) count=1 status=none | cmp -s - "$SCRATCH/4k.out" ||
		contract "$t run $i: 4 KiB at 1 GiB of sparse.img through the mount differs from the source"
	mount_end "$t" sparse
}

# ---------------------------------------------------------------- measure (runs interleaved)

for ((i = 1; i <= BENCH_RUNS; i++)); do
	order=("${TOOLS[@]}")
	if ((i % 2 == 0 && ${#TOOLS[@]} == 2)); then order=("${TOOLS[1]}" "${TOOLS[0]}"); fi
	for t in "${order[@]}"; do
		dead "$t" && continue
		reset_state "$t"
		azfs_of "$t"
		"$AZFS" vault create "$STATE/$t/vault" --generate-passphrase "$STATE/$t/passphrase" \
			>"$LOGS/$t-$i-create.out" 2>"$LOGS/$t-$i-create.err" ||
			{ kill_tool "$t" "$t run $i: vault create failed: $(errtail "$LOGS/$t-$i-create.err")"; continue; }
		backup "$t" "$i" first || continue
		sync
		add "$t.vault_mb" "$(du -sb "$STATE/$t/vault" | awk '{ printf "%.0f", $1 / 1e6 }')"
		backup "$t" "$i" second || continue
		if ((FUSE)); then mounts "$t" "$i"; fi
	done
done

RESTIC_LINE=""
if [[ ${SCALE_SKIP_RESTIC:-0} != 1 ]]; then
	RESTIC=${RESTIC:-$BENCH_DIR/restic-0.19.0/restic}
	[[ -x $RESTIC ]] || RESTIC=$(command -v restic || true)
	if [[ -n $RESTIC ]]; then
		reset_state restic
		export RESTIC_REPOSITORY=$STATE/restic/repo RESTIC_PASSWORD=azfs-scale-bench
		"$RESTIC" init >"$LOGS/restic-init.out" 2>&1 || die "restic init failed: $(errtail "$LOGS/restic-init.out")"
		for k in first second; do
			sync
			run_timed "$LOGS/restic-$k.out" "$LOGS/restic-$k.err" "$RESTIC" backup --exclude "$TREE/sparse.img" "$TREE"
			((T_RC == 0)) || contract "restic $k backup exited $T_RC: $(errtail "$LOGS/restic-$k.err")"
			add "restic.${k}_s" "$T_WALL"
			add "restic.${k}_cpu" "$T_CPU"
			add "restic.${k}_rss" "$T_RSS_MB"
		done
		add restic.vault_mb "$(du -sb "$RESTIC_REPOSITORY" | awk '{ printf "%.0f", $1 / 1e6 }')"
		RESTIC_LINE="$("$RESTIC" version | cut -d' ' -f1-2), once, the tree without sparse.img"
	else
		log "no restic: left out"
	fi
fi

# ---------------------------------------------------------------- report

# row TITLE KEY DIGITS: medians of new and base, new / base of the medians, paired per run.
row() {
	local line="| $1 | $(cell "new.$2" "$3") |"
	if [[ " ${TOOLS[*]} " == *" base "* ]]; then
		line+=" $(cell "base.$2" "$3") | $(x "$(ratio "$(med "new.$2")" "$(med "base.$2")")") | $(paired "new.$2" "base.$2") |"
	fi
	if [[ -n $RESTIC_LINE ]]; then line+=" $(fmt "$(med "restic.$2")" "$3") |"; fi
	echo "$line"
}

report() {
	local hdr="| step (medians) | new |" sep="|---|---|"
	if [[ " ${TOOLS[*]} " == *" base "* ]]; then
		hdr+=" base | new / base | paired per run |"
		sep+="---|---|---|"
	fi
	if [[ -n $RESTIC_LINE ]]; then
		hdr+=" restic |"
		sep+="---|"
	fi
	echo "# scale: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, local vault"
	echo
	echo "Tree \`$TREE\`: $(med new.first_files) files ($(cat "$TREE/.mkscale"))${MADE:+; made by mkscale: $MADE}; $WARM."
	echo "Medians of $BENCH_RUNS interleaved run(s) (order of base and new alternating); fresh vault each run."
	echo "new: \`$NEW_AZFS\` (the scripts at $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo ?)$(git -C "$REPO" diff --quiet 2>/dev/null || echo ", with uncommitted changes")); base: \`$BASE_DIR/azfs\`${AZMOUNT_FLAGS[*]:+; azmount flags \`${AZMOUNT_FLAGS[*]}\`}${RESTIC_LINE:+; restic: $RESTIC_LINE}."
	echo "CPU is user + system seconds (of the backup, or of the mount server during \`ls -f\`); time ratios below 1 are faster."
	echo "Load average (1 min) at the start of each step, new / base: first backup $(R_load first), second $(R_load second), ls $(R_load ls); at the end $(cut -d' ' -f1-3 /proc/loadavg)."
	echo
	echo "$hdr"
	echo "$sep"
	row "first backup: wall s" first_s 2
	row "first backup: CPU s" first_cpu 1
	row "first backup: peak RSS MB" first_rss 0
	row "first backup: files/s" first_fps 0
	row "first backup: MB up" first_up_mb 0
	row "vault size MB" vault_mb 0
	row "second backup, nothing changed: wall s" second_s 2
	row "second backup: CPU s" second_cpu 1
	row "second backup: peak RSS MB" second_rss 0
	if ((FUSE)); then
		row "mount until the tree shows: s" mount_s 2
		row "\`ls -f\` of wide/ ($WIDE entries): wall s" ls_s 2
		row "... mount server CPU s during it" ls_mount_cpu 2
		row "... mount VmHWM MB" ls_rss 0
		row "... requests" ls_req 0
		row "... MB fetched" ls_down_mb 1
		row "fresh mount, nothing read: VmHWM MB" idle_rss 0
		row "... requests" idle_req 0
		row "... MB fetched (index, root)" idle_down_mb 2
		row "last byte of sparse.img (1 TiB), fresh mount: s" sparse_s 3
		row "... then 4 KiB at 1 GiB: s" sparse4k_s 3
		row "... mount VmHWM MB" sparse_rss 0
		row "... requests (both reads and mounting)" sparse_req 0
		row "... MB fetched" sparse_down_mb 2
	fi
	echo
	echo "<details><summary>per-run values</summary>"
	echo
	per_run_values
	report_end
}
R_load() {
	local s=${R[new.$1_load]:-}
	if [[ " ${TOOLS[*]} " == *" base "* ]]; then s="${s% } / ${R[base.$1_load]:-}"; fi
	printf '%s' "${s% }"
}
publish report
