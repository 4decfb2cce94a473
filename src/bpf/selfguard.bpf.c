// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * Self-protection with the BPF LSM: what an in-scope task (root, with every
 * capability, in attach mode) would use to switch the monitor's enforcement
 * off or walk around it is refused with EPERM and a tamper event, whatever
 * the policy's rules say. Tasks outside the scope return at once.
 *
 * Each hook first keeps an earlier BPF LSM program's refusal (`ret`).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "common.bpf.h"
#include "scope.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define EPERM 1
#define AF_PACKET 17
#define FMODE_WRITE 0x2
#define S_IFMT 00170000
#define S_IFBLK 0060000
#define CGROUP_SUPER_MAGIC 0x27e0eb
#define CGROUP2_SUPER_MAGIC 0x63677270

/* The scope (see struct scope in assay.h). */
const volatile __u64 target_cgid;
const volatile __u32 target_level;
/* Guards on: bit (1 << enum assay_guard). Userspace turns the socket guard
 * on with network rules and the block device guard with file rules. */
const volatile __u32 guards;

static __always_inline int on(__u32 guard)
{
	return guards & (1u << guard);
}

static __always_inline int in_scope(void)
{
	return ancestor_cgroup_id(target_level) == target_cgid;
}

static __always_inline int task_in_scope(struct task_struct *t)
{
	return task_ancestor_cgroup_id(t, target_level) == target_cgid;
}

static __always_inline int refuse(__u32 guard, __u64 a0, __u64 a1, __u64 a2)
{
	report_tamper(guard, a0, a1, a2);
	return -EPERM;
}

static __always_inline int judge_bpf(int cmd, int ret)
{
	if (ret || !on(ASSAY_GUARD_BPF) || !in_scope())
		return ret;
	return refuse(ASSAY_GUARD_BPF, cmd, 0, 0);
}

/* bpf(): the hook gained a `kernel` argument in Linux 6.9; userspace loads
 * the variant that matches the running kernel. */
SEC("lsm/bpf")
int BPF_PROG(assay_bpf, int cmd, union bpf_attr *attr, unsigned int size, int ret)
{
	return judge_bpf(cmd, ret);
}

SEC("lsm/bpf")
int BPF_PROG(assay_bpf_kernel_arg, int cmd, union bpf_attr *attr, unsigned int size, bool kernel,
	     int ret)
{
	return judge_bpf(cmd, ret);
}

SEC("lsm/task_kill")
int BPF_PROG(assay_task_kill, struct task_struct *p, struct kernel_siginfo *info, int sig,
	     const struct cred *cred, int ret)
{
	/* Signal 0 only asks whether the task exists. */
	if (ret || !sig || !on(ASSAY_GUARD_SIGNAL) || !in_scope() || task_in_scope(p))
		return ret;
	return refuse(ASSAY_GUARD_SIGNAL, sig, BPF_CORE_READ(p, tgid), 0);
}

SEC("lsm/ptrace_access_check")
int BPF_PROG(assay_ptrace, struct task_struct *child, unsigned int mode, int ret)
{
	if (ret || !on(ASSAY_GUARD_PTRACE) || !in_scope() || task_in_scope(child))
		return ret;
	return refuse(ASSAY_GUARD_PTRACE, mode, BPF_CORE_READ(child, tgid), 0);
}

/* Writes to cgroup interface files (cgroup.procs, cgroup.threads,
 * cgroup.kill, subtree_control ...) and block devices. */
SEC("lsm/file_open")
int BPF_PROG(assay_guard_open, struct file *file, int ret)
{
	struct inode *inode;
	unsigned long magic;
	__u32 mode, fmode;

	if (ret || !in_scope())
		return ret;
	inode = BPF_CORE_READ(file, f_inode);
	fmode = BPF_CORE_READ(file, f_mode);
	if (on(ASSAY_GUARD_CGROUP_WRITE) && (fmode & FMODE_WRITE)) {
		magic = BPF_CORE_READ(inode, i_sb, s_magic);
		if (magic == CGROUP2_SUPER_MAGIC || magic == CGROUP_SUPER_MAGIC)
			return refuse(ASSAY_GUARD_CGROUP_WRITE, BPF_CORE_READ(inode, i_ino), 0, 0);
	}
	mode = BPF_CORE_READ(inode, i_mode);
	if (on(ASSAY_GUARD_BLOCK_DEVICE) && (mode & S_IFMT) == S_IFBLK) {
		__u32 rdev = BPF_CORE_READ(inode, i_rdev);

		return refuse(ASSAY_GUARD_BLOCK_DEVICE, rdev, BPF_CORE_READ(inode, i_ino), 0);
	}
	return 0;
}

static __always_inline int judge_mount(__u32 op, int ret)
{
	if (ret || !on(ASSAY_GUARD_MOUNT) || !in_scope())
		return ret;
	return refuse(ASSAY_GUARD_MOUNT, op, 0, 0);
}

SEC("lsm/sb_mount")
int BPF_PROG(assay_sb_mount, const char *dev_name, const struct path *path, const char *type,
	     unsigned long flags, void *data, int ret)
{
	return judge_mount(ASSAY_MOUNT_MOUNT, ret);
}

SEC("lsm/sb_umount")
int BPF_PROG(assay_sb_umount, struct vfsmount *mnt, int flags, int ret)
{
	return judge_mount(ASSAY_MOUNT_UMOUNT, ret);
}

SEC("lsm/move_mount")
int BPF_PROG(assay_move_mount, const struct path *from_path, const struct path *to_path, int ret)
{
	return judge_mount(ASSAY_MOUNT_MOVE, ret);
}

SEC("lsm/sb_pivotroot")
int BPF_PROG(assay_sb_pivotroot, const struct path *old_path, const struct path *new_path, int ret)
{
	return judge_mount(ASSAY_MOUNT_PIVOT_ROOT, ret);
}

/* A new superblock (mount(2) of a new file system, fsconfig's create): an
 * fsmount() descriptor can be read through without ever being attached. */
SEC("lsm/sb_kern_mount")
int BPF_PROG(assay_sb_kern_mount, const struct super_block *sb, int ret)
{
	return judge_mount(ASSAY_MOUNT_NEW_SUPERBLOCK, ret);
}

/* AF_PACKET sockets send frames past the IP stack and every cgroup hook.
 * (Raw inet sockets are refused by netguard's cgroup/sock_create on every
 * kernel; other families' SOCK_RAW, such as netlink, which glibc's resolver
 * uses, carry no traffic out.) */
SEC("lsm/socket_create")
int BPF_PROG(assay_socket_create, int family, int type, int protocol, int kern, int ret)
{
	if (ret || kern || family != AF_PACKET || !on(ASSAY_GUARD_PACKET_SOCKET) || !in_scope())
		return ret;
	return refuse(ASSAY_GUARD_PACKET_SOCKET, family, type, protocol);
}
