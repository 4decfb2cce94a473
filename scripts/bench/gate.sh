#!/usr/bin/env bash
# Tool-call gate benchmarks (no root, no network): per-message added latency
# for 1 KiB tools/call messages, throughput of large server results, and
# start-up, each against a direct pipe in the same run (see
# src/bin/assay-gatebench.rs). Goals: p99 added latency under 50 us,
# throughput at least 80% of the direct pipe's.
# Env: COUNT (messages per round and path, default 3000), ROUNDS (default 9),
# MIB (MiB per throughput run, default 256).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
cargo build --release --quiet --bin assay --bin assay-gatebench
exec ./target/release/assay-gatebench bench --assay ./target/release/assay \
	--count "${COUNT:-3000}" --rounds "${ROUNDS:-9}" --mib "${MIB:-256}"
