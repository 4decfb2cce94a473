//! Fail closed when the monitor dies. Enforcement lives as long as something
//! holds its BPF links; a monitor that only held them in its own descriptors
//! would take enforcement with it when killed (SIGKILL, OOM), and a process
//! that left its tree (`setsid`) would go on unconfined. So every monitor
//! pins its links, ring buffer and drop counter under
//! `/sys/fs/bpf/assay/<owner>` while it runs ([`Keeper`]): if it dies, the
//! kernel keeps enforcing on the scope. A normal stop removes the pins.
//!
//! What a dead monitor left behind is an [`Orphan`]: [`orphans`] finds them
//! (the owner's pid is gone), [`tidy`] reports and removes one. A wrapper
//! mode orphan's leaf cgroup is killed first (its processes were the dead
//! monitor's command), so nothing runs unconfined for an instant; an attach
//! mode orphan's scope belongs to someone else, so only its pins go (on
//! `assay monitor --cleanup`, or when a new monitor has taken the same
//! cgroup over).

use std::io;
use std::path::{Path, PathBuf};

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::cgroup::{LEAF_PREFIX, cgroup2_mount};
use super::events::{Sink, Summary};
use super::netguard::{self, LoadError};
use super::{Monitor, PinError, Plan, StopError};
use crate::caps::{self, Cap};

/// Where bpffs is expected (and mounted when it is not).
pub const BPFFS: &str = "/sys/fs/bpf";
/// assay's directory in it.
pub const DIR: &str = "assay";

/// Whose pins a directory holds: its name says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A wrapper-mode monitor (its leaf is `assay-monitor-<pid>`).
    Leaf { pid: u32 },
    /// An attach-mode monitor of the cgroup with this id.
    Cgroup { id: u64, pid: u32 },
}

impl Owner {
    pub fn name(&self) -> String {
        match self {
            Owner::Leaf { pid } => format!("leaf-{pid}"),
            Owner::Cgroup { id, pid } => format!("cgroup-{id}-{pid}"),
        }
    }

    pub fn parse(name: &str) -> Option<Owner> {
        if let Some(pid) = name.strip_prefix("leaf-") {
            return Some(Owner::Leaf {
                pid: pid.parse().ok()?,
            });
        }
        let (id, pid) = name.strip_prefix("cgroup-")?.split_once('-')?;
        Some(Owner::Cgroup {
            id: id.parse().ok()?,
            pid: pid.parse().ok()?,
        })
    }

    pub fn pid(&self) -> u32 {
        match self {
            Owner::Leaf { pid } | Owner::Cgroup { pid, .. } => *pid,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FailClosedError {
    #[error("{BPFFS}: no bpf file system, and mounting one failed: {0}")]
    Mount(#[source] io::Error),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Cgroup(#[from] super::cgroup::CgroupError),
    #[error(transparent)]
    Pin(#[from] PinError),
    #[error(transparent)]
    Pins(#[from] LoadError),
    #[error(transparent)]
    Drain(#[from] StopError),
}

fn is_bpffs(p: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statfs is plain data; valid path and out pointer.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return false;
    }
    #[allow(clippy::unnecessary_cast)]
    let magic = st.f_type as i64;
    magic == 0xcafe_4a11
}

/// `/sys/fs/bpf/assay`, with bpffs mounted at `/sys/fs/bpf` first when it
/// is not (systemd mounts it at boot; a bare or container init may not).
/// The mount stays: pins in it are the point.
pub fn root() -> Result<PathBuf, FailClosedError> {
    let _raised = caps::raise(&[Cap::DacOverride, Cap::Chown]);
    let bpffs = Path::new(BPFFS);
    if !is_bpffs(bpffs) {
        let c = |s: &str| std::ffi::CString::new(s).expect("no NUL");
        let (src, target, fstype) = (c("bpf"), c(BPFFS), c("bpf"));
        // SAFETY: valid C strings; no data argument.
        let rc = unsafe {
            libc::mount(
                src.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return Err(FailClosedError::Mount(io::Error::last_os_error()));
        }
    }
    let dir = bpffs.join(DIR);
    match std::fs::create_dir(&dir) {
        Ok(()) => seal(&dir)?,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // A bare bpffs is world-writable (1777): anyone could have made
            // it first. Only root's, writable by root alone, is trusted.
            let md = std::fs::symlink_metadata(&dir).map_err(|source| FailClosedError::Io {
                path: dir.clone(),
                source,
            })?;
            if md.uid() != 0 || md.mode() & 0o022 != 0 {
                seal(&dir)?;
            }
        }
        Err(source) => return Err(FailClosedError::Io { path: dir, source }),
    }
    Ok(dir)
}

/// Root's alone (0700): a user's monitor (file capabilities) creates these
/// as that user, and its command runs as that user too; it must not reach
/// the pins that keep it confined. Root's own already are root's. Done on
/// the directory opened without following links, so a name swapped for a
/// symlink (bpffs's root is world-writable) cannot redirect it.
fn seal(dir: &Path) -> Result<(), FailClosedError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io_err = |source| FailClosedError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let d = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dir)
        .map_err(io_err)?;
    // The mode first: once root's, the creator may no longer change it.
    d.set_permissions(std::fs::Permissions::from_mode(0o700))
        .map_err(io_err)?;
    std::os::unix::fs::fchown(&d, Some(0), Some(0)).map_err(io_err)
}

/// Whether this process may tidy `o`: root may tidy any; a user (file
/// capabilities) only a wrapper-mode orphan whose leaf cgroup that user
/// created (the kernel gives a cgroup made by a user to that user), or
/// whose leaf is gone (emptied and swept: its pins confine nothing).
pub fn may_tidy(o: &Orphan) -> bool {
    // SAFETY: plain syscall.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 {
        return true;
    }
    let Owner::Leaf { pid } = o.owner else {
        return false;
    };
    let Ok(mount) = cgroup2_mount() else {
        return false;
    };
    match std::fs::metadata(mount.join(format!("{LEAF_PREFIX}{pid}"))) {
        Ok(md) => md.uid() == euid,
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    }
}

/// The pins of a running monitor. [`Keeper::release`] (or drop) removes the
/// link pins, so enforcement then ends with the monitor's own links; the
/// map pins go once the events are drained ([`Keeper::finish`]).
#[derive(Debug)]
pub struct Keeper {
    dir: PathBuf,
    released: bool,
}

impl Keeper {
    /// Pins everything `mon` enforces (files included) as `owner`'s.
    pub fn pin(mon: &mut Monitor, owner: Owner) -> Result<Keeper, FailClosedError> {
        let dir = root()?.join(owner.name());
        let _raised = caps::raise(&[Cap::DacOverride, Cap::Chown]);
        if let Err(e) = std::fs::create_dir(&dir) {
            if e.kind() != io::ErrorKind::AlreadyExists {
                return Err(FailClosedError::Io {
                    path: dir,
                    source: e,
                });
            }
            // A dead monitor that had this monitor's pid (reused) left its
            // pins under the same name: never an orphan to `orphans`, since
            // the pid is alive. Its leaf was already dealt with (a populated
            // one stops the leaf's creation), so only the pins go.
            netguard::unpin(&dir)?;
            netguard::unpin_maps(&dir)?;
            std::fs::create_dir(&dir).map_err(|source| FailClosedError::Io {
                path: dir.clone(),
                source,
            })?;
        }
        if let Err(e) = seal(&dir) {
            let _ = std::fs::remove_dir(&dir);
            return Err(e);
        }
        if let Err(e) = mon.pin(&dir, true) {
            let _ = std::fs::remove_dir(&dir);
            return Err(e.into());
        }
        Ok(Keeper {
            dir,
            released: false,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes the link pins: call right before the monitor stops.
    pub fn release(&mut self) -> Result<(), LoadError> {
        let _dac = caps::raise(&[Cap::DacOverride]);
        self.released = true;
        netguard::unpin(&self.dir).map(drop)
    }

    /// Removes the map pins and the directory (after the monitor stopped).
    pub fn finish(mut self) -> Result<(), LoadError> {
        let _dac = caps::raise(&[Cap::DacOverride]);
        self.released = true;
        netguard::unpin(&self.dir)?;
        netguard::unpin_maps(&self.dir).map(drop)
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        let _dac = caps::raise(&[Cap::DacOverride]);
        // Not released: an error path of a live monitor, which is about to
        // detach anyway; leave nothing pinned behind it.
        if !self.released {
            let _ = netguard::unpin(&self.dir);
        }
        let _ = netguard::unpin_maps(&self.dir);
    }
}

/// Pins left by a monitor that is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    pub dir: PathBuf,
    pub owner: Owner,
}

/// The orphans under `root` (see [`root`]): directories whose owner's pid
/// no longer exists. A live pid's pins (even a reused pid's) are never
/// called orphans.
pub fn orphans(root: &Path) -> Vec<Orphan> {
    let _dac = caps::raise(&[Cap::DacOverride]);
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out: Vec<Orphan> = entries
        .flatten()
        .filter_map(|e| {
            let owner = Owner::parse(e.file_name().to_str()?)?;
            let alive = Path::new("/proc").join(owner.pid().to_string()).exists();
            (!alive).then(|| Orphan {
                dir: e.path(),
                owner,
            })
        })
        .collect();
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    out
}

/// What tidying one orphan did.
#[derive(Debug)]
pub struct Tidied {
    pub orphan: Orphan,
    /// Wrapper mode: the dead monitor's leaf, killed and removed.
    pub leaf: Option<PathBuf>,
    /// What the pinned programs produced after their monitor died.
    pub summary: Option<Summary>,
}

/// Kills a wrapper-mode orphan's leaf first, then removes the pins (which
/// ends the enforcement), reading the events left in its ring buffer into
/// `sink` (named with `plan`, the dead monitor's policy, when known).
pub fn tidy(
    o: &Orphan,
    plan: Option<&Plan>,
    sink: Box<dyn Sink>,
) -> Result<Tidied, FailClosedError> {
    let _dac = caps::raise(&[Cap::DacOverride]);
    let leaf = match o.owner {
        Owner::Leaf { pid } => {
            let mount = cgroup2_mount()?;
            let leaf = mount.join(format!("{LEAF_PREFIX}{pid}"));
            kill_leaf(&leaf)?.then_some(leaf)
        }
        Owner::Cgroup { .. } => None,
    };
    netguard::unpin(&o.dir)?;
    let summary = super::drain_pinned(&o.dir, plan, sink)?;
    netguard::unpin_maps(&o.dir)?;
    Ok(Tidied {
        orphan: o.clone(),
        leaf,
        summary,
    })
}

/// Kills everything in `leaf` and removes it; false when it is gone already.
fn kill_leaf(leaf: &Path) -> Result<bool, FailClosedError> {
    if !leaf.exists() {
        return Ok(false);
    }
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FailClosedError::Io { path, source }
    };
    super::cgroup::kill_cgroup(leaf)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match std::fs::remove_dir(leaf) {
            Ok(()) => return Ok(true),
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => return Err(io_err(leaf)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_round_trip_through_directory_names() {
        for o in [Owner::Leaf { pid: 42 }, Owner::Cgroup { id: 8812, pid: 7 }] {
            assert_eq!(Owner::parse(&o.name()), Some(o));
        }
        for bad in [
            "leaf-",
            "leaf-x",
            "cgroup-1",
            "cgroup-a-1",
            "other",
            "events",
        ] {
            assert_eq!(Owner::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_directories_of_gone_pids_are_orphans() {
        let root = tempfile::tempdir().unwrap();
        let dead = crate::monitor::gone_pid();
        let me = std::process::id();
        for n in [
            format!("leaf-{dead}"),
            format!("cgroup-99-{dead}"),
            format!("leaf-{me}"),
            "unrelated".to_string(),
        ] {
            std::fs::create_dir(root.path().join(n)).unwrap();
        }
        let got: Vec<Owner> = orphans(root.path()).into_iter().map(|o| o.owner).collect();
        assert_eq!(
            got,
            [
                Owner::Cgroup { id: 99, pid: dead },
                Owner::Leaf { pid: dead }
            ]
        );
    }
}
