/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/*
 * What every assay BPF object has in common: the shared ring buffer and drop
 * counter (the loader makes every object reuse one of each), the event header
 * fill, and the dummy instances that put assay.h's enums into BTF, so the
 * skeleton exports their values to Rust.
 */
#ifndef ASSAY_COMMON_BPF_H
#define ASSAY_COMMON_BPF_H

#include "assay.h"
#include <bpf/bpf_core_read.h>

/* Never read: they make the enums part of the skeleton's generated types. */
const volatile enum assay_limit assay_limit_btf;
const volatile enum assay_rule_ref assay_rule_ref_btf;
const volatile enum assay_event_kind assay_event_kind_btf;
const volatile enum assay_action assay_action_btf;
const volatile enum assay_file_match assay_file_match_btf;
const volatile enum assay_name_kind assay_name_kind_btf;
const volatile enum assay_guard assay_guard_btf;
const volatile enum assay_mount_op assay_mount_op_btf;
const volatile struct tamper_event tamper_event_layout;

/* Set by userspace between open and load: the programs of this object may
 * call bpf_get_current_task (the kernel gives it to every program type for a
 * loader with CAP_PERFMON since 5.11, to LSM programs always). Zero: events
 * carry pid, tgid and comm but no uid, gid, parent or start times. */
const volatile __u8 task_identity;

/* Shared with every other assay object (the loader reuses one fd). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Ring buffer reservations that failed, per CPU: drops are never silent.
 * Added atomically: a program on a preemptible kernel may be interrupted by
 * another on the same CPU between the read and the write. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

static __always_inline void count_drop(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&dropped, &zero);

	if (n)
		__sync_fetch_and_add(n, 1);
}

/* Every field of the header, padding included (no stack bytes leak), but
 * the sender's: pid, tgid and comm stay zero. For programs that may not ask
 * who the current task is (cgroup_skb before Linux 6.0). */
static __always_inline void fill_hdr_unnamed(struct event_hdr *hdr, __u32 kind, __u32 rule_idx,
					     __u32 action, __u64 cgroup_id)
{
	__builtin_memset(hdr, 0, sizeof(*hdr));
	hdr->ts_ns = bpf_ktime_get_ns();
	hdr->cgroup_id = cgroup_id;
	hdr->kind = kind;
	hdr->rule_idx = rule_idx;
	hdr->action = action;
}

/*
 * Reads `*src` (a CO-RE relocated kernel field) into the event's `scratch`
 * and yields it: the event, not the stack, holds the intermediate pointers
 * (the file_open program has almost no stack left). A failed read leaves
 * zero.
 */
#define READ_VIA(scratch, src)                                                                     \
	({                                                                                         \
		(scratch) = 0;                                                                     \
		bpf_core_read(&(scratch), sizeof(*(src)), (src));                                  \
		(scratch);                                                                         \
	})

/* uid, gid, ppid and the start times of the current task's process and of
 * its parent, read from its task_struct. Nine reads, no stack. */
static __always_inline void read_identity(struct event_hdr *hdr)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct task_struct *p;
	const struct cred *c;

	c = (const struct cred *)READ_VIA(hdr->start_ns, &t->cred);
	if (c) {
		bpf_core_read(&hdr->uid, sizeof(hdr->uid), &c->uid.val);
		bpf_core_read(&hdr->gid, sizeof(hdr->gid), &c->gid.val);
	}
	p = (struct task_struct *)READ_VIA(hdr->start_ns, &t->group_leader);
	if (p)
		READ_VIA(hdr->start_ns, &p->start_boottime);
	else
		hdr->start_ns = 0;
	p = (struct task_struct *)READ_VIA(hdr->parent_start_ns, &t->real_parent);
	if (!p) {
		hdr->parent_start_ns = 0;
		return;
	}
	bpf_core_read(&hdr->ppid, sizeof(hdr->ppid), &p->tgid);
	p = (struct task_struct *)READ_VIA(hdr->parent_start_ns, &p->group_leader);
	if (p)
		READ_VIA(hdr->parent_start_ns, &p->start_boottime);
	else
		hdr->parent_start_ns = 0;
}

/* The current task sent it: pid, tgid, comm and, where the program may ask
 * for its task_struct, the rest of its identity. */
static __always_inline void name_sender(struct event_hdr *hdr)
{
	__u64 id = bpf_get_current_pid_tgid();

	hdr->pid = (__u32)id;
	hdr->tgid = id >> 32;
	bpf_get_current_comm(hdr->comm, sizeof(hdr->comm));
	if (task_identity)
		read_identity(hdr);
}

/* Every field of the header; the current task is the sender. */
static __always_inline void fill_hdr(struct event_hdr *hdr, __u32 kind, __u32 rule_idx,
				     __u32 action)
{
	fill_hdr_unnamed(hdr, kind, rule_idx, action, bpf_get_current_cgroup_id());
	name_sender(hdr);
}

/* A tamper event reserved with its body filled; the caller fills the header
 * and submits it. NULL (the drop counted) when the ring buffer is full. */
static __always_inline struct tamper_event *tamper_new(__u32 guard, __u64 a0, __u64 a1, __u64 a2)
{
	struct tamper_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);

	if (!ev) {
		count_drop();
		return NULL;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->guard = guard;
	ev->args[0] = a0;
	ev->args[1] = a1;
	ev->args[2] = a2;
	return ev;
}

/* A refused tamper attempt of the current task, for the event stream. */
static __always_inline void report_tamper(__u32 guard, __u64 a0, __u64 a1, __u64 a2)
{
	struct tamper_event *ev = tamper_new(guard, a0, a1, a2);

	if (!ev)
		return;
	fill_hdr(&ev->hdr, ASSAY_EV_TAMPER, ASSAY_NO_RULE, ASSAY_ACT_DENY);
	bpf_ringbuf_submit(ev, 0);
}

#endif /* ASSAY_COMMON_BPF_H */
