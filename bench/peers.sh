#!/usr/bin/env bash
# bench/peers.sh: issue 15's harness. azfs as built now ("new") against the binary the
# issue starts from ("base") and the peers restic 0.19, borg and kopia 0.22.3, in one run
# on the bench corpus, runs interleaved; a Markdown table of medians (rows: steps,
# columns: tools), the CPU seconds per GB of each step, and issue 15's targets PASS/FAIL.
#
# Usage: bench/peers.sh [-h]       (or: make bench-peers)
#
# Environment knobs:
#   BIN=DIR                        "new" is DIR/azfs and DIR/azmount (make passes it); otherwise
#                                  built from the repo into the work dir
#   BENCH_BASELINE=DIR             "base" is DIR/azfs and DIR/azmount (default:
#                                  $BENCH_DIR/baseline-$BENCH_BASELINE_REV, built once from that
#                                  git revision of this repo when missing)
#   BENCH_BASELINE_REV=8cf8197     the revision issue 15 starts from
#   BENCH_DIR=/var/tmp/azfs-bench  corpus (kept), peers' builds (kept), results-peers-*.md, logs/
#   BENCH_RUNS=3                   repetitions of every measurement (1 with BENCH_QUICK); medians
#   BENCH_QUICK=1                  smoke test: corpus = /usr/local/go/src + a 32 MB file, 1 run
#   BENCH_SKIP_BASE=1, BENCH_SKIP_RESTIC=1, BENCH_SKIP_BORG=1, BENCH_SKIP_KOPIA=1
#                                  leave that tool out (its column and ratios become n/a)
#   BENCH_SKIP_BLOB=1              no Azure Blob (Azurite) vaults for new and base
#   BENCH_SKIP_EDITS=1             no backup after ~31 MB of edits
#   BENCH_AZMOUNT_FLAGS="--cache-size 256MiB"   azmount flags, for new and base alike
#   BENCH_MOUNT_TIMEOUT=120        seconds for a mount to show the tree
#   BENCH_CP_DIR=DIR               where the plain `cp -a`, the copies out of the mounts and the
#                                  restores write (default: a directory of its own in /dev/shm when
#                                  that tmpfs has room, else the work dir; see copy_dest in lib.sh)
#   BENCH_KEEP_STATE=1             keep repositories and state of the last run in the work dir
#   BENCH_LOCK_WAIT=0              seconds to wait for another bench.sh/peers.sh to finish
#   RESTIC=PATH, KOPIA=PATH        peers to use instead of the builds under BENCH_DIR
#
# Needs: go, jq, /usr/bin/time, fusermount3, root (borg is installed with apt-get when
# missing; restic 0.19.0 and kopia 0.22.3 are built once from their Go modules).
#
# The tree backed up is a copy of the corpus in the work dir (so that edits do not touch the
# corpus), page cache warm. Each of BENCH_RUNS runs, every tool in turn:
#   1. first backup into a fresh repository with fresh HOME/XDG dirs: wall s, MB/s, CPU s
#      (user + system, /usr/bin/time) and CPU s per GB of the tree, peak RSS; repository size;
#      then a backup with nothing changed; for new and base also a first backup into a fresh
#      vault in Azurite (the blob vault figures of bench.sh)
#   2. on fresh mounts of the last run's repositories: time until the tree shows, `ls -lR`;
#      `cp -a` out of the mount (wall, MB/s, the mount server's CPU s and s/GB during the copy,
#      its VmHWM); 200 random 4 KiB reads of big.bin (bench/randread, the same offsets for
#      every tool) on a warm mount (big.bin opened and its first 4 KiB read), with kernel
#      read-ahead and with POSIX_FADV_RANDOM, then on a mount that has served the whole of
#      big.bin once (`cat`; its page cache dropped, POSIX_FADV_RANDOM: the mount's own caches
#      answer); new and base: `cp -a` out of the blob vault
#      with a cold and a warm on-disk cache. Run 1 compares each copy with the tree.
#   3. native restore into an empty directory (azfs restore, restic restore, borg extract,
#      kopia snapshot restore): wall, MB/s, CPU; run 1 compares it with the tree
#   4. (rounds after all runs) ~31 MB of edits to the tree (24 MiB rewritten in big.bin,
#      64 KiB appended to 100 files), then a backup by every tool into its last repository
# References in the same run: `cat` of the tree from page cache, plain `cp -a` disk to disk.
# The report ends with issue 15's "no regression elsewhere" table, new against base with
# new / base ratios (medians and per run): the unchanged rerun, `ls -lR`, the backup after
# edits, the restore, the blob vault's first backup and `cp -a` cold and warm, and the ratios
# of the newest bench/scale.sh and bench/widels.sh results in BENCH_DIR (runs of their own).
# Exit status: 0 when every tool was measured (targets may FAIL), 1 when one could not be.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
bench_start "${BASH_SOURCE[0]}" "${1:-}"
BENCH_BASELINE_REV=${BENCH_BASELINE_REV:-8cf8197}
harness_settings
RANDREAD_WARM=1
RESTIC_VERSION=0.19.0
KOPIA_VERSION=0.22.3

TOOLS=(new)
[[ ${BENCH_SKIP_BASE:-0} == 1 ]] || TOOLS+=(base)
[[ ${BENCH_SKIP_RESTIC:-0} == 1 ]] || TOOLS+=(restic)
[[ ${BENCH_SKIP_BORG:-0} == 1 ]] || TOOLS+=(borg)
[[ ${BENCH_SKIP_KOPIA:-0} == 1 ]] || TOOLS+=(kopia)
declare -A TITLE=([new]="azfs new" [base]="azfs base" [restic]="restic" [borg]="borg" [kopia]="kopia")

work_dirs peers
TREE=$WORK/tree
RESULTS=$BENCH_DIR/results-peers-$STAMP.md
LOG_TAG=peers
for t in "${TOOLS[@]}" new-blob base-blob; do MOUNT_DIRS+=("$WORK/mnt-$t"); done

trap harness_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

harness_lock
remove_stale "$BENCH_DIR"/peers.*
mkdir -p "$WORK" "$LOGS" "$STATE" "$SCRATCH" "$BIN" "${MOUNT_DIRS[@]}"

# ---------------------------------------------------------------- the tools

for c in go /usr/bin/time jq diff mountpoint flock fusermount3; do
	command -v "$c" >/dev/null || die "missing $c (apt-get install -y golang time jq diffutils util-linux fuse3)"
done
[[ -e /dev/fuse ]] || die "/dev/fuse missing"
keep_go_env
build_randread
resolve_azfs "$NEW_DIR" "$BIN"
NEW_AZFS=$AZFS NEW_AZMOUNT=$AZMOUNT

# ensure_baseline: BASE_AZFS, BASE_AZMOUNT from BENCH_BASELINE, else from
# $BENCH_DIR/baseline-REV, which is built once from git revision BENCH_BASELINE_REV.
ensure_baseline() {
	local d=${BENCH_BASELINE:-} rev src
	if [[ -z $d ]]; then
		rev=$(git -C "$REPO" rev-parse --short=7 "$BENCH_BASELINE_REV^{commit}" 2>/dev/null) || rev=$BENCH_BASELINE_REV
		d=$BENCH_DIR/baseline-$rev
		if [[ ! -x $d/azfs || ! -x $d/azmount ]]; then
			log "building the baseline azfs at $rev into $d (once)"
			src=$WORK/baseline-src
			mkdir -p "$src" "$d"
			git -C "$REPO" archive "$rev" | tar -x -C "$src" &&
				(cd "$src" && go build -o "$d/" ./cmd/azfs ./cmd/azmount) >"$LOGS/build-baseline.log" 2>&1 ||
				return 1
			safe_rm "$src"
		fi
	fi
	[[ -x $d/azfs && -x $d/azmount ]] || return 1
	BASE_DIR=$d BASE_AZFS=$d/azfs BASE_AZMOUNT=$d/azmount
}

# ensure_kopia VERSION: KOPIA, built once into $BENCH_DIR/kopia-VERSION/. `go install
# module@version` needs the module's version list for its deprecation check, which the
# module proxy may refuse; the fallback downloads that one version and builds it in place.
ensure_kopia() {
	local d
	[[ -z ${KOPIA:-} ]] || return 0
	KOPIA=$BENCH_DIR/kopia-$1/kopia
	[[ -x $KOPIA ]] && return 0
	log "building kopia $1 into $(dirname "$KOPIA") (once)"
	mkdir -p "$(dirname "$KOPIA")"
	GOBIN=$(dirname "$KOPIA") go install "github.com/kopia/kopia@v$1" >"$LOGS/build-kopia.log" 2>&1 && return 0
	d=$(go mod download -json "github.com/kopia/kopia@v$1" 2>>"$LOGS/build-kopia.log" | jq -r .Dir) &&
		(cd "$d" && GOFLAGS=-mod=mod go build -o "$KOPIA" .) >>"$LOGS/build-kopia.log" 2>&1
}

# ensure_borg: BORG, from Debian's borgbackup (installed when missing and apt-get is there).
ensure_borg() {
	if ! command -v borg >/dev/null && [[ $EUID == 0 ]] && command -v apt-get >/dev/null; then
		log "installing borgbackup"
		apt-get install -y -qq borgbackup >"$LOGS/install-borg.log" 2>&1 || true
	fi
	BORG=$(command -v borg)
}

have() { [[ " ${TOOLS[*]} " == *" $1 "* ]]; }
if have base && ! ensure_baseline; then kill_tool base "no baseline azfs: $(errtail "$LOGS/build-baseline.log")"; fi
if have restic && ! ensure_restic "$RESTIC_VERSION" >"$LOGS/build-restic.log" 2>&1; then
	kill_tool restic "could not build restic $RESTIC_VERSION: $(errtail "$LOGS/build-restic.log")"
fi
if have kopia && ! ensure_kopia "$KOPIA_VERSION"; then kill_tool kopia "could not build kopia $KOPIA_VERSION: $(errtail "$LOGS/build-kopia.log")"; fi
if have borg && ! ensure_borg; then kill_tool borg "borg is not installed (apt-get install -y borgbackup)"; fi

# cache_mib: azmount's --cache-size in MiB as BENCH_AZMOUNT_FLAGS sets it (its default else).
cache_mib() {
	local v
	v=$(sed -n 's/.*--cache-size[ =]\([0-9]*[KMG]i\{0,1\}B\{0,1\}\).*/\1/p' <<<"$BENCH_AZMOUNT_FLAGS")
	[[ -n $v ]] || v=320MiB
	awk -v v="$v" 'BEGIN { n = v + 0; u = substr(v, length(n "") + 1, 1)
		printf "%d", (u == "G") ? n * 1024 : (u == "K") ? n / 1024 : n }'
}

# ---------------------------------------------------------------- the tree

build_corpus
CORPUS_SRC=$CORPUS
log "copying the corpus to $TREE (edits must not touch the corpus)"
cp -a "$CORPUS" "$TREE"
CORPUS=$TREE
corpus_stats
GB=$(awk -v b="$CORPUS_BYTES" 'BEGIN { printf "%.3f", b / 1e9 }')
copy_dest peers "$CORPUS_BYTES" "$SCRATCH"
OUT=$CP_DIR
log "copies and restores go to $OUT ($(stat -f -c %T "$OUT"))"
log "tree: $((CORPUS_BYTES / 1000000)) MB, $CORPUS_FILES files, $CORPUS_DIRS dirs, $CORPUS_LINKS symlinks; runs: $BENCH_RUNS; tools: ${TOOLS[*]}"
measure_references

# ---------------------------------------------------------------- per-tool commands

# tool_env TOOL DIR: each tool's repository and password under DIR (use_state's hook).
tool_env() {
	case $1 in
	restic) export RESTIC_REPOSITORY=$2/repo RESTIC_PASSWORD=azfs-bench-password ;;
	borg) export BORG_REPO=$2/repo BORG_PASSPHRASE=azfs-bench-password BORG_BASE_DIR=$2/home ;;
	kopia)
		export KOPIA_PASSWORD=azfs-bench-password KOPIA_CONFIG_PATH=$2/config/kopia.config \
			KOPIA_CHECK_FOR_UPDATES=false KOPIA_LOG_DIR=$2/logs KOPIA_CONTENT_LOG_DIR=$2/logs
		;;
	esac
}

azfs_of() { if [[ $1 == base* ]]; then AZFS=$BASE_AZFS AZMOUNT=$BASE_AZMOUNT; else AZFS=$NEW_AZFS AZMOUNT=$NEW_AZMOUNT; fi; }

# repo_init TOOL: a fresh, empty repository (the state is fresh already).
repo_init() {
	local d=$STATE/$1
	case $1 in
	new | base) azfs_of "$1" && "$AZFS" vault create "$d/vault" --generate-passphrase "$d/passphrase" ;;
	restic) "$RESTIC" init ;;
	borg) "$BORG" init --encryption=repokey-blake2 ;;
	kopia) "$KOPIA" repository create filesystem --path "$d/repo" ;;
	esac
}

# backup_cmd TOOL NAME: BCMD, a backup of the tree (NAME names borg's archive).
backup_cmd() {
	case $1 in
	new | base) azfs_of "$1" && BCMD=("$AZFS" backup --json "$TREE") ;;
	restic) BCMD=("$RESTIC" backup "$TREE") ;;
	borg) BCMD=("$BORG" create "::$2" "$TREE") ;;
	kopia) BCMD=("$KOPIA" snapshot create "$TREE") ;;
	esac
}

repo_dir() { case $1 in new | base) echo "$STATE/$1/vault" ;; *) echo "$STATE/$1/repo" ;; esac; }

# kopia_root: the root object of kopia's latest snapshot of the tree.
kopia_root() { "$KOPIA" snapshot list --json "$TREE" | jq -r '.[-1].rootEntry.obj'; }

# mount_cmd TOOL: the mount of TOOL's latest backup (start_mount's hook).
mount_cmd() {
	MNT=$WORK/mnt-$1
	case $1 in
	new* | base*)
		azfs_of "$1"
		MCMD=("$AZMOUNT" "${AZMOUNT_FLAGS[@]}" --point latest "$MNT")
		MTARGET=$MNT$TREE
		;;
	restic)
		MCMD=("$RESTIC" mount "$MNT")
		MTARGET=$MNT/snapshots/latest$TREE
		;;
	borg)
		MCMD=("$BORG" mount -f "::second" "$MNT")
		MTARGET=$MNT$TREE
		MSTOP=unmount # borg mount -f ignores SIGINT
		;;
	kopia)
		MCMD=("$KOPIA" mount "$(kopia_root)" "$MNT")
		MTARGET=$MNT
		;;
	esac
}

# restore_cmd TOOL DIR: RCMD, a restore of TOOL's latest backup into DIR; RTARGET, where the
# tree lands.
restore_cmd() {
	case $1 in
	new | base)
		azfs_of "$1"
		RCMD=("$AZFS" restore latest --target "$2")
		RTARGET=$2$TREE
		;;
	restic)
		RCMD=("$RESTIC" restore latest --target "$2")
		RTARGET=$2$TREE
		;;
	borg)
		RCMD=(env -C "$2" "$BORG" extract "::second")
		RTARGET=$2$TREE
		;;
	kopia)
		RCMD=("$KOPIA" snapshot restore "$(kopia_root)" "$2")
		RTARGET=$2
		;;
	esac
}

# timed_step TOOL RUN STEP CMD...: runs CMD with run_timed, logs into LOGS; a failure ends
# TOOL's measurements (returns 1), exit 3 (azfs: partial) is noted.
timed_step() {
	local t=$1 i=$2 step=$3
	shift 3
	sync
	run_timed "$LOGS/$t-$i-$step.out" "$LOGS/$t-$i-$step.err" "$@"
	if ((T_RC == 3)) && [[ $t == new || $t == base ]]; then
		NOTE[$t.${step}_s]="partial (exit 3)"
		contract "$t run $i $step: \`$(cmd_str "$@")\` exited 3 (partial): $(errtail "$LOGS/$t-$i-$step.err")"
	elif ((T_RC != 0)); then
		kill_tool "$t" "$t run $i $step: \`$(cmd_str "$@")\` failed (rc=$T_RC): $(errtail "$LOGS/$t-$i-$step.err")"
		return 1
	fi
	add "$t.${step}_s" "$T_WALL"
	add "$t.${step}_cpu" "$T_CPU"
	add "$t.${step}_rss" "$T_RSS_MB"
	log "$t run $i: $step $T_WALL s, $T_CPU s CPU, peak RSS $T_RSS_MB MB"
}

# ---------------------------------------------------------------- steps

# backup_run TOOL RUN: fresh repository, first backup, backup with nothing changed.
backup_run() {
	local t=$1 i=$2
	reset_state "$t"
	if ! repo_init "$t" >"$LOGS/$t-$i-init.out" 2>"$LOGS/$t-$i-init.err"; then
		kill_tool "$t" "$t run $i: creating the repository failed: $(errtail "$LOGS/$t-$i-init.err")"
		return 0
	fi
	backup_cmd "$t" first
	timed_step "$t" "$i" first "${BCMD[@]}" || return 0
	add "$t.first_mbps" "$(mbps "$T_WALL")"
	sync
	add "$t.repo_mb" "$(du -sb "$(repo_dir "$t")" | awk '{ printf "%.1f", $1 / 1e6 }')"
	backup_cmd "$t" second
	timed_step "$t" "$i" second "${BCMD[@]}" || return 0
}

# restore_run TOOL RUN: the native restore of the latest backup into an empty directory.
restore_run() {
	local t=$1 i=$2 dir=$OUT/restore-$1
	if dead "$t"; then return 0; fi
	use_state "$t"
	discard "$dir" && mkdir -p "$dir"
	restore_cmd "$t" "$dir"
	if timed_step "$t" "$i" restore "${RCMD[@]}"; then
		add "$t.restore_mbps" "$(mbps "$T_WALL")"
		if ((i == 1)); then verify "$t-restore" "$RTARGET"; fi
	fi
	discard "$dir"
}

# apply_edits ROUND: about 31 MB of changes to the tree: 24 regions of 1 MiB of big.bin
# rewritten (fewer for a small big.bin), 64 KiB appended to 100 files; the same for a ROUND.
apply_edits() {
	local r=$1 n off f
	n=$((BIG_SIZE / (8 << 20)))
	((n <= 24)) || n=24
	for off in $(awk -v n="$n" -v max="$((BIG_SIZE / 4096 - 256))" -v s="$r" 'BEGIN { srand(s); for (k = 0; k < n; k++) print int(rand() * max) }'); do
		head -c $((1 << 20)) /dev/urandom | dd of="$BIG" bs=4096 seek="$off" conv=notrunc status=none
	done
	find "$TREE" -type f ! -name big.bin -printf '%P\n' | sort |
		awk -v r="$r" -v n="$CORPUS_FILES" 'BEGIN { m = int(n / 100); if (m < 1) m = 1 } NR % m == r % m && k++ < 100' |
		while IFS= read -r f; do head -c 65536 /dev/urandom >>"$TREE/$f"; done
}

# ---------------------------------------------------------------- measure (runs interleaved)

BLOB=0
if [[ ${BENCH_SKIP_BLOB:-0} != 1 ]]; then
	BLOB_VAULTS=1
	if have base && ! dead base; then BLOB_VAULTS=2; fi
	if start_azurite; then BLOB=1; fi
fi
blob_tools() { local t; for t in new base; do have "$t" && ! dead "$t" && echo "$t"; done; }

for ((i = 1; i <= BENCH_RUNS; i++)); do
	for t in "${TOOLS[@]}"; do
		dead "$t" || backup_run "$t" "$i"
	done
	if ((BLOB)); then
		for t in $(blob_tools); do azfs_of "$t" && blob_backup_run "$i" "$t-blob" "$AZFS"; done
	fi
done
for ((i = 1; i <= BENCH_RUNS; i++)); do
	for t in "${TOOLS[@]}"; do mount_run "$t" "$i"; done
	if ((BLOB)); then
		for t in $(blob_tools); do blob_mount_run "$i" "$t-blob"; done
	fi
done
for ((i = 1; i <= BENCH_RUNS; i++)); do
	for t in "${TOOLS[@]}"; do restore_run "$t" "$i"; done
done
if [[ ${BENCH_SKIP_EDITS:-0} != 1 ]]; then
	for ((i = 1; i <= BENCH_RUNS; i++)); do
		apply_edits "$i"
		for t in "${TOOLS[@]}"; do
			dead "$t" && continue
			use_state "$t"
			backup_cmd "$t" "edit-$i"
			timed_step "$t" "$i" edits "${BCMD[@]}" || true
		done
	done
fi

# ---------------------------------------------------------------- report

cpu_gb() { per_gb "$(med "$1")"; }
cache=$(cache_mib)

# row TITLE FUNC: a table row with FUNC TOOL's cell for every tool.
row() {
	local t line="| $1 |"
	for t in "${TOOLS[@]}"; do line+=" $("$2" "$t") |"; done
	echo "$line ${3:-} |"
}
c_first() { printf '%s s, %s MB/s, %s s CPU (%s s/GB), RSS %s MB' "$(cell "$1.first_s" 2)" "$(fmt "$(med "$1.first_mbps")" 0)" "$(fmt "$(med "$1.first_cpu")" 1)" "$(fmt "$(cpu_gb "$1.first_cpu")" 1)" "$(fmt "$(med "$1.first_rss")" 0)"; }
c_repo() { fmt "$(med "$1.repo_mb")" 1; }
c_second() { printf '%s s, %s s CPU (%s s/GB)' "$(cell "$1.second_s" 2)" "$(fmt "$(med "$1.second_cpu")" 2)" "$(fmt "$(cpu_gb "$1.second_cpu")" 2)"; }
c_edits() { printf '%s s, %s s CPU' "$(cell "$1.edits_s" 2)" "$(fmt "$(med "$1.edits_cpu")" 2)"; }
c_mount() { fmt "$(med "$1.mount_s")" 2; }
c_ls() { printf '%s s; mount %s s CPU' "$(fmt "$(med "$1.ls_s")" 2)" "$(fmt "$(med "$1.ls_mount_cpu")" 2)"; }
c_cp() {
	local rss=""
	[[ $1 == new || $1 == base ]] && rss=" (cache $cache MiB)"
	printf '%s s, %s MB/s; mount %s s CPU (%s s/GB), VmHWM %s MB%s; cp %s s CPU' "$(fmt "$(med "$1.cp_s")" 2)" "$(fmt "$(med "$1.cp_mbps")" 0)" "$(fmt "$(med "$1.mount_cpu")" 1)" "$(fmt "$(cpu_gb "$1.mount_cpu")" 2)" "$(fmt "$(med "$1.mount_rss")" 0)" "$rss" "$(fmt "$(med "$1.cp_cpu")" 1)"
}
c_restore() { printf '%s s, %s MB/s, %s s CPU (%s s/GB), RSS %s MB' "$(cell "$1.restore_s" 2)" "$(fmt "$(med "$1.restore_mbps")" 0)" "$(fmt "$(med "$1.restore_cpu")" 1)" "$(fmt "$(cpu_gb "$1.restore_cpu")" 2)" "$(fmt "$(med "$1.restore_rss")" 0)"; }
c_rrc() { printf '%s / %s' "$(fmt "$(med "$1.rrc_p50")" 2)" "$(fmt "$(med "$1.rrc_p90")" 2)"; }
c_rr() { printf '%s / %s' "$(fmt "$(med "$1.rr_p50")" 2)" "$(fmt "$(med "$1.rr_p90")" 2)"; }
c_rrf() { printf '%s / %s' "$(fmt "$(med "$1.rrf_p50")" 2)" "$(fmt "$(med "$1.rrf_p90")" 2)"; }
c_same() { printf '%s; restore: %s' "${VERIFY[$1]:-n/a} (${META[$1]:-n/a} metadata)" "${VERIFY[$1-restore]:-n/a} (${META[$1-restore]:-n/a} metadata)"; }

N() { med "new.$1"; }
B() { med "base.$1"; }
# target LABEL VALUE OP LIMIT [DETAIL]: a row of the target table.
target() { echo "| $1 | $(fmt "$2" 2)${5:+ ($5)} | $3 $4 | $(check "$2" "$3" "$4") |"; }

# seconds_of KEY_MBPS KEY_S: KEY_S's per-run values, the corpus's seconds at KEY_MBPS's
# throughputs (the blob vault steps record MB/s only).
seconds_of() {
	local v
	for v in ${R[$1]:-}; do add "$2" "$(awk -v b="$CORPUS_BYTES" -v r="$v" 'BEGIN { if (r > 0) printf "%.3f", b / 1e6 / r }')"; done
}

# scale_ratios: the new / base ratios of the newest bench/scale.sh results in BENCH_DIR
# (a run of its own, maybe of other binaries: its file and binaries are named), or how to
# get them.
scale_ratios() {
	local f kv r out=""
	f=$(grep -l '| new / base |' "$BENCH_DIR"/scale-*.md 2>/dev/null | sort | tail -n 1)
	if [[ -z $f ]]; then
		printf 'not in this harness: `SCALE_SKIP_RESTIC=1 BIN=%s bash bench/scale.sh` measures new against base' "${NEW_DIR:-bin}"
		return
	fi
	# LABEL=ROW: ROW starts a row of scale.sh's table "| ROW... | new | base | new / base | paired |"
	for kv in "first backup=first backup: wall s" "its CPU=first backup: CPU s" \
		"second backup=second backup, nothing changed: wall s" "its CPU=second backup: CPU s" \
		"\`ls -f\` of wide/=\`ls -f\` of wide/" "mount CPU=... mount server CPU s during it"; do
		r=$(awk -F' [|] ' -v k="| ${kv#*=}" 'index($1, k) == 1 { print $4; exit }' "$f")
		out+="${out:+, }${kv%%=*} ${r:-n/a}"
	done
	printf '%s (`%s`, %s)' "$out" "$f" "$(sed -n 's/^\(new: .*\)\.$/\1/p' "$f" | head -n 1)"
}

# widels_ratios: the new / base ratios per run of the newest bench/widels.sh results in
# BENCH_DIR (the 500,000-entry listing alone, a run of its own), or how to get them.
widels_ratios() {
	local f k r out=""
	f=$(grep -l '| new/base (per run) |' "$BENCH_DIR"/results-widels-*.md 2>/dev/null | sort | tail -n 1)
	if [[ -z $f ]]; then
		printf 'not in this harness: `BIN=%s bash bench/widels.sh` measures new against base' "${NEW_DIR:-bin}"
		return
	fi
	for k in "mount CPU s" "mount VmHWM MiB" "collections during ls -f"; do
		r=$(awk -F'|' -v k="$k" '{ g = $2; gsub(/^ +| +$/, "", g) } g == k { r = $5; gsub(/^ +| +$/, "", r); print r; exit }' "$f")
		out+="${out:+; }$k ${r:-n/a}"
	done
	printf '%s (`%s`)' "$out" "$f"
}

# no_regression_row TITLE NEW_KEY BASE_KEY DIGITS: a row of no_regression's table.
no_regression_row() {
	echo "| $1 | $(fmt "$(med "$2")" "$4") | $(fmt "$(med "$3")" "$4") | $(x "$(ratio "$(med "$2")" "$(med "$3")")") | $(paired "$2" "$3") |"
}

# no_regression: issue 15's "no regression elsewhere" table: each step of new against base,
# medians and the ratio of the medians (time and CPU: below 1 is better), and the per-run ratios.
no_regression() {
	local k
	seconds_of newblob.first_mbps newblob.first_s
	seconds_of baseblob.first_mbps baseblob.first_s
	for k in cold warm; do
		seconds_of "newblob.cp_${k}_mbps" "newblob.cp_${k}_s"
		seconds_of "baseblob.cp_${k}_mbps" "baseblob.cp_${k}_s"
	done
	echo "No regression elsewhere (issue 15): new against base; time and CPU ratios new / base below 1 are better, within noise is about 1.25 on a loaded machine:"
	echo
	echo "| step | new | base | new / base | paired per run |"
	echo "|---|---|---|---|---|"
	no_regression_row "backup, nothing changed: wall s" new.second_s base.second_s 2
	no_regression_row "backup, nothing changed: CPU s" new.second_cpu base.second_cpu 2
	if [[ ${BENCH_SKIP_EDITS:-0} != 1 ]]; then
		no_regression_row "backup after ~31 MB of edits: wall s" new.edits_s base.edits_s 2
		no_regression_row "backup after ~31 MB of edits: CPU s" new.edits_cpu base.edits_cpu 2
	fi
	no_regression_row "mount until the tree shows: s" new.mount_s base.mount_s 2
	no_regression_row "\`ls -lR\` of a fresh mount: wall s" new.ls_s base.ls_s 2
	no_regression_row "\`ls -lR\`: mount server CPU s" new.ls_mount_cpu base.ls_mount_cpu 2
	no_regression_row "native restore: wall s" new.restore_s base.restore_s 2
	no_regression_row "native restore: CPU s" new.restore_cpu base.restore_cpu 2
	if ((BLOB)); then
		no_regression_row "blob vault, first backup: wall s" newblob.first_s baseblob.first_s 2
		no_regression_row "blob vault, first backup: CPU s per GB" newblob.first_cpu_gb baseblob.first_cpu_gb 2
		no_regression_row "blob vault, first backup: peak RSS MB" newblob.first_rss baseblob.first_rss 0
		no_regression_row "blob vault, \`cp -a\` out of a fresh mount, empty on-disk cache: wall s" newblob.cp_cold_s baseblob.cp_cold_s 2
		no_regression_row "blob vault, \`cp -a\` out of a remount, warm on-disk cache: wall s" newblob.cp_warm_s baseblob.cp_warm_s 2
	else
		echo "| blob vault | not measured (BENCH_SKIP_BLOB=1, or Azurite missing: see the failures) | | | |"
	fi
	echo "| the 2-million-file scale run, new / base | $(scale_ratios) | | | |"
	echo "| \`ls -f\` of 500,000 entries (bench/widels.sh), new / base per run | $(widels_ratios) | | | |"
}

report() {
	local t hdr="| step |" sep="|---|" ref_cp ref_cat
	ref_cp=$(med ref.cp_s)
	ref_cat=$(med ref.cat_s)
	for t in "${TOOLS[@]}"; do
		hdr+=" ${TITLE[$t]} |"
		sep+="---|"
	done
	echo "# issue 15: azfs against its starting binary and its peers — $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "Tree: a copy of \`${CORPUS_SRC}\`, $(fmt "$(awk -v b="$CORPUS_BYTES" 'BEGIN { print b / 1e6 }')" 0) MB in $CORPUS_FILES files, $CORPUS_DIRS dirs, $CORPUS_LINKS symlinks; big.bin $((BIG_SIZE / 1000000)) MB."
	echo "Medians of $BENCH_RUNS interleaved run(s); page cache warm; $(nproc) cores; kernel $(uname -r); load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
	echo "azfs new: \`$NEW_AZFS\` ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo ?)$(git -C "$REPO" diff --quiet 2>/dev/null || echo ", with uncommitted changes")); azfs base: \`${BASE_AZFS:-n/a}\`; azmount flags \`$BENCH_AZMOUNT_FLAGS\`."
	echo "Peers: $([[ -n ${RESTIC:-} ]] && "$RESTIC" version 2>/dev/null | head -1); $([[ -n ${BORG:-} ]] && "$BORG" --version 2>/dev/null); kopia ${KOPIA:+$KOPIA_VERSION (\`$KOPIA\`)}."
	echo "CPU is user + system seconds (of the command, or of the mount server during \`cp -a\`); s/GB divides by the tree's $GB GB."
	echo
	echo "$hdr reference |"
	echo "$sep---|"
	row "first backup: wall, throughput, CPU, peak RSS" c_first "\`cat\` of the tree $(fmt "$ref_cat" 2) s, $(fmt "$(med ref.cat_cpu)" 2) s CPU"
	row "repository size (MB)" c_repo
	row "backup, nothing changed" c_second
	if [[ ${BENCH_SKIP_EDITS:-0} != 1 ]]; then row "backup after ~31 MB of edits" c_edits; fi
	row "mount until the tree shows (s)" c_mount
	row "\`ls -lR\` of a fresh mount" c_ls
	row "\`cp -a\` out of a fresh mount" c_cp "plain \`cp -a\` $(fmt "$ref_cp" 2) s ($(fmt "$(mbps "$ref_cp")" 0) MB/s), $(fmt "$(med ref.cp_cpu)" 2) s CPU"
	row "native restore" c_restore
	row "200 random 4 KiB reads of big.bin, warm mount, p50 / p90 (ms)" c_rr
	row "… with POSIX_FADV_RANDOM, p50 / p90 (ms)" c_rrf
	row "… after the mount served the whole file once (page cache dropped, FADV_RANDOM), p50 / p90 (ms)" c_rrc
	row "copy out of the mount == tree (diff -r; entries with other metadata)" c_same
	echo
	local r_first r_kopia r_cp cp_plain rss_lim
	r_first=$(ratio "$(N first_mbps)" "$(B first_mbps)")
	r_kopia=$(ratio "$(N first_mbps)" "$(med kopia.first_mbps)")
	r_cp=$(ratio "$(N cp_mbps)" "$(B cp_mbps)")
	cp_plain=$(ratio "$(N cp_s)" "$ref_cp")
	rss_lim=$(awk -v c="$cache" 'BEGIN { printf "%.1f", (c + 64) * 1.048576 }')
	echo "Issue 15's targets (new = azfs as built; base = the binary the issue starts from):"
	echo
	echo "| target | value | limit | |"
	echo "|---|---|---|---|"
	target "first backup throughput, new / base" "$r_first" ">=" 2 "paired: $(paired new.first_mbps base.first_mbps)"
	target "first backup throughput, new / kopia" "$r_kopia" ">=" 1.5 "paired: $(paired new.first_mbps kopia.first_mbps)"
	target "first backup CPU, new (s per GB)" "$(cpu_gb new.first_cpu)" "<=" 5
	target "repository size, new / restic" "$(ratio "$(N repo_mb)" "$(med restic.repo_mb)")" "<=" 1
	target "\`cp -a\` throughput, new / base" "$r_cp" ">=" 3 "paired: $(paired new.cp_mbps base.cp_mbps)"
	target "\`cp -a\` time, new / plain \`cp -a\`" "$cp_plain" "<=" 2
	target "mount CPU during \`cp -a\`, new (s per GB)" "$(cpu_gb new.mount_cpu)" "<=" 3
	target "mount VmHWM after \`cp -a\`, new (MB; --cache-size $cache MiB + 64 MiB)" "$(N mount_rss)" "<=" "$rss_lim"
	target "random 4 KiB read p50, warm mount, new (ms)" "$(N rr_p50)" "<" 1
	target "… with POSIX_FADV_RANDOM (ms)" "$(N rrf_p50)" "<" 1
	target "… after the mount served the file once (ms)" "$(N rrc_p50)" "<" 1
	echo
	no_regression
	if ((BLOB)); then
		for t in $(blob_tools); do
			echo
			echo "Azure Blob vault in Azurite on loopback, ${TITLE[$t]} (ratio: against its local vault in the same runs)"
			echo
			blob_rows "$t-blob" "$t"
		done
	fi
	echo
	echo "<details><summary>per-run values</summary>"
	echo
	per_run_values
	report_end
}
publish report
