//! What the monitor reports: decoded events, the kill switch's answers, the
//! sink they go to, and the summary. Plain data; the threads that produce
//! them live in `pipeline`, the decoding in `ringbuf`.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use super::context::{Context, Identity};
use crate::policy::model::Action;
use crate::severity::Severity;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetHook {
    Connect,
    Sendmsg,
}

/// One decision on a network operation.
#[derive(Debug, Clone, PartialEq)]
pub struct NetEvent {
    /// Wall-clock time, ns since the Unix epoch.
    pub time_ns: i128,
    pub hook: NetHook,
    pub rule: Arc<str>,
    /// Position of the rule in the policy.
    pub rule_index: usize,
    pub severity: Severity,
    pub action: Action,
    /// Other rules that matched the same operation (did not decide).
    pub also_matched: Vec<Arc<str>>,
    /// 0 (and `comm` empty) when the kernel did not say who sent it: an
    /// ICMP packet judged before Linux 6.0, or leaving outside its sender.
    pub pid: u32,
    pub tgid: u32,
    pub comm: String,
    pub cgroup_id: u64,
    /// The sender as the kernel knew it at the event.
    pub ident: Identity,
    /// Executable, command line, cgroup path (see `context`).
    pub ctx: Context,
    pub addr: IpAddr,
    pub port: u16,
    /// IPPROTO_* of the socket.
    pub protocol: u32,
}

impl NetEvent {
    /// Whether the kernel named the sending process (`tgid` is real).
    pub fn sender_known(&self) -> bool {
        self.tgid != 0
    }
}

/// What the kill action did for one offender.
#[derive(Debug, Clone, PartialEq)]
pub struct KillEvent {
    pub time_ns: i128,
    pub rule: Arc<str>,
    pub pid: u32,
    pub all_gone: bool,
    /// Incident record written by the kill switch, if any.
    pub incident: Option<String>,
    pub error: Option<String>,
}

/// One decision on a file open (the BPF LSM program).
#[derive(Debug, Clone, PartialEq)]
pub struct FileEvent {
    pub time_ns: i128,
    pub rule: Arc<str>,
    pub rule_index: usize,
    pub severity: Severity,
    pub action: Action,
    pub pid: u32,
    pub tgid: u32,
    pub comm: String,
    pub cgroup_id: u64,
    pub ident: Identity,
    pub ctx: Context,
    /// Kernel device number (`major << 20 | minor`) and inode of the file.
    pub dev: u32,
    pub ino: u64,
    /// Which kernel form of the rule matched.
    pub matched: MatchKind,
    /// What was done to the file.
    pub op: FileOp,
    /// Basename of the file.
    pub name: String,
    /// Full path, where the kernel provides it (opens).
    pub path: Option<String>,
}

/// What an in-scope process did to a file a rule covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOp {
    Open,
    /// A hard link to it (refused: the new name would escape the rule).
    Link,
    /// A rename of it, or over it (refused likewise).
    Rename,
}

impl FileOp {
    /// The event's `kind` in JSON.
    pub fn kind(self) -> &'static str {
        match self {
            FileOp::Open => "file_open",
            FileOp::Link => "file_link",
            FileOp::Rename => "file_rename",
        }
    }
}

/// Which self-protection guard refused an operation (`enum assay_guard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Guard {
    RawSocket,
    PingSocket,
    Bpf,
    Signal,
    Ptrace,
    CgroupWrite,
    Mount,
    PacketSocket,
    BlockDevice,
    IcmpOptions,
}

impl Guard {
    pub fn as_str(self) -> &'static str {
        match self {
            Guard::RawSocket => "raw_socket",
            Guard::PingSocket => "ping_socket",
            Guard::Bpf => "bpf",
            Guard::Signal => "signal",
            Guard::Ptrace => "ptrace",
            Guard::CgroupWrite => "cgroup_write",
            Guard::Mount => "mount",
            Guard::PacketSocket => "packet_socket",
            Guard::BlockDevice => "block_device",
            Guard::IcmpOptions => "icmp_options",
        }
    }
}

/// An in-scope operation refused because it would get around the rules
/// (always denied, whatever the policy says).
#[derive(Debug, Clone, PartialEq)]
pub struct TamperEvent {
    pub time_ns: i128,
    pub guard: Guard,
    pub pid: u32,
    pub tgid: u32,
    pub comm: String,
    pub cgroup_id: u64,
    pub ident: Identity,
    pub ctx: Context,
    /// What was refused, by guard (`enum assay_guard` in assay.h): socket
    /// family, type, protocol; bpf command; signal and target; ptrace mode
    /// and target; inode; mount operation; device and inode.
    pub args: [u64; 3],
}

/// Which kernel form of a rule matched an open (`enum assay_file_match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    Inode,
    Entry,
    Subtree,
    Basename,
    DirName,
    DirAndBasename,
    Suffix,
    Anchored,
    /// The name- and ancestor-based forms could not judge the file
    /// (disconnected, or deeper than the kernel's walk): failed closed.
    Undecided,
}

/// What a `trigger_kill` decision asks the kill switch to stop.
#[derive(Debug, Clone, PartialEq)]
pub struct KillOrder {
    pub rule: Arc<str>,
    /// The process whose operation triggered the rule.
    pub offender: u32,
    /// What it did, for the incident record.
    pub detail: String,
    pub unit: KillUnit,
}

/// What one kill stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillUnit {
    /// Every process of this cgroup (wrapper mode: the whole wrapped server,
    /// since killing only a helper it spawned would leave it running).
    Cgroup(PathBuf),
    /// The offender's process tree (attach mode: the scope may hold
    /// unrelated services).
    Tree(u32),
}

/// The kill switch's answer to one [`KillOrder`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KillDone {
    pub all_gone: bool,
    /// Incident record written by the kill switch, if any.
    pub incident: Option<String>,
    pub error: Option<String>,
}

/// Runs the kill switch for a `trigger_kill` decision: injected by the
/// caller (the monitor does not depend on the kill switch), called on the
/// kill worker thread, at most once per offending process.
pub type Killer = Box<dyn FnMut(&KillOrder) -> KillDone + Send>;

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Net(NetEvent),
    File(FileEvent),
    Tamper(TamperEvent),
    /// Events the kernel could not put on the ring buffer since the last report.
    Drops {
        time_ns: i128,
        new: u64,
        total: u64,
    },
    Kill(KillEvent),
    /// The tool-call gate's decision on a `tools/call` (wrapper mode, when
    /// the policy has `tools` or `schemas`).
    ToolCall(crate::gate::ToolCallEvent),
    /// The monitor started enforcing (the first event of a run).
    Start(Box<StartEvent>),
    /// The monitor stopped: its summary (the last event of a run).
    Stop(Box<Summary>),
    /// A record of a kind this build does not know (counted, never hidden).
    Unknown {
        time_ns: i128,
        kind: u32,
        len: usize,
    },
}

/// One rule and whether the kernel enforces it in this run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleState {
    pub rule: String,
    pub action: Action,
    pub enforced: bool,
}

/// Something the run does without (a rule, a guard, part of the context).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Degradation {
    pub what: String,
    pub reason: String,
}

/// What a run enforces, where, on which kernel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StartEvent {
    pub time_ns: i128,
    /// "wrap" or "attach".
    pub mode: &'static str,
    /// The monitored cgroup directory.
    pub scope: String,
    pub scope_id: u64,
    /// `uname -r`.
    pub kernel: String,
    pub version: &'static str,
    pub rules: Vec<RuleState>,
    /// Self-protection guards the kernel enforces.
    pub guards: Vec<&'static str>,
    pub degraded: Vec<Degradation>,
}

/// Where events go (JSON lines at the edge: `output::monitor::JsonLines`).
pub trait Sink: Send {
    fn event(&mut self, ev: &Event) -> io::Result<()>;
    /// Called when the consumer is idle, and at the end.
    fn flush(&mut self) -> io::Result<()>;
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleCount {
    pub rule: String,
    pub action: Action,
    pub severity: Severity,
    pub events: u64,
}

/// What the monitor saw, for the exit summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Records read from the ring buffer.
    pub delivered: u64,
    /// Reservations the kernel could not make (events lost, but counted).
    pub dropped: u64,
    pub by_rule: Vec<RuleCount>,
    pub unknown: u64,
    /// Self-protection refusals (`tamper` events).
    pub tamper: u64,
    pub kills: u64,
    pub kill_failures: u64,
    /// The first error writing events, if any (later events were only counted).
    pub sink_error: Option<String>,
    /// Wrapper mode with the tool-call gate: what it judged.
    pub gate: Option<crate::gate::run::Counts>,
}

pub fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}
