//! cgroup v2: finding the mount, the monitored scope, and the leaf cgroup that
//! wrapper mode creates (and removes, killing whatever is left, on drop).

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::caps::{self, Cap};

/// Leaf cgroups assay creates are named `<this prefix><pid>`: discovery
/// recognises managed servers by it.
pub const LEAF_PREFIX: &str = "assay-monitor-";

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup2 file system is mounted (checked /proc/self/mountinfo)")]
    NoMount,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0} is not inside the cgroup2 mount {1}")]
    OutsideMount(PathBuf, PathBuf),
    #[error("{path}: still populated after cgroup.kill")]
    StillPopulated { path: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The cgroup v2 mount point, from a mountinfo text.
pub fn cgroup2_mount_in(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        if post.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        pre.split_whitespace()
            .nth(4)
            .map(unescape_mountinfo)
            .map(PathBuf::from)
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn cgroup2_mount() -> Result<PathBuf, CgroupError> {
    let p = Path::new("/proc/self/mountinfo");
    let info = fs::read_to_string(p).map_err(io_err(p))?;
    cgroup2_mount_in(&info).ok_or(CgroupError::NoMount)
}

/// The monitored cgroup subtree: where netguard attaches, and what a global
/// (LSM) program compares against:
/// `bpf_get_current_ancestor_cgroup_id(level) == cgroup_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub path: PathBuf,
    /// The cgroup's id (its inode number in cgroupfs).
    pub cgroup_id: u64,
    /// Depth below the cgroup2 root (the root is level 0).
    pub level: u32,
}

impl Scope {
    pub fn of(path: &Path) -> Result<Scope, CgroupError> {
        let mount = cgroup2_mount()?;
        let path = fs::canonicalize(path).map_err(io_err(path))?;
        let rel = path
            .strip_prefix(&mount)
            .map_err(|_| CgroupError::OutsideMount(path.clone(), mount.clone()))?;
        let meta = fs::metadata(&path).map_err(io_err(&path))?;
        if !path.join("cgroup.procs").exists() {
            return Err(CgroupError::OutsideMount(path, mount));
        }
        Ok(Scope {
            cgroup_id: meta.ino(),
            level: rel.components().count() as u32,
            path,
        })
    }

    /// The value for `struct scope` in assay.h.
    pub fn to_bpf(&self) -> (u64, u32) {
        (self.cgroup_id, self.level)
    }
}

/// A leaf cgroup created for wrapper mode. Dropping it kills anything still
/// inside (`cgroup.kill`) and removes it: nothing keeps running unguarded.
#[derive(Debug)]
pub struct LeafCgroup {
    path: PathBuf,
}

/// Removes the empty leaves of assays that are gone (SIGKILLed before they
/// could clean up), under `root`: `assay-monitor-<pid>[-tag]` whose pid no
/// longer exists. rmdir refuses a cgroup that still holds processes, so a
/// leaf with survivors stays for the operator; a live pid's leaf (even a
/// reused pid's) is never touched. Returns what was removed.
pub fn sweep_stale_leaves(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(root) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(LEAF_PREFIX)) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if Path::new("/proc").join(pid).exists() {
            continue;
        }
        if fs::remove_dir(e.path()).is_ok() {
            removed.push(e.path());
        }
    }
    removed
}

fn populated(cgroup: &Path) -> Result<bool, CgroupError> {
    let p = cgroup.join("cgroup.events");
    let s = fs::read_to_string(&p).map_err(io_err(&p))?;
    Ok(s.lines().any(|l| l.trim() == "populated 1"))
}

/// Kills every process in `cgroup` (and below) and waits (bounded) until it
/// is empty: `cgroup.kill` from Linux 5.14; before, the cgroup is frozen (no
/// fork can race the kill), each process gets SIGKILL (a fatal signal
/// reaches frozen tasks), and the freezer is lifted, until none is left.
pub fn kill_cgroup(cgroup: &Path) -> Result<(), CgroupError> {
    if !populated(cgroup)? {
        return Ok(());
    }
    let kill = cgroup.join("cgroup.kill");
    let by_file = kill.exists();
    if by_file {
        fs::write(&kill, "1").map_err(io_err(&kill))?;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while populated(cgroup)? {
        if Instant::now() > deadline {
            return Err(CgroupError::StillPopulated {
                path: cgroup.to_path_buf(),
            });
        }
        if !by_file {
            signal_all(cgroup)?;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// SIGKILL to every process of `cgroup` and its descendants, frozen while
/// it is sent.
fn signal_all(cgroup: &Path) -> Result<(), CgroupError> {
    let freeze = cgroup.join("cgroup.freeze");
    let _ = fs::write(&freeze, "1");
    for dir in walkdir_cgroups(cgroup) {
        let procs = dir.join("cgroup.procs");
        let list = fs::read_to_string(&procs).map_err(io_err(&procs))?;
        for pid in list.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: plain syscall.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    let _ = fs::write(&freeze, "0");
    Ok(())
}

/// `cgroup` and every cgroup below it.
fn walkdir_cgroups(cgroup: &Path) -> Vec<PathBuf> {
    let mut out = vec![cgroup.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(rd) = fs::read_dir(&out[i]) {
            out.extend(rd.flatten().filter(|e| e.path().is_dir()).map(|e| e.path()));
        }
        i += 1;
    }
    out
}

impl LeafCgroup {
    /// `<cgroup2 mount>/assay-monitor-<pid>`.
    pub fn create() -> Result<LeafCgroup, CgroupError> {
        Self::create_at(format!("{LEAF_PREFIX}{}", std::process::id()))
    }

    /// `<cgroup2 mount>/assay-monitor-<pid>-<tag>`, for several leaves in one
    /// process (tests, benchmarks).
    pub fn create_tagged(tag: &str) -> Result<LeafCgroup, CgroupError> {
        Self::create_at(format!("{LEAF_PREFIX}{}-{tag}", std::process::id()))
    }

    fn create_at(name: String) -> Result<LeafCgroup, CgroupError> {
        let root = cgroup2_mount()?;
        // A user's monitor (file capabilities): the cgroup2 root is root's.
        let _dac = caps::raise(&[Cap::DacOverride]);
        sweep_stale_leaves(&root);
        let path = root.join(name);
        if let Err(e) = fs::create_dir(&path) {
            // A leftover of an earlier assay with the same pid that was
            // SIGKILLed: reuse the name only if it is empty (rmdir refuses
            // a cgroup with processes or children).
            if e.kind() != io::ErrorKind::AlreadyExists || fs::remove_dir(&path).is_err() {
                return Err(io_err(&path)(e));
            }
            fs::create_dir(&path).map_err(io_err(&path))?;
        }
        Ok(LeafCgroup { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn populated(&self) -> Result<bool, CgroupError> {
        populated(&self.path)
    }

    /// Kill every process inside and wait (bounded) until it is empty.
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        kill_cgroup(&self.path)
    }

    fn remove(&self) -> Result<(), CgroupError> {
        let _dac = caps::raise(&[Cap::DacOverride]);
        self.kill_all()?;
        // rmdir can race with the last exiting task being reaped: retry briefly.
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match fs::remove_dir(&self.path) {
                Ok(()) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Err(e) => return Err(io_err(&self.path)(e)),
            }
        }
    }
}

impl Drop for LeafCgroup {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("assay: warning: removing leaf cgroup: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_removes_only_empty_leaves_of_gone_assays() {
        let root = tempfile::tempdir().unwrap();
        let dead = crate::monitor::gone_pid();
        let me = std::process::id();
        let names = [
            format!("{LEAF_PREFIX}{dead}"),
            format!("{LEAF_PREFIX}{dead}-bench"),
            format!("{LEAF_PREFIX}{me}"),
            format!("{LEAF_PREFIX}{dead}-busy"),
            "assay-monitor-x".to_string(),
            "other".to_string(),
        ];
        for n in &names {
            fs::create_dir(root.path().join(n)).unwrap();
        }
        // Not empty: rmdir refuses, as it would for a cgroup with processes.
        fs::create_dir(root.path().join(&names[3]).join("child")).unwrap();
        let mut removed = sweep_stale_leaves(root.path());
        removed.sort();
        let mut want = vec![root.path().join(&names[0]), root.path().join(&names[1])];
        want.sort();
        assert_eq!(removed, want);
        for n in &names[2..] {
            assert!(root.path().join(n).exists(), "{n} kept");
        }
    }

    #[test]
    fn finds_cgroup2_in_hybrid_and_unified_layouts() {
        let hybrid = "25 1 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro\n\
                      41 25 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount_in(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let unified = "30 1 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount_in(unified),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        assert_eq!(
            cgroup2_mount_in("1 1 0:1 / / rw - ext4 /dev/sda rw\n"),
            None
        );
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        let line = "41 25 0:38 / /mnt/my\\040cg rw - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_mount_in(line), Some(PathBuf::from("/mnt/my cg")));
    }
}
