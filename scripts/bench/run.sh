#!/usr/bin/env bash
# `make bench`: run every benchmark in this directory in turn.
set -euo pipefail
cd "$(dirname "$0")"
status=0
for b in *.sh; do
	[[ $b == run.sh ]] && continue
	echo "== $b"
	./"$b" || status=1
done
exit $status
