/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/*
 * The one definition of every struct and constant shared between the BPF
 * programs and userspace. Rust reads these through the skeleton's generated
 * types; nothing here is mirrored by hand.
 */
#ifndef ASSAY_H
#define ASSAY_H

#define ASSAY_COMM_LEN 16

enum assay_event_kind {
	ASSAY_EV_NET_CONNECT = 1,
	ASSAY_EV_NET_SENDMSG = 2,
	ASSAY_EV_FILE_OPEN = 3,
};

enum assay_action {
	ASSAY_ACT_LOG = 0,
	ASSAY_ACT_ALERT = 1,
	ASSAY_ACT_DENY = 2,
	ASSAY_ACT_TRIGGER_KILL = 3,
};

/* Value of the port blocklist: which rule blocked it and what to do. */
struct port_rule {
	__u32 rule_idx;
	__u32 action;
};

/*
 * Network rules are bits of a __u64 (at most ASSAY_MAX_NET_RULES). Userspace
 * orders the bits by decision priority (most severe action first, then policy
 * order), so the lowest set bit of the matched mask is the deciding rule.
 */
#define ASSAY_MAX_NET_RULES 64

/* LPM trie keys for the CIDR allowlists; value: mask of the rules whose
 * allowlist contains the prefix (userspace folds in every shorter prefix). */
struct lpm_v4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct lpm_v6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/*
 * The monitored scope for programs on global hooks (LSM): a task is in scope
 * when bpf_get_current_ancestor_cgroup_id(level) == cgroup_id. cgroup-attached
 * programs (netguard) are scoped by where they are attached instead.
 */
struct scope {
	__u64 cgroup_id;
	__u32 level;
	__u32 _pad;
};

/*
 * Every event on the ring buffer starts with this header; userspace reads
 * `kind` to know which struct follows. Every BPF object names its ring buffer
 * map `events` and its drop counter `dropped`, and the loader makes them share
 * one ring buffer and one counter (libbpf map fd reuse).
 */
struct event_hdr {
	__u64 ts_ns;
	__u64 cgroup_id;
	__u32 kind;
	__u32 rule_idx;
	__u32 action;
	__u32 pid;
	__u32 tgid;
	char comm[ASSAY_COMM_LEN];
	__u32 _pad;
};

struct net_event {
	struct event_hdr hdr;
	/* Every rule (bit) that matched; hdr.rule_idx is the one that decided. */
	__u64 matched;
	__u16 family;
	__u16 port;
	__u32 protocol;
	__u8 addr[16];
};

#endif /* ASSAY_H */
