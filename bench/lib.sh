# Shared by the bench/*.sh scripts (sourced).

# end_mount PID DIR: ends an azmount this script started in the background
# (SIGINT, then waits for the process to be gone, also from a subshell,
# where wait cannot), and makes sure DIR is unmounted.
end_mount() {
	local pid=$1 dir=$2
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -INT "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || while kill -0 "$pid" 2>/dev/null; do sleep 0.02; done
	fi
	if mountpoint -q "$dir" 2>/dev/null; then
		fusermount3 -u "$dir" 2>/dev/null || umount "$dir" 2>/dev/null || true
	fi
}

# help_if_asked SCRIPT ARG: with ARG -h or --help, prints SCRIPT's header comment (from its
# second line to `set -euo`) and exits.
help_if_asked() {
	case "${2:-}" in
	-h | --help)
		sed -n '2,/^set -euo/p' "$1" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	esac
}

# work_dirs NAME: the directories of one run of harness NAME: WORK (per run, removed on exit),
# LOGS, STATE, SCRATCH, and STAMP, the run's time; NEW_DIR, the BIN given (made absolute), and
# BIN, where the run builds its helpers.
work_dirs() {
	STAMP=$(date +%Y%m%d-%H%M%S)
	mkdir -p "$BENCH_DIR"
	WORK=$BENCH_DIR/$1.$STAMP.$$
	LOGS=$BENCH_DIR/logs/$1-$STAMP
	STATE=$WORK/state
	SCRATCH=$WORK/scratch
	NEW_DIR=${BIN:+$(realpath -m "$BIN")}
	BIN=$WORK/bin
}

# run_dirs NAME: STAMP (the run's time), WORK ($BENCH_DIR/run-NAME.STAMP.PID: made, and removed
# when the script exits) and RESULTS ($BENCH_DIR/results-NAME-STAMP.md) of a script that
# writes one results file.
run_dirs() {
	STAMP=$(date +%Y%m%d-%H%M%S)
	WORK=$BENCH_DIR/run-$1.$STAMP.$$
	RESULTS=$BENCH_DIR/results-$1-$STAMP.md
	mkdir -p "$WORK"
	trap 'rm -rf "$WORK"' EXIT
}

# starting_azmount: sets BASE to the directory of the binaries issue 15 starts from
# (BENCH_BASELINE, default $BENCH_DIR/baseline-8cf8197) and exits 2 unless its azmount is there.
starting_azmount() {
	BASE=${BENCH_BASELINE:-$BENCH_DIR/baseline-8cf8197}
	[[ -x $BASE/azmount ]] || { echo "no starting azmount in $BASE (BENCH_BASELINE)" >&2; exit 2; }
}

# pair_run NAME: the run of a script that compares the starting azmount with this one
# (mountcpu, metacpu, randread, widels): STAMP, WORK (WORK/bin made; removed on exit), MNT
# (the mount point, in WORK; the mount of MPID there ended on exit), RESULTS
# ($BENCH_DIR/results-NAME-<time>.md). Whatever the script adds to ON_EXIT_RM is removed on
# exit too.
pair_run() {
	STAMP=$(date +%Y%m%d-%H%M%S)
	WORK=$BENCH_DIR/run-$1.$STAMP.$$
	MNT=$WORK/mnt
	RESULTS=$BENCH_DIR/results-$1-$STAMP.md
	MPID=
	ON_EXIT_RM=()
	mkdir -p "$WORK/bin" "$MNT"
	trap pair_cleanup EXIT
}
pair_cleanup() {
	end_mount "$MPID" "$MNT"
	rm -rf "$WORK" "${ON_EXIT_RM[@]}"
}

# bench_vault: builds azfs and azmount into WORK/bin unless BIN names them, and
# bench/randread there (unless NO_RANDREAD=1); points azfs's config, cache and HOME into WORK
# and creates a vault in WORK/vault (passphrase file WORK/pass).
bench_vault() {
	if [[ -z ${BIN:-} ]]; then
		BIN=$WORK/bin
		(cd "$REPO" && go build -o "$BIN/" ./cmd/azfs ./cmd/azmount)
	fi
	[[ ${NO_RANDREAD:-0} == 1 ]] || (cd "$REPO" && go build -o "$WORK/bin/randread" ./bench/randread)
	export AZFS_CONFIG_DIR=$WORK/config AZFS_CACHE_DIR=$WORK/cache HOME=$WORK/home
	mkdir -p -m 700 "$AZFS_CONFIG_DIR" && mkdir -p "$AZFS_CACHE_DIR" "$HOME"
	"$BIN/azfs" vault create "$WORK/vault" --generate-passphrase "$WORK/pass" >/dev/null 2>&1
}

# bench_start SCRIPT ARG: what every bench script does first: C locale, --help, BENCH_DIR
# (default /var/tmp/azfs-bench) made absolute.
bench_start() {
	export LC_ALL=C
	help_if_asked "$1" "$2"
	BENCH_DIR=$(realpath -m "${BENCH_DIR:-/var/tmp/azfs-bench}")
}

# check_runs: exits with a usage error unless BENCH_RUNS is a positive integer.
check_runs() {
	[[ $BENCH_RUNS =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_RUNS must be a positive integer" >&2; exit 2; }
}

# median: the median of the numbers on stdin, one a line, with two decimals.
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }

# ---------------------------------------------------------------- measurement harness
# Shared by bench.sh and peers.sh: results bookkeeping, timing with CPU seconds, the corpus,
# mounts of any tool, the Azure Blob (Azurite) measurements. The calling script sets
# BENCH_DIR, WORK, LOGS, STATE, SCRATCH, BIN (helpers such as randread), CORPUS, BIG_BYTES,
# BENCH_QUICK, BENCH_RUNS, BENCH_MOUNT_TIMEOUT, LOG_TAG, and defines two hooks:
#   mount_cmd TOOL       sets MNT (TOOL's mount point), MCMD (its mount server's command, run
#                        in the foreground), MTARGET (where the corpus shows inside MNT) and
#                        MSTOP=unmount for a server that stops on an unmount, not on SIGINT
#   tool_env TOOL DIR    exports TOOL's own environment (repository, password) under DIR
# MOUNT_DIRS lists the mount points the script uses (unmounted on exit).

# harness_settings: the knobs bench.sh and peers.sh share: BENCH_QUICK (CORPUS is the small
# corpus-quick, 1 run by default) or the ~1 GB corpus (3 runs), BENCH_RUNS, BIG_BYTES,
# BENCH_MOUNT_TIMEOUT, BENCH_AZMOUNT_FLAGS (AZMOUNT_FLAGS, as an array), RANDREAD_N.
harness_settings() {
	BENCH_QUICK=${BENCH_QUICK:-0}
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
	check_runs
	RANDREAD_N=200
}

log() { printf '[%s %s] %s\n' "${LOG_TAG:-bench}" "$(date +%T)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

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

# copy_dest NAME BYTES: sets CP_DIR, where the copies (plain `cp -a`, `cp -a` out of the mounts,
# restores) go: BENCH_CP_DIR when set, else a directory of its own in /dev/shm (removed on
# exit, by harness_cleanup or the caller) when that is a tmpfs with room for 2 x BYTES (the
# corpus's size) beside 1 GB, else DEFAULT. A tmpfs measures the source and not the
# destination: on the disk here (ext4 without a journal) creating files after mass deletes
# is slow and swung the plain `cp -a` reference from 1.7 s to 13.5 s between runs.
CP_DIR_OWN=
copy_dest() {
	local name=$1 bytes=$2 default=$3 kb
	if [[ -n ${BENCH_CP_DIR:-} ]]; then
		CP_DIR=$BENCH_CP_DIR
	elif [[ $(stat -f -c %T /dev/shm 2>/dev/null) == tmpfs ]] &&
		kb=$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }') && ((kb > (2 * bytes + 1000000000) / 1024)); then
		CP_DIR=$(mktemp -d "/dev/shm/azfs-bench-$name.XXXXXX")
		CP_DIR_OWN=$CP_DIR
	else
		CP_DIR=$default
	fi
	mkdir -p "$CP_DIR"
}

# discard PATH...: sets a tree the harness wrote aside (a rename into .discarded beside it)
# instead of deleting it between timed steps: on ext4 without a journal (as on the machines
# here), creating files within about 30 s of deleting thousands scans past every recently
# deleted inode (recently_deleted in the inode allocator), which made the step after an
# `rm -rf` of the previous copy spend most of its time there (bench/restore.sh's note).
# The set-aside trees are deleted when free space runs short (then 31 s pass before the
# next step) and on exit.
DISCARDED=()
discard() {
	local p d kb
	for p; do
		[[ -e $p || -L $p ]] || continue
		if [[ $(stat -f -c %T -- "$p") == tmpfs ]]; then
			safe_rm "$p" # in memory: no inode allocator to slow the next step
			continue
		fi
		d=$(dirname -- "$p")/.discarded
		mkdir -p "$d"
		mv -- "$p" "$(mktemp -u "$d/t.XXXXXX")"
		[[ " ${DISCARDED[*]} " == *" $d "* ]] || DISCARDED+=("$d")
		kb=$(df -Pk "$d" | awk 'NR == 2 { print $4 }')
		if ((kb < 3 * ${CORPUS_BYTES:-1000000000} / 1024)); then
			safe_rm "${DISCARDED[@]}"
			sync
			sleep 31
		fi
	done
}

unmount_dir() {
	local mnt=$1
	mountpoint -q "$mnt" 2>/dev/null || return 0
	fusermount3 -u "$mnt" 2>/dev/null || fusermount -u "$mnt" 2>/dev/null ||
		umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
}

declare -A R=()       # "tool.metric" -> space separated values, one per run
declare -A NOTE=()    # "tool.metric" -> note shown next to the value
CONTRACT=()           # contract breaks / failures, reported at the end
declare -A DEAD=()    # tool -> reason it stopped being measured
declare -A ACTIVE=()  # mount server pid -> mountpoint, for pids this script started
declare -A STOP_BY_UNMOUNT=() # mount server pid -> 1 when it stops on an unmount, not SIGINT
declare -A VERIFY=() META=()
MOUNT_DIRS=()

add() { R[$1]+="$2 "; }
contract() { CONTRACT+=("$*"); log "CONTRACT/FAILURE: $*"; }
dead() { [[ -n ${DEAD[$1]:-} ]]; }
kill_tool() { DEAD[$1]=$2; contract "$2"; log "no further $1 measurements"; }

# cmd_str ARGS...: the command as one shell-quoted line (for reports).
cmd_str() { local s; printf -v s '%q ' "$@"; printf '%s' "${s% }"; }

# errtail FILE: last lines of a log, one line.
errtail() { tail -n 5 "$1" 2>/dev/null | tr '\n' ' ' | sed 's/  */ /g; s/ $//' | cut -c1-400; }

# median_of "V1 V2 ...": the median, as awk prints it (empty for no values).
median_of() {
	awk '{ for (i = 1; i <= NF; i++) print $i }' <<<"${1:-}" | sort -g |
		awk '{ a[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
med() { median_of "${R[$1]:-}"; }

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
# cell KEY DIGITS: the median of KEY's values, with its note.
cell() { printf '%s%s' "$(fmt "$(med "$1")" "$2")" "${NOTE[$1]:+ (${NOTE[$1]})}"; }
x() { [[ -n $1 ]] && printf '%sx' "$1" || printf 'n/a'; }

# paired KEY_A KEY_B: per-run ratios A/B of two metrics measured in the same runs, then
# "(median M)".
paired() {
	local p
	[[ -n ${R[$1]:-} && -n ${R[$2]:-} ]] || { printf 'n/a'; return; }
	p=$(paste <(tr ' ' '\n' <<<"${R[$1]% }") <(tr ' ' '\n' <<<"${R[$2]% }") |
		awk -F'\t' '$1 != "" && $2 != "" && $2 != 0 { printf "%.2f ", $1 / $2 }')
	printf '%s (median %s)' "${p% }" "$(median_of "$p")"
}

# run_timed OUT ERR CMD...: sets T_WALL (s), T_RSS_MB (peak RSS of CMD), T_CPU (user +
# system s of CMD and its children), T_RC.
run_timed() {
	local out=$1 err=$2 t0 t1
	shift 2
	T_RC=0
	t0=$EPOCHREALTIME
	/usr/bin/time -f '%M %U %S' -o "$WORK/.time" "$@" >"$out" 2>"$err" || T_RC=$?
	t1=$EPOCHREALTIME
	T_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	T_RSS_MB=$(awk 'END { printf "%.1f", $1 / 1024 }' "$WORK/.time")
	T_CPU=$(awk 'END { printf "%.2f", $2 + $3 }' "$WORK/.time")
}

mbps() { awk -v b="$CORPUS_BYTES" -v t="$1" 'BEGIN { if (t > 0) printf "%.1f", b / 1e6 / t }'; }
# per_gb COUNT: COUNT per GB of corpus.
per_gb() { awk -v n="$1" -v b="$CORPUS_BYTES" 'BEGIN { if (n != "") printf "%.2f", n / (b / 1e9) }'; }

# proc_cpu PID: user + system seconds PID has used so far (all its threads).
proc_cpu() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null
}
vmhwm_mb() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null; }

# build_corpus: the bench corpus in CORPUS, made once (kept): the Go toolchain, the JVMs
# and big.bin (binaries concatenated to BIG_BYTES); with BENCH_QUICK, Go's src only.
# Sets CORPUS (resolved), BIG, CORPUS_BYTES, CORPUS_FILES, CORPUS_DIRS, CORPUS_LINKS, BIG_SIZE.
build_corpus() {
	local tmp=$CORPUS.tmp f
	if [[ -f $CORPUS/.corpus-complete ]]; then
		log "reusing corpus $CORPUS"
	else
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
	fi
	CORPUS=$(realpath "$CORPUS")
	corpus_stats
}

# corpus_stats: sets BIG, CORPUS_BYTES, CORPUS_FILES, CORPUS_DIRS, CORPUS_LINKS, BIG_SIZE.
corpus_stats() {
	BIG=$CORPUS/big.bin
	CORPUS_BYTES=$(find "$CORPUS" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
	CORPUS_FILES=$(find "$CORPUS" -type f | wc -l)
	CORPUS_DIRS=$(find "$CORPUS" -type d | wc -l)
	CORPUS_LINKS=$(find "$CORPUS" -type l | wc -l)
	BIG_SIZE=$(stat -c %s "$BIG")
}

# build_randread: bench/randread into BIN (as its own module if the repo does not build).
build_randread() {
	log "building randread"
	if ! (cd "$REPO" && go build -o "$BIN/randread" ./bench/randread) 2>"$LOGS/build-randread.log"; then
		mkdir -p "$WORK/rr" && cp "$REPO/bench/randread/main.go" "$REPO"/bench/randread/fadvise_*.go "$WORK/rr/" &&
			(cd "$WORK/rr" && GOWORK=off go mod init randread >/dev/null 2>&1 && GOWORK=off go build -o "$BIN/randread" .) \
				2>>"$LOGS/build-randread.log" || die "cannot build bench/randread: $(errtail "$LOGS/build-randread.log")"
	fi
}

# measure_references: warms the page cache with the corpus, then BENCH_RUNS times `cat` of
# every file (ref.cat_s, ref.cat_cpu) and a plain `cp -a` into CP_DIR (ref.cp_s, ref.cp_cpu).
measure_references() {
	local i cat_s
	log "warming page cache"
	find "$CORPUS" -type f -exec cat -- {} + >/dev/null
	for ((i = 1; i <= BENCH_RUNS; i++)); do
		sync
		run_timed /dev/null "$LOGS/ref-cat.log" find "$CORPUS" -type f -exec cat -- {} +
		add ref.cat_s "$T_WALL"
		add ref.cat_cpu "$T_CPU"
		cat_s=$T_WALL
		sync
		run_timed /dev/null "$LOGS/ref-cp.log" cp -a "$CORPUS" "$CP_DIR/ref-cp"
		((T_RC == 0)) || die "plain cp -a failed: $(errtail "$LOGS/ref-cp.log")"
		add ref.cp_s "$T_WALL"
		add ref.cp_cpu "$T_CPU"
		log "reference run $i: cat $cat_s s, cp -a $T_WALL s"
		sync
		discard "$CP_DIR/ref-cp"
	done
}

# use_state TOOL: TOOL's own HOME and XDG dirs under STATE, and its tool_env.
use_state() {
	local d=$STATE/$1
	export HOME=$d/home XDG_CONFIG_HOME=$d/config XDG_CACHE_HOME=$d/cache
	tool_env "$1" "$d"
}
reset_state() {
	safe_rm "$STATE/$1"
	mkdir -p "$STATE/$1"/{home,config,cache}
	use_state "$1"
}

# stop_mount PID: SIGINT (or an unmount, for servers that ignore SIGINT), wait (bounded),
# escalate, make sure it is unmounted.
stop_mount() {
	local pid=$1 mnt=${ACTIVE[$1]:-} i rc=0 how=SIGINT
	if kill -0 "$pid" 2>/dev/null; then
		if [[ -n ${STOP_BY_UNMOUNT[$pid]:-} ]]; then
			how=fusermount3
			fusermount3 -u "$mnt" 2>/dev/null || kill -INT "$pid" 2>/dev/null || true
		else
			kill -INT "$pid" 2>/dev/null || true
		fi
		for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$pid" 2>/dev/null; then
			contract "mount process $pid ($mnt) still running 30 s after $how; sent SIGTERM"
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
	unset "ACTIVE[$pid]" "STOP_BY_UNMOUNT[$pid]"
}

# start_mount TOOL TAG: starts mount_cmd's server in the background; sets MPID, MTARGET,
# MLOG, T_MOUNT (seconds until MTARGET showed; also added to TOOL.mount_s).
start_mount() {
	local t=$1 tag=$2 mnt t0 rc i
	use_state "$t"
	MSTOP=
	mount_cmd "$t"
	mnt=$MNT
	if mountpoint -q "$mnt"; then die "$mnt is already mounted"; fi
	MLOG=$LOGS/$t-mount-$tag.log
	t0=$EPOCHREALTIME
	"${MCMD[@]}" >"$MLOG" 2>&1 &
	MPID=$!
	ACTIVE[$MPID]=$mnt
	if [[ $MSTOP == unmount ]]; then STOP_BY_UNMOUNT[$MPID]=1; fi
	for ((i = 0; ; i++)); do
		if ! kill -0 "$MPID" 2>/dev/null; then
			rc=0
			wait "$MPID" || rc=$?
			unset "ACTIVE[$MPID]"
			unmount_dir "$mnt"
			kill_tool "$t" "\`$(cmd_str "${MCMD[@]}")\` exited (rc=$rc) before the mount showed $MTARGET: $(errtail "$MLOG")"
			return 1
		fi
		if mountpoint -q "$mnt" && [[ -d $MTARGET ]]; then break; fi
		if ((i > BENCH_MOUNT_TIMEOUT * 20)); then
			stop_mount "$MPID"
			kill_tool "$t" "\`$(cmd_str "${MCMD[@]}")\`: $MTARGET did not appear within $BENCH_MOUNT_TIMEOUT s: $(errtail "$MLOG")"
			return 1
		fi
		sleep 0.05
	done
	T_MOUNT=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
	add "$t.mount_s" "$T_MOUNT"
}

# unmount_tool TOOL: stops the mount server start_mount started; a non-zero exit other than
# SIGINT's is noted (a contract break for azfs).
unmount_tool() {
	local t=$1
	stop_mount "$MPID"
	if ((STOP_RC != 0 && STOP_RC != 130)) && [[ $MSTOP != unmount ]]; then
		NOTE[$t.stop]="mount server exit status $STOP_RC after SIGINT"
		if [[ $t == azfs* || $t == new* ]]; then contract "$t: azmount exited with status $STOP_RC after SIGINT (log: $MLOG: $(errtail "$MLOG"))"; fi
	fi
	return 0
}

# verify TOOL COPY: content (diff -r) and metadata comparison against the corpus; sets
# VERIFY[TOOL] and META[TOOL] (the number of entries whose metadata differ).
verify() {
	local t=$1 copy=$2 n
	log "$t: diff -r against the source"
	if diff -r --no-dereference "$CORPUS" "$copy" >"$LOGS/$t-diff.txt" 2>&1; then
		VERIFY[$t]="identical"
	else
		n=$(wc -l <"$LOGS/$t-diff.txt")
		VERIFY[$t]="**DIFFERENT** ($n lines of diff output, see $LOGS/$t-diff.txt)"
		if [[ $t == azfs* || $t == new* ]]; then contract "$t: copy differs from the source: $(head -c 300 "$LOGS/$t-diff.txt" | tr '\n' ' ')"; fi
	fi
	# type, mode, owner, size (files), mtime (ns), link target
	local q='%P\t%y\t%m\t%U\t%G\t%s\t%T@\t%l\n'
	(cd "$CORPUS" && find . -printf "$q") | awk -F'\t' -v OFS='\t' '$2 == "d" { $6 = "" } 1' | sort >"$WORK/meta-src"
	(cd "$copy" && find . -printf "$q") | awk -F'\t' -v OFS='\t' '$2 == "d" { $6 = "" } 1' | sort >"$WORK/meta-$t"
	comm -23 "$WORK/meta-src" "$WORK/meta-$t" >"$LOGS/$t-meta-diff.txt"
	META[$t]=$(wc -l <"$LOGS/$t-meta-diff.txt")
}

# mount_run TOOL RUN: on fresh mounts of TOOL's latest backup: `ls -lR` (TOOL.ls_s, and the
# mount server's CPU meanwhile, ls_mount_cpu); `cp -a`
# out of it into CP_DIR (copy_dest; TOOL.cp_s, cp_mbps, cp_cpu; the mount server's CPU
# during the copy, mount_cpu, and its VmHWM, mount_rss), compared with the corpus in run 1;
# RANDREAD_N random 4 KiB reads of big.bin with the same offsets for every tool of a run
# (rr_p50, rr_p90), then with POSIX_FADV_RANDOM (every page-cache miss is one 4 KiB read
# served by the file system: rrf_p50, rrf_p90). With RANDREAD_WARM=1 the mount is warm for
# the reads: big.bin opened and its first 4 KiB read before. Last, on another fresh mount,
# the same reads after the mount served the whole file once (`cat big.bin`: the mount's own
# caches are as warm as they get), the file's pages dropped from the page cache
# (POSIX_FADV_DONTNEED) and POSIX_FADV_RANDOM, so each read reaches the mount: rrc_p50,
# rrc_p90.
mount_run() {
	local t=$1 i=$2 out=$CP_DIR/out-$1 cpu0 mode key args
	# cpu0: the mount server's CPU seconds before the copy, then its CPU during the copy
	if dead "$t"; then return 0; fi

	start_mount "$t" "$i-ls" || return 0
	sync
	cpu0=$(proc_cpu "$MPID")
	run_timed /dev/null "$LOGS/$t-$i-ls.err" ls -lR "$MTARGET"
	add "$t.ls_mount_cpu" "$(awk -v a="$cpu0" -v b="$(proc_cpu "$MPID")" 'BEGIN { printf "%.2f", b - a }')"
	((T_RC == 0)) || contract "$t run $i: ls -lR of the mount failed (rc=$T_RC): $(errtail "$LOGS/$t-$i-ls.err")"
	add "$t.ls_s" "$T_WALL"
	log "$t run $i: mount ready in $T_MOUNT s, ls -lR $T_WALL s"
	unmount_tool "$t"

	start_mount "$t" "$i-cp" || return 0
	discard "$out"
	sync
	cpu0=$(proc_cpu "$MPID")
	run_timed /dev/null "$LOGS/$t-$i-cp.err" cp -a "$MTARGET" "$out"
	cpu0=$(awk -v a="$cpu0" -v b="$(proc_cpu "$MPID")" 'BEGIN { printf "%.2f", b - a }')
	add "$t.mount_cpu" "$cpu0"
	((T_RC == 0)) || contract "$t run $i: cp -a out of the mount failed (rc=$T_RC): $(errtail "$LOGS/$t-$i-cp.err")"
	add "$t.cp_s" "$T_WALL"
	add "$t.cp_mbps" "$(mbps "$T_WALL")"
	add "$t.cp_cpu" "$T_CPU"
	add "$t.mount_rss" "$(vmhwm_mb "$MPID")"
	grep -E '^(VmHWM|VmRSS|RssAnon|RssFile|RssShmem|Threads):' "/proc/$MPID/status" >"$LOGS/$t-$i-cp-mount-status.txt" 2>/dev/null || true
	log "$t run $i: cp -a $T_WALL s; mount server $cpu0 s CPU, VmHWM $(vmhwm_mb "$MPID") MB"
	unmount_tool "$t"
	sync
	if ((i == 1)); then verify "$t" "$out"; fi
	discard "$out"

	for mode in plain fadv cached; do
		case $mode in
		plain) key=rr args=() ;;
		fadv) key=rrf args=(-fadvise-random) ;;
		cached) key=rrc args=(-fadvise-dontneed -fadvise-random) ;;
		esac
		start_mount "$t" "$i-$key" || return 0
		if [[ $mode == cached ]]; then
			cat "$MTARGET/big.bin" >/dev/null
		elif [[ ${RANDREAD_WARM:-0} == 1 ]]; then
			head -c 4096 "$MTARGET/big.bin" >/dev/null
		fi
		sync
		run_timed "$LOGS/$t-$i-$key.out" "$LOGS/$t-$i-$key.err" \
			"$BIN/randread" -file "$MTARGET/big.bin" -n "$RANDREAD_N" -size 4096 -seed "$((1000 + i))" "${args[@]}"
		if ((T_RC == 0)); then
			add "$t.${key}_p50" "$(sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p' "$LOGS/$t-$i-$key.out")"
			add "$t.${key}_p90" "$(sed -n 's/.*p90_ms=\([0-9.]*\).*/\1/p' "$LOGS/$t-$i-$key.out")"
			log "$t run $i: random 4 KiB reads ($mode) $(cat "$LOGS/$t-$i-$key.out")"
		else
			contract "$t run $i: random reads ($mode) through the mount failed: $(errtail "$LOGS/$t-$i-$key.err")"
		fi
		unmount_tool "$t"
	done
	return 0
}

# ensure_restic VERSION: sets RESTIC to restic VERSION, built once with go install into
# $BENCH_DIR/restic-VERSION/ unless RESTIC names one already.
ensure_restic() {
	[[ -z ${RESTIC:-} ]] || return 0
	RESTIC=$BENCH_DIR/restic-$1/restic
	[[ -x $RESTIC ]] && return 0
	log "building restic $1 into $(dirname "$RESTIC") (once)"
	mkdir -p "$(dirname "$RESTIC")"
	GOBIN=$(dirname "$RESTIC") GOFLAGS=-mod=mod go install "github.com/restic/restic/cmd/restic@v$1"
}

# ---------------------------------------------------------------- Azure Blob vault (Azurite)

# start_azurite: a throwaway in-memory Azurite for the blob measurements of BLOB_VAULTS
# vaults (each up to BENCH_RUNS backups of the corpus); sets AZURITE_* and
# AZURE_STORAGE_CONNECTION_STRING.
start_azurite() {
	local out
	[[ -x $REPO/node_modules/.bin/azurite-blob ]] || { contract "Azurite is not installed (run npm ci in $REPO): blob vault not measured"; return 1; }
	out=$(AZURITE_START_TIMEOUT=${AZURITE_START_TIMEOUT:-120} AZURITE_EXTENT_MB=$((4 * ${BLOB_VAULTS:-1} * (BENCH_RUNS + 1) * CORPUS_BYTES / 1000000 + 512)) AZURITE_WATCH_PID=$$ TMPDIR=$WORK \
		bash "$REPO/scripts/azurite.sh" start 2>"$LOGS/azurite-start.err") ||
		{ contract "could not start Azurite: $(errtail "$LOGS/azurite-start.err")"; return 1; }
	eval "$out"
	export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=$AZURITE_BLOB_ENDPOINT;"
	log "Azurite at $AZURITE_BLOB_ENDPOINT (pid $AZURITE_PID)"
}
stop_azurite() {
	[[ -n ${AZURITE_PID:-} ]] || return 0
	AZURITE_PID=$AZURITE_PID AZURITE_DIR=$AZURITE_DIR bash "$REPO/scripts/azurite.sh" stop
	AZURITE_PID=
}

# blob_backup_run RUN TOOL AZFS: the first backup into a fresh blob vault with the azfs
# binary AZFS, as state TOOL (e.g. azfs-blob; its results under the key without dashes,
# azfsblob.*), right after the local vault's of the same run.
blob_backup_run() {
	local i=$1 t=$2 azfs=$3 k=${2//-/} out=$LOGS/$2-$1 c rc
	reset_state "$t"
	c=("$azfs" vault create "$AZURITE_BLOB_ENDPOINT/$k-$i" --generate-passphrase "$STATE/$t/passphrase")
	rc=0
	"${c[@]}" >"$out-vault-create.out" 2>"$out-vault-create.err" || rc=$?
	if ((rc != 0)); then
		kill_tool "$t" "\`$(cmd_str "${c[@]}")\` failed (rc=$rc): $(errtail "$out-vault-create.err")"
		return 0
	fi
	sync
	run_timed "$out-backup.out" "$out-backup.err" "$azfs" backup --json "$CORPUS"
	if ((T_RC != 0)); then
		kill_tool "$t" "run $i: blob vault backup failed (rc=$T_RC): $(errtail "$out-backup.err")"
		return 0
	fi
	add "$k.first_mbps" "$(mbps "$T_WALL")"
	add "$k.first_rss" "$T_RSS_MB"
	add "$k.first_cpu_gb" "$(per_gb "$T_CPU")"
	add "$k.backup_req_gb" "$(per_gb "$(jq -r .storage.requests "$out-backup.out")")"
	log "$t run $i: first backup $T_WALL s, $T_CPU s CPU, peak RSS $T_RSS_MB MB, $(jq -c .storage "$out-backup.out")"
}

# blob_mount_run RUN TOOL: cp -a out of TOOL's blob vault's latest point on a fresh mount
# with an empty on-disk cache, then again on a remount.
blob_mount_run() {
	local i=$1 t=$2 k=${2//-/} out=$CP_DIR/out-$2 c req
	if dead "$t"; then return 0; fi
	use_state "$t"
	safe_rm "$XDG_CACHE_HOME" && mkdir -p "$XDG_CACHE_HOME" # cold: no on-disk cache yet
	for c in cold warm; do
		start_mount "$t" "$i-$c" || return 0
		discard "$out"
		sync
		run_timed /dev/null "$LOGS/$t-$i-$c.err" cp -a "$MTARGET" "$out"
		((T_RC == 0)) || contract "$t run $i: cp -a ($c) out of the mount failed (rc=$T_RC): $(errtail "$LOGS/$t-$i-$c.err")"
		add "$k.cp_${c}_mbps" "$(mbps "$T_WALL")"
		add "$k.mount_rss_$c" "$(vmhwm_mb "$MPID")"
		unmount_tool "$t"
		req=$(sed -n 's/.*msg=unmounted.* requests=\([0-9]*\).*/\1/p' "$MLOG" | tail -n 1)
		[[ -n $req ]] && add "$k.restore_req_gb_$c" "$(per_gb "$req")"
		log "$t run $i: cp -a with a $c on-disk cache $T_WALL s, $req storage requests"
		if ((i == 1)) && [[ $c == cold ]]; then
			diff -r --no-dereference "$CORPUS" "$out" >"$LOGS/$t-diff.txt" 2>&1 ||
				contract "cp -a out of $t's mount differs from the source (see $LOGS/$t-diff.txt)"
		fi
		sync
		discard "$out"
	done
}

# blob_rows TOOL LOCAL: the Markdown rows of TOOL's blob vault figures, with the ratios
# against the local vault's (results key LOCAL) of the same runs.
blob_rows() {
	local k=${1//-/} l=$2 r_bb r_bc r_bw
	r_bb=$(ratio "$(med "$k.first_mbps")" "$(med "$l.first_mbps")")
	r_bc=$(ratio "$(med "$k.cp_cold_mbps")" "$(med "$l.cp_mbps")")
	r_bw=$(ratio "$(med "$k.cp_warm_mbps")" "$(med "$l.cp_mbps")")
	echo "| metric | blob vault | ratio (blob/local) | target |"
	echo "|---|---|---|---|"
	echo "| first backup throughput (MB/s) | $(fmt "$(med "$k.first_mbps")" 1) | $(x "$r_bb") | ≥ 0.6x: $(check "$r_bb" ">=" 0.6) |"
	echo "| first backup CPU (s per GB) | $(fmt "$(med "$k.first_cpu_gb")" 2) | | |"
	echo "| first backup peak RSS (MB) | $(fmt "$(med "$k.first_rss")" 0) | | |"
	echo "| first backup: storage requests per GB | $(fmt "$(med "$k.backup_req_gb")" 1) | | |"
	echo "| \`cp -a\` out of a fresh mount, empty on-disk cache (MB/s) | $(fmt "$(med "$k.cp_cold_mbps")" 1) | $(x "$r_bc") | ≥ 0.5x: $(check "$r_bc" ">=" 0.5) |"
	echo "| \`cp -a\` out of a remount, warm on-disk cache (MB/s) | $(fmt "$(med "$k.cp_warm_mbps")" 1) | $(x "$r_bw") | ≥ 0.9x: $(check "$r_bw" ">=" 0.9) |"
	echo "| restore: storage requests per GB, cold / warm | $(fmt "$(med "$k.restore_req_gb_cold")" 1) / $(fmt "$(med "$k.restore_req_gb_warm")" 1) | | |"
	echo "| mount server peak RSS, cold / warm (MB) | $(fmt "$(med "$k.mount_rss_cold")" 0) / $(fmt "$(med "$k.mount_rss_warm")" 0) | | |"
}

# harness_lock: one harness at a time per BENCH_DIR (bench.sh and peers.sh measure each
# other's load otherwise); waits up to BENCH_LOCK_WAIT seconds (default 0) for another.
harness_lock() {
	exec 9>"$BENCH_DIR/.lock"
	flock -n 9 && return 0
	log "another bench.sh or peers.sh is running on $BENCH_DIR; waiting up to ${BENCH_LOCK_WAIT:-0} s"
	flock -w "${BENCH_LOCK_WAIT:-0}" 9 || die "another bench.sh or peers.sh is running on $BENCH_DIR"
}

# remove_stale GLOB...: work dirs of harness runs killed with SIGKILL (none runs now: the
# lock is held): unmounts what is mounted below them and removes them.
remove_stale() {
	local d m
	for d in "$@"; do
		[[ -d $d ]] || continue
		for m in "$d"/mnt-*; do unmount_dir "$m"; done
		safe_rm "$d" || true
	done
}

# harness_cleanup: the EXIT trap: stops the mount servers this script started, unmounts
# MOUNT_DIRS, stops Azurite, removes WORK (keeps its state with BENCH_KEEP_STATE=1).
harness_cleanup() {
	local rc=$? pid m
	set +e
	trap - EXIT INT TERM
	for pid in "${!ACTIVE[@]}"; do stop_mount "$pid"; done
	for m in "${MOUNT_DIRS[@]}"; do unmount_dir "$m"; done
	stop_azurite
	safe_rm "${DISCARDED[@]}" $CP_DIR_OWN
	if [[ ${BENCH_KEEP_STATE:-0} == 1 ]]; then
		safe_rm "$SCRATCH" "$BIN"
		log "kept state in $WORK"
	else
		safe_rm "$WORK"
	fi
	exit "$rc"
}

# keep_go_env: exports the caller's Go caches and settings, so that builds after HOME is
# redirected per tool still find them.
keep_go_env() {
	GOCACHE=$(go env GOCACHE) GOMODCACHE=$(go env GOMODCACHE) GOPATH=$(go env GOPATH)
	GOENV=$(go env GOENV) GOFLAGS=$(go env GOFLAGS) GOTOOLCHAIN=$(go env GOTOOLCHAIN)
	export GOCACHE GOMODCACHE GOPATH GOENV GOFLAGS GOTOOLCHAIN
}

# resolve_azfs DIR OUT: sets AZFS and AZMOUNT to DIR's azfs and azmount (make bench passes
# freshly built ones as BIN=), or builds them from the repo into OUT.
resolve_azfs() {
	if [[ -n $1 && -x $1/azfs && -x $1/azmount ]]; then
		log "using azfs, azmount from $1"
		AZFS=$1/azfs AZMOUNT=$1/azmount
		return
	fi
	log "building azfs, azmount"
	if ! (cd "$REPO" && go build -o "$2/" ./cmd/azfs ./cmd/azmount) >"$LOGS/build-azfs.log" 2>&1; then
		cat "$LOGS/build-azfs.log" >&2
		die "azfs does not build"
	fi
	AZFS=$2/azfs AZMOUNT=$2/azmount
}

# per_run_values: every metric's values, one per run, as a Markdown list.
per_run_values() {
	local k
	for k in $(printf '%s\n' "${!R[@]}" | sort); do echo "- \`$k\`: ${R[$k]% }"; done
	echo
}

# failures: the contract breaks and failures of the run as a Markdown section (nothing
# when there were none).
failures() {
	((${#CONTRACT[@]})) || return 0
	local c
	echo "## Failures / contract breaks"
	echo
	for c in "${CONTRACT[@]}"; do echo "- $c"; done
	echo
}

# report_end: the end of a report: closes the per-run details, lists the failures, names the logs.
report_end() {
	echo "</details>"
	echo
	failures
	echo "Logs: \`$LOGS\`"
}

# publish REPORT: runs the function REPORT into RESULTS and the terminal; exits 1 when a tool
# could not be measured (its measurements ended early), else returns.
publish() {
	# Every value measured, for a report rebuilt by hand (source it, define the report, run it).
	declare -p R NOTE VERIFY META CONTRACT DEAD >"$LOGS/values.bash" 2>/dev/null || true
	"$1" | tee "$RESULTS"
	log "results written to $RESULTS"
	((${#DEAD[@]} == 0)) || exit 1
}
