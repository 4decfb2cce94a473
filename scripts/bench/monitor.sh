#!/usr/bin/env bash
# Runtime monitor benchmarks (root: loads BPF, creates cgroups; loopback only).
#   - connect() latency on loopback: no monitor vs monitor with 10 and with
#     10,000 CIDR rules, interleaved in one process (it hops between three
#     cgroups every 500 connects), as ratios against the baseline of the same
#     run; TCP and UDP connect();
#   - start-up: policy compile + load + map fill + attach, 10,000 CIDR rules;
#   - draining: the event consumer (decode + JSON line) on one core, and end
#     to end (1,000,000 denied connects through the ring buffer).
# Env: COUNT (connects per cgroup per round, default 20000), ROUNDS (default 5).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
if [[ $(id -u) -ne 0 ]]; then
	echo "monitor.sh: needs root (BPF, cgroups)" >&2
	exit 1
fi
cargo build --release --quiet --bin assay-netbench
exec ./target/release/assay-netbench bench --count "${COUNT:-20000}" --rounds "${ROUNDS:-5}"
