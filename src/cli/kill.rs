//! `assay kill`: parse flags, resolve defaults, run the kill switch, render.

use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;

use crate::cli::Global;
use crate::exit::{Coded, Outcome, Status};
use crate::kill_switch::{self, CaptureOptions, Defaults, KillMode, KillRequest, Reason, Target};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// SIGTERM, wait the grace period, then SIGKILL what is left.
    Graceful,
    /// SIGKILL at once.
    Immediate,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).multiple(true).args(["pid", "cgroup"])))]
pub struct Args {
    /// Process to stop (repeatable). Its whole tree goes too unless
    /// --no-kill-children.
    #[arg(long, value_name = "PID")]
    pub pid: Vec<i32>,
    /// A cgroup v2 to stop entirely: a path on the cgroup2 mount, or relative
    /// to it as /proc/PID/cgroup shows it (repeatable).
    #[arg(long, value_name = "PATH")]
    pub cgroup: Vec<PathBuf>,
    /// graceful (default, or the policy's kill_switch.mode) or immediate.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Graceful mode: time between SIGTERM and SIGKILL, e.g. 500ms, 3s, or
    /// plain milliseconds [default: policy grace_period_ms, else 3000ms].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub grace: Option<Duration>,
    /// Kill the whole tree: children, double-forked daemons that kept the
    /// session or process group, and the leaf cgroup the target owns [default].
    #[arg(long, overrides_with = "no_kill_children")]
    pub kill_children: bool,
    /// Kill only the named processes.
    #[arg(long, overrides_with = "kill_children")]
    pub no_kill_children: bool,
    /// Capture each process's state into an incident directory before the
    /// first signal [default: policy kill_switch.capture_state, else off].
    #[arg(long, overrides_with = "no_capture_state")]
    pub capture_state: bool,
    /// Do not capture state even if the policy asks for it.
    #[arg(long, overrides_with = "capture_state")]
    pub no_capture_state: bool,
    /// Keep secret-looking environment values and arguments in the capture.
    #[arg(long)]
    pub no_redact: bool,
    /// Directory for incidents [default: policy kill_switch.output_dir, else
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

/// `250ms`, `3s`, `1.5s`, `2m`, or a plain number of milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "ms"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a duration like 500ms, 3s or 2m"))?;
    let factor = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s or m)")),
    };
    let secs = n * factor;
    if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("{s:?}: out of range (0 to 24h)"));
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

pub fn run(args: Args, g: &Global) -> anyhow::Result<Outcome> {
    // Refuse before anything is killed, not after.
    if g.format == crate::output::Format::Sarif {
        return Err(Coded::new(
            Status::ConfigInvalid,
            anyhow::anyhow!(
                "`assay kill` has no SARIF output (findings only); use --format table or json"
            ),
        )
        .into());
    }
    let defaults = Defaults::from_config(None);
    let req = request(&args, &defaults);
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
    crate::output::kill::render(&report, g)?;
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
    fn a_target_is_required() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--mode", "immediate"]).is_err());
        assert!(parse(&["--pid", "1", "--pid", "2", "--cgroup", "/x"]).is_ok());
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
