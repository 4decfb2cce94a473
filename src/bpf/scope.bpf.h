/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/*
 * The scope for programs on global (LSM) hooks: is a task's cgroup at
 * `level` below the cgroup2 root the scope's cgroup? Include after vmlinux.h,
 * bpf_helpers.h and bpf_core_read.h.
 */
#ifndef ASSAY_SCOPE_BPF_H
#define ASSAY_SCOPE_BPF_H

/* struct cgroup before Linux 6.1 kept its ancestors' ids in an array. */
struct cgroup___old {
	int level;
	__u64 ancestor_ids[];
} __attribute__((preserve_access_index));

/*
 * The id of the current task's cgroup at `level`. LSM programs may call
 * bpf_get_current_ancestor_cgroup_id only from Linux 5.14; kernels older than
 * 6.1 have `ancestor_ids`, read directly. The relocated branch is constant, so
 * each kernel's verifier only sees one of the two paths.
 */
static __always_inline __u64 ancestor_cgroup_id(__u32 level)
{
	if (bpf_core_field_exists(struct cgroup___old, ancestor_ids)) {
		struct task_struct *task = (void *)bpf_get_current_task();
		struct cgroup___old *cg = (void *)BPF_CORE_READ(task, cgroups, dfl_cgrp);
		__u64 id = 0;

		if (level > (__u32)BPF_CORE_READ(cg, level))
			return 0;
		bpf_core_read(&id, sizeof(id), &cg->ancestor_ids[level]);
		return id;
	}
	return bpf_get_current_ancestor_cgroup_id(level);
}

/* struct cgroup from Linux 6.1: its ancestors themselves. */
struct cgroup___new {
	int level;
	struct cgroup *ancestors[];
} __attribute__((preserve_access_index));

/* The id of `task`'s cgroup at `level` (any task, not only the current). */
static __always_inline __u64 task_ancestor_cgroup_id(struct task_struct *task, __u32 level)
{
	struct cgroup *cg = BPF_CORE_READ(task, cgroups, dfl_cgrp);
	struct cgroup *anc = NULL;
	__u64 id = 0;

	if (!cg || level > (__u32)BPF_CORE_READ(cg, level))
		return 0;
	if (bpf_core_field_exists(struct cgroup___old, ancestor_ids)) {
		bpf_core_read(&id, sizeof(id), &((struct cgroup___old *)cg)->ancestor_ids[level]);
		return id;
	}
	bpf_core_read(&anc, sizeof(anc), &((struct cgroup___new *)cg)->ancestors[level]);
	return anc ? BPF_CORE_READ(anc, kn, id) : 0;
}

#endif /* ASSAY_SCOPE_BPF_H */
