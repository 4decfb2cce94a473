//! `assay monitor` output: events as JSON lines (schema v1, see
//! docs/monitor.md), the exit summary, and the enforcement report.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::IpAddr;

use serde::Serialize;

use super::Style;
use crate::monitor::compile::Unenforceable;
use crate::monitor::context::{CgroupInfo, Context, Identity, ProcessInfo, RunInfo};
use crate::monitor::events::{
    Degradation, Event, Guard, NetEvent, NetHook, RuleState, Sink, StartEvent, Summary, TamperEvent,
};
use crate::monitor::failclosed::Owner;
use crate::monitor::session::Tidy;
use crate::time::rfc3339;

pub use super::gate::EVENT_SCHEMA;
/// The `schema` of the exit summary (`--format json`).
pub const SUMMARY_SCHEMA: &str = "assay.monitor.summary/v1";

fn protocol_name(p: u32) -> &'static str {
    match p as i32 {
        libc::IPPROTO_TCP => "tcp",
        libc::IPPROTO_UDP => "udp",
        libc::IPPROTO_ICMP => "icmp",
        libc::IPPROTO_ICMPV6 => "icmpv6",
        _ => "other",
    }
}

/// The sender's command name; None (null) when the kernel did not name the
/// sender (its pid and tgid are then 0).
fn comm_of(tgid: u32, comm: &str) -> Option<&str> {
    (tgid != 0).then_some(comm)
}

#[derive(Serialize)]
struct FileObject<'a> {
    /// Kernel device number (major << 20 | minor) and inode.
    dev: u32,
    ino: u64,
    /// Basename of the opened file.
    name: &'a str,
    /// Full path as the opener reached it; null where the kernel cannot
    /// provide it (before 5.11) or it is longer than 1,023 bytes.
    path: Option<&'a str>,
    /// Which kernel form of the rule matched.
    #[serde(rename = "match")]
    matched: crate::monitor::events::MatchKind,
}

#[derive(Serialize)]
struct ScopeObject<'a> {
    path: &'a str,
    cgroup_id: u64,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Dto<'a> {
    File {
        schema: &'static str,
        time: String,
        kind: &'static str,
        rule: &'a str,
        severity: &'static str,
        action: &'static str,
        pid: u32,
        tgid: u32,
        comm: &'a str,
        cgroup_id: u64,
        object: FileObject<'a>,
    },
    Drops {
        schema: &'static str,
        time: String,
        kind: &'static str,
        dropped: u64,
        total_dropped: u64,
    },
    Kill {
        schema: &'static str,
        time: String,
        kind: &'static str,
        rule: &'a str,
        pid: u32,
        all_gone: bool,
        incident: Option<&'a str>,
        error: Option<&'a str>,
    },
    Unknown {
        schema: &'static str,
        time: String,
        kind: &'static str,
        bpf_kind: u32,
        bytes: usize,
    },
    Start {
        schema: &'static str,
        time: String,
        kind: &'static str,
        mode: &'static str,
        scope: ScopeObject<'a>,
        kernel: &'a str,
        version: &'static str,
        rules: &'a [RuleState],
        guards: &'a [&'static str],
        degraded: &'a [Degradation],
    },
    Stop {
        schema: &'static str,
        time: String,
        kind: &'static str,
        summary: &'a Summary,
    },
    Tamper {
        schema: &'static str,
        time: String,
        kind: &'static str,
        operation: &'static str,
        action: &'static str,
        pid: u32,
        tgid: u32,
        comm: Option<&'a str>,
        cgroup_id: u64,
        object: serde_json::Value,
    },
}

/// What a tamper event refused, by guard (the arguments of `enum
/// assay_guard` in assay.h).
fn tamper_object(t: &TamperEvent) -> serde_json::Value {
    use serde_json::json;
    let [a, b, c] = t.args;
    match t.guard {
        Guard::RawSocket | Guard::PingSocket | Guard::PacketSocket => json!({
            "family": family_name(a),
            "type": socket_type_name(b),
            "protocol": c,
        }),
        Guard::Bpf => json!({ "command": a }),
        Guard::Signal => json!({ "signal": a, "target_pid": b }),
        Guard::Ptrace => json!({ "mode": a, "target_pid": b }),
        Guard::CgroupWrite => json!({ "ino": a }),
        Guard::Mount => json!({ "operation": mount_op_name(a) }),
        Guard::BlockDevice => json!({ "dev": a, "ino": b }),
        Guard::IcmpOptions => match a as i32 {
            libc::AF_INET => json!({ "family": "inet", "header_len": b }),
            libc::AF_INET6 => json!({ "family": "inet6", "next_header": b }),
            _ => json!({ "family": null }),
        },
    }
}

fn mount_op_name(op: u64) -> &'static str {
    use crate::monitor::selfguard_skel::types::assay_mount_op as M;
    match op as u32 {
        x if x == M::ASSAY_MOUNT_MOUNT.0 => "mount",
        x if x == M::ASSAY_MOUNT_UMOUNT.0 => "umount",
        x if x == M::ASSAY_MOUNT_MOVE.0 => "move_mount",
        x if x == M::ASSAY_MOUNT_PIVOT_ROOT.0 => "pivot_root",
        x if x == M::ASSAY_MOUNT_NEW_SUPERBLOCK.0 => "new_superblock",
        _ => "other",
    }
}

fn family_name(f: u64) -> &'static str {
    match f as i32 {
        libc::AF_INET => "inet",
        libc::AF_INET6 => "inet6",
        libc::AF_PACKET => "packet",
        libc::AF_UNIX => "unix",
        _ => "other",
    }
}

fn socket_type_name(t: u64) -> &'static str {
    match (t & 0xf) as i32 {
        libc::SOCK_STREAM => "stream",
        libc::SOCK_DGRAM => "dgram",
        libc::SOCK_RAW => "raw",
        _ => "other",
    }
}

/// Net events (the hot path) go through the direct writer, the rest through
/// their serde DTO.
fn write_event(w: &mut NetWriter, out: &mut Vec<u8>, ev: &Event) {
    let schema = EVENT_SCHEMA;
    let dto = match ev {
        Event::Net(n) => return w.write(out, n),
        Event::ToolCall(t) => {
            out.extend_from_slice(super::gate::tool_call_json(t).as_bytes());
            return;
        }
        Event::File(f) => Dto::File {
            schema,
            time: rfc3339(f.time_ns),
            kind: f.op.kind(),
            rule: &f.rule,
            severity: f.severity.as_str(),
            action: f.action.as_str(),
            pid: f.pid,
            tgid: f.tgid,
            comm: &f.comm,
            cgroup_id: f.cgroup_id,
            object: FileObject {
                dev: f.dev,
                ino: f.ino,
                name: &f.name,
                path: f.path.as_deref(),
                matched: f.matched,
            },
        },
        Event::Drops {
            time_ns,
            new,
            total,
        } => Dto::Drops {
            schema,
            time: rfc3339(*time_ns),
            kind: "drops",
            dropped: *new,
            total_dropped: *total,
        },
        Event::Kill(k) => Dto::Kill {
            schema,
            time: rfc3339(k.time_ns),
            kind: "kill",
            rule: &k.rule,
            pid: k.pid,
            all_gone: k.all_gone,
            incident: k.incident.as_deref(),
            error: k.error.as_deref(),
        },
        Event::Tamper(t) => Dto::Tamper {
            schema,
            time: rfc3339(t.time_ns),
            kind: "tamper",
            operation: t.guard.as_str(),
            action: "deny",
            pid: t.pid,
            tgid: t.tgid,
            comm: comm_of(t.tgid, &t.comm),
            cgroup_id: t.cgroup_id,
            object: tamper_object(t),
        },
        Event::Unknown { time_ns, kind, len } => Dto::Unknown {
            schema,
            time: rfc3339(*time_ns),
            kind: "unknown",
            bpf_kind: *kind,
            bytes: *len,
        },
        Event::Start(st) => start_dto(st),
        Event::Stop(summary) => Dto::Stop {
            schema,
            time: rfc3339(crate::monitor::events::now_ns()),
            kind: "stop",
            summary,
        },
    };
    serde_json::to_writer(&mut *out, &dto).expect("event DTOs serialize");
}

fn start_dto(st: &StartEvent) -> Dto<'_> {
    Dto::Start {
        schema: EVENT_SCHEMA,
        time: rfc3339(st.time_ns),
        kind: "start",
        mode: st.mode,
        scope: ScopeObject {
            path: &st.scope,
            cgroup_id: st.scope_id,
        },
        kernel: &st.kernel,
        version: st.version,
        rules: &st.rules,
        guards: &st.guards,
        degraded: &st.degraded,
    }
}

/// Writes net events (the hot path) straight into bytes: no intermediate
/// values, and the date part of the timestamp formatted once per second.
#[derive(Default)]
struct NetWriter {
    sec: i64,
    prefix: Vec<u8>,
}

fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// A JSON string literal (quotes, escapes) for any text.
fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..=0x1f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 15) as usize]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

impl NetWriter {
    fn time(&mut self, out: &mut Vec<u8>, ns: i128) {
        let sec = ns.div_euclid(1_000_000_000) as i64;
        if self.prefix.is_empty() || sec != self.sec {
            let full = rfc3339(ns);
            self.prefix = full.as_bytes()[..20].to_vec();
            self.sec = sec;
        }
        out.push(b'"');
        out.extend_from_slice(&self.prefix);
        let nanos = ns.rem_euclid(1_000_000_000) as u64;
        let mut digits = [b'0'; 9];
        let mut v = nanos;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        out.extend_from_slice(&digits);
        out.extend_from_slice(b"Z\"");
    }

    fn write(&mut self, out: &mut Vec<u8>, n: &NetEvent) {
        out.extend_from_slice(b"{\"schema\":");
        push_str(out, EVENT_SCHEMA);
        out.extend_from_slice(b",\"time\":");
        self.time(out, n.time_ns);
        out.extend_from_slice(match n.hook {
            NetHook::Connect => b",\"kind\":\"net_connect\",\"rule\":",
            NetHook::Sendmsg => b",\"kind\":\"net_sendmsg\",\"rule\":",
        });
        push_str(out, &n.rule);
        out.extend_from_slice(b",\"severity\":\"");
        out.extend_from_slice(n.severity.as_str().as_bytes());
        out.extend_from_slice(b"\",\"action\":\"");
        out.extend_from_slice(n.action.as_str().as_bytes());
        out.extend_from_slice(b"\",\"also_matched\":[");
        for (i, r) in n.also_matched.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_str(out, r);
        }
        out.extend_from_slice(b"],\"pid\":");
        push_u64(out, u64::from(n.pid));
        out.extend_from_slice(b",\"tgid\":");
        push_u64(out, u64::from(n.tgid));
        out.extend_from_slice(b",\"comm\":");
        match comm_of(n.tgid, &n.comm) {
            Some(c) => push_str(out, c),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"cgroup_id\":");
        push_u64(out, n.cgroup_id);
        out.extend_from_slice(b",\"object\":{\"family\":");
        match n.addr {
            IpAddr::V4(a) => {
                out.extend_from_slice(b"\"inet\",\"address\":\"");
                for (i, o) in a.octets().iter().enumerate() {
                    if i > 0 {
                        out.push(b'.');
                    }
                    push_u64(out, u64::from(*o));
                }
                out.push(b'"');
            }
            IpAddr::V6(a) => {
                out.extend_from_slice(b"\"inet6\",\"address\":");
                push_str(out, &a.to_string());
            }
        }
        out.extend_from_slice(b",\"port\":");
        push_u64(out, u64::from(n.port));
        out.extend_from_slice(b",\"protocol\":\"");
        out.extend_from_slice(protocol_name(n.protocol).as_bytes());
        out.extend_from_slice(b"\"}}");
    }
}

/// One JSON object (no newline).
pub fn event_json(ev: &Event) -> String {
    let mut out = Vec::with_capacity(256);
    write_event(&mut NetWriter::default(), &mut out, ev);
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// What every event of a run ends with besides its own fields: its
/// sequence number, the host and the policy, and (decision and guard
/// events) the process and cgroup context. Renders each process and cgroup
/// once; later events copy the bytes.
pub struct RunContext {
    seq: u64,
    /// `,"host":{..},"policy":{..}`, rendered once.
    run: Vec<u8>,
    /// By `ProcessInfo::key`: (`,"exe":..,"argv":[..]`, parent's `,"exe":..`).
    processes: HashMap<u64, (Vec<u8>, Vec<u8>)>,
    /// By cgroup id: the whole `"cgroup":{..}` member's value.
    cgroups: HashMap<u64, Vec<u8>>,
}

const RENDER_CACHE_MAX: usize = 16_384;

/// A JSON object of the string members that are present (absent ones are
/// left out, not null).
fn present_members(out: &mut Vec<u8>, members: &[(&str, &Option<String>)]) {
    out.push(b'{');
    let mut first = true;
    for (name, v) in members {
        if let Some(v) = v {
            if !first {
                out.push(b',');
            }
            first = false;
            push_str(out, name);
            out.push(b':');
            push_str(out, v);
        }
    }
    out.push(b'}');
}

impl RunContext {
    pub fn new(run: &RunInfo) -> RunContext {
        let mut r = Vec::new();
        r.extend_from_slice(b",\"host\":");
        present_members(&mut r, &[("name", &run.host), ("boot_id", &run.boot_id)]);
        r.extend_from_slice(b",\"policy\":");
        present_members(
            &mut r,
            &[("name", &run.policy_name), ("sha256", &run.policy_sha256)],
        );
        RunContext {
            seq: 0,
            run: r,
            processes: HashMap::new(),
            cgroups: HashMap::new(),
        }
    }

    /// Closes the object in `out` (which ends with its `}`) with the
    /// context of `ev`.
    fn close(&mut self, out: &mut Vec<u8>, ev: &Event) {
        debug_assert_eq!(out.last(), Some(&b'}'));
        out.pop();
        out.extend_from_slice(b",\"seq\":");
        push_u64(out, self.seq);
        self.seq += 1;
        out.extend_from_slice(&self.run);
        let who = match ev {
            Event::Net(n) => Some((n.tgid, &n.ident, n.cgroup_id, &n.ctx)),
            Event::File(f) => Some((f.tgid, &f.ident, f.cgroup_id, &f.ctx)),
            Event::Tamper(t) => Some((t.tgid, &t.ident, t.cgroup_id, &t.ctx)),
            _ => None,
        };
        if let Some((tgid, ident, cgroup_id, ctx)) = who {
            if tgid != 0 {
                self.process(out, tgid, ident, ctx);
            }
            if cgroup_id != 0 {
                out.extend_from_slice(b",\"cgroup\":");
                match &ctx.cgroup {
                    Some(c) => {
                        if self.cgroups.len() >= RENDER_CACHE_MAX {
                            self.cgroups.clear();
                        }
                        out.extend_from_slice(
                            self.cgroups.entry(c.id).or_insert_with(|| cgroup_json(c)),
                        );
                    }
                    None => {
                        out.extend_from_slice(b"{\"id\":");
                        push_u64(out, cgroup_id);
                        out.push(b'}');
                    }
                }
            }
        }
        out.push(b'}');
    }

    fn process(&mut self, out: &mut Vec<u8>, tgid: u32, id: &Identity, ctx: &Context) {
        out.extend_from_slice(b",\"process\":{\"pid\":");
        push_u64(out, u64::from(tgid));
        if id.known() {
            out.extend_from_slice(b",\"uid\":");
            push_u64(out, u64::from(id.uid));
            out.extend_from_slice(b",\"gid\":");
            push_u64(out, u64::from(id.gid));
            out.extend_from_slice(b",\"start_boottime_ns\":");
            push_u64(out, id.start_ns);
        }
        let rendered = ctx.process.as_ref().map(|p| {
            if self.processes.len() >= RENDER_CACHE_MAX {
                self.processes.clear();
            }
            &*self
                .processes
                .entry(p.key)
                .or_insert_with(|| process_json(p))
        });
        if let Some((main, _)) = rendered {
            out.extend_from_slice(main);
        }
        if id.known() && id.ppid != 0 {
            out.extend_from_slice(b",\"parent\":{\"pid\":");
            push_u64(out, u64::from(id.ppid));
            out.extend_from_slice(b",\"start_boottime_ns\":");
            push_u64(out, id.parent_start_ns);
            if let Some((_, parent)) = rendered {
                out.extend_from_slice(parent);
            }
            out.push(b'}');
        }
        out.push(b'}');
    }
}

fn process_json(p: &ProcessInfo) -> (Vec<u8>, Vec<u8>) {
    let mut main = Vec::new();
    if let Some(exe) = &p.exe {
        main.extend_from_slice(b",\"exe\":");
        push_str(&mut main, exe);
    }
    if let Some(argv) = &p.argv {
        main.extend_from_slice(b",\"argv\":[");
        for (i, a) in argv.iter().enumerate() {
            if i > 0 {
                main.push(b',');
            }
            push_str(&mut main, a);
        }
        main.push(b']');
    }
    let mut parent = Vec::new();
    if let Some(exe) = &p.parent_exe {
        parent.extend_from_slice(b",\"exe\":");
        push_str(&mut parent, exe);
    }
    (main, parent)
}

fn cgroup_json(c: &CgroupInfo) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"{\"id\":");
    push_u64(&mut out, c.id);
    out.extend_from_slice(b",\"path\":");
    push_str(&mut out, &c.path);
    if let Some((rt, id)) = &c.container {
        out.extend_from_slice(b",\"container\":{\"id\":");
        push_str(&mut out, id);
        out.extend_from_slice(b",\"runtime\":");
        push_str(&mut out, rt.as_str());
        out.push(b'}');
    }
    if let Some(u) = &c.systemd_unit {
        out.extend_from_slice(b",\"systemd_unit\":");
        push_str(&mut out, u);
    }
    out.push(b'}');
    out
}

/// One event as the sinks write it: its fields, then its sequence number,
/// host, policy and process context.
pub struct EventWriter {
    net: NetWriter,
    ctx: RunContext,
}

impl EventWriter {
    pub fn new(run: &RunInfo) -> EventWriter {
        EventWriter {
            net: NetWriter::default(),
            ctx: RunContext::new(run),
        }
    }

    /// Appends the JSON object of `ev` (no newline) to `out`.
    pub fn write(&mut self, out: &mut Vec<u8>, ev: &Event) {
        write_event(&mut self.net, out, ev);
        self.ctx.close(out, ev);
    }
}

/// The event sink: JSON lines into a buffered writer, flushed when idle.
pub struct JsonLines<W: Write + Send> {
    w: W,
    buf: Vec<u8>,
    ev: EventWriter,
}

const FLUSH_AT: usize = 1 << 16;

impl<W: Write + Send> JsonLines<W> {
    /// Events of an unnamed run (no host or policy known).
    pub fn new(w: W) -> Self {
        Self::with_run(w, &RunInfo::default())
    }

    pub fn with_run(w: W, run: &RunInfo) -> Self {
        JsonLines {
            w,
            buf: Vec::with_capacity(FLUSH_AT + 1024),
            ev: EventWriter::new(run),
        }
    }
}

impl<W: Write + Send> Sink for JsonLines<W> {
    fn event(&mut self, ev: &Event) -> io::Result<()> {
        self.ev.write(&mut self.buf, ev);
        self.buf.push(b'\n');
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.w.write_all(&self.buf)?;
            self.buf.clear();
        }
        self.w.flush()
    }
}

/// The exit summary for people (stderr).
pub fn summary_text(s: &Summary, style: Style) -> String {
    let mut out = String::new();
    out.push_str(&style.bold("assay monitor summary"));
    out.push('\n');
    let w = s
        .by_rule
        .iter()
        .map(|r| r.rule.len())
        .max()
        .unwrap_or(4)
        .max(4);
    out.push_str(&format!(
        "  {:<w$}  {:<12}  {:>10}\n",
        "rule", "action", "events"
    ));
    for r in &s.by_rule {
        out.push_str(&format!(
            "  {:<w$}  {:<12}  {:>10}\n",
            r.rule,
            r.action.as_str(),
            r.events
        ));
    }
    out.push_str(&format!("  events delivered: {}\n", s.delivered));
    let dropped = format!("  events dropped:   {}", s.dropped);
    out.push_str(&if s.dropped > 0 {
        style.red(&dropped)
    } else {
        dropped
    });
    out.push('\n');
    if s.unknown > 0 {
        out.push_str(&format!("  unknown records:  {}\n", s.unknown));
    }
    if s.tamper > 0 {
        out.push_str(&style.red(&format!("  tamper attempts refused: {}", s.tamper)));
        out.push('\n');
    }
    if s.kills > 0 {
        out.push_str(&format!(
            "  kills: {} ({} failed)\n",
            s.kills, s.kill_failures
        ));
    }
    if let Some(e) = &s.sink_error {
        out.push_str(&style.red(&format!("  writing events failed: {e}")));
        out.push('\n');
    }
    if let Some(g) = &s.gate {
        out.push_str(&format!("  gate: {}\n", super::gate::counts_text(g)));
    }
    out
}

/// The summary as one JSON document (with `--format json`).
pub fn summary_json(s: &Summary) -> String {
    #[derive(Serialize)]
    struct V1<'a> {
        schema: &'static str,
        kind: &'static str,
        #[serde(flatten)]
        summary: &'a Summary,
    }
    let mut j = serde_json::to_string(&V1 {
        schema: SUMMARY_SCHEMA,
        kind: "summary",
        summary: s,
    })
    .expect("summary serializes");
    j.push('\n');
    j
}

/// One line on what a dead monitor left behind and what was done about it.
pub fn tidy_text(t: &Tidy) -> String {
    let who = match t.owner {
        Owner::Leaf { pid } => format!("a wrapper-mode monitor (pid {pid})"),
        Owner::Cgroup { id, pid } => {
            format!("an attach-mode monitor (pid {pid}) of cgroup id {id}")
        }
    };
    let leaf = match &t.leaf {
        Some(l) => format!("; the processes left in {} were killed", l.display()),
        None => String::new(),
    };
    format!(
        "assay: tidied what {who} left when it died: its enforcement had stayed pinned{leaf}; \
         {} event(s) after its death, {} dropped\n",
        t.events, t.dropped
    )
}

/// What cannot be enforced, one block per rule: what is missing, how to fix.
pub fn unenforced_text(list: &[Unenforceable], style: Style, degraded: bool) -> String {
    let mut out = String::new();
    let head = if degraded {
        "assay: WARNING: running DEGRADED (--allow-degraded); these rules are NOT enforced:"
    } else {
        "assay: cannot enforce the policy; nothing was started:"
    };
    out.push_str(&style.red(head));
    out.push('\n');
    for u in list {
        out.push_str(&format!(
            "  rule {}: {}\n    fix: {}\n",
            u.rule_id, u.reason, u.fix
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::events::KillEvent;
    use crate::policy::model::Action;
    use crate::severity::Severity;
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(1_795_305_600_123_456_789),
            "2026-11-22T00:00:00.123456789Z"
        );
        assert_eq!(
            rfc3339(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    fn net() -> NetEvent {
        NetEvent {
            time_ns: 0,
            hook: NetHook::Connect,
            rule: Arc::from("no-admin-ports"),
            rule_index: 0,
            severity: Severity::High,
            action: Action::Deny,
            also_matched: vec![Arc::from("egress")],
            pid: 11,
            tgid: 10,
            comm: "cu\"rl".into(),
            cgroup_id: 99,
            ident: Identity::default(),
            ctx: Context::default(),
            addr: "::ffff:127.0.0.1".parse().unwrap(),
            port: 22,
            protocol: 6,
        }
    }

    #[test]
    fn net_event_schema() {
        let j: serde_json::Value = serde_json::from_str(&event_json(&Event::Net(net()))).unwrap();
        assert_eq!(
            j,
            serde_json::json!({
                "schema": "assay.monitor.event/v1", "time": "1970-01-01T00:00:00.000000000Z", "kind": "net_connect",
                "rule": "no-admin-ports", "severity": "high", "action": "deny",
                "also_matched": ["egress"], "pid": 11, "tgid": 10, "comm": "cu\"rl",
                "cgroup_id": 99,
                "object": {"family": "inet6", "address": "::ffff:127.0.0.1", "port": 22,
                           "protocol": "tcp"}
            })
        );
    }

    #[test]
    fn direct_writer_escapes_and_tracks_seconds() {
        let mut w = NetWriter::default();
        let mut n = net();
        n.comm = "a\\b\n\u{1}é".into();
        n.addr = "10.1.2.3".parse().unwrap();
        n.hook = NetHook::Sendmsg;
        n.also_matched.clear();
        for (ns, want) in [
            (1_500_000_000, "1970-01-01T00:00:01.500000000Z"),
            (2_000_000_001, "1970-01-01T00:00:02.000000001Z"),
        ] {
            n.time_ns = ns;
            let mut out = Vec::new();
            w.write(&mut out, &n);
            let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(j["time"], want);
            assert_eq!(j["comm"], "a\\b\n\u{1}é");
            assert_eq!(j["kind"], "net_sendmsg");
            assert_eq!(j["object"]["address"], "10.1.2.3");
            assert_eq!(j["object"]["family"], "inet");
            assert_eq!(j["also_matched"], serde_json::json!([]));
        }
    }

    #[test]
    fn icmp_events_without_a_sender_say_so() {
        let mut n = net();
        n.hook = NetHook::Sendmsg;
        n.port = 0;
        n.protocol = 58;
        n.addr = "2001:db8::1".parse().unwrap();
        let j: serde_json::Value =
            serde_json::from_str(&event_json(&Event::Net(n.clone()))).unwrap();
        assert_eq!(j["comm"], "cu\"rl");
        assert_eq!(j["object"]["protocol"], "icmpv6");
        assert_eq!(j["object"]["port"], 0);
        (n.pid, n.tgid, n.comm, n.protocol) = (0, 0, String::new(), 1);
        let j: serde_json::Value = serde_json::from_str(&event_json(&Event::Net(n))).unwrap();
        assert_eq!(
            (&j["pid"], &j["tgid"]),
            (&serde_json::json!(0), &serde_json::json!(0))
        );
        assert!(j["comm"].is_null(), "{j}");
        assert_eq!(j["object"]["protocol"], "icmp");
        let t = Event::Tamper(TamperEvent {
            time_ns: 0,
            guard: Guard::IcmpOptions,
            pid: 0,
            tgid: 0,
            comm: String::new(),
            cgroup_id: 9,
            ident: Identity::default(),
            ctx: Context::default(),
            args: [libc::AF_INET as u64, 32, 0],
        });
        let j: serde_json::Value = serde_json::from_str(&event_json(&t)).unwrap();
        assert_eq!(j["operation"], "icmp_options");
        assert!(j["comm"].is_null(), "{j}");
        assert_eq!(
            j["object"],
            serde_json::json!({"family": "inet", "header_len": 32})
        );
    }

    #[test]
    fn file_event_schema() {
        use crate::monitor::events::FileEvent;
        use crate::monitor::events::MatchKind;
        let ev = Event::File(FileEvent {
            time_ns: 0,
            rule: Arc::from("creds"),
            rule_index: 0,
            severity: Severity::Critical,
            action: Action::Deny,
            pid: 5,
            tgid: 5,
            comm: "cat".into(),
            cgroup_id: 7,
            ident: Identity::default(),
            ctx: Context::default(),
            dev: 8 << 20 | 1,
            ino: 1234,
            matched: MatchKind::Inode,
            op: crate::monitor::events::FileOp::Open,
            name: "shadow".into(),
            path: Some("/etc/shadow".into()),
        });
        let j: serde_json::Value = serde_json::from_str(&event_json(&ev)).unwrap();
        assert_eq!(
            j,
            serde_json::json!({
                "schema": "assay.monitor.event/v1", "time": "1970-01-01T00:00:00.000000000Z", "kind": "file_open",
                "rule": "creds", "severity": "critical", "action": "deny", "pid": 5,
                "tgid": 5, "comm": "cat", "cgroup_id": 7,
                "object": {"dev": 8388609, "ino": 1234, "name": "shadow", "path": "/etc/shadow",
                           "match": "inode"}
            })
        );
        // A refused rename of a file the walk could not judge.
        let Event::File(mut f) = ev else {
            unreachable!()
        };
        f.op = crate::monitor::events::FileOp::Rename;
        f.matched = MatchKind::Undecided;
        f.path = None;
        let j: serde_json::Value = serde_json::from_str(&event_json(&Event::File(f))).unwrap();
        assert_eq!(j["kind"], "file_rename");
        assert_eq!(j["object"]["match"], "undecided");
        assert!(j["object"]["path"].is_null());
    }

    #[test]
    fn drops_and_kill_schema() {
        let j: serde_json::Value = serde_json::from_str(&event_json(&Event::Drops {
            time_ns: 0,
            new: 5,
            total: 7,
        }))
        .unwrap();
        assert_eq!(j["kind"], "drops");
        assert_eq!(j["dropped"], 5);
        assert_eq!(j["total_dropped"], 7);
        let k = Event::Kill(KillEvent {
            time_ns: 0,
            rule: Arc::from("r"),
            pid: 3,
            all_gone: true,
            incident: Some("/x".into()),
            error: None,
        });
        let j: serde_json::Value = serde_json::from_str(&event_json(&k)).unwrap();
        assert_eq!(j["kind"], "kill");
        assert_eq!(j["incident"], "/x");
        assert!(j["error"].is_null());
    }

    #[test]
    fn tamper_event_schema() {
        let ev = Event::Tamper(TamperEvent {
            time_ns: 0,
            guard: Guard::RawSocket,
            pid: 7,
            tgid: 7,
            comm: "python3".into(),
            cgroup_id: 9,
            ident: Identity::default(),
            ctx: Context::default(),
            args: [libc::AF_INET as u64, libc::SOCK_RAW as u64, 17],
        });
        let j: serde_json::Value = serde_json::from_str(&event_json(&ev)).unwrap();
        assert_eq!(j["kind"], "tamper");
        assert_eq!(j["operation"], "raw_socket");
        assert_eq!(j["action"], "deny");
        assert_eq!(j["object"]["family"], "inet");
        assert_eq!(j["object"]["type"], "raw");
        assert_eq!(j["object"]["protocol"], 17);
        assert_eq!(j["time"], "1970-01-01T00:00:00.000000000Z");
    }

    fn summary() -> Summary {
        use crate::monitor::events::RuleCount;
        Summary {
            delivered: 10,
            dropped: 2,
            by_rule: vec![RuleCount {
                rule: "no-admin-ports".into(),
                action: Action::Deny,
                severity: Severity::High,
                events: 10,
            }],
            unknown: 0,
            tamper: 3,
            kills: 1,
            kill_failures: 0,
            sink_error: None,
            gate: Some(crate::gate::run::Counts {
                calls: 12,
                denied: 2,
                killed: false,
            }),
        }
    }

    #[test]
    fn summary_text_names_rules_drops_and_kills() {
        let t = summary_text(
            &summary(),
            Style {
                color: false,
                width: None,
            },
        );
        assert!(t.contains("no-admin-ports  deny"), "{t}");
        assert!(t.contains("events delivered: 10"), "{t}");
        assert!(t.contains("events dropped:   2"), "{t}");
        assert!(t.contains("kills: 1 (0 failed)"), "{t}");
        assert!(t.contains("tamper attempts refused: 3"), "{t}");
        assert!(t.contains("gate: 12 tool call(s), 2 refused\n"), "{t}");
    }

    #[test]
    fn summary_json_schema() {
        let j: serde_json::Value = serde_json::from_str(&summary_json(&summary())).unwrap();
        assert_eq!(j["schema"], "assay.monitor.summary/v1");
        assert_eq!(j["kind"], "summary");
        assert_eq!(j["delivered"], 10);
        assert_eq!(j["dropped"], 2);
        assert_eq!(j["by_rule"][0]["rule"], "no-admin-ports");
        assert_eq!(j["by_rule"][0]["action"], "deny");
        assert_eq!(j["by_rule"][0]["events"], 10);
        assert!(j["sink_error"].is_null());
        assert_eq!(j["gate"]["denied"], 2);
    }

    #[test]
    fn events_carry_sequence_host_policy_and_process_context() {
        use crate::monitor::context::{CgroupInfo, Runtime};
        let run = RunInfo {
            host: Some("h1".into()),
            boot_id: Some("b-1".into()),
            policy_name: Some("p".into()),
            policy_sha256: Some("ab".into()),
        };
        let mut w = EventWriter::new(&run);
        let mut n = net();
        n.ident = Identity {
            uid: 1000,
            gid: 100,
            ppid: 1,
            start_ns: 5,
            parent_start_ns: 2,
        };
        n.ctx = Context {
            process: Some(Arc::new(ProcessInfo {
                key: 1,
                exe: Some("/usr/bin/node".into()),
                argv: Some(vec!["node".into(), "<redacted>".into()]),
                parent_exe: Some("/sbin/init".into()),
            })),
            cgroup: Some(Arc::new(CgroupInfo {
                id: 99,
                path: "/system.slice/docker-x.scope".into(),
                container: Some((Runtime::Docker, "x".into())),
                systemd_unit: Some("docker-x.scope".into()),
            })),
        };
        let mut lines = Vec::new();
        for ev in [Event::Net(n.clone()), Event::Net(n)] {
            let mut out = Vec::new();
            w.write(&mut out, &ev);
            lines.push(serde_json::from_slice::<serde_json::Value>(&out).unwrap());
        }
        let j = &lines[0];
        assert_eq!((&j["seq"], &lines[1]["seq"]), (&json!(0), &json!(1)));
        assert_eq!(j["host"], json!({"name": "h1", "boot_id": "b-1"}));
        assert_eq!(j["policy"], json!({"name": "p", "sha256": "ab"}));
        assert_eq!(
            j["process"],
            json!({"pid": 10, "uid": 1000, "gid": 100, "start_boottime_ns": 5,
                   "exe": "/usr/bin/node", "argv": ["node", "<redacted>"],
                   "parent": {"pid": 1, "start_boottime_ns": 2, "exe": "/sbin/init"}})
        );
        assert_eq!(
            j["cgroup"],
            json!({"id": 99, "path": "/system.slice/docker-x.scope",
                   "container": {"id": "x", "runtime": "docker"},
                   "systemd_unit": "docker-x.scope"})
        );
        assert_eq!(lines[0], {
            let mut l = lines[1].clone();
            l["seq"] = json!(0);
            l
        });
        // What is not known is absent, never guessed.
        let mut bare = net();
        bare.cgroup_id = 7;
        let mut out = Vec::new();
        EventWriter::new(&RunInfo::default()).write(&mut out, &Event::Net(bare));
        let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(j["process"], json!({"pid": 10}));
        assert_eq!(j["cgroup"], json!({"id": 7}));
        assert_eq!((&j["host"], &j["policy"]), (&json!({}), &json!({})));
    }

    #[test]
    fn start_and_stop_events() {
        let st = StartEvent {
            time_ns: 0,
            mode: "attach",
            scope: "/sys/fs/cgroup/mcp".into(),
            scope_id: 5,
            kernel: "6.1.0".into(),
            version: "0.1.0",
            rules: vec![RuleState {
                rule: "r".into(),
                action: Action::Deny,
                enforced: false,
            }],
            guards: vec!["bpf"],
            degraded: vec![Degradation {
                what: "rule r".into(),
                reason: "why".into(),
            }],
        };
        let mut w = EventWriter::new(&RunInfo::default());
        let mut out = Vec::new();
        w.write(&mut out, &Event::Start(Box::new(st)));
        let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(j["kind"], "start");
        assert_eq!(
            j["scope"],
            json!({"path": "/sys/fs/cgroup/mcp", "cgroup_id": 5})
        );
        assert_eq!(
            j["rules"],
            json!([{"rule": "r", "action": "deny", "enforced": false}])
        );
        assert_eq!(j["degraded"][0]["what"], "rule r");
        assert_eq!(j["seq"], 0);
        let mut out = Vec::new();
        w.write(&mut out, &Event::Stop(Box::new(summary())));
        let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(j["kind"], "stop");
        assert_eq!(j["summary"]["delivered"], 10);
        assert_eq!(j["seq"], 1);
    }

    #[test]
    fn json_lines_sink_writes_one_line_per_event() {
        let mut buf = Vec::new();
        {
            let mut s = JsonLines::new(&mut buf);
            s.event(&Event::Net(net())).unwrap();
            s.event(&Event::Net(net())).unwrap();
            s.flush().unwrap();
        }
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.ends_with('\n'));
    }
}
