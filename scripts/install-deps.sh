#!/usr/bin/env bash
# Installs what assay's build and tests need from Debian/Ubuntu packages.
# Idempotent and silent when everything is already present.
#   scripts/install-deps.sh          build + host-test dependencies
#   scripts/install-deps.sh vm       also what `make verify` needs (QEMU, busybox)
#   scripts/install-deps.sh mcp      only the real MCP software the gate's end-to-end
#                                    tests use (also part of the default)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The tool-call gate's end-to-end tests talk to real MCP software: the Python
# SDK (client, and a FastMCP server) in a venv, the Node filesystem server
# under an npm prefix, both in .cache/ so nothing outside the tree changes.
# Versions are pinned so a test run does not change under us.
MCP_PY_VERSION=1.30.0
MCP_FS_VERSION=2026.8.31
install_mcp() {
	local venv=.cache/mcp/venv npm=.cache/mcp/npm
	if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c "import mcp, importlib.metadata as m; assert m.version('mcp') == '$MCP_PY_VERSION'" 2>/dev/null; then
		echo "install-deps: installing the MCP Python SDK $MCP_PY_VERSION into $venv" >&2
		python3 -m venv "$venv"
		"$venv/bin/pip" install -q --disable-pip-version-check "mcp==$MCP_PY_VERSION"
	fi
	if [[ ! -f $npm/node_modules/@modelcontextprotocol/server-filesystem/package.json ]] ||
		! grep -q "\"version\": \"$MCP_FS_VERSION\"" $npm/node_modules/@modelcontextprotocol/server-filesystem/package.json; then
		echo "install-deps: installing @modelcontextprotocol/server-filesystem $MCP_FS_VERSION into $npm" >&2
		mkdir -p "$npm"
		npm install -s --no-audit --no-fund --prefix "$npm" "@modelcontextprotocol/server-filesystem@$MCP_FS_VERSION" >/dev/null
	fi
}
if [[ "${1:-}" == mcp ]]; then
	install_mcp
	exit 0
fi

pkgs=(clang llvm libelf-dev zlib1g-dev pkg-config bpftool clang-format iproute2 make)
# /usr/bin/time: peak memory in scripts/bench/; setcap: `make install`.
pkgs+=(time libcap2-bin)
# The gate's end-to-end tests: a Python venv and npm (a Node that ships its
# own npm, as NodeSource's does, needs no Debian npm package).
pkgs+=(python3 python3-venv)
command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
# nss_wrapper: a user database beyond /etc/passwd (LDAP, SSSD) for tests.
pkgs+=(libnss-wrapper)
# The monitor's metrics and event outputs are tested against the real
# daemons, each started by its test on loopback or a temp socket: Prometheus
# (and promtool), rsyslogd, systemd-journald (run standalone in a private
# mount namespace, and journalctl; PID 1 need not be systemd).
pkgs+=(prometheus rsyslog systemd util-linux)
# `make deb` and its test (scripts/test-deb.sh): dpkg-deb, dpkg-shlibdeps
# and strip build the package; lintian checks it; systemd-analyze verifies
# and scores the units; man-db finds the man pages.
pkgs+=(dpkg-dev binutils lintian systemd man-db)
if [[ "${1:-}" == vm ]]; then
	pkgs+=(qemu-system-x86 busybox-static cpio zstd xz-utils jq debian-archive-keyring)
fi

# Microsoft's SARIF validator, run by tests/discover.rs on assay's SARIF.
# It is an npm package; node and npm come from Debian unless already there.
SARIF_MULTITOOL=@microsoft/sarif-multitool@5.7.0
if ! command -v npm >/dev/null 2>&1; then
	pkgs+=(nodejs npm)
fi

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing+=("$p")
	fi
done
need_multitool=0
command -v sarif-multitool >/dev/null 2>&1 || need_multitool=1
if [[ ${#missing[@]} -eq 0 && $need_multitool -eq 0 ]]; then
	install_mcp
	exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
	[[ ${#missing[@]} -gt 0 ]] && echo "install-deps: missing packages: ${missing[*]}" >&2
	[[ $need_multitool -eq 1 ]] && echo "install-deps: missing: sarif-multitool (npm install -g $SARIF_MULTITOOL)" >&2
	echo "install-deps: run as root" >&2
	exit 1
fi
if [[ ${#missing[@]} -gt 0 ]]; then
	echo "install-deps: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [[ $need_multitool -eq 1 ]]; then
	echo "install-deps: installing $SARIF_MULTITOOL (npm)" >&2
	# Newer npm skips install scripts unless allowed; the platform package's
	# only script makes its binary executable, which is redone below anyway.
	npm install -g --no-fund --no-audit --allow-scripts=@microsoft/sarif-multitool-linux \
		"$SARIF_MULTITOOL" >/dev/null
	bin=$(npm root -g)/@microsoft/sarif-multitool/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool
	[[ -f $bin ]] || bin=$(npm root -g)/@microsoft/sarif-multitool-linux/Sarif.Multitool
	[[ -f $bin ]] && chmod u+x "$bin"
	command -v sarif-multitool >/dev/null 2>&1 || {
		echo "install-deps: sarif-multitool is not on PATH after npm install" >&2
		exit 1
	}
fi
install_mcp
