#!/usr/bin/env bash
# bench/bench.sh: azfs against restic, in one run, on the same corpus.
#
# Usage: bench/bench.sh [-h]       (or: make bench)
#
# Environment knobs:
#   BIN=DIR                        use DIR/azfs and DIR/azmount (make bench passes it);
#                                  otherwise they are built from the repo into a temp dir
#   BENCH_DIR=/var/tmp/azfs-bench  cache dir: corpus (built once, kept), results-*.md, logs/
#   BENCH_RUNS=3                   repetitions of every measurement; the table shows medians
#   BENCH_QUICK=1                  smoke test: corpus = /usr/local/go/src + a 32 MB file, 1 run
#   BENCH_SKIP_RESTIC=1            measure azfs only (ratios become n/a)
#   BENCH_SKIP_AZFS=1              measure restic only (e.g. while azfs does not build)
#   BENCH_AZMOUNT_FLAGS="--cache-size 256MiB"   extra azmount flags
#   BENCH_MOUNT_TIMEOUT=120        seconds to wait for a mount to show content
#   BENCH_KEEP_STATE=1             keep vault/repo/state of the last run (for debugging)
#   BENCH_CP_DIR=DIR               where the plain `cp -a` and the copies out of the mounts write
#                                  (default: a directory of its own in /dev/shm when that tmpfs has
#                                  room, else the work dir; see copy_dest in lib.sh)
#   BENCH_SKIP_BLOB=1              skip the Azure Blob (Azurite) measurements
#
# Needs: go, restic (from PATH, else RESTIC=PATH, else 0.19.0 built once into
# $BENCH_DIR/restic-0.19.0/), fusermount3 (or fusermount), /usr/bin/time, jq, diff, root or FUSE access.
#
# What is measured (each BENCH_RUNS times, median reported):
#   reference: cat of the corpus from page cache, plain `cp -a` of the corpus disk to disk
#   1. first backup into a fresh vault/repo (fresh HOME/XDG dirs too): wall s, MB/s, peak RSS
#   2. second backup, nothing changed: wall s
#   3. `ls -lR` of the latest point, fresh mount each run
#   4. `cp -a` of the tree out of a fresh mount to disk (run 1: diff -r against the source,
#      plus a metadata comparison), and the mount process's VmHWM at the end
#   5. 200 random 4 KiB reads of the 200 MB file on a fresh (cold) mount: p50/p90, once with
#      plain ReadAt (kernel read-ahead turns many reads into page-cache hits) and once with
#      POSIX_FADV_RANDOM (each miss is one 4 KiB read served by the filesystem)
#   6. Azure Blob vault in Azurite on loopback (node_modules from `npm ci`; in-memory): first
#      backup beside the local vault's of the same run, then `cp -a` out of a fresh mount with
#      an empty on-disk cache (cold) and again after a remount (warm on-disk cache), beside the
#      local vault's `cp -a`; storage requests per GB from `backup --json` and azmount's exit log
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
bench_start "${BASH_SOURCE[0]}" "${1:-}"
BENCH_SKIP_RESTIC=${BENCH_SKIP_RESTIC:-0}
BENCH_SKIP_AZFS=${BENCH_SKIP_AZFS:-0}
BENCH_KEEP_STATE=${BENCH_KEEP_STATE:-0}
BENCH_SKIP_BLOB=${BENCH_SKIP_BLOB:-0}
harness_settings

TOOLS=()
[[ $BENCH_SKIP_AZFS == 1 ]] || TOOLS+=(azfs)
[[ $BENCH_SKIP_RESTIC == 1 ]] || TOOLS+=(restic)
((${#TOOLS[@]})) || { echo "nothing to measure: both tools skipped" >&2; exit 2; }

STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$BENCH_DIR"
WORK=$BENCH_DIR/run.$STAMP.$$ # per-run work dir, removed on exit
LOGS=$BENCH_DIR/logs/$STAMP    # kept
STATE=$WORK/state
SCRATCH=$WORK/scratch
AZBIN_DIR=${BIN:+$(realpath -m "$BIN")} # `make bench` passes BIN= with freshly built azfs, azmount
BIN=$WORK/bin
MNT_AZ=$WORK/mnt-azfs
MNT_RS=$WORK/mnt-restic
MOUNT_DIRS=("$MNT_AZ" "$MNT_RS")
LOG_TAG=bench
RESULTS=$BENCH_DIR/results-$STAMP.md

trap harness_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

harness_lock
remove_stale "$BENCH_DIR"/run.*

mkdir -p "$WORK" "$LOGS" "$STATE" "$SCRATCH" "$BIN" "$MNT_AZ" "$MNT_RS"

# ---------------------------------------------------------------- prerequisites

for c in go /usr/bin/time jq diff mountpoint flock; do
	command -v "$c" >/dev/null || die "missing $c (apt-get install -y time jq diffutils util-linux)"
done
command -v fusermount3 >/dev/null || command -v fusermount >/dev/null || [[ $EUID == 0 ]] ||
	die "no fusermount3/fusermount (apt-get install -y fuse3)"
[[ -e /dev/fuse ]] || die "/dev/fuse missing"

keep_go_env
build_randread
if [[ " ${TOOLS[*]} " == *" restic "* ]]; then
	RESTIC=${RESTIC:-$(command -v restic || true)}
	ensure_restic 0.19.0 || die "could not build restic (set RESTIC=PATH, or BENCH_SKIP_RESTIC=1)"
fi
if [[ $BENCH_SKIP_AZFS != 1 ]]; then resolve_azfs "$AZBIN_DIR" "$BIN"; fi

# ---------------------------------------------------------------- corpus

build_corpus
copy_dest bench "$CORPUS_BYTES" "$SCRATCH"
log "corpus: $((CORPUS_BYTES / 1000000)) MB, $CORPUS_FILES files, $CORPUS_DIRS dirs, $CORPUS_LINKS symlinks; runs: $BENCH_RUNS; tools: ${TOOLS[*]}"

measure_references

# ---------------------------------------------------------------- per-tool state

# tool_env TOOL DIR: restic's repository and password (use_state's hook).
tool_env() {
	if [[ $1 == restic ]]; then
		export RESTIC_REPOSITORY=$2/repo RESTIC_PASSWORD=azfs-bench-password
	fi
}

# backup_run TOOL RUN: fresh vault/repo, first and second backup.
backup_run() {
	local t=$1 i=$2 c out rc
	reset_state "$t"
	out=$LOGS/$t-$i
	if [[ $t == azfs ]]; then
		c=("$AZFS" vault create "$STATE/azfs/vault" --generate-passphrase "$STATE/azfs/passphrase")
		rc=0
		"${c[@]}" >"$out-vault-create.out" 2>"$out-vault-create.err" || rc=$?
		if ((rc != 0)); then
			kill_tool azfs "\`$(cmd_str "${c[@]}")\` failed (rc=$rc): $(errtail "$out-vault-create.err")"
			return 0
		fi
		[[ -s $STATE/azfs/passphrase ]] || contract "vault create: --generate-passphrase file $STATE/azfs/passphrase is missing or empty"
		c=("$AZFS" backup --json "$CORPUS")
	else
		c=("$RESTIC" init)
		if ! "${c[@]}" >"$out-init.out" 2>"$out-init.err"; then
			kill_tool restic "\`restic init\` failed: $(errtail "$out-init.err")"
			return 0
		fi
		c=("$RESTIC" backup "$CORPUS")
	fi

	local k
	for k in first second; do
		sync
		run_timed "$out-backup-$k.out" "$out-backup-$k.err" "${c[@]}"
		if ((T_RC == 3)); then
			NOTE[$t.${k}_s]="partial (exit 3)"
			contract "run $i $k backup: \`$(cmd_str "${c[@]}")\` exited 3 (partial): $(errtail "$out-backup-$k.err")"
		elif ((T_RC != 0)); then
			kill_tool "$t" "run $i $k backup: \`$(cmd_str "${c[@]}")\` failed (rc=$T_RC): $(errtail "$out-backup-$k.err")"
			return 0
		fi
		if [[ $t == azfs ]] && ! jq -e . "$out-backup-$k.out" >/dev/null 2>&1; then
			contract "run $i: \`$(cmd_str "${c[@]}")\` did not print valid JSON on stdout (see $out-backup-$k.out)"
		fi
		add "$t.${k}_s" "$T_WALL"
		add "$t.${k}_rss" "$T_RSS_MB"
		if [[ $k == first ]]; then add "$t.first_mbps" "$(mbps "$T_WALL")"; fi
		log "$t run $i: $k backup $T_WALL s, peak RSS $T_RSS_MB MB"
	done
	sync
	if [[ $t == azfs ]]; then
		add azfs.repo_mb "$(du -sb "$STATE/azfs/vault" | awk '{ printf "%.1f", $1 / 1e6 }')"
		c=("$AZFS" points --json)
		rc=0
		"${c[@]}" >"$out-points.out" 2>"$out-points.err" || rc=$?
		if ((rc != 0)); then
			contract "\`$(cmd_str "${c[@]}")\` failed (rc=$rc): $(errtail "$out-points.err")"
		elif ! jq -e . "$out-points.out" >/dev/null 2>&1; then
			contract "\`$(cmd_str "${c[@]}")\` did not print valid JSON (see $out-points.out)"
		fi
	else
		add restic.repo_mb "$(du -sb "$RESTIC_REPOSITORY" | awk '{ printf "%.1f", $1 / 1e6 }')"
	fi
	add "$t.local_mb" "$(du -sb "$STATE/$t"/{home,config,cache} | awk '{ s += $1 } END { printf "%.1f", s / 1e6 }')"
}

# cert_backup_run RUN: the first backup again, into a certificate-mode vault
# (a write-only machine sealing under a session key wrapped to an RSA-2048
# certificate), timed against the passphrase-mode run just before it.
cert_backup_run() {
	local i=$1 out=$LOGS/azfs-cert-$1 c rc
	reset_state azfs-cert
	if [[ ! -s $BENCH_DIR/cert/bench.crt ]]; then
		mkdir -p "$BENCH_DIR/cert"
		openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=azfs-bench \
			-keyout "$BENCH_DIR/cert/bench.key" -out "$BENCH_DIR/cert/bench.crt" 2>"$out-openssl.err" ||
			{ contract "openssl could not make the bench certificate: $(errtail "$out-openssl.err")"; return 0; }
	fi
	c=("$AZFS" vault create "$STATE/azfs-cert/vault" --generate-passphrase "$STATE/azfs-cert/passphrase" --certificate "$BENCH_DIR/cert/bench.crt")
	rc=0
	"${c[@]}" >"$out-vault-create.out" 2>"$out-vault-create.err" || rc=$?
	if ((rc != 0)); then
		contract "\`$(cmd_str "${c[@]}")\` failed (rc=$rc): $(errtail "$out-vault-create.err")"
		return 0
	fi
	sync
	run_timed "$out-backup.out" "$out-backup.err" "$AZFS" backup --json "$CORPUS"
	if ((T_RC != 0)); then
		contract "run $i: certificate-mode backup failed (rc=$T_RC): $(errtail "$out-backup.err")"
		return 0
	fi
	add azfscert.first_mbps "$(mbps "$T_WALL")"
	log "azfs (certificate mode) run $i: first backup $T_WALL s"
}

# ---------------------------------------------------------------- mounts

# mount_cmd TOOL: the mount of TOOL's latest point (start_mount's hook).
mount_cmd() {
	if [[ $1 == azfs* ]]; then
		MNT=$MNT_AZ
		MCMD=("$AZMOUNT" "${AZMOUNT_FLAGS[@]}" --point latest "$MNT")
		MTARGET=$MNT$CORPUS
	else
		MNT=$MNT_RS
		MCMD=("$RESTIC" mount "$MNT")
		MTARGET=$MNT/snapshots/latest$CORPUS
	fi
}

# ---------------------------------------------------------------- measure (runs interleaved)

BLOB=0
if [[ $BENCH_SKIP_BLOB != 1 && " ${TOOLS[*]} " == *" azfs "* ]] && start_azurite; then BLOB=1; fi
for ((i = 1; i <= BENCH_RUNS; i++)); do
	for t in "${TOOLS[@]}"; do
		dead "$t" || backup_run "$t" "$i"
		if [[ $t == azfs ]] && ! dead azfs; then
			cert_backup_run "$i"
			if ((BLOB)); then blob_backup_run "$i" azfs-blob "$AZFS"; fi
		fi
	done
done
for ((i = 1; i <= BENCH_RUNS; i++)); do
	for t in "${TOOLS[@]}"; do
		mount_run "$t" "$i"
		if [[ $t == azfs ]] && ((BLOB)); then blob_mount_run "$i" azfs-blob; fi
	done
done

# ---------------------------------------------------------------- report

A() { med "azfs.$1"; }
S() { med "restic.$1"; }
ref_cp=$(med ref.cp_s)
ref_cat=$(med ref.cat_s)
azfs_cp_vs_plain=$(ratio "$(A cp_s)" "$ref_cp")
restic_cp_vs_plain=$(ratio "$(S cp_s)" "$ref_cp")
r_first=$(ratio "$(A first_mbps)" "$(S first_mbps)")
r_second=$(ratio "$(A second_s)" "$(S second_s)")
r_ls=$(ratio "$(A ls_s)" "$(S ls_s)")
r_cp=$(ratio "$(A cp_mbps)" "$(S cp_mbps)")

report() {
	echo "# azfs vs restic — $(date '+%Y-%m-%d %H:%M:%S')"
	echo
	echo "Corpus \`$CORPUS\`: $(fmt "$(awk -v b="$CORPUS_BYTES" 'BEGIN { print b / 1e6 }')" 0) MB in $CORPUS_FILES files, $CORPUS_DIRS dirs, $CORPUS_LINKS symlinks; random-read file $((BIG_SIZE / 1000000)) MB."
	echo "Medians of $BENCH_RUNS run(s); page cache warm; fresh vault/repo and fresh HOME/XDG dirs for every first backup; fresh mount for every mount measurement."
	echo "restic: $([[ -n ${RESTIC:-} ]] && "$RESTIC" version 2>/dev/null | head -1 || echo n/a); azmount flags: \`${BENCH_AZMOUNT_FLAGS}\`; $(nproc) cores; kernel $(uname -r)."
	echo
	echo "| metric | azfs | restic | ratio (azfs/restic) | target |"
	echo "|---|---|---|---|---|"
	echo "| reference: \`cat\` of the corpus from page cache (s) | $(fmt "$ref_cat" 2) | | | |"
	echo "| reference: plain \`cp -a\` disk to disk (s) | $(fmt "$ref_cp" 2) ($(fmt "$(mbps "$ref_cp")" 0) MB/s) | | | |"
	echo "| first backup (s) | $(cell azfs.first_s 2) | $(cell restic.first_s 2) | $(x "$(ratio "$(A first_s)" "$(S first_s)")") | |"
	echo "| first backup throughput (MB/s) | $(cell azfs.first_mbps 1) | $(cell restic.first_mbps 1) | $(x "$r_first") | ≥ 3x restic: $(check "$r_first" ">=" 3) |"
	local r_cert
	r_cert=$(ratio "$(med azfscert.first_mbps)" "$(A first_mbps)")
	echo "| first backup, certificate mode (MB/s) | $(cell azfscert.first_mbps 1) | | $(x "$r_cert") of passphrase mode | ≥ 0.9x: $(check "$r_cert" ">=" 0.9) |"
	echo "| first backup peak RSS (MB) | $(cell azfs.first_rss 0) | $(cell restic.first_rss 0) | $(x "$(ratio "$(A first_rss)" "$(S first_rss)")") | < 300 MB: $(check "$(A first_rss)" "<" 300) |"
	echo "| second backup, nothing changed (s) | $(cell azfs.second_s 2) | $(cell restic.second_s 2) | $(x "$r_second") | ≤ 0.5x restic: $(check "$r_second" "<=" 0.5) |"
	echo "| second backup peak RSS (MB) | $(cell azfs.second_rss 0) | $(cell restic.second_rss 0) | $(x "$(ratio "$(A second_rss)" "$(S second_rss)")") | |"
	echo "| repository size (MB) | $(cell azfs.repo_mb 0) | $(cell restic.repo_mb 0) | $(x "$(ratio "$(A repo_mb)" "$(S repo_mb)")") | |"
	echo "| local state: HOME+config+cache (MB) | $(cell azfs.local_mb 1) | $(cell restic.local_mb 1) | | |"
	echo "| mount until content visible (s) | $(cell azfs.mount_s 2) | $(cell restic.mount_s 2) | $(x "$(ratio "$(A mount_s)" "$(S mount_s)")") | |"
	echo "| \`ls -lR\` of the mount, fresh mount (s) | $(cell azfs.ls_s 2) | $(cell restic.ls_s 2) | $(x "$r_ls") | ≤ 0.33x restic: $(check "$r_ls" "<=" 0.3334) |"
	echo "| \`cp -a\` out of the mount (s) | $(cell azfs.cp_s 2) | $(cell restic.cp_s 2) | $(x "$(ratio "$(A cp_s)" "$(S cp_s)")") | |"
	echo "| \`cp -a\` out of the mount (MB/s) | $(cell azfs.cp_mbps 1) | $(cell restic.cp_mbps 1) | $(x "$r_cp") | ≥ 4x restic: $(check "$r_cp" ">=" 4) |"
	echo "| \`cp -a\` out of the mount vs plain \`cp -a\` (time) | $(x "$azfs_cp_vs_plain") | $(x "$restic_cp_vs_plain") | | azfs ≤ 3x: $(check "$azfs_cp_vs_plain" "<=" 3) |"
	echo "| random 4 KiB read p50, cold mount (ms) | $(cell azfs.rr_p50 3) | $(cell restic.rr_p50 3) | $(x "$(ratio "$(A rr_p50)" "$(S rr_p50)")") | < 2 ms: $(check "$(A rr_p50)" "<" 2) |"
	echo "| random 4 KiB read p90, cold mount (ms) | $(cell azfs.rr_p90 3) | $(cell restic.rr_p90 3) | $(x "$(ratio "$(A rr_p90)" "$(S rr_p90)")") | |"
	echo "| random 4 KiB read p50, cold mount, FADV_RANDOM (ms) | $(cell azfs.rrf_p50 3) | $(cell restic.rrf_p50 3) | $(x "$(ratio "$(A rrf_p50)" "$(S rrf_p50)")") | < 2 ms: $(check "$(A rrf_p50)" "<" 2) |"
	echo "| random 4 KiB read p90, cold mount, FADV_RANDOM (ms) | $(cell azfs.rrf_p90 3) | $(cell restic.rrf_p90 3) | $(x "$(ratio "$(A rrf_p90)" "$(S rrf_p90)")") | |"
	echo "| mount server peak RSS (VmHWM) after \`cp -a\` (MB) | $(cell azfs.mount_rss 0) | $(cell restic.mount_rss 0) | $(x "$(ratio "$(A mount_rss)" "$(S mount_rss)")") | |"
	echo "| copy out of the mount == source (\`diff -r\`) | ${VERIFY[azfs]:-n/a} | ${VERIFY[restic]:-n/a} | | identical |"
	echo "| metadata mismatches (type/mode/owner/size/mtime/link) | ${META[azfs]:-n/a} | ${META[restic]:-n/a} | | |"
	if ((BLOB)); then
		echo
		echo "Azure Blob vault in Azurite on loopback (ratio: against the local vault in the same runs)"
		echo
		blob_rows azfs-blob azfs
	fi
	echo
	echo "<details><summary>per-run values</summary>"
	echo
	per_run_values
	if [[ -n ${R[azfscert.first_mbps]:-} && -n ${R[azfs.first_mbps]:-} ]]; then
		echo "Paired per-run ratios certificate mode / passphrase mode, first backup throughput: $(paired azfscert.first_mbps azfs.first_mbps)"
		echo
	fi
	local k
	if ((BLOB)); then
		echo "Paired per-run ratios blob vault / local vault:"
		echo
		for k in first_mbps:first_mbps cp_cold_mbps:cp_mbps cp_warm_mbps:cp_mbps; do
			echo "- \`${k%%:*}\`: $(paired "azfsblob.${k%%:*}" "azfs.${k#*:}")"
		done
		echo
	fi
	if [[ -n ${R[azfs.first_s]:-} && -n ${R[restic.first_s]:-} ]]; then
		echo "Paired per-run ratios azfs/restic (runs are interleaved, so a pair shares the machine's mood):"
		echo
		for k in first_mbps second_s ls_s cp_mbps rr_p50 rrf_p50; do
			echo "- \`$k\`: $(paired "azfs.$k" "restic.$k")"
		done
		echo
	fi
	report_end
}
publish report
