#!/usr/bin/env bash
# Fuzz the policy loader for a bounded time: scripts/fuzz.sh [SECONDS] (default 60).
#
# cargo-fuzz needs nightly compiler flags; only stable exists here, so
# RUSTC_BOOTSTRAP=1 unlocks them. If the sanitizer runtime is unavailable the
# run falls back to --sanitizer none (still catches panics, hangs, OOM).
# Crashes land in fuzz/artifacts/policy_load/; add each as a regression
# fixture under tests/fixtures/policy/.
set -euo pipefail
seconds="${1:-60}"
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS]" >&2; exit 2; }
cd "$(dirname "$0")/.."

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz from crates.io..." >&2
    cargo install cargo-fuzz --locked --quiet
fi

corpus=fuzz/corpus/policy_load
mkdir -p "$corpus"
# Seed with every policy we ship or test (copies named by content hash).
for f in policies/*.yaml tests/fixtures/policy/valid/*.yaml tests/fixtures/policy/invalid/*.yaml; do
    cp "$f" "$corpus/$(sha1sum "$f" | cut -c1-16)"
done

export RUSTC_BOOTSTRAP=1
run() {
    cargo fuzz run "$@" policy_load "$corpus" -- \
        -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10
}
if ! run; then
    status=$?
    # Distinguish a finding from a toolchain without sanitizer support.
    if ls fuzz/artifacts/policy_load/crash-* fuzz/artifacts/policy_load/oom-* \
        fuzz/artifacts/policy_load/timeout-* >/dev/null 2>&1; then
        echo "fuzzing found a problem: see fuzz/artifacts/policy_load/" >&2
        exit "$status"
    fi
    echo "address sanitizer unavailable; retrying with --sanitizer none" >&2
    run --sanitizer none
fi
