//! File enforcement with the BPF LSM (`src/bpf/fileguard.bpf.c`).
//!
//! [`compile`] turns the policy's `file_open` rules into the kernel's rule
//! forms (pure data, testable anywhere); [`FileGuard::load`] resolves the
//! literal paths to inodes, loads the program with the scope baked into its
//! read-only data, fills the maps and attaches `lsm/file_open`. It keeps the
//! link and handles of the maps it refreshes, not the skeleton; dropping the
//! `FileGuard` detaches it.
//!
//! Kernel forms per [`GlobForm`]:
//! - `Exact(p)`: the inode of `p` (and of its target when `p` is a symlink),
//!   plus the entry `(inode of p's directory, basename)` so a file created
//!   after start, or a replacement renamed over `p`, is matched by name.
//! - `Subtree(d)`: the inode of `d`; the program walks the opened file's
//!   ancestors (up to [`MAX_WALK`] with `bpf_loop`, [`MAX_DEPTH`] without,
//!   crossing mounts upward; deeper is undecided).
//! - `Basename(n)`, `InDirNamed(d)`, `DirAndBasename{dir, name}`: the opened
//!   file's name and its parent directory's name, compared whole.
//! - `Suffix(s)`: the last `len(s)` bytes of the opened file's name.
//! - `Anchored{dir, components}`: the names of the opened file and its
//!   ancestors, level by level, and the inode of `dir` exactly
//!   `components.len()` levels up. Files that match when the rules are
//!   (re)loaded are also resolved to inodes, which covers paths that reach
//!   them through a symlinked directory or a bind mount.
//!
//! A rule with an `except` list is "gated": its keys set its bit instead of
//! naming it, its except globs' keys set the same bit as an exemption, and
//! the program picks the strongest gated rule left after every lookup (see
//! `struct file_rule` in `assay.h`).

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, MapHandle};

use super::cgroup::Scope;
use super::compile::action_code;
use super::fileguard_skel::{FileguardSkelBuilder, types};
use super::netguard::{DEFAULT_RINGBUF_BYTES, Links, LoadError, NewPins};
use super::ringbuf::SharedMaps;
use crate::policy::model::{Action, GlobForm, Rule};

pub use crate::policy::fileplan::*;

use types::{assay_limit as limit, assay_name_kind as name_kind};

// The policy's plan is checked against the kernel program's limits without
// the skeleton (it builds without clang); these tie each copy to assay.h.
const _: () = {
    assert!(NAME_MAX + 1 == limit::ASSAY_NAME_LEN.0 as usize);
    assert!(SUFFIX_MAX == limit::ASSAY_SUFFIX_LEN.0 as usize);
    assert!(MAX_SUFFIX_LENS == limit::ASSAY_MAX_SUFFIX_LENS.0 as usize);
    assert!(MAX_PAIRS == limit::ASSAY_MAX_PAIRS.0 as usize);
    assert!(MAX_DEPTH == limit::ASSAY_MAX_DEPTH.0 as usize);
    assert!(MAX_WALK == limit::ASSAY_MAX_WALK.0 as usize);
    assert!(MAX_PATTERN_DEPTH == limit::ASSAY_MAX_PATTERN_DEPTH.0 as usize);
    assert!(MAX_PATTERNS == limit::ASSAY_MAX_PATTERNS.0 as usize);
    assert!(MAX_GATED == limit::ASSAY_MAX_GATED.0 as usize);
};

/// Files an anchored glob is expanded to when the rules are (re)loaded;
/// beyond it the kernel's name matching alone enforces the glob.
const MAX_EXPANDED: usize = 4096;

/// `rule_idx` of a map value that only carries masks.
const NO_RULE: u32 = types::assay_rule_ref::ASSAY_NO_RULE.0;

#[derive(Debug, thiserror::Error)]
pub enum FileGuardError {
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    #[error("the BPF LSM is not active ({0}); boot with `lsm=...,bpf`")]
    LsmInactive(String),
    #[error("{what}: {source}")]
    Bpf {
        what: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error(transparent)]
    Shared(#[from] LoadError),
}

/// The file programs' link pins, next to netguard's: the open hook, and the
/// link and rename hooks that keep files under their rules.
pub const LINK_PINS: [&str; 4] = [
    "assay_file_open",
    "assay_path_link",
    "assay_path_rename",
    "assay_d_instantiate",
];

fn bpf(what: &'static str) -> impl FnOnce(libbpf_rs::Error) -> FileGuardError {
    move |source| FileGuardError::Bpf { what, source }
}

/// The existing files an anchored glob names, found by walking the
/// filesystem (following symlinks and mounts like any path lookup): at most
/// `budget` paths per level, and `budget` is decreased by the files found.
fn expand(dir: &Path, components: &[String], budget: &mut usize) -> Vec<PathBuf> {
    let mut level = vec![dir.to_path_buf()];
    for (i, c) in components.iter().enumerate() {
        let last = i + 1 == components.len();
        let keep = |p: &Path| {
            if last {
                std::fs::symlink_metadata(p).is_ok()
            } else {
                p.is_dir()
            }
        };
        let mut next = Vec::new();
        'dirs: for d in &level {
            if c != GlobForm::ANY {
                let p = d.join(c);
                if keep(&p) {
                    next.push(p);
                }
            } else if let Ok(rd) = std::fs::read_dir(d) {
                for e in rd.flatten() {
                    if keep(&e.path()) {
                        next.push(e.path());
                    }
                }
            }
            if next.len() >= *budget {
                next.truncate(*budget);
                break 'dirs;
            }
        }
        level = next;
    }
    *budget -= level.len();
    level
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

    /// The inode a symlink at `path` points to; None when `path` is not a
    /// symlink or its target does not resolve.
    fn symlink_target(path: &Path) -> Option<Self> {
        let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        link.then(|| Self::of(path, true).ok()).flatten()
    }
}

/// A literal path that could not be resolved when the rules were loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    pub rule_idx: u32,
    pub path: PathBuf,
    pub reason: String,
}

/// The maps [`FileGuard::refresh`] writes while running (duplicated
/// handles: the skeleton is gone once the program is attached).
struct Maps {
    inodes: MapHandle,
    names: MapHandle,
    subtrees: MapHandle,
    anchors: MapHandle,
    /// The policy generation the program's verdict cache checks: bumped
    /// after every refresh.
    policy_gen: MapHandle,
}

/// The keys of the literal paths: what `refresh` resolves and writes.
struct Keys {
    maps: Maps,
    plan: Plan,
    /// What the `inodes` map holds: resolved once, kept while running.
    resolved: BTreeMap<KernelInode, KeyRules>,
    unresolved: Vec<Unresolved>,
}

/// The loaded and attached `lsm/file_open` program. Dropping it detaches.
pub struct FileGuard {
    /// Hold the programs (and through them every map) in the kernel.
    links: Links,
    keys: Keys,
    shared: SharedMaps,
    prog_id: u32,
    /// Whether events carry the full path (the kernel allows bpf_d_path).
    paths: bool,
    walk: Walk,
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

fn file_rule(k: KeyRules) -> types::file_rule {
    types::file_rule {
        rule_idx: k.rule.map_or(NO_RULE, |r| r.rule_idx),
        action: k.rule.map_or(0, |r| action_code(r.action)),
        gated: k.gated,
        exempt: k.exempt,
    }
}

/// A random key for the verdict cache's tags (see `verdicts` in
/// fileguard.bpf.c): a process in scope cannot forge an entry it cannot tag.
fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most `b.len()` bytes into `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        // No entropy source: the time still differs per load.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        return t ^ u64::from(std::process::id()).rotate_left(32);
    }
    u64::from_ne_bytes(b)
}

fn bytes<T: plain::Plain>(v: &T) -> &[u8] {
    // SAFETY: T is a plain C struct from assay.h (see the Plain impls).
    unsafe { plain::as_bytes(v) }
}

/// How the program walks a file's ancestors (`fileguard.bpf.c` has both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// Unrolled, [`MAX_DEPTH`] ancestors; deeper files are undecided
    /// (kernels before 5.17).
    Unrolled,
    /// `bpf_loop`, [`MAX_WALK`] ancestors: deeper than any path can name.
    Looped,
}

impl Walk {
    /// Asks the kernel for `bpf_loop` (5.17) and task storage (5.11), which
    /// the looped programs need.
    pub fn probe() -> Walk {
        use libbpf_rs::libbpf_sys as sys;
        // SAFETY: probes with no options; each loads and closes a tiny
        // program or map.
        let (helper, storage) = unsafe {
            (
                sys::libbpf_probe_bpf_helper(
                    sys::BPF_PROG_TYPE_SOCKET_FILTER,
                    sys::BPF_FUNC_loop,
                    std::ptr::null(),
                ),
                sys::libbpf_probe_bpf_map_type(sys::BPF_MAP_TYPE_TASK_STORAGE, std::ptr::null()),
            )
        };
        if helper == 1 && storage == 1 {
            Walk::Looped
        } else {
            Walk::Unrolled
        }
    }

    /// The deepest ancestor the walk reaches.
    pub fn depth(self) -> usize {
        match self {
            Walk::Unrolled => MAX_DEPTH,
            Walk::Looped => MAX_WALK,
        }
    }
}

impl FileGuard {
    /// Loads and attaches file enforcement for `rules` (the file_open ones;
    /// indices are positions in `rules`) in `scope`. Events go to `shared`
    /// (the monitor's ring buffer and drop counter), or to maps of its own.
    pub fn load(
        rules: &[Rule],
        scope: &Scope,
        shared: Option<&SharedMaps>,
    ) -> Result<FileGuard, FileGuardError> {
        let plan = compile(rules).map_err(FileGuardError::Unsupported)?;
        bpf_lsm_active()?;
        let shared = match shared {
            Some(s) => s.clone(),
            None => SharedMaps::create(DEFAULT_RINGBUF_BYTES)?,
        };
        // Full paths in events need bpf_d_path, which kernels before 5.11
        // refuse in this hook: load without it there.
        match Self::load_with(plan.clone(), scope, &shared, true) {
            Ok(g) => Ok(g),
            Err(with_paths) => Self::load_with(plan, scope, &shared, false).map_err(|_| with_paths),
        }
    }

    fn load_with(
        plan: Plan,
        scope: &Scope,
        shared: &SharedMaps,
        paths: bool,
    ) -> Result<FileGuard, FileGuardError> {
        let mut storage = MaybeUninit::uninit();
        let mut open = FileguardSkelBuilder::default()
            .open(&mut storage)
            .map_err(bpf("opening the fileguard BPF object"))?;
        // One set of programs loads; the other's map must not be created
        // (task storage does not exist before 5.11).
        let walk = Walk::probe();
        let looped = walk == Walk::Looped;
        {
            let p = &mut open.progs;
            p.assay_file_open.set_autoload(!looped);
            p.assay_path_link.set_autoload(!looped);
            p.assay_path_rename.set_autoload(!looped);
            p.assay_file_open_loop.set_autoload(looped);
            p.assay_path_link_loop.set_autoload(looped);
            p.assay_path_rename_loop.set_autoload(looped);
        }
        open.maps
            .open_scratch
            .set_autocreate(looped)
            .map_err(bpf("configuring the fileguard maps"))?;
        let ro = open
            .maps
            .rodata_data
            .as_deref_mut()
            .expect("fileguard has read-only data");
        ro.target_cgid = scope.cgroup_id;
        ro.target_level = scope.level;
        // LSM programs may always read the current task.
        ro.task_identity = 1;
        ro.have_inodes = 1;
        ro.have_entries = u8::from(!plan.exact.is_empty());
        ro.have_basenames = u8::from(!plan.basenames.is_empty() || !plan.pairs.is_empty());
        ro.have_dirnames = u8::from(!plan.dirnames.is_empty() || !plan.pairs.is_empty());
        ro.have_pairs = u8::from(!plan.pairs.is_empty());
        ro.have_subtrees = u8::from(!plan.subtrees.is_empty());
        ro.have_gated = u8::from(!plan.gated.is_empty());
        ro.want_path = u8::from(paths);
        // Fail closed as a deny at most: an undecided file is no proof that
        // the rule was broken.
        let (undecided_rule, undecided_action) = plan.undecided().map_or((NO_RULE, 0), |r| {
            let action = match r.action {
                Action::TriggerKill => Action::Deny,
                a => a,
            };
            (r.rule_idx, action_code(action))
        });
        ro.undecided_rule = undecided_rule;
        ro.undecided_action = undecided_action;
        ro.pattern_depth = plan.pattern_depth() as u32;
        ro.pattern_any = plan.pattern_any();
        ro.pattern_deeper = plan.pattern_deeper();
        ro.pattern_at = plan.pattern_at();
        // Same length by the assertion on MAX_SUFFIX_LENS above.
        ro.cache_key = random_u64();
        for (dst, len) in ro.suffix_lens.iter_mut().zip(plan.suffix_lens()) {
            *dst = len;
        }
        shared.reuse(&mut open.maps.events, &mut open.maps.dropped)?;
        let skel = open
            .load()
            .map_err(bpf("loading lsm/file_open (verifier or kernel refused it)"))?;
        let m = &skel.maps;
        fill_names(&plan, &m.names, &m.pairs, &m.suffixes)?;
        fill_masks(&plan, &m.patterns, &m.gated)?;
        let dup = |map: &libbpf_rs::MapMut<'_>| {
            MapHandle::try_from(map).map_err(bpf("duplicating a fileguard map"))
        };
        let mut keys = Keys {
            maps: Maps {
                inodes: dup(&m.inodes)?,
                names: dup(&m.names)?,
                subtrees: dup(&m.subtrees)?,
                anchors: dup(&m.anchors)?,
                policy_gen: dup(&m.policy_gen)?,
            },
            plan,
            resolved: BTreeMap::new(),
            unresolved: Vec::new(),
        };
        keys.refresh()?;
        let p = &skel.progs;
        let (open_prog, link_prog, rename_prog) = match walk {
            Walk::Unrolled => (&p.assay_file_open, &p.assay_path_link, &p.assay_path_rename),
            Walk::Looped => (
                &p.assay_file_open_loop,
                &p.assay_path_link_loop,
                &p.assay_path_rename_loop,
            ),
        };
        let prog_id = libbpf_rs::Program::id_from_fd(open_prog.as_fd())
            .map_err(bpf("reading the program's id"))?;
        let mut links = Vec::with_capacity(LINK_PINS.len());
        for (name, prog, what) in [
            (LINK_PINS[0], open_prog, "attaching lsm/file_open"),
            (LINK_PINS[1], link_prog, "attaching lsm/path_link"),
            (LINK_PINS[2], rename_prog, "attaching lsm/path_rename"),
            (
                LINK_PINS[3],
                &p.assay_d_instantiate,
                "attaching lsm/d_instantiate",
            ),
        ] {
            links.push((name, prog.attach_lsm().map_err(bpf(what))?));
        }
        // The links hold the programs and their maps; the skeleton may go.
        Ok(FileGuard {
            links: Links(links),
            keys,
            shared: shared.clone(),
            prog_id,
            paths,
            walk,
        })
    }

    /// Resolves every literal path again (and expands anchored globs) and
    /// adds inodes that are new: a file created after start, or renamed over
    /// a protected path and then hardlinked elsewhere. Inodes already present
    /// stay. Returns how many keys were added. The monitor may call it at any
    /// time.
    pub fn refresh(&mut self) -> Result<usize, FileGuardError> {
        self.keys.refresh()
    }

    /// Watches the directories the literal paths live in (or, when missing,
    /// their nearest existing ancestor) for entries created or renamed in.
    /// When [`PathWatch::wait`] says something changed, call `watch()` again
    /// and then [`refresh`](Self::refresh): arming before refreshing leaves
    /// no change unseen.
    pub fn watch(&self) -> std::io::Result<PathWatch> {
        PathWatch::for_plan(&self.keys.plan)
    }

    /// Literal paths (files' directories, subtree roots) that did not
    /// resolve at the last [`refresh`](Self::refresh): not enforced.
    pub fn unresolved(&self) -> &[Unresolved] {
        &self.keys.unresolved
    }

    pub fn plan(&self) -> &Plan {
        &self.keys.plan
    }

    /// Whether this kernel lets events carry the opened file's full path;
    /// without it they carry its basename, device and inode.
    pub fn reports_paths(&self) -> bool {
        self.paths
    }

    /// How deep the loaded programs look for a file's ancestors.
    pub fn walk(&self) -> Walk {
        self.walk
    }

    /// Detaches now (see `NetGuard::detach`).
    pub fn detach(&self) {
        self.links.detach();
    }

    /// Pins the links under `dir` (bpffs): the programs stay attached, and
    /// enforce, until the pins are removed, even if this process dies.
    pub fn pin(&mut self, dir: &Path, pins: &mut NewPins) -> Result<(), FileGuardError> {
        self.links
            .pin(dir, pins)
            .map_err(|(_, e)| bpf("pinning a fileguard link")(e))
    }

    /// The ring buffer and drop counter this program writes to.
    pub fn shared(&self) -> &SharedMaps {
        &self.shared
    }

    /// This program's ring buffer (the shared one when given to `load`).
    pub fn events_map(&self) -> &MapHandle {
        &self.shared.events
    }

    /// Instructions the verifier processed (0 before Linux 5.16).
    pub fn verified_insns(&self) -> Result<u32, FileGuardError> {
        libbpf_rs::query::ProgInfoIter::default()
            .find(|i| i.id == self.prog_id)
            .map(|i| i.verified_insns)
            .ok_or(FileGuardError::Bpf {
                what: "finding the loaded program",
                source: libbpf_rs::Error::from(std::io::Error::from(std::io::ErrorKind::NotFound)),
            })
    }
}

fn put<K: plain::Plain, V: plain::Plain, M: MapCore>(
    map: &M,
    k: &K,
    v: &V,
) -> Result<(), FileGuardError> {
    map.update(bytes(k), bytes(v), MapFlags::ANY)
        .map_err(bpf("filling a fileguard map"))
}

/// The name, pair and suffix keys: fixed for the program's life.
fn fill_names<M: MapCore>(
    plan: &Plan,
    names_map: &M,
    pairs: &M,
    suffixes: &M,
) -> Result<(), FileGuardError> {
    let (base_masks, dir_masks) = plan.pair_masks();
    let name_rule = |k: Option<&KeyRules>, mask: u64| types::name_rule {
        rule: file_rule(k.copied().unwrap_or_default()),
        mask,
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
        put(
            names_map,
            &name_key(name_kind::ASSAY_NAME_BASE.0, None, n),
            &v,
        )?;
    }
    let mut dirs: Vec<&str> = plan.dirnames.keys().map(String::as_str).collect();
    dirs.extend(dir_masks.keys());
    dirs.sort_unstable();
    dirs.dedup();
    for d in dirs {
        let v = name_rule(plan.dirnames.get(d), dir_masks.get(d).copied().unwrap_or(0));
        put(
            names_map,
            &name_key(name_kind::ASSAY_NAME_DIR.0, None, d),
            &v,
        )?;
    }
    for (bit, k) in plan.pairs.values().enumerate() {
        put(pairs, &(1u64 << bit), &file_rule(*k))?;
    }
    for (s, k) in &plan.suffixes {
        let mut key = types::suffix_key {
            len: s.len() as u32,
            ..Default::default()
        };
        for (dst, b) in key.tail.iter_mut().zip(s.as_bytes()) {
            *dst = *b as i8;
        }
        put(suffixes, &key, &file_rule(*k))?;
    }
    for ((level, n), mask) in plan.pattern_levels() {
        let mut key = name_key(name_kind::ASSAY_NAME_LEVEL.0, None, n);
        key.dir_dev = level;
        put(names_map, &key, &name_rule(None, mask))?;
    }
    Ok(())
}

/// The anchored globs' and gated rules' bits: fixed for the program's life.
fn fill_masks<M: MapCore>(plan: &Plan, patterns: &M, gated: &M) -> Result<(), FileGuardError> {
    for (bit, k) in plan.anchored.values().enumerate() {
        put(patterns, &(1u64 << bit), &file_rule(*k))?;
    }
    for (bit, r) in plan.gated.iter().enumerate() {
        let k = KeyRules {
            rule: Some(*r),
            ..KeyRules::default()
        };
        put(gated, &(1u64 << bit), &file_rule(k))?;
    }
    Ok(())
}

impl Keys {
    /// See [`FileGuard::refresh`].
    fn refresh(&mut self) -> Result<usize, FileGuardError> {
        let mut added = 0;
        let mut unresolved = Vec::new();
        let maps = &self.maps;
        let resolved = &mut self.resolved;
        let mut put_inode = |i: KernelInode, k: KeyRules| -> Result<(), FileGuardError> {
            let mut merged = resolved.get(&i).copied().unwrap_or_default();
            merged.merge(k);
            if resolved.insert(i, merged) != Some(merged) {
                let key = types::inode_key {
                    ino: i.ino,
                    dev: i.dev,
                    _pad: 0,
                };
                put(&maps.inodes, &key, &file_rule(merged))?;
                added += 1;
            }
            Ok(())
        };
        let gated = &self.plan.gated;
        // The rule a key serves, for messages: its own, or a gated one's.
        let rule_of = |k: &KeyRules| {
            let bits = k.gated | k.exempt;
            k.rule
                .or_else(|| (bits != 0).then(|| gated[bits.trailing_zeros() as usize]))
                .map_or(u32::MAX, |r| r.rule_idx)
        };
        for (path, k) in &self.plan.exact {
            match KernelInode::of(path, false) {
                Ok(i) => put_inode(i, *k)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => unresolved.push(Unresolved {
                    rule_idx: rule_of(k),
                    path: path.clone(),
                    reason: e.to_string(),
                }),
            }
            if let Some(i) = KernelInode::symlink_target(path) {
                put_inode(i, *k)?;
            }
            // The entry (directory, name) catches a file created or renamed
            // into place later. Keys are idempotent: rewriting is harmless.
            let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
                continue;
            };
            match KernelInode::of(parent, true) {
                Ok(dir) => {
                    let key = name_key(name_kind::ASSAY_NAME_ENTRY.0, Some(dir), &lossless(name));
                    let v = types::name_rule {
                        rule: file_rule(*k),
                        mask: 0,
                    };
                    put(&maps.names, &key, &v)?;
                }
                Err(e) => unresolved.push(Unresolved {
                    rule_idx: rule_of(k),
                    path: parent.to_path_buf(),
                    reason: format!("directory of {}: {e}", path.display()),
                }),
            }
        }
        let mut budget = MAX_EXPANDED;
        for ((dir, comps), k) in &self.plan.anchored {
            for path in expand(dir, comps, &mut budget) {
                if let Ok(i) = KernelInode::of(&path, false) {
                    put_inode(i, *k)?;
                }
                if let Some(i) = KernelInode::symlink_target(&path) {
                    put_inode(i, *k)?;
                }
            }
        }
        let mut roots: BTreeMap<KernelInode, KeyRules> = BTreeMap::new();
        let mut anchors: BTreeMap<(KernelInode, u32), u64> = BTreeMap::new();
        let subtrees = self.plan.subtrees.iter().map(|(p, k)| (p, k, None));
        let anchored = self
            .plan
            .anchored
            .iter()
            .enumerate()
            .map(|(bit, ((p, c), k))| (p, k, Some((bit, c.len() as u32))));
        for (path, k, pattern) in subtrees.chain(anchored) {
            let i = match KernelInode::of(path, true) {
                Ok(i) => i,
                Err(e) => {
                    unresolved.push(Unresolved {
                        rule_idx: rule_of(k),
                        path: path.clone(),
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            match pattern {
                None => roots.entry(i).or_default().merge(*k),
                Some((bit, depth)) => *anchors.entry((i, depth)).or_insert(0) |= 1 << bit,
            }
        }
        // A filesystem mounted inside a protected directory is protected
        // wherever it is reached (a bind mount of it elsewhere, an overlay
        // over it): its root is a subtree root of the same rules. The walk
        // crosses mounts only through the path a file was opened by.
        let mount_points = std::fs::read_to_string("/proc/self/mountinfo")
            .map(|t| crate::kill_switch::procfs::parse_mount_points(&t))
            .unwrap_or_default();
        for (root, k) in &self.plan.subtrees {
            let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.clone());
            for m in nested_mounts(&root, &mount_points) {
                if let Ok(i) = KernelInode::of(&m, true) {
                    roots.entry(i).or_default().merge(*k);
                }
            }
        }
        for (i, k) in roots {
            let key = types::inode_key {
                ino: i.ino,
                dev: i.dev,
                _pad: 0,
            };
            put(&maps.subtrees, &key, &file_rule(k))?;
        }
        for ((i, depth), mask) in anchors {
            let key = types::anchor_key {
                ino: i.ino,
                dev: i.dev,
                depth,
            };
            put(&maps.anchors, &key, &mask)?;
        }
        self.unresolved = unresolved;
        // Verdicts cached under the old maps are stale now.
        let zero = 0u32.to_ne_bytes();
        let generation = maps
            .policy_gen
            .lookup(&zero, MapFlags::ANY)
            .map_err(bpf("reading the policy generation"))?
            .and_then(|v| v.try_into().ok())
            .map_or(0, u64::from_ne_bytes);
        maps.policy_gen
            .update(&zero, &(generation + 1).to_ne_bytes(), MapFlags::ANY)
            .map_err(bpf("bumping the policy generation"))?;
        Ok(added)
    }
}

/// The mount points strictly below `root` (mountinfo paths are absolute and
/// canonical, like the policy's once resolved).
fn nested_mounts<'a>(
    root: &'a Path,
    mount_points: &'a [String],
) -> impl Iterator<Item = PathBuf> + 'a {
    mount_points
        .iter()
        .map(PathBuf::from)
        .filter(move |m| m != root && m.starts_with(root))
}

/// An inotify watch on the directories of a [`FileGuard`]'s literal paths.
pub struct PathWatch {
    fd: OwnedFd,
    /// `/proc/self/mountinfo`, which polls as changed when the mount table
    /// does (a filesystem mounted inside a subtree root joins its rules).
    mounts: Option<std::fs::File>,
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
            .chain(plan.subtrees.keys().map(PathBuf::as_path))
            .chain(plan.anchored.keys().map(|(d, _)| d.as_path()));
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
        let mounts = if plan.subtrees.is_empty() {
            None
        } else {
            Some(std::fs::File::open("/proc/self/mountinfo")?)
        };
        Ok(PathWatch { fd, mounts })
    }

    /// Waits up to `timeout` for a change; true when something changed (the
    /// caller re-arms with [`FileGuard::watch`] and calls `refresh`).
    pub fn wait(&self, timeout: std::time::Duration) -> std::io::Result<bool> {
        let mut pfds = [
            libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.mounts.as_ref().map_or(-1, |f| f.as_raw_fd()),
                events: libc::POLLPRI,
                revents: 0,
            },
        ];
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: two pollfds (a negative fd is ignored by poll).
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
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

fn lossless(n: &OsStr) -> String {
    // Names are compared as bytes in the kernel; keys are built from bytes.
    String::from_utf8_lossy(n.as_bytes()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::fileplan::test_rule as rule;
    use crate::policy::model::Action;

    #[test]
    fn expand_finds_existing_matches_only() {
        let base = std::env::temp_dir().join(format!("assay-expand-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        for d in ["alice/.aws", "bob/.aws", "carol", "dave/x/.aws"] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        std::fs::write(base.join("alice/.aws/credentials"), b"x").unwrap();
        std::fs::write(base.join("bob/.aws/credentials"), b"x").unwrap();
        std::fs::write(base.join("bob/.aws/config"), b"x").unwrap();
        std::fs::write(base.join("dave/x/.aws/credentials"), b"x").unwrap();
        let comps: Vec<String> = ["*", ".aws", "credentials"].map(String::from).to_vec();
        let mut budget = 100;
        let mut got = expand(&base, &comps, &mut budget);
        got.sort();
        assert_eq!(
            got,
            vec![
                base.join("alice/.aws/credentials"),
                base.join("bob/.aws/credentials")
            ]
        );
        assert_eq!(budget, 98);
        // Bounded at every level: never more than the budget.
        let mut one = 1;
        let n = expand(&base, &comps, &mut one).len();
        assert!(n <= 1 && one == 1 - n);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn key_rules_encode_as_the_kernel_reads_them() {
        let k = KeyRules {
            rule: None,
            gated: 0b100,
            exempt: 0b10,
        };
        let raw = file_rule(k);
        assert_eq!(
            (raw.rule_idx, raw.gated, raw.exempt),
            (NO_RULE, 0b100, 0b10)
        );
        let k = KeyRules {
            rule: Some(RuleRef {
                rule_idx: 7,
                action: Action::TriggerKill,
            }),
            ..KeyRules::default()
        };
        assert_eq!((file_rule(k).rule_idx, file_rule(k).action), (7, 3));
    }

    #[test]
    fn nested_mounts_are_strictly_below_the_root() {
        let points: Vec<String> = ["/", "/data", "/data/m", "/data/m/n", "/database", "/tmp/b"]
            .map(String::from)
            .to_vec();
        let got: Vec<PathBuf> = nested_mounts(Path::new("/data"), &points).collect();
        assert_eq!(got, [PathBuf::from("/data/m"), PathBuf::from("/data/m/n")]);
        assert_eq!(nested_mounts(Path::new("/"), &points).count(), 5);
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
