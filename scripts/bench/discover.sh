#!/usr/bin/env bash
# Benchmark `assay discover --home` on
#   - a home with every client's config (~20 clients, 50 servers), and
#   - a synthetic home with 10,000 servers (4 clients x 2,500),
# against a baseline taken in the same run: `assay --version` (process start,
# nothing scanned). Prints median wall time, peak RSS and the ratio to the
# baseline for each case.
#   scripts/bench/discover.sh                 (uses target/release/assay)
#   ASSAY_BIN=path RUNS=50 scripts/bench/discover.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${ASSAY_BIN:-target/release/assay}
RUNS=${RUNS:-31}
[[ -x $BIN ]] || { echo "bench: $BIN not built (make build)" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "bench: /usr/bin/time missing (scripts/install-deps.sh installs it)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Home 1: the all-clients fixture (36 servers in the home; corp-proxy needs
# --system-root) plus 14 more Cursor servers = 50.
home50=$work/home50
cp -r tests/fixtures/discovery/home-all "$home50"
grep -rl '@HOME@' "$home50" | while read -r f; do sed -i "s#@HOME@#$home50#g" "$f"; done
{
	printf '{"mcpServers": {\n'
	printf '  "filesystem": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/home/u/docs"]},\n'
	printf '  "remote-insecure": {"url": "http://mcp.example.net:8080/sse"}'
	for i in $(seq 1 14); do
		printf ',\n  "extra-%d": {"command": "uvx", "args": ["mcp-server-extra-%d==1.0.%d"], "env": {"LOG_LEVEL": "info"}}' "$i" "$i" "$i"
	done
	printf '\n}}\n'
} >"$home50/.cursor/mcp.json"

# Home 2: 10,000 servers across four clients' files.
home10k=$work/home10k
mkdir -p "$home10k/.cursor" "$home10k/.codeium/windsurf" "$home10k/.gemini" "$home10k/.config/Claude"
gen() { # file prefix
	{
		printf '{"mcpServers": {\n'
		for i in $(seq 1 2500); do
			[[ $i -gt 1 ]] && printf ',\n'
			if ((i % 5 == 0)); then
				printf '  "%s-%d": {"url": "https://mcp%d.%s.example.com/mcp", "headers": {"Authorization": "Bearer ${env:T%d}"}}' "$2" "$i" "$i" "$2" "$i"
			else
				printf '  "%s-%d": {"command": "npx", "args": ["-y", "@acme/mcp-server-%s-%d@1.2.%d", "--root", "/srv/%d"], "env": {"API_KEY": "${env:K%d}"}}' "$2" "$i" "$2" "$i" "$i" "$i" "$i"
			fi
		done
		printf '\n}}\n'
	} >"$1"
}
gen "$home10k/.cursor/mcp.json" cur
gen "$home10k/.codeium/windsurf/mcp_config.json" wind
gen "$home10k/.gemini/settings.json" gem
gen "$home10k/.config/Claude/claude_desktop_config.json" cla

# measure NAME CMD...: RUNS runs; median wall ms and median peak RSS KiB.
measure() {
	local name=$1
	shift
	local walls=() rss=()
	"$@" >/dev/null # warm the page cache
	for _ in $(seq 1 "$RUNS"); do
		local t0 t1
		t0=$(date +%s%N)
		/usr/bin/time -f %M -o "$work/rss" "$@" >/dev/null
		t1=$(date +%s%N)
		walls+=("$(((t1 - t0) / 1000))")
		rss+=("$(cat "$work/rss")")
	done
	local mw mr
	mw=$(printf '%s\n' "${walls[@]}" | sort -n | sed -n "$(((RUNS + 1) / 2))p")
	mr=$(printf '%s\n' "${rss[@]}" | sort -n | sed -n "$(((RUNS + 1) / 2))p")
	echo "$name $mw $mr"
}

servers() { "$BIN" discover --home "$1" --format json | sed -n 's/^    "servers": \([0-9]*\),$/\1/p'; }
echo "assay discover benchmark: $RUNS runs each, $(nproc) CPUs, $($BIN --version)"
echo "servers: home50=$(servers "$home50"), home10k=$(servers "$home10k")"

base=$(measure baseline "$BIN" --version)
r50=$(measure home50 "$BIN" discover --home "$home50" --format json)
r50t=$(measure home50-table "$BIN" discover --home "$home50" --no-color)
r10k=$(measure home10k "$BIN" discover --home "$home10k" --format json)

base_us=$(echo "$base" | cut -d' ' -f2)
printf '%-14s %12s %12s %10s\n' case median_ms peak_rss_kib x_baseline
for line in "$base" "$r50" "$r50t" "$r10k"; do
	read -r n us kib <<<"$line"
	awk -v n="$n" -v us="$us" -v kib="$kib" -v b="$base_us" \
		'BEGIN { printf "%-14s %12.2f %12d %10.1f\n", n, us / 1000, kib, us / b }'
done
