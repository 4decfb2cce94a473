//! A monitor's whole life, from a plain [`Config`] to an [`Ended`] summary:
//!
//! 1. signals blocked first (a stop request during start-up waits for the
//!    signal thread instead of killing assay half-started);
//! 2. the scope: a fresh leaf cgroup (wrapper mode) or the given one;
//! 3. the plan, and the decision to refuse or degrade ([`admit`]);
//! 4. load and attach, pin (`--pin`), daemonize (`--daemon`);
//! 5. the signal thread, the event pipeline, the file watch;
//! 6. the command (wrapper mode), then the loop of [`step`] until the command
//!    exits or a stop signal arrives;
//! 7. shutdown: the leaf's survivors killed, programs detached, events
//!    drained, the summary returned.
//!
//! The kill switch is injected ([`KillSwitch`]); what the caller should show
//! while it runs comes back as [`Notice`]s. Nothing here prints.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, never, select};

use super::cgroup::{CgroupError, LeafCgroup, Scope};
use super::compile::Unenforceable;
use super::events::{Event, KillEvent, KillOrder, KillUnit, Killer, Sink, Summary};
use super::failclosed::{self, FailClosedError, Keeper, Orphan, Owner};
use super::netguard::{self, LoadError};
use super::pipeline::KillPlan;
use super::privilege::RunAs;
use super::process::{self, STOP, Signals};
use super::{Monitor, PinError, PlanError, StopError, daemon};
use crate::policy::model::{Action, Policy, Rule, SelfProtection};

/// What to confine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Wrapper mode: run this command in a fresh leaf cgroup, as `run_as`
    /// says.
    Wrap {
        command: Vec<OsString>,
        run_as: RunAs,
    },
    /// Attach mode: enforce on an existing cgroup (and below).
    Attach {
        cgroup: PathBuf,
        /// Pin the network enforcement here (bpffs) so it outlives assay.
        pin: Option<PathBuf>,
        /// Run in the background.
        daemon: Option<DaemonFiles>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonFiles {
    pub pid_file: PathBuf,
    pub log_file: PathBuf,
}

/// Everything a session needs, as plain data.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `runtime_monitor` rules (see [`runtime_rules`]).
    pub rules: Vec<Rule>,
    pub target: Target,
    pub ringbuf_bytes: u32,
    /// Run what can be enforced when some rules cannot (each is noticed).
    pub allow_degraded: bool,
    /// libbpf's own log lines on stderr: 0 none, 1 info, 2 and more debug.
    pub libbpf_log: u8,
    /// The policy's `runtime_monitor.self_protection`.
    pub self_protection: SelfProtection,
    /// Wrapper mode: the tool-call gate on the command's stdio (the policy
    /// has `tools` or `schemas`).
    pub gate: Option<GateWrap>,
}

/// The tool-call gate in wrapper mode, and the kill switch for its
/// `on_tool_denials` trigger.
#[derive(Clone)]
pub struct GateWrap {
    pub setup: crate::gate::Setup,
    /// Called (on the gate's thread) when the refusals reach the limit.
    pub kill: Option<Arc<Mutex<Killer>>>,
}

impl std::fmt::Debug for GateWrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GateWrap")
            .field("setup", &self.setup)
            .field("kill", &self.kill.is_some())
            .finish()
    }
}

/// The sink behind a [`SharedSink`].
type Shared = Arc<Mutex<Box<dyn Sink>>>;

/// One sink written by the event pipeline and the gate, a whole event at a
/// time.
struct SharedSink(Shared);

impl Sink for SharedSink {
    fn event(&mut self, ev: &Event) -> io::Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).event(ev)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}

/// The kill switch for `trigger_kill` rules, or why there is none.
pub enum KillSwitch {
    Available(Killer),
    Unavailable(String),
}

/// What the caller should tell the user while the session runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// These rules are not enforced; the rest is (`allow_degraded`).
    Degraded(Vec<Unenforceable>),
    /// A file rule path that does not resolve yet: watched, enforced once
    /// it exists.
    Unresolved {
        rule: String,
        path: PathBuf,
        why: String,
    },
    /// Enforcement is attached and the event threads run.
    Enforcing {
        net_rules: usize,
        /// File rules are enforced too (BPF LSM).
        file_rules: bool,
        scope: PathBuf,
    },
    /// Attach mode with `--pin`: enforcement stays after exit.
    StaysPinned(PathBuf),
    /// What a dead monitor left behind, tidied.
    Tidied(Tidy),
    /// No self-protection (the BPF LSM is not active): what a root process
    /// in the scope can still do is the caller's to say. `capabilities`:
    /// such a process may hold capabilities (attach mode, or the command
    /// kept them).
    Unguarded {
        capabilities: bool,
    },
    /// A dead attach-mode monitor's enforcement, still pinned on another
    /// cgroup (`assay monitor --cleanup` removes it).
    OrphanLeft(Owner),
    Warning(String),
}

/// What tidying a dead monitor's leftovers did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tidy {
    pub owner: Owner,
    /// Its leaf (wrapper mode), killed and removed.
    pub leaf: Option<PathBuf>,
    /// Events its pinned programs produced after it died, and drops.
    pub events: u64,
    pub dropped: u64,
}

impl Tidy {
    pub fn of(t: &failclosed::Tidied) -> Tidy {
        Tidy {
            owner: t.orphan.owner,
            leaf: t.leaf.clone(),
            events: t.summary.as_ref().map_or(0, |s| s.delivered),
            dropped: t.summary.as_ref().map_or(0, |s| s.dropped),
        }
    }
}

/// Counts nothing, writes nothing: events of a dead monitor tidied at
/// start-up are reported as counts.
struct Discard;

impl Sink for Discard {
    fn event(&mut self, _: &super::events::Event) -> io::Result<()> {
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Ended {
    pub summary: Summary,
    /// The command's exit status (shell convention), or 0 in attach mode.
    pub status: u8,
    /// Wrapper mode: a stop signal arrived before the command started, so
    /// it never ran.
    pub stopped_before_start: Option<i32>,
}

/// Opens where events go; called once enforcement runs (after `--daemon`
/// has redirected the standard streams).
pub type SinkFactory =
    Box<dyn FnOnce() -> Result<Box<dyn Sink>, Box<dyn std::error::Error + Send + Sync>>>;

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("{}: the policy has no runtime_monitor block", .0.display())]
    NoBlock(PathBuf),
    #[error(
        "{}: runtime_monitor.enabled is false, so there is nothing to enforce; set it to true, \
         or pass --ignore-disabled to enforce the rules anyway",
        .0.display()
    )]
    Disabled(PathBuf),
    #[error("{}: runtime_monitor has no rules", .0.display())]
    NoRules(PathBuf),
}

/// The rules a policy gives the monitor, or why it gives none.
pub fn runtime_rules(policy: &Policy, ignore_disabled: bool) -> Result<Vec<Rule>, RulesError> {
    let src = || policy.source.clone();
    let rm = policy
        .runtime_monitor
        .as_ref()
        .ok_or_else(|| RulesError::NoBlock(src()))?;
    if !rm.enabled && !ignore_disabled {
        return Err(RulesError::Disabled(src()));
    }
    if rm.rules.is_empty() {
        return Err(RulesError::NoRules(src()));
    }
    Ok(rm.rules.clone())
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(
        "--pin cannot keep rule `{0}`: trigger_kill needs the running monitor to kill; run the \
         monitor under systemd instead, or use action deny"
    )]
    PinTriggerKill(String),
    #[error(
        "--pin keeps network enforcement only; file enforcement cannot be pinned (run the \
         monitor under systemd instead)"
    )]
    PinFiles,
    /// Rules that cannot be enforced, without `allow_degraded` (or with
    /// nothing left to enforce). The caller shows the list.
    #[error("{}", if *nothing_left {
        "nothing in the policy can be enforced on this host"
    } else {
        "rules that cannot be enforced (see above; --allow-degraded runs the rest)"
    })]
    Unenforceable {
        rules: Vec<Unenforceable>,
        nothing_left: bool,
    },
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error("enforcing on {}", scope.display())]
    Load {
        scope: PathBuf,
        #[source]
        source: LoadError,
    },
    #[error(transparent)]
    Pin(PinError),
    #[error(
        "cannot keep enforcement alive if assay is killed: {0} (--allow-degraded runs without)"
    )]
    FailClosed(#[source] FailClosedError),
    #[error(transparent)]
    Daemon(io::Error),
    #[error("raising the capabilities to load BPF")]
    Capabilities(#[source] io::Error),
    #[error("blocking signals")]
    BlockSignals(#[source] io::Error),
    #[error("installing signal handling")]
    SignalThread(#[source] io::Error),
    #[error("the signal thread ended")]
    SignalsGone,
    #[error(transparent)]
    Sink(Box<dyn std::error::Error + Send + Sync>),
    #[error("starting the event threads")]
    EventThreads(#[source] io::Error),
    #[error("watching file rule paths")]
    Watch(#[source] io::Error),
    #[error("starting {program}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("starting the tool-call gate")]
    Gate(#[source] io::Error),
    #[error("starting the wait thread")]
    WaitThread(#[source] io::Error),
    #[error("the wait thread ended")]
    WaitGone,
    #[error("waiting for the command")]
    Wait(#[source] io::Error),
    #[error(transparent)]
    Stop(#[from] StopError),
}

/// Rules that will not be enforced: an error (nothing starts) unless
/// `allow_degraded` and something is left to enforce; then a notice.
pub fn admit(
    list: &[Unenforceable],
    allow_degraded: bool,
    nothing_left: bool,
) -> Result<Option<Notice>, SessionError> {
    if list.is_empty() {
        return Ok(None);
    }
    if allow_degraded && !nothing_left {
        return Ok(Some(Notice::Degraded(list.to_vec())));
    }
    Err(SessionError::Unenforceable {
        rules: list.to_vec(),
        nothing_left,
    })
}

/// After exit nothing would kill: a pinned `trigger_kill` rule would
/// silently become a deny.
pub fn check_pin(rules: &[Rule]) -> Result<(), SessionError> {
    match rules.iter().find(|r| r.action == Action::TriggerKill) {
        Some(r) => Err(SessionError::PinTriggerKill(r.id.clone())),
        None => Ok(()),
    }
}

/// What happened while enforcing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The wrapped command exited with this status.
    Exited(u8),
    /// A handled signal arrived (in wrapper mode already forwarded).
    Signal(i32),
    /// A directory of a file rule path changed.
    FilesChanged,
}

/// What the session does about an [`Input`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Continue,
    /// Re-resolve the file rule paths.
    Refresh,
    /// Reopen the events file (SIGHUP: logrotate moved it away).
    Reopen,
    /// Shut down; the session's status.
    Stop(u8),
}

/// The running session's transitions. Wrapper mode ends when the command
/// does (signals were forwarded to it); attach mode on a stop signal.
pub fn step(wrapped: bool, input: Input) -> Step {
    match input {
        Input::FilesChanged => Step::Refresh,
        Input::Exited(status) => Step::Stop(status),
        // In wrapper mode also forwarded to the command (its own meaning).
        Input::Signal(libc::SIGHUP) => Step::Reopen,
        Input::Signal(_) if wrapped => Step::Continue,
        Input::Signal(s) if STOP.contains(&s) => Step::Stop(0),
        Input::Signal(_) => Step::Continue,
    }
}

/// The status of a wrapper-mode session stopped before its command ran.
pub fn stopped_status(sig: i32) -> u8 {
    128u8.wrapping_add(sig as u8)
}

/// libbpf's own log lines (e.g. the verifier refusing a program) are noise
/// next to assay's message, which says what failed and how to fix it; shown
/// on request.
fn libbpf_log(level: u8) {
    fn print(_: libbpf_rs::PrintLevel, msg: String) {
        eprint!("{msg}");
    }
    let level = match level {
        0 => None,
        1 => Some(libbpf_rs::PrintLevel::Info),
        _ => Some(libbpf_rs::PrintLevel::Debug),
    };
    libbpf_rs::set_print(level.map(|l| (l, print as libbpf_rs::PrintCallback)));
}

/// The scope a session confines, with what it owns.
enum Scoped {
    Leaf {
        leaf: LeafCgroup,
        command: Vec<OsString>,
        run_as: RunAs,
    },
    Attached {
        cgroup: PathBuf,
        pin: Option<PathBuf>,
        daemon: Option<DaemonFiles>,
    },
}

impl Scoped {
    fn path(&self) -> &Path {
        match self {
            Scoped::Leaf { leaf, .. } => leaf.path(),
            Scoped::Attached { cgroup, .. } => cgroup,
        }
    }
}

/// One monitor run. See the module documentation for its phases.
pub struct Session {
    config: Config,
    kill: KillSwitch,
    sink: SinkFactory,
    notices: Box<dyn FnMut(Notice)>,
    /// Rules not enforced in this run (with `allow_degraded`).
    degraded: Vec<Unenforceable>,
    /// Where `--metrics` are served (bound by the caller).
    metrics: Option<std::net::TcpListener>,
    /// Set on SIGHUP; the events file sink reopens its file when it sees it.
    reopen: Arc<std::sync::atomic::AtomicBool>,
}

impl Session {
    pub fn new(
        config: Config,
        kill: KillSwitch,
        sink: SinkFactory,
        notices: Box<dyn FnMut(Notice)>,
    ) -> Session {
        Session {
            config,
            kill,
            sink,
            notices,
            degraded: Vec::new(),
            metrics: None,
            reopen: Arc::default(),
        }
    }

    /// The flag SIGHUP sets (the sink that writes the events file reopens
    /// it when set).
    pub fn with_reopen(mut self, flag: Arc<std::sync::atomic::AtomicBool>) -> Session {
        self.reopen = flag;
        self
    }

    /// Serve Prometheus metrics on `listener` while enforcing.
    pub fn with_metrics(mut self, listener: std::net::TcpListener) -> Session {
        self.metrics = Some(listener);
        self
    }

    pub fn run(mut self) -> Result<Ended, SessionError> {
        // Before anything is attached: see the module documentation.
        process::block_signals().map_err(SessionError::BlockSignals)?;
        crate::caps::enter_session().map_err(SessionError::Capabilities)?;
        libbpf_log(self.config.libbpf_log);
        let rules = std::mem::take(&mut self.config.rules);
        let scoped = match self.config.target.clone() {
            Target::Wrap { command, run_as } => Scoped::Leaf {
                leaf: LeafCgroup::create()?,
                command,
                run_as,
            },
            Target::Attach {
                cgroup,
                pin,
                daemon,
            } => {
                if pin.is_some() {
                    check_pin(&rules)?;
                }
                Scoped::Attached {
                    cgroup,
                    pin,
                    daemon,
                }
            }
        };
        let orphans = self.tidy_orphans();
        let (mut mon, scope) = self.load(&rules, &scoped)?;
        let _pid_file = match &scoped {
            Scoped::Attached { pin: Some(_), .. } if mon.enforces_files() => {
                return Err(SessionError::PinFiles);
            }
            Scoped::Attached { pin, daemon, .. } => {
                if let Some(dir) = pin {
                    netguard::ensure_bpffs_dir(dir).map_err(|e| SessionError::Pin(e.into()))?;
                    mon.pin(dir, false).map_err(SessionError::Pin)?;
                }
                match daemon {
                    Some(d) => {
                        // Said on the terminal before it is left (and again
                        // in the log once the events run).
                        (self.notices)(Notice::Enforcing {
                            net_rules: mon.net_rules(),
                            file_rules: mon.enforces_files(),
                            scope: scoped.path().to_path_buf(),
                        });
                        Some(
                            daemon::daemonize(&d.pid_file, &d.log_file)
                                .map_err(SessionError::Daemon)?,
                        )
                    }
                    None => None,
                }
            }
            Scoped::Leaf { .. } => None,
        };
        let root_in_scope = match &scoped {
            Scoped::Leaf { run_as, .. } => (run_as.uid == 0).then_some(run_as.privileged()),
            Scoped::Attached { .. } => Some(true),
        };
        if let (Some(capabilities), false) = (root_in_scope, mon.self_protected()) {
            (self.notices)(Notice::Unguarded { capabilities });
        }
        // After the daemon's fork: the pins are named by the pid that holds
        // them. An explicit --pin already keeps enforcement.
        let keeper = match &scoped {
            Scoped::Attached { pin: Some(_), .. } => None,
            Scoped::Leaf { .. } => self.keep(
                &mut mon,
                Owner::Leaf {
                    pid: std::process::id(),
                },
            )?,
            Scoped::Attached { .. } => self.keep(
                &mut mon,
                Owner::Cgroup {
                    id: scope.cgroup_id,
                    pid: std::process::id(),
                },
            )?,
        };
        // A dead monitor's pins on this same cgroup: this one enforces now.
        for o in orphans {
            if matches!(o.owner, Owner::Cgroup { id, .. } if id == scope.cgroup_id) {
                self.tidy_one(&o);
            } else {
                (self.notices)(Notice::OrphanLeft(o.owner));
            }
        }
        // From here on threads run: signals first, so all of them inherit
        // the blocked mask.
        let signals = Signals::install().map_err(SessionError::SignalThread)?;
        let mut sink = (self.sink)().map_err(SessionError::Sink)?;
        let gate = match self.config.gate.take() {
            Some(g) if matches!(scoped, Scoped::Leaf { .. }) => {
                let shared = Arc::new(Mutex::new(sink));
                sink = Box::new(SharedSink(shared.clone()));
                Some((g, shared))
            }
            _ => None,
        };
        let kill = match self.kill {
            KillSwitch::Available(killer) => Some(KillPlan {
                killer,
                cgroup: match &scoped {
                    Scoped::Leaf { leaf, .. } => Some(leaf.path().to_path_buf()),
                    Scoped::Attached { .. } => None,
                },
            }),
            KillSwitch::Unavailable(_) => None,
        };
        let mode = match &scoped {
            Scoped::Leaf { .. } => "wrap",
            Scoped::Attached { .. } => "attach",
        };
        let start = mon.start_event(mode, &self.degraded);
        // Served from here until the session returns (the server's Drop
        // stops its thread).
        let (counters, _metrics_server) = match self.metrics.take() {
            Some(listener) => {
                let (m, ring) = mon.metrics(self.config.ringbuf_bytes);
                if let Err(e) = ring {
                    (self.notices)(Notice::Warning(format!(
                        "metrics: the ring buffer's fill cannot be read: {e}"
                    )));
                }
                let m = Arc::new(m);
                let server = super::metrics::Server::start(listener, m.clone())
                    .map_err(SessionError::EventThreads)?;
                (Some(m), Some(server))
            }
            None => (None, None),
        };
        mon.start_events_full(sink, kill, Some(start), counters.clone())
            .map_err(SessionError::EventThreads)?;
        (self.notices)(Notice::Enforcing {
            net_rules: mon.net_rules(),
            file_rules: mon.enforces_files(),
            scope: scoped.path().to_path_buf(),
        });
        let changes = mon.file_changes().map_err(SessionError::Watch)?;
        let run = Running {
            mon: Some(mon),
            keeper,
            signals,
            changes,
            notices: self.notices,
            gate,
            counters,
            reopen: self.reopen.clone(),
        };
        match scoped {
            Scoped::Leaf {
                leaf,
                command,
                run_as,
            } => run.wrapped(leaf, &command, &run_as),
            Scoped::Attached { pin, .. } => run.attached(pin.as_deref()),
        }
    }

    /// Plan, decide, load and attach.
    fn load(&mut self, rules: &[Rule], scoped: &Scoped) -> Result<(Monitor, Scope), SessionError> {
        let kill_unavailable = match &self.kill {
            KillSwitch::Unavailable(why) => Some(why.as_str()),
            KillSwitch::Available(_) => None,
        };
        let mut plan = super::plan(rules, kill_unavailable)?;
        plan.self_protection = self.config.self_protection;
        let allow = self.config.allow_degraded;
        self.degraded.extend(plan.unenforced.iter().cloned());
        if let Some(n) = admit(&plan.unenforced, allow, !plan.enforces_something())? {
            (self.notices)(n);
        }
        let scope = Scope::of(scoped.path())?;
        // Dropping the monitor on an error path detaches what was attached.
        let (mon, refused) =
            Monitor::load(&plan, &scope, self.config.ringbuf_bytes).map_err(|source| {
                SessionError::Load {
                    scope: scope.path.clone(),
                    source,
                }
            })?;
        self.degraded.extend(refused.iter().cloned());
        if let Some(n) = admit(&refused, allow, !mon.enforces_rules())? {
            (self.notices)(n);
        }
        for (rule, path, why) in mon.unresolved_files() {
            (self.notices)(Notice::Unresolved { rule, path, why });
        }
        Ok((mon, scope))
    }

    /// Pins what `mon` enforces so it outlives a killed monitor. Where that
    /// cannot be done the monitor does not start (exit 40), unless
    /// `allow_degraded`, which says so.
    fn keep(&mut self, mon: &mut Monitor, owner: Owner) -> Result<Option<Keeper>, SessionError> {
        match Keeper::pin(mon, owner) {
            Ok(k) => Ok(Some(k)),
            Err(e) if self.config.allow_degraded => {
                (self.notices)(Notice::Warning(format!(
                    "DEGRADED: enforcement will not outlive assay if it is killed: {e}"
                )));
                Ok(None)
            }
            Err(e) => Err(SessionError::FailClosed(e)),
        }
    }

    /// Tidies what dead wrapper-mode monitors left (their leaves still hold
    /// confined processes); returns the attach-mode orphans for later. Any
    /// problem is a warning: it must not keep this monitor from starting.
    fn tidy_orphans(&mut self) -> Vec<Orphan> {
        let Ok(root) = failclosed::root() else {
            return Vec::new();
        };
        let (leaves, cgroups): (Vec<Orphan>, Vec<Orphan>) = failclosed::orphans(&root)
            .into_iter()
            .partition(|o| matches!(o.owner, Owner::Leaf { .. }));
        for o in &leaves {
            if failclosed::may_tidy(o) {
                self.tidy_one(o);
            } else {
                (self.notices)(Notice::OrphanLeft(o.owner));
            }
        }
        cgroups
    }

    fn tidy_one(&mut self, o: &Orphan) {
        match failclosed::tidy(o, None, Box::new(Discard)) {
            Ok(t) => (self.notices)(Notice::Tidied(Tidy::of(&t))),
            Err(e) => (self.notices)(Notice::Warning(format!("tidying {}: {e}", o.dir.display()))),
        }
    }
}

/// A session whose enforcement and event threads run.
struct Running {
    /// Taken by [`Running::stop`].
    mon: Option<Monitor>,
    /// The fail-closed pins (None: --pin, or degraded).
    keeper: Option<Keeper>,
    signals: Signals,
    changes: Receiver<super::WatchEvent>,
    notices: Box<dyn FnMut(Notice)>,
    /// Wrapper mode with tool rules: the gate, and the sink it shares with
    /// the pipeline.
    gate: Option<(GateWrap, Shared)>,
    /// `--metrics`: the gate's decisions are counted there too.
    counters: Option<Arc<super::metrics::Metrics>>,
    reopen: Arc<std::sync::atomic::AtomicBool>,
}

impl Running {
    fn wrapped(
        mut self,
        leaf: LeafCgroup,
        command: &[OsString],
        run_as: &RunAs,
    ) -> Result<Ended, SessionError> {
        if let Some(sig) = self.signals.stop_requested() {
            let summary = self.stop()?;
            drop(leaf);
            return Ok(Ended {
                summary,
                status: stopped_status(sig),
                stopped_before_start: Some(sig),
            });
        }
        let piped = self.gate.is_some();
        let mut child = match process::spawn_confined(leaf.path(), command, run_as, piped) {
            Ok(c) => c,
            Err(source) => {
                let _ = self.stop();
                return Err(SessionError::Spawn {
                    program: command
                        .first()
                        .map_or_else(String::new, |c| c.to_string_lossy().into_owned()),
                    source,
                });
            }
        };
        self.signals
            .forward_to
            .store(child.id() as i32, Ordering::SeqCst);
        let relaying = match self.gate.take() {
            Some((g, sink)) => {
                match start_gate(g, sink, self.counters.clone(), &mut child, leaf.path()) {
                    Ok(r) => Some(r),
                    Err(source) => {
                        let _ = leaf.kill_all();
                        let _ = self.stop();
                        return Err(SessionError::Gate(source));
                    }
                }
            }
            None => None,
        };
        let (exit_tx, exits) = crossbeam_channel::bounded(1);
        std::thread::Builder::new()
            .name("assay-wait".into())
            .spawn(move || {
                let mut child = child;
                let _ = exit_tx.send(child.wait());
            })
            .map_err(SessionError::WaitThread)?;
        let status = self.until_stop(true, &exits)?;
        self.signals.forward_to.store(0, Ordering::SeqCst);
        // Whatever the command left behind dies with it: nothing keeps
        // running once enforcement is gone.
        if let Err(e) = leaf.kill_all() {
            (self.notices)(Notice::Warning(e.to_string()));
        }
        if let (Some(r), Some(m)) = (relaying, self.mon.as_ref()) {
            m.record_gate(r.finish());
        }
        let summary = self.stop()?;
        drop(leaf);
        Ok(Ended {
            summary,
            status,
            stopped_before_start: None,
        })
    }

    fn attached(mut self, pin: Option<&Path>) -> Result<Ended, SessionError> {
        let status = self.until_stop(false, &never())?;
        if let Some(dir) = pin {
            (self.notices)(Notice::StaysPinned(dir.to_path_buf()));
        }
        let summary = self.stop()?;
        Ok(Ended {
            summary,
            status,
            stopped_before_start: None,
        })
    }

    /// Ends enforcement: the fail-closed link pins first (the monitor's own
    /// links are then the last to hold the programs), then detach and drain,
    /// then the map pins.
    fn stop(&mut self) -> Result<Summary, SessionError> {
        if let Some(k) = self.keeper.as_mut() {
            if let Err(e) = k.release() {
                (self.notices)(Notice::Warning(format!("removing the pins: {e}")));
            }
        }
        let summary = match self.mon.take() {
            Some(m) => {
                if self.keeper.is_some() {
                    m.detach();
                }
                m.stop()?
            }
            None => return Err(StopError::NotStarted.into()),
        };
        if let Some(k) = self.keeper.take() {
            if let Err(e) = k.finish() {
                (self.notices)(Notice::Warning(format!("removing the pins: {e}")));
            }
        }
        Ok(summary)
    }

    /// Reacts to inputs by [`step`] until it says stop.
    fn until_stop(
        &mut self,
        wrapped: bool,
        exits: &Receiver<io::Result<std::process::ExitStatus>>,
    ) -> Result<u8, SessionError> {
        loop {
            let input = select! {
                recv(exits) -> r => Input::Exited(process::exit_code(
                    r.map_err(|_| SessionError::WaitGone)?.map_err(SessionError::Wait)?,
                )),
                recv(self.signals.rx) -> s => Input::Signal(s.map_err(|_| SessionError::SignalsGone)?),
                recv(self.changes) -> c => match c {
                    Ok(super::WatchEvent::Changed) => Input::FilesChanged,
                    Ok(super::WatchEvent::Failed(why)) => {
                        (self.notices)(Notice::Warning(why));
                        continue;
                    }
                    Err(_) => {
                        // The watch ended (it said why): no more changes.
                        self.changes = never();
                        continue;
                    }
                },
            };
            match step(wrapped, input) {
                Step::Continue => {}
                Step::Refresh => {
                    let refreshed = self.mon.as_mut().map(Monitor::refresh_files);
                    if let Some(Err(e)) = refreshed {
                        (self.notices)(Notice::Warning(format!(
                            "re-resolving file rule paths: {e}"
                        )));
                    }
                }
                Step::Reopen => self
                    .reopen
                    .store(true, std::sync::atomic::Ordering::Relaxed),
                Step::Stop(status) => return Ok(status),
            }
        }
    }
}

/// Starts the gate's relay on the command's pipes; its events, and the kill
/// its trigger orders, go to the shared sink.
fn start_gate(
    g: GateWrap,
    sink: Shared,
    metrics: Option<Arc<super::metrics::Metrics>>,
    child: &mut std::process::Child,
    leaf: &Path,
) -> io::Result<crate::gate::run::Relaying> {
    let emit = {
        let sink = sink.clone();
        move |ev: Event| {
            let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
            // A failing sink is the pipeline's to report; the relay goes on.
            let _ = s.event(&ev).and_then(|()| s.flush());
        }
    };
    let on_event = {
        let emit = emit.clone();
        Box::new(move |ev: &crate::gate::ToolCallEvent| {
            if let Some(m) = &metrics {
                m.tool_call(ev.call.allowed);
            }
            emit(Event::ToolCall(ev.clone()))
        })
    };
    let pid = child.id();
    let order = KillOrder {
        rule: crate::gate::TRIGGER.into(),
        offender: pid,
        detail: "the tool-call gate refused the policy's limit of calls".into(),
        // The whole confined server, as for a trigger_kill rule.
        unit: KillUnit::Cgroup(leaf.to_path_buf()),
    };
    let kill = g.kill.clone();
    let on_trip = Box::new(move || {
        let Some(kill) = kill else {
            return;
        };
        let done = (kill.lock().unwrap_or_else(|e| e.into_inner()))(&order);
        emit(Event::Kill(KillEvent {
            time_ns: super::events::now_ns(),
            rule: order.rule.clone(),
            pid,
            all_gone: done.all_gone,
            incident: done.incident,
            error: done.error,
        }));
    });
    crate::gate::run::start(g.setup.judge, g.setup.kill_after, child, on_event, on_trip)
}

#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    FailClosed(#[from] FailClosedError),
    #[error("opening where events go")]
    Sink(#[source] io::Error),
}

/// `--cleanup`: tidies everything monitors that died left behind (see
/// [`failclosed`]), each one's events into a sink from `sink`, named with
/// `rules` when given.
pub fn cleanup(
    rules: Option<&[Rule]>,
    sink: &mut dyn FnMut() -> io::Result<Box<dyn Sink>>,
) -> Result<Vec<Tidy>, CleanupError> {
    let plan = rules.map(|r| super::plan(r, None)).transpose()?;
    let root = failclosed::root()?;
    let mut done = Vec::new();
    for o in failclosed::orphans(&root) {
        let t = failclosed::tidy(&o, plan.as_ref(), sink().map_err(CleanupError::Sink)?)?;
        done.push(Tidy::of(&t));
    }
    Ok(done)
}

/// What `--unpin` removed and reported.
#[derive(Debug)]
pub struct Unpinned {
    pub removed: Vec<PathBuf>,
    /// What the pinned programs produced after their monitor exited (None:
    /// pinned by an assay that did not pin its events).
    pub summary: Option<Summary>,
}

#[derive(Debug, thiserror::Error)]
pub enum UnpinError {
    #[error("{}: no assay enforcement is pinned there", .0.display())]
    NothingPinned(PathBuf),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Pins(#[from] LoadError),
    #[error(transparent)]
    Drain(#[from] StopError),
}

/// Removes enforcement pinned with `--pin DIR`: detach first (remove the
/// link pins), then read what the pinned ring buffer still holds and the
/// drops nobody reported (named with `rules`, the policy used with --pin,
/// when given), then remove the map pins: nothing the programs produced goes
/// unreported.
pub fn unpin(
    dir: &Path,
    rules: Option<&[Rule]>,
    sink: Box<dyn Sink>,
) -> Result<Unpinned, UnpinError> {
    // The policy is compiled before anything is removed.
    let plan = rules.map(|r| super::plan(r, None)).transpose()?;
    let mut removed = netguard::unpin(dir)?;
    let summary = super::drain_pinned(dir, plan.as_ref(), sink)?;
    removed.extend(netguard::unpin_maps(dir)?);
    if removed.is_empty() {
        return Err(UnpinError::NothingPinned(dir.to_path_buf()));
    }
    Ok(Unpinned { removed, summary })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::{Loopback, Matcher, NetMatch, Protocol};
    use crate::severity::Severity;

    fn rule(id: &str, action: Action) -> Rule {
        Rule {
            id: id.into(),
            severity: Severity::High,
            action,
            matcher: Matcher::NetConnect(NetMatch {
                ports: vec![22],
                outside_cidrs: vec![],
                protocols: vec![Protocol::Tcp],
                loopback: Loopback::Match,
            }),
        }
    }

    fn unenforceable(id: &str) -> Unenforceable {
        Unenforceable {
            rule_id: id.into(),
            reason: "missing x".into(),
            fix: "add x".into(),
        }
    }

    #[test]
    fn wrapper_mode_ends_with_the_command_and_refreshes_on_changes() {
        assert_eq!(step(true, Input::Exited(3)), Step::Stop(3));
        assert_eq!(step(true, Input::Exited(137)), Step::Stop(137));
        // Forwarded to the command, whose exit ends the session.
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGUSR1] {
            assert_eq!(step(true, Input::Signal(s)), Step::Continue);
        }
        assert_eq!(step(true, Input::FilesChanged), Step::Refresh);
    }

    #[test]
    fn attach_mode_ends_on_a_stop_signal_only() {
        for s in STOP.into_iter().filter(|s| *s != libc::SIGHUP) {
            assert_eq!(step(false, Input::Signal(s)), Step::Stop(0));
        }
        // SIGHUP reopens the events file (as after logrotate), in both modes.
        assert_eq!(step(false, Input::Signal(libc::SIGHUP)), Step::Reopen);
        assert_eq!(step(true, Input::Signal(libc::SIGHUP)), Step::Reopen);
        for s in [libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH] {
            assert_eq!(step(false, Input::Signal(s)), Step::Continue);
        }
        assert_eq!(step(false, Input::FilesChanged), Step::Refresh);
    }

    #[test]
    fn a_stop_before_the_command_starts_exits_like_the_shell() {
        assert_eq!(stopped_status(libc::SIGTERM), 143);
        assert_eq!(stopped_status(libc::SIGINT), 130);
    }

    #[test]
    fn unenforceable_rules_refuse_unless_degraded_with_something_left() {
        assert_eq!(admit(&[], false, false).unwrap(), None);
        let list = [unenforceable("a")];
        let e = admit(&list, false, false).unwrap_err();
        assert!(
            matches!(&e, SessionError::Unenforceable { rules, nothing_left: false } if rules.len() == 1)
        );
        assert!(e.to_string().contains("--allow-degraded"), "{e}");
        assert_eq!(
            admit(&list, true, false).unwrap(),
            Some(Notice::Degraded(list.to_vec()))
        );
        // Degraded to nothing is still a refusal.
        let e = admit(&list, true, true).unwrap_err();
        assert_eq!(
            e.to_string(),
            "nothing in the policy can be enforced on this host"
        );
    }

    #[test]
    fn pinning_refuses_trigger_kill_rules() {
        assert!(check_pin(&[rule("a", Action::Deny), rule("b", Action::Log)]).is_ok());
        let e = check_pin(&[rule("a", Action::Deny), rule("k", Action::TriggerKill)]).unwrap_err();
        assert!(matches!(&e, SessionError::PinTriggerKill(id) if id == "k"));
    }

    #[test]
    fn a_pinned_trigger_kill_is_refused_before_anything_loads() {
        // No root needed: the check comes before any cgroup or BPF work.
        let config = Config {
            rules: vec![rule("k", Action::TriggerKill)],
            target: Target::Attach {
                cgroup: "/nonexistent/cgroup".into(),
                pin: Some("/nonexistent/bpffs".into()),
                daemon: None,
            },
            ringbuf_bytes: 4096,
            allow_degraded: false,
            libbpf_log: 0,
            self_protection: SelfProtection::default(),
            gate: None,
        };
        let s = Session::new(
            config,
            KillSwitch::Unavailable("test".into()),
            Box::new(|| panic!("no sink before enforcement runs")),
            Box::new(|n| panic!("no notice expected: {n:?}")),
        );
        assert!(matches!(s.run(), Err(SessionError::PinTriggerKill(_))));
    }

    #[test]
    fn runtime_rules_say_why_a_policy_gives_none() {
        let load = |yaml: &str| {
            crate::policy::load_str(yaml, Path::new("p.yaml")).expect("valid test policy")
        };
        let base = "version: \"2.0\"\nmetadata:\n  name: t\ntools:\n  allow: []\n";
        let e = runtime_rules(&load(base), false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.yaml: the policy has no runtime_monitor block"
        );
        let off = format!(
            "{base}runtime_monitor:\n  enabled: false\n  provider: ebpf\n  rules:\n    - id: r\n      \
             type: net_connect\n      match:\n        ports: [22]\n      severity: high\n      \
             action: deny\n"
        );
        assert!(matches!(
            runtime_rules(&load(&off), false),
            Err(RulesError::Disabled(_))
        ));
        let rules = runtime_rules(&load(&off), true).unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].id, "r");
    }
}
