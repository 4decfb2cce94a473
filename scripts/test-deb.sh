#!/usr/bin/env bash
# `make test-deb`: the Debian package as a user gets it. Lints it, installs
# it with dpkg, checks every installed piece from the installed files (never
# the build tree's binary), runs the installed binary with exactly the
# unit's capabilities, then purges it and checks nothing is left. The
# machine ends as it started: the package is purged on any exit (trap).
#
#   scripts/test-deb.sh target/debian/assay_<version>_<arch>.deb
#
# Needs root (dpkg). Without root it says so and exits 0, unless CI=true,
# where every check must run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

deb=${1:?usage: scripts/test-deb.sh PACKAGE.deb}
[[ -f $deb ]] || {
	echo "test-deb: $deb does not exist (make deb)" >&2
	exit 1
}
if [[ $(id -u) -ne 0 ]]; then
	if [[ ${CI:-} == true ]]; then
		echo "test-deb: FAILED: must run as root in CI (dpkg -i)" >&2
		exit 1
	fi
	echo "test-deb: not root: package tests not run (they need dpkg -i)" >&2
	exit 0
fi

passed=0
failed=0
ok() {
	echo "ok   $*"
	passed=$((passed + 1))
}
bad() {
	echo "FAIL $*" >&2
	failed=$((failed + 1))
}
check() { # check "what" command...
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}

# Refuse to touch an assay the machine already has: the purge at the end
# would take its configuration and state with it.
for p in /etc/assay /var/lib/assay /var/log/assay /usr/bin/assay; do
	if [[ -e $p ]]; then
		echo "test-deb: $p already exists: remove the installed assay first (dpkg --purge assay)" >&2
		exit 1
	fi
done
if dpkg-query -W -f='${Status}' assay 2>/dev/null | grep -qv "not-installed"; then
	echo "test-deb: the assay package is installed: dpkg --purge assay first" >&2
	exit 1
fi

work=$(mktemp -d)
cgroup=
monitor_pid=
cleanup() {
	local rc=$?
	[[ -n $monitor_pid ]] && kill -TERM "$monitor_pid" 2>/dev/null && wait "$monitor_pid" 2>/dev/null
	if [[ -n $cgroup && -d $cgroup ]]; then
		[[ -f $cgroup/cgroup.kill ]] && echo 1 >"$cgroup/cgroup.kill" 2>/dev/null
		for _ in $(seq 50); do rmdir "$cgroup" 2>/dev/null && break; sleep 0.1; done
	fi
	if dpkg-query -W -f='${Status}' assay 2>/dev/null | grep -qv "not-installed"; then
		dpkg --purge assay >/dev/null 2>&1 || echo "test-deb: could not purge assay" >&2
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT

version=$(dpkg-deb -f "$deb" Version)
arch=$(dpkg-deb -f "$deb" Architecture)
[[ $(basename "$deb") == "assay_${version}_${arch}.deb" ]] &&
	ok "name assay_${version}_${arch}.deb ($(du -k "$deb" | cut -f1) KiB)" ||
	bad "package file name $(basename "$deb") is not assay_${version}_${arch}.deb"

# --- lintian: no errors; the warnings are printed (README.md says which remain and why).
if lintian --fail-on error --display-info --tag-display-limit 0 "$deb" >"$work/lintian" 2>&1; then
	ok "lintian: no errors ($(grep -c '^W:' "$work/lintian" || true) warnings, $(grep -c '^I:' "$work/lintian" || true) info)"
else
	bad "lintian reports errors"
fi
sed 's/^/  lintian: /' "$work/lintian"

# What the package holds and the machine does not have yet (shared
# directories such as /usr/bin are there before and after): the purge must
# remove all of it.
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|; s|/$||' | grep -v '^$' |
	while read -r path; do [[ -e $path || -L $path ]] || echo "$path"; done >"$work/new-paths"

# --- install
if ! dpkg -i "$deb" >"$work/dpkg-i" 2>&1; then
	cat "$work/dpkg-i" >&2
	echo "test-deb: FAILED: dpkg -i" >&2
	exit 1
fi
ok "dpkg -i"
assay=/usr/bin/assay

# The binary is the package's: owned by it, byte for byte what the
# package holds (so not a cargo build of this machine), and its version.
check "/usr/bin/assay belongs to the package" \
	bash -c '[[ $(dpkg -S /usr/bin/assay) == "assay: /usr/bin/assay" ]]'
dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./usr/bin/assay >"$work/packaged-assay"
check "/usr/bin/assay is the packaged binary" cmp -s "$work/packaged-assay" "$assay"
"$assay" --version >"$work/version"
check "assay --version names the package version, revision, features, libbpf" \
	bash -c "head -1 '$work/version' | grep -qx 'assay $version' &&
		grep -qE '^revision: [0-9a-f]{7,}(-dirty)?\$|^revision: unknown\$' '$work/version' &&
		grep -qx 'features: monitor' '$work/version' && grep -qE '^libbpf: v1\.' '$work/version'"
sed 's/^/  /' "$work/version"

# File capabilities: permitted only, the Makefile's list.
caps=$(sed -n 's/^CAPS := //p' Makefile)
# getcap lists them in its own order: compare as sets.
normalize_caps() { sed 's/^[^ ]* //; s/=p$//' | tr ',' '\n' | sort | tr '\n' ' '; }
got=$(getcap "$assay")
check "file capabilities $caps (got: ${got#"$assay "})" \
	test "$(normalize_caps <<<"$got")=p" = "$(normalize_caps <<<"x $caps")=p" -a "${got##*=}" = p

# Man pages, for the command and every subcommand.
check "man -w assay assay-monitor assay-doctor" \
	bash -c 'for p in assay assay-monitor assay-doctor assay-discover assay-kill assay-policy assay-completions; do
		f=$(MANPATH= man -w "$p") && [[ $f == /usr/share/man/man1/$p.1.gz ]] || exit 1; done'
check "man renders assay-doctor(1)" bash -c 'MANPATH= MANWIDTH=80 man -P cat assay-doctor 2>/dev/null | grep -q -- "--policy"'

# Completions.
check "bash completion registers assay" \
	bash -c 'source /usr/share/bash-completion/completions/assay && complete -p assay | grep -q "assay$"'
check "bash completion completes subcommands" \
	bash -c 'source /usr/share/bash-completion/completions/assay
		COMP_WORDS=(assay do); COMP_CWORD=1; COMP_LINE="assay do"; COMP_POINT=${#COMP_LINE}
		_assay assay do assay; [[ " ${COMPREPLY[*]} " == *" doctor "* ]]'
check "zsh and fish completions are assay's" \
	bash -c 'head -1 /usr/share/zsh/vendor-completions/_assay | grep -qx "#compdef assay" &&
		grep -q "^complete -c assay " /usr/share/fish/vendor_completions.d/assay.fish'
check "installed completions are what assay completions prints" \
	bash -c "cmp -s <($assay completions bash) /usr/share/bash-completion/completions/assay"

# The conffile and the shipped defaults.
check "/etc/assay/policy.yaml is a conffile" \
	bash -c 'dpkg-query -W -f="\${Conffiles}" assay | grep -q "^ /etc/assay/policy.yaml "'
check "the default policy validates" "$assay" policy validate /etc/assay/policy.yaml
check "the example policies and schemas are installed" \
	bash -c 'ls /usr/share/assay/policies/*.yaml >/dev/null && [[ -f /usr/share/assay/schemas/assay.doctor.v1.json ]]'
check "copyright and changelog" \
	bash -c '[[ -s /usr/share/doc/assay/copyright ]] && zcat /usr/share/doc/assay/changelog.gz | head -1 | grep -q "^assay ('"$version"')"'

# The units: systemd-analyze accepts them, and their hardening scores.
cp /lib/systemd/system/assay-monitor@.service "$work/assay-monitor@mcp.slice.service"
check "systemd-analyze verify accepts the units" \
	bash -c "out=\$(systemd-analyze verify /lib/systemd/system/assay-monitor.service '$work/assay-monitor@mcp.slice.service' 2>&1) && [[ -z \$out ]] || { echo \"\$out\" >&2; false; }"
for unit in /lib/systemd/system/assay-monitor.service "$work/assay-monitor@mcp.slice.service"; do
	score=$(systemd-analyze security --offline=true "$unit" 2>/dev/null |
		sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')
	check "systemd-analyze security $(basename "$unit"): ${score:-none} <= 3.0" \
		awk -v s="${score:-99}" 'BEGIN { exit !(s <= 3.0) }'
done

# doctor: JSON that validates against the installed schema, as root and as
# a user (through the file capabilities), and an exit code that agrees
# with what it says.
py=.cache/mcp/venv/bin/python
validate() { # validate FILE
	"$py" - "$1" <<'PY'
import json, sys
import jsonschema
schema = json.load(open("/usr/share/assay/schemas/assay.doctor.v1.json"))
doc = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
jsonschema.Draft202012Validator(schema).validate(doc)
PY
}
[[ -x $py ]] || {
	echo "test-deb: $py missing (scripts/install-deps.sh mcp installs it with jsonschema)" >&2
	exit 1
}
set +e
"$assay" doctor --policy /etc/assay/policy.yaml --format json >"$work/doctor.json"
rc=$?
su nobody -s /bin/sh -c "$assay doctor --policy /etc/assay/policy.yaml --format json" >"$work/doctor-user.json"
rc_user=$?
set -e
check "assay doctor --format json validates (root)" validate "$work/doctor.json"
check "assay doctor --format json validates (user)" validate "$work/doctor-user.json"
ready() { "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(int(not d["policy"]["ready"]) * 40)' "$1"; }
check "doctor's exit code ($rc) agrees with its report" bash -c "[[ $rc == $(ready "$work/doctor.json") ]]"
check "doctor's exit code as a user ($rc_user) agrees with its report" \
	bash -c "[[ $rc_user == $(ready "$work/doctor-user.json") ]]"
check "doctor names the package, the units and the file capabilities" \
	"$py" -c 'import json,sys
d=json.load(open(sys.argv[1])); i=d["installed"]
assert i["package"] == sys.argv[2], i
import os
real = lambda p: os.path.realpath(p)
assert sorted(real(u["path"]) for u in i["units"]) == [real("/lib/systemd/system/assay-monitor.service"), real("/lib/systemd/system/assay-monitor@.service")], i
assert i["file_capabilities"]["complete"], i
assert d["paths"]["config_exists"] and d["paths"]["schemas"] == "/usr/share/assay/schemas", d["paths"]
u=json.load(open(sys.argv[3]))
assert u["privileges"]["mode"] == "file_capabilities", u["privileges"]' \
	"$work/doctor.json" "$version" "$work/doctor-user.json"

# The unit's capabilities are exactly what it needs: the installed binary,
# as root with exactly the unit's CapabilityBoundingSet and in a network
# namespace of its own (PrivateNetwork=yes), enforces the default policy
# (its kill made graceful, so that a SIGTERM must reach the server) on a
# cgroup in which a "server" of user nobody reaches for a reverse-shell
# port: it is denied, stopped by SIGTERM, and the incident holds its
# evidence. Without CAP_KILL the SIGTERM is refused; without CAP_SYS_PTRACE
# and CAP_DAC_READ_SEARCH the evidence is.
unit_caps=$(sed -n 's/^CapabilityBoundingSet=//p' /lib/systemd/system/assay-monitor.service)
setpriv_caps() { # setpriv_caps "CAP_A CAP_B": -all,+a,+b
	local out=-all c
	for c in $1; do out+=",+$(tr 'A-Z' 'a-z' <<<"${c#CAP_}")"; done
	echo "$out"
}
# monitor_kills CAPS NAME: runs the scenario, leaves the victim's exit
# status in $work/NAME.status and the incident under $work/NAME/.
monitor_kills() {
	local caps=$1 name=$2 mount
	mount=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["kernel"]["cgroup2"])' "$work/doctor.json")
	cgroup=$mount/assay-test-deb.$$
	mkdir "$cgroup"
	sed -e "s|/var/lib/assay/incidents|$work/$name|" -e 's/mode: immediate/mode: graceful/' \
		/etc/assay/policy.yaml >"$work/$name.yaml"
	unshare -n setpriv --bounding-set="$(setpriv_caps "$caps")" -- "$assay" monitor \
		--policy "$work/$name.yaml" --cgroup "$cgroup" --events "$work/$name.jsonl" 2>"$work/$name.err" &
	monitor_pid=$!
	for _ in $(seq 100); do
		grep -q "enforcing" "$work/$name.err" 2>/dev/null && break
		kill -0 "$monitor_pid" 2>/dev/null || break
		sleep 0.1
	done
	set +e
	{ timeout 20 bash -c "echo \$\$ >'$cgroup/cgroup.procs'; exec setpriv --reuid=65534 --regid=65534 --clear-groups \
		bash -c 'echo x >/dev/tcp/127.0.0.1/4444; sleep 15'"; } 2>/dev/null
	echo $? >"$work/$name.status"
	set -e
	for _ in $(seq 50); do
		ls "$work/$name"/*/incident.json >/dev/null 2>&1 && break
		sleep 0.1
	done
	kill -TERM "$monitor_pid"
	wait "$monitor_pid" && echo 0 >"$work/$name.monitor" || echo $? >"$work/$name.monitor"
	monitor_pid=
	rmdir "$cgroup"
	cgroup=
}
# incident NAME PYTHON-ASSERTION: the assertion holds of the incident's
# first process `p` (and the document `d`).
incident() {
	"$py" -c 'import glob, json, sys
d = json.load(open(glob.glob(sys.argv[1] + "/*/incident.json")[0]))
p = d["processes"][0]
assert eval(sys.argv[2]), (sys.argv[2], p)' "$work/$1" "$2"
}
net_ok=$("$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); print([a for a in d["can_enforce"] if a["name"]=="net_connect"][0]["available"])' "$work/doctor.json")
if [[ $net_ok != True ]]; then
	if [[ ${CI:-} == true ]]; then
		bad "the unit's capabilities: doctor says this host cannot enforce network rules"
	else
		echo "skip the unit's capabilities: doctor says this host cannot enforce network rules"
	fi
else
	monitor_kills "$unit_caps" unit
	check "the monitor enforces with only $unit_caps" grep -q "enforcing 2 network rule" "$work/unit.err"
	check "trigger_kill stopped another user's server with SIGTERM (status $(cat "$work/unit.status") = 143)" \
		test "$(cat "$work/unit.status")" = 143
	check "the incident: SIGTERM delivered, evidence captured" \
		incident unit 'd["all_gone"] and p["signals"][0]["signal"] == "SIGTERM" and p["signals"][0]["result"] == "delivered" and p.get("capture_error") is None'
	check "the monitor stops cleanly on SIGTERM" test "$(cat "$work/unit.monitor")" = 0

	monitor_kills "${unit_caps/CAP_KILL/}" nokill
	check "without CAP_KILL the SIGTERM is refused" \
		incident nokill 'p["signals"][0]["signal"] == "SIGTERM" and p["signals"][0]["result"] == "not_permitted"'
	monitor_kills "$(sed 's/CAP_SYS_PTRACE//; s/CAP_DAC_READ_SEARCH//' <<<"$unit_caps")" noevidence
	check "without CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH the evidence is refused" \
		incident noevidence 'p.get("capture_error") and "environ" in p["capture_error"]'
fi

# --- purge: nothing of the package is left.
dpkg --purge assay >"$work/purge" 2>&1 && ok "dpkg --purge" || {
	cat "$work/purge" >&2
	bad "dpkg --purge"
}
left=()
while read -r path; do
	[[ -e $path || -L $path ]] && left+=("$path")
done <"$work/new-paths"
for p in /etc/assay /var/lib/assay /var/log/assay; do
	[[ -e $p ]] && left+=("$p")
done
check "nothing is left after the purge${left:+: ${left[*]}}" test ${#left[@]} -eq 0
check "dpkg knows nothing of assay" bash -c '! dpkg-query -W -f="\${Status}" assay 2>/dev/null | grep -qv "not-installed"'

echo "test-deb: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
