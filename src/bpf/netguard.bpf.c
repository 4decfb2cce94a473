// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * Egress enforcement for one cgroup subtree. The programs are attached to the
 * scope's cgroup, so the kernel only runs them for tasks inside it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "assay.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Makes the event layout part of the skeleton's generated types for Rust. */
const volatile struct net_event net_event_layout;

#define SOCK_ALLOW 1
#define SOCK_DENY 0

/* Destination port (host order) -> rule that blocks it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, struct port_rule);
} blocked_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Ring buffer reservations that failed, per CPU: drops are never silent. */
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
		*n += 1;
}

SEC("cgroup/connect4")
int assay_connect4(struct bpf_sock_addr *ctx)
{
	__u16 port = bpf_ntohs(ctx->user_port);
	struct port_rule *rule = bpf_map_lookup_elem(&blocked_ports, &port);
	struct net_event *ev;
	__u64 id;

	if (!rule)
		return SOCK_ALLOW;

	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count_drop();
	} else {
		__builtin_memset(ev, 0, sizeof(*ev));
		id = bpf_get_current_pid_tgid();
		ev->hdr.ts_ns = bpf_ktime_get_ns();
		ev->hdr.cgroup_id = bpf_get_current_cgroup_id();
		ev->hdr.kind = ASSAY_EV_NET_CONNECT;
		ev->hdr.rule_idx = rule->rule_idx;
		ev->hdr.action = rule->action;
		ev->hdr.pid = (__u32)id;
		ev->hdr.tgid = id >> 32;
		bpf_get_current_comm(ev->hdr.comm, sizeof(ev->hdr.comm));
		ev->family = 2; /* AF_INET */
		ev->port = port;
		ev->protocol = ctx->protocol;
		__builtin_memcpy(ev->addr, &ctx->user_ip4, 4);
		bpf_ringbuf_submit(ev, 0);
	}
	return rule->action >= ASSAY_ACT_DENY ? SOCK_DENY : SOCK_ALLOW;
}
