//! The kill switch: stop a process tree exactly and completely, after
//! capturing its state as an incident record.
//!
//! [`execute`] is the library entry point (used by `assay kill` and by the
//! monitor when a `trigger_kill` rule fires). It never prints: it returns a
//! [`KillReport`], which is also the incident record written to disk.
//!
//! How a kill proceeds on Linux:
//! 1. Targets are resolved; a target that owns a leaf cgroup v2 (or an
//!    explicit `--cgroup`) is frozen with `cgroup.freeze` first.
//! 2. The tree is snapshotted *before* any signal: children by parent pid,
//!    plus processes in sessions/process groups led by a tree member (double-
//!    forked daemons keep these ids after re-parenting), plus every process of
//!    the frozen cgroup. A pidfd is opened for each and checked against the
//!    process start time, so a reused pid is never signalled.
//! 3. Processes outside a frozen cgroup are stopped with SIGSTOP top-down and
//!    the tree is re-scanned until no new process appears.
//! 4. State is captured (bounded in time), then signals are sent (SIGTERM,
//!    grace, SIGKILL; or SIGKILL at once, via `cgroup.kill` where possible).
//! 5. Each process is waited for until it has exited (pidfd readable).

pub mod procfs;
pub mod redact;
pub mod report;
pub mod rule;

#[cfg(target_os = "linux")]
pub mod capture;
#[cfg(target_os = "linux")]
pub mod cgroup;
#[cfg(target_os = "linux")]
mod engine;
#[cfg(target_os = "linux")]
pub mod handle;
pub mod incident;

use std::path::PathBuf;
use std::time::Duration;

pub use crate::policy::model::KillMode;
use crate::policy::model::KillSwitchConfig;
pub use report::{Fate, KillReport, ProcessReport};

/// Grace period when neither the command line nor the policy sets one.
pub const DEFAULT_GRACE: Duration = Duration::from_millis(3000);
/// Where incidents go when neither `--output` nor the policy says.
pub const DEFAULT_OUTPUT_DIR: &str = ".assay/incidents";
/// How long capture may take before the kill proceeds without the rest.
pub const DEFAULT_CAPTURE_BUDGET: Duration = Duration::from_millis(50);
/// How long to wait for SIGKILLed processes to exit before calling them survivors.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(5);

/// What to kill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Pid(i32),
    Pids(Vec<i32>),
    /// A cgroup v2 directory: an absolute path on the cgroup2 mount, or a path
    /// relative to that mount (`/assay/run-1` as in `/proc/<pid>/cgroup`).
    Cgroup(PathBuf),
    /// A discovered MCP server: its id and the root pids discovery found
    /// running (each killed with its tree). No pids is a failed target.
    Server {
        id: String,
        pids: Vec<i32>,
    },
    /// A target the caller could not resolve (an unknown server id, …):
    /// recorded as a failed target with this message.
    Unresolved(String),
}

/// Why the kill happened (recorded in the incident).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Manual,
    Rule { rule_id: String, detail: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureOptions {
    /// Incidents are created as subdirectories of this directory.
    pub output_dir: PathBuf,
    /// Replace secret-looking environment values and arguments.
    pub redact: bool,
    /// Capture stops after this long; the rest is recorded as not captured.
    pub budget: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillRequest {
    pub targets: Vec<Target>,
    pub mode: KillMode,
    /// Graceful mode: time between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Kill the whole tree (children, their sessions, an owned cgroup), not
    /// only the named processes.
    pub kill_children: bool,
    pub capture: Option<CaptureOptions>,
    pub reason: Reason,
    /// After SIGKILL, how long to wait for exits before reporting survivors.
    pub wait_timeout: Duration,
}

/// Defaults taken from a policy's `kill_switch` block, else built in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    pub mode: KillMode,
    pub grace: Duration,
    pub kill_children: bool,
    pub capture_state: bool,
    pub output_dir: PathBuf,
}

impl Defaults {
    pub fn from_config(config: Option<&KillSwitchConfig>) -> Defaults {
        match config {
            Some(c) => Defaults {
                mode: c.mode,
                grace: Duration::from_millis(c.grace_period_ms),
                kill_children: c.kill_children,
                capture_state: c.capture_state,
                output_dir: c.output_dir.clone(),
            },
            None => Defaults {
                mode: KillMode::Graceful,
                grace: DEFAULT_GRACE,
                // An MCP server is its whole tree: killing only the top
                // process would leave its workers running.
                kill_children: true,
                capture_state: false,
                output_dir: PathBuf::from(DEFAULT_OUTPUT_DIR),
            },
        }
    }

    /// A request for the monitor's `trigger_kill` path: policy defaults, the
    /// trigger's mode, capture per policy (redacted, bounded).
    pub fn request(&self, targets: Vec<Target>, mode: KillMode, reason: Reason) -> KillRequest {
        KillRequest {
            targets,
            mode,
            grace: self.grace,
            kill_children: self.kill_children,
            capture: self.capture_state.then(|| CaptureOptions {
                output_dir: self.output_dir.clone(),
                redact: true,
                budget: DEFAULT_CAPTURE_BUDGET,
            }),
            reason,
            wait_timeout: DEFAULT_WAIT_TIMEOUT,
        }
    }
}

/// Targets of `req` that must not be acted on (see `engine::refusals`);
/// empty when the request may proceed.
pub fn refusals(req: &KillRequest) -> Vec<String> {
    #[cfg(target_os = "linux")]
    {
        engine::refusals(req)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = req;
        Vec::new()
    }
}

/// Kill what `req` names and report what happened to every process. Never
/// panics on bad targets: a pid that does not exist or cannot be signalled is
/// a per-target error in the report, and `all_gone()` is false.
pub fn execute(req: &KillRequest) -> KillReport {
    #[cfg(target_os = "linux")]
    {
        engine::execute(req)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let mut r = KillReport::begin(req);
        r.errors
            .push("assay kill is not supported on this platform yet".to_string());
        r.finish();
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_policy() {
        let d = Defaults::from_config(None);
        assert_eq!(d.mode, KillMode::Graceful);
        assert_eq!(d.grace, Duration::from_millis(3000));
        assert!(d.kill_children);
        assert!(!d.capture_state);
        assert_eq!(d.output_dir, PathBuf::from(".assay/incidents"));
    }

    #[test]
    fn defaults_from_policy() {
        let c = KillSwitchConfig {
            enabled: true,
            mode: KillMode::Immediate,
            grace_period_ms: 250,
            kill_children: false,
            capture_state: true,
            output_dir: PathBuf::from("/var/lib/assay/incidents"),
            triggers: vec![],
            tool_denials: None,
        };
        let d = Defaults::from_config(Some(&c));
        assert_eq!(d.mode, KillMode::Immediate);
        assert_eq!(d.grace, Duration::from_millis(250));
        assert!(!d.kill_children);
        let req = d.request(vec![Target::Pid(5)], KillMode::Immediate, Reason::Manual);
        let cap = req.capture.unwrap();
        assert!(cap.redact);
        assert_eq!(cap.output_dir, PathBuf::from("/var/lib/assay/incidents"));
    }
}
