//! Who did it: the process context of a decision event.
//!
//! The kernel says who at the event (`struct event_hdr`: tgid, uid, gid,
//! parent tgid, and the start times of the process and of its parent). From
//! those, userspace adds what only /proc has (executable, command line), and
//! only when /proc still describes the same process: its start time (field
//! 22 of /proc/PID/stat, in clock ticks of the boot clock) must equal the
//! kernel's, read before and after. A pid that exited, or that was reused
//! by another process, gives no executable rather than the wrong one.
//! An exec keeps the pid and the start time, so the sending thread's name
//! in /proc must also be the kernel's `comm` at the event: a process that
//! has since exec'd another program gives no executable and command line
//! (the parent's executable is believed by pid and start time alone).
//!
//! Everything is cached by identity: a process (pid, start time, name) or
//! a cgroup (id, never reused) already seen costs one hash lookup, no
//! syscall.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::kill_switch::redact::redact_argv;

/// The sender's identity as the kernel recorded it at the event. All zero
/// when the program could not ask (see `task_identity` in common.bpf.h).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub ppid: u32,
    /// Start time of the process (its thread group leader), ns of the boot
    /// clock; 0: not recorded.
    pub start_ns: u64,
    pub parent_start_ns: u64,
}

impl Identity {
    /// Whether the kernel recorded it (a task always has a start time).
    pub fn known(&self) -> bool {
        self.start_ns != 0
    }
}

/// What /proc said about one process, checked against the kernel's
/// identity. `None` fields: /proc no longer (or never) matched.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcessInfo {
    /// Unique per info built in this run: lets an output cache what it
    /// rendered of it.
    pub key: u64,
    pub exe: Option<String>,
    /// The command line, secrets redacted as in incident records.
    pub argv: Option<Vec<String>>,
    pub parent_exe: Option<String>,
}

/// A container runtime recognised in a cgroup path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Docker,
    Containerd,
    CriO,
    Podman,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Podman => "podman",
        }
    }
}

/// The cgroup of an event, named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupInfo {
    pub id: u64,
    /// Relative to the cgroup2 mount, as /proc/PID/cgroup shows it ("/a/b").
    pub path: String,
    pub container: Option<(Runtime, String)>,
    pub systemd_unit: Option<String>,
}

/// What an event carries besides the kernel's record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    pub process: Option<Arc<ProcessInfo>>,
    pub cgroup: Option<Arc<CgroupInfo>>,
}

fn is_hex_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The container a cgroup path shows, if any: the innermost component that
/// names one (systemd and cgroupfs drivers of docker, containerd, CRI-O and
/// podman).
pub fn container_of(path: &str) -> Option<(Runtime, String)> {
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    for (i, c) in comps.iter().enumerate().rev() {
        let stem = c.strip_suffix(".scope").unwrap_or(c);
        for (prefix, rt) in [
            ("docker-", Runtime::Docker),
            ("cri-containerd-", Runtime::Containerd),
            ("crio-", Runtime::CriO),
            ("libpod-", Runtime::Podman),
        ] {
            if let Some(id) = stem.strip_prefix(prefix) {
                if is_hex_id(id) {
                    return Some((rt, id.to_string()));
                }
            }
        }
        // cgroupfs drivers: /docker/<id>, /kubepods/.../<id>, /libpod_parent/<id>.
        if is_hex_id(c) && i > 0 {
            let rt = match comps[0] {
                "docker" => Runtime::Docker,
                "libpod_parent" | "machine.slice" => Runtime::Podman,
                "kubepods" | "kubepods.slice" => Runtime::Containerd,
                _ => continue,
            };
            return Some((rt, c.to_string()));
        }
    }
    None
}

/// The systemd unit a cgroup path shows: its innermost `.service` or
/// `.scope` component.
pub fn systemd_unit_of(path: &str) -> Option<String> {
    path.split('/')
        .rev()
        .find(|c| c.ends_with(".service") || c.ends_with(".scope"))
        .map(str::to_string)
}

/// /proc/PID/stat's start time (field 22), clock ticks since boot.
fn start_ticks(proc: &Path, pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(proc.join(pid.to_string()).join("stat")).ok()?;
    // The command name may hold spaces and parentheses: count from the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// Start time in ns (kernel) to ticks, as the kernel prints it in /proc.
fn to_ticks(ns: u64, hz: u64) -> u64 {
    ns / (1_000_000_000 / hz)
}

/// Resolves and caches the context of events.
pub struct Resolver {
    proc: PathBuf,
    cgroup_root: Option<PathBuf>,
    /// Where a missed cgroup id is searched for (the scope).
    scope: Option<PathBuf>,
    hz: u64,
    /// By (tgid, start, ppid, parent start, thread, comm).
    processes: HashMap<ProcessKey, Arc<ProcessInfo>>,
    /// By (pid, start, and for an event's sender its thread and comm):
    /// executable and argv.
    seen: HashMap<(u32, u64, Option<Sender>), ExeArgv>,
    cgroups: HashMap<u64, Option<Arc<CgroupInfo>>>,
    /// /proc reads made (cache misses), for tests and the bench.
    pub lookups: u64,
}

/// Executable and command line of a process, as far as /proc could tell.
type ExeArgv = (Option<String>, Option<Vec<String>>);

/// The thread that sent an event and its name (`comm`) at the event.
type Sender = (u32, CommKey);

/// A `comm` as a fixed key: no allocation per event on the cached path.
type CommKey = [u8; 16];

fn comm_key(name: &str) -> CommKey {
    let mut k = [0u8; 16];
    let b = name.as_bytes();
    let n = b.len().min(k.len());
    k[..n].copy_from_slice(&b[..n]);
    k
}

type ProcessKey = (u32, u64, u32, u64, Sender);

/// A thread's name as /proc shows it now.
fn thread_comm(proc: &Path, tgid: u32, pid: u32) -> Option<CommKey> {
    let raw = std::fs::read(
        proc.join(tgid.to_string())
            .join("task")
            .join(pid.to_string())
            .join("comm"),
    )
    .ok()?;
    let name = raw.strip_suffix(b"\n").unwrap_or(&raw);
    Some(comm_key(&String::from_utf8_lossy(name)))
}

/// Entries kept per cache; a full cache starts over (a flood of distinct
/// short-lived processes cannot grow it without bound).
const CACHE_MAX: usize = 16_384;

static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

fn read_exe(dir: &Path) -> Option<String> {
    std::fs::read_link(dir.join("exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

fn read_argv(dir: &Path) -> Option<Vec<String>> {
    let raw = std::fs::read(dir.join("cmdline")).ok()?;
    if raw.is_empty() {
        // Kernel threads, zombies: no command line to show.
        return None;
    }
    let args: Vec<String> = raw
        .strip_suffix(&[0])
        .unwrap_or(&raw)
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(redact_argv(&args))
}

impl Resolver {
    /// `scope`: the monitored cgroup directory (cgroups of events are
    /// looked for below it); `proc`: where procfs is mounted.
    pub fn new(scope: Option<&Path>, proc: &Path) -> Resolver {
        let cgroup_root = super::cgroup::cgroup2_mount().ok();
        Resolver {
            proc: proc.to_path_buf(),
            scope: scope.map(Path::to_path_buf),
            cgroup_root,
            hz: clock_ticks(),
            processes: HashMap::new(),
            seen: HashMap::new(),
            cgroups: HashMap::new(),
            lookups: 0,
        }
    }

    /// The context of an event sent by thread `pid` named `comm` of process
    /// `tgid`, with the kernel's `identity`, in cgroup `cgroup_id`.
    pub fn context(
        &mut self,
        tgid: u32,
        pid: u32,
        comm: &str,
        id: &Identity,
        cgroup_id: u64,
    ) -> Context {
        Context {
            process: (tgid != 0 && id.known())
                .then(|| self.process(tgid, (pid, comm_key(comm)), id)),
            cgroup: self.cgroup(cgroup_id),
        }
    }

    /// Adds the process context (from the cache, or /proc when new) to a
    /// decision or guard event; other events are left as they are.
    pub fn enrich(&mut self, ev: &mut super::events::Event) {
        use super::events::Event;
        let (tgid, pid, comm, ident, cgroup_id, ctx) = match ev {
            Event::Net(n) => (n.tgid, n.pid, &n.comm, &n.ident, n.cgroup_id, &mut n.ctx),
            Event::File(f) => (f.tgid, f.pid, &f.comm, &f.ident, f.cgroup_id, &mut f.ctx),
            Event::Tamper(t) => (t.tgid, t.pid, &t.comm, &t.ident, t.cgroup_id, &mut t.ctx),
            _ => return,
        };
        *ctx = self.context(tgid, pid, comm, ident, cgroup_id);
    }

    fn process(&mut self, tgid: u32, sender: Sender, id: &Identity) -> Arc<ProcessInfo> {
        let key = (tgid, id.start_ns, id.ppid, id.parent_start_ns, sender);
        if let Some(p) = self.processes.get(&key) {
            return p.clone();
        }
        let (exe, argv) = self.exe_argv(tgid, id.start_ns, Some(key.4));
        let parent_exe = if id.ppid != 0 && id.parent_start_ns != 0 {
            self.exe_argv(id.ppid, id.parent_start_ns, None).0
        } else {
            None
        };
        let info = Arc::new(ProcessInfo {
            key: NEXT_KEY.fetch_add(1, Ordering::Relaxed),
            exe,
            argv,
            parent_exe,
        });
        if self.processes.len() >= CACHE_MAX {
            self.processes.clear();
        }
        self.processes.insert(key, info.clone());
        info
    }

    /// Executable and command line of (pid, start), when /proc shows that
    /// same process before and after reading them, and, for an event's
    /// sender, that thread still under the name it had (no exec since).
    fn exe_argv(&mut self, pid: u32, start_ns: u64, sender: Option<Sender>) -> ExeArgv {
        let key = (pid, start_ns, sender);
        if let Some(v) = self.seen.get(&key) {
            return v.clone();
        }
        self.lookups += 1;
        let want = to_ticks(start_ns, self.hz);
        let same = |r: &Resolver| start_ticks(&r.proc, pid) == Some(want);
        let named = |r: &Resolver| {
            key.2.as_ref().is_none_or(|(thread, comm)| {
                thread_comm(&r.proc, pid, *thread).as_ref() == Some(comm)
            })
        };
        let v = if same(self) && named(self) {
            let dir = self.proc.join(pid.to_string());
            let (exe, argv) = (read_exe(&dir), read_argv(&dir));
            if same(self) && named(self) {
                (exe, argv)
            } else {
                (None, None)
            }
        } else {
            (None, None)
        };
        if self.seen.len() >= CACHE_MAX {
            self.seen.clear();
        }
        self.seen.insert(key, v.clone());
        v
    }

    /// The cgroup of id `id`: found below the scope (a cgroup's id is its
    /// inode number in cgroupfs, never reused while the system runs).
    pub fn cgroup(&mut self, id: u64) -> Option<Arc<CgroupInfo>> {
        if id == 0 {
            return None;
        }
        if let Some(c) = self.cgroups.get(&id) {
            return c.clone();
        }
        self.lookups += 1;
        let found = match (&self.cgroup_root, &self.scope) {
            (Some(root), Some(scope)) => find_cgroup(scope, id).and_then(|p| {
                let rel = p.strip_prefix(root).ok()?;
                let path = format!("/{}", rel.display());
                Some(Arc::new(CgroupInfo {
                    id,
                    container: container_of(&path),
                    systemd_unit: systemd_unit_of(&path),
                    path,
                }))
            }),
            _ => None,
        };
        if self.cgroups.len() >= CACHE_MAX {
            self.cgroups.clear();
        }
        self.cgroups.insert(id, found.clone());
        found
    }
}

/// The directory below (or at) `dir` whose inode is `id`.
fn find_cgroup(dir: &Path, id: u64) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if std::fs::metadata(&d).ok()?.ino() == id {
            return Some(d);
        }
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
    }
    None
}

/// What every event of a run carries: where and under which policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunInfo {
    pub host: Option<String>,
    pub boot_id: Option<String>,
    pub policy_name: Option<String>,
    pub policy_sha256: Option<String>,
}

impl RunInfo {
    /// This host's name and boot id; the policy's name and the sha256 of
    /// the bytes it was parsed from.
    pub fn of_host(policy_name: Option<String>, policy_text: Option<&[u8]>) -> RunInfo {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|s| s.trim().to_string());
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|s| s.trim().to_string());
        let policy_sha256 = policy_text.map(crate::sha256::hex);
        RunInfo {
            host,
            boot_id,
            policy_name,
            policy_sha256,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn containers_are_named_by_runtime() {
        for (path, rt) in [
            (format!("/system.slice/docker-{ID}.scope"), Runtime::Docker),
            (format!("/docker/{ID}"), Runtime::Docker),
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-{ID}.scope"
                ),
                Runtime::Containerd,
            ),
            (
                format!("/kubepods/burstable/pod1/{ID}"),
                Runtime::Containerd,
            ),
            (
                format!("/kubepods.slice/kubepods-pod1.slice/crio-{ID}.scope"),
                Runtime::CriO,
            ),
            (
                format!(
                    "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container"
                ),
                Runtime::Podman,
            ),
            (format!("/machine.slice/libpod-{ID}.scope"), Runtime::Podman),
        ] {
            assert_eq!(container_of(&path), Some((rt, ID.to_string())), "{path}");
        }
        assert_eq!(container_of("/system.slice/mcp.service"), None);
        assert_eq!(
            container_of("/system.slice/docker-abc.scope"),
            None,
            "not an id"
        );
        assert_eq!(container_of(&format!("/{ID}")), None, "no runtime above");
    }

    #[test]
    fn the_innermost_unit_is_named() {
        assert_eq!(
            systemd_unit_of("/system.slice/mcp.service").as_deref(),
            Some("mcp.service")
        );
        assert_eq!(
            systemd_unit_of("/user.slice/user-1000.slice/user@1000.service/app.slice/run-u7.scope")
                .as_deref(),
            Some("run-u7.scope")
        );
        assert_eq!(systemd_unit_of("/assay-monitor-1"), None);
    }

    fn fake_proc(dir: &Path, pid: u32, ticks: u64, comm: &str, exe: &str, cmdline: &[u8]) {
        let d = dir.join(pid.to_string());
        std::fs::create_dir_all(&d).unwrap();
        // Fields 3..=21 then starttime (22).
        let mut stat = format!("{pid} ({comm}) S");
        for _ in 4..22 {
            stat.push_str(" 0");
        }
        stat.push_str(&format!(" {ticks} 0 0\n"));
        std::fs::write(d.join("stat"), stat).unwrap();
        let _ = std::fs::remove_file(d.join("exe"));
        std::os::unix::fs::symlink(exe, d.join("exe")).unwrap();
        std::fs::write(d.join("cmdline"), cmdline).unwrap();
        let t = d.join("task").join(pid.to_string());
        std::fs::create_dir_all(&t).unwrap();
        std::fs::write(t.join("comm"), format!("{comm}\n")).unwrap();
    }

    #[test]
    fn proc_is_believed_only_when_its_start_time_is_the_kernels() {
        let tmp = tempfile::tempdir().unwrap();
        let hz = clock_ticks();
        let tick_ns = 1_000_000_000 / hz;
        fake_proc(
            tmp.path(),
            40,
            500,
            "a) b",
            "/usr/bin/node",
            b"node\0server.js\0--api-key\0sk-abcdefghijklmnop\0",
        );
        fake_proc(tmp.path(), 1, 1, "init", "/sbin/init", b"/sbin/init\0");
        let mut r = Resolver::new(None, tmp.path());
        let id = Identity {
            uid: 1000,
            gid: 1000,
            ppid: 1,
            start_ns: 500 * tick_ns + 7,
            parent_start_ns: tick_ns,
        };
        let c = r.context(40, 40, "a) b", &id, 0);
        let p = c.process.unwrap();
        assert_eq!(p.exe.as_deref(), Some("/usr/bin/node"));
        assert_eq!(
            p.argv.as_deref().unwrap(),
            ["node", "server.js", "--api-key", "<redacted>"]
        );
        assert_eq!(p.parent_exe.as_deref(), Some("/sbin/init"));
        assert_eq!(r.lookups, 2);
        // Seen: no further /proc read.
        let again = r.context(40, 40, "a) b", &id, 0).process.unwrap();
        assert_eq!((r.lookups, again.key), (2, p.key));

        // Pid 40 reused by another process: the kernel's start time differs.
        let other = Identity {
            start_ns: 900 * tick_ns,
            ..id
        };
        let q = r.context(40, 40, "a) b", &other, 0).process.unwrap();
        assert_eq!((q.exe.as_ref(), q.argv.as_ref()), (None, None), "{q:?}");
        assert_eq!(q.parent_exe.as_deref(), Some("/sbin/init"));
        // A process already gone.
        let gone = r.context(41, 41, "x", &id, 0).process.unwrap();
        assert_eq!(gone.exe, None);
        // No identity from the kernel: nothing is looked up.
        let before = r.lookups;
        assert!(
            r.context(40, 40, "a) b", &Identity::default(), 0)
                .process
                .is_none()
        );
        assert_eq!(r.lookups, before);
        // It exec'd another program since the event (same pid and start
        // time, another name): no executable or command line, not the new
        // program's; the parent is still named.
        let e = r.context(40, 40, "bash", &id, 0).process.unwrap();
        assert_eq!((e.exe.as_ref(), e.argv.as_ref()), (None, None), "{e:?}");
        assert_eq!(e.parent_exe.as_deref(), Some("/sbin/init"));
    }

    #[test]
    fn a_cgroup_is_found_by_its_id_below_the_scope() {
        use std::os::unix::fs::MetadataExt;
        let Ok(root) = super::super::cgroup::cgroup2_mount() else {
            return;
        };
        let mut r = Resolver::new(Some(&root), Path::new("/proc"));
        let id = std::fs::metadata(&root).unwrap().ino();
        let c = r.cgroup(id).expect("the root cgroup");
        assert_eq!(c.path, "/");
        assert!(r.cgroup(u64::MAX).is_none());
    }
}
