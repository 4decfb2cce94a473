//! Every exit code assay can return, and the one function that picks it.
//!
//! Commands return an [`Outcome`] (data, not a number); `main` turns it into a
//! process exit code with [`exit_status`]. Errors that must end with a specific
//! code carry it in a [`Coded`] error.

use crate::severity::Severity;

/// The documented exit codes. The numbers are a public interface: never reuse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Status {
    Ok = 0,
    /// Runtime or I/O error.
    Error = 1,
    /// Policy or configuration invalid (also: bad command-line usage).
    ConfigInvalid = 2,
    /// Critical findings, or a tool call denied by policy.
    Critical = 3,
    High = 4,
    Medium = 5,
    /// Low-severity findings (e.g. `--fail-on low`, `--fail-on source_error`).
    Low = 6,
    /// Informational findings (`--fail-on info`, `--fail-on any`).
    Info = 7,
    /// Discovery found servers not managed by assay.
    Unmanaged = 10,
    /// Discovery found remote servers without authentication.
    NoAuth = 11,
    /// A process could not be killed.
    KillFailed = 30,
    /// The monitor could not load or attach an enforcement (`doctor`: could
    /// not here).
    MonitorFailed = 40,
    /// `monitor`: the command to wrap exists but could not be executed (as `env`).
    CannotExecute = 126,
    /// `monitor`: the command to wrap was not found (as `env`, `timeout`).
    CommandNotFound = 127,
}

impl Status {
    pub const ALL: [Status; 14] = [
        Status::Ok,
        Status::Error,
        Status::ConfigInvalid,
        Status::Critical,
        Status::High,
        Status::Medium,
        Status::Low,
        Status::Info,
        Status::Unmanaged,
        Status::NoAuth,
        Status::KillFailed,
        Status::MonitorFailed,
        Status::CannotExecute,
        Status::CommandNotFound,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn meaning(self) -> &'static str {
        match self {
            Status::Ok => "success; no findings at or above the gate",
            Status::Error => "runtime or I/O error",
            Status::ConfigInvalid => "policy, configuration or command line invalid",
            Status::Critical => "critical findings, or a tool call denied by policy",
            Status::High => "high-severity findings",
            Status::Medium => "medium-severity findings",
            Status::Low => "low-severity findings",
            Status::Info => "informational findings",
            Status::Unmanaged => "discovery found unmanaged MCP servers",
            Status::NoAuth => "discovery found remote MCP servers without authentication",
            Status::KillFailed => "a target process survived or could not be signalled",
            Status::MonitorFailed => {
                "an enforcement could not be loaded or attached (doctor: cannot be, here)"
            }
            Status::CannotExecute => "monitor: the command was found but could not be executed",
            Status::CommandNotFound => "monitor: the command was not found",
        }
    }

    /// The gate code for findings of this severity. Never `Ok`: a gate that
    /// tripped must fail the run, whatever severity tripped it.
    pub fn for_severity(s: Severity) -> Status {
        match s {
            Severity::Critical => Status::Critical,
            Severity::High => Status::High,
            Severity::Medium => Status::Medium,
            Severity::Low => Status::Low,
            Severity::Info => Status::Info,
        }
    }
}

/// Why a discovery (or any findings-producing command) should fail the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trip {
    /// A finding at this severity is at or above `--fail-on`'s severity.
    Severity(Severity),
    /// `--fail-on unmanaged_server` (or the policy's `on_findings`) matched.
    Unmanaged,
    /// `--fail-on no_auth` matched.
    NoAuth,
}

/// What a command produced, as far as the exit code is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Policy or configuration invalid; diagnostics were already printed.
    ConfigInvalid,
    /// Findings that trip the gate. Empty means nothing tripped.
    Findings(Vec<Trip>),
    /// `policy check`: at least one tool call was denied.
    CallsDenied,
    /// `kill`: whether every target is gone.
    Kill {
        all_gone: bool,
    },
    /// `monitor`: ran and exited; `status` is the wrapped command's exit status
    /// (wrapper mode passes it through).
    Monitor {
        status: u8,
    },
    /// `doctor`: whether everything the `--policy` given needs is available
    /// (true without one).
    Doctor {
        ready: bool,
    },
}

/// The single mapping from outcome to exit code.
///
/// For findings, several trips can apply at once; the most important wins, in
/// the order 3 (critical), 4 (high), 5 (medium), 6 (low), 7 (info),
/// 10 (unmanaged), 11 (no auth).
pub fn exit_status(outcome: &Outcome) -> u8 {
    match outcome {
        Outcome::Success => Status::Ok.code(),
        Outcome::ConfigInvalid => Status::ConfigInvalid.code(),
        Outcome::Findings(trips) => trips
            .iter()
            .map(|t| match t {
                Trip::Severity(s) => Status::for_severity(*s),
                Trip::Unmanaged => Status::Unmanaged,
                Trip::NoAuth => Status::NoAuth,
            })
            .min()
            .unwrap_or(Status::Ok)
            .code(),
        Outcome::CallsDenied => Status::Critical.code(),
        Outcome::Kill { all_gone: true } => Status::Ok.code(),
        Outcome::Kill { all_gone: false } => Status::KillFailed.code(),
        Outcome::Monitor { status } => *status,
        Outcome::Doctor { ready: true } => Status::Ok.code(),
        Outcome::Doctor { ready: false } => Status::MonitorFailed.code(),
    }
}

/// An error and its causes on one line, `outer: cause: cause`. A cause whose
/// text the line already ends with is not repeated: many error types put
/// their source in their own message, which `{:#}` would print twice.
pub fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

/// An error that must end the process with a specific code (e.g. 2 for an
/// invalid policy, 40 for an enforcement that cannot be attached).
#[derive(Debug, thiserror::Error)]
#[error("{}", describe(error.as_ref()))]
pub struct Coded {
    pub status: Status,
    pub error: anyhow::Error,
}

impl Coded {
    pub fn new(status: Status, error: impl Into<anyhow::Error>) -> Self {
        Coded {
            status,
            error: error.into(),
        }
    }
}

/// The exit code for an error that ended a command: the `Coded` status if the
/// error (or anything it wraps) carries one, else 1.
pub fn error_status(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|e| e.downcast_ref::<Coded>())
        .map_or(Status::Error.code(), |c| c.status.code())
}

/// The table for `--help` and the README.
pub fn help_table() -> String {
    let mut s = String::from("Exit codes:\n");
    for st in Status::ALL {
        s.push_str(&format!("  {:>2}  {}\n", st.code(), st.meaning()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_names_each_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("pinning /x: {source}")]
        struct Pin {
            source: std::io::Error,
        }
        let io = || std::io::Error::from_raw_os_error(libc::EEXIST);
        let e = anyhow::Error::new(Pin { source: io() }).context("enforcing on /cg");
        assert_eq!(
            describe(e.as_ref()),
            format!("enforcing on /cg: pinning /x: {}", io())
        );
        let coded = anyhow::Error::new(Coded::new(Status::Error, e));
        assert_eq!(
            describe(coded.as_ref()),
            format!("enforcing on /cg: pinning /x: {}", io())
        );
        // A cause not in the message is still named.
        let plain = anyhow::Error::new(io()).context("opening the events file");
        assert_eq!(
            describe(plain.as_ref()),
            format!("opening the events file: {}", io())
        );
    }

    #[test]
    fn codes_match_the_documented_table() {
        let codes: Vec<u8> = Status::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 30, 40, 126, 127]);
    }

    #[test]
    fn no_trips_is_success() {
        assert_eq!(exit_status(&Outcome::Findings(vec![])), 0);
    }

    #[test]
    fn every_severity_that_trips_fails_the_run() {
        for (s, code) in [
            (Severity::Critical, 3),
            (Severity::High, 4),
            (Severity::Medium, 5),
            (Severity::Low, 6),
            (Severity::Info, 7),
        ] {
            assert_eq!(
                exit_status(&Outcome::Findings(vec![Trip::Severity(s)])),
                code
            );
        }
        let trips = vec![Trip::Unmanaged, Trip::Severity(Severity::Info)];
        assert_eq!(exit_status(&Outcome::Findings(trips)), 7);
    }

    #[test]
    fn worst_trip_wins() {
        let trips = vec![
            Trip::NoAuth,
            Trip::Severity(Severity::Medium),
            Trip::Unmanaged,
        ];
        assert_eq!(exit_status(&Outcome::Findings(trips)), 5);
        let trips = vec![Trip::NoAuth, Trip::Unmanaged];
        assert_eq!(exit_status(&Outcome::Findings(trips)), 10);
        assert_eq!(exit_status(&Outcome::Findings(vec![Trip::NoAuth])), 11);
        let trips = vec![
            Trip::Severity(Severity::High),
            Trip::Severity(Severity::Critical),
        ];
        assert_eq!(exit_status(&Outcome::Findings(trips)), 3);
    }

    #[test]
    fn other_outcomes() {
        assert_eq!(exit_status(&Outcome::Success), 0);
        assert_eq!(exit_status(&Outcome::ConfigInvalid), 2);
        assert_eq!(exit_status(&Outcome::CallsDenied), 3);
        assert_eq!(exit_status(&Outcome::Kill { all_gone: true }), 0);
        assert_eq!(exit_status(&Outcome::Kill { all_gone: false }), 30);
        assert_eq!(exit_status(&Outcome::Monitor { status: 7 }), 7);
        assert_eq!(exit_status(&Outcome::Doctor { ready: true }), 0);
        assert_eq!(exit_status(&Outcome::Doctor { ready: false }), 40);
    }

    #[test]
    fn coded_errors_keep_their_status_through_context() {
        let e = anyhow::Error::new(Coded::new(Status::MonitorFailed, anyhow::anyhow!("no BTF")))
            .context("starting monitor");
        assert_eq!(error_status(&e), 40);
        assert_eq!(error_status(&anyhow::anyhow!("plain")), 1);
    }

    #[test]
    fn help_lists_every_code() {
        let h = help_table();
        for st in Status::ALL {
            assert!(h.contains(st.meaning()));
        }
    }
}
