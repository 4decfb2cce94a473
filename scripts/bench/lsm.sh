#!/usr/bin/env bash
# Cost of the BPF LSM file_open program, measured inside the verify VMs:
# open+close latency of files that match no rule, with 1,000 exact-file
# rules and 50 globs (every kernel form, anchored ones up to 8 levels deep,
# in a rule with an except list) loaded: repeated opens of a shallow and a
# 6-deep file (answered by the verdict cache after the first) for a process
# in the scope and one outside it, and first opens of 2,000 different 6-deep
# files in scope (each judged), each as a ratio against no program loaded,
# in the same boot (rounds alternate loaded / not loaded). Also the
# verifier's processed instruction count (0 before 5.16, which does not
# report it).
#
# The guest CPU is emulated (QEMU TCG): ratios are what this measures, not
# absolute times, and both carry the emulator's noise.
#
#   scripts/bench/lsm.sh [static-assay-binary]   (default: built with the suite)
#   VM_KERNELS=bookworm-6.1 scripts/bench/lsm.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# Without an argument verify.sh builds the static assay with its suite.
VM_BENCH=1 VM_KERNELS=${VM_KERNELS:-bookworm-6.1,bookworm-backports-6.12,bullseye-5.10} \
	"$root/scripts/vm/verify.sh" "$@" | grep -E ' BENCH |passed, '
