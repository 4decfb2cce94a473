//! The validated policy: what `policy::load` returns once every check passed.
//!
//! These types are the contract between the policy engine and its consumers
//! (discovery, kill switch, monitor). They hold only checked values: a CIDR is
//! parsed, a port is in range, a trigger names an existing rule.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Serialize;

use crate::severity::Severity;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    /// Where it was read from (for messages).
    pub source: PathBuf,
    /// "1.0", "1.x" or "2.0".
    pub version: String,
    pub metadata: Metadata,
    pub tools: Tools,
    /// Tool name -> JSON Schema for its arguments (already checked to compile).
    pub schemas: BTreeMap<String, serde_json::Value>,
    pub discovery: Option<DiscoveryConfig>,
    pub kill_switch: Option<KillSwitchConfig>,
    pub runtime_monitor: Option<RuntimeMonitor>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Metadata {
    pub name: Option<String>,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tools {
    /// `None`: every tool not denied is allowed. `Some(list)`: only these.
    pub allow: Option<Vec<String>>,
    pub deny: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiscoveryConfig {
    pub enabled: bool,
    pub methods: Vec<DiscoveryMethod>,
    /// Finding kind (`unmanaged_server`, `no_auth`, `secret_in_config`) -> gate.
    pub on_findings: BTreeMap<String, OnFinding>,
    /// Server ids or names the operator declares managed.
    pub managed: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscoveryMethod {
    ConfigFiles,
    Processes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFinding {
    Warn,
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KillMode {
    Graceful,
    Immediate,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KillSwitchConfig {
    pub enabled: bool,
    pub mode: KillMode,
    pub grace_period_ms: u64,
    pub kill_children: bool,
    pub capture_state: bool,
    pub output_dir: PathBuf,
    pub triggers: Vec<KillTrigger>,
    /// `triggers: [{on_tool_denials: N}]`: the tool-call gate kills the
    /// server at its N-th refused call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_denials: Option<ToolDenials>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ToolDenials {
    /// Refusals that trigger the kill (at least 1).
    pub count: u32,
    pub mode: KillMode,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KillTrigger {
    /// Id of an existing `runtime_monitor` rule (checked).
    pub on_rule: String,
    pub mode: KillMode,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuntimeMonitor {
    pub enabled: bool,
    pub provider: String,
    pub rules: Vec<Rule>,
    pub self_protection: SelfProtection,
}

/// `runtime_monitor.self_protection`: the guards that refuse, in scope,
/// what would get around the rules. Every one is on unless the policy turns
/// it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SelfProtection {
    /// `bpf()` (needs the BPF LSM).
    pub bpf: bool,
    /// Signals to tasks outside the scope (BPF LSM).
    pub signals: bool,
    /// ptrace, `pidfd_getfd` and the like of tasks outside the scope (BPF LSM).
    pub ptrace: bool,
    /// Writes to cgroup interface files (BPF LSM).
    pub cgroup_writes: bool,
    /// mount, umount, move_mount, pivot_root (BPF LSM).
    pub mounts: bool,
    /// Raw, ping (every kernel) and packet (BPF LSM) sockets, with network
    /// rules.
    pub raw_sockets: bool,
    /// Block devices (BPF LSM), with file rules.
    pub block_devices: bool,
}

impl Default for SelfProtection {
    fn default() -> Self {
        SelfProtection {
            bpf: true,
            signals: true,
            ptrace: true,
            cgroup_writes: true,
            mounts: true,
            raw_sockets: true,
            block_devices: true,
        }
    }
}

impl SelfProtection {
    /// The policy keys, in order.
    pub const KEYS: [&'static str; 7] = [
        "bpf",
        "signals",
        "ptrace",
        "cgroup_writes",
        "mounts",
        "raw_sockets",
        "block_devices",
    ];

    pub fn set(&mut self, key: &str, on: bool) {
        match key {
            "bpf" => self.bpf = on,
            "signals" => self.signals = on,
            "ptrace" => self.ptrace = on,
            "cgroup_writes" => self.cgroup_writes = on,
            "mounts" => self.mounts = on,
            "raw_sockets" => self.raw_sockets = on,
            "block_devices" => self.block_devices = on,
            _ => {}
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    pub id: String,
    pub severity: Severity,
    pub action: Action,
    pub matcher: Matcher,
}

/// Serialized as [`Action::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Allow, emit an event.
    Log,
    /// Allow, emit an event marked for attention.
    Alert,
    /// The operation fails with EPERM; an event is emitted.
    Deny,
    /// Denied, and the offending process tree is killed (with capture).
    TriggerKill,
}

impl Action {
    pub const ALL: [Action; 4] = [
        Action::Log,
        Action::Alert,
        Action::Deny,
        Action::TriggerKill,
    ];

    /// The action's name in policies, events and serialized forms.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Log => "log",
            Action::Alert => "alert",
            Action::Deny => "deny",
            Action::TriggerKill => "trigger_kill",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn denies(self) -> bool {
        matches!(self, Action::Deny | Action::TriggerKill)
    }
}

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Matcher {
    FileOpen(FileMatch),
    NetConnect(NetMatch),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileMatch {
    pub path_globs: Vec<PathGlob>,
    /// Opens matching any of these are exempt from the rule, whichever
    /// `path_globs` entry they match.
    pub except: Vec<PathGlob>,
}

/// A glob from the policy with the kernel-matchable form it compiles to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathGlob {
    pub text: String,
    pub form: GlobForm,
}

/// The glob shapes assay enforces exactly. Anything else is a policy error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum GlobForm {
    /// `/etc/shadow`: one absolute path, no wildcard.
    Exact(PathBuf),
    /// `/data/**`: everything below a directory (not the directory itself).
    Subtree(PathBuf),
    /// `**/.env`: a file with this exact name in any directory.
    Basename(String),
    /// `**/.ssh/*`: any file directly inside a directory with this name.
    InDirNamed(String),
    /// `**/.aws/credentials`: a file `name` directly inside a directory
    /// named `dir`, anywhere.
    DirAndBasename { dir: String, name: String },
    /// `**/*.pem`: any file whose name ends with this suffix.
    Suffix(String),
    /// `/home/*/.aws/credentials`, `/etc/ssl/private/*`: below the literal
    /// directory `dir`, exactly `components.len()` more path components,
    /// each a literal name or `*` (any one name).
    Anchored {
        dir: PathBuf,
        components: Vec<String>,
    },
}

impl GlobForm {
    /// The wildcard of [`GlobForm::Anchored`] components.
    pub const ANY: &'static str = "*";
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetMatch {
    /// Destination ports that match (1..=65535).
    pub ports: Vec<u16>,
    /// When non-empty, destinations OUTSIDE all of these match.
    pub outside_cidrs: Vec<Cidr>,
    /// Which protocols the rule covers. Never empty once validated; the
    /// default is tcp, udp and icmp without `ports`, tcp and udp with them.
    pub protocols: Vec<Protocol>,
    /// Whether loopback destinations (127.0.0.0/8, ::1) are judged or ignored.
    pub loopback: Loopback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Tcp,
    Udp,
    /// ICMP and ICMPv6 (ping sockets): judged by destination only, so never
    /// with `ports`.
    Icmp,
}

impl Protocol {
    pub const ALL: [Protocol; 3] = [Protocol::Tcp, Protocol::Udp, Protocol::Icmp];

    /// The protocol's name in policies.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
        }
    }

    /// What a rule covers when its policy omits `protocols`: ICMP has no
    /// port, so only a rule without `ports` covers it.
    pub fn defaults(has_ports: bool) -> Vec<Protocol> {
        if has_ports {
            vec![Protocol::Tcp, Protocol::Udp]
        } else {
            Protocol::ALL.to_vec()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Loopback {
    /// Loopback destinations are judged like any other (the default).
    Match,
    /// Loopback destinations never match this rule.
    Ignore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Cidr {
    /// Network address with host bits zero.
    pub addr: IpAddr,
    pub prefix: u8,
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_serialize_and_parse_by_their_names() {
        for a in Action::ALL {
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        assert_eq!(Action::TriggerKill.as_str(), "trigger_kill");
        assert_eq!(Action::parse("kill"), None);
    }

    #[test]
    fn protocols_serialize_by_their_names() {
        for p in Protocol::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        assert_eq!(Protocol::defaults(true), [Protocol::Tcp, Protocol::Udp]);
        assert_eq!(Protocol::defaults(false), Protocol::ALL);
    }
}
