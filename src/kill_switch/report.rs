//! The kill report, which is also the incident record (`incident.json`).
//!
//! The serialized form is a public, versioned schema ([`SCHEMA`]): fields are
//! only ever added. `docs/kill.md` documents every field.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{KillMode, KillRequest, Reason, Target};
use crate::time;

pub const SCHEMA: &str = "assay.incident/v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KillReport {
    pub schema: String,
    /// Unique id; also the incident directory's name.
    pub id: String,
    pub assay_version: String,
    pub who: Who,
    pub why: Why,
    /// RFC 3339, UTC, milliseconds.
    pub started_at: String,
    pub finished_at: String,
    pub request: RequestRecord,
    pub method: Method,
    /// Every process identified as part of a target, in discovery order.
    pub processes: Vec<ProcessReport>,
    /// Problems that are not about one identified process (a pid that does
    /// not exist, a cgroup that cannot be read, a refused target).
    pub errors: Vec<String>,
    /// Things worth knowing that did not make the kill fail (a cgroup that
    /// did not finish freezing in time, a capture that was cut short).
    #[serde(default)]
    pub notes: Vec<String>,
    pub timings: Timings,
    /// True when every identified process is gone and no target failed.
    pub all_gone: bool,
    /// The incident directory (when capture was on and writing succeeded).
    pub incident_dir: Option<PathBuf>,
    /// Why the incident could not be written, if it could not (the kill
    /// itself is unaffected). Never present inside `incident.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Who {
    pub uid: u32,
    pub euid: u32,
    pub user: Option<String>,
    pub host: Option<String>,
    /// The pid of the assay process that performed the kill.
    pub assay_pid: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Why {
    /// An operator ran `assay kill`.
    Manual,
    /// A `trigger_kill` rule of `assay monitor` fired.
    Rule { rule_id: String, detail: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Graceful,
    Immediate,
}

impl From<KillMode> for Mode {
    fn from(m: KillMode) -> Mode {
        match m {
            KillMode::Graceful => Mode::Graceful,
            KillMode::Immediate => Mode::Immediate,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TargetRecord {
    Pid {
        pid: i32,
    },
    Cgroup {
        path: PathBuf,
    },
    /// A discovered server (`--server-id`, `--all`) and the root pids it had.
    Server {
        id: String,
        pids: Vec<i32>,
    },
    /// A target that could not be resolved; the reason is in `errors`.
    Unresolved {
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub targets: Vec<TargetRecord>,
    pub mode: Mode,
    pub grace_ms: u64,
    pub kill_children: bool,
    pub capture: bool,
    pub redact: bool,
}

/// How the kill was carried out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Method {
    /// Cgroups frozen with `cgroup.freeze` before the snapshot.
    pub frozen_cgroups: Vec<PathBuf>,
    /// Cgroups killed with `cgroup.kill`.
    pub cgroup_kill: Vec<PathBuf>,
    /// Processes stopped with SIGSTOP (outside any frozen cgroup).
    pub sigstopped: usize,
    /// Whether pidfds were used (false: start-time verification fallback).
    pub pidfd: bool,
}

/// How a process came to be part of the kill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// Named on the command line (`--pid`).
    Target,
    /// A descendant by parent pid.
    Child,
    /// In a session led by a tree member (e.g. a double-forked daemon).
    Session,
    /// In a process group led by a tree member.
    ProcessGroup,
    /// A member of a targeted or owned cgroup.
    Cgroup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// Exited (reaped, or a zombie waiting for its parent: no longer runs).
    Gone,
    /// Still running when assay stopped waiting.
    Survived,
    /// Could not be signalled (EPERM) and is still running.
    NotPermitted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalRecord {
    /// SIGSTOP, SIGTERM, SIGKILL, SIGCONT.
    pub signal: String,
    /// `pidfd`, `kill` (start-time verified) or `cgroup.kill`.
    pub via: String,
    /// Milliseconds after the kill started.
    pub at_ms: f64,
    /// `delivered`, `gone` (had already exited), `not_permitted`, or an error.
    pub result: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessReport {
    pub pid: i32,
    pub ppid: i32,
    /// Clock ticks after boot (field 22 of /proc/<pid>/stat).
    pub start_time: u64,
    pub comm: String,
    pub via: Via,
    pub signals: Vec<SignalRecord>,
    pub fate: Fate,
    /// Milliseconds after the kill started when the exit was observed.
    pub gone_after_ms: Option<f64>,
    /// For people: why it survived, or anything unusual.
    pub message: Option<String>,
    /// Captured state, relative to the incident directory.
    pub capture_file: Option<String>,
    pub capture_error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub freeze_ms: f64,
    pub snapshot_ms: f64,
    pub capture_ms: f64,
    /// After the start, when the first terminating signal was sent.
    pub first_signal_ms: Option<f64>,
    /// Graceful mode: how long assay waited after SIGTERM.
    pub grace_waited_ms: Option<f64>,
    /// After the start, when the last process was seen gone.
    pub all_gone_ms: Option<f64>,
    pub total_ms: f64,
}

pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl KillReport {
    /// A report for `req` with nothing done yet.
    pub fn begin(req: &KillRequest) -> KillReport {
        let now = SystemTime::now();
        let targets: Vec<TargetRecord> = req
            .targets
            .iter()
            .flat_map(|t| match t {
                Target::Pid(p) => vec![TargetRecord::Pid { pid: *p }],
                Target::Pids(ps) => ps.iter().map(|p| TargetRecord::Pid { pid: *p }).collect(),
                Target::Cgroup(p) => vec![TargetRecord::Cgroup { path: p.clone() }],
                Target::Server { id, pids } => vec![TargetRecord::Server {
                    id: id.clone(),
                    pids: pids.clone(),
                }],
                Target::Unresolved(e) => vec![TargetRecord::Unresolved { error: e.clone() }],
            })
            .collect();
        let label = match targets.first() {
            Some(TargetRecord::Pid { pid }) => format!("pid{pid}"),
            Some(TargetRecord::Cgroup { path }) => format!(
                "cg-{}",
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ),
            Some(TargetRecord::Server { id, .. }) => format!("srv-{id}"),
            Some(TargetRecord::Unresolved { .. }) => "unresolved".to_string(),
            None => "none".to_string(),
        };
        let label: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(48)
            .collect();
        let id = format!(
            "{}-{label}-{}-{}",
            time::compact(now),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        KillReport {
            schema: SCHEMA.to_string(),
            id,
            assay_version: env!("CARGO_PKG_VERSION").to_string(),
            who: Who::current(),
            why: match &req.reason {
                Reason::Manual => Why::Manual,
                Reason::Rule { rule_id, detail } => Why::Rule {
                    rule_id: rule_id.clone(),
                    detail: detail.clone(),
                },
            },
            started_at: time::rfc3339_millis(now),
            finished_at: String::new(),
            request: RequestRecord {
                targets,
                mode: req.mode.into(),
                grace_ms: req.grace.as_millis() as u64,
                kill_children: req.kill_children,
                capture: req.capture.is_some(),
                redact: req.capture.as_ref().is_none_or(|c| c.redact),
            },
            method: Method::default(),
            processes: Vec::new(),
            errors: Vec::new(),
            notes: Vec::new(),
            timings: Timings::default(),
            all_gone: false,
            incident_dir: None,
            incident_error: None,
        }
    }

    /// Stamp the end time and compute `all_gone`.
    pub fn finish(&mut self) {
        self.finished_at = time::rfc3339_millis(SystemTime::now());
        self.all_gone = self.errors.is_empty()
            && !self.processes.is_empty()
            && self.processes.iter().all(|p| p.fate == Fate::Gone);
    }

    pub fn all_gone(&self) -> bool {
        self.all_gone
    }
}

impl Who {
    fn current() -> Who {
        #[cfg(unix)]
        {
            // SAFETY: getuid/geteuid have no preconditions.
            let (uid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
            Who {
                uid,
                euid,
                user: user_name(uid),
                host: host_name(),
                assay_pid: std::process::id(),
            }
        }
        #[cfg(not(unix))]
        {
            Who {
                uid: 0,
                euid: 0,
                user: std::env::var("USERNAME").ok(),
                host: std::env::var("COMPUTERNAME").ok(),
                assay_pid: std::process::id(),
            }
        }
    }
}

#[cfg(unix)]
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        f.next()?;
        (f.next()?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}

#[cfg(unix)]
fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; the result is NUL-terminated
    // on success (the last byte stays 0 if truncated).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_round_trips_and_gates() {
        let req = KillRequest {
            targets: vec![Target::Pids(vec![1, 2]), Target::Cgroup("/x/y".into())],
            mode: KillMode::Immediate,
            grace: Duration::from_millis(10),
            kill_children: true,
            capture: None,
            reason: Reason::Rule {
                rule_id: "r1".into(),
                detail: "opened /etc/shadow".into(),
            },
            wait_timeout: Duration::from_secs(1),
        };
        let mut r = KillReport::begin(&req);
        assert_eq!(r.request.targets.len(), 3);
        assert!(r.id.contains("-pid1-"));
        r.finish();
        assert!(!r.all_gone(), "nothing identified is not success");
        r.processes.push(ProcessReport {
            pid: 1,
            ppid: 0,
            start_time: 1,
            comm: "x".into(),
            via: Via::Target,
            signals: vec![],
            fate: Fate::Gone,
            gone_after_ms: Some(1.0),
            message: None,
            capture_file: None,
            capture_error: None,
        });
        r.finish();
        assert!(r.all_gone());
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""why":{"kind":"rule","rule_id":"r1""#));
        let back: KillReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        r.errors.push("pid 9: no such process".into());
        r.finish();
        assert!(!r.all_gone());
    }
}
