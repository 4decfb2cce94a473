#!/usr/bin/env bash
# Tool-call gate benchmarks (no root, no network): per-message added latency
# for 1 KiB tools/call messages, throughput of large server results, and
# start-up, each against a direct pipe in the same run (see
# src/bin/assay-gatebench.rs). Goals: p99 added latency under 50 us,
# throughput at least 80% of the direct pipe's.
# Two runs. First every process on one CPU (taskset): each hand-off is a
# context switch on that CPU, so the difference is the gate's own work.
# Then as the scheduler places them: on a VM, waking a halted vCPU for a
# cross-CPU hand-off can cost tens of microseconds, and the gated path has
# twice the hand-offs, so that run says as much about the host as the gate.
# Env: COUNT (messages per round and path, default 3000), ROUNDS (default 9),
# MIB (MiB per throughput run, default 256).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
cargo build --release --quiet --bin assay --bin assay-gatebench
cpu=$(($(nproc) - 1))
run() {
	"$@" ./target/release/assay-gatebench bench --assay ./target/release/assay \
		--count "${COUNT:-3000}" --rounds "${ROUNDS:-9}" --mib "${MIB:-256}"
}
echo "== gate bench, every process on CPU $cpu (the gate's own cost)"
run taskset -c "$cpu"
echo "== gate bench, placed by the scheduler"
run
