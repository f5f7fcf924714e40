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
#   BENCH_CP_DIR=DIR               where `cp -a` out of the mounts writes (default: the work dir on
#                                  disk); a tmpfs such as /dev/shm/azfs-bench measures the mounts
#                                  without the destination disk's writeback, for both tools alike
#   BENCH_SKIP_BLOB=1              skip the Azure Blob (Azurite) measurements
#
# Needs: go, restic, fusermount3 (or fusermount), /usr/bin/time, jq, diff, root or FUSE access.
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

export LC_ALL=C
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

case "${1:-}" in
-h | --help)
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
	exit 0
	;;
esac

BENCH_DIR=$(realpath -m "${BENCH_DIR:-/var/tmp/azfs-bench}")
BENCH_QUICK=${BENCH_QUICK:-0}
BENCH_SKIP_RESTIC=${BENCH_SKIP_RESTIC:-0}
BENCH_SKIP_AZFS=${BENCH_SKIP_AZFS:-0}
BENCH_KEEP_STATE=${BENCH_KEEP_STATE:-0}
BENCH_SKIP_BLOB=${BENCH_SKIP_BLOB:-0}
BENCH_MOUNT_TIMEOUT=${BENCH_MOUNT_TIMEOUT:-120}
BENCH_AZMOUNT_FLAGS=${BENCH_AZMOUNT_FLAGS---cache-size 256MiB}
read -ra AZMOUNT_FLAGS <<<"$BENCH_AZMOUNT_FLAGS"
if [[ $BENCH_QUICK == 1 ]]; then
	BENCH_RUNS=${BENCH_RUNS:-1}
	CORPUS=$BENCH_DIR/corpus-quick
	BIG_BYTES=$((32 * 1000 * 1000))
else
	BENCH_RUNS=${BENCH_RUNS:-3}
	CORPUS=$BENCH_DIR/corpus
	BIG_BYTES=$((200 * 1000 * 1000))
fi
[[ $BENCH_RUNS =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_RUNS must be a positive integer" >&2; exit 2; }
BIG=$CORPUS/big.bin
RANDREAD_N=200

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
if [[ -n ${BENCH_CP_DIR:-} ]]; then mkdir -p "$BENCH_CP_DIR"; fi
AZBIN_DIR=${BIN:+$(realpath -m "$BIN")} # `make bench` passes BIN= with freshly built azfs, azmount
BIN=$WORK/bin
MNT_AZ=$WORK/mnt-azfs
MNT_RS=$WORK/mnt-restic
RESULTS=$BENCH_DIR/results-$STAMP.md

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

# ---------------------------------------------------------------- safety / cleanup

# mounted_under DIR: true if anything is mounted at or below DIR.
mounted_under() {
	awk -v d="$1" '$2 == d || index($2, d "/") == 1 { f = 1 } END { exit !f }' /proc/self/mounts
}

# safe_rm PATH...: rm -rf, but never descend into a live mount.
safe_rm() {
	local p
	for p; do
		[[ -e $p || -L $p ]] || continue
		if mounted_under "$(realpath -m "$p")"; then
			log "refusing to remove $p: something is mounted below it"
			return 1
		fi
		rm -rf -- "$p"
	done
}

unmount_dir() {
	local mnt=$1
	mountpoint -q "$mnt" 2>/dev/null || return 0
	fusermount3 -u "$mnt" 2>/dev/null || fusermount -u "$mnt" 2>/dev/null ||
		umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
}

declare -A ACTIVE=() # mount pid -> mountpoint, for pids this script started

# stop_mount PID: SIGINT, wait (bounded), escalate, make sure it is unmounted.
stop_mount() {
	local pid=$1 mnt=${ACTIVE[$1]:-} i rc=0
	if kill -0 "$pid" 2>/dev/null; then
		kill -INT "$pid" 2>/dev/null || true
		for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$pid" 2>/dev/null; then
			contract "mount process $pid ($mnt) still running 30 s after SIGINT; sent SIGTERM"
			kill -TERM "$pid" 2>/dev/null || true
			for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
		fi
	fi
	wait "$pid" 2>/dev/null || rc=$?
	STOP_RC=$rc
	if [[ -n $mnt ]] && mountpoint -q "$mnt" 2>/dev/null; then
		contract "$mnt still mounted after its server (pid $pid) exited; unmounted by the script"
		unmount_dir "$mnt"
	fi
	unset "ACTIVE[$pid]"
}

cleanup() {
	local rc=$? pid
	set +e
	trap - EXIT INT TERM
	for pid in "${!ACTIVE[@]}"; do stop_mount "$pid"; done
	unmount_dir "$MNT_AZ"
	unmount_dir "$MNT_RS"
	if [[ -n ${AZURITE_PID:-} ]]; then
		AZURITE_PID=$AZURITE_PID AZURITE_DIR=$AZURITE_DIR bash "$REPO/scripts/azurite.sh" stop
	fi
	if [[ $BENCH_KEEP_STATE == 1 ]]; then
		safe_rm "$SCRATCH" "$BIN"
		log "kept state in $WORK"
	else
		safe_rm "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One bench at a time per BENCH_DIR.
exec 9>"$BENCH_DIR/.lock"
flock -n 9 || die "another bench.sh is running on $BENCH_DIR"

# Leftovers of a run that was SIGKILLed: unmount (nothing of ours is running now) and remove.
for d in "$BENCH_DIR"/run.*; do
	[[ -d $d ]] || continue
	unmount_dir "$d/mnt-azfs"
	unmount_dir "$d/mnt-restic"
	safe_rm "$d" || true
done

mkdir -p "$WORK" "$LOGS" "$STATE" "$SCRATCH" "$BIN" "$MNT_AZ" "$MNT_RS"

# ---------------------------------------------------------------- results bookkeeping

declare -A R=()       # "tool.metric" -> space separated values, one per run
declare -A NOTE=()    # "tool.metric" -> note shown next to the value
CONTRACT=()           # contract breaks / failures, reported at the end
declare -A DEAD=()    # tool -> reason it stopped being measured

add() { R[$1]+="$2 "; }
contract() { CONTRACT+=("$*"); log "CONTRACT/FAILURE: $*"; }

# cmd_str ARGS...: the command as one shell-quoted line (for reports).
cmd_str() { local s; printf -v s '%q ' "$@"; printf '%s' "${s% }"; }

# errtail FILE: last lines of a log, one line.
errtail() { tail -n 5 "$1" 2>/dev/null | tr '\n' ' ' | sed 's/  */ /g; s/ $//' | cut -c1-400; }

median() {
	awk '{ for (i = 1; i <= NF; i++) print $i }' <<<"${1:-}" | sort -g |
		awk '{ a[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
med() { median "${R[$1]:-}"; }

# fmt VALUE DIGITS
fmt() { [[ -n ${1:-} ]] && awk -v v="$1" -v d="$2" 'BEGIN { printf "%.*f", d, v }' || printf '—'; }
# ratio A B: A/B with 2 decimals, empty if not computable
ratio() { [[ -n ${1:-} && -n ${2:-} ]] && awk -v a="$1" -v b="$2" 'BEGIN { if (b != 0) printf "%.2f", a / b }' || true; }
# check VALUE OP LIMIT -> PASS/FAIL/n/a
check() {
	[[ -n ${1:-} ]] || { printf 'n/a'; return; }
	awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
		ok = (op == ">=") ? v >= l : (op == "<=") ? v <= l : (op == "<") ? v < l : v > l
		printf "%s", ok ? "**PASS**" : "**FAIL**" }'
}

# run_timed OUT ERR CMD...: sets T_WALL (s), T_RSS_MB (peak RSS of CMD), T_RC.
run_timed() {
	local out=$1 err=$2 t0 t1
	shift 2
	T_RC=0
	t0=$EPOCHREALTIME
	/usr/bin/time -f '%M' -o "$WORK/.time" "$@" >"$out" 2>"$err" || T_RC=$?
	t1=$EPOCHREALTIME
	T_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	T_RSS_MB=$(awk 'END { printf "%.1f", $1 / 1024 }' "$WORK/.time")
}

mbps() { awk -v b="$CORPUS_BYTES" -v t="$1" 'BEGIN { if (t > 0) printf "%.1f", b / 1e6 / t }'; }

# ---------------------------------------------------------------- prerequisites

for c in go /usr/bin/time jq diff mountpoint flock; do
	command -v "$c" >/dev/null || die "missing $c (apt-get install -y time jq diffutils util-linux)"
done
if [[ " ${TOOLS[*]} " == *" restic "* ]]; then
	command -v restic >/dev/null || die "restic not found (apt-get install -y restic), or set BENCH_SKIP_RESTIC=1"
fi
command -v fusermount3 >/dev/null || command -v fusermount >/dev/null || [[ $EUID == 0 ]] ||
	die "no fusermount3/fusermount (apt-get install -y fuse3)"
[[ -e /dev/fuse ]] || die "/dev/fuse missing"

# Build before HOME is redirected, with the caller's Go caches.
GOCACHE=$(go env GOCACHE) GOMODCACHE=$(go env GOMODCACHE) GOPATH=$(go env GOPATH)
GOENV=$(go env GOENV) GOFLAGS=$(go env GOFLAGS) GOTOOLCHAIN=$(go env GOTOOLCHAIN)
export GOCACHE GOMODCACHE GOPATH GOENV GOFLAGS GOTOOLCHAIN

log "building randread"
if ! (cd "$REPO" && go build -o "$BIN/randread" ./bench/randread) 2>"$LOGS/build-randread.log"; then
	# The module may be mid-edit: build the std-only tool as its own module.
	mkdir -p "$WORK/rr" && cp "$REPO/bench/randread/main.go" "$WORK/rr/" &&
		(cd "$WORK/rr" && GOWORK=off go mod init randread >/dev/null 2>&1 && GOWORK=off go build -o "$BIN/randread" .) \
			2>>"$LOGS/build-randread.log" || die "cannot build bench/randread: $(errtail "$LOGS/build-randread.log")"
fi

AZFS=$BIN/azfs AZMOUNT=$BIN/azmount
if [[ $BENCH_SKIP_AZFS == 1 ]]; then
	:
elif [[ -n $AZBIN_DIR && -x $AZBIN_DIR/azfs && -x $AZBIN_DIR/azmount ]]; then
	log "using azfs, azmount from BIN=$AZBIN_DIR"
	AZFS=$AZBIN_DIR/azfs AZMOUNT=$AZBIN_DIR/azmount
else
	log "building azfs, azmount"
	if ! (cd "$REPO" && go build -o "$BIN/" ./cmd/azfs ./cmd/azmount) >"$LOGS/build-azfs.log" 2>&1; then
		cat "$LOGS/build-azfs.log" >&2
		die "azfs does not build (set BENCH_SKIP_AZFS=1 to measure restic only)"
	fi
fi

# ---------------------------------------------------------------- corpus

build_corpus() {
	local tmp=$CORPUS.tmp f
	if [[ -f $CORPUS/.corpus-complete ]]; then
		log "reusing corpus $CORPUS"
		return
	fi
	log "building corpus $CORPUS (once)"
	safe_rm "$tmp" "$CORPUS"
	mkdir -p "$tmp"
	if [[ $BENCH_QUICK == 1 ]]; then
		mkdir -p "$tmp/go"
		cp -a /usr/local/go/src "$tmp/go/src"
	else
		cp -a /usr/local/go "$tmp/go"
		if [[ -d /usr/lib/jvm ]]; then cp -a /usr/lib/jvm "$tmp/jvm"; else log "no /usr/lib/jvm: Go only"; fi
	fi
	: >"$tmp/big.bin"
	shopt -s nullglob
	for f in /usr/local/go/pkg/tool/*/* /usr/bin/* /usr/sbin/* /usr/lib/x86_64-linux-gnu/*; do
		[[ -f $f && ! -L $f ]] || continue
		cat -- "$f" >>"$tmp/big.bin" 2>/dev/null || continue
		(($(stat -c %s "$tmp/big.bin") >= BIG_BYTES)) && break
	done
	shopt -u nullglob
	(($(stat -c %s "$tmp/big.bin") >= BIG_BYTES)) || die "could not gather $BIG_BYTES bytes of binaries"
	: >"$tmp/.corpus-complete"
	mv "$tmp" "$CORPUS"
}
build_corpus
CORPUS=$(realpath "$CORPUS")
BIG=$CORPUS/big.bin
CORPUS_BYTES=$(find "$CORPUS" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
CORPUS_FILES=$(find "$CORPUS" -type f | wc -l)
CORPUS_DIRS=$(find "$CORPUS" -type d | wc -l)
CORPUS_LINKS=$(find "$CORPUS" -type l | wc -l)
BIG_SIZE=$(stat -c %s "$BIG")
log "corpus: $((CORPUS_BYTES / 1000000)) MB, $CORPUS_FILES files, $CORPUS_DIRS dirs, $CORPUS_LINKS symlinks; runs: $BENCH_RUNS; tools: ${TOOLS[*]}"

# ---------------------------------------------------------------- references (page cache warm)

log "warming page cache"
find "$CORPUS" -type f -exec cat -- {} + >/dev/null
for ((i = 1; i <= BENCH_RUNS; i++)); do
	sync
	run_timed /dev/null "$LOGS/ref-cat.log" find "$CORPUS" -type f -exec cat -- {} +
	add ref.cat_s "$T_WALL"
	cat_s=$T_WALL
	sync
	run_timed /dev/null "$LOGS/ref-cp.log" cp -a "$CORPUS" "$SCRATCH/ref-cp"
	((T_RC == 0)) || die "plain cp -a failed: $(errtail "$LOGS/ref-cp.log")"
	add ref.cp_s "$T_WALL"
	log "reference run $i: cat $cat_s s, cp -a $T_WALL s"
	sync
	safe_rm "$SCRATCH/ref-cp"
done

# ---------------------------------------------------------------- per-tool state

use_state() {
	local d=$STATE/$1
	export HOME=$d/home XDG_CONFIG_HOME=$d/config XDG_CACHE_HOME=$d/cache
	if [[ $1 == restic ]]; then
		export RESTIC_REPOSITORY=$d/repo RESTIC_PASSWORD=azfs-bench-password
	fi
}
reset_state() {
	safe_rm "$STATE/$1"
	mkdir -p "$STATE/$1"/{home,config,cache}
	use_state "$1"
}

dead() { [[ -n ${DEAD[$1]:-} ]]; }
kill_tool() { DEAD[$1]=$2; contract "$2"; log "no further $1 measurements"; }

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
		c=(restic init)
		if ! "${c[@]}" >"$out-init.out" 2>"$out-init.err"; then
			kill_tool restic "\`restic init\` failed: $(errtail "$out-init.err")"
			return 0
		fi
		c=(restic backup "$CORPUS")
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

# start_mount TOOL TAG: sets MPID, MTARGET (the corpus inside the mount), T_MOUNT.
start_mount() {
	local t=$1 tag=$2 mnt c t0 rc i
	use_state "$t"
	if [[ $t == azfs* ]]; then
		mnt=$MNT_AZ
		c=("$AZMOUNT" "${AZMOUNT_FLAGS[@]}" --point latest "$mnt")
		MTARGET=$mnt$CORPUS
	else
		mnt=$MNT_RS
		c=(restic mount "$mnt")
		MTARGET=$mnt/snapshots/latest$CORPUS
	fi
	if mountpoint -q "$mnt"; then die "$mnt is already mounted"; fi
	MLOG=$LOGS/$t-mount-$tag.log
	t0=$EPOCHREALTIME
	"${c[@]}" >"$MLOG" 2>&1 &
	MPID=$!
	ACTIVE[$MPID]=$mnt
	for ((i = 0; ; i++)); do
		if ! kill -0 "$MPID" 2>/dev/null; then
			rc=0
			wait "$MPID" || rc=$?
			unset "ACTIVE[$MPID]"
			unmount_dir "$mnt"
			kill_tool "$t" "\`$(cmd_str "${c[@]}")\` exited (rc=$rc) before the mount showed $MTARGET: $(errtail "$MLOG")"
			return 1
		fi
		if mountpoint -q "$mnt" && [[ -d $MTARGET ]]; then break; fi
		if ((i > BENCH_MOUNT_TIMEOUT * 20)); then
			stop_mount "$MPID"
			kill_tool "$t" "\`$(cmd_str "${c[@]}")\`: $MTARGET did not appear within $BENCH_MOUNT_TIMEOUT s: $(errtail "$MLOG")"
			return 1
		fi
		sleep 0.05
	done
	T_MOUNT=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
	add "$t.mount_s" "$T_MOUNT"
}

end_mount() {
	local t=$1
	stop_mount "$MPID"
	if ((STOP_RC != 0 && STOP_RC != 130)); then
		NOTE[$t.stop]="mount server exit status $STOP_RC after SIGINT"
		if [[ $t == azfs ]]; then contract "azmount exited with status $STOP_RC after SIGINT (log: $MLOG: $(errtail "$MLOG"))"; fi
	fi
	return 0
}

vmhwm_mb() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null; }

# verify TOOL COPY: content (diff -r) and metadata comparison against the corpus.
verify() {
	local t=$1 copy=$2 n
	log "$t: diff -r against the source"
	if diff -r --no-dereference "$CORPUS" "$copy" >"$LOGS/$t-diff.txt" 2>&1; then
		VERIFY[$t]="identical"
	else
		n=$(wc -l <"$LOGS/$t-diff.txt")
		VERIFY[$t]="**DIFFERENT** ($n lines of diff output, see $LOGS/$t-diff.txt)"
		if [[ $t == azfs ]]; then contract "cp -a out of the azfs mount differs from the source: $(head -c 300 "$LOGS/$t-diff.txt" | tr '\n' ' ')"; fi
	fi
	# type, mode, owner, size (files), mtime (ns), link target
	local q='%P\t%y\t%m\t%U\t%G\t%s\t%T@\t%l\n'
	(cd "$CORPUS" && find . -printf "$q") | awk -F'\t' -v OFS='\t' '$2 == "d" { $6 = "" } 1' | sort >"$WORK/meta-src"
	(cd "$copy" && find . -printf "$q") | awk -F'\t' -v OFS='\t' '$2 == "d" { $6 = "" } 1' | sort >"$WORK/meta-$t"
	comm -23 "$WORK/meta-src" "$WORK/meta-$t" >"$LOGS/$t-meta-diff.txt"
	META[$t]=$(wc -l <"$LOGS/$t-meta-diff.txt")
}
declare -A VERIFY=() META=()

# mount_run TOOL RUN: ls -lR, cp -a, random reads, each on a fresh mount.
mount_run() {
	local t=$1 i=$2 out=${BENCH_CP_DIR:-$SCRATCH}/out-$1
	if dead "$t"; then return 0; fi

	start_mount "$t" "$i-ls" || return 0
	sync
	run_timed /dev/null "$LOGS/$t-$i-ls.err" ls -lR "$MTARGET"
	((T_RC == 0)) || contract "$t run $i: ls -lR of the mount failed (rc=$T_RC): $(errtail "$LOGS/$t-$i-ls.err")"
	add "$t.ls_s" "$T_WALL"
	log "$t run $i: mount ready in $T_MOUNT s, ls -lR $T_WALL s"
	end_mount "$t"

	start_mount "$t" "$i-cp" || return 0
	safe_rm "$out"
	sync
	run_timed /dev/null "$LOGS/$t-$i-cp.err" cp -a "$MTARGET" "$out"
	((T_RC == 0)) || contract "$t run $i: cp -a out of the mount failed (rc=$T_RC): $(errtail "$LOGS/$t-$i-cp.err")"
	add "$t.cp_s" "$T_WALL"
	add "$t.cp_mbps" "$(mbps "$T_WALL")"
	local hwm
	hwm=$(vmhwm_mb "$MPID")
	grep -E '^(VmHWM|VmRSS|RssAnon|RssFile|RssShmem|Threads):' "/proc/$MPID/status" >"$LOGS/$t-$i-cp-mount-status.txt" 2>/dev/null || true
	add "$t.mount_rss" "$hwm"
	log "$t run $i: cp -a $T_WALL s, mount VmHWM $hwm MB"
	end_mount "$t"
	sync
	if ((i == 1)); then verify "$t" "$out"; fi
	safe_rm "$out"

	# Random reads, twice on fresh mounts: plain ReadAt (kernel read-ahead on, as an
	# application would), then with POSIX_FADV_RANDOM (every page-cache miss is one
	# 4 KiB read served by the filesystem).
	local mode key args
	for mode in plain fadv; do
		if [[ $mode == plain ]]; then key=rr args=(); else key=rrf args=(-fadvise-random); fi
		start_mount "$t" "$i-$key" || return 0
		sync
		run_timed "$LOGS/$t-$i-$key.out" "$LOGS/$t-$i-$key.err" \
			"$BIN/randread" -file "$MTARGET/big.bin" -n "$RANDREAD_N" -size 4096 "${args[@]}"
		if ((T_RC == 0)); then
			add "$t.${key}_p50" "$(sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p' "$LOGS/$t-$i-$key.out")"
			add "$t.${key}_p90" "$(sed -n 's/.*p90_ms=\([0-9.]*\).*/\1/p' "$LOGS/$t-$i-$key.out")"
			log "$t run $i: random 4K ($mode) $(cat "$LOGS/$t-$i-$key.out")"
		else
			contract "$t run $i: random reads ($mode) through the mount failed: $(errtail "$LOGS/$t-$i-$key.err")"
		fi
		end_mount "$t"
	done
	return 0
}

# ---------------------------------------------------------------- Azure Blob vault (Azurite)

# start_azurite: a throwaway in-memory Azurite for the blob measurements.
start_azurite() {
	local out
	[[ -x $REPO/node_modules/.bin/azurite-blob ]] || { contract "Azurite is not installed (run npm ci in $REPO): blob vault not measured"; return 1; }
	out=$(AZURITE_EXTENT_MB=$((4 * (BENCH_RUNS + 1) * CORPUS_BYTES / 1000000 + 512)) AZURITE_WATCH_PID=$$ TMPDIR=$WORK \
		bash "$REPO/scripts/azurite.sh" start 2>"$LOGS/azurite-start.err") ||
		{ contract "could not start Azurite: $(errtail "$LOGS/azurite-start.err")"; return 1; }
	eval "$out"
	export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=$AZURITE_BLOB_ENDPOINT;"
	log "Azurite at $AZURITE_BLOB_ENDPOINT (pid $AZURITE_PID)"
}

# per_gb COUNT: COUNT per GB of corpus.
per_gb() { awk -v n="$1" -v b="$CORPUS_BYTES" 'BEGIN { if (n != "") printf "%.1f", n / (b / 1e9) }'; }

# blob_backup_run RUN: the first backup into a fresh blob vault, right after
# the local vault's of the same run.
blob_backup_run() {
	local i=$1 out=$LOGS/azfs-blob-$1 c rc
	reset_state azfs-blob
	c=("$AZFS" vault create "$AZURITE_BLOB_ENDPOINT/bench-$i" --generate-passphrase "$STATE/azfs-blob/passphrase")
	rc=0
	"${c[@]}" >"$out-vault-create.out" 2>"$out-vault-create.err" || rc=$?
	if ((rc != 0)); then
		kill_tool azfs-blob "\`$(cmd_str "${c[@]}")\` failed (rc=$rc): $(errtail "$out-vault-create.err")"
		return 0
	fi
	sync
	run_timed "$out-backup.out" "$out-backup.err" "$AZFS" backup --json "$CORPUS"
	if ((T_RC != 0)); then
		kill_tool azfs-blob "run $i: blob vault backup failed (rc=$T_RC): $(errtail "$out-backup.err")"
		return 0
	fi
	add azfsblob.first_mbps "$(mbps "$T_WALL")"
	add azfsblob.first_rss "$T_RSS_MB"
	add azfsblob.backup_req_gb "$(per_gb "$(jq -r .storage.requests "$out-backup.out")")"
	log "azfs (blob vault) run $i: first backup $T_WALL s, peak RSS $T_RSS_MB MB, $(jq -c .storage "$out-backup.out")"
}

# blob_mount_run RUN: cp -a out of the blob vault's latest point on a fresh
# mount with an empty on-disk cache, then again on a remount.
blob_mount_run() {
	local i=$1 out=${BENCH_CP_DIR:-$SCRATCH}/out-azfs-blob k req
	if dead azfs-blob; then return 0; fi
	use_state azfs-blob
	safe_rm "$XDG_CACHE_HOME" && mkdir -p "$XDG_CACHE_HOME" # cold: no on-disk cache yet
	for k in cold warm; do
		start_mount azfs-blob "$i-$k" || return 0
		safe_rm "$out"
		sync
		run_timed /dev/null "$LOGS/azfs-blob-$i-$k.err" cp -a "$MTARGET" "$out"
		((T_RC == 0)) || contract "azfs-blob run $i: cp -a ($k) out of the mount failed (rc=$T_RC): $(errtail "$LOGS/azfs-blob-$i-$k.err")"
		add "azfsblob.cp_${k}_mbps" "$(mbps "$T_WALL")"
		add "azfsblob.mount_rss_$k" "$(vmhwm_mb "$MPID")"
		end_mount azfs-blob
		req=$(sed -n 's/.*msg=unmounted.* requests=\([0-9]*\).*/\1/p' "$MLOG" | tail -n 1)
		[[ -n $req ]] && add "azfsblob.restore_req_gb_$k" "$(per_gb "$req")"
		log "azfs (blob vault) run $i: cp -a with a $k on-disk cache $T_WALL s, $req storage requests"
		if ((i == 1)) && [[ $k == cold ]]; then
			diff -r --no-dereference "$CORPUS" "$out" >"$LOGS/azfs-blob-diff.txt" 2>&1 ||
				contract "cp -a out of the blob vault's mount differs from the source (see $LOGS/azfs-blob-diff.txt)"
		fi
		sync
		safe_rm "$out"
	done
}

# ---------------------------------------------------------------- measure (runs interleaved)

BLOB=0
if [[ $BENCH_SKIP_BLOB != 1 && " ${TOOLS[*]} " == *" azfs "* ]] && start_azurite; then BLOB=1; fi
for ((i = 1; i <= BENCH_RUNS; i++)); do
	for t in "${TOOLS[@]}"; do
		dead "$t" || backup_run "$t" "$i"
		if [[ $t == azfs ]] && ! dead azfs; then
			cert_backup_run "$i"
			if ((BLOB)); then blob_backup_run "$i"; fi
		fi
	done
done
for ((i = 1; i <= BENCH_RUNS; i++)); do
	for t in "${TOOLS[@]}"; do
		mount_run "$t" "$i"
		if [[ $t == azfs ]] && ((BLOB)); then blob_mount_run "$i"; fi
	done
done

# ---------------------------------------------------------------- report

A() { med "azfs.$1"; }
S() { med "restic.$1"; }
cell() { # cell KEY DIGITS: median of the tool, with note
	local v; v=$(med "$1")
	printf '%s%s' "$(fmt "$v" "$2")" "${NOTE[$1]:+ (${NOTE[$1]})}"
}
ref_cp=$(med ref.cp_s)
ref_cat=$(med ref.cat_s)
azfs_cp_vs_plain=$(ratio "$(A cp_s)" "$ref_cp")
restic_cp_vs_plain=$(ratio "$(S cp_s)" "$ref_cp")
r_first=$(ratio "$(A first_mbps)" "$(S first_mbps)")
r_second=$(ratio "$(A second_s)" "$(S second_s)")
r_ls=$(ratio "$(A ls_s)" "$(S ls_s)")
r_cp=$(ratio "$(A cp_mbps)" "$(S cp_mbps)")
x() { [[ -n $1 ]] && printf '%sx' "$1" || printf 'n/a'; }

report() {
	echo "# azfs vs restic — $(date '+%Y-%m-%d %H:%M:%S')"
	echo
	echo "Corpus \`$CORPUS\`: $(fmt "$(awk -v b="$CORPUS_BYTES" 'BEGIN { print b / 1e6 }')" 0) MB in $CORPUS_FILES files, $CORPUS_DIRS dirs, $CORPUS_LINKS symlinks; random-read file $((BIG_SIZE / 1000000)) MB."
	echo "Medians of $BENCH_RUNS run(s); page cache warm; fresh vault/repo and fresh HOME/XDG dirs for every first backup; fresh mount for every mount measurement."
	echo "restic: $(command -v restic >/dev/null && restic version 2>/dev/null | head -1 || echo n/a); azmount flags: \`${BENCH_AZMOUNT_FLAGS}\`; $(nproc) cores; kernel $(uname -r)."
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
		local r_bb r_bc r_bw
		r_bb=$(ratio "$(med azfsblob.first_mbps)" "$(A first_mbps)")
		r_bc=$(ratio "$(med azfsblob.cp_cold_mbps)" "$(A cp_mbps)")
		r_bw=$(ratio "$(med azfsblob.cp_warm_mbps)" "$(A cp_mbps)")
		echo
		echo "Azure Blob vault in Azurite on loopback (ratio: against the local vault in the same runs)"
		echo
		echo "| metric | blob vault | ratio (blob/local) | target |"
		echo "|---|---|---|---|"
		echo "| first backup throughput (MB/s) | $(cell azfsblob.first_mbps 1) | $(x "$r_bb") | ≥ 0.6x: $(check "$r_bb" ">=" 0.6) |"
		echo "| first backup peak RSS (MB) | $(cell azfsblob.first_rss 0) | | |"
		echo "| first backup: storage requests per GB | $(cell azfsblob.backup_req_gb 1) | | |"
		echo "| \`cp -a\` out of a fresh mount, empty on-disk cache (MB/s) | $(cell azfsblob.cp_cold_mbps 1) | $(x "$r_bc") | ≥ 0.5x: $(check "$r_bc" ">=" 0.5) |"
		echo "| \`cp -a\` out of a remount, warm on-disk cache (MB/s) | $(cell azfsblob.cp_warm_mbps 1) | $(x "$r_bw") | ≥ 0.9x: $(check "$r_bw" ">=" 0.9) |"
		echo "| restore: storage requests per GB, cold / warm | $(cell azfsblob.restore_req_gb_cold 1) / $(cell azfsblob.restore_req_gb_warm 1) | | |"
		echo "| mount server peak RSS, cold / warm (MB) | $(cell azfsblob.mount_rss_cold 0) / $(cell azfsblob.mount_rss_warm 0) | | |"
	fi
	echo
	echo "<details><summary>per-run values</summary>"
	echo
	local k
	for k in $(printf '%s\n' "${!R[@]}" | sort); do echo "- \`$k\`: ${R[$k]% }"; done
	echo
	if [[ -n ${R[azfscert.first_mbps]:-} && -n ${R[azfs.first_mbps]:-} ]]; then
		local pc
		pc=$(paste <(tr ' ' '\n' <<<"${R[azfscert.first_mbps]% }") <(tr ' ' '\n' <<<"${R[azfs.first_mbps]% }") |
			awk -F'\t' '$1 != "" && $2 != "" && $2 != 0 { printf "%.2f ", $1 / $2 }')
		echo "Paired per-run ratios certificate mode / passphrase mode, first backup throughput: ${pc% } (median $(median "$pc"))"
		echo
	fi
	if ((BLOB)); then
		echo "Paired per-run ratios blob vault / local vault:"
		echo
		local pair
		for pair in first_mbps:first_mbps cp_cold_mbps:cp_mbps cp_warm_mbps:cp_mbps; do
			[[ -n ${R[azfsblob.${pair%%:*}]:-} && -n ${R[azfs.${pair#*:}]:-} ]] || continue
			local pb
			pb=$(paste <(tr ' ' '\n' <<<"${R[azfsblob.${pair%%:*}]% }") <(tr ' ' '\n' <<<"${R[azfs.${pair#*:}]% }") |
				awk -F'\t' '$1 != "" && $2 != "" && $2 != 0 { printf "%.2f ", $1 / $2 }')
			echo "- \`${pair%%:*}\`: ${pb% } (median $(median "$pb"))"
		done
		echo
	fi
	if [[ -n ${R[azfs.first_s]:-} && -n ${R[restic.first_s]:-} ]]; then
		echo "Paired per-run ratios azfs/restic (runs are interleaved, so a pair shares the machine's mood):"
		echo
		for k in first_mbps second_s ls_s cp_mbps rr_p50 rrf_p50; do
			[[ -n ${R[azfs.$k]:-} && -n ${R[restic.$k]:-} ]] || continue
			local pr
			pr=$(paste <(tr ' ' '\n' <<<"${R[azfs.$k]% }") <(tr ' ' '\n' <<<"${R[restic.$k]% }") |
				awk -F'\t' '$1 != "" && $2 != "" && $2 != 0 { printf "%.2f ", $1 / $2 }')
			echo "- \`$k\`: ${pr% } (median $(median "$pr"))"
		done
		echo
	fi
	echo "</details>"
	echo
	if ((${#CONTRACT[@]})); then
		echo "## Failures / contract breaks"
		echo
		local c
		for c in "${CONTRACT[@]}"; do echo "- $c"; done
		echo
	fi
	echo "Logs: \`$LOGS\`"
}
report | tee "$RESULTS"
log "results written to $RESULTS"
((${#DEAD[@]} == 0)) || exit 1
