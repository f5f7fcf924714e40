#!/usr/bin/env bash
# bench/exclude.sh: what 20 exclude patterns cost a backup (issue 13: within 5%).
#
# Usage: bench/exclude.sh [-h]
#
# Backs up the bench corpus with and without 20 exclude patterns, the two ways alternating
# so that both see the same machine noise, with the page cache warm:
#   first          azfs backup CORPUS into a fresh vault (fresh file cache), BENCH_RUNS times
#   rerun          a backup into that vault with nothing changed (every file stat-ed and
#                  matched, none read: where matching costs the most), 3 x BENCH_RUNS times
# and prints, for each, the medians of the wall time and of the CPU time (user + system,
# which the load of other processes on the machine disturbs less) and the ratios with /
# without. The patterns are an exclude file as a server's holds one (caches, editors' and
# compilers' leftovers, trash); they exclude little or nothing of the corpus, so that every
# entry is matched against all of them and the ratio measures the matching; the files each
# point holds are printed.
#
# Environment knobs:
#   BIN=DIR                       azfs binary in DIR (default: built into the work dir)
#   BENCH_DIR=/var/tmp/azfs-bench results-exclude-*.md go here; work dir run-exclude.* (removed)
#   BENCH_RUNS=5                  measurements of each; medians reported
#   EXCLUDE_CORPUS=DIR            what to back up (default: $BENCH_DIR/corpus, which
#                                 bench/bench.sh builds: about 1 GB, 15k files)
set -euo pipefail

export LC_ALL=C
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

help_if_asked "${BASH_SOURCE[0]}" "${1:-}"

BENCH_DIR=$(realpath -m "${BENCH_DIR:-/var/tmp/azfs-bench}")
BENCH_RUNS=${BENCH_RUNS:-5}
check_runs
CORPUS=${EXCLUDE_CORPUS:-$BENCH_DIR/corpus}
if [[ -z ${EXCLUDE_CORPUS:-} && ! -f $CORPUS/.corpus-complete ]]; then
	echo "no bench corpus in $CORPUS: run bench/bench.sh first (it builds it), or set EXCLUDE_CORPUS=DIR" >&2
	exit 2
fi
CORPUS=$(realpath "$CORPUS")

run_dirs exclude
if [ -z "${BIN:-}" ]; then
	BIN=$WORK/bin
	(cd "$REPO" && go build -o "$BIN/" ./cmd/azfs)
fi
export HOME=$WORK/home
mkdir -p "$HOME"

# The 20 patterns (those of repo/selection's BenchmarkWalk).
PATTERNS=$WORK/excludes
cat >"$PATTERNS" <<'EOF'
# caches and scratch
*.tmp
*.swp
*~
.cache
/var/cache
/var/tmp
/root/.ccache
__pycache__
*.pyc
node_modules
# build leftovers
*.o
*.[oa]
**/target/debug
core.[0-9]*
# people's clutter
/home/*/Downloads
/home/*/.local/share/Trash
/srv/**/logs/*.gz
Thumbs.db
.DS_Store
lost+found
EOF
n=$(grep -cv '^#' "$PATTERNS")
[[ $n == 20 ]] || { echo "the exclude file has $n patterns, want 20" >&2; exit 1; }

# backup TAG FIRST ARGS...: one backup in the vault of TAG (a fresh one when FIRST is 1);
# prints "wall-seconds cpu-seconds files".
backup() {
	local tag=$1 first=$2 out
	shift 2
	export AZFS_CONFIG_DIR=$WORK/$tag/config AZFS_CACHE_DIR=$WORK/$tag/cache
	if [[ $first == 1 ]]; then
		rm -rf "${WORK:?}/$tag"
		mkdir -p -m 700 "$AZFS_CONFIG_DIR" && mkdir -p "$AZFS_CACHE_DIR"
		"$BIN/azfs" vault create "$WORK/$tag/vault" --generate-passphrase "$WORK/$tag/pass" >/dev/null 2>&1
	fi
	out=$(/usr/bin/time -o "$WORK/$tag.time" -f '%e %U %S' "$BIN/azfs" backup --json "$@" "$CORPUS" 2>"$WORK/$tag.err") || {
		cat "$WORK/$tag.err" >&2
		return 1
	}
	read -r wall user sys <"$WORK/$tag.time"
	echo "$wall $(echo "$user + $sys" | bc -l) $(jq -r .stats.files <<<"$out")"
}
ratio() { echo "scale=3; $2 / $1" | bc; }

find "$CORPUS" -type f -exec cat -- {} + >/dev/null
declare -a fw fc fw20 fc20 rw rc rw20 rc20
files=0 files20=0
# measure KIND I: one backup of KIND (first or rerun) each way, in an order that alternates with I.
measure() {
	local kind=$1 i=$2 way out w c n
	for way in plain patterns; do
		((i % 2)) || way=$([[ $way == plain ]] && echo patterns || echo plain)
		local fresh=0
		[[ $kind == first ]] && fresh=1
		if [[ $way == plain ]]; then
			out=$(backup plain $fresh) || exit 1
			read -r w c n <<<"$out"
			if [[ $kind == first ]]; then fw+=("$w") fc+=("$c") files=$n; else rw+=("$w") rc+=("$c"); fi
		else
			out=$(backup with $fresh --exclude-file "$PATTERNS") || exit 1
			read -r w c n <<<"$out"
			if [[ $kind == first ]]; then fw20+=("$w") fc20+=("$c") files20=$n; else rw20+=("$w") rc20+=("$c"); fi
		fi
	done
}
for i in $(seq "$BENCH_RUNS"); do
	measure first "$i"
	for j in 1 2 3; do measure rerun $((i * 3 + j)); done
done
m() { printf '%s\n' "$@" | median; }
bytes=$(du -sb "$CORPUS" | cut -f1)
{
	echo "# backup with 20 exclude patterns, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
	echo
	echo "Corpus \`$CORPUS\`, $((bytes / 1000000)) MB; $files files backed up without the patterns, $files20 with them;"
	echo "medians of $BENCH_RUNS first backups and $((3 * BENCH_RUNS)) reruns each way, alternating."
	echo
	echo "| backup | without: wall s | with 20: wall s | ratio | without: CPU s | with 20: CPU s | ratio | target |"
	echo "|---|---|---|---|---|---|---|---|"
	echo "| first, fresh vault | $(m "${fw[@]}") | $(m "${fw20[@]}") | $(ratio "$(m "${fw[@]}")" "$(m "${fw20[@]}")") | $(m "${fc[@]}") | $(m "${fc20[@]}") | $(ratio "$(m "${fc[@]}")" "$(m "${fc20[@]}")") | <= 1.05 |"
	echo "| rerun, nothing changed | $(m "${rw[@]}") | $(m "${rw20[@]}") | $(ratio "$(m "${rw[@]}")" "$(m "${rw20[@]}")") | $(m "${rc[@]}") | $(m "${rc20[@]}") | $(ratio "$(m "${rc[@]}")" "$(m "${rc20[@]}")") | <= 1.05 |"
	echo
	echo "wall s without: first ${fw[*]}; rerun ${rw[*]}"
	echo "wall s with:    first ${fw20[*]}; rerun ${rw20[*]}"
	echo "CPU s without:  first ${fc[*]}; rerun ${rc[*]}"
	echo "CPU s with:     first ${fc20[*]}; rerun ${rc20[*]}"
} | tee "$RESULTS"
