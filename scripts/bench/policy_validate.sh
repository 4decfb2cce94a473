#!/usr/bin/env bash
# Time `assay policy validate` on the example policies against a baseline
# taken in the same run (`assay --version`: process start-up only), so the
# ratio shows what validation itself costs on this machine.
#   scripts/bench/policy_validate.sh [RUNS]   (default 200; release build)
set -euo pipefail
runs="${1:-200}"
cd "$(dirname "$0")/../.."
bin=target/release/assay
[[ -x "$bin" ]] || cargo build --release --quiet

# Mean wall time of a command in microseconds over $runs runs.
mean_us() {
    local start end
    start=$(date +%s%N)
    for ((i = 0; i < runs; i++)); do
        "$@" >/dev/null 2>&1 || true
    done
    end=$(date +%s%N)
    echo $(((end - start) / runs / 1000))
}

# Warm the page cache once.
"$bin" policy validate policies/production-hardened.yaml >/dev/null

base=$(mean_us "$bin" --version)
echo "baseline  assay --version: ${base} us/run ($runs runs)"
for p in policies/production-hardened.yaml policies/egress-lockdown.yaml; do
    t=$(mean_us "$bin" policy validate "$p")
    ratio=$(awk -v t="$t" -v b="$base" 'BEGIN { printf "%.2f", t / b }')
    echo "policy validate $p: ${t} us/run, ${ratio}x baseline"
done
