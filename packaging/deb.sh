#!/usr/bin/env bash
# `make deb`: target/debian/assay_<version>_<arch>.deb from the release binary.
#
# The package is the tree packaging/install.sh makes (the same list as
# `make install`), staged under target/debian/root with Debian's paths, plus
# DEBIAN/ (control, conffiles, md5sums, maintainer scripts), built by
# dpkg-deb. Nothing beyond dpkg-dev and fakeroot-free `--root-owner-group`
# is needed: see README.md, "Installing from the package", for why this and
# not cargo-deb or a debhelper source package.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BIN=${ASSAY_BIN:-target/release/assay}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
changelog_version=$(sed -n '1s/^assay (\([^)]*\)).*/\1/p' packaging/changelog)
if [[ $version != "$changelog_version" ]]; then
	echo "deb: Cargo.toml says $version, packaging/changelog $changelog_version: add a changelog entry" >&2
	exit 1
fi
arch=$(dpkg --print-architecture)
out=target/debian
root=$out/root
deb=$out/assay_${version}_${arch}.deb
rm -rf "$root" "$deb"
mkdir -p "$root/DEBIAN"

ASSAY_BIN=$BIN DESTDIR=$root PREFIX=/usr UNITDIR=/lib/systemd/system \
	ZSHCOMPDIR=/usr/share/zsh/vendor-completions packaging/install.sh
# Debian ships binaries stripped (debug symbols belong in a -dbgsym package).
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/assay"
install -D -m 0644 packaging/deb/lintian-overrides "$root/usr/share/lintian/overrides/assay"

# Runtime dependencies of the binary, as dpkg-shlibdeps computes them, plus
# setcap for the postinst.
shlib=$(mktemp -d)
trap 'rm -rf "$shlib"' EXIT
mkdir -p "$shlib/debian"
printf 'Source: assay\n\nPackage: assay\nArchitecture: any\n' >"$shlib/debian/control"
abs_bin=$(realpath "$root/usr/bin/assay")
depends=$(cd "$shlib" && dpkg-shlibdeps -O "$abs_bin" | sed -n 's/^shlibs:Depends=//p')
[[ -n $depends ]] || {
	echo "deb: dpkg-shlibdeps found no dependencies for $abs_bin" >&2
	exit 1
}

installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: assay
Version: $version
Architecture: $arch
Maintainer: assay maintainers <maintainers@users.noreply.b-seed-8e2701ae.example>
Installed-Size: $installed_size
Depends: $depends, libcap2-bin
Section: admin
Priority: optional
Description: find, stop and confine the MCP tool servers that AI agents run
 assay discovers the Model Context Protocol servers configured or running
 on a machine, kills one with its whole process tree while capturing
 evidence, and confines them with BPF: cgroup socket hooks deny network
 destinations, BPF LSM programs deny file opens and protect the monitor,
 and a gate judges each tool call against a YAML policy.
 .
 The package ships the assay binary (with file capabilities so that
 ordinary users can confine their own MCP servers), man pages, shell
 completions, the JSON Schemas of its outputs, example policies, and the
 assay-monitor systemd units. "assay doctor" tells what this host can
 enforce.
CONTROL
echo /etc/assay/policy.yaml >"$root/DEBIAN/conffiles"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$root/DEBIAN/"
sed -i "s|@SETCAP@|$(sed -n 's/^CAPS := //p' Makefile)|" "$root/DEBIAN/postinst"
grep -q '@SETCAP@' "$root/DEBIAN/postinst" && {
	echo "deb: no CAPS in the Makefile" >&2
	exit 1
}
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
	xargs -0 md5sum >DEBIAN/md5sums)
chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control" "$root/DEBIAN/conffiles"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
