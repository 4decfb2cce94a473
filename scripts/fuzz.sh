#!/usr/bin/env bash
# Fuzz the policy loader, then the tool-call gate (gate_line: client and
# server lines through the judge and the relay), each for a bounded time:
# scripts/fuzz.sh [SECONDS] (default 60 each).
#
# cargo-fuzz needs nightly compiler flags; only stable exists here, so
# RUSTC_BOOTSTRAP=1 unlocks them. If the sanitizer runtime is unavailable the
# run falls back to --sanitizer none (still catches panics, hangs, OOM).
# Crashes land in fuzz/artifacts/<target>/; add each as a regression
# fixture (tests/fixtures/policy/, or a case in src/gate/judge.rs).
set -euo pipefail
seconds="${1:-60}"
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS]" >&2; exit 2; }
cd "$(dirname "$0")/.."

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz from crates.io..." >&2
    cargo install cargo-fuzz --locked --quiet
fi

# Seeds: every policy we ship or test for the loader; MCP messages (the
# gate's test fixtures' shapes) for the gate. Copies are named by content hash.
mkdir -p fuzz/corpus/policy_load fuzz/corpus/gate_line
for f in policies/*.yaml tests/fixtures/policy/valid/*.yaml tests/fixtures/policy/invalid/*.yaml; do
    cp "$f" "fuzz/corpus/policy_load/$(sha1sum "$f" | cut -c1-16)"
done
seed() { printf '%s\n' "$1" >"fuzz/corpus/gate_line/$(printf '%s' "$1" | sha1sum | cut -c1-16)"; }
seed '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"exec","arguments":{}}}'
seed '{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/x"}}}'
seed '[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}},{"jsonrpc":"2.0","id":2,"method":"tools/list"}]'
seed '{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"exec"},{"name":"echo"}]}}'

export RUSTC_BOOTSTRAP=1
run() {
    local target=$1
    shift
    cargo fuzz run "$@" "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10
}
for target in policy_load gate_line; do
    if ! run "$target"; then
        status=$?
        # Distinguish a finding from a toolchain without sanitizer support.
        if ls "fuzz/artifacts/$target"/crash-* "fuzz/artifacts/$target"/oom-* \
            "fuzz/artifacts/$target"/timeout-* >/dev/null 2>&1; then
            echo "fuzzing found a problem: see fuzz/artifacts/$target/" >&2
            exit "$status"
        fi
        echo "address sanitizer unavailable; retrying with --sanitizer none" >&2
        run "$target" --sanitizer none
    fi
done
