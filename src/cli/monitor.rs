//! `assay monitor`: enforce a policy's `runtime_monitor` rules in the kernel,
//! and its `tools`/`schemas` on the wrapped server's stdio (the gate).

use std::ffi::OsString;
use std::path::PathBuf;

use crate::cli::Global;
use crate::exit::Outcome;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Wrapper mode (what goes into an MCP client's config):\n  \
    assay monitor --policy /etc/assay/policy.yaml -- npx -y @modelcontextprotocol/server-filesystem /srv\n\
Attach mode:\n  assay monitor --policy P --cgroup /sys/fs/cgroup/system.slice/mcp.service\n\
Remove pinned enforcement:\n  assay monitor --unpin /sys/fs/bpf/assay\n\
The tool-call gate alone (no privileges, no BPF):\n  \
assay monitor --gate-only --policy P -- uvx mcp-server-fetch\n\n\
Exit codes: wrapper mode exits with the command's status (128+N if signal N\n\
killed it); 0 attach mode, --unpin, --cleanup ended normally; 1 runtime error;\n\
2 invalid policy or command line (also: --cgroup not a cgroup v2 directory,\n\
--daemon with a pid file naming a live monitor, a --metrics address that\n\
cannot be listened on); 40 an enforcement could not\n\
be loaded or attached; 126 the command could not be executed; 127 the\n\
command was not found."
)]
pub struct Args {
    /// Policy file whose `runtime_monitor` rules are enforced (and, in
    /// wrapper mode, its `tools` and `schemas`, by the tool-call gate).
    #[arg(long, value_name = "FILE", required_unless_present_any = ["unpin", "cleanup"])]
    pub policy: Option<PathBuf>,
    /// Attach mode: enforce on this existing cgroup v2 directory (and below).
    #[arg(long, value_name = "PATH", conflicts_with = "command")]
    pub cgroup: Option<PathBuf>,
    /// Write events (JSON lines) to FILE. Default: stderr in wrapper mode,
    /// stdout in attach mode, the log file with --daemon. SIGHUP reopens
    /// FILE (after logrotate moved it). `syslog` sends them to the local
    /// syslog socket (/dev/log; `syslog:SOCKET` another) as RFC 5424
    /// messages, `journald` to the systemd journal (its native socket;
    /// `journald:SOCKET` another) with structured fields. A file of either
    /// name: `./syslog`.
    #[arg(long, value_name = "FILE|syslog|journald")]
    pub events: Option<PathBuf>,
    /// Rotate the events FILE before a write would take it past BYTES:
    /// FILE becomes FILE.1 (replacing the previous one).
    #[arg(long, value_name = "BYTES", requires = "events", value_parser = clap::value_parser!(u64).range(4096..))]
    pub events_max_bytes: Option<u64>,
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
    /// With --daemon: where the background monitor writes its pid (removed
    /// when it exits). A pid file naming a live monitor is refused (exit 2).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/run/assay-monitor.pid",
        requires = "daemon"
    )]
    pub pid_file: PathBuf,
    /// With --daemon: where the background monitor's stderr (notices,
    /// summary) and, without --events, its events go (appended).
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
    /// Wrapper mode: run the command as USER (and GROUP) instead of the
    /// invoking user. Only root may name another user.
    #[arg(long, value_name = "USER[:GROUP]", conflicts_with = "cgroup")]
    pub user: Option<String>,
    /// Wrapper mode, as root: keep root's capabilities in the command. It
    /// can then leave the scope, detach enforcement and use raw sockets;
    /// assay says so on stderr.
    #[arg(long, conflicts_with = "cgroup")]
    pub keep_capabilities: bool,
    /// Wrapper mode: let the command inherit this descriptor (repeatable).
    /// Every other descriptor above 2 is closed before it runs.
    #[arg(long, value_name = "FD", conflicts_with = "cgroup")]
    pub pass_fd: Vec<i32>,
    /// Find what monitors that died (SIGKILL, OOM) left behind, report it and
    /// tidy it: their events are written out (named with the rules of
    /// --policy, when given), a wrapper-mode monitor's leftover processes
    /// killed, and the pins that kept enforcing removed.
    #[arg(long, conflicts_with_all = ["cgroup", "command", "daemon", "pin", "unpin"])]
    pub cleanup: bool,
    /// Wrapper mode: run only the tool-call gate (the policy's `tools` and
    /// `schemas` judged on the command's stdio), without the kernel rules:
    /// no privileges, no BPF, any OS assay builds on.
    #[arg(long, conflicts_with_all = ["cgroup", "daemon", "pin", "unpin", "cleanup", "user", "keep_capabilities", "pass_fd"])]
    pub gate_only: bool,
    /// Leave the tools the policy denies in `tools/list` answers (their
    /// calls are still refused).
    #[arg(long, conflicts_with = "cgroup")]
    pub show_denied_tools: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics while enforcing:
    /// PORT (on 127.0.0.1), ADDRESS:PORT or [IPV6]:PORT.
    #[arg(long, value_name = "ADDR", value_parser = metrics_addr, conflicts_with_all = ["unpin", "cleanup", "gate_only"])]
    pub metrics: Option<std::net::SocketAddr>,
    /// Ring buffer size in bytes (a power of two, at least 4096).
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    pub ringbuf_bytes: u32,
    /// Wrapper mode: the command to run inside a fresh monitored cgroup.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// Where `--events` goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    File(PathBuf),
    /// The syslog socket.
    Syslog(PathBuf),
    /// The journal's native socket.
    Journald(PathBuf),
}

impl Dest {
    pub fn of(p: &std::path::Path) -> Dest {
        let s = p.to_string_lossy();
        match s.split_once(':') {
            _ if s == "syslog" => Dest::Syslog("/dev/log".into()),
            _ if s == "journald" => Dest::Journald("/run/systemd/journal/socket".into()),
            Some(("syslog", sock)) if !sock.is_empty() => Dest::Syslog(sock.into()),
            Some(("journald", sock)) if !sock.is_empty() => Dest::Journald(sock.into()),
            _ => Dest::File(p.to_path_buf()),
        }
    }
}

fn metrics_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    s.parse::<SocketAddr>()
        .map_err(|_| "give PORT (on 127.0.0.1), ADDRESS:PORT or [IPV6]:PORT".to_string())
}

#[cfg(all(target_os = "linux", feature = "monitor"))]
pub fn run(args: Args, g: &Global) -> anyhow::Result<Outcome> {
    if args.gate_only || gate::only_gate(&args) {
        return gate::run(args);
    }
    linux::run(args, g)
}

#[cfg(not(all(target_os = "linux", feature = "monitor")))]
pub fn run(args: Args, _g: &Global) -> anyhow::Result<Outcome> {
    #[cfg(unix)]
    if args.gate_only || gate::only_gate(&args) {
        return gate::run(args);
    }
    let _ = args;
    Err(crate::exit::Coded::new(
        crate::exit::Status::MonitorFailed,
        anyhow::anyhow!(
            "this build of assay has no runtime monitor (it needs Linux and the `monitor` \
             feature); `--gate-only` runs the tool-call gate alone"
        ),
    )
    .into())
}

#[cfg(unix)]
mod gate {
    //! `--gate-only`: the tool-call gate around the command, nothing else.

    use std::fs::File;
    use std::io::{self, Write};
    use std::sync::Mutex;

    use anyhow::anyhow;

    use super::{Args, Dest};
    use crate::exit::{Coded, Outcome, Status};
    use crate::gate::{self, run::Options};
    use crate::output::gate::tool_call_json;

    fn coded(status: Status, e: impl Into<anyhow::Error>) -> anyhow::Error {
        Coded::new(status, e).into()
    }

    /// Wrapper mode with a policy that has tool rules and no kernel rules
    /// to enforce: the gate alone, which needs no privileges (said on
    /// stderr). Any problem loading the policy is left to the full path to
    /// report.
    pub fn only_gate(args: &Args) -> bool {
        let (Some(path), false, None) = (&args.policy, args.command.is_empty(), &args.cgroup)
        else {
            return false;
        };
        if args.unpin.is_some() || args.cleanup {
            return false;
        }
        let Ok(policy) = crate::policy::load(path) else {
            return false;
        };
        // What the monitor would refuse as "nothing to enforce".
        let no_rules = match &policy.runtime_monitor {
            None => true,
            Some(rm) => rm.rules.is_empty() || (!rm.enabled && !args.ignore_disabled),
        };
        if no_rules && gate::wanted(&policy) {
            eprintln!(
                "assay: note: {}: no runtime_monitor rules to enforce; running the tool-call \
                 gate alone",
                path.display()
            );
            return true;
        }
        false
    }

    pub fn run(args: Args) -> anyhow::Result<Outcome> {
        let path = args.policy.clone().expect("clap requires --policy");
        let policy = crate::policy::load(&path).map_err(|e| coded(Status::ConfigInvalid, e))?;
        if args.command.is_empty() {
            return Err(coded(
                Status::ConfigInvalid,
                anyhow!("--gate-only: give the server's command (`-- COMMAND ARGS...`)"),
            ));
        }
        if !gate::wanted(&policy) {
            return Err(coded(
                Status::ConfigInvalid,
                anyhow!(
                    "{}: --gate-only: the policy has no `tools` or `schemas` to enforce",
                    path.display()
                ),
            ));
        }
        let judge = gate::judge_for(&policy, args.show_denied_tools)
            .map_err(|e| coded(Status::ConfigInvalid, e))?;
        let kill_after = gate::kill_after(&policy);
        if let Some(Dest::Syslog(_) | Dest::Journald(_)) = args.events.as_deref().map(Dest::of) {
            return Err(coded(
                Status::ConfigInvalid,
                anyhow!(
                    "--gate-only writes its events to stderr or a file, not syslog or journald"
                ),
            ));
        }
        // Events go to stderr unless --events: stdout is the MCP transport.
        let sink: Box<dyn Write + Send> = match &args.events {
            Some(p) => Box::new(
                File::options()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| anyhow!("opening the events file {}: {e}", p.display()))?,
            ),
            None => Box::new(io::stderr()),
        };
        let sink = Mutex::new(sink);
        let on_event = Box::new(move |ev: &gate::ToolCallEvent| {
            let mut line = tool_call_json(ev);
            line.push('\n');
            let mut w = sink.lock().unwrap_or_else(|e| e.into_inner());
            let _ = w.write_all(line.as_bytes());
            let _ = w.flush();
        });
        let kill = killer(&policy);
        let ran = gate::run::run(
            Options {
                command: args.command,
                judge,
                kill_after,
            },
            on_event,
            kill,
        )
        .map_err(|e| anyhow!("running the command behind the gate: {e}"))?;
        eprintln!(
            "assay: gate: {}",
            crate::output::gate::counts_text(&gate::run::Counts {
                calls: ran.calls,
                denied: ran.denied,
                killed: ran.killed,
            })
        );
        Ok(Outcome::Monitor { status: ran.status })
    }

    /// The kill switch for `on_tool_denials`: the server's whole tree, in
    /// the trigger's mode, evidence captured first.
    fn killer(policy: &crate::policy::model::Policy) -> gate::run::Kill {
        let mode = policy
            .kill_switch
            .as_ref()
            .and_then(|k| k.tool_denials)
            .map(|t| t.mode);
        let kills = crate::kill_switch::rule::RuleKills::from_policy(policy);
        Box::new(move |pids: Vec<i32>| {
            let (Some(mode), Ok(kills)) = (mode, kills) else {
                return;
            };
            let list: Vec<String> = pids.iter().map(i32::to_string).collect();
            eprintln!(
                "assay: repeated tool-call refusals: killing the server (pid {})",
                list.join(", ")
            );
            let report = kills.kill_in(
                gate::TRIGGER,
                mode,
                crate::kill_switch::Target::Pids(pids),
                "the tool-call gate refused the policy's limit of calls",
            );
            if let Some(dir) = &report.incident_dir {
                eprintln!("assay: incident record: {}", dir.display());
            }
            for e in report.errors.iter().chain(&report.incident_error) {
                eprintln!("assay: kill: {e}");
            }
        })
    }
}

#[cfg(all(target_os = "linux", feature = "monitor"))]
mod linux {
    //! Arguments in, a [`Session`] run, its notices and summary rendered.

    use std::io::{self, Write};
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex};

    use anyhow::anyhow;

    use super::Args;
    use crate::caps::{self, Authority};
    use crate::cli::Global;
    use crate::exit::{Coded, Outcome, Status};
    use crate::kill_switch::Target as KillTarget;
    use crate::kill_switch::rule::RuleKills;
    use crate::monitor::context::RunInfo;
    use crate::monitor::events::{KillDone, KillOrder, KillUnit, Killer, Sink, Summary};
    use crate::monitor::privilege::{self, Invoker, PrivilegeError, RunAs, UserSpec};
    use crate::monitor::session::{
        self, Config, DaemonFiles, GateWrap, KillSwitch, Notice, Session, SessionError,
        SinkFactory, Target,
    };
    use crate::output::events_file::EventsFile;
    use crate::output::monitor as render;
    use crate::output::{Format, Style};
    use crate::policy::model::Policy;

    fn coded(status: Status, e: impl Into<anyhow::Error>) -> anyhow::Error {
        Coded::new(status, e).into()
    }

    /// The exit status of each way a session fails: policy and usage
    /// problems are 2, anything that stops enforcement from being attached
    /// 40, the rest (threads, the command, I/O) 1.
    fn session_status(e: &SessionError) -> Status {
        match e {
            SessionError::PinTriggerKill(_) | SessionError::PinFiles => Status::ConfigInvalid,
            // As `env` and `timeout` do, so the command's own 1 stays its own.
            SessionError::Spawn { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                Status::CommandNotFound
            }
            SessionError::Spawn { source, .. }
                if source.kind() == io::ErrorKind::PermissionDenied
                    || source.raw_os_error() == Some(libc::ENOEXEC)
                    || source.raw_os_error() == Some(libc::EISDIR) =>
            {
                Status::CannotExecute
            }
            SessionError::Daemon(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Status::ConfigInvalid
            }
            SessionError::Unenforceable { .. }
            | SessionError::Plan(_)
            | SessionError::Cgroup(_)
            | SessionError::Load { .. }
            | SessionError::Pin(_)
            | SessionError::FailClosed(_)
            | SessionError::Daemon(_)
            | SessionError::Capabilities(_) => Status::MonitorFailed,
            _ => Status::Error,
        }
    }

    fn stderr_style(g: &Global) -> Style {
        use std::io::IsTerminal;
        Style {
            color: crate::output::color_for(g.color, g.no_color, io::stderr().is_terminal()),
            width: None,
        }
    }

    pub fn run(args: Args, g: &Global) -> anyhow::Result<Outcome> {
        match caps::authority() {
            Authority::Root => {}
            Authority::Capabilities { uid } => only_your_own(&args, uid)?,
            Authority::Missing { uid, missing } => {
                let exe = std::env::current_exe()
                    .map_or_else(|_| "assay".to_string(), |p| p.display().to_string());
                let names: Vec<&str> = missing.iter().map(|c| c.name()).collect();
                return Err(coded(
                    Status::MonitorFailed,
                    anyhow!(
                        "assay monitor needs root, or assay installed with the capabilities it \
                         uses (as root: `setcap {} {exe}`); uid {uid} lacks {}",
                        caps::setcap_spec(),
                        names.join(", ")
                    ),
                ));
            }
        }
        if let Some(dir) = &args.unpin {
            return unpin(dir, &args, g);
        }
        if args.cleanup {
            return cleanup(&args);
        }
        let path = args.policy.clone().expect("clap requires --policy");
        preflight(&args)?;
        let target = match (args.cgroup.clone(), args.command.is_empty()) {
            (Some(cgroup), _) => Target::Attach {
                cgroup,
                pin: args.pin.clone(),
                daemon: args.daemon.then(|| DaemonFiles {
                    pid_file: args.pid_file.clone(),
                    log_file: args.log_file.clone(),
                }),
            },
            (None, false) => Target::Wrap {
                command: args.command.clone(),
                run_as: run_as(&args)?,
            },
            (None, true) => {
                return Err(coded(
                    Status::ConfigInvalid,
                    anyhow!(
                        "give a command to run (`assay monitor --policy P -- COMMAND ARGS...`) \
                         or a cgroup to attach to (`--cgroup PATH`)"
                    ),
                ));
            }
        };
        let (policy, text) =
            crate::policy::load_with_text(&path).map_err(|e| coded(Status::ConfigInvalid, e))?;
        let run = RunInfo::of_host(policy.metadata.name.clone(), Some(text.as_bytes()));
        let rules = session::runtime_rules(&policy, args.ignore_disabled)
            .map_err(|e| coded(Status::ConfigInvalid, e))?;
        let gate = match &target {
            Target::Wrap { .. } if crate::gate::wanted(&policy) => Some(GateWrap {
                setup: crate::gate::Setup {
                    judge: crate::gate::judge_for(&policy, args.show_denied_tools)
                        .map_err(|e| coded(Status::ConfigInvalid, e))?,
                    kill_after: crate::gate::kill_after(&policy),
                },
                kill: gate_kill(&policy),
            }),
            _ => None,
        };
        let config = Config {
            gate,
            rules,
            target,
            ringbuf_bytes: args.ringbuf_bytes,
            allow_degraded: args.allow_degraded,
            libbpf_log: g.verbose,
            self_protection: policy
                .runtime_monitor
                .as_ref()
                .map(|r| r.self_protection)
                .unwrap_or_default(),
        };
        let style = stderr_style(g);
        let allow_degraded = args.allow_degraded;
        let attach = args.cgroup.is_some();
        let notices = Box::new(move |n: Notice| notice(&n, style, allow_degraded, attach));
        let reopen = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let events = EventsTo::of(&args, run, reopen.clone()).factory();
        let mut session =
            Session::new(config, kill_switch(&policy), events, notices).with_reopen(reopen);
        if let Some(addr) = args.metrics {
            let l = std::net::TcpListener::bind(addr).map_err(|e| {
                coded(
                    Status::ConfigInvalid,
                    anyhow!("--metrics {addr}: cannot listen there: {e}"),
                )
            })?;
            if !addr.ip().is_loopback() {
                eprintln!(
                    "assay: warning: --metrics {addr} is reachable from other hosts: anyone who \
                     can connect reads the policy's rule names and counts"
                );
            }
            session = session.with_metrics(l);
        }
        let ended = session.run().map_err(|e| {
            if let SessionError::Unenforceable { rules, .. } = &e {
                eprint!("{}", render::unenforced_text(rules, style, false));
            }
            coded(session_status(&e), e)
        })?;
        print_summary(&ended.summary, g, style);
        if let Some(sig) = ended.stopped_before_start {
            eprintln!("assay: stopped by signal {sig} before the command started");
        }
        Ok(Outcome::Monitor {
            status: ended.status,
        })
    }

    fn enforcing_text(net_rules: usize, file_rules: bool) -> String {
        let net = format!("{net_rules} network rule(s)");
        if file_rules {
            format!("{net} and the file rules")
        } else {
            net
        }
    }

    /// The warning for attaching to the cgroup2 root: every process of the
    /// host is then in scope.
    pub(super) fn root_warning(cgroup: &Path, mount: &Path) -> Option<String> {
        let same = |a: &Path, b: &Path| {
            let c = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
            c(a) == c(b)
        };
        same(cgroup, mount).then(|| {
            format!(
                "--cgroup {} is the cgroup2 root: the policy applies to every process on this \
                 host",
                cgroup.display()
            )
        })
    }

    /// Usage errors that must not look like a failed attach (40): a
    /// `--cgroup` that is not a cgroup v2 directory, a `--daemon` whose pid
    /// file names a live monitor.
    fn preflight(args: &Args) -> anyhow::Result<()> {
        if let (Some(ev), Some(_)) = (&args.events, args.events_max_bytes) {
            if !matches!(super::Dest::of(ev), super::Dest::File(_)) {
                return Err(coded(
                    Status::ConfigInvalid,
                    anyhow!(
                        "--events-max-bytes rotates an events file, not {}",
                        ev.display()
                    ),
                ));
            }
        }
        if let Some(cg) = &args.cgroup {
            if !cg.join("cgroup.procs").is_file() {
                let why = if cg.is_dir() {
                    "not a cgroup v2 directory (no cgroup.procs)"
                } else {
                    "no such directory"
                };
                return Err(coded(
                    Status::ConfigInvalid,
                    anyhow!("--cgroup {}: {why}", cg.display()),
                ));
            }
            let mount = crate::monitor::cgroup::cgroup2_mount();
            if let Some(w) = mount.ok().and_then(|m| root_warning(cg, &m)) {
                eprintln!("assay: warning: {w}");
            }
        }
        if args.daemon {
            if let Some(pid) = crate::monitor::daemon::live_pid(&args.pid_file) {
                return Err(coded(
                    Status::ConfigInvalid,
                    anyhow!(
                        "--daemon: {} names a monitor that is running (pid {pid}); stop it \
                         or give another --pid-file",
                        args.pid_file.display()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A user (file capabilities) may confine their own command, or attach
    /// to a cgroup they own: nothing that acts beyond that.
    fn only_your_own(args: &Args, uid: u32) -> anyhow::Result<()> {
        let refuse = |what: String| {
            Err(coded(
                Status::ConfigInvalid,
                anyhow!("{what}: only root may do this (assay runs as uid {uid} here)"),
            ))
        };
        for (given, flag) in [
            (args.unpin.is_some(), "--unpin"),
            (args.cleanup, "--cleanup"),
            (args.pin.is_some(), "--pin"),
            (args.daemon, "--daemon"),
            (args.keep_capabilities, "--keep-capabilities"),
        ] {
            if given {
                return refuse(flag.to_string());
            }
        }
        if let Some(cg) = &args.cgroup {
            use std::os::unix::fs::MetadataExt;
            let owner = std::fs::metadata(cg)
                .map_err(|e| {
                    coded(
                        Status::ConfigInvalid,
                        anyhow!("--cgroup {}: {e}", cg.display()),
                    )
                })?
                .uid();
            if owner != uid {
                return refuse(format!(
                    "--cgroup {}: a cgroup of uid {owner}, not yours",
                    cg.display()
                ));
            }
        }
        Ok(())
    }

    /// Who the command runs as; says on stderr when that is root.
    fn run_as(args: &Args) -> anyhow::Result<RunAs> {
        let usage = |e: PrivilegeError| coded(Status::ConfigInvalid, e);
        let spec = args
            .user
            .as_deref()
            .map(str::parse::<UserSpec>)
            .transpose()
            .map_err(usage)?;
        if let Some(fd) = args.pass_fd.iter().find(|fd| !privilege::is_open(**fd)) {
            return Err(coded(
                Status::ConfigInvalid,
                anyhow!("--pass-fd {fd}: not an open descriptor of assay"),
            ));
        }
        let r = privilege::run_as(
            &Invoker::current(),
            &privilege::System,
            spec.as_ref(),
            args.keep_capabilities,
            args.pass_fd.clone(),
        )
        .map_err(usage)?;
        if r.privileged() {
            eprintln!(
                "assay: warning: --keep-capabilities: the command runs as root with every \
                 capability; it can leave the monitored cgroup, signal assay, detach or rewrite \
                 the BPF enforcement, open raw sockets and read block devices (see \
                 docs/security.md)"
            );
        } else if r.uid == 0 {
            eprintln!(
                "assay: note: the command runs as root with no capabilities (no sudo user to run \
                 it as; --user USER chooses one, --keep-capabilities keeps root's capabilities)"
            );
        }
        Ok(r)
    }

    fn load_policy(path: &Path) -> anyhow::Result<Policy> {
        crate::policy::load(path).map_err(|e| coded(Status::ConfigInvalid, e))
    }

    /// `attach`: attach mode, which says on stderr what it enforces where
    /// (wrapper mode keeps quiet: its stderr is the MCP client's log).
    fn notice(n: &Notice, style: Style, allow_degraded: bool, attach: bool) {
        match n {
            Notice::Degraded(list) => {
                eprint!("{}", render::unenforced_text(list, style, allow_degraded));
            }
            Notice::Unresolved { rule, path, why } => eprintln!(
                "assay: note: rule `{rule}`: {}: {why}; watched, enforced once it exists",
                path.display()
            ),
            Notice::Enforcing {
                net_rules,
                file_rules,
                scope,
            } => {
                let what = enforcing_text(*net_rules, *file_rules);
                if attach {
                    eprintln!("assay: enforcing {what} on cgroup {}", scope.display());
                } else {
                    crate::debug!(1, "enforcing {what} on {}", scope.display());
                }
            }
            Notice::StaysPinned(dir) => eprintln!(
                "assay: enforcement stays pinned in {}; `assay monitor --unpin {}` removes it",
                dir.display(),
                dir.display()
            ),
            Notice::Tidied(t) => eprint!("{}", render::tidy_text(t)),
            Notice::OrphanLeft(o) => eprintln!(
                "assay: note: a monitor (pid {}) died and its enforcement is still pinned \
                 ({}); `assay monitor --cleanup` removes it",
                o.pid(),
                o.name()
            ),
            Notice::Unguarded { capabilities } => eprintln!(
                "assay: note: no self-protection here (the BPF LSM is not active, the kernel \
                 refuses BPF LSM programs, or the policy turned it off), so a process in the \
                 scope that runs as root can still leave it through cgroup.procs, signal assay \
                 and read block devices{} (docs/security.md)",
                if *capabilities {
                    ", and with its capabilities use bpf() and packet sockets"
                } else {
                    ""
                }
            ),
            Notice::Warning(w) => eprintln!("assay: warning: {w}"),
        }
    }

    /// Where events go: `--events FILE`, else stderr in wrapper mode (stdout
    /// belongs to the command: an MCP stdio server speaks JSON-RPC there) and
    /// with --daemon (the log file), else stdout.
    struct EventsTo {
        file: Option<PathBuf>,
        max_bytes: Option<u64>,
        stderr: bool,
        run: RunInfo,
        /// Set on SIGHUP: the events file is reopened.
        reopen: Arc<std::sync::atomic::AtomicBool>,
    }

    impl EventsTo {
        fn of(args: &Args, run: RunInfo, reopen: Arc<std::sync::atomic::AtomicBool>) -> EventsTo {
            EventsTo {
                run,
                reopen,
                max_bytes: args.events_max_bytes,
                file: args.events.clone(),
                stderr: args.unpin.is_none()
                    && !args.cleanup
                    && (args.cgroup.is_none() || args.daemon),
            }
        }

        fn open(&self) -> io::Result<Box<dyn Sink>> {
            use crate::output::event_sinks::{Journald, Syslog};
            let run = &self.run;
            Ok(
                match (self.file.as_deref().map(super::Dest::of), self.stderr) {
                    (Some(super::Dest::File(p)), _) => Box::new(render::JsonLines::with_run(
                        EventsFile::open(&p, self.max_bytes, self.reopen.clone())?,
                        run,
                    )),
                    (Some(super::Dest::Syslog(sock)), _) => Box::new(Syslog::connect(&sock, run)?),
                    (Some(super::Dest::Journald(sock)), _) => {
                        Box::new(Journald::connect(&sock, run)?)
                    }
                    (None, true) => Box::new(render::JsonLines::with_run(io::stderr(), run)),
                    (None, false) => Box::new(render::JsonLines::with_run(io::stdout(), run)),
                },
            )
        }

        fn factory(self) -> SinkFactory {
            Box::new(move || self.open().map_err(Into::into))
        }
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

    /// The kill switch as the policy configures it, as the monitor calls it.
    fn kill_switch(policy: &Policy) -> KillSwitch {
        let kills = match RuleKills::from_policy(policy) {
            Ok(k) => k,
            Err(why) => return KillSwitch::Unavailable(why.to_string()),
        };
        KillSwitch::Available(Box::new(move |o: &KillOrder| {
            let target = match &o.unit {
                KillUnit::Cgroup(cg) => KillTarget::Cgroup(cg.clone()),
                KillUnit::Tree(pid) => KillTarget::Pid(*pid as i32),
            };
            let report = kills.kill(&o.rule, target, &o.detail);
            KillDone {
                all_gone: report.all_gone,
                incident: report.incident_dir.map(|p| p.display().to_string()),
                error: report.errors.first().cloned().or(report.incident_error),
            }
        }))
    }

    /// The kill switch for the gate's `on_tool_denials`, in its mode.
    fn gate_kill(policy: &Policy) -> Option<Arc<Mutex<Killer>>> {
        let mode = policy.kill_switch.as_ref()?.tool_denials?.mode;
        let kills = RuleKills::from_policy(policy).ok()?;
        let killer: Killer = Box::new(move |o: &KillOrder| {
            let target = match &o.unit {
                KillUnit::Cgroup(cg) => KillTarget::Cgroup(cg.clone()),
                KillUnit::Tree(pid) => KillTarget::Pid(*pid as i32),
            };
            let report = kills.kill_in(&o.rule, mode, target, &o.detail);
            KillDone {
                all_gone: report.all_gone,
                incident: report.incident_dir.map(|p| p.display().to_string()),
                error: report.errors.first().cloned().or(report.incident_error),
            }
        });
        Some(Arc::new(Mutex::new(killer)))
    }

    fn cleanup(args: &Args) -> anyhow::Result<Outcome> {
        let rules = match &args.policy {
            Some(p) => Some(
                session::runtime_rules(&load_policy(p)?, args.ignore_disabled)
                    .map_err(|e| coded(Status::ConfigInvalid, e))?,
            ),
            None => None,
        };
        let to = EventsTo::of(args, RunInfo::of_host(None, None), Arc::default());
        let tidied = session::cleanup(rules.as_deref(), &mut || to.open())
            .map_err(|e| coded(Status::MonitorFailed, e))?;
        if tidied.is_empty() {
            eprintln!("assay: no monitor that died left anything behind");
        }
        for t in &tidied {
            eprint!("{}", render::tidy_text(t));
        }
        Ok(Outcome::Success)
    }

    fn unpin(dir: &Path, args: &Args, g: &Global) -> anyhow::Result<Outcome> {
        let rules = match &args.policy {
            Some(p) => Some(
                session::runtime_rules(&load_policy(p)?, args.ignore_disabled)
                    .map_err(|e| coded(Status::ConfigInvalid, e))?,
            ),
            None => None,
        };
        let sink = EventsTo::of(args, RunInfo::of_host(None, None), Arc::default()).open()?;
        let done = session::unpin(dir, rules.as_deref(), sink).map_err(|e| match e {
            session::UnpinError::NothingPinned(_) => anyhow::Error::new(e),
            _ => coded(Status::MonitorFailed, e),
        })?;
        for p in &done.removed {
            eprintln!("assay: removed {}", p.display());
        }
        if let Some(s) = done.summary {
            if rules.is_none() && s.unknown > 0 {
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
