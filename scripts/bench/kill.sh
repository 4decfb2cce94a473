#!/usr/bin/env bash
# Kill switch benchmark (root). Reports:
#  1. immediate: median ms from the start of `assay kill --mode immediate` to
#     every process of a 50-process tree exited, against a baseline measured
#     in the same run (SIGKILL to each already-known pid: no snapshot, no
#     freeze, no pidfds) as a ratio; also with --capture-state, and the
#     in-process library call the monitor makes (capture budget 50 ms).
#  2. graceful: total time of `assay kill --mode graceful --grace G` on a tree
#     that ignores SIGTERM, as a ratio of the configured grace G.
# Usage: scripts/bench/kill.sh [RUNS] [TREE_SIZE] [GRACE_MS]
set -euo pipefail
cd "$(dirname "$0")/../.."

runs=${1:-9}
size=${2:-50}
grace=${3:-500}

if [[ $(id -u) -ne 0 ]]; then
	echo "kill.sh: needs root (signals, cgroups, /proc of other processes)" >&2
	exit 1
fi

cargo build --release --quiet --bin assay --example kill_bench
assay=target/release/assay
helper=target/release/examples/kill_bench
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
median() { sort -n | awk '{a[NR]=$1} END {m=int((NR+1)/2); if (NR%2) print a[m]; else printf "%.3f\n", (a[m]+a[m+1])/2}'; }

measure() { # name, args...
	local name=$1
	shift
	: >"$out/$name"
	for _ in $(seq "$runs"); do
		"$helper" run "$assay" "$size" "$@" >>"$out/$name"
	done
	median <"$out/$name"
}

base=$(measure naive naive)
imm=$(measure immediate assay --mode immediate)
cap=$(measure capture assay --mode immediate --capture-state --output "$out/incidents")
lib=$(measure library library-capture)
gr=$(measure graceful assay-ignoring-term --mode graceful --grace "${grace}ms")

printf 'tree of %d processes, %d runs each, medians\n' "$size" "$runs"
printf '  baseline (kill(2) to known pids):    %8.2f ms\n' "$base"
printf '  assay kill --mode immediate:         %8.2f ms  (%sx baseline)\n' "$imm" "$(ratio "$imm" "$base")"
printf '  assay kill immediate --capture-state %8.2f ms  (%sx baseline)\n' "$cap" "$(ratio "$cap" "$base")"
printf '  library execute(), immediate+capture %8.2f ms  (%sx baseline; the monitor path)\n' "$lib" "$(ratio "$lib" "$base")"
printf '  graceful, SIGTERM ignored, grace %dms: %8.2f ms  (%sx the grace)\n' "$grace" "$gr" "$(ratio "$gr" "$grace")"
