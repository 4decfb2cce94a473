#!/bin/busybox sh
# PID 1 of the verify VM: mounts what the suite needs, runs it, powers off.
# Every result is one line `ASSAY-CASE <name> PASS|FAIL|SKIP <detail>`; the
# host reads them from the serial console. `ASSAY-DONE` means the suite ended.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mkdir -p /sys/fs/cgroup
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
ip link set lo up
# The modules the host packed for this kernel (overlayfs).
for ko in /lib/modules/"$(uname -r)"/*.ko; do
	[ -f "$ko" ] || continue
	insmod "$ko" || echo "assay-guest: insmod $ko failed"
done

mode=lsm
grep -q 'assay.mode=nobpf' /proc/cmdline && mode=nobpf
lsms=$(cat /sys/kernel/security/lsm 2>/dev/null)
echo "assay-guest: kernel $(uname -r), active LSMs: $lsms, mode: $mode"

case "$lsms" in
*bpf*) have_bpf=1 ;;
*) have_bpf=0 ;;
esac
if [ "$mode" = lsm ]; then
	if [ $have_bpf = 1 ]; then
		echo "ASSAY-CASE guest/bpf-lsm-active PASS lsm=$lsms"
	else
		echo "ASSAY-CASE guest/bpf-lsm-active FAIL lsm=$lsms"
	fi
else
	if [ $have_bpf = 0 ]; then
		echo "ASSAY-CASE guest/bpf-lsm-absent PASS lsm=$lsms"
	else
		echo "ASSAY-CASE guest/bpf-lsm-absent FAIL lsm=$lsms"
	fi
fi

grep -q 'assay.bench=1' /proc/cmdline && export ASSAY_VM_BENCH=1
ASSAY_VM_SUITE=1 ASSAY_VM_MODE=$mode ASSAY_BIN=/bin/assay /bin/vm_lsm
rc=$?
[ $rc = 0 ] || echo "ASSAY-CASE guest/suite-exit FAIL vm_lsm exited $rc"
echo ASSAY-DONE
sync
poweroff -f
