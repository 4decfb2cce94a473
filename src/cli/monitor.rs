//! `assay monitor`: enforce a policy's `runtime_monitor` rules in the kernel.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::cli::Global;
use crate::exit::Outcome;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Wrapper mode (what goes into an MCP client's config):\n  \
    assay monitor --policy /etc/assay/policy.yaml -- npx -y @modelcontextprotocol/server-filesystem /srv\n\
Attach mode:\n  assay monitor --policy P --cgroup /sys/fs/cgroup/system.slice/mcp.service\n\
Remove pinned enforcement:\n  assay monitor --unpin /sys/fs/bpf/assay"
)]
pub struct Args {
    /// Policy file whose `runtime_monitor` rules are enforced.
    #[arg(long, value_name = "FILE", required_unless_present = "unpin")]
    pub policy: Option<PathBuf>,
    /// Attach mode: enforce on this existing cgroup v2 directory (and below).
    #[arg(long, value_name = "PATH", conflicts_with = "command")]
    pub cgroup: Option<PathBuf>,
    /// Write events (JSON lines) here. Default: stderr in wrapper mode,
    /// stdout in attach mode, the log file with --daemon.
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Run even if some rules cannot be enforced on this host; each one is
    /// named on stderr. Without it such a policy exits 40 and starts nothing.
    #[arg(long)]
    pub allow_degraded: bool,
    /// Enforce even though the policy says `runtime_monitor.enabled: false`.
    #[arg(long)]
    pub ignore_disabled: bool,
    /// Attach mode only: run in the background with a pid file and a log file.
    #[arg(long, requires = "cgroup")]
    pub daemon: bool,
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/run/assay-monitor.pid",
        requires = "daemon"
    )]
    pub pid_file: PathBuf,
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/var/log/assay-monitor.log",
        requires = "daemon"
    )]
    pub log_file: PathBuf,
    /// Attach mode only: pin the programs under DIR (bpffs) so enforcement
    /// stays after assay exits.
    #[arg(long, value_name = "DIR", requires = "cgroup")]
    pub pin: Option<PathBuf>,
    /// Remove enforcement pinned with --pin DIR, and exit. The events it
    /// produced since its monitor exited are written out first (named with
    /// the rules of --policy, when given) and its drops reported.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["cgroup", "command", "daemon"])]
    pub unpin: Option<PathBuf>,
    /// Ring buffer size in bytes (a power of two, at least 4096).
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    pub ringbuf_bytes: u32,
    /// Wrapper mode: the command to run inside a fresh monitored cgroup.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

#[cfg(all(target_os = "linux", feature = "monitor"))]
pub fn run(args: Args, g: &Global) -> anyhow::Result<Outcome> {
    linux::run(args, g)
}

#[cfg(not(all(target_os = "linux", feature = "monitor")))]
pub fn run(_args: Args, _g: &Global) -> anyhow::Result<Outcome> {
    Err(crate::exit::Coded::new(
        crate::exit::Status::MonitorFailed,
        anyhow::anyhow!(
            "this build of assay has no runtime monitor (it needs Linux and the `monitor` feature)"
        ),
    )
    .into())
}

#[cfg(all(target_os = "linux", feature = "monitor"))]
mod linux {
    use std::fs::File;
    use std::io::{self, Write};
    use std::path::{Path, PathBuf};

    use anyhow::{Context, anyhow};

    use super::Args;
    use crate::cli::Global;
    use crate::exit::{Coded, Outcome, Status};
    use crate::monitor::cgroup::{LeafCgroup, Scope};
    use crate::monitor::compile::Unenforceable;
    use crate::monitor::events::{KillEvent, Killer, Offense, Sink, Summary, now_ns};
    use crate::monitor::{self, Monitor, daemon, netguard, process};
    use crate::output::monitor as render;
    use crate::output::{Format, Style, use_color};
    use crate::policy::model::{Policy, Rule};

    fn config(msg: String) -> anyhow::Error {
        Coded::new(Status::ConfigInvalid, anyhow!(msg)).into()
    }

    fn failed(e: impl Into<anyhow::Error>) -> anyhow::Error {
        Coded::new(Status::MonitorFailed, e).into()
    }

    fn stderr_style(g: &Global) -> Style {
        use std::io::IsTerminal;
        Style {
            color: use_color(g.no_color) && io::stderr().is_terminal(),
        }
    }

    pub fn run(args: Args, g: &Global) -> anyhow::Result<Outcome> {
        if let Some(dir) = &args.unpin {
            return unpin(dir, &args, g);
        }
        let path = args.policy.clone().expect("clap requires --policy");
        if args.cgroup.is_none() && args.command.is_empty() {
            return Err(config(
                "give a command to run (`assay monitor --policy P -- COMMAND ARGS...`) or a \
                 cgroup to attach to (`--cgroup PATH`)"
                    .into(),
            ));
        }
        let policy = load_policy(&path)?;
        execute(args, g, &policy)
    }

    fn load_policy(path: &Path) -> anyhow::Result<Policy> {
        crate::cli::load_policy(path)
    }

    /// The rules to enforce, or why the policy gives none.
    fn rules<'p>(policy: &'p Policy, args: &Args) -> anyhow::Result<&'p [Rule]> {
        let src = policy.source.display();
        let rm = policy
            .runtime_monitor
            .as_ref()
            .ok_or_else(|| config(format!("{src}: the policy has no runtime_monitor block")))?;
        if !rm.enabled && !args.ignore_disabled {
            return Err(config(format!(
                "{src}: runtime_monitor.enabled is false, so there is nothing to enforce; set \
                 it to true, or pass --ignore-disabled to enforce the rules anyway"
            )));
        }
        if rm.rules.is_empty() {
            return Err(config(format!("{src}: runtime_monitor has no rules")));
        }
        Ok(&rm.rules)
    }

    /// libbpf's own log lines (e.g. the verifier refusing a program) are
    /// noise next to assay's message, which says what failed and how to fix
    /// it; `-v` shows them (`-vv` at debug level).
    fn libbpf_log(g: &Global) {
        fn print(_: libbpf_rs::PrintLevel, msg: String) {
            eprint!("{msg}");
        }
        let level = match g.verbose {
            0 => None,
            1 => Some(libbpf_rs::PrintLevel::Info),
            _ => Some(libbpf_rs::PrintLevel::Debug),
        };
        libbpf_rs::set_print(level.map(|l| (l, print as libbpf_rs::PrintCallback)));
    }

    pub fn execute(args: Args, g: &Global, policy: &Policy) -> anyhow::Result<Outcome> {
        // Before anything is attached: a stop request during start-up waits
        // for the signal thread instead of killing assay half-started.
        process::block_signals().context("blocking signals")?;
        libbpf_log(g);
        let style = stderr_style(g);
        let rules = rules(policy, &args)?;
        // Wrapper mode makes its own scope; attach mode uses the given one.
        let leaf = if args.cgroup.is_none() {
            Some(LeafCgroup::create().map_err(failed)?)
        } else {
            None
        };
        let server_cgroup = leaf.as_ref().map(|l| l.path().to_path_buf());
        let (killer, kill_unavailable) = match kill_action(policy, server_cgroup) {
            Ok(k) => (Some(k), None),
            Err(why) => (None, Some(why)),
        };
        if args.pin.is_some()
            && let Some(r) = rules
                .iter()
                .find(|r| r.action == crate::policy::model::Action::TriggerKill)
        {
            // After exit nothing would kill: the rule would silently become
            // a deny.
            return Err(config(format!(
                "--pin cannot keep rule `{}`: trigger_kill needs the running monitor to kill; \
                 run the monitor under systemd instead, or use action deny",
                r.id
            )));
        }
        let plan = monitor::plan(rules, kill_unavailable.as_deref()).map_err(failed)?;
        if !plan.unenforced.is_empty() {
            refuse_or_degrade(&plan.unenforced, &args, style, !plan.enforces_something())?;
        }

        let scope_path = match (&leaf, &args.cgroup) {
            (Some(l), _) => l.path().to_path_buf(),
            (None, Some(p)) => p.clone(),
            (None, None) => unreachable!("checked in run"),
        };
        let scope = Scope::of(&scope_path).map_err(failed)?;
        let (mut mon, refused) = Monitor::load(&plan, &scope, args.ringbuf_bytes)
            .with_context(|| format!("enforcing on {}", scope.path.display()))
            .map_err(failed)?;
        if !refused.is_empty() {
            // Dropping `mon` on the error path detaches what was attached.
            refuse_or_degrade(&refused, &args, style, plan.net.is_empty())?;
        }
        for (rule, path, why) in mon.unresolved_files() {
            eprintln!(
                "assay: note: rule `{rule}`: {}: {why}; watched, enforced once it exists",
                path.display()
            );
        }
        if args.pin.is_some() && mon.enforces_files() {
            return Err(config(
                "--pin keeps network enforcement only; file enforcement cannot be pinned (run \
                 the monitor under systemd instead)"
                    .into(),
            ));
        }
        if let Some(dir) = &args.pin {
            netguard::ensure_bpffs_dir(dir).map_err(failed)?;
            mon.pin(dir).map_err(failed)?;
        }
        let _pid_file = if args.daemon {
            Some(daemon::daemonize(&args.pid_file, &args.log_file).map_err(failed)?)
        } else {
            None
        };
        // From here on threads run: signals first, so all of them inherit
        // the blocked mask.
        let signals = process::Signals::install().context("installing signal handling")?;
        let sink = event_sink(&args)?;
        mon.start_events(sink, killer)
            .context("starting the event threads")?;
        crate::debug!(
            1,
            "enforcing {} network rule(s) on {}",
            plan.net.slots.len(),
            scope.path.display()
        );

        let changes = mon.file_changes().context("watching file rule paths")?;
        let status = match leaf {
            Some(leaf) => {
                // Stopped (Ctrl-C, SIGTERM) while starting: the command is
                // not started.
                if let Some(sig) = signals.stop_requested() {
                    let summary = mon.stop().map_err(|e| anyhow!(e))?;
                    drop(leaf);
                    print_summary(&summary, g, style);
                    eprintln!("assay: stopped by signal {sig} before the command started");
                    return Ok(Outcome::Monitor {
                        status: 128u8.wrapping_add(sig as u8),
                    });
                }
                let child = process::spawn_argv_in_cgroup(leaf.path(), &args.command);
                let child = match child {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = mon.stop();
                        return Err(anyhow!(
                            "starting {}: {e}",
                            args.command[0].to_string_lossy()
                        ));
                    }
                };
                signals
                    .forward_to
                    .store(child.id() as i32, std::sync::atomic::Ordering::SeqCst);
                let (exit_tx, exit_rx) = crossbeam_channel::bounded(1);
                std::thread::Builder::new()
                    .name("assay-wait".into())
                    .spawn(move || {
                        let mut child = child;
                        let _ = exit_tx.send(child.wait());
                    })
                    .context("starting the wait thread")?;
                let st = loop {
                    crossbeam_channel::select! {
                        recv(exit_rx) -> r => break r
                            .context("the wait thread ended")?
                            .context("waiting for the command")?,
                        // Already forwarded to the command by the signal thread.
                        recv(signals.rx) -> _ => {}
                        recv(changes) -> _ => mon.refresh_files(),
                    }
                };
                signals
                    .forward_to
                    .store(0, std::sync::atomic::Ordering::SeqCst);
                // Whatever the command left behind dies with it: nothing
                // keeps running once enforcement is gone.
                if let Err(e) = leaf.kill_all() {
                    eprintln!("assay: warning: {e}");
                }
                let summary = mon.stop().map_err(|e| anyhow!(e))?;
                drop(leaf);
                print_summary(&summary, g, style);
                process::exit_code(st)
            }
            None => {
                loop {
                    crossbeam_channel::select! {
                        recv(signals.rx) -> sig => {
                            let sig = sig.context("signal thread ended")?;
                            if process::STOP.contains(&sig) {
                                break;
                            }
                        }
                        recv(changes) -> _ => mon.refresh_files(),
                    }
                }
                if let Some(dir) = &args.pin {
                    eprintln!(
                        "assay: enforcement stays pinned in {}; `assay monitor --unpin {}` removes it",
                        dir.display(),
                        dir.display()
                    );
                }
                let summary = mon.stop().map_err(|e| anyhow!(e))?;
                print_summary(&summary, g, style);
                0
            }
        };
        Ok(Outcome::Monitor { status })
    }

    /// Rules that will not be enforced: exit 40 (nothing started) unless
    /// --allow-degraded, which names them loudly and goes on, if anything is
    /// left to enforce.
    fn refuse_or_degrade(
        list: &[Unenforceable],
        args: &Args,
        style: Style,
        nothing_left: bool,
    ) -> anyhow::Result<()> {
        if args.allow_degraded && !nothing_left {
            eprint!("{}", render::unenforced_text(list, style, true));
            return Ok(());
        }
        eprint!("{}", render::unenforced_text(list, style, false));
        Err(failed(anyhow!(
            "{}",
            if nothing_left {
                "nothing in the policy can be enforced on this host"
            } else {
                "rules that cannot be enforced (see above; --allow-degraded runs the rest)"
            }
        )))
    }

    fn event_sink(args: &Args) -> anyhow::Result<Box<dyn Sink>> {
        Ok(match &args.events {
            Some(p) => Box::new(render::JsonLines::new(
                File::options()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("opening the events file {}", p.display()))?,
            )),
            // Wrapper mode: stdout belongs to the command (an MCP stdio
            // server speaks JSON-RPC there).
            None if args.unpin.is_none() && (args.cgroup.is_none() || args.daemon) => {
                Box::new(render::JsonLines::new(io::stderr()))
            }
            None => Box::new(render::JsonLines::new(io::stdout())),
        })
    }

    fn print_summary(s: &Summary, g: &Global, style: Style) {
        let text = match g.format {
            Format::Json => render::summary_json(s),
            _ => render::summary_text(s, style),
        };
        let mut err = io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
    }

    /// The `trigger_kill` action, or why there is none: the kill switch
    /// stops the offender with capture, in the mode of the rule's
    /// `kill_switch.triggers` entry (immediate when it has none). In wrapper
    /// mode the unit is the whole wrapped server (its leaf cgroup): killing
    /// only a helper it spawned would leave the misbehaving server running.
    /// In attach mode the scope may hold unrelated services, so the unit is
    /// the offender's process tree.
    fn kill_action(policy: &Policy, server_cgroup: Option<PathBuf>) -> Result<Killer, String> {
        use crate::kill_switch::{
            self, CaptureOptions, DEFAULT_CAPTURE_BUDGET, Defaults, Reason, Target,
        };
        use crate::policy::model::KillMode;

        let cfg = policy.kill_switch.as_ref();
        if cfg.is_some_and(|c| !c.enabled) {
            return Err(format!(
                "kill_switch.enabled is false in {}",
                policy.source.display()
            ));
        }
        let defaults = Defaults::from_config(cfg);
        let triggers: Vec<(String, KillMode)> = cfg
            .map(|c| {
                c.triggers
                    .iter()
                    .map(|t| (t.on_rule.clone(), t.mode))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Box::new(move |o: &Offense| {
            let mode = triggers
                .iter()
                .find(|(r, _)| *r == *o.rule)
                .map_or(KillMode::Immediate, |(_, m)| *m);
            let target = match &server_cgroup {
                Some(cg) => Target::Cgroup(cg.clone()),
                None => Target::Pid(o.tgid as i32),
            };
            let mut req = defaults.request(
                vec![target],
                mode,
                Reason::Rule {
                    rule_id: o.rule.to_string(),
                    detail: o.detail.clone(),
                },
            );
            // A monitor kill always leaves evidence.
            req.capture.get_or_insert_with(|| CaptureOptions {
                output_dir: defaults.output_dir.clone(),
                redact: true,
                budget: DEFAULT_CAPTURE_BUDGET,
            });
            let report = kill_switch::execute(&req);
            KillEvent {
                time_ns: now_ns(),
                rule: o.rule.clone(),
                pid: o.tgid,
                all_gone: report.all_gone,
                incident: report.incident_dir.map(|p| p.display().to_string()),
                error: report.errors.first().cloned().or(report.incident_error),
            }
        }))
    }

    /// Detach first (remove the link pins), then read what the pinned ring
    /// buffer still holds and the drops nobody reported, then remove the map
    /// pins: nothing the programs produced goes unreported.
    fn unpin(dir: &Path, args: &Args, g: &Global) -> anyhow::Result<Outcome> {
        // The policy is checked before anything is removed.
        let plan = match &args.policy {
            Some(p) => {
                let policy = load_policy(p)?;
                Some(monitor::plan(rules(&policy, args)?, None).map_err(failed)?)
            }
            None => None,
        };
        let sink = event_sink(args)?;
        let mut removed = netguard::unpin(dir).map_err(failed)?;
        let summary = monitor::drain_pinned(dir, plan.as_ref(), sink).map_err(failed)?;
        removed.extend(netguard::unpin_maps(dir).map_err(failed)?);
        if removed.is_empty() {
            return Err(anyhow!(
                "{}: no assay enforcement is pinned there",
                dir.display()
            ));
        }
        for p in removed {
            eprintln!("assay: removed {}", p.display());
        }
        if let Some(s) = summary {
            if plan.is_none() && s.unknown > 0 {
                eprintln!(
                    "assay: {} event(s) could not be named without the policy used with --pin \
                     (--policy FILE)",
                    s.unknown
                );
            }
            print_summary(&s, g, stderr_style(g));
        }
        Ok(Outcome::Success)
    }
}
