//! State capture: what a process was doing when it was killed, read from
//! /proc while the tree is frozen. Every field is best-effort: what cannot be
//! read is recorded in `errors`, and capture never stops the kill.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::procfs::{self, MapsSummary, SocketInfo, Status};
use super::redact;

pub const PROCESS_SCHEMA: &str = "assay.incident.process/v1";
/// Parent chains stop here (pid namespaces are never this deep in practice).
const MAX_CHAIN: usize = 64;
/// At most this many fds are listed per process.
const MAX_FDS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessCapture {
    pub schema: String,
    pub pid: i32,
    pub start_time: u64,
    /// Boot-relative start in seconds (start_time / clock ticks per second).
    pub start_seconds_after_boot: Option<f64>,
    pub cmdline: Vec<String>,
    pub exe: Option<String>,
    pub cwd: Option<String>,
    pub root: Option<String>,
    /// `NAME=value`, secret-looking values replaced unless redaction was off.
    pub environ: Vec<String>,
    pub redacted: bool,
    pub status: Status,
    /// Raw `/proc/<pid>/cgroup` lines.
    pub cgroup: Vec<String>,
    /// Raw `/proc/<pid>/limits` lines.
    pub limits: Vec<String>,
    pub fds: Vec<Fd>,
    pub fds_truncated: bool,
    pub maps: Option<MapsSummary>,
    /// From the parent up to pid 1.
    pub parent_chain: Vec<Ancestor>,
    /// Namespace links (`net:[4026531840]`, ...).
    pub namespaces: HashMap<String, String>,
    /// What could not be read, one line per field.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fd {
    pub fd: i32,
    pub target: String,
    /// For sockets: addresses and state from the process's network namespace.
    pub socket: Option<SocketInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ancestor {
    pub pid: i32,
    pub comm: String,
}

/// Socket tables per network namespace, read once per capture run.
#[derive(Default)]
pub struct NetTables {
    by_ns: HashMap<String, HashMap<u64, SocketInfo>>,
}

impl NetTables {
    fn lookup(&mut self, pid: i32, ns: &str, inode: u64) -> Option<SocketInfo> {
        let table = self.by_ns.entry(ns.to_string()).or_insert_with(|| {
            let mut t = HashMap::new();
            for proto in ["tcp", "tcp6", "udp", "udp6"] {
                if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{proto}")) {
                    t.extend(procfs::parse_inet_table(proto, &text));
                }
            }
            if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/unix")) {
                t.extend(procfs::parse_unix_table(&text));
            }
            t
        });
        table.get(&inode).cloned()
    }
}

fn clock_ticks() -> Option<f64> {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (t > 0).then_some(t as f64)
}

fn link(p: impl AsRef<Path>) -> Result<String, std::io::Error> {
    std::fs::read_link(p).map(|l| l.to_string_lossy().into_owned())
}

/// Capture one process. `errors` lists every field that could not be read.
pub fn capture_one(
    pid: i32,
    start_time: u64,
    redact_on: bool,
    net: &mut NetTables,
) -> ProcessCapture {
    let base = format!("/proc/{pid}");
    let mut errors = Vec::new();
    let mut note = |field: &str, e: std::io::Error| errors.push(format!("{field}: {e}"));

    let cmdline = match std::fs::read(format!("{base}/cmdline")) {
        Ok(b) => procfs::split_nul(&b),
        Err(e) => {
            note("cmdline", e);
            Vec::new()
        }
    };
    let environ = match std::fs::read(format!("{base}/environ")) {
        Ok(b) => procfs::split_nul(&b),
        Err(e) => {
            note("environ", e);
            Vec::new()
        }
    };
    let mut opt_link = |field: &str| match link(format!("{base}/{field}")) {
        Ok(l) => Some(l),
        Err(e) => {
            note(field, e);
            None
        }
    };
    let exe = opt_link("exe");
    let cwd = opt_link("cwd");
    let root = opt_link("root");
    let status = match std::fs::read_to_string(format!("{base}/status")) {
        Ok(t) => procfs::parse_status(&t),
        Err(e) => {
            note("status", e);
            Status::default()
        }
    };
    let lines = |field: &str, errors: &mut Vec<String>| match std::fs::read_to_string(format!(
        "{base}/{field}"
    )) {
        Ok(t) => t.lines().map(str::to_string).collect(),
        Err(e) => {
            errors.push(format!("{field}: {e}"));
            Vec::new()
        }
    };
    let cgroup = lines("cgroup", &mut errors);
    let limits = lines("limits", &mut errors);
    let maps = match std::fs::read_to_string(format!("{base}/maps")) {
        Ok(t) => Some(procfs::summarize_maps(&t)),
        Err(e) => {
            errors.push(format!("maps: {e}"));
            None
        }
    };

    let mut namespaces = HashMap::new();
    for ns in ["net", "pid", "mnt", "user", "uts", "ipc", "cgroup"] {
        if let Ok(l) = link(format!("{base}/ns/{ns}")) {
            namespaces.insert(ns.to_string(), l);
        }
    }
    let net_ns = namespaces.get("net").cloned().unwrap_or_default();

    let mut fds = Vec::new();
    let mut fds_truncated = false;
    match std::fs::read_dir(format!("{base}/fd")) {
        Ok(rd) => {
            let mut nums: Vec<i32> = rd
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect();
            nums.sort_unstable();
            if nums.len() > MAX_FDS {
                nums.truncate(MAX_FDS);
                fds_truncated = true;
            }
            for fd in nums {
                let Ok(target) = link(format!("{base}/fd/{fd}")) else {
                    continue; // closed between listing and reading
                };
                let socket =
                    procfs::socket_inode(&target).and_then(|ino| net.lookup(pid, &net_ns, ino));
                fds.push(Fd { fd, target, socket });
            }
        }
        Err(e) => errors.push(format!("fd: {e}")),
    }

    let mut parent_chain = Vec::new();
    let mut cur = status
        .ppid
        .or_else(|| procfs::read_stat(pid).map(|s| s.ppid));
    while let Some(p) = cur {
        if p <= 0 || parent_chain.len() >= MAX_CHAIN {
            break;
        }
        match procfs::read_stat(p) {
            Some(s) => {
                parent_chain.push(Ancestor {
                    pid: p,
                    comm: s.comm,
                });
                cur = (p != 1).then_some(s.ppid);
            }
            None => break,
        }
    }

    let (cmdline, environ) = if redact_on {
        (
            redact::redact_argv(&cmdline),
            environ
                .iter()
                .map(|e| redact::redact_env_entry(e))
                .collect(),
        )
    } else {
        (cmdline, environ)
    };

    ProcessCapture {
        schema: PROCESS_SCHEMA.to_string(),
        pid,
        start_time,
        start_seconds_after_boot: clock_ticks().map(|t| start_time as f64 / t),
        cmdline,
        exe,
        cwd,
        root,
        environ,
        redacted: redact_on,
        status,
        cgroup,
        limits,
        fds,
        fds_truncated,
        maps,
        parent_chain,
        namespaces,
        errors,
    }
}

/// Why a process has no capture.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CaptureError {
    /// The helper thread could not be started.
    #[error("capture thread: {0}")]
    Thread(Arc<std::io::Error>),
    #[error("not captured: capture budget of {} ms exhausted", .0.as_millis())]
    BudgetExhausted(Duration),
}

/// Capture every (pid, start time) within `budget`. Reading /proc can block
/// (a process stuck holding its mm lock blocks reads of its environ/maps), so
/// the work runs on a helper thread and the caller waits at most `budget`;
/// anything not captured by then is reported as timed out.
pub fn capture_all(
    procs: &[(i32, u64)],
    redact_on: bool,
    budget: Duration,
) -> Vec<(i32, Result<ProcessCapture, CaptureError>)> {
    let (tx, rx) = mpsc::channel();
    let list = procs.to_vec();
    let spawned = std::thread::Builder::new()
        .name("assay-capture".into())
        .spawn(move || {
            let mut net = NetTables::default();
            for (pid, st) in list {
                if tx
                    .send((pid, capture_one(pid, st, redact_on, &mut net)))
                    .is_err()
                {
                    return;
                }
            }
        });
    let mut got: HashMap<i32, ProcessCapture> = HashMap::new();
    if let Err(e) = spawned {
        let e = Arc::new(e);
        return procs
            .iter()
            .map(|(p, _)| (*p, Err(CaptureError::Thread(e.clone()))))
            .collect();
    }
    let deadline = Instant::now() + budget;
    while got.len() < procs.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((pid, c)) => {
                got.insert(pid, c);
            }
            Err(_) => break,
        }
    }
    procs
        .iter()
        .map(|(p, _)| {
            let r = got.remove(p).ok_or(CaptureError::BudgetExhausted(budget));
            (*p, r)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_this_process() {
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        let st = procfs::read_stat(pid).unwrap().start_time;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut net = NetTables::default();
        let c = capture_one(pid, st, true, &mut net);
        assert_eq!(c.pid, pid);
        assert!(!c.cmdline.is_empty());
        assert!(c.exe.is_some() && c.cwd.is_some());
        assert!(!c.environ.is_empty());
        assert_eq!(c.status.ppid, procfs::read_stat(pid).map(|s| s.ppid));
        assert!(
            c.maps
                .as_ref()
                .is_some_and(|m| m.regions > 0 && !m.files.is_empty())
        );
        assert!(c.limits.iter().any(|l| l.starts_with("Max open files")));
        let listening = format!("127.0.0.1:{port}");
        assert!(
            c.fds.iter().any(|f| f
                .socket
                .as_ref()
                .is_some_and(|s| s.state == "LISTEN" && s.local.as_deref() == Some(&listening))),
            "the listener is resolved: {:?}",
            c.fds
        );
        let round: ProcessCapture =
            serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(round, c);
        drop(listener);
    }

    #[test]
    fn a_capture_budget_of_zero_reports_what_is_missing() {
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        let st = procfs::read_stat(pid).unwrap().start_time;
        let got = capture_all(&[(pid, st)], true, Duration::ZERO);
        assert_eq!(got.len(), 1);
        if let Err(e) = &got[0].1 {
            assert!(e.to_string().contains("budget"), "{e}");
        }
        let got = capture_all(&[(pid, st)], true, Duration::from_secs(5));
        assert!(got[0].1.is_ok());
    }
}
