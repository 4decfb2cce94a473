#!/usr/bin/env bash
# Runs every benchmark script next to this one (scripts/bench/*.sh), in name
# order, and fails if any of them fails. `make bench` calls this.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
status=0
for script in "$here"/*.sh; do
	[[ "$(basename "$script")" == "run.sh" ]] && continue
	echo "== $(basename "$script")"
	if ! "$script"; then
		echo "FAILED: $(basename "$script")" >&2
		status=1
	fi
done
exit "$status"
