//! File enforcement with the BPF LSM (`src/bpf/fileguard.bpf.c`).
//!
//! [`compile`] turns the policy's `file_open` rules into the kernel's rule
//! forms (pure data, testable anywhere); [`FileGuard::load`] resolves the
//! literal paths to inodes, loads the program with the scope baked into its
//! read-only data, fills the maps and attaches `lsm/file_open`. Dropping the
//! `FileGuard` detaches it.
//!
//! Kernel forms per [`GlobForm`]:
//! - `Exact(p)`: the inode of `p` (and of its target when `p` is a symlink),
//!   plus the entry `(inode of p's directory, basename)` so a file created
//!   after start, or a replacement renamed over `p`, is matched by name.
//! - `Subtree(d)`: the inode of `d`; the program walks the opened file's
//!   ancestors (up to [`MAX_DEPTH`], crossing mounts upward).
//! - `Basename(n)`, `InDirNamed(d)`, `DirAndBasename{dir, name}`: the opened
//!   file's name and its parent directory's name, compared whole.
//! - `Suffix(s)`: the last `len(s)` bytes of the opened file's name.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::mem::{ManuallyDrop, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject};

use super::fileguard_skel::{FileguardSkel, FileguardSkelBuilder, types};
use crate::policy::model::{Action, GlobForm, Matcher, Rule};

/// Longest file or directory name (NAME_MAX).
pub const NAME_MAX: usize = 255;
/// Longest suffix of a `**/*<suffix>` glob.
pub const SUFFIX_MAX: usize = 32;
/// Distinct suffix lengths across all rules.
pub const MAX_SUFFIX_LENS: usize = 8;
/// `**/<dir>/<name>` pairs across all rules.
pub const MAX_PAIRS: usize = 64;
/// Ancestors a subtree rule looks at (directories, across mounts).
pub const MAX_DEPTH: usize = 32;

const EV_FILE_OPEN: u32 = 3;
const NO_RULE: u32 = u32::MAX;
const NAME_BASE: u32 = 1;
const NAME_DIR: u32 = 2;
const NAME_ENTRY: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum FileGuardError {
    #[error("rule `{rule}`: glob `{glob}` cannot be enforced in the kernel: {reason}")]
    Unsupported {
        rule: String,
        glob: String,
        reason: String,
    },
    #[error("the BPF LSM is not active ({0}); boot with `lsm=...,bpf`")]
    LsmInactive(String),
    #[error("{what}: {source}")]
    Bpf {
        what: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
}

fn bpf(what: &'static str) -> impl FnOnce(libbpf_rs::Error) -> FileGuardError {
    move |source| FileGuardError::Bpf { what, source }
}

/// What one matching rule asks for, as the kernel stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleRef {
    /// Index of the rule in the slice given to [`compile`].
    pub rule_idx: u32,
    pub action: Action,
}

impl RuleRef {
    /// Two rules on one key: the stronger action wins (the kernel does the
    /// same across keys), the earlier rule on a tie.
    fn merge(slot: &mut Option<RuleRef>, new: RuleRef) {
        match slot {
            Some(old) if strength(old.action) >= strength(new.action) => {}
            _ => *slot = Some(new),
        }
    }
}

fn strength(a: Action) -> u32 {
    match a {
        Action::Log => 0,
        Action::Alert => 1,
        Action::Deny => 2,
        Action::TriggerKill => 3,
    }
}

fn action_of(v: u32) -> Option<Action> {
    Some(match v {
        0 => Action::Log,
        1 => Action::Alert,
        2 => Action::Deny,
        3 => Action::TriggerKill,
        _ => return None,
    })
}

/// The file rules in kernel form, before any path is resolved.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    pub exact: BTreeMap<PathBuf, RuleRef>,
    pub subtrees: BTreeMap<PathBuf, RuleRef>,
    pub basenames: BTreeMap<String, RuleRef>,
    pub dirnames: BTreeMap<String, RuleRef>,
    /// `(dir, name)` -> rule; the position is the pair's bit.
    pub pairs: BTreeMap<(String, String), RuleRef>,
    pub suffixes: BTreeMap<String, RuleRef>,
}

fn merge_into<K: Ord>(map: &mut BTreeMap<K, RuleRef>, k: K, r: RuleRef) {
    let mut slot = map.remove(&k);
    RuleRef::merge(&mut slot, r);
    map.insert(k, slot.expect("merge fills the slot"));
}

/// Compiles the `file_open` rules of `rules` (others are skipped; indices
/// stay those of `rules`). Refuses what the kernel program cannot enforce
/// exactly, naming the rule and the glob.
pub fn compile(rules: &[Rule]) -> Result<Plan, FileGuardError> {
    let mut plan = Plan::default();
    for (idx, rule) in rules.iter().enumerate() {
        let Matcher::FileOpen(m) = &rule.matcher else {
            continue;
        };
        let unsupported = |glob: &str, reason: String| FileGuardError::Unsupported {
            rule: rule.id.clone(),
            glob: glob.to_string(),
            reason,
        };
        if let Some(e) = m.except.first() {
            return Err(unsupported(
                &e.text,
                "`except` globs are not enforced in the kernel yet".into(),
            ));
        }
        let r = RuleRef {
            rule_idx: u32::try_from(idx).expect("fewer than 2^32 rules"),
            action: rule.action,
        };
        for g in &m.path_globs {
            let name_ok = |n: &str| -> Result<(), FileGuardError> {
                if n.is_empty() || n.len() > NAME_MAX || n.contains(['/', '\0']) {
                    return Err(unsupported(
                        &g.text,
                        format!("`{n}` is not a file name of 1 to {NAME_MAX} bytes"),
                    ));
                }
                Ok(())
            };
            match &g.form {
                GlobForm::Exact(p) => {
                    absolute(p).map_err(|e| unsupported(&g.text, e))?;
                    merge_into(&mut plan.exact, p.clone(), r);
                }
                GlobForm::Subtree(p) => {
                    absolute(p).map_err(|e| unsupported(&g.text, e))?;
                    merge_into(&mut plan.subtrees, p.clone(), r);
                }
                GlobForm::Basename(n) => {
                    name_ok(n)?;
                    merge_into(&mut plan.basenames, n.clone(), r);
                }
                GlobForm::InDirNamed(d) => {
                    name_ok(d)?;
                    merge_into(&mut plan.dirnames, d.clone(), r);
                }
                GlobForm::DirAndBasename { dir, name } => {
                    name_ok(dir)?;
                    name_ok(name)?;
                    merge_into(&mut plan.pairs, (dir.clone(), name.clone()), r);
                    if plan.pairs.len() > MAX_PAIRS {
                        return Err(unsupported(
                            &g.text,
                            format!("more than {MAX_PAIRS} `**/dir/name` globs in all rules"),
                        ));
                    }
                }
                GlobForm::Suffix(s) => {
                    if s.is_empty() || s.len() > SUFFIX_MAX || s.contains(['/', '\0']) {
                        return Err(unsupported(
                            &g.text,
                            format!("suffix must be 1 to {SUFFIX_MAX} bytes without `/`"),
                        ));
                    }
                    merge_into(&mut plan.suffixes, s.clone(), r);
                    if plan.suffix_lens().len() > MAX_SUFFIX_LENS {
                        return Err(unsupported(
                            &g.text,
                            format!("more than {MAX_SUFFIX_LENS} distinct suffix lengths"),
                        ));
                    }
                }
            }
        }
    }
    Ok(plan)
}

fn absolute(p: &Path) -> Result<(), String> {
    if !p.is_absolute() {
        return Err(format!("{} is not an absolute path", p.display()));
    }
    if p.as_os_str().as_bytes().contains(&0) {
        return Err("path contains NUL".into());
    }
    Ok(())
}

impl Plan {
    /// Distinct suffix lengths, longest first (the program's order).
    pub fn suffix_lens(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.suffixes.keys().map(|s| s.len() as u32).collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        v.dedup();
        v
    }

    /// Each name's bitmask of the pairs it takes part in: (basenames, dirnames).
    fn pair_masks(&self) -> (BTreeMap<&str, u64>, BTreeMap<&str, u64>) {
        let (mut base, mut dir) = (BTreeMap::new(), BTreeMap::new());
        for (bit, (d, n)) in self.pairs.keys().enumerate() {
            *base.entry(n.as_str()).or_insert(0u64) |= 1 << bit;
            *dir.entry(d.as_str()).or_insert(0u64) |= 1 << bit;
        }
        (base, dir)
    }
}

/// An inode as the kernel names it (`s_dev` is `major << 20 | minor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelInode {
    pub dev: u32,
    pub ino: u64,
}

impl KernelInode {
    pub fn from_stat(st: &libc::stat) -> Self {
        let (major, minor) = (libc::major(st.st_dev), libc::minor(st.st_dev));
        KernelInode {
            dev: (major << 20) | minor,
            ino: st.st_ino,
        }
    }

    /// Of `path` itself (`O_PATH|O_NOFOLLOW`), or following a final symlink.
    pub fn of(path: &Path, follow: bool) -> std::io::Result<Self> {
        let c = CString::new(path.as_os_str().as_bytes())?;
        let flags = libc::O_PATH | libc::O_CLOEXEC | if follow { 0 } else { libc::O_NOFOLLOW };
        // SAFETY: c is a valid NUL-terminated string.
        let fd = unsafe { libc::open(c.as_ptr(), flags) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd was just opened and is owned here.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut st = MaybeUninit::<libc::stat>::uninit();
        // SAFETY: fd is open; st is written by fstat on success.
        if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fstat succeeded, so st is initialised.
        let st = unsafe { st.assume_init() };
        Ok(Self::from_stat(&st))
    }

    fn is_symlink(path: &Path) -> bool {
        std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
    }
}

/// A literal path that could not be resolved when the rules were loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    pub rule_idx: u32,
    pub path: PathBuf,
    pub reason: String,
}

/// Which cgroup subtree the program judges: tasks whose cgroup at depth
/// `level` below the cgroup2 root has id `cgroup_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    pub cgroup_id: u64,
    pub level: u32,
}

impl Scope {
    /// The scope of the cgroup directory `dir` under the cgroup2 mount `root`.
    pub fn of_cgroup_dir(root: &Path, dir: &Path) -> std::io::Result<Scope> {
        use std::os::unix::fs::MetadataExt;
        let rel = dir.strip_prefix(root).map_err(|_| {
            std::io::Error::other(format!(
                "{} is not below the cgroup2 mount {}",
                dir.display(),
                root.display()
            ))
        })?;
        Ok(Scope {
            // On cgroup2 a directory's inode number is the cgroup id.
            cgroup_id: std::fs::metadata(dir)?.ino(),
            level: rel.components().count() as u32,
        })
    }
}

/// The maps a `FileGuard` shares with the monitor's other programs.
#[derive(Debug, Clone, Copy)]
pub struct SharedMaps<'a> {
    pub events: BorrowedFd<'a>,
    pub dropped: BorrowedFd<'a>,
}

/// The loaded and attached `lsm/file_open` program. Dropping it detaches.
pub struct FileGuard {
    link: Option<Link>,
    skel: ManuallyDrop<FileguardSkel<'static>>,
    /// The libbpf object storage `skel` borrows; freed after `skel`.
    storage: NonNull<MaybeUninit<OpenObject>>,
    plan: Plan,
    resolved: BTreeMap<KernelInode, RuleRef>,
    unresolved: Vec<Unresolved>,
}

impl Drop for FileGuard {
    fn drop(&mut self) {
        drop(self.link.take());
        // SAFETY: skel is dropped exactly once, here, before the storage it
        // borrows; storage came from Box::into_raw in `load` and nothing
        // else refers to it once skel is gone.
        unsafe {
            ManuallyDrop::drop(&mut self.skel);
            drop(Box::from_raw(self.storage.as_ptr()));
        }
    }
}

/// Whether `bpf` is in the kernel's active LSM list (securityfs).
pub fn bpf_lsm_active() -> Result<(), FileGuardError> {
    const LSM: &str = "/sys/kernel/security/lsm";
    match std::fs::read_to_string(LSM) {
        Ok(s) if s.trim().split(',').any(|l| l == "bpf") => Ok(()),
        Ok(s) => Err(FileGuardError::LsmInactive(format!(
            "active LSMs: {}",
            s.trim()
        ))),
        Err(e) => Err(FileGuardError::LsmInactive(format!(
            "cannot read {LSM}: {e}"
        ))),
    }
}

fn name_key(kind: u32, dir: Option<KernelInode>, name: &str) -> types::name_key {
    let mut k = types::name_key {
        kind,
        ..Default::default()
    };
    if let Some(d) = dir {
        k.dir_ino = d.ino;
        k.dir_dev = d.dev;
    }
    for (dst, b) in k.name.iter_mut().zip(name.as_bytes()) {
        *dst = *b as i8;
    }
    k
}

fn file_rule(r: RuleRef) -> types::file_rule {
    types::file_rule {
        rule_idx: r.rule_idx,
        action: strength(r.action),
    }
}

fn bytes<T: plain::Plain>(v: &T) -> &[u8] {
    // SAFETY: T is a plain C struct from assay.h (see the Plain impls).
    unsafe { plain::as_bytes(v) }
}

impl FileGuard {
    /// Loads and attaches file enforcement for `rules` (the file_open ones;
    /// indices are positions in `rules`) in `scope`. With `shared`, events go
    /// to the monitor's ring buffer and drop counter instead of this
    /// program's own.
    pub fn load(
        rules: &[Rule],
        scope: Scope,
        shared: Option<SharedMaps<'_>>,
    ) -> Result<FileGuard, FileGuardError> {
        let plan = compile(rules)?;
        bpf_lsm_active()?;

        let storage = NonNull::from(Box::leak(Box::new(MaybeUninit::<OpenObject>::uninit())));
        // SAFETY: storage lives until Drop frees it after the skeleton; on
        // an error below it is freed before returning.
        let object: &'static mut MaybeUninit<OpenObject> = unsafe { &mut *storage.as_ptr() };
        let free = |e: FileGuardError| {
            // SAFETY: no skeleton borrows storage any more on this path.
            unsafe { drop(Box::from_raw(storage.as_ptr())) };
            e
        };
        let skel = Self::open_load(object, &plan, scope, shared).map_err(free)?;
        let mut guard = FileGuard {
            link: None,
            skel: ManuallyDrop::new(skel),
            storage,
            plan,
            resolved: BTreeMap::new(),
            unresolved: Vec::new(),
        };
        guard.fill()?;
        let link = guard
            .skel
            .progs
            .assay_file_open
            .attach_lsm()
            .map_err(bpf("attaching lsm/file_open"))?;
        guard.link = Some(link);
        Ok(guard)
    }

    fn open_load(
        object: &'static mut MaybeUninit<OpenObject>,
        plan: &Plan,
        scope: Scope,
        shared: Option<SharedMaps<'_>>,
    ) -> Result<FileguardSkel<'static>, FileGuardError> {
        let mut open = FileguardSkelBuilder::default()
            .open(object)
            .map_err(bpf("opening the fileguard BPF object"))?;
        let ro = open
            .maps
            .rodata_data
            .as_deref_mut()
            .expect("fileguard has read-only data");
        ro.target_cgid = scope.cgroup_id;
        ro.target_level = scope.level;
        ro.have_inodes = 1;
        ro.have_entries = u8::from(!plan.exact.is_empty());
        ro.have_basenames = u8::from(!plan.basenames.is_empty() || !plan.pairs.is_empty());
        ro.have_dirnames = u8::from(!plan.dirnames.is_empty() || !plan.pairs.is_empty());
        ro.have_pairs = u8::from(!plan.pairs.is_empty());
        ro.have_subtrees = u8::from(!plan.subtrees.is_empty());
        for (dst, len) in ro.suffix_lens.iter_mut().zip(plan.suffix_lens()) {
            *dst = len;
        }
        if let Some(s) = shared {
            open.maps
                .events
                .reuse_fd(s.events)
                .map_err(bpf("sharing the events ring buffer"))?;
            open.maps
                .dropped
                .reuse_fd(s.dropped)
                .map_err(bpf("sharing the drop counter"))?;
        }
        open.load()
            .map_err(bpf("loading lsm/file_open (verifier or kernel refused it)"))
    }

    fn put<K: plain::Plain, V: plain::Plain>(
        map: &libbpf_rs::MapMut<'_>,
        k: &K,
        v: &V,
    ) -> Result<(), FileGuardError> {
        map.update(bytes(k), bytes(v), MapFlags::ANY)
            .map_err(bpf("filling a fileguard map"))
    }

    fn fill(&mut self) -> Result<(), FileGuardError> {
        let maps = &self.skel.maps;
        let plan = &self.plan;
        let (base_masks, dir_masks) = plan.pair_masks();
        let name_rule = |r: Option<&RuleRef>, mask: u64| types::name_rule {
            rule: r.map_or(
                types::file_rule {
                    rule_idx: NO_RULE,
                    action: 0,
                },
                |r| file_rule(*r),
            ),
            pair_mask: mask,
        };
        let mut names: Vec<&str> = plan.basenames.keys().map(String::as_str).collect();
        names.extend(base_masks.keys());
        names.sort_unstable();
        names.dedup();
        for n in names {
            let v = name_rule(
                plan.basenames.get(n),
                base_masks.get(n).copied().unwrap_or(0),
            );
            Self::put(&maps.names, &name_key(NAME_BASE, None, n), &v)?;
        }
        let mut dirs: Vec<&str> = plan.dirnames.keys().map(String::as_str).collect();
        dirs.extend(dir_masks.keys());
        dirs.sort_unstable();
        dirs.dedup();
        for d in dirs {
            let v = name_rule(plan.dirnames.get(d), dir_masks.get(d).copied().unwrap_or(0));
            Self::put(&maps.names, &name_key(NAME_DIR, None, d), &v)?;
        }
        for (bit, r) in plan.pairs.values().enumerate() {
            Self::put(&maps.pairs, &(1u64 << bit), &file_rule(*r))?;
        }
        for (s, r) in &plan.suffixes {
            let mut k = types::suffix_key {
                len: s.len() as u32,
                ..Default::default()
            };
            for (dst, b) in k.tail.iter_mut().zip(s.as_bytes()) {
                *dst = *b as i8;
            }
            Self::put(&maps.suffixes, &k, &file_rule(*r))?;
        }
        self.refresh()?;
        Ok(())
    }

    /// Resolves every literal path again and adds inodes that are new (a
    /// file created after start, or renamed over a protected path and then
    /// hardlinked elsewhere). Inodes already present stay. Returns how many
    /// keys were added. The monitor may call it at any time.
    pub fn refresh(&mut self) -> Result<usize, FileGuardError> {
        let mut added = 0;
        let mut unresolved = Vec::new();
        let mut put_inode = |map: &libbpf_rs::MapMut<'_>,
                             resolved: &mut BTreeMap<KernelInode, RuleRef>,
                             i: KernelInode,
                             r: RuleRef|
         -> Result<(), FileGuardError> {
            let mut slot = resolved.get(&i).copied();
            RuleRef::merge(&mut slot, r);
            let r = slot.expect("merge fills the slot");
            if resolved.insert(i, r) != Some(r) {
                let k = types::inode_key {
                    ino: i.ino,
                    dev: i.dev,
                    _pad: 0,
                };
                Self::put(map, &k, &file_rule(r))?;
                added += 1;
            }
            Ok(())
        };
        for (path, r) in &self.plan.exact {
            match KernelInode::of(path, false) {
                Ok(i) => put_inode(&self.skel.maps.inodes, &mut self.resolved, i, *r)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => unresolved.push(Unresolved {
                    rule_idx: r.rule_idx,
                    path: path.clone(),
                    reason: e.to_string(),
                }),
            }
            if KernelInode::is_symlink(path)
                && let Ok(i) = KernelInode::of(path, true)
            {
                put_inode(&self.skel.maps.inodes, &mut self.resolved, i, *r)?;
            }
            // The entry (directory, name) catches a file created or renamed
            // into place later. Keys are idempotent: rewriting is harmless.
            let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
                continue;
            };
            match KernelInode::of(parent, true) {
                Ok(dir) => {
                    let k = name_key(NAME_ENTRY, Some(dir), &lossless(name));
                    Self::put(&self.skel.maps.names, &k, &name_rule_of(*r))?;
                }
                Err(e) => unresolved.push(Unresolved {
                    rule_idx: r.rule_idx,
                    path: parent.to_path_buf(),
                    reason: format!("directory of {}: {e}", path.display()),
                }),
            }
        }
        let mut subtree_resolved = BTreeMap::new();
        for (path, r) in &self.plan.subtrees {
            match KernelInode::of(path, true) {
                Ok(i) => {
                    let k = types::inode_key {
                        ino: i.ino,
                        dev: i.dev,
                        _pad: 0,
                    };
                    let mut slot = subtree_resolved.get(&i).copied();
                    RuleRef::merge(&mut slot, *r);
                    let r = slot.expect("merge fills the slot");
                    subtree_resolved.insert(i, r);
                    Self::put(&self.skel.maps.subtrees, &k, &file_rule(r))?;
                }
                Err(e) => unresolved.push(Unresolved {
                    rule_idx: r.rule_idx,
                    path: path.clone(),
                    reason: e.to_string(),
                }),
            }
        }
        self.unresolved = unresolved;
        Ok(added)
    }

    /// Watches the directories the literal paths live in (or, when missing,
    /// their nearest existing ancestor) for entries created or renamed in.
    /// When [`PathWatch::wait`] says something changed, call `watch()` again
    /// and then [`refresh`](Self::refresh): arming before refreshing leaves
    /// no change unseen.
    pub fn watch(&self) -> std::io::Result<PathWatch> {
        PathWatch::for_plan(&self.plan)
    }

    /// Literal paths (files' directories, subtree roots) that did not
    /// resolve at the last [`refresh`](Self::refresh): not enforced.
    pub fn unresolved(&self) -> &[Unresolved] {
        &self.unresolved
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// This program's ring buffer (the shared one when given to `load`).
    pub fn events_map(&self) -> &libbpf_rs::MapMut<'static> {
        &self.skel.maps.events
    }

    /// This program's per-CPU drop counter (the shared one when given).
    pub fn dropped_map(&self) -> &libbpf_rs::MapMut<'static> {
        &self.skel.maps.dropped
    }

    /// Instructions the verifier processed (0 before Linux 5.16).
    pub fn verified_insns(&self) -> Result<u32, FileGuardError> {
        let fd = self.skel.progs.assay_file_open.as_fd();
        let id = libbpf_rs::Program::id_from_fd(fd).map_err(bpf("reading the program's id"))?;
        libbpf_rs::query::ProgInfoIter::default()
            .find(|i| i.id == id)
            .map(|i| i.verified_insns)
            .ok_or(FileGuardError::Bpf {
                what: "finding the loaded program",
                source: libbpf_rs::Error::from(std::io::Error::from(std::io::ErrorKind::NotFound)),
            })
    }
}

/// An inotify watch on the directories of a [`FileGuard`]'s literal paths.
pub struct PathWatch {
    fd: OwnedFd,
}

impl PathWatch {
    /// The watch for the literal paths of `plan` (see [`FileGuard::watch`]).
    pub fn for_plan(plan: &Plan) -> std::io::Result<PathWatch> {
        // SAFETY: inotify_init1 has no preconditions.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd was just created and is owned here.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let dirs = plan
            .exact
            .keys()
            .filter_map(|p| p.parent())
            .chain(plan.subtrees.keys().map(PathBuf::as_path));
        let mut watched = std::collections::BTreeSet::new();
        for dir in dirs {
            // The directory itself if it exists (a file appears in it), and
            // its parent (the directory is replaced), else the nearest
            // existing ancestor (the directory is created).
            let mut targets = vec![dir];
            targets.extend(dir.parent());
            for t in targets {
                let Some(existing) = t.ancestors().find(|a| a.is_dir()) else {
                    continue;
                };
                if !watched.insert(existing.to_path_buf()) {
                    continue;
                }
                let c = CString::new(existing.as_os_str().as_bytes())?;
                let mask = libc::IN_CREATE
                    | libc::IN_MOVED_TO
                    | libc::IN_MOVED_FROM
                    | libc::IN_DELETE
                    | libc::IN_ONLYDIR;
                // SAFETY: fd is an inotify fd; c is a valid C string.
                if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), mask) } < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
        }
        Ok(PathWatch { fd })
    }

    /// Waits up to `timeout` for a change; true when something changed (the
    /// caller re-arms with [`FileGuard::watch`] and calls `refresh`).
    pub fn wait(&self, timeout: std::time::Duration) -> std::io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return if e.kind() == std::io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            };
        }
        if n == 0 {
            return Ok(false);
        }
        // Drain: the events themselves do not matter, only that one came.
        let mut buf = [0u8; 4096];
        // SAFETY: reading into a live buffer of its own length.
        while unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
        Ok(true)
    }
}

fn name_rule_of(r: RuleRef) -> types::name_rule {
    types::name_rule {
        rule: file_rule(r),
        pair_mask: 0,
    }
}

fn lossless(n: &OsStr) -> String {
    // Names are compared as bytes in the kernel; keys are built from bytes.
    String::from_utf8_lossy(n.as_bytes()).into_owned()
}

/// Which kernel form matched an open (`enum assay_file_match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    Inode,
    Entry,
    Subtree,
    Basename,
    DirName,
    DirAndBasename,
    Suffix,
}

impl MatchKind {
    fn from_raw(v: u32) -> Option<Self> {
        Some(match v {
            1 => MatchKind::Inode,
            2 => MatchKind::Entry,
            3 => MatchKind::Subtree,
            4 => MatchKind::Basename,
            5 => MatchKind::DirName,
            6 => MatchKind::DirAndBasename,
            7 => MatchKind::Suffix,
            _ => return None,
        })
    }
}

/// A decoded `struct file_event`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileEvent {
    pub ts_ns: u64,
    pub cgroup_id: u64,
    pub rule_idx: u32,
    pub action: Action,
    pub pid: u32,
    pub tgid: u32,
    pub comm: String,
    /// Kernel device number (`major << 20 | minor`) and inode of the file.
    pub dev: u32,
    pub ino: u64,
    pub matched: MatchKind,
    /// Basename of the opened file (the kernel does not see the full path).
    pub name: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("file event of {0} bytes is shorter than struct file_event")]
    Short(usize),
    #[error("event kind {0} is not a file event")]
    Kind(u32),
    #[error("unknown action {0} in a file event")]
    Action(u32),
    #[error("unknown match kind {0} in a file event")]
    Match(u32),
}

fn c_string(chars: &[i8]) -> String {
    let b: Vec<u8> = chars
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&b).into_owned()
}

/// Decodes one ring buffer record written by the file_open program.
pub fn decode(data: &[u8]) -> Result<FileEvent, DecodeError> {
    let mut ev = types::file_event::default();
    plain::copy_from_bytes(&mut ev, data).map_err(|_| DecodeError::Short(data.len()))?;
    if ev.hdr.kind != EV_FILE_OPEN {
        return Err(DecodeError::Kind(ev.hdr.kind));
    }
    Ok(FileEvent {
        ts_ns: ev.hdr.ts_ns,
        cgroup_id: ev.hdr.cgroup_id,
        rule_idx: ev.hdr.rule_idx,
        action: action_of(ev.hdr.action).ok_or(DecodeError::Action(ev.hdr.action))?,
        pid: ev.hdr.pid,
        tgid: ev.hdr.tgid,
        comm: c_string(&ev.hdr.comm),
        dev: ev.dev,
        ino: ev.ino,
        matched: MatchKind::from_raw(ev.r#match).ok_or(DecodeError::Match(ev.r#match))?,
        name: c_string(&ev.name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::{FileMatch, PathGlob};
    use crate::severity::Severity;

    fn rule(id: &str, action: Action, globs: &[GlobForm]) -> Rule {
        Rule {
            id: id.into(),
            severity: Severity::High,
            action,
            matcher: Matcher::FileOpen(FileMatch {
                path_globs: globs
                    .iter()
                    .map(|f| PathGlob {
                        text: format!("{f:?}"),
                        form: f.clone(),
                    })
                    .collect(),
                except: vec![],
            }),
        }
    }

    #[test]
    fn each_form_lands_in_its_table_and_the_stronger_action_wins() {
        let rules = [
            rule(
                "log",
                Action::Log,
                &[
                    GlobForm::Exact("/etc/shadow".into()),
                    GlobForm::Basename(".env".into()),
                ],
            ),
            rule(
                "deny",
                Action::Deny,
                &[
                    GlobForm::Exact("/etc/shadow".into()),
                    GlobForm::Subtree("/data".into()),
                    GlobForm::InDirNamed(".ssh".into()),
                    GlobForm::DirAndBasename {
                        dir: ".aws".into(),
                        name: "credentials".into(),
                    },
                    GlobForm::Suffix(".pem".into()),
                    GlobForm::Suffix(".key".into()),
                    GlobForm::Suffix(".p12x".into()),
                ],
            ),
        ];
        let p = compile(&rules).unwrap();
        let deny = RuleRef {
            rule_idx: 1,
            action: Action::Deny,
        };
        assert_eq!(p.exact[Path::new("/etc/shadow")], deny);
        assert_eq!(p.basenames[".env"].rule_idx, 0);
        assert_eq!(p.subtrees[Path::new("/data")], deny);
        assert_eq!(p.dirnames[".ssh"], deny);
        assert_eq!(p.pairs[&(".aws".into(), "credentials".into())], deny);
        assert_eq!(p.suffix_lens(), vec![5, 4]);
        let (b, d) = p.pair_masks();
        assert_eq!(b["credentials"] & d[".aws"], 1);
    }

    #[test]
    fn non_file_rules_keep_their_index() {
        let mut rules = vec![Rule {
            id: "net".into(),
            severity: Severity::Low,
            action: Action::Deny,
            matcher: Matcher::NetConnect(crate::policy::model::NetMatch {
                ports: vec![22],
                outside_cidrs: vec![],
                protocols: vec![],
                loopback: crate::policy::model::Loopback::Match,
            }),
        }];
        rules.push(rule(
            "f",
            Action::TriggerKill,
            &[GlobForm::Basename("x".into())],
        ));
        let p = compile(&rules).unwrap();
        assert_eq!(p.basenames["x"].rule_idx, 1);
    }

    #[test]
    fn unenforceable_globs_are_refused_with_the_rule_named() {
        let cases = [
            GlobForm::Suffix("x".repeat(SUFFIX_MAX + 1)),
            GlobForm::Basename("a/b".into()),
            GlobForm::Basename("n".repeat(NAME_MAX + 1)),
            GlobForm::Exact("relative/path".into()),
        ];
        for form in cases {
            let err =
                compile(&[rule("r1", Action::Deny, std::slice::from_ref(&form))]).unwrap_err();
            assert!(err.to_string().contains("rule `r1`"), "{form:?}: {err}");
        }
        let many: Vec<GlobForm> = (1..=MAX_SUFFIX_LENS + 1)
            .map(|n| GlobForm::Suffix("s".repeat(n)))
            .collect();
        assert!(compile(&[rule("r", Action::Deny, &many)]).is_err());
        let pairs: Vec<GlobForm> = (0..=MAX_PAIRS)
            .map(|n| GlobForm::DirAndBasename {
                dir: format!("d{n}"),
                name: "n".into(),
            })
            .collect();
        assert!(compile(&[rule("r", Action::Deny, &pairs)]).is_err());
    }

    #[test]
    fn except_is_refused_not_ignored() {
        let mut r = rule("r", Action::Deny, &[GlobForm::Basename(".env".into())]);
        if let Matcher::FileOpen(m) = &mut r.matcher {
            m.except.push(PathGlob {
                text: "**/.env.example".into(),
                form: GlobForm::Basename(".env.example".into()),
            });
        }
        assert!(matches!(
            compile(&[r]),
            Err(FileGuardError::Unsupported { .. })
        ));
    }

    #[test]
    fn kernel_device_encoding() {
        // SAFETY: zeroed stat is a valid value of a plain C struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        st.st_dev = libc::makedev(259, 3);
        st.st_ino = 42;
        let i = KernelInode::from_stat(&st);
        assert_eq!(i.dev, (259 << 20) | 3);
        assert_eq!(i.ino, 42);
        st.st_dev = libc::makedev(8, 0x1234);
        assert_eq!(KernelInode::from_stat(&st).dev, (8 << 20) | 0x1234);
    }

    #[test]
    fn decode_round_trip_and_errors() {
        let mut ev = types::file_event::default();
        ev.hdr.kind = EV_FILE_OPEN;
        ev.hdr.action = 2;
        ev.hdr.rule_idx = 4;
        ev.hdr.tgid = 77;
        ev.r#match = 3;
        ev.ino = 9;
        ev.dev = 1 << 20;
        for (d, s) in ev.name.iter_mut().zip(b"id_ed25519") {
            *d = *s as i8;
        }
        for (d, s) in ev.hdr.comm.iter_mut().zip(b"cat") {
            *d = *s as i8;
        }
        let e = decode(bytes(&ev)).unwrap();
        assert_eq!(e.action, Action::Deny);
        assert_eq!(e.matched, MatchKind::Subtree);
        assert_eq!(e.name, "id_ed25519");
        assert_eq!(e.comm, "cat");
        assert_eq!((e.tgid, e.rule_idx, e.ino), (77, 4, 9));
        assert_eq!(decode(&bytes(&ev)[..10]), Err(DecodeError::Short(10)));
        ev.hdr.kind = 1;
        assert_eq!(decode(bytes(&ev)), Err(DecodeError::Kind(1)));
    }

    #[test]
    fn path_watch_sees_a_missing_directory_appear() {
        let base = std::env::temp_dir().join(format!("assay-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let p = compile(&[rule(
            "r",
            Action::Deny,
            &[GlobForm::Exact(base.join("missing/deeper/secret"))],
        )])
        .unwrap();
        let w = PathWatch::for_plan(&p).unwrap();
        assert!(!w.wait(std::time::Duration::from_millis(10)).unwrap());
        // Re-armed after each change, it follows the path as it appears.
        std::fs::create_dir(base.join("missing")).unwrap();
        assert!(w.wait(std::time::Duration::from_secs(2)).unwrap());
        let w = PathWatch::for_plan(&p).unwrap();
        std::fs::create_dir(base.join("missing/deeper")).unwrap();
        assert!(w.wait(std::time::Duration::from_secs(2)).unwrap());
        let w = PathWatch::for_plan(&p).unwrap();
        std::fs::write(base.join("missing/deeper/secret"), b"x").unwrap();
        assert!(w.wait(std::time::Duration::from_secs(2)).unwrap());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn lsm_probe_names_what_is_missing() {
        // The host kernel of this project's CI has no bpf in lsm=; either way
        // the answer must say what it saw.
        if let Err(e) = bpf_lsm_active() {
            assert!(e.to_string().contains("lsm="), "{e}");
        }
    }
}
