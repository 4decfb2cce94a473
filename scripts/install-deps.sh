#!/usr/bin/env bash
# Installs what assay's build and tests need from Debian/Ubuntu packages.
# Idempotent and silent when everything is already present.
#   scripts/install-deps.sh          build + host-test dependencies
#   scripts/install-deps.sh vm       also what `make verify` needs (QEMU, busybox)
set -euo pipefail

pkgs=(clang llvm libelf-dev zlib1g-dev pkg-config bpftool clang-format iproute2 make)
# /usr/bin/time: peak memory in scripts/bench/; setcap: `make install`.
pkgs+=(time libcap2-bin)
if [[ "${1:-}" == vm ]]; then
	pkgs+=(qemu-system-x86 busybox-static cpio zstd xz-utils jq debian-archive-keyring)
fi

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing+=("$p")
	fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
	echo "install-deps: missing packages: ${missing[*]}" >&2
	echo "install-deps: run as root, or: sudo apt-get install ${missing[*]}" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
