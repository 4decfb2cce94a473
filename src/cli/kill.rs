//! `assay kill`: parse flags, resolve defaults, run the kill switch, render.

use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;

use crate::cli::{Global, load_policy};
use crate::discovery;
use crate::exit::{Coded, Outcome, Status};
use crate::kill_switch::{self, CaptureOptions, Defaults, KillMode, KillRequest, Reason, Target};
use crate::output;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// SIGTERM, wait the grace period, then SIGKILL what is left.
    Graceful,
    /// SIGKILL at once.
    Immediate,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Errors and warnings go to stderr, prefixed `assay: error:` / `assay: warning:`.

Exit codes: 0 every identified process is gone (also: --all found nothing
running), 1 runtime error, 2 usage error (no target, a refused target: pid 1,
a kernel thread, assay or its ancestors, a pid <= 0, the root cgroup or one
assay runs in, a path that is not a cgroup; an invalid --policy): nothing was
signalled, 30 a process survived or could not be signalled, or a target does
not exist or is not running.")]
#[command(group(
    clap::ArgGroup::new("target")
        .required(true)
        .multiple(true)
        .args(["pid", "cgroup", "server_id", "all"])
))]
pub struct Args {
    /// Process to stop (repeatable). Its whole tree goes too unless
    /// --no-kill-children.
    // Negative numbers are values, so `--pid -5` is refused as `--pid=-5` is.
    #[arg(long, value_name = "PID", allow_negative_numbers = true)]
    pub pid: Vec<i32>,
    /// A cgroup v2 to stop entirely: a path on the cgroup2 mount, or relative
    /// to it as /proc/PID/cgroup shows it (repeatable).
    #[arg(long, value_name = "PATH")]
    pub cgroup: Vec<PathBuf>,
    /// A server id (or alias) as `assay discover` prints it, e.g.
    /// claude-desktop/filesystem: every running instance with its tree
    /// (repeatable). Resolved as `assay discover --local` sees this machine.
    #[arg(long, value_name = "ID")]
    pub server_id: Vec<String>,
    /// Every running MCP server discovery finds. Requires --yes.
    #[arg(long, requires = "yes")]
    pub all: bool,
    /// Confirm --all.
    #[arg(long)]
    pub yes: bool,
    /// Take defaults from this policy's `kill_switch` block (mode,
    /// grace_period_ms, kill_children, capture_state, output_dir). An invalid
    /// policy exits 2 before anything is signalled.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// graceful (SIGTERM, grace, SIGKILL) or immediate (SIGKILL) [default:
    /// policy, else graceful].
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Graceful mode: time between SIGTERM and SIGKILL, e.g. 500ms, 3s, or
    /// plain milliseconds [default: policy grace_period_ms, else 3000ms].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub grace: Option<Duration>,
    /// Kill the whole tree: children, double-forked daemons that kept the
    /// session or process group, and the leaf cgroup the target owns
    /// [default: policy kill_children, else on].
    #[arg(long, overrides_with = "no_kill_children")]
    pub kill_children: bool,
    /// Kill only the named processes.
    #[arg(long, overrides_with = "kill_children")]
    pub no_kill_children: bool,
    /// Capture each process's state into an incident directory before the
    /// first signal [default: policy capture_state, else off].
    #[arg(long, overrides_with = "no_capture_state")]
    pub capture_state: bool,
    /// Do not capture state, whatever the policy says.
    #[arg(long, overrides_with = "capture_state")]
    pub no_capture_state: bool,
    /// Keep secret-looking environment values and arguments in the capture.
    #[arg(long)]
    pub no_redact: bool,
    /// Directory for incidents [default: policy output_dir, else
    /// .assay/incidents].
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// After SIGKILL, how long to wait for every process to exit before
    /// reporting survivors.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5s")]
    pub wait_timeout: Duration,
    /// How long state capture may take before the kill proceeds without the
    /// rest (what was not captured is recorded).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2s")]
    pub capture_budget: Duration,
}

/// Why a `--grace`, `--wait-timeout` or `--capture-budget` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("{0:?}: expected a duration like 500ms, 3s or 2m")]
    NotANumber(String),
    #[error("{text:?}: unknown unit {unit:?} (use ms, s or m)")]
    UnknownUnit { text: String, unit: String },
    #[error("{0:?}: out of range (0 to 24h)")]
    OutOfRange(String),
}

/// `250ms`, `3s`, `1.5s`, `2m`, or a plain number of milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "ms"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| DurationError::NotANumber(s.to_string()))?;
    let factor = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        _ => {
            return Err(DurationError::UnknownUnit {
                text: s.to_string(),
                unit: unit.to_string(),
            });
        }
    };
    let secs = n * factor;
    if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
        return Err(DurationError::OutOfRange(s.to_string()));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Build the request from flags over defaults (policy, else built in).
pub fn request(args: &Args, defaults: &Defaults) -> KillRequest {
    let mut targets = Vec::new();
    if !args.pid.is_empty() {
        targets.push(Target::Pids(args.pid.clone()));
    }
    targets.extend(args.cgroup.iter().cloned().map(Target::Cgroup));
    let capture = if args.capture_state {
        true
    } else if args.no_capture_state {
        false
    } else {
        defaults.capture_state
    };
    KillRequest {
        targets,
        mode: match args.mode {
            Some(ModeArg::Graceful) => KillMode::Graceful,
            Some(ModeArg::Immediate) => KillMode::Immediate,
            None => defaults.mode,
        },
        grace: args.grace.unwrap_or(defaults.grace),
        kill_children: if args.kill_children {
            true
        } else if args.no_kill_children {
            false
        } else {
            defaults.kill_children
        },
        capture: capture.then(|| CaptureOptions {
            output_dir: args
                .output
                .clone()
                .unwrap_or_else(|| defaults.output_dir.clone()),
            redact: !args.no_redact,
            budget: args.capture_budget,
        }),
        reason: Reason::Manual,
        wait_timeout: args.wait_timeout,
    }
}

/// Server targets from discovery: `--server-id` ids (an unknown id is an
/// unresolved target, a known one that is not running has no pids) and, with
/// `--all`, every running server.
pub fn server_targets(args: &Args, report: &discovery::Report) -> Vec<Target> {
    let mut out = Vec::new();
    for id in &args.server_id {
        match report.server(id) {
            Some(s) => out.push(Target::Server {
                id: s.id.clone(),
                pids: s.pids.clone(),
            }),
            None => out.push(Target::Unresolved(format!(
                "server {id}: no such server id (see `assay discover`)"
            ))),
        }
    }
    if args.all {
        // Nothing running is not a failed target: `--all` is for fleet
        // scripts, which must be able to run it again and again.
        for (id, pids) in report.running() {
            if !out
                .iter()
                .any(|t| matches!(t, Target::Server { id: x, .. } if x == id))
            {
                out.push(Target::Server {
                    id: id.to_string(),
                    pids: pids.to_vec(),
                });
            }
        }
    }
    out
}

pub fn run(args: Args, g: &Global) -> anyhow::Result<Outcome> {
    let config = match &args.policy {
        None => None,
        // `kill_switch.enabled` governs the monitor's automatic triggers; a
        // manual kill takes the block's settings either way.
        Some(path) => load_policy(path)?.kill_switch,
    };
    let defaults = Defaults::from_config(config.as_ref());
    let mut req = request(&args, &defaults);
    if !args.server_id.is_empty() || args.all {
        let opts = discovery::Options::local().ok_or_else(|| {
            Coded::new(
                Status::ConfigInvalid,
                anyhow::anyhow!(
                    "--server-id/--all: cannot tell the home directory for discovery; set HOME"
                ),
            )
        })?;
        let found = discovery::discover(&opts, None);
        req.targets.extend(server_targets(&args, &found));
    }
    let refused = kill_switch::refusals(&req);
    if !refused.is_empty() {
        // Nothing has been signalled: a usage error, not a failed kill.
        return Err(Coded::new(Status::ConfigInvalid, anyhow::anyhow!(refused.join("; "))).into());
    }
    if args.all && req.targets.is_empty() {
        let line = "--all: discovery found no running MCP server; nothing to kill";
        match g.format {
            output::Format::Table => output::emit(&format!("{line}\n"))?,
            output::Format::Json => eprintln!("assay: {line}"),
        }
        return Ok(Outcome::Kill { all_gone: true });
    }
    let report = kill_switch::execute(&req);
    let t = &report.timings;
    crate::debug!(
        1,
        "kill: freeze {:.1} ms, snapshot {:.1} ms, capture {:.1} ms, first signal at {}, all gone at {}, total {:.1} ms",
        t.freeze_ms,
        t.snapshot_ms,
        t.capture_ms,
        t.first_signal_ms
            .map_or("-".into(), |v| format!("{v:.1} ms")),
        t.all_gone_ms.map_or("-".into(), |v| format!("{v:.1} ms")),
        t.total_ms
    );
    output::emit(&output::kill::render(&report, g.format, g.style())?)?;
    for w in output::kill::warnings(&report) {
        eprintln!("assay: warning: {w}");
    }
    for e in output::kill::errors(&report) {
        eprintln!("assay: error: {e}");
    }
    Ok(Outcome::Kill {
        all_gone: report.all_gone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: Args,
    }

    fn parse(v: &[&str]) -> Result<Args, clap::Error> {
        T::try_parse_from(std::iter::once("kill").chain(v.iter().copied())).map(|t| t.a)
    }

    #[test]
    fn server_targets_from_discovery() {
        let home =
            std::env::temp_dir().join(format!("assay-kill-unit-home-{}", std::process::id()));
        std::fs::create_dir_all(home.join(".cursor")).unwrap();
        std::fs::write(
            home.join(".cursor/mcp.json"),
            r#"{"mcpServers": {"a": {"command": "mcp-a"}, "b": {"command": "mcp-b"}}}"#,
        )
        .unwrap();
        let mut report = discovery::discover(&discovery::Options::for_home(&home), None);
        std::fs::remove_dir_all(&home).unwrap();
        let a = report
            .servers
            .iter_mut()
            .find(|s| s.id == "cursor/a")
            .unwrap();
        a.pids = vec![41, 42];

        let args = parse(&[
            "--server-id",
            "cursor/a",
            "--server-id",
            "cursor/b",
            "--server-id",
            "x/y",
        ])
        .unwrap();
        assert_eq!(
            server_targets(&args, &report),
            [
                Target::Server {
                    id: "cursor/a".into(),
                    pids: vec![41, 42]
                },
                Target::Server {
                    id: "cursor/b".into(),
                    pids: vec![]
                },
                Target::Unresolved("server x/y: no such server id (see `assay discover`)".into()),
            ]
        );
        // --all: every running server once, even when also named.
        let args = parse(&["--all", "--yes", "--server-id", "cursor/a"]).unwrap();
        assert_eq!(
            server_targets(&args, &report),
            [Target::Server {
                id: "cursor/a".into(),
                pids: vec![41, 42]
            }]
        );
        report.servers.iter_mut().for_each(|s| s.pids.clear());
        let args = parse(&["--all", "--yes"]).unwrap();
        assert_eq!(
            server_targets(&args, &report),
            [],
            "nothing running is no error"
        );
        assert!(parse(&["--all"]).is_err(), "--all requires --yes");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1200"), Ok(Duration::from_millis(1200)));
        assert!(parse_duration("3h").is_err());
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn duration_errors_read_as_before() {
        let e = |s| parse_duration(s).unwrap_err().to_string();
        assert_eq!(
            e("soon"),
            r#""soon": expected a duration like 500ms, 3s or 2m"#
        );
        assert_eq!(e("3h"), r#""3h": unknown unit "h" (use ms, s or m)"#);
        assert_eq!(e("1441m"), r#""1441m": out of range (0 to 24h)"#);
    }

    #[test]
    fn a_target_is_required() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--mode", "immediate"]).is_err());
        assert!(parse(&["--pid", "1", "--pid", "2", "--cgroup", "/x"]).is_ok());
        assert_eq!(parse(&["--pid", "-5"]).unwrap().pid, [-5]);
        assert_eq!(parse(&["--pid=-5"]).unwrap().pid, [-5]);
    }

    #[test]
    fn flags_override_defaults() {
        let d = Defaults::from_config(None);
        let a = parse(&["--pid", "7"]).unwrap();
        let r = request(&a, &d);
        assert_eq!(r.targets, [Target::Pids(vec![7])]);
        assert_eq!(r.mode, KillMode::Graceful);
        assert_eq!(r.grace, Duration::from_secs(3));
        assert!(r.kill_children);
        assert!(r.capture.is_none());
        let a = parse(&[
            "--pid",
            "7",
            "--mode",
            "immediate",
            "--grace",
            "100ms",
            "--no-kill-children",
            "--capture-state",
            "--no-redact",
            "--output",
            "/tmp/x",
        ])
        .unwrap();
        let r = request(&a, &d);
        assert_eq!(r.mode, KillMode::Immediate);
        assert_eq!(r.grace, Duration::from_millis(100));
        assert!(!r.kill_children);
        let c = r.capture.unwrap();
        assert!(!c.redact);
        assert_eq!(c.output_dir, PathBuf::from("/tmp/x"));
    }
}
