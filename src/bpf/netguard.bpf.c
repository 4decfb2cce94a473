// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * Egress enforcement for one cgroup subtree: cgroup/connect4, connect6,
 * sendmsg4 and sendmsg6 for TCP and UDP, cgroup_skb/egress for the packets
 * of ping sockets (ICMP, ICMPv6). The programs are attached to the scope's
 * cgroup, so the kernel only runs them for sockets created inside it
 * (descendants included).
 *
 * Each net_connect rule of the policy is one bit of a __u64. A destination
 * matches rule r when every condition of r holds:
 *   port:      r lists the port (port_rules[port] has bit r) or r lists none;
 *   cidr:      r has no allowlist, or the address is outside it (the LPM
 *              lookup returns the rules whose allowlist contains it);
 *   protocol:  r covers the socket's protocol (TCP/UDP/ICMP; a rule that
 *              covers ICMP lists no port, and an ICMP packet has port 0);
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
const volatile __u64 icmp_mask;		   /* rules covering ICMP(v6), no ports */
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
#define PKT_PASS 1
#define PKT_DROP 0
/* Wire offsets in the IP headers (fixed by the protocols, not CO-RE). */
#define IP4_DADDR 16
#define IP6_NEXTHDR 6
#define IP6_DADDR 24

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

static __always_inline __u64 match_v6(__u64 m, const __u32 ip6[4] /* network order */)
{
	struct lpm_v6_key key = {.prefixlen = 128};
	__u64 *inside;

	/* ::ffff:a.b.c.d reaches an IPv4 host: judge it as IPv4. */
	if (ip6[0] == 0 && ip6[1] == 0 && ip6[2] == bpf_htonl(0xffff))
		return match_v4(m, ip6[3]);
	if (m & cidr_mask) {
		__builtin_memcpy(key.addr, ip6, 16);
		inside = bpf_map_lookup_elem(&allow_v6, &key);
		m &= ~(cidr_mask & (inside ? *inside : 0));
	}
	if (ip6[0] == 0 && ip6[1] == 0 && ip6[2] == 0 && ip6[3] == bpf_htonl(1))
		m &= ~loopback_ignore_mask;
	return m;
}

/* A net event reserved with its body filled; the caller fills the header
 * and submits it. NULL (the drop counted) when the ring buffer is full. */
static __always_inline struct net_event *net_event_new(__u64 matched, __u16 family, __u16 port,
						       __u32 proto, const void *addr,
						       __u32 addr_len)
{
	struct net_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);

	if (!ev) {
		count_drop();
		return NULL;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->matched = matched;
	ev->family = family;
	ev->port = port;
	ev->protocol = proto;
	if (addr_len == 4)
		__builtin_memcpy(ev->addr, addr, 4);
	else
		__builtin_memcpy(ev->addr, addr, 16);
	return ev;
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

	ev = net_event_new(matched, family, port, ctx->protocol, addr, addr_len);
	if (ev) {
		fill_hdr(&ev->hdr, kind, bit, action);
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
	__u32 ip6[4];
	__u64 m = port_proto_match(ctx, port);

	if (!m)
		return SOCK_ALLOW;
	ip6[0] = ctx->user_ip6[0];
	ip6[1] = ctx->user_ip6[1];
	ip6[2] = ctx->user_ip6[2];
	ip6[3] = ctx->user_ip6[3];
	m = match_v6(m, ip6);
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
 * enforce, raw sockets are refused at creation; so are ping sockets unless a
 * rule covers ICMP, whose packets assay_icmp_egress then judges one by one.
 * (AF_PACKET sockets do not reach this hook; the capability they need is
 * what keeps them out.)
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
	/* Userspace attaches assay_icmp_egress whenever icmp_mask is set. */
	if (guard == ASSAY_GUARD_PING_SOCKET && icmp_mask)
		return SOCK_ALLOW;
	report_tamper(guard, sk->family, type, proto);
	return SOCK_DENY;
}

/*
 * The header of an event about a packet. `named`: the program may ask who
 * the current task is (cgroup_skb on newer kernels); it is the sender when it
 * is in the socket's cgroup (a ping's packet leaves in the sendto() that
 * made it). Otherwise the sender stays unnamed: pid 0, no comm.
 */
static __always_inline void fill_packet_hdr(struct event_hdr *hdr, __u32 kind, __u32 rule_idx,
					    __u32 action, __u64 cgid, const int named)
{
	fill_hdr_unnamed(hdr, kind, rule_idx, action, cgid);
	if (named && bpf_get_current_cgroup_id() == cgid)
		name_sender(hdr);
}

/* A packet whose destination cannot be judged: dropped, a tamper event. */
static __always_inline int drop_unjudged(__u64 cgid, const int named, __u64 family, __u64 what)
{
	struct tamper_event *ev = tamper_new(ASSAY_GUARD_ICMP_OPTIONS, family, what, 0);

	if (ev) {
		fill_packet_hdr(&ev->hdr, ASSAY_EV_TAMPER, ASSAY_NO_RULE, ASSAY_ACT_DENY, cgid,
				named);
		bpf_ringbuf_submit(ev, 0);
	}
	return PKT_DROP;
}

/*
 * A packet leaving a socket created in scope. Only ping sockets' packets are
 * judged (TCP and UDP were at connect/sendmsg; raw sockets are refused):
 * their IP header's destination, as judge4/judge6 judge an address, with
 * port 0 and the rules covering ICMP. A header that could take the packet
 * elsewhere (IPv4 options: a source route; IPv6 extension headers: a
 * routing header) is dropped.
 */
static __always_inline int judge_icmp(struct __sk_buff *skb, const int named)
{
	struct bpf_sock *sk = skb->sk;
	__u32 proto, bit, action, ip4, ip6[4];
	struct net_event *ev;
	__u8 vhl, next;
	__u16 family;
	__u64 cgid, m;

	if (!sk)
		return PKT_PASS;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->type != SOCK_DGRAM)
		return PKT_PASS;
	proto = sk->protocol;
	if (proto != IPPROTO_ICMP && proto != IPPROTO_ICMPV6)
		return PKT_PASS;

	cgid = bpf_skb_cgroup_id(skb);
	/* Offset 0 is the IP header for cgroup_skb programs. */
	if (bpf_skb_load_bytes(skb, 0, &vhl, 1))
		return drop_unjudged(cgid, named, 0, 0);
	if (vhl >> 4 == 4) {
		if ((vhl & 0xf) != 5)
			return drop_unjudged(cgid, named, AF_INET, (vhl & 0xf) * 4);
		if (bpf_skb_load_bytes(skb, IP4_DADDR, &ip4, 4))
			return drop_unjudged(cgid, named, 0, 0);
		family = AF_INET;
		m = match_v4(icmp_mask, ip4);
	} else if (vhl >> 4 == 6) {
		if (bpf_skb_load_bytes(skb, IP6_NEXTHDR, &next, 1))
			return drop_unjudged(cgid, named, 0, 0);
		if (next != IPPROTO_ICMPV6)
			return drop_unjudged(cgid, named, AF_INET6, next);
		if (bpf_skb_load_bytes(skb, IP6_DADDR, ip6, 16))
			return drop_unjudged(cgid, named, 0, 0);
		family = AF_INET6;
		m = match_v6(icmp_mask, ip6);
	} else {
		return drop_unjudged(cgid, named, 0, vhl);
	}
	if (!m)
		return PKT_PASS;

	bit = lowest_bit(m) & (ASSAY_MAX_NET_RULES - 1);
	action = rule_action[bit];
	if (family == AF_INET)
		ev = net_event_new(m, family, 0, proto, &ip4, 4);
	else
		ev = net_event_new(m, family, 0, proto, ip6, 16);
	if (ev) {
		fill_packet_hdr(&ev->hdr, ASSAY_EV_NET_SENDMSG, bit, action, cgid, named);
		bpf_ringbuf_submit(ev, 0);
	}
	return action >= ASSAY_ACT_DENY ? PKT_DROP : PKT_PASS;
}

/* Where the kernel allows it: the event names the sender. */
SEC("cgroup_skb/egress")
int assay_icmp_egress(struct __sk_buff *skb)
{
	return judge_icmp(skb, 1);
}

/* Where cgroup_skb may not ask who the current task is: the same
 * judgement, events without a sender. Userspace loads one of the two. */
SEC("cgroup_skb/egress")
int assay_icmp_egress_unnamed(struct __sk_buff *skb)
{
	return judge_icmp(skb, 0);
}
