/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/*
 * The one definition of every struct and constant shared between the BPF
 * programs and userspace. Rust reads these through the skeleton's generated
 * types; nothing here is mirrored by hand.
 */
#ifndef ASSAY_H
#define ASSAY_H

/*
 * Limits are enum constants, not macros: enums reach BTF (see the dummy
 * instances in common.bpf.h), so the skeleton exports them to Rust, where
 * compile-time assertions tie every Rust copy to these values.
 */
enum assay_limit {
	ASSAY_COMM_LEN = 16,
	/* Network rules are bits of a __u64. */
	ASSAY_MAX_NET_RULES = 64,
	/* NAME_MAX + 1: a whole path component and its NUL. */
	ASSAY_NAME_LEN = 256,
	/* Longest suffix of a Suffix glob (any file whose name ends so). */
	ASSAY_SUFFIX_LEN = 32,
	/* Distinct suffix lengths the program tries per open. */
	ASSAY_MAX_SUFFIX_LENS = 8,
	/* Ancestors (directories, across mounts) a subtree rule looks at
	 * without bpf_loop (before Linux 5.17), and with it. */
	ASSAY_MAX_DEPTH = 32,
	ASSAY_MAX_WALK = 65536,
	/* `dir/name` pairs (DirAndBasename globs), one bit each in a mask. */
	ASSAY_MAX_PAIRS = 64,
	/* Anchored globs (a `*` directory in an absolute path), one bit each. */
	ASSAY_MAX_PATTERNS = 64,
	/* Components from an anchored glob's first `*` to its end, at most. */
	ASSAY_MAX_PATTERN_DEPTH = 8,
	/* Rules with an `except` list, one bit each in a mask. */
	ASSAY_MAX_GATED = 64,
	/* Room for the opened file's full path in an event. */
	ASSAY_PATH_LEN = 1024,
	/* One past the last enum assay_file_match. */
	ASSAY_MATCH_KINDS = 10,
};

/* rule_idx of a map value that only carries masks (a positive value, so it
 * reads the same through BTF's signed enum values). */
enum assay_rule_ref {
	ASSAY_NO_RULE = 0x7fffffff,
};

enum assay_event_kind {
	ASSAY_EV_NET_CONNECT = 1,
	ASSAY_EV_NET_SENDMSG = 2,
	ASSAY_EV_FILE_OPEN = 3,
	ASSAY_EV_TAMPER = 4,
	/* A link or rename that would move a protected file (or a directory a
	 * rule depends on) where its rule no longer covers it (struct
	 * file_event). */
	ASSAY_EV_FILE_LINK = 5,
	ASSAY_EV_FILE_RENAME = 6,
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
	/* The sender's identity as the kernel knew it at the event (zero when
	 * the program may not ask, see task_identity in common.bpf.h): its
	 * real uid and gid, its parent's tgid, and the start times (boot
	 * clock, ns: what /proc/<pid>/stat shows in ticks) of its thread
	 * group leader and of its parent's, which tell a reused pid apart. */
	__u32 uid;
	__u64 start_ns;
	__u64 parent_start_ns;
	__u32 gid;
	__u32 ppid;
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

/*
 * Self-protection: operations an in-scope task is refused whatever the
 * policy's rules say, because they would take it around them.
 */
enum assay_guard {
	/* SOCK_RAW (any protocol): bypasses the connect/sendmsg hooks.
	 * args: family, type, protocol. */
	ASSAY_GUARD_RAW_SOCKET = 1,
	/* SOCK_DGRAM with IPPROTO_ICMP(V6): sendto() bypasses them too.
	 * Refused only where no rule covers ICMP (else judged per packet).
	 * args: family, type, protocol. */
	ASSAY_GUARD_PING_SOCKET = 2,
	/* The rest need the BPF LSM (selfguard.bpf.c). */
	/* bpf(): detach links, rewrite maps. args: command. */
	ASSAY_GUARD_BPF = 3,
	/* A signal to a task outside the scope. args: signal, target tgid. */
	ASSAY_GUARD_SIGNAL = 4,
	/* ptrace, pidfd_getfd, /proc/<pid>/mem of a task outside the scope.
	 * args: ptrace mode, target tgid. */
	ASSAY_GUARD_PTRACE = 5,
	/* A cgroup interface file opened for writing (cgroup.procs ...).
	 * args: inode. */
	ASSAY_GUARD_CGROUP_WRITE = 6,
	/* mount, umount, move_mount, pivot_root, a new superblock.
	 * args: enum assay_mount_op. */
	ASSAY_GUARD_MOUNT = 7,
	/* An AF_PACKET socket. args: family, type, protocol. */
	ASSAY_GUARD_PACKET_SOCKET = 8,
	/* A block device opened. args: device (major << 20 | minor), inode. */
	ASSAY_GUARD_BLOCK_DEVICE = 9,
	/* A ping socket's packet whose header may take it elsewhere than its
	 * destination address says (IPv4 options such as a source route, an
	 * IPv6 extension header), or that could not be read: dropped where
	 * ICMP is judged. args: family (0: unreadable), IPv4 header length in
	 * bytes or IPv6 next header. */
	ASSAY_GUARD_ICMP_OPTIONS = 10,
};

enum assay_mount_op {
	ASSAY_MOUNT_MOUNT = 1,
	ASSAY_MOUNT_UMOUNT = 2,
	ASSAY_MOUNT_MOVE = 3,
	ASSAY_MOUNT_PIVOT_ROOT = 4,
	ASSAY_MOUNT_NEW_SUPERBLOCK = 5,
};

struct tamper_event {
	struct event_hdr hdr; /* rule_idx ASSAY_NO_RULE, action deny */
	__u32 guard;	      /* enum assay_guard */
	__u32 _pad;
	__u64 args[3]; /* by guard, see enum assay_guard */
};

/* ---- file enforcement (fileguard.bpf.c) ---- */

/* Which kernel form of a rule matched an open. */
enum assay_file_match {
	ASSAY_MATCH_INODE = 1,	  /* the opened inode is a rule's file */
	ASSAY_MATCH_ENTRY = 2,	  /* name in a rule's parent directory */
	ASSAY_MATCH_SUBTREE = 3,  /* below a rule's directory */
	ASSAY_MATCH_BASENAME = 4, /* Basename: a name in any directory */
	ASSAY_MATCH_DIRNAME = 5,  /* InDirNamed: any file in a dir so named */
	ASSAY_MATCH_PAIR = 6,	  /* DirAndBasename: dir/name anywhere */
	ASSAY_MATCH_SUFFIX = 7,	  /* Suffix: a name ending so */
	ASSAY_MATCH_PATTERN = 8,  /* Anchored: components below a directory */
	/* The name- and ancestor-based forms could not judge the file: its
	 * dentry is disconnected (open_by_handle_at), or its ancestors go
	 * deeper than the walk. Denied (fail closed) by the strongest rule of
	 * those forms. */
	ASSAY_MATCH_UNDECIDED = 9,
};

/*
 * What the rules say about a key (value of every file rule map). A rule with
 * an `except` list is "gated": it owns one bit, ordered by decision priority
 * (most severe action first, then policy order). Its path globs' keys set the
 * bit in `gated`, its except globs' keys set it in `exempt`; once every key
 * of an open was looked up, the lowest bit of gated & ~exempt is the gated
 * rule that applies. Rules without exemptions go straight to `rule_idx`.
 */
struct file_rule {
	__u32 rule_idx; /* ASSAY_NO_RULE: no ungated rule on this key */
	__u32 action;
	__u64 gated;
	__u64 exempt;
};

/* An inode as the kernel names it: `s_dev` is major<<20|minor. */
struct inode_key {
	__u64 ino;
	__u32 dev;
	__u32 _pad;
};

enum assay_name_kind {
	ASSAY_NAME_BASE = 1,  /* basename of the opened file, any directory */
	ASSAY_NAME_DIR = 2,   /* name of the opened file's parent directory */
	ASSAY_NAME_ENTRY = 3, /* basename inside the directory dir_dev:dir_ino */
	ASSAY_NAME_LEVEL = 4, /* a component `dir_dev` levels above the file */
};

/* Key of the `names` map; `name` is NUL-padded to its full length. */
struct name_key {
	__u64 dir_ino;
	__u32 dir_dev;
	__u32 kind;
	char name[ASSAY_NAME_LEN];
};

struct name_rule {
	struct file_rule rule; /* rule_idx ASSAY_NO_RULE: only a mask */
	/* BASE and DIR: the DirAndBasename pairs this name takes part in;
	 * LEVEL: the anchored globs with this literal at this level. */
	__u64 mask;
};

/* Key of the `anchors` map: an anchored glob's directory and how many
 * levels above the opened file it must be; value: mask of those globs. */
struct anchor_key {
	__u64 ino;
	__u32 dev;
	__u32 depth;
};

/* Key of the `suffixes` map: the last `len` bytes of a name, NUL-padded. */
struct suffix_key {
	__u32 len;
	char tail[ASSAY_SUFFIX_LEN];
};

struct file_event {
	struct event_hdr hdr;
	__u64 ino;
	__u32 dev;
	__u32 match;		   /* enum assay_file_match */
	char name[ASSAY_NAME_LEN]; /* basename of the opened file */
	/* > 0: bytes of `path` with its NUL (bpf_d_path); 0: not asked (the
	 * kernel refuses the helper here); < 0: -errno (too long). */
	__s32 path_len;
	__u32 _pad2;
	char path[ASSAY_PATH_LEN];
};

#endif /* ASSAY_H */
