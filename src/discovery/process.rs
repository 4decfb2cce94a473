//! Running processes, read straight from `/proc` (Linux). Other systems
//! report the process source as unsupported rather than guessing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One process as discovery needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    /// The kernel's short name (`/proc/PID/comm`, from `stat`).
    pub comm: String,
    /// `/proc/PID/cmdline`, split on NUL. Empty for kernel threads.
    pub argv: Vec<String>,
}

/// Why the process table could not be listed. The text is the report's
/// `processes.reason`, so it must not change.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("process listing is not supported on {os}")]
    Unsupported { os: &'static str },
    #[error("{}: {source}", .path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// All processes, or why they could not be listed.
pub fn snapshot(proc_root: &Path) -> Result<Vec<Proc>, SnapshotError> {
    if !cfg!(target_os = "linux") {
        return Err(SnapshotError::Unsupported {
            os: std::env::consts::OS,
        });
    }
    let rd = std::fs::read_dir(proc_root).map_err(|source| SnapshotError::Unreadable {
        path: proc_root.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for ent in rd.flatten() {
        let Some(pid) = ent.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        // A process can exit between readdir and read: skip it silently.
        let Ok(stat) = std::fs::read_to_string(ent.path().join("stat")) else {
            continue;
        };
        let Some((comm, ppid)) = parse_stat(&stat) else {
            continue;
        };
        let argv = std::fs::read(ent.path().join("cmdline"))
            .map(|b| parse_cmdline(&b))
            .unwrap_or_default();
        out.push(Proc {
            pid,
            ppid,
            comm,
            argv,
        });
    }
    out.sort_by_key(|p| p.pid);
    Ok(out)
}

/// `(comm, ppid)` from `/proc/PID/stat`. The comm is in parentheses and may
/// itself contain spaces and parentheses, so split at the *last* `)`.
pub fn parse_stat(stat: &str) -> Option<(String, i32)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let _state = rest.next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((comm, ppid))
}

pub fn parse_cmdline(bytes: &[u8]) -> Vec<String> {
    let trimmed = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if trimmed.is_empty() {
        return Vec::new();
    }
    trimmed
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// The cgroup v2 path of a process (`0::/path` line), if any.
pub fn cgroup_of(proc_root: &Path, pid: i32) -> Option<String> {
    let text = std::fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup")).ok()?;
    parse_cgroup(&text)
}

/// From `/proc/PID/cgroup` text: the unified (v2) path, else the first path.
pub fn parse_cgroup(text: &str) -> Option<String> {
    let mut first = None;
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (id, _ctrl, path) = (f.next()?, f.next()?, f.next()?);
        if id == "0" {
            return Some(path.to_string());
        }
        first.get_or_insert_with(|| path.to_string());
    }
    first
}

/// The contract with `assay monitor`: it creates its leaf cgroups with this
/// name prefix, so any process inside one (or below) is managed.
pub const MONITOR_CGROUP_PREFIX: &str = "assay-monitor-";

pub fn cgroup_is_managed(path: &str) -> bool {
    path.split('/')
        .any(|c| c.starts_with(MONITOR_CGROUP_PREFIX))
}

/// Whether a cgroup path is a container's: Docker, containerd/CRI,
/// Podman, Kubernetes pods, LXC. (A dev container's servers run in one.)
pub fn cgroup_is_container(path: &str) -> bool {
    path.split('/').any(|c| {
        matches!(c, "docker" | "containerd" | "lxc" | "libpod_parent")
            || c.starts_with("docker-")
            || c.starts_with("cri-containerd-")
            || c.starts_with("crio-")
            || c.starts_with("libpod-")
            || c.starts_with("kubepods")
            || c.starts_with("lxc.payload")
    })
}

/// Index of processes by pid, with parent walking.
pub struct Table<'a> {
    by_pid: HashMap<i32, &'a Proc>,
}

impl<'a> Table<'a> {
    pub fn new(procs: &'a [Proc]) -> Self {
        Table {
            by_pid: procs.iter().map(|p| (p.pid, p)).collect(),
        }
    }

    pub fn get(&self, pid: i32) -> Option<&'a Proc> {
        self.by_pid.get(&pid).copied()
    }

    /// Ancestors of `pid`, nearest first (bounded: pid reuse cannot loop us).
    pub fn ancestors(&self, pid: i32) -> Vec<&'a Proc> {
        let mut out = Vec::new();
        let mut cur = self.get(pid).map(|p| p.ppid);
        while let Some(pp) = cur {
            if pp <= 0 || out.len() >= 64 {
                break;
            }
            let Some(p) = self.get(pp) else { break };
            if out.iter().any(|q: &&Proc| q.pid == p.pid) {
                break;
            }
            out.push(p);
            cur = Some(p.ppid);
        }
        out
    }
}

/// Names a process may be known by: comm, argv[0] basename, and for
/// interpreters (node, electron) the script's basename.
pub fn names_of(p: &Proc) -> Vec<String> {
    let mut v = vec![p.comm.to_ascii_lowercase()];
    if let Some(a0) = p.argv.first() {
        // Retitled processes: the first word only.
        let a0 = a0.split(' ').next().unwrap_or(a0);
        let b = super::launch::program_name(a0);
        if matches!(b.as_str(), "node" | "nodejs" | "bun" | "electron") {
            if let Some(script) = p.argv.iter().skip(1).find(|a| !a.starts_with('-')) {
                v.push(
                    super::launch::program_name(script)
                        .trim_end_matches(".js")
                        .to_string(),
                );
                v.push(super::launch::script_key(script).to_ascii_lowercase());
            }
        }
        v.push(b);
    }
    v
}

/// Whether this process is `assay monitor`.
pub fn is_assay_monitor(p: &Proc) -> bool {
    p.argv
        .first()
        .is_some_and(|a| super::launch::program_name(a) == "assay")
        && p.argv.get(1).is_some_and(|a| a == "monitor")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_tricky_comm() {
        let s = "4242 (my (weird) proc) S 17 4242 4242 0 -1 4194560 ...";
        assert_eq!(parse_stat(s), Some(("my (weird) proc".into(), 17)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn cmdline_split() {
        assert_eq!(parse_cmdline(b"npx\0-y\0pkg\0"), ["npx", "-y", "pkg"]);
        assert_eq!(parse_cmdline(b""), Vec::<String>::new());
        assert_eq!(parse_cmdline(b"a\0\0b\0"), ["a", "", "b"]);
    }

    #[test]
    fn container_cgroups() {
        for c in [
            "/docker/3f2a9c",
            "/system.slice/docker-3f2a9c.scope",
            "/kubepods.slice/kubepods-burstable.slice/cri-containerd-ab12.scope",
            "/machine.slice/libpod-77aa.scope/container",
            "/lxc.payload.dev/init.scope",
        ] {
            assert!(cgroup_is_container(c), "{c}");
        }
        for c in [
            "/user.slice/user-1000.slice/session-2.scope",
            "/system.slice/dockerd.service",
            "/",
        ] {
            assert!(!cgroup_is_container(c), "{c}");
        }
    }

    #[test]
    fn cgroups() {
        let v2 = "0::/user.slice/assay-monitor-1234/leaf\n";
        assert_eq!(
            parse_cgroup(v2).as_deref(),
            Some("/user.slice/assay-monitor-1234/leaf")
        );
        assert!(cgroup_is_managed(&parse_cgroup(v2).unwrap()));
        let hybrid = "12:cpu,cpuacct:/x\n0::/system.slice/ssh.service\n";
        assert_eq!(
            parse_cgroup(hybrid).as_deref(),
            Some("/system.slice/ssh.service")
        );
        assert!(!cgroup_is_managed("/system.slice/assay.service"));
        assert!(!cgroup_is_managed("/x/not-assay-monitor-1"));
    }

    #[test]
    fn ancestry_and_names() {
        let procs = vec![
            Proc {
                pid: 1,
                ppid: 0,
                comm: "init".into(),
                argv: vec!["/sbin/init".into()],
            },
            Proc {
                pid: 10,
                ppid: 1,
                comm: "MainThread".into(),
                argv: vec![
                    "/usr/bin/node".into(),
                    "--x".into(),
                    "/usr/lib/node_modules/@anthropic-ai/claude-code/cli.js".into(),
                ],
            },
            Proc {
                pid: 20,
                ppid: 10,
                comm: "sleep".into(),
                argv: vec!["mcp-server-x".into()],
            },
            Proc {
                pid: 30,
                ppid: 30,
                comm: "loop".into(),
                argv: vec![],
            },
        ];
        let t = Table::new(&procs);
        let a: Vec<i32> = t.ancestors(20).iter().map(|p| p.pid).collect();
        assert_eq!(a, [10, 1]);
        assert_eq!(t.ancestors(30).len(), 1, "a self-parent does not loop");
        assert!(names_of(&procs[1]).contains(&"@anthropic-ai/claude-code".to_string()));
        assert!(is_assay_monitor(&Proc {
            pid: 2,
            ppid: 1,
            comm: "assay".into(),
            argv: vec!["/usr/bin/assay".into(), "monitor".into()]
        }));
    }

    #[test]
    fn snapshot_errors_keep_their_text() {
        let e = snapshot(Path::new("/nonexistent/proc")).unwrap_err();
        if cfg!(target_os = "linux") {
            assert!(matches!(e, SnapshotError::Unreadable { .. }));
            let text = e.to_string();
            assert!(text.starts_with("/nonexistent/proc: "), "{text}");
            assert!(text.contains("No such file or directory"), "{text}");
        }
        let e = SnapshotError::Unsupported { os: "macos" };
        assert_eq!(e.to_string(), "process listing is not supported on macos");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn snapshot_sees_this_process() {
        let procs = snapshot(Path::new("/proc")).unwrap();
        let me = std::process::id() as i32;
        let p = procs.iter().find(|p| p.pid == me).expect("own pid");
        assert!(!p.argv.is_empty());
        assert!(cgroup_of(Path::new("/proc"), me).is_some());
    }
}

/// Listening TCP sockets by local port: port -> socket inodes, from
/// `/proc/net/tcp` and `/proc/net/tcp6` (this network namespace).
pub fn listening_ports(proc_root: &Path) -> HashMap<u16, Vec<u64>> {
    let mut out: HashMap<u16, Vec<u64>> = HashMap::new();
    for f in ["net/tcp", "net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(proc_root.join(f)) {
            for (port, inode) in parse_net_tcp_listeners(&text) {
                out.entry(port).or_default().push(inode);
            }
        }
    }
    out
}

/// `(port, inode)` of LISTEN (state `0A`) rows of a `/proc/net/tcp[6]` table.
pub fn parse_net_tcp_listeners(text: &str) -> Vec<(u16, u64)> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 10 || f[3] != "0A" {
                return None;
            }
            let port = u16::from_str_radix(f[1].rsplit(':').next()?, 16).ok()?;
            let inode = f[9].parse().ok()?;
            Some((port, inode))
        })
        .collect()
}

/// Which processes hold these socket inodes open (readable fds only: all
/// processes as root, one's own otherwise).
pub fn socket_owners(proc_root: &Path, inodes: &[u64]) -> HashMap<u64, Vec<i32>> {
    let mut out: HashMap<u64, Vec<i32>> = HashMap::new();
    if inodes.is_empty() {
        return out;
    }
    let Ok(rd) = std::fs::read_dir(proc_root) else {
        return out;
    };
    for ent in rd.flatten() {
        let Some(pid) = ent.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(ent.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let t = target.to_string_lossy();
            if let Some(n) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                if let Ok(inode) = n.parse::<u64>() {
                    if inodes.contains(&inode) {
                        let v = out.entry(inode).or_default();
                        if !v.contains(&pid) {
                            v.push(pid);
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod net_tests {
    use super::*;

    #[test]
    fn tcp_listeners() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1E61 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:9C40 0100007F:1E61 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 20 4 30 10 -1\n";
        assert_eq!(parse_net_tcp_listeners(text), [(7777, 31337)]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn finds_the_owner_of_a_listening_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let ports = listening_ports(Path::new("/proc"));
        let inodes = ports.get(&port).cloned().expect("our listener is listed");
        let owners = socket_owners(Path::new("/proc"), &inodes);
        let me = std::process::id() as i32;
        assert!(owners.values().any(|v| v.contains(&me)));
    }
}
