//! cgroup v2 operations: resolve, list members, freeze (owned by a guard that
//! thaws on drop), and `cgroup.kill`.

use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use super::procfs;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup2 filesystem is mounted (looked in /proc/self/mountinfo)")]
    NoMount,
    #[error("{0}: not a cgroup v2 directory (no cgroup.procs)")]
    NotCgroup(PathBuf),
    #[error("{0}: refusing to act on the root cgroup")]
    Root(PathBuf),
    #[error(
        "{0}: assay itself, one of its ancestors, or init runs in this cgroup; refusing to freeze or kill it"
    )]
    ContainsSelf(PathBuf),
    #[error("{0}: {1}")]
    Io(PathBuf, io::Error),
}

/// The cgroup2 mount point, found in /proc/self/mountinfo.
pub fn mount() -> Result<PathBuf, CgroupError> {
    procfs::cgroup2_mount().ok_or(CgroupError::NoMount)
}

/// Resolve a user-given cgroup: an absolute path already on the mount is kept;
/// anything else is taken relative to the mount (the form `/proc/<pid>/cgroup`
/// prints). `..` components are refused so the result stays on the mount.
pub fn resolve(mount: &Path, given: &Path) -> Result<PathBuf, CgroupError> {
    if given
        .components()
        .any(|c| matches!(c, Component::ParentDir))
    {
        return Err(CgroupError::NotCgroup(given.to_path_buf()));
    }
    let dir = if given.starts_with(mount) {
        given.to_path_buf()
    } else {
        mount.join(given.strip_prefix("/").unwrap_or(given))
    };
    if dir == mount {
        return Err(CgroupError::Root(dir));
    }
    if !dir.join("cgroup.procs").is_file() {
        return Err(CgroupError::NotCgroup(dir));
    }
    Ok(dir)
}

/// The directory of a process's cgroup v2 on `mount`.
pub fn dir_of(mount: &Path, pid: i32) -> Option<PathBuf> {
    let rel = procfs::cgroup_v2_of(pid)?;
    Some(mount.join(rel.trim_start_matches('/')))
}

/// True when `pid` (e.g. assay itself) runs in `dir` or below it.
pub fn contains_pid(mount: &Path, dir: &Path, pid: i32) -> bool {
    dir_of(mount, pid).is_some_and(|d| d.starts_with(dir))
}

/// Member pids of `dir`, optionally including every descendant cgroup.
pub fn procs(dir: &Path, recursive: bool) -> Result<Vec<i32>, CgroupError> {
    let text = std::fs::read_to_string(dir.join("cgroup.procs"))
        .map_err(|e| CgroupError::Io(dir.to_path_buf(), e))?;
    let mut out: Vec<i32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    if recursive {
        for sub in children(dir) {
            out.extend(procs(&sub, true)?);
        }
    }
    Ok(out)
}

/// Child cgroups of `dir`.
pub fn children(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

fn write(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    std::fs::write(dir.join(file), value).map_err(|e| CgroupError::Io(dir.join(file), e))
}

/// `cgroup.kill`: SIGKILL every process in the cgroup and its descendants.
pub fn kill(dir: &Path) -> Result<(), CgroupError> {
    write(dir, "cgroup.kill", "1")
}

/// A frozen cgroup; thawed when dropped (whatever happened in between).
#[derive(Debug)]
pub struct Frozen {
    dir: PathBuf,
    /// Whether the kernel reported the whole subtree frozen in time.
    pub complete: bool,
}

impl Frozen {
    /// Freeze `dir` and wait up to `wait` for `cgroup.events` to say `frozen 1`.
    /// Tasks in uninterruptible sleep may take longer; the kill proceeds.
    pub fn freeze(dir: &Path, wait: Duration) -> Result<Frozen, CgroupError> {
        // Refuse cgroups that were already frozen: thawing them on drop would
        // undo someone else's freeze.
        let current = std::fs::read_to_string(dir.join("cgroup.freeze"))
            .map_err(|e| CgroupError::Io(dir.join("cgroup.freeze"), e))?;
        if current.trim() == "1" {
            return Err(CgroupError::Io(
                dir.join("cgroup.freeze"),
                io::Error::other("already frozen by someone else"),
            ));
        }
        write(dir, "cgroup.freeze", "1")?;
        let mut f = Frozen {
            dir: dir.to_path_buf(),
            complete: false,
        };
        let deadline = Instant::now() + wait;
        loop {
            if is_frozen(dir) {
                f.complete = true;
                break;
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(f)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn is_frozen(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.events"))
        .is_ok_and(|t| t.lines().any(|l| l.trim() == "frozen 1"))
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // The cgroup may be gone already (removed after the kill): fine.
        let _ = std::fs::write(self.dir.join("cgroup.freeze"), "0");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_refuses_escapes_and_root() {
        let m = Path::new("/nonexistent-cg-mount");
        assert!(matches!(
            resolve(m, Path::new("/../etc")),
            Err(CgroupError::NotCgroup(_))
        ));
        assert!(matches!(
            resolve(m, Path::new("/")),
            Err(CgroupError::Root(_))
        ));
        assert!(matches!(resolve(m, m), Err(CgroupError::Root(_))));
        assert!(
            matches!(resolve(m, Path::new("/a/b")), Err(CgroupError::NotCgroup(p)) if p == m.join("a/b"))
        );
    }
}
