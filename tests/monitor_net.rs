//! Root tier: network enforcement through the monitor's library API on the
//! host kernel. Every probe runs in a process started inside the leaf cgroup
//! (`assay-netbench probe`); all traffic goes to loopback.
#![cfg(all(target_os = "linux", feature = "monitor"))]

mod common;

use std::net::{IpAddr, TcpListener, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use assay::monitor::cgroup::{LeafCgroup, Scope};
use assay::monitor::events::{Event, NetHook, Sink, Summary};
use assay::monitor::{Monitor, plan, process};
use assay::policy::model::{Action, Cidr, Loopback, Matcher, NetMatch, Protocol, Rule};
use assay::severity::Severity;

#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<Event>>>);

impl Sink for Collect {
    fn event(&mut self, ev: &Event) -> std::io::Result<()> {
        self.0.lock().unwrap().push(ev.clone());
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Harness {
    cg: LeafCgroup,
    monitor: Option<Monitor>,
    events: Collect,
    scope: Scope,
}

impl Harness {
    fn new(tag: &str, rules: &[Rule]) -> Harness {
        Self::with_ring(tag, rules, 1 << 20, None)
    }

    /// `sink`: where events go instead of the collecting vector.
    fn with_ring(tag: &str, rules: &[Rule], ring: u32, sink: Option<Box<dyn Sink>>) -> Harness {
        let cg = LeafCgroup::create_tagged(tag).expect("leaf cgroup");
        let scope = Scope::of(cg.path()).unwrap();
        let p = plan(rules, None).unwrap();
        assert!(!p.fatal(), "preflight: {:?}", p.missing);
        let events = Collect::default();
        let sink = sink.unwrap_or_else(|| Box::new(events.clone()));
        let monitor = Monitor::start(&p, &scope, ring, sink, None).expect("monitor starts");
        Harness {
            cg,
            monitor: Some(monitor),
            events,
            scope,
        }
    }

    fn probe(&self, addr: &str, udp: bool) -> Probe {
        probe(Some(&self.cg), addr, udp, 1)
    }

    fn stop(&mut self) -> (Summary, Vec<Event>) {
        let s = self.monitor.take().unwrap().stop().unwrap();
        (s, std::mem::take(&mut *self.events.0.lock().unwrap()))
    }
}

#[derive(Debug)]
struct Probe {
    ok: u64,
    eperm: u64,
    pid: u32,
    other: Option<String>,
}

fn probe(cg: Option<&LeafCgroup>, addr: &str, udp: bool, count: u64) -> Probe {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_assay-netbench"));
    cmd.args(["probe", "--addr", addr, "--count", &count.to_string()]);
    if udp {
        cmd.arg("--udp");
    }
    cmd.stdout(Stdio::piped());
    let child = match cg {
        Some(cg) => process::spawn_in_cgroup(cg.path(), cmd).unwrap(),
        None => cmd.spawn().unwrap(),
    };
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "probe failed: {out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Probe {
        ok: v["ok"].as_u64().unwrap(),
        eperm: v["eperm"].as_u64().unwrap(),
        pid,
        other: v["last_error"].as_str().map(String::from),
    }
}

fn rule(id: &str, action: Action, m: NetMatch) -> Rule {
    Rule {
        id: id.into(),
        severity: Severity::High,
        action,
        matcher: Matcher::NetConnect(m),
    }
}

fn m() -> NetMatch {
    NetMatch {
        ports: vec![],
        outside_cidrs: vec![],
        protocols: vec![Protocol::Tcp, Protocol::Udp],
        loopback: Loopback::Match,
    }
}

fn cidr(s: &str) -> Cidr {
    let (a, p) = s.split_once('/').unwrap();
    Cidr {
        addr: a.parse().unwrap(),
        prefix: p.parse().unwrap(),
    }
}

/// A TCP listener on 127.0.0.1 and one on ::1 with the same port, plus a UDP
/// socket on each: whatever is not denied succeeds.
struct Listeners {
    port: u16,
    _keep: (TcpListener, TcpListener, UdpSocket, UdpSocket),
}

fn listeners(v4: &str) -> Listeners {
    loop {
        let a = TcpListener::bind(format!("{v4}:0")).unwrap();
        let port = a.local_addr().unwrap().port();
        let (Ok(b), Ok(c), Ok(d)) = (
            TcpListener::bind(("::1", port)),
            UdpSocket::bind((v4, port)),
            UdpSocket::bind(("::1", port)),
        ) else {
            continue;
        };
        return Listeners {
            port,
            _keep: (a, b, c, d),
        };
    }
}

fn net_events(evs: &[Event]) -> Vec<&assay::monitor::events::NetEvent> {
    evs.iter()
        .filter_map(|e| match e {
            Event::Net(n) => Some(n),
            _ => None,
        })
        .collect()
}

#[test]
fn blocked_port_is_denied_over_tcp4_tcp6_mapped_and_udp() {
    if !common::require_root("blocked_port_is_denied_over_tcp4_tcp6_mapped_and_udp") {
        return;
    }
    let blocked = listeners("127.0.0.1");
    let open = listeners("127.0.0.1");
    let mut r = m();
    r.ports = vec![blocked.port];
    let mut h = Harness::new("ports", &[rule("no-admin-ports", Action::Deny, r)]);
    let p = blocked.port;
    let cases = [
        (
            format!("127.0.0.1:{p}"),
            false,
            NetHook::Connect,
            "127.0.0.1",
        ),
        (format!("[::1]:{p}"), false, NetHook::Connect, "::1"),
        (
            format!("[::ffff:127.0.0.1]:{p}"),
            false,
            NetHook::Connect,
            "::ffff:127.0.0.1",
        ),
        (
            format!("127.0.0.1:{p}"),
            true,
            NetHook::Sendmsg,
            "127.0.0.1",
        ),
        (format!("[::1]:{p}"), true, NetHook::Sendmsg, "::1"),
    ];
    let mut pids = Vec::new();
    for (addr, udp, _, _) in &cases {
        let r = h.probe(addr, *udp);
        assert_eq!((r.ok, r.eperm), (0, 1), "{addr} udp={udp}: {r:?}");
        pids.push(r.pid);
    }
    // The same traffic to another port goes through.
    let q = open.port;
    for (addr, udp) in [
        (format!("127.0.0.1:{q}"), false),
        (format!("[::1]:{q}"), false),
        (format!("[::ffff:127.0.0.1]:{q}"), false),
        (format!("127.0.0.1:{q}"), true),
    ] {
        let r = h.probe(&addr, udp);
        assert_eq!(r.ok, 1, "{addr} udp={udp} must pass: {r:?}");
    }
    let (summary, evs) = h.stop();
    let nets = net_events(&evs);
    assert_eq!(
        nets.len(),
        cases.len(),
        "one event per denied operation: {evs:?}"
    );
    for ((n, (_, udp, hook, ip)), pid) in nets.iter().zip(&cases).zip(&pids) {
        assert_eq!(&*n.rule, "no-admin-ports");
        assert_eq!(n.action, Action::Deny);
        assert_eq!(n.severity, Severity::High);
        assert_eq!(n.hook, *hook);
        assert_eq!(n.addr, ip.parse::<IpAddr>().unwrap());
        assert_eq!(n.port, p);
        assert_eq!(n.protocol, if *udp { 17 } else { 6 });
        assert_eq!(n.tgid, *pid);
        assert_eq!(n.pid, *pid, "single-threaded probe");
        assert_eq!(n.comm, "assay-netbench");
        assert_eq!(n.cgroup_id, h.scope.cgroup_id);
        assert!(n.also_matched.is_empty());
    }
    assert_eq!(summary.delivered, 5);
    assert_eq!(summary.dropped, 0);
    assert_eq!(summary.by_rule[0].events, 5);
}

#[test]
fn cidr_allowlist_allows_inside_and_denies_outside() {
    if !common::require_root("cidr_allowlist_allows_inside_and_denies_outside") {
        return;
    }
    let l = listeners("0.0.0.0");
    let mut r = m();
    r.outside_cidrs = vec![cidr("127.0.0.1/32")];
    let mut h = Harness::new("cidr", &[rule("egress", Action::Deny, r)]);
    let p = l.port;
    let inside = h.probe(&format!("127.0.0.1:{p}"), false);
    assert_eq!(inside.ok, 1, "inside the allowlist: {inside:?}");
    let mapped = h.probe(&format!("[::ffff:127.0.0.1]:{p}"), false);
    assert_eq!(mapped.ok, 1, "mapped v4 judged as v4: {mapped:?}");
    let udp_in = h.probe(&format!("127.0.0.1:{p}"), true);
    assert_eq!(udp_in.ok, 1, "{udp_in:?}");
    for (addr, udp) in [
        (format!("127.0.0.2:{p}"), false),
        (format!("[::ffff:127.0.0.2]:{p}"), false),
        (format!("[::1]:{p}"), false),
        (format!("127.0.0.2:{p}"), true),
    ] {
        let r = h.probe(&addr, udp);
        assert_eq!((r.ok, r.eperm), (0, 1), "{addr} is outside: {r:?}");
    }
    // Outside the scope nothing is judged.
    let free = probe(None, &format!("127.0.0.2:{p}"), false, 1);
    assert_eq!(
        free.ok, 1,
        "a process outside the scope is unaffected: {free:?}"
    );
    let (summary, evs) = h.stop();
    let nets = net_events(&evs);
    let addrs: Vec<String> = nets.iter().map(|n| n.addr.to_string()).collect();
    assert_eq!(addrs, ["127.0.0.2", "::ffff:127.0.0.2", "::1", "127.0.0.2"]);
    assert_eq!(summary.delivered, 4);
}

#[test]
fn loopback_ignore_protocols_log_and_priority() {
    if !common::require_root("loopback_ignore_protocols_log_and_priority") {
        return;
    }
    let l = listeners("127.0.0.1");
    let p = l.port;
    // Egress allowlist that ignores loopback: loopback traffic passes.
    let mut egress = m();
    egress.outside_cidrs = vec![cidr("10.0.0.0/8")];
    egress.loopback = Loopback::Ignore;
    // TCP-only port rule, logged (allowed).
    let mut logged = m();
    logged.ports = vec![p];
    logged.protocols = vec![Protocol::Tcp];
    // UDP-only deny on the same port; a log rule listed first also matches.
    let mut udp_log = m();
    udp_log.ports = vec![p];
    udp_log.protocols = vec![Protocol::Udp];
    let mut udp_deny = udp_log.clone();
    udp_deny.loopback = Loopback::Match;
    let rules = [
        rule("egress", Action::Deny, egress),
        rule("watch-tcp", Action::Log, logged),
        rule("watch-udp", Action::Alert, udp_log),
        rule("no-udp", Action::Deny, udp_deny),
    ];
    let mut h = Harness::new("mixed", &rules);
    let tcp = h.probe(&format!("127.0.0.1:{p}"), false);
    assert_eq!(
        tcp.ok, 1,
        "loopback ignored by egress, TCP only logged: {tcp:?}"
    );
    let udp = h.probe(&format!("127.0.0.1:{p}"), true);
    assert_eq!(
        (udp.ok, udp.eperm),
        (0, 1),
        "the deny rule decides: {udp:?}"
    );
    let (_, evs) = h.stop();
    let nets = net_events(&evs);
    assert_eq!(nets.len(), 2, "{evs:?}");
    assert_eq!(&*nets[0].rule, "watch-tcp");
    assert_eq!(nets[0].action, Action::Log);
    assert!(nets[0].also_matched.is_empty());
    assert_eq!(&*nets[1].rule, "no-udp");
    assert_eq!(nets[1].action, Action::Deny);
    let also: Vec<&str> = nets[1].also_matched.iter().map(|s| &**s).collect();
    assert_eq!(also, ["watch-udp"]);
    assert!(tcp.other.is_none());
}

#[test]
fn loopback_match_judges_loopback() {
    if !common::require_root("loopback_match_judges_loopback") {
        return;
    }
    let l = listeners("127.0.0.1");
    let mut egress = m();
    egress.outside_cidrs = vec![cidr("10.0.0.0/8")];
    let mut h = Harness::new("lomatch", &[rule("egress", Action::Deny, egress)]);
    let r = h.probe(&format!("127.0.0.1:{}", l.port), false);
    assert_eq!(r.eperm, 1, "{r:?}");
    h.stop();
}

struct Count(Arc<Mutex<u64>>);
impl Sink for Count {
    fn event(&mut self, ev: &Event) -> std::io::Result<()> {
        if matches!(ev, Event::Net(_)) {
            *self.0.lock().unwrap() += 1;
        }
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn flood_of_denied_connects_is_fully_accounted_for() {
    if !common::require_root("flood_of_denied_connects_is_fully_accounted_for") {
        return;
    }
    const N: u64 = 1_000_000;
    let mut r = m();
    r.ports = vec![9];
    let written = Arc::new(Mutex::new(0));
    // The smallest ring buffer (one page) forces drops.
    let mut h = Harness::with_ring(
        "flood",
        &[rule("discard", Action::Deny, r)],
        4096,
        Some(Box::new(Count(written.clone()))),
    );
    let flood = h.probe_n("127.0.0.1:9", N);
    assert_eq!(flood.eperm, N, "{flood:?}");
    let (s, _) = h.stop();
    assert_eq!(
        s.delivered + s.dropped,
        N,
        "delivered {} + dropped {}",
        s.delivered,
        s.dropped
    );
    assert!(s.dropped > 0, "a one-page ring buffer must overflow");
    assert_eq!(*written.lock().unwrap(), s.delivered);
    assert_eq!(s.by_rule[0].events, s.delivered);
}

impl Harness {
    fn probe_n(&self, addr: &str, n: u64) -> Probe {
        probe(Some(&self.cg), addr, false, n)
    }
}

#[test]
fn leaf_cgroup_is_removed_even_with_a_process_left_inside() {
    if !common::require_root("leaf_cgroup_is_removed_even_with_a_process_left_inside") {
        return;
    }
    let cg = LeafCgroup::create_tagged("leftover").unwrap();
    let path = cg.path().to_path_buf();
    assert!(
        path.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("assay-monitor-")
    );
    let mut cmd = Command::new("sleep");
    cmd.arg("1000");
    let mut child = process::spawn_in_cgroup(&path, cmd).unwrap();
    let procs = std::fs::read_to_string(path.join("cgroup.procs")).unwrap();
    assert!(
        procs.lines().any(|l| l == child.id().to_string()),
        "{procs}"
    );
    drop(cg);
    assert!(!path.exists(), "leaf cgroup removed");
    let status = child.wait().unwrap();
    assert_eq!(process::exit_code(status), 137, "killed by cgroup.kill");
}

#[test]
fn scope_level_and_id_describe_the_cgroup() {
    if !common::require_root("scope_level_and_id_describe_the_cgroup") {
        return;
    }
    let cg = LeafCgroup::create_tagged("scope").unwrap();
    let s = Scope::of(cg.path()).unwrap();
    assert_eq!(s.level, 1);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(s.cgroup_id, std::fs::metadata(cg.path()).unwrap().ino());
}
