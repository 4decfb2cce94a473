// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/*
 * File enforcement with the BPF LSM: `lsm/file_open` for the tasks of one
 * cgroup subtree. Every rule form is a map lookup keyed by what the kernel
 * knows about the opened file (its inode, its name, its parent's inode and
 * name, its ancestors' inodes), never by the path string the caller used, so
 * symlinks, hardlinks, bind mounts, /proc/self/root and fd tricks all arrive
 * at the same keys.
 *
 * The name- and ancestor-based forms depend on where a file is, so the same
 * judgement guards `lsm/path_link` and `lsm/path_rename`: in scope, a link or
 * rename of a file a deny rule covers, or of a directory such a rule depends
 * on, is refused, as is a rename over such a file. A file the walk cannot
 * judge (disconnected, or deeper than the walk) is denied, never allowed.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "common.bpf.h"
#include "scope.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Makes the event layout part of the skeleton's generated types for Rust. */
const volatile struct file_event file_event_layout;

#define EPERM 1
#define ENOMEM 12

/* The scope: tasks whose cgroup at `target_level` is `target_cgid`. */
const volatile __u64 target_cgid;
const volatile __u32 target_level;
/* Which stages have rules; unused stages cost nothing. */
const volatile __u8 have_inodes;
const volatile __u8 have_entries;
const volatile __u8 have_basenames;
const volatile __u8 have_dirnames;
const volatile __u8 have_pairs;
const volatile __u8 have_subtrees;
const volatile __u8 have_gated;
/* Put the full path in events (bpf_d_path; off where the kernel refuses it). */
const volatile __u8 want_path;
/* Deepest anchored glob (levels below its directory); 0: none. */
const volatile __u32 pattern_depth;
/* Per level: anchored globs that accept any name there (a `*`, or shallower
 * than the level), and those deeper than the level (their directory is
 * further up). */
const volatile __u64 pattern_any[ASSAY_MAX_PATTERN_DEPTH];
const volatile __u64 pattern_deeper[ASSAY_MAX_PATTERN_DEPTH];
/* Per level i: anchored globs whose directory is i + 1 levels up. */
const volatile __u64 pattern_at[ASSAY_MAX_PATTERN_DEPTH];
/* Distinct suffix lengths, longest first; 0 ends the list. */
const volatile __u32 suffix_lens[ASSAY_MAX_SUFFIX_LENS];
/* What decides a file the name- and ancestor-based forms cannot judge: the
 * strongest rule of those forms (ASSAY_NO_RULE: none), at most deny. */
const volatile __u32 undecided_rule;
const volatile __u32 undecided_action;

#define S_IFMT 00170000
#define S_IFDIR 0040000

/* Exact files and subtree roots: (s_dev, i_ino) -> rule. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct inode_key);
	__type(value, struct file_rule);
} inodes SEC(".maps");

/* Subtree roots, and the roots of the filesystems mounted below them (a
 * host may have thousands: allocated as filled). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct inode_key);
	__type(value, struct file_rule);
} subtrees SEC(".maps");

/* Basenames, parent-directory names and (parent inode, basename) entries. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct name_key);
	__type(value, struct name_rule);
} names SEC(".maps");

/*
 * DirAndBasename: pair i owns bit i of the masks of its basename and its
 * directory name. Both names of one open can share only one pair (pairs are
 * unique), so the AND of the two masks is a single bit: the key here.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ASSAY_MAX_PAIRS);
	__type(key, __u64);
	__type(value, struct file_rule);
} pairs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct suffix_key);
	__type(value, struct file_rule);
} suffixes SEC(".maps");

/* Anchored globs: (directory, depth) -> mask; bit -> what the glob says. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct anchor_key);
	__type(value, __u64);
} anchors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ASSAY_MAX_PATTERNS);
	__type(key, __u64);
	__type(value, struct file_rule);
} patterns SEC(".maps");

/* Gated rules: bit -> the rule (rule_idx and action only). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ASSAY_MAX_GATED);
	__type(key, __u64);
	__type(value, struct file_rule);
} gated SEC(".maps");

struct verdict {
	__u32 rule_idx;
	__u32 action;
	__u16 match;
	__u8 found;
	/* A name- or ancestor-based form could not judge the file. */
	__u8 undecided;
	/* The stamp the verdict was judged under (see `verdicts`): the
	 * policy generation, and the rename and mount counts (odd: not to
	 * be cached). */
	__u32 gen;
	__u64 seqs;
	__u64 gated;
	__u64 exempt;
	/* Per match kind that a map lookup gives (index kind - 1; not
	 * ASSAY_MATCH_UNDECIDED), the gated bits it set: names the deciding
	 * form. */
	__u64 gated_by[ASSAY_MATCH_KINDS - 2];
};

/* The strongest action wins: log < alert < deny < trigger_kill. */
static __always_inline void consider(struct verdict *v, const struct file_rule *r, __u32 match)
{
	if (!r)
		return;
	if (have_gated) {
		v->gated |= r->gated;
		v->exempt |= r->exempt;
		if (match >= 1 && match < ASSAY_MATCH_UNDECIDED)
			v->gated_by[match - 1] |= r->gated;
	}
	if (r->rule_idx == ASSAY_NO_RULE)
		return;
	if (v->found && r->action <= v->action)
		return;
	v->rule_idx = r->rule_idx;
	v->action = r->action;
	v->match = match;
	v->found = 1;
}

/* The gated rule that applies, if any, once every key was looked up. */
static __always_inline void decide_gated(struct verdict *v)
{
	__u64 open = v->gated & ~v->exempt;
	__u64 bit = open & -open;
	__u32 match = 0;
	int k;

	if (!open)
		return;
#pragma clang loop unroll(full)
	for (k = 1; k < ASSAY_MATCH_UNDECIDED; k++)
		if (!match && (v->gated_by[k - 1] & bit))
			match = k;
	consider(v, bpf_map_lookup_elem(&gated, &bit), match);
}

static __always_inline void inode_of(struct inode_key *k, struct inode *inode)
{
	k->ino = BPF_CORE_READ(inode, i_ino);
	k->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	k->_pad = 0;
}

/* Reads a dentry's name into a zeroed key buffer; returns its length. */
static __always_inline __u32 read_name(char *buf, struct dentry *d)
{
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);

	__builtin_memset(buf, 0, ASSAY_NAME_LEN);
	bpf_probe_read_kernel_str(buf, ASSAY_NAME_LEN, name);
	return BPF_CORE_READ(d, d_name.len);
}

/* The mount of a path (container_of, offset relocated). */
static __always_inline struct mount *mount_of(struct vfsmount *vfs)
{
	return (void *)vfs - bpf_core_field_offset(struct mount, mnt);
}

/*
 * From a filesystem's root `*d` (its own parent) to the dentry it is mounted
 * on, in the parent mount: 1; 0 at the root of the mount tree; -1 when `*d`
 * is its own parent without being its filesystem's root: a disconnected
 * dentry (open_by_handle_at, an NFS export), whose ancestors are unknown.
 * `*dev` follows: within one filesystem every dentry has the same device, so
 * the walks read it only here.
 */
static __always_inline int cross_mount(struct dentry **d, struct mount **mnt, __u32 *dev)
{
	struct mount *up = BPF_CORE_READ(*mnt, mnt_parent);

	if (BPF_CORE_READ(*d, d_sb, s_root) != *d)
		return -1;
	if (up == *mnt)
		return 0;
	*d = BPF_CORE_READ(*mnt, mnt_mountpoint);
	*mnt = up;
	*dev = BPF_CORE_READ(*d, d_sb, s_dev);
	return 1;
}

/*
 * One step of the walk over the ancestors of a file looking for a subtree
 * root: from `*d` to its parent. At a filesystem's root it continues at the
 * mountpoint of the mount the file was opened through, so a filesystem
 * mounted below a protected directory is covered too. The walk through the
 * dentry tree itself ignores bind mounts: a file reached through a bind
 * mount still has its real ancestors. Returns 0 to go on, 1 at the top of
 * the tree, 2 when nothing further up can change the verdict.
 */
static __always_inline int subtree_step(struct verdict *v, struct dentry **d, struct mount **mnt,
					struct inode_key *k)
{
	struct dentry *parent = BPF_CORE_READ(*d, d_parent);
	const struct file_rule *r;
	int crossed;

	if (parent == *d) {
		/* A filesystem root: cross to where it is mounted. */
		crossed = cross_mount(&parent, mnt, &k->dev);
		if (crossed <= 0) {
			v->undecided |= crossed < 0;
			return 1;
		}
	}
	*d = parent;
	k->ino = BPF_CORE_READ(parent, d_inode, i_ino);
	r = bpf_map_lookup_elem(&subtrees, k);
	if (r) {
		consider(v, r, ASSAY_MATCH_SUBTREE);
		/* Nothing outranks it (an exemption only lifts gated rules,
		 * never this one); an outer root may, so walk on. */
		if (v->found && v->action == ASSAY_ACT_TRIGGER_KILL)
			return 2;
	}
	return 0;
}

/* The walk without loops, for kernels without bpf_loop (before 5.17):
 * ASSAY_MAX_DEPTH ancestors, unrolled (no back-edges for any verifier to
 * refuse). */
static __always_inline void check_subtrees_unrolled(struct verdict *v, struct mount *mnt,
						    struct dentry *d, __u32 dev)
{
	struct inode_key k = {.dev = dev};
	int i, stop = 0;

#pragma clang loop unroll(full)
	for (i = 0; i < ASSAY_MAX_DEPTH; i++)
		if (!stop)
			stop = subtree_step(v, &d, &mnt, &k);
	/* Deeper than the walk: an attacker can make any depth (mkdir -p). */
	if (!stop)
		v->undecided = 1;
}

/* The state of the bpf_loop walk, on the caller's stack. */
struct subtree_walk {
	struct verdict *v;
	struct dentry *d;
	struct mount *mnt;
	struct inode_key k;
	__u32 stop;
};

static long subtree_walk_step(__u64 index, void *ctx)
{
	struct subtree_walk *w = ctx;

	w->stop = subtree_step(w->v, &w->d, &w->mnt, &w->k);
	/* bpf_loop takes 0 (go on) or 1 (stop) only. */
	return w->stop ? 1 : 0;
}

/* The walk with bpf_loop (5.17+): as deep as any path can reach (a path
 * names at most PATH_MAX / 2 directories); deeper still is undecided. */
static __always_inline void check_subtrees_looped(struct verdict *v, struct mount *mnt,
						  struct dentry *d, __u32 dev)
{
	struct subtree_walk w = {.v = v, .d = d, .mnt = mnt, .k = {.dev = dev}};

	bpf_loop(ASSAY_MAX_WALK, subtree_walk_step, &w, 0);
	if (!w.stop)
		v->undecided = 1;
}

static __always_inline void check_subtrees(struct verdict *v, struct mount *mnt, struct dentry *d,
					   __u32 dev, int looped)
{
	if (looped)
		check_subtrees_looped(v, mnt, d, dev);
	else
		check_subtrees_unrolled(v, mnt, d, dev);
}

static __always_inline void anchor_hit(__u64 *hit, struct dentry *d, __u32 dev, __u32 depth,
				       __u64 want)
{
	struct anchor_key k;
	__u64 *mask;

	k.ino = BPF_CORE_READ(d, d_inode, i_ino);
	k.dev = dev;
	k.depth = depth;
	mask = bpf_map_lookup_elem(&anchors, &k);
	if (mask)
		*hit |= *mask & want;
}

/*
 * While `*d` is the root of a mounted filesystem (`*parent == *d`), moves to
 * the dentry it is mounted on (twice, for a mount stacked on a mount), each
 * checked as an anchor at `depth` for the globs in `want`: a directory that
 * is a mount point has two inodes, the mounted root's (what userspace
 * resolves) and the one underneath.
 */
static __always_inline void climb_mounts(struct verdict *v, struct dentry **d,
					 struct dentry **parent, struct mount **mnt, __u32 *dev,
					 __u64 *hit, __u32 depth, __u64 want)
{
	int j, crossed;

#pragma clang loop unroll(full)
	for (j = 0; j < 2; j++) {
		if (*parent != *d)
			return;
		crossed = cross_mount(d, mnt, dev);
		if (crossed <= 0) {
			v->undecided |= crossed < 0;
			return;
		}
		*parent = BPF_CORE_READ(*d, d_parent);
		if (want)
			anchor_hit(hit, *d, *dev, depth, want);
	}
}

/*
 * Anchored globs: reads the names of the opened file and its ancestors (the
 * file is level 0) where a live glob has a literal, keeps the globs whose
 * literals all match (`live`), and at each depth where a live glob has its
 * directory looks up whether this ancestor is that directory. Like
 * subtrees, the walk follows the dentry tree (a bind mount does not change a
 * file's ancestors) and crosses from a filesystem's root to where it is
 * mounted.
 */
static __always_inline void check_patterns(struct verdict *v, struct mount *mnt, struct dentry *d,
					   __u32 dev, struct name_key *nk)
{
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	__u64 live = ~0ULL, hit = 0, want;
	struct name_rule *nr;
	int i, stop = 0;

	climb_mounts(v, &d, &parent, &mnt, &dev, &hit, 0, 0);
#pragma clang loop unroll(full)
	for (i = 0; i < ASSAY_MAX_PATTERN_DEPTH; i++) {
		/* Done when no live glob has its directory further up. */
		if (stop || (__u32)i >= pattern_depth || !(live & pattern_deeper[i])) {
			stop = 1;
			continue;
		}
		/* Names are read and looked up only where a live glob has a
		 * literal: a `*` level costs no string work. */
		if (live & ~pattern_any[i]) {
			read_name(nk->name, d);
			nk->dir_ino = 0;
			nk->dir_dev = i;
			nk->kind = ASSAY_NAME_LEVEL;
			nr = bpf_map_lookup_elem(&names, nk);
			live &= (nr ? nr->mask : 0) | pattern_any[i];
		}
		if (!live || parent == d) {
			stop = 1;
			continue;
		}
		d = parent;
		parent = BPF_CORE_READ(d, d_parent);
		/* Only where a live glob has its directory at this depth. */
		want = live & pattern_at[i];
		if (want)
			anchor_hit(&hit, d, dev, i + 1, want);
		climb_mounts(v, &d, &parent, &mnt, &dev, &hit, i + 1, want);
	}
	/* Every glob that matched: one may carry a rule, another an exemption. */
#pragma clang loop unroll(full)
	for (i = 0; i < ASSAY_MAX_PATTERNS; i++) {
		__u64 bit = hit & -hit;

		if (!hit)
			break;
		consider(v, bpf_map_lookup_elem(&patterns, &bit), ASSAY_MATCH_PATTERN);
		hit &= hit - 1;
	}
}

static __always_inline void check_suffixes(struct verdict *v, struct dentry *d, __u32 len,
					   struct suffix_key *k)
{
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);
	int i;

#pragma clang loop unroll(full)
	for (i = 0; i < ASSAY_MAX_SUFFIX_LENS; i++) {
		__u32 n = suffix_lens[i];

		if (n == 0 || n > ASSAY_SUFFIX_LEN)
			return;
		if (n > len)
			continue;
		__builtin_memset(k, 0, sizeof(*k));
		k->len = n;
		bpf_probe_read_kernel(k->tail, n, name + (len - n));
		consider(v, bpf_map_lookup_elem(&suffixes, k), ASSAY_MATCH_SUFFIX);
	}
}

/* The name- and ancestor-based forms in use (the inode form alone needs
 * neither names nor a walk). */
static __always_inline int have_placed_forms(void)
{
	return have_entries || have_basenames || have_dirnames || suffix_lens[0] || have_subtrees ||
	       pattern_depth;
}

/* Its own parent without being its filesystem's root: see cross_mount. */
static __always_inline int disconnected(struct dentry *d)
{
	return BPF_CORE_READ(d, d_parent) == d && BPF_CORE_READ(d, d_sb, s_root) != d;
}

/*
 * The keys built on the stack, one at a time: a name key and a suffix key
 * share the memory (the stack holds 512 bytes; a per-CPU buffer instead
 * could be overwritten by another open on the same CPU that preempts this
 * one).
 */
union lookup_key {
	struct name_key name;
	struct suffix_key suffix;
};

/* Every form, for the file at dentry `d` (inode `inode`) reached through
 * mount `mnt`. */
static __always_inline void judge_file(struct verdict *v, struct dentry *d, struct inode *inode,
				       struct mount *mnt, union lookup_key *key, int looped)
{
	struct name_key *nk = &key->name;
	struct name_rule *base = NULL, *dir = NULL;
	struct dentry *parent;
	struct inode_key ik;
	__u32 len, dev;

	inode_of(&ik, inode);
	dev = ik.dev;
	if (have_inodes)
		consider(v, bpf_map_lookup_elem(&inodes, &ik), ASSAY_MATCH_INODE);
	/* No name, no ancestors (its name reads "/"): only the inode form
	 * can judge it. */
	if (have_placed_forms() && disconnected(d)) {
		v->undecided = 1;
		return;
	}
	if (have_entries || have_basenames || have_dirnames || suffix_lens[0]) {
		parent = BPF_CORE_READ(d, d_parent);
		len = read_name(nk->name, d);
		if (have_entries) {
			inode_of(&ik, BPF_CORE_READ(parent, d_inode));
			nk->dir_ino = ik.ino;
			nk->dir_dev = ik.dev;
			nk->kind = ASSAY_NAME_ENTRY;
			consider(v, bpf_map_lookup_elem(&names, nk), ASSAY_MATCH_ENTRY);
		}
		nk->dir_ino = 0;
		nk->dir_dev = 0;
		if (have_basenames) {
			nk->kind = ASSAY_NAME_BASE;
			base = bpf_map_lookup_elem(&names, nk);
			if (base)
				consider(v, &base->rule, ASSAY_MATCH_BASENAME);
		}
		if (have_dirnames && parent != d) {
			read_name(nk->name, parent);
			nk->kind = ASSAY_NAME_DIR;
			dir = bpf_map_lookup_elem(&names, nk);
			if (dir)
				consider(v, &dir->rule, ASSAY_MATCH_DIRNAME);
		}
		if (have_pairs && base && dir) {
			__u64 both = base->mask & dir->mask;

			if (both)
				consider(v, bpf_map_lookup_elem(&pairs, &both), ASSAY_MATCH_PAIR);
		}
		/* Last: its key takes the name key's memory. */
		if (suffix_lens[0])
			check_suffixes(v, d, len, &key->suffix);
	}
	if (have_subtrees && !(v->found && v->action == ASSAY_ACT_TRIGGER_KILL))
		check_subtrees(v, mnt, d, dev, looped);
	if (pattern_depth && !(v->found && v->action == ASSAY_ACT_TRIGGER_KILL))
		check_patterns(v, mnt, d, dev, nk);
}

/*
 * A directory that a rule depends on, by position or by name: inside a
 * subtree (or its root), named as a dirname/pair rule's directory or as a
 * literal of an anchored glob, or within an anchored glob's reach below its
 * directory (a `*` level). Moving it would take files out of their rules.
 * Directories above a subtree root or an anchor are free to move: those
 * rules are keyed by inode and follow.
 */
static __always_inline void judge_dir(struct verdict *v, struct dentry *d, struct mount *mnt,
				      union lookup_key *key, int looped)
{
	struct name_key *nk = &key->name;
	struct dentry *up = d;
	struct name_rule *nr;
	struct inode_key ik;
	__u64 hit = 0, bit;
	int i, j;

	inode_of(&ik, BPF_CORE_READ(d, d_inode));
	if (have_placed_forms() && disconnected(d)) {
		v->undecided = 1;
		return;
	}
	if (have_subtrees) {
		consider(v, bpf_map_lookup_elem(&subtrees, &ik), ASSAY_MATCH_SUBTREE);
		check_subtrees(v, mnt, d, ik.dev, looped);
	}
	if (have_dirnames || pattern_depth) {
		read_name(nk->name, d);
		nk->dir_ino = 0;
		nk->dir_dev = 0;
		if (have_dirnames) {
			nk->kind = ASSAY_NAME_DIR;
			nr = bpf_map_lookup_elem(&names, nk);
			if (nr) {
				consider(v, &nr->rule, ASSAY_MATCH_DIRNAME);
				bit = nr->mask & -nr->mask;
				if (bit)
					consider(v, bpf_map_lookup_elem(&pairs, &bit),
						 ASSAY_MATCH_PAIR);
			}
		}
		nk->kind = ASSAY_NAME_LEVEL;
#pragma clang loop unroll(full)
		for (i = 1; i < ASSAY_MAX_PATTERN_DEPTH; i++) {
			if ((__u32)i >= pattern_depth)
				continue;
			nk->dir_dev = i;
			nr = bpf_map_lookup_elem(&names, nk);
			if (nr)
				hit |= nr->mask;
		}
	}
	/* An ancestor `i` levels up that is an anchored glob's directory, for a
	 * glob reaching deeper than `i`: files below `d` may match it. */
#pragma clang loop unroll(full)
	for (i = 1; i < ASSAY_MAX_PATTERN_DEPTH; i++) {
		if ((__u32)i >= pattern_depth)
			continue;
		up = BPF_CORE_READ(up, d_parent);
#pragma clang loop unroll(full)
		for (j = 2; j <= ASSAY_MAX_PATTERN_DEPTH; j++)
			if ((__u32)j > (__u32)i && (__u32)j <= pattern_depth)
				anchor_hit(&hit, up, ik.dev, j, ~0ULL);
	}
	bit = hit & -hit;
	if (bit)
		consider(v, bpf_map_lookup_elem(&patterns, &bit), ASSAY_MATCH_PATTERN);
}

/* Gated rules, then a file the placed forms could not judge. */
static __always_inline void settle(struct verdict *v)
{
	if (have_gated)
		decide_gated(v);
	if (v->undecided && undecided_rule != ASSAY_NO_RULE &&
	    (!v->found || v->action < undecided_action)) {
		v->rule_idx = undecided_rule;
		v->action = undecided_action;
		v->match = ASSAY_MATCH_UNDECIDED;
		v->found = 1;
	}
}

/* The event of a decision on `d` (inode `inode`); the path only for an
 * open, where the kernel lets the program have it. */
static __always_inline void report(__u32 kind, struct dentry *d, struct inode *inode,
				   const struct path *path, const struct verdict *v)
{
	struct file_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	struct inode_key k;

	if (!ev) {
		count_drop();
		return;
	}
	/* Only the fixed part is zeroed (the strings are NUL-terminated): a
	 * memset of the whole record would be too large to inline. */
	__builtin_memset(ev, 0, offsetof(struct file_event, name));
	ev->path_len = 0;
	ev->_pad2 = 0;
	fill_hdr(&ev->hdr, kind, v->rule_idx, v->action);
	inode_of(&k, inode);
	ev->ino = k.ino;
	ev->dev = k.dev;
	ev->match = v->match;
	bpf_probe_read_kernel_str(ev->name, sizeof(ev->name), BPF_CORE_READ(d, d_name.name));
	if (want_path && path)
		ev->path_len = bpf_d_path((struct path *)path, ev->path, sizeof(ev->path));
	bpf_ringbuf_submit(ev, 0);
}

/* The `n`th dentry of `inode` (its names: hardlinks give a file several).
 * `d_alias` sits in a union at the start of `d_u`. */
static __always_inline struct dentry *alias_of(struct inode *inode, int n)
{
	struct hlist_node *node = BPF_CORE_READ(inode, i_dentry.first);

	if (n && node)
		node = BPF_CORE_READ(node, next);
	return node ? (void *)node - bpf_core_field_offset(struct dentry, d_u) : NULL;
}

/*
 * An open through a path whose dentry is not the opened inode's: a stacked
 * filesystem opening the real file under its own path (overlayfs before
 * Linux 6.7; from 6.7 the path is the real one). The overlay's own file was
 * judged by the overlay's path when it was opened, just before; this open is
 * judged by the real file's names, with no mount to cross (the real
 * filesystem's root is the top: a protected directory's mounts are subtree
 * roots of their own, see fileguard.rs).
 */
static __always_inline int stacked(struct dentry *d, struct inode *inode)
{
	return BPF_CORE_READ(d, d_inode) != inode && have_placed_forms();
}

/*
 * The verdict of an open, kept per inode (inode storage) so that opening the
 * same file again costs a lookup instead of a judgement. A cached verdict
 * holds while nothing it depends on changed:
 * - the dentry and mount it was judged through (another name or mount of
 *   the same inode is judged afresh; a new name that reuses a freed
 *   dentry's address is instantiated, and `d_instantiate` drops the
 *   inode's verdict);
 * - the policy generation, which userspace bumps after changing the maps;
 * - the kernel's rename and mount sequence counts: the first word of the
 *   seqlocks `rename_lock` (written around every d_move: renames, and
 *   reconnections of disconnected dentries) and `mount_lock` (every change
 *   of a mount tree). A judgement stores its verdict only when the counts
 *   were even and the same before and after it, as the kernel's own path
 *   walks check them.
 * Entries are written without a lock (5.10 has no spin locks for LSM
 * programs): a tag over every field, keyed by a random value of this load,
 * is written last and checked on read, so an entry two writers tore apart
 * is a miss. Without the addresses of the seqlocks (kallsyms hidden) there
 * is no cache, only the judgement.
 */
extern const void rename_lock __ksym __weak;
extern const void mount_lock __ksym __weak;

/* Random, per load: the key of the entries' tags. */
const volatile __u64 cache_key;

struct verdict_cache {
	__u64 dentry;
	__u64 mnt;
	__u64 seqs;
	__u32 gen;
	__u32 rule_idx;
	__u32 action;
	__u32 match;
	__u32 found;
	__u32 _pad;
	__u64 tag;
};

struct {
	__uint(type, BPF_MAP_TYPE_INODE_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct verdict_cache);
} verdicts SEC(".maps");

/* The policy generation: userspace adds 1 after every change of the maps. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} policy_gen SEC(".maps");

/* The stamp of a verdict (see `struct verdict`): the policy generation and
 * the rename and mount counts, read together. Returns 0 (and an odd
 * `seqs`, which no entry holds) when a change is in progress or the counts
 * cannot be read. */
static __always_inline int read_stamp(__u32 *gen, __u64 *seqs)
{
	__u32 zero = 0, rename = 1, mount = 1;
	__u64 *g = bpf_map_lookup_elem(&policy_gen, &zero);

	*seqs = 1;
	if (!g || bpf_probe_read_kernel(&rename, sizeof(rename), &rename_lock) ||
	    bpf_probe_read_kernel(&mount, sizeof(mount), &mount_lock) || ((rename | mount) & 1))
		return 0;
	/* 2^32 refreshes would wrap it: more than a monitor's lifetime. */
	*gen = (__u32)*g;
	*seqs = (__u64)rename << 32 | mount;
	return 1;
}

static __always_inline __u64 mix(__u64 h, __u64 x)
{
	h = (h ^ x) * 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 31);
}

static __always_inline __u64 cache_tag(__u64 dentry, __u64 mnt, __u32 gen, __u64 seqs, __u64 rule,
				       __u64 how)
{
	__u64 h = mix(cache_key, dentry);

	h = mix(h, mnt);
	h = mix(h, gen);
	h = mix(h, seqs);
	h = mix(h, rule);
	return mix(h, how);
}

/* 1 when `file`'s inode has a verdict for its dentry and mount (the caller
 * read them already) under the current stamp (put in `v`, settled); 0:
 * judge it, and `v` holds the stamp (an odd `seqs`: do not store the
 * result). */
static __always_inline int cache_lookup(struct file *file, struct dentry *dentry,
					struct mount *mount, struct verdict *v)
{
	__u64 mnt = (__u64)mount, d = (__u64)dentry;
	struct verdict_cache *c;
	__u64 rule, how;

	v->seqs = 1;
	if (!have_placed_forms() || !read_stamp(&v->gen, &v->seqs))
		return 0;
	c = bpf_inode_storage_get(&verdicts, file->f_inode, 0, 0);
	if (!c || c->dentry != d || c->mnt != mnt || c->gen != v->gen || c->seqs != v->seqs)
		return 0;
	rule = (__u64)c->rule_idx << 32 | c->action;
	how = (__u64)c->match << 32 | c->found;
	asm volatile("" ::: "memory");
	if (c->tag != cache_tag(d, mnt, v->gen, v->seqs, rule, how))
		return 0;
	v->rule_idx = rule >> 32;
	v->action = (__u32)rule;
	v->match = how >> 32;
	v->found = (__u32)how;
	return 1;
}

/* Stores a settled verdict when the stamp did not change while it was
 * judged. */
static __always_inline void cache_store(struct file *file, const struct verdict *v)
{
	__u64 mnt = (__u64)mount_of(BPF_CORE_READ(file, f_path.mnt));
	__u64 d = (__u64)BPF_CORE_READ(file, f_path.dentry);
	struct verdict_cache *c;
	__u32 gen = 0;
	__u64 seqs;

	if (v->seqs & 1 || !read_stamp(&gen, &seqs) || gen != v->gen || seqs != v->seqs)
		return;
	c = bpf_inode_storage_get(&verdicts, file->f_inode, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!c)
		return;
	/* The tag last, after a compiler barrier (x86 keeps stores in order):
	 * a reader of a half-written entry sees a tag that does not fit. */
	c->tag = 0;
	asm volatile("" ::: "memory");
	c->dentry = d;
	c->mnt = mnt;
	c->gen = gen;
	c->seqs = seqs;
	c->rule_idx = v->rule_idx;
	c->action = v->action;
	c->match = v->match;
	c->found = v->found;
	asm volatile("" ::: "memory");
	c->tag = cache_tag(d, mnt, gen, seqs, (__u64)v->rule_idx << 32 | v->action,
			   (__u64)v->match << 32 | v->found);
}

/* A dentry now names this inode: forget the inode's verdict (the dentry may
 * sit where a freed one of another name sat). Everywhere, not only in
 * scope: any process can make a name. */
SEC("lsm/d_instantiate")
int BPF_PROG(assay_d_instantiate, struct dentry *dentry, struct inode *inode)
{
	if (have_placed_forms() && inode)
		bpf_inode_storage_delete(&verdicts, inode);
	return 0;
}

static __always_inline int finish_open(struct file *file, struct verdict *v)
{
	if (!v->found)
		return 0;
	report(ASSAY_EV_FILE_OPEN, BPF_CORE_READ(file, f_path.dentry), BPF_CORE_READ(file, f_inode),
	       &file->f_path, v);
	return v->action >= ASSAY_ACT_DENY ? -EPERM : 0;
}

/* Before Linux 5.17: everything on the stack, the walk unrolled, one name of
 * a stacked file judged (a second is undecided). */
SEC("lsm/file_open")
int BPF_PROG(assay_file_open, struct file *file, int ret)
{
	union lookup_key key;
	struct verdict v;
	struct dentry *d;
	struct inode *inode;
	struct mount *mnt;

	/* An earlier LSM already refused: keep its answer. */
	if (ret)
		return ret;
	/* Out of scope: one helper call and a compare. */
	if (ancestor_cgroup_id(target_level) != target_cgid)
		return 0;
	__builtin_memset(&v, 0, sizeof(v));
	mnt = mount_of(BPF_CORE_READ(file, f_path.mnt));
	d = BPF_CORE_READ(file, f_path.dentry);
	inode = BPF_CORE_READ(file, f_inode);
	if (stacked(d, inode)) {
		v.seqs = 1;
		v.undecided = alias_of(inode, 1) != NULL;
		d = alias_of(inode, 0);
		mnt = NULL;
	} else if (cache_lookup(file, d, mnt, &v)) {
		return finish_open(file, &v);
	}
	if (d)
		judge_file(&v, d, inode, mnt, &key, 0);
	else
		v.undecided = 1;
	settle(&v);
	cache_store(file, &v);
	return finish_open(file, &v);
}

/*
 * From Linux 5.17 the verdict and key live in task storage (a task runs one
 * open at a time; the stack is left to the bpf_loop walk), and a stacked
 * file's first two names are judged (a third is undecided).
 */
struct open_scratch {
	union lookup_key key;
	struct verdict v;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct open_scratch);
} open_scratch SEC(".maps");

SEC("lsm/file_open")
int BPF_PROG(assay_file_open_loop, struct file *file, int ret)
{
	struct dentry *d, *dd;
	struct open_scratch *s;
	struct inode *inode;
	struct mount *mnt;
	int i, n = 1;

	if (ret)
		return ret;
	if (ancestor_cgroup_id(target_level) != target_cgid)
		return 0;
	mnt = mount_of(BPF_CORE_READ(file, f_path.mnt));
	d = BPF_CORE_READ(file, f_path.dentry);
	inode = BPF_CORE_READ(file, f_inode);
	s = bpf_task_storage_get(&open_scratch, bpf_get_current_task_btf(), 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	/* No memory for the judgement: the open cannot be judged. */
	if (!s)
		return -ENOMEM;
	__builtin_memset(&s->v, 0, sizeof(s->v));
	if (stacked(d, inode)) {
		s->v.seqs = 1;
		n = 2;
		s->v.undecided =
		    alias_of(inode, 1) && BPF_CORE_READ(alias_of(inode, 1), d_u.d_alias.next);
		mnt = NULL;
	} else if (cache_lookup(file, d, mnt, &s->v)) {
		return finish_open(file, &s->v);
	}
	/* A loop, not inlined copies: one judgement is ~10,000 instructions. */
#pragma clang loop unroll(disable)
	for (i = 0; i < 2; i++) {
		if (i >= n)
			break;
		dd = n == 1 ? d : alias_of(inode, i);
		if (dd)
			judge_file(&s->v, dd, inode, mnt, &s->key, 1);
		else if (!i)
			s->v.undecided = 1;
	}
	settle(&s->v);
	cache_store(file, &s->v);
	return finish_open(file, &s->v);
}

/*
 * The verdict and key of the link and rename programs: two judgements in
 * one program do not fit the 512-byte stack, so they live here, per CPU.
 * A program preempted on its CPU by another run of these (possible on a
 * fully preemptible kernel) must not share them: `busy` counts the runs in
 * progress on the CPU (an atomic add, which every kernel has), and a run
 * that is not alone refuses its move rather than judge with a key another
 * run may overwrite (fail closed; the caller may retry).
 */
struct move_scratch {
	union lookup_key key;
	struct verdict v;
	__u32 busy;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct move_scratch);
} move_scratch SEC(".maps");

/*
 * A link or rename in scope of `d`, a file or a directory, refused when a
 * rule at deny or above covers it where it is (a rename over `d` too: it
 * would replace a protected file with one of the caller's).
 */
static __always_inline int guard_move(__u32 kind, struct dentry *d, struct mount *mnt,
				      struct verdict *v, union lookup_key *key, int looped)
{
	struct inode *inode = BPF_CORE_READ(d, d_inode);

	/* A rename's target that does not exist. */
	if (!inode)
		return 0;
	__builtin_memset(v, 0, sizeof(*v));
	if ((BPF_CORE_READ(inode, i_mode) & S_IFMT) == S_IFDIR)
		judge_dir(v, d, mnt, key, looped);
	else
		judge_file(v, d, inode, mnt, key, looped);
	settle(v);
	if (!v->found || v->action < ASSAY_ACT_DENY)
		return 0;
	report(kind, d, inode, NULL, v);
	return -EPERM;
}

/* `a`, then `b` when given, with the CPU's scratch (see move_scratch). */
static __always_inline int guard_moves(__u32 kind, struct mount *mnt, struct dentry *a,
				       struct dentry *b, int looped)
{
	struct move_scratch *s;
	struct dentry *d;
	__u32 zero = 0;
	int i, ret = -EPERM;

	s = bpf_map_lookup_elem(&move_scratch, &zero);
	if (!s)
		return -EPERM;
	__sync_fetch_and_add(&s->busy, 1);
	if (s->busy == 1) {
		/* A loop, not two inlined copies: one judgement is ~20,000
		 * instructions, and BPF jumps reach only 32,767 either way. */
		ret = 0;
#pragma clang loop unroll(disable)
		for (i = 0; i < 2; i++) {
			if (ret)
				break;
			d = i ? b : a;
			if (d)
				ret = guard_move(kind, d, mnt, &s->v, &s->key, looped);
		}
	}
	__sync_fetch_and_add(&s->busy, -1);
	return ret;
}

/* A link must stay on its mount (EXDEV), so `new_dir`'s mount is the file's.
 * The earlier programs' answer needs no check: a refusal there ends the
 * chain before this one runs. */
static __always_inline int guard_link(struct dentry *old_dentry, const struct path *new_dir,
				      int looped)
{
	if (ancestor_cgroup_id(target_level) != target_cgid)
		return 0;
	return guard_moves(ASSAY_EV_FILE_LINK, mount_of(BPF_CORE_READ(new_dir, mnt)), old_dentry,
			   NULL, looped);
}

SEC("lsm/path_link")
int BPF_PROG(assay_path_link, struct dentry *old_dentry, const struct path *new_dir,
	     struct dentry *new_dentry)
{
	return guard_link(old_dentry, new_dir, 0);
}

SEC("lsm/path_link")
int BPF_PROG(assay_path_link_loop, struct dentry *old_dentry, const struct path *new_dir,
	     struct dentry *new_dentry)
{
	return guard_link(old_dentry, new_dir, 1);
}

/* Renames stay on one mount too. RENAME_EXCHANGE moves both: the target is
 * judged like the source (before Linux 6.0 the hook is also called for the
 * exchange's other direction). */
static __always_inline int guard_rename(const struct path *old_dir, struct dentry *old_dentry,
					struct dentry *new_dentry, int looped)
{
	if (ancestor_cgroup_id(target_level) != target_cgid)
		return 0;
	return guard_moves(ASSAY_EV_FILE_RENAME, mount_of(BPF_CORE_READ(old_dir, mnt)), old_dentry,
			   new_dentry, looped);
}

SEC("lsm/path_rename")
int BPF_PROG(assay_path_rename, const struct path *old_dir, struct dentry *old_dentry,
	     const struct path *new_dir, struct dentry *new_dentry)
{
	return guard_rename(old_dir, old_dentry, new_dentry, 0);
}

SEC("lsm/path_rename")
int BPF_PROG(assay_path_rename_loop, const struct path *old_dir, struct dentry *old_dentry,
	     const struct path *new_dir, struct dentry *new_dentry)
{
	return guard_rename(old_dir, old_dentry, new_dentry, 1);
}
