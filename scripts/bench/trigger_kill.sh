#!/usr/bin/env bash
# trigger_kill latency on this machine's real CPU (root: BPF, cgroups;
# loopback only). A network rule is used because the host kernel runs cgroup
# hooks but not BPF LSM programs; after the event the path is the same for a
# file rule (ring buffer -> consumer -> kill switch with capture -> kill
# event). Reported per run: the triggering event's kernel timestamp to the
# `kill` event, which is written once every process of the wrapped server is
# gone. Baseline in the same run: `assay kill --mode immediate` on one
# sleeping process (capture included), timed by this script.
# Env: RUNS (default 15).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
if [[ $(id -u) -ne 0 ]]; then
	echo "trigger_kill.sh: needs root (BPF, cgroups)" >&2
	exit 1
fi
cargo build --release --quiet --bin assay
bin=$PWD/target/release/assay
runs=${RUNS:-15}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
port=47$((RANDOM % 900 + 100))
cat >"$work/p.yaml" <<POLICY
version: "2.0"
kill_switch:
  enabled: true
  mode: immediate
  output_dir: $work/incidents
runtime_monitor:
  enabled: true
  rules:
    - id: exfil
      type: net_connect
      match: {ports: [$port]}
      severity: critical
      action: trigger_kill
POLICY
# The offender: a server with a child, whose child connects to the port.
offender="sleep 30 & python3 -c 'import socket,time
try: socket.create_connection((\"127.0.0.1\", $port), 1)
except OSError: pass
time.sleep(30)'"
for i in $(seq "$runs"); do
	rm -f "$work/ev.jsonl"
	code=0
	"$bin" monitor --policy "$work/p.yaml" --events "$work/ev.jsonl" -- \
		/bin/sh -c "$offender" </dev/null >/dev/null 2>&1 || code=$?
	[[ $code -eq 137 ]] || { echo "run $i: monitor exited $code, expected 137" >&2; exit 1; }
	python3 - "$work/ev.jsonl" >>"$work/latency" <<'PY'
import json, sys, datetime
def ns(t):
    day, frac = t.rstrip("Z").split(".")
    s = datetime.datetime.fromisoformat(day).replace(tzinfo=datetime.timezone.utc).timestamp()
    return int(s) * 10**9 + int(frac.ljust(9, "0")[:9])
evs = [json.loads(l) for l in open(sys.argv[1])]
net = next(e for e in evs if e["kind"] == "net_connect" and e["action"] == "trigger_kill")
kill = next(e for e in evs if e["kind"] == "kill")
assert kill["all_gone"], kill
print((ns(kill["time"]) - ns(net["time"])) / 1e6)
PY
	# In a subshell with stderr closed: bash reports the killed job there.
	(
		sleep 30 &
		victim=$!
		t0=$(date +%s%N)
		"$bin" kill --pid "$victim" --mode immediate --output "$work/incidents" >/dev/null
		t1=$(date +%s%N)
		wait "$victim" || true
		awk -v us="$(((t1 - t0) / 1000))" 'BEGIN { print us / 1000 }' >>"$work/baseline"
	) 2>/dev/null
done
python3 - "$work/latency" "$work/baseline" <<'PY'
import statistics, sys
lat = sorted(float(x) for x in open(sys.argv[1]))
base = sorted(float(x) for x in open(sys.argv[2]))
m, b = statistics.median(lat), statistics.median(base)
print(f"trigger_kill, event -> every process gone ({len(lat)} runs): "
      f"median {m:.1f} ms, min {lat[0]:.1f}, max {lat[-1]:.1f}")
print(f"baseline, assay kill --mode immediate on one process (whole command): "
      f"median {b:.1f} ms")
print(f"ratio: {m / b:.2f}x the baseline; target 100 ms: "
      f"{'met' if lat[-1] < 100 else 'NOT met'} by every run")
PY
