// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * Egress enforcement for one cgroup subtree: cgroup/connect4, connect6,
 * sendmsg4 and sendmsg6. The programs are attached to the scope's cgroup, so
 * the kernel only runs them for tasks inside it (descendants included).
 *
 * Each net_connect rule of the policy is one bit of a __u64. A destination
 * matches rule r when every condition of r holds:
 *   port:      r lists the port (port_rules[port] has bit r) or r lists none;
 *   cidr:      r has no allowlist, or the address is outside it (the LPM
 *              lookup returns the rules whose allowlist contains it);
 *   protocol:  r covers the socket's protocol (TCP/UDP);
 *   loopback:  the address is not loopback, or r judges loopback too.
 * The lowest matched bit decides (userspace orders bits by severity).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "common.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Makes the event layout part of the skeleton's generated types for Rust. */
const volatile struct net_event net_event_layout;

/* Set by userspace between open and load (see src/monitor/compile.rs). */
const volatile __u64 any_port_mask;	   /* rules without a port list */
const volatile __u64 cidr_mask;		   /* rules with an outside_cidrs allowlist */
const volatile __u64 tcp_mask;		   /* rules covering TCP */
const volatile __u64 udp_mask;		   /* rules covering UDP */
const volatile __u64 loopback_ignore_mask; /* rules with loopback: ignore */
const volatile __u8 have_ports;		   /* any rule lists ports */
const volatile __u32 rule_action[ASSAY_MAX_NET_RULES];

#define SOCK_ALLOW 1
#define SOCK_DENY 0
#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_ICMP 1
#define IPPROTO_ICMPV6 58
#define SOCK_DGRAM 2
#define SOCK_RAW 3

/* Destination port (host order) -> mask of the rules that list it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u16);
	__type(value, __u64);
} port_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4_key);
	__type(value, __u64);
} allow_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v6_key);
	__type(value, __u64);
} allow_v6 SEC(".maps");

static __always_inline __u32 lowest_bit(__u64 m)
{
	__u32 i = 0;

	if (!(m & 0xffffffffULL)) {
		m >>= 32;
		i += 32;
	}
	if (!(m & 0xffff)) {
		m >>= 16;
		i += 16;
	}
	if (!(m & 0xff)) {
		m >>= 8;
		i += 8;
	}
	if (!(m & 0xf)) {
		m >>= 4;
		i += 4;
	}
	if (!(m & 0x3)) {
		m >>= 2;
		i += 2;
	}
	if (!(m & 0x1))
		i += 1;
	return i;
}

/* Rules whose port and protocol conditions hold. */
static __always_inline __u64 port_proto_match(struct bpf_sock_addr *ctx, __u16 port)
{
	__u64 m = any_port_mask;
	__u32 proto = ctx->protocol;

	/* No rule lists ports (an egress allowlist): no lookup at all. */
	if (have_ports) {
		__u64 *by_port = bpf_map_lookup_elem(&port_rules, &port);

		if (by_port)
			m |= *by_port;
	}

	if (proto == IPPROTO_TCP)
		m &= tcp_mask;
	else if (proto == IPPROTO_UDP)
		m &= udp_mask;
	else
		m = 0;
	return m;
}

static __always_inline __u64 match_v4(__u64 m, __u32 ip4 /* network order */)
{
	struct lpm_v4_key key = {.prefixlen = 32};
	__u64 *inside;

	/* Only rules with an allowlist need the trie. */
	if (m & cidr_mask) {
		__builtin_memcpy(key.addr, &ip4, 4);
		inside = bpf_map_lookup_elem(&allow_v4, &key);
		m &= ~(cidr_mask & (inside ? *inside : 0));
	}
	if ((bpf_ntohl(ip4) >> 24) == 127)
		m &= ~loopback_ignore_mask;
	return m;
}

static __always_inline int decide(struct bpf_sock_addr *ctx, __u32 kind, __u64 matched,
				  __u16 family, __u16 port, const void *addr, __u32 addr_len)
{
	__u32 bit, action;
	struct net_event *ev;

	if (!matched)
		return SOCK_ALLOW;
	bit = lowest_bit(matched) & (ASSAY_MAX_NET_RULES - 1);
	action = rule_action[bit];

	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count_drop();
	} else {
		__builtin_memset(ev, 0, sizeof(*ev));
		fill_hdr(&ev->hdr, kind, bit, action);
		ev->matched = matched;
		ev->family = family;
		ev->port = port;
		ev->protocol = ctx->protocol;
		if (addr_len == 4)
			__builtin_memcpy(ev->addr, addr, 4);
		else
			__builtin_memcpy(ev->addr, addr, 16);
		bpf_ringbuf_submit(ev, 0);
	}
	return action >= ASSAY_ACT_DENY ? SOCK_DENY : SOCK_ALLOW;
}

static __always_inline int judge4(struct bpf_sock_addr *ctx, __u32 kind)
{
	__u16 port = bpf_ntohs(ctx->user_port);
	__u32 ip4 = ctx->user_ip4;
	__u64 m = port_proto_match(ctx, port);

	if (!m)
		return SOCK_ALLOW;
	m = match_v4(m, ip4);
	return decide(ctx, kind, m, AF_INET, port, &ip4, 4);
}

static __always_inline int judge6(struct bpf_sock_addr *ctx, __u32 kind)
{
	__u16 port = bpf_ntohs(ctx->user_port);
	struct lpm_v6_key key = {.prefixlen = 128};
	__u32 ip6[4];
	__u64 m = port_proto_match(ctx, port), *inside;

	if (!m)
		return SOCK_ALLOW;
	ip6[0] = ctx->user_ip6[0];
	ip6[1] = ctx->user_ip6[1];
	ip6[2] = ctx->user_ip6[2];
	ip6[3] = ctx->user_ip6[3];
	if (ip6[0] == 0 && ip6[1] == 0 && ip6[2] == bpf_htonl(0xffff)) {
		/* ::ffff:a.b.c.d reaches an IPv4 host: judge it as IPv4. */
		m = match_v4(m, ip6[3]);
	} else {
		if (m & cidr_mask) {
			__builtin_memcpy(key.addr, ip6, 16);
			inside = bpf_map_lookup_elem(&allow_v6, &key);
			m &= ~(cidr_mask & (inside ? *inside : 0));
		}
		if (ip6[0] == 0 && ip6[1] == 0 && ip6[2] == 0 && ip6[3] == bpf_htonl(1))
			m &= ~loopback_ignore_mask;
	}
	return decide(ctx, kind, m, AF_INET6, port, ip6, 16);
}

SEC("cgroup/connect4")
int assay_connect4(struct bpf_sock_addr *ctx)
{
	return judge4(ctx, ASSAY_EV_NET_CONNECT);
}

SEC("cgroup/connect6")
int assay_connect6(struct bpf_sock_addr *ctx)
{
	return judge6(ctx, ASSAY_EV_NET_CONNECT);
}

SEC("cgroup/sendmsg4")
int assay_sendmsg4(struct bpf_sock_addr *ctx)
{
	return judge4(ctx, ASSAY_EV_NET_SENDMSG);
}

SEC("cgroup/sendmsg6")
int assay_sendmsg6(struct bpf_sock_addr *ctx)
{
	return judge6(ctx, ASSAY_EV_NET_SENDMSG);
}

/*
 * Sockets the address hooks above never see: raw sockets, and ping sockets
 * (their sendto() runs no cgroup hook). In scope, with network rules to
 * enforce, they are refused at creation. (AF_PACKET sockets do not reach
 * this hook; the capability they need is what keeps them out.)
 */
SEC("cgroup/sock_create")
int assay_sock_create(struct bpf_sock *sk)
{
	__u32 type = sk->type, proto = sk->protocol, guard;

	if (type == SOCK_RAW)
		guard = ASSAY_GUARD_RAW_SOCKET;
	else if (type == SOCK_DGRAM && (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6))
		guard = ASSAY_GUARD_PING_SOCKET;
	else
		return SOCK_ALLOW;
	report_tamper(guard, sk->family, type, proto);
	return SOCK_DENY;
}
