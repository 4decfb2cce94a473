#!/usr/bin/env bash
# `make verify`: boots real distribution kernels with the BPF LSM active in
# QEMU (software emulation, no KVM) and runs assay's kernel suite inside each.
#
#   scripts/vm/verify.sh [static-assay-binary]
#
# Without an argument, one cargo invocation builds the static suite binary and,
# with it, the static `assay` the end-to-end cases run (cargo builds a crate's
# binaries for its integration tests): one release build instead of two.
#
# Kernels come from Debian's archive through a PRIVATE apt configuration under
# .cache/vm/apt (own sources.list, lists, archives; the machine's Debian archive
# keyring): the host's apt state is never touched. Each unpacked kernel is
# cached under .cache/vm/kernels/<name>/, so a second run needs no network.
#
# The guest prints one line per case, `ASSAY-CASE <name> PASS|FAIL|SKIP <detail>`,
# and `ASSAY-DONE` at the end; this script turns them into per-case results and
# exits non-zero on any failure, or when a VM did not finish.
#
# Environment:
#   VM_KERNELS      which kernels to boot (default: all of KERNELS below)
#   VM_TIMEOUT      seconds per boot (default 300)
#   VM_TEST_BIN     a prebuilt static suite binary (default: built here)
#   VM_BENCH=1      also run the benchmark in each guest (scripts/bench/lsm.sh)
#   VM_QEMU         a qemu-system-x86_64 to use instead of the cached QEMU 10
#   VM_MIRROR       Debian mirror (default http://deb.debian.org/debian)
# Serial logs of each boot stay in .cache/vm/work/<boot>.log.txt.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache="$root/.cache/vm"
work="$cache/work"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
mirror=${VM_MIRROR:-http://deb.debian.org/debian}
timeout_s=${VM_TIMEOUT:-300}

# boot name | kernel (cache dir) | apt suite | lsm= | extra kernel args
KERNELS=(
	"bookworm-6.1|bookworm-6.1|bookworm|lockdown,capability,landlock,yama,bpf|"
	"bookworm-backports-6.12|bookworm-backports-6.12|bookworm-backports|lockdown,capability,landlock,yama,bpf|"
	"bullseye-5.10|bullseye-5.10|bullseye|lockdown,capability,yama,bpf|"
	# The same 6.1 kernel booted WITHOUT bpf in lsm=: enforcement must be refused.
	"bookworm-6.1-nobpf|bookworm-6.1|bookworm|lockdown,capability,landlock,yama|assay.mode=nobpf"
)

die() {
	echo "verify: $*" >&2
	exit 1
}

[[ $# -le 1 ]] || die "usage: $0 [static-assay-binary]"
assay_bin=${1:-}
[[ -z $assay_bin || -x $assay_bin ]] || die "$assay_bin: not an executable"
is_static() { (ldd "$1" 2>&1 || true) | grep -qE "not a dynamic executable|statically linked"; }
for tool in qemu-system-x86_64 busybox cpio apt-get dpkg-deb gzip jq; do
	command -v "$tool" >/dev/null || die "missing $tool (scripts/install-deps.sh vm)"
done
busybox_bin=$(command -v busybox)
is_static "$busybox_bin" ||
	die "$busybox_bin is not static (install busybox-static)"

apt_opts=()
apt_setup() {
	local a="$cache/apt" s
	mkdir -p "$a/lists/partial" "$a/archives/partial" "$a/etc/parts.d"
	: >"$a/status"
	{
		for s in bookworm bookworm-backports bullseye; do
			echo "deb [signed-by=$keyring] $mirror $s main"
		done
	} >"$a/etc/sources.list"
	apt_opts=(
		-o "Dir::Etc::sourcelist=$a/etc/sources.list"
		-o "Dir::Etc::sourceparts=$a/etc/parts.d"
		-o "Dir::Etc::preferencesparts=$a/etc/parts.d"
		-o "Dir::State::lists=$a/lists"
		-o "Dir::State::status=$a/status"
		-o "Dir::Cache=$a"
		-o "Dir::Cache::archives=$a/archives"
		-o "APT::Architecture=amd64"
		-o "Debug::NoLocking=1"
		-o "APT::Sandbox::User=root"
	)
}

apt_updated=0
# Unpacks the cloud kernel of one suite into .cache/vm/kernels/<name>/ unless
# it is already there, with the modules the cases load (overlayfs: a stacked
# filesystem judged by the file it really opens), uncompressed for busybox's
# insmod, and the release name the guest finds them by.
vm_modules=(fs/overlayfs/overlay)
fetch_kernel() {
	local name=$1 suite=$2 dest="$cache/kernels/$1" m
	if [[ -f $dest/vmlinuz && -f $dest/config && -f $dest/release ]]; then
		for m in "${vm_modules[@]}"; do
			[[ -f $dest/modules/${m##*/}.ko ]] || break
		done
		[[ -f $dest/modules/${m##*/}.ko ]] && return 0
	fi
	[[ -f $keyring ]] || die "missing $keyring (apt-get install debian-archive-keyring)"
	apt_setup
	if [[ $apt_updated -eq 0 ]]; then
		echo "verify: apt-get update (private configuration in $cache/apt)" >&2
		apt-get "${apt_opts[@]}" -qq update >&2 || die "apt-get update failed"
		apt_updated=1
	fi
	local dl="$cache/apt/download"
	rm -rf "$dl" && mkdir -p "$dl"
	# The metapackage's version in this suite names the versioned image package.
	local meta_version
	meta_version=$(apt-cache "${apt_opts[@]}" madison linux-image-cloud-amd64 |
		awk -F'|' -v s=" $suite/main " '!done && index($3, s) { gsub(/ /, "", $2); print $2; done = 1 }')
	[[ -n $meta_version ]] || return 1
	(cd "$dl" && apt-get "${apt_opts[@]}" -qq download "linux-image-cloud-amd64=$meta_version") >&2 ||
		return 1
	local image
	image=$(dpkg-deb -f "$dl"/linux-image-cloud-amd64_*.deb Depends |
		grep -oE 'linux-image-[^ ,]+-cloud-amd64' | sed -n 1p)
	[[ -n $image ]] || die "cannot tell the image package of linux-image-cloud-amd64/$suite"
	local image_version
	image_version=$(dpkg-deb -f "$dl"/linux-image-cloud-amd64_*.deb Depends | tr ',' '\n' |
		grep -F "$image (= " | sed 's/.*= //; s/).*//')
	(cd "$dl" && apt-get "${apt_opts[@]}" -qq download "$image=$image_version") >&2 || return 1
	local x="$dl/x"
	dpkg-deb -x "$dl/${image}"_*.deb "$x"
	mkdir -p "$dest.tmp"
	cp "$x"/boot/vmlinuz-* "$dest.tmp/vmlinuz"
	cp "$x"/boot/config-* "$dest.tmp/config"
	local release
	release=$(basename "$(dirname "$(ls -d "$x"/lib/modules/*/kernel)")")
	echo "$release" >"$dest.tmp/release"
	mkdir -p "$dest.tmp/modules"
	for m in "${vm_modules[@]}"; do
		local ko="$x/lib/modules/$release/kernel/$m.ko"
		if [[ -f $ko ]]; then
			cp "$ko" "$dest.tmp/modules/"
		elif [[ -f $ko.xz ]]; then
			xz -dc "$ko.xz" >"$dest.tmp/modules/${m##*/}.ko"
		else
			die "$name: the kernel package has no $m.ko"
		fi
	done
	echo "$image $(dpkg-deb -f "$dl/${image}"_*.deb Version)" >"$dest.tmp/package"
	rm -rf "$dest" "$dl" && mv "$dest.tmp" "$dest"
	echo "verify: cached $name: $(cat "$dest/package")" >&2
}

# QEMU 7.2 (bookworm) corrupts memory at random under TCG while 6.12 boots
# (oopses in kmem_cache_alloc, do_sync_core, static-call patching of LSM
# hooks): measured on this machine, 9 of 14 boots failed. QEMU 10.0 from
# bookworm-backports boots it reliably, so it is fetched through the same
# private apt configuration and run from the cache (it links against the
# libraries the distribution's qemu-system-x86 already pulled in).
fetch_qemu() {
	local dest="$cache/qemu" version
	[[ -x $dest/usr/bin/qemu-system-x86_64 ]] && return 0
	[[ -f $keyring ]] || die "missing $keyring (apt-get install debian-archive-keyring)"
	apt_setup
	if [[ $apt_updated -eq 0 ]]; then
		apt-get "${apt_opts[@]}" -qq update >&2 || die "apt-get update failed"
		apt_updated=1
	fi
	version=$(apt-cache "${apt_opts[@]}" madison qemu-system-x86 |
		awk -F'|' '!done && index($3, " bookworm-backports/main ") { gsub(/ /, "", $2); print $2; done = 1 }')
	[[ -n $version ]] || die "no qemu-system-x86 in bookworm-backports"
	local dl="$cache/apt/download"
	rm -rf "$dl" "$dest.tmp" && mkdir -p "$dl"
	(cd "$dl" && apt-get "${apt_opts[@]}" -qq download "qemu-system-x86=$version" \
		"qemu-system-data=$version" "qemu-system-common=$version") >&2 ||
		die "cannot download qemu-system-x86 $version"
	for deb in "$dl"/*.deb; do dpkg-deb -x "$deb" "$dest.tmp"; done
	local missing
	missing=$(ldd "$dest.tmp/usr/bin/qemu-system-x86_64" | grep 'not found' || true)
	[[ -z $missing ]] || die "QEMU $version needs libraries this machine lacks: $missing"
	rm -rf "$dest" "$dl" && mv "$dest.tmp" "$dest"
	echo "verify: cached QEMU $version" >&2
}

# The static suite binary (tests/vm_lsm.rs built for the guest) and, unless
# given, the static assay built along with it. Sets suite_bin and assay_bin.
build_suite() {
	suite_bin=${VM_TEST_BIN:-}
	[[ -n $suite_bin && -n $assay_bin ]] && return
	local triple json="$work/build.json"
	triple=$(rustc -vV | sed -n 's/^host: //p')
	mkdir -p "$work"
	(cd "$root" &&
		LIBBPF_SYS_LIBRARY_PATH=$(dirname "$(gcc -print-file-name=libelf.a)") \
			RUSTFLAGS="-C target-feature=+crt-static" cargo test --release --no-run \
			--features static --target "$triple" --test vm_lsm --message-format=json) >"$json"
	local artifact='select(.reason == "compiler-artifact" and .target.name == $n
		and any(.target.kind[]; . == $k)) | .executable // empty'
	[[ -n $suite_bin ]] || suite_bin=$(jq -r --arg n vm_lsm --arg k test "$artifact" "$json" | tail -1)
	[[ -n $assay_bin ]] || assay_bin=$(jq -r --arg n assay --arg k bin "$artifact" "$json" | tail -1)
}

make_initramfs() {
	local out=$1 suite_bin=$2 dir="$work/initramfs"
	rm -rf "$dir"
	mkdir -p "$dir"/{bin,sbin,proc,sys,dev,tmp,run,root,etc,usr/bin,usr/sbin}
	cp "$busybox_bin" "$dir/bin/busybox"
	cp "$assay_bin" "$dir/bin/assay"
	cp "$suite_bin" "$dir/bin/vm_lsm"
	cp "$here/guest-init.sh" "$dir/init"
	# Each booted kernel's modules, under the release `uname -r` names.
	local k name kernel _
	for k in "${selected[@]}"; do
		IFS='|' read -r name kernel _ <<<"$k"
		local mdir="$dir/lib/modules/$(cat "$cache/kernels/$kernel/release")"
		mkdir -p "$mdir"
		cp "$cache/kernels/$kernel/modules/"*.ko "$mdir/"
	done
	chmod 0755 "$dir/init" "$dir/bin/"*
	(cd "$dir" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$out"
}

mkdir -p "$cache/kernels" "$work"
selected=()
for k in "${KERNELS[@]}"; do
	IFS='|' read -r name kernel suite lsm extra <<<"$k"
	if [[ -n ${VM_KERNELS:-} && ",$VM_KERNELS," != *",$name,"* ]]; then
		continue
	fi
	if ! fetch_kernel "$kernel" "$suite"; then
		# bullseye's 5.10 is a bonus: the product promises 5.8+, but the
		# suite may leave the archive. The two required kernels must exist.
		[[ $suite == bullseye ]] || die "cannot fetch the $suite cloud kernel"
		echo "verify: SKIP $name: kernel not obtainable from $mirror" >&2
		continue
	fi
	grep -q '^CONFIG_BPF_LSM=y' "$cache/kernels/$kernel/config" ||
		die "$name: kernel lacks CONFIG_BPF_LSM=y"
	selected+=("$k")
done
[[ ${#selected[@]} -gt 0 ]] || die "no kernel selected (VM_KERNELS=${VM_KERNELS:-})"
if [[ -n ${VM_QEMU:-} ]]; then
	qemu=(env "$VM_QEMU")
else
	fetch_qemu
	qemu=(env "QEMU_MODULE_DIR=$cache/qemu/usr/lib/x86_64-linux-gnu/qemu"
		"$cache/qemu/usr/bin/qemu-system-x86_64" -L "$cache/qemu/usr/share/qemu" -L /usr/share/seabios)
fi

echo "verify: building the static suite binary (tests/vm_lsm.rs)" >&2
build_suite
[[ -n $suite_bin && -x $suite_bin ]] || die "could not build the vm_lsm suite binary"
[[ -n $assay_bin && -x $assay_bin ]] || die "could not build the static assay"
is_static "$assay_bin" || die "$assay_bin is not static (build it with \`make static\`)"
echo "verify: assay binary $assay_bin" >&2
initrd="$work/initramfs.cpio.gz"
make_initramfs "$initrd" "$suite_bin"

passed=0
# Benchmarks count guest instructions instead of wall time: one vCPU whose
# clock advances with each instruction (icount) makes the ratios repeat
# within a fraction of a percent, where TCG wall time swings by +-30%.
if [[ -n ${VM_BENCH:-} ]]; then
	accel=(-accel tcg,thread=single -icount shift=4 -smp 1)
else
	accel=(-accel tcg -smp 2)
fi
failed=0
unfinished=()
start_all=$SECONDS
for k in "${selected[@]}"; do
	IFS='|' read -r name kernel suite lsm extra <<<"$k"
	kdir="$cache/kernels/$kernel"
	log="$work/$name.log"
	echo "verify: booting $name ($(cut -d' ' -f1 "$kdir/package"), lsm=$lsm)" >&2
	t0=$SECONDS
	set +e
	timeout --foreground -k 5 "$timeout_s" "${qemu[@]}" \
		"${accel[@]}" -cpu max -m 1024 -nographic -no-reboot \
		-kernel "$kdir/vmlinuz" -initrd "$initrd" \
		-append "console=ttyS0 quiet loglevel=3 panic=-1 lsm=$lsm $extra${VM_BENCH:+ assay.bench=1}" \
		</dev/null >"$log" 2>&1
	rc=$?
	set -e
	tr -d '\r' <"$log" >"$log.txt"
	while read -r _ case verdict detail; do
		case $verdict in
		PASS) passed=$((passed + 1)) ;;
		# A skipped case is an untested one: allowed on a laptop, a failure in CI.
		SKIP) [[ -n ${CI:-} ]] && failed=$((failed + 1)) ;;
		*) failed=$((failed + 1)) ;;
		esac
		printf '%-26s %-4s %s %s\n' "$name" "$verdict" "$case" "$detail"
	done < <(grep -a '^ASSAY-CASE ' "$log.txt")
	grep -a '^ASSAY-BENCH \|^ASSAY-INFO ' "$log.txt" | while read -r tag metric value; do
		printf '%-26s %-5s %s %s\n' "$name" "${tag#ASSAY-}" "$metric" "$value"
	done || true
	if ! grep -aq '^ASSAY-DONE' "$log.txt"; then
		unfinished+=("$name")
		echo "verify: $name did not finish (qemu exit $rc after $((SECONDS - t0))s); last lines of $log.txt:" >&2
		tail -n 25 "$log.txt" >&2
	else
		echo "verify: $name finished in $((SECONDS - t0))s" >&2
	fi
done

echo "verify: ${#selected[@]} boots in $((SECONDS - start_all))s"
for u in "${unfinished[@]}"; do
	echo "verify: UNFINISHED $u"
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 && ${#unfinished[@]} -eq 0 ]]
