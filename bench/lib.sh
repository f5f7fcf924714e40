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

# check_runs: exits with a usage error unless BENCH_RUNS is a positive integer.
check_runs() {
	[[ $BENCH_RUNS =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_RUNS must be a positive integer" >&2; exit 2; }
}

# median: the median of the numbers on stdin, one a line, with two decimals.
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }
