#!/usr/bin/env bash
# Starts and stops a throwaway Azurite blob emulator for tests.
#
#   eval "$(scripts/azurite.sh start)"   # sets AZURITE_BLOB_ENDPOINT, AZURITE_PID, AZURITE_DIR
#   scripts/azurite.sh stop              # stops $AZURITE_PID and removes $AZURITE_DIR
#
# start runs node_modules/.bin/azurite-blob (install it with `npm ci` in the
# repository root) on a free port of 127.0.0.1 with in-memory persistence,
# waits until it answers HTTP, and prints the exports on stdout. Its log is
# $AZURITE_DIR/azurite.log. If AZURITE_WATCH_PID is set, Azurite is also
# stopped when that process exits, so a caller that dies without running
# stop leaks nothing. stop ends only the process start reported, never
# anything found by name.
#
# Deleted blobs stay in Azurite's memory until its collection every 10
# minutes, and writes fail (MemoryExtentStoreAtSizeLimit) beyond 512 MB
# (AZURITE_EXTENT_MB sets another limit, in MB):
# start a fresh instance rather than reusing one for many test runs.
# AZURITE_START_TIMEOUT (default 30) is how many seconds it may take to answer.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$root/node_modules/.bin/azurite-blob
start_timeout=${AZURITE_START_TIMEOUT:-30} # seconds until Azurite must answer
stop_timeout=10  # seconds until a stopping Azurite gets SIGKILL

die() {
	echo "azurite.sh: $*" >&2
	exit 1
}

# is_azurite PORT succeeds when an Azurite blob service answers HTTP there.
is_azurite() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1"
		printf 'HEAD / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
		while IFS= read -r -t 2 line <&3; do
			case $line in
			[Ss]erver:\ Azurite-Blob*) exit 0 ;;
			$'\r' | '') exit 1 ;;
			esac
		done
		exit 1
	) 2>/dev/null
}

# port_free PORT succeeds when nothing listens on 127.0.0.1:PORT.
port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# random_port prints a port that was free a moment ago, below the Linux
# ephemeral range so that outgoing connections rarely hold it.
random_port() {
	local port
	for _ in {1..100}; do
		port=$((20000 + RANDOM % 12000))
		if port_free "$port"; then
			echo "$port"
			return 0
		fi
	done
	die "no free port found"
}

# alive PID succeeds while PID runs (a zombie whose parent has not reaped it
# yet counts as exited).
alive() {
	[ -r "/proc/$1/stat" ] && [[ $(<"/proc/$1/stat") != *") Z "* ]]
}

# stop_pid PID sends SIGTERM and waits up to stop_timeout for PID to exit,
# then sends SIGKILL.
stop_pid() {
	local pid=$1 deadline=$((SECONDS + stop_timeout))
	kill "$pid" 2>/dev/null || return 0
	while alive "$pid"; do
		if ((SECONDS >= deadline)); then
			kill -KILL "$pid" 2>/dev/null || true
			return 0
		fi
		sleep 0.1
	done
}

# stop_azurite PID DIR stops PID if it is still the Azurite that start ran
# in DIR (PIDs get reused), and removes DIR.
stop_azurite() {
	if [ "$(readlink "/proc/$1/cwd" 2>/dev/null)" = "$2" ]; then
		stop_pid "$1"
	elif alive "$1"; then
		echo "azurite.sh: process $1 does not run in $2; not stopping it" >&2
	fi
	rm -rf "$2"
}

start() {
	[ -x "$bin" ] || die "$bin is missing: run 'npm ci' in $root"
	local dir port pid deadline attempt
	dir=$(mktemp -d "${TMPDIR:-/tmp}/azurite.XXXXXX")
	# A port can be taken between choosing and binding it: Azurite then
	# exits at once, and another port is tried.
	for attempt in 1 2 3; do
		port=$(random_port)
		# Azurite runs in $dir (its log is there); --location cannot be
		# combined with --inMemoryPersistence.
		(cd "$dir" && exec "$bin" --blobHost 127.0.0.1 --blobPort "$port" \
			--skipApiVersionCheck --disableTelemetry --inMemoryPersistence \
			--extentMemoryLimit "${AZURITE_EXTENT_MB:-512}" --loose \
			</dev/null >>"$dir/azurite.log" 2>&1) &
		pid=$!
		deadline=$((SECONDS + start_timeout))
		while alive "$pid"; do
			if is_azurite "$port"; then
				if [ -n "${AZURITE_WATCH_PID:-}" ]; then
					(
						while alive "$AZURITE_WATCH_PID" && alive "$pid"; do
							sleep 1
						done
						if alive "$pid"; then
							stop_azurite "$pid" "$dir"
						fi
					) </dev/null >/dev/null 2>&1 &
				fi
				printf 'export AZURITE_BLOB_ENDPOINT=%q AZURITE_PID=%q AZURITE_DIR=%q\n' \
					"http://127.0.0.1:$port/devstoreaccount1" "$pid" "$dir"
				return 0
			fi
			if ((SECONDS >= deadline)); then
				stop_pid "$pid"
				echo "azurite.sh: Azurite did not answer on port $port within ${start_timeout}s" >&2
				break 2
			fi
			sleep 0.1
		done
		echo "azurite.sh: attempt $attempt: Azurite exited before answering on port $port" >&2
	done
	tail -n 20 "$dir/azurite.log" >&2 || true
	rm -rf "$dir"
	die "could not start Azurite"
}

stop() {
	: "${AZURITE_PID:?AZURITE_PID is not set: run eval \"\$($0 start)\" first}"
	: "${AZURITE_DIR:?AZURITE_DIR is not set}"
	stop_azurite "$AZURITE_PID" "$AZURITE_DIR"
}

case ${1:-} in
start) start ;;
stop) stop ;;
*) die "usage: $0 start|stop" ;;
esac
