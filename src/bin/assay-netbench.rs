//! Network probe and benchmark helper for the monitor's tests and
//! `scripts/bench/monitor.sh`. Not part of the product surface.
//!
//! `probe`: attempt `--count` TCP connects (or UDP sendto) to one address and
//! print what happened as JSON. Denied connects reuse the socket (EPERM leaves
//! it unconnected), so a flood is cheap.
//! `socket`: try to create a raw, ping or packet socket and, when created,
//! send one datagram through it (a ping: optionally source-routed, and
//! waiting for the echo reply); prints what happened as JSON.
//! `latency`: connect()+close() to a loopback listener it runs itself; prints
//! ns per connect.
//! `bench` (root, monitor feature): baseline vs monitored connect latency with
//! 10 and 10,000 CIDR rules, start-up time, and event drain rates.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::Instant;

use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    Probe {
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long, default_value_t = 1)]
        count: u64,
        #[arg(long)]
        udp: bool,
    },
    Socket {
        #[arg(long, value_enum)]
        kind: SockKind,
        /// Send one datagram here when the socket was created (raw: a UDP
        /// datagram to this port, IPv4 only; ping: an ICMP echo, ICMPv6 to
        /// an IPv6 address, port ignored; packet: not sent).
        #[arg(long)]
        to: Option<SocketAddr>,
        /// Ping: wait this long for the echo reply (`replied`).
        #[arg(long, default_value_t = 0)]
        reply_ms: u64,
        /// Ping over IPv4: a loose source route through this hop (the IP
        /// header's destination becomes the hop, `to` moves into the options).
        #[arg(long)]
        lsrr: Option<std::net::Ipv4Addr>,
    },
    Latency {
        #[arg(long, default_value_t = 20_000)]
        count: u64,
        /// Connect a UDP socket instead (no handshake: BPF cost is a larger share).
        #[arg(long)]
        udp: bool,
        /// Measure in each of these cgroups in turn: the process moves itself
        /// between them every batch, so all are measured under the same load.
        #[arg(long, value_delimiter = ',')]
        cgroups: Vec<std::path::PathBuf>,
        #[arg(long, default_value_t = 500)]
        batch: u64,
    },
    #[cfg(all(target_os = "linux", feature = "monitor"))]
    Bench {
        #[arg(long, default_value_t = 20_000)]
        count: u64,
        #[arg(long, default_value_t = 5)]
        rounds: u32,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Probe { addr, count, udp } => {
            let r = probe(addr, count, udp)?;
            println!("{}", serde_json::to_string(&r)?);
        }
        Cmd::Socket {
            kind,
            to,
            reply_ms,
            lsrr,
        } => {
            let r = try_socket(kind, to, reply_ms, lsrr);
            println!("{}", serde_json::to_string(&r)?);
        }
        Cmd::Latency {
            count,
            udp,
            cgroups,
            batch,
        } => {
            let ns = latency(count, udp, &cgroups, batch)?;
            println!(
                "{}",
                serde_json::json!({ "count": count, "ns_per_connect": ns })
            );
        }
        #[cfg(all(target_os = "linux", feature = "monitor"))]
        Cmd::Bench { count, rounds } => bench::run(count, rounds)?,
    }
    Ok(())
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SockKind {
    /// AF_INET, SOCK_RAW, IPPROTO_UDP
    Raw,
    /// AF_INET, SOCK_DGRAM, IPPROTO_ICMP (AF_INET6 and IPPROTO_ICMPV6 to an
    /// IPv6 address)
    Ping,
    /// AF_PACKET, SOCK_RAW
    Packet,
}

#[derive(serde::Serialize)]
struct SocketTry {
    created: bool,
    /// errno of socket() (0: created).
    errno: i32,
    sent: bool,
    send_errno: i32,
    /// Ping: the echo reply arrived within `--reply-ms`.
    replied: bool,
    /// Ping with `--lsrr`: errno of setting the option (0: set).
    options_errno: i32,
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn try_socket(
    kind: SockKind,
    to: Option<SocketAddr>,
    reply_ms: u64,
    lsrr: Option<std::net::Ipv4Addr>,
) -> SocketTry {
    let v6 = to.is_some_and(|a| a.is_ipv6());
    let (family, ty, proto) = match kind {
        SockKind::Raw => (libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_UDP),
        SockKind::Ping if v6 => (libc::AF_INET6, libc::SOCK_DGRAM, libc::IPPROTO_ICMPV6),
        SockKind::Ping => (libc::AF_INET, libc::SOCK_DGRAM, libc::IPPROTO_ICMP),
        SockKind::Packet => (libc::AF_PACKET, libc::SOCK_RAW, 0x0300), // htons(ETH_P_ALL)
    };
    // SAFETY: plain syscall.
    let fd = unsafe { libc::socket(family, ty | libc::SOCK_CLOEXEC, proto) };
    let mut r = SocketTry {
        created: fd >= 0,
        errno: if fd >= 0 { 0 } else { errno() },
        sent: false,
        send_errno: 0,
        replied: false,
        options_errno: 0,
    };
    let close = |fd: i32| {
        // SAFETY: our descriptor.
        unsafe { libc::close(fd) };
    };
    let (Some(to), true, false) = (to, fd >= 0, matches!(kind, SockKind::Packet)) else {
        if fd >= 0 {
            close(fd);
        }
        return r;
    };
    if matches!(kind, SockKind::Raw) && v6 {
        close(fd);
        r.send_errno = libc::EAFNOSUPPORT;
        return r;
    }
    if let Some(hop) = lsrr {
        // LSRR: type 131, length 7, pointer 4, one hop (the kernel pads the
        // option list and appends the final destination).
        let mut opt = vec![131u8, 7, 4];
        opt.extend_from_slice(&hop.octets());
        // SAFETY: our descriptor, a buffer of the stated size.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_IP,
                libc::IP_OPTIONS,
                opt.as_ptr().cast(),
                opt.len() as libc::socklen_t,
            )
        };
        if rc != 0 {
            r.options_errno = errno();
        }
    }
    let payload: Vec<u8> = match kind {
        // UDP header (source port 40000, no checksum) + one byte: the kernel
        // adds the IP header.
        SockKind::Raw => {
            let mut b = Vec::new();
            b.extend_from_slice(&40000u16.to_be_bytes());
            b.extend_from_slice(&to.port().to_be_bytes());
            b.extend_from_slice(&9u16.to_be_bytes());
            b.extend_from_slice(&[0, 0, b'x']);
            b
        }
        // ICMP(v6) echo request; the kernel fills the id and checksum.
        _ => vec![if v6 { 128 } else { 8 }, 0, 0, 0, 0, 0, 0, 1, b'x'],
    };
    let (ss, len) = sockaddr(&SocketAddr::new(to.ip(), 0));
    // SAFETY: valid buffer and address of their stated sizes.
    let n = unsafe {
        libc::sendto(
            fd,
            payload.as_ptr().cast(),
            payload.len(),
            0,
            (&raw const ss).cast(),
            len,
        )
    };
    r.sent = n >= 0;
    r.send_errno = if n >= 0 { 0 } else { errno() };
    if r.sent && reply_ms > 0 {
        r.replied = echo_reply(fd, v6, reply_ms);
    }
    close(fd);
    r
}

/// Whether an echo reply reaches ping socket `fd` within `ms`.
fn echo_reply(fd: i32, v6: bool, ms: u64) -> bool {
    let deadline = Instant::now() + std::time::Duration::from_millis(ms);
    let want = if v6 { 129 } else { 0 };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut p, 1, left.as_millis().max(1) as i32) } <= 0 {
            continue;
        }
        let mut buf = [0u8; 256];
        // SAFETY: our descriptor, a buffer of the stated size.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        // A ping socket delivers the ICMP message without the IP header.
        if n > 0 && buf[0] == want {
            return true;
        }
    }
}

#[derive(serde::Serialize, Default)]
struct ProbeResult {
    attempts: u64,
    ok: u64,
    eperm: u64,
    other_errors: u64,
    last_error: Option<String>,
    elapsed_ns: u128,
}

fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data, large enough for both families.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as _,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write((&raw mut ss).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as _,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write((&raw mut ss).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

fn socket(addr: &SocketAddr, udp: bool) -> io::Result<i32> {
    let fam = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let ty = if udp {
        libc::SOCK_DGRAM
    } else {
        libc::SOCK_STREAM
    };
    // SAFETY: plain syscall.
    let fd = unsafe { libc::socket(fam, ty | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(fd)
    }
}

fn probe(addr: SocketAddr, count: u64, udp: bool) -> io::Result<ProbeResult> {
    let (ss, len) = sockaddr(&addr);
    let sa: *const libc::sockaddr = (&raw const ss).cast();
    let mut r = ProbeResult::default();
    let mut fd = socket(&addr, udp)?;
    let start = Instant::now();
    for _ in 0..count {
        r.attempts += 1;
        // SAFETY: valid fd and address.
        let rc = unsafe {
            if udp {
                libc::sendto(fd, b"x".as_ptr().cast(), 1, 0, sa, len) as i32
            } else {
                libc::connect(fd, sa, len)
            }
        };
        if rc >= 0 {
            r.ok += 1;
            if !udp {
                // SAFETY: our fd.
                unsafe { libc::close(fd) };
                fd = socket(&addr, udp)?;
            }
            continue;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EPERM) {
            r.eperm += 1;
        } else {
            r.other_errors += 1;
            r.last_error = Some(e.to_string());
            // SAFETY: our fd.
            unsafe { libc::close(fd) };
            fd = socket(&addr, udp)?;
        }
    }
    r.elapsed_ns = start.elapsed().as_nanos();
    // SAFETY: our fd.
    unsafe { libc::close(fd) };
    Ok(r)
}

/// ns per connect() for each cgroup (or for the current one when none is
/// given), measured in interleaved batches after a warm-up; each figure is
/// the median over batches of the batch's median connect().
fn latency(
    count: u64,
    udp: bool,
    cgroups: &[std::path::PathBuf],
    batch: u64,
) -> io::Result<Vec<f64>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let (ss, len) = sockaddr(&addr);
    let sa: *const libc::sockaddr = (&raw const ss).cast();
    let one = || -> io::Result<u128> {
        let fd = socket(&addr, udp)?;
        let t = Instant::now();
        // SAFETY: valid fd and address.
        let rc = unsafe { libc::connect(fd, sa, len) };
        let ns = t.elapsed().as_nanos();
        let err = io::Error::last_os_error();
        // Accept each connection right away (same thread): the accept queue
        // never overflows, so no SYN is dropped and retransmitted a second
        // later (which would dominate any mean).
        if !udp && rc == 0 {
            drop(listener.accept()?);
        }
        // Reset instead of FIN: no TIME_WAIT, so a long run cannot exhaust
        // the ephemeral ports and measure port search instead of connect().
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: our fd, a valid option value.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&raw const linger).cast(),
                size_of::<libc::linger>() as libc::socklen_t,
            );
            libc::close(fd)
        };
        if rc != 0 { Err(err) } else { Ok(ns) }
    };
    let enter = |cg: &std::path::Path| std::fs::write(cg.join("cgroup.procs"), "0");
    let slots = cgroups.len().max(1);
    let mut means: Vec<Vec<f64>> = vec![Vec::new(); slots];
    for _ in 0..batch.min(count) {
        one()?;
    }
    let mut done = 0;
    while done < count {
        let n = batch.min(count - done);
        for (i, m) in means.iter_mut().enumerate() {
            if let Some(cg) = cgroups.get(i) {
                enter(cg)?;
            }
            let mut v = Vec::with_capacity(n as usize);
            for _ in 0..n {
                v.push(one()?);
            }
            v.sort_unstable();
            m.push(v[v.len() / 2] as f64);
        }
        done += n;
    }
    Ok(means
        .into_iter()
        .map(|mut v| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        })
        .collect())
}

#[cfg(all(target_os = "linux", feature = "monitor"))]
mod bench {
    use std::net::{IpAddr, Ipv4Addr};
    use std::process::{Command, Stdio};
    use std::time::Instant;

    use assay::monitor::cgroup::{LeafCgroup, Scope};
    use assay::monitor::events::Sink;
    use assay::monitor::netguard::DEFAULT_RINGBUF_BYTES;
    use assay::monitor::netguard_skel::types;
    use assay::monitor::ringbuf::Decoder;
    use assay::monitor::{Monitor, plan, process};
    use assay::output::monitor::JsonLines;
    use assay::policy::model::{Action, Cidr, Loopback, Matcher, NetMatch, Protocol, Rule};
    use assay::severity::Severity;

    /// Rules that never match loopback traffic to the listener: an allowlist
    /// of `n_cidrs` entries (127.0.0.0/8 among them) and a port rule on
    /// port 1.
    fn rules(n_cidrs: usize) -> Vec<Rule> {
        let mut cidrs = vec![Cidr {
            addr: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)),
            prefix: 8,
        }];
        for i in 1..n_cidrs {
            cidrs.push(Cidr {
                addr: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | ((i as u32) << 8))),
                prefix: 24,
            });
        }
        vec![
            Rule {
                id: "egress".into(),
                severity: Severity::Medium,
                action: Action::Deny,
                matcher: Matcher::NetConnect(NetMatch {
                    ports: vec![],
                    outside_cidrs: cidrs,
                    protocols: vec![Protocol::Tcp, Protocol::Udp],
                    loopback: Loopback::Match,
                }),
            },
            Rule {
                id: "ports".into(),
                severity: Severity::High,
                action: Action::Deny,
                matcher: Matcher::NetConnect(NetMatch {
                    ports: vec![1],
                    outside_cidrs: vec![],
                    protocols: vec![Protocol::Tcp],
                    loopback: Loopback::Match,
                }),
            },
        ]
    }

    fn devnull() -> Box<dyn Sink> {
        Box::new(JsonLines::new(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .expect("/dev/null"),
        ))
    }

    fn self_cmd(args: &[&str]) -> anyhow::Result<Command> {
        let mut c = Command::new(std::env::current_exe()?);
        c.args(args).stdout(Stdio::piped());
        Ok(c)
    }

    fn json_out(child: std::process::Child) -> anyhow::Result<serde_json::Value> {
        let out = child.wait_with_output()?;
        anyhow::ensure!(out.status.success(), "helper failed: {:?}", out.status);
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// [baseline, 10 rules, 10,000 rules] ns per connect, interleaved.
    fn latencies(cgs: [&LeafCgroup; 3], count: u64, udp: bool) -> anyhow::Result<Vec<f64>> {
        let n = count.to_string();
        let list = cgs
            .iter()
            .map(|c| c.path().display().to_string())
            .collect::<Vec<_>>()
            .join(",");
        let mut args = vec!["latency", "--count", &n, "--cgroups", &list];
        if udp {
            args.push("--udp");
        }
        let child = process::spawn_in_cgroup(cgs[0].path(), self_cmd(&args)?)?;
        let v = json_out(child)?;
        let ns: Vec<f64> = v["ns_per_connect"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
            .unwrap_or_default();
        anyhow::ensure!(ns.len() == 3, "bad latency output {v}");
        Ok(ns)
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    }

    fn start(
        rules: &[Rule],
        cg: &LeafCgroup,
        ring: u32,
        sink: Box<dyn Sink>,
    ) -> anyhow::Result<(Monitor, f64)> {
        let t = Instant::now();
        let p = plan(rules, None)?;
        let scope = Scope::of(cg.path())?;
        let m = Monitor::start(&p, &scope, ring, sink, None)?;
        Ok((m, t.elapsed().as_secs_f64() * 1e3))
    }

    /// Start time of a process on the boot clock, ns (as the kernel
    /// records it in events), from /proc/PID/stat's ticks.
    fn start_ns_of(pid: u32) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ticks: u64 = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(19))
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        ticks * 10_000_000
    }

    /// Decode + JSON line to /dev/null of `n` records, on one core. With
    /// `context`: as the monitor runs by default, each event enriched with
    /// its process and cgroup context (this process and its cgroup, the
    /// kernel's identity of it: cache hits after the first) and the sink
    /// adding seq, host and policy.
    fn synthetic_drain(n: u64, context: bool) -> anyhow::Result<f64> {
        use assay::monitor::context::{Resolver, RunInfo};
        let p = plan(&rules(1), None)?;
        let decoder = Decoder::new(&p.net, &p.rules);
        let me = std::process::id();
        let cgroup = assay::monitor::cgroup::cgroup2_mount()?;
        let cgroup_id = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(&cgroup)?.ino()
        };
        let mut ev = types::net_event::default();
        ev.hdr.kind = 1;
        ev.hdr.rule_idx = 0;
        ev.hdr.action = 2;
        ev.hdr.pid = me;
        ev.hdr.tgid = me;
        ev.hdr.cgroup_id = cgroup_id;
        ev.hdr.start_ns = start_ns_of(me);
        ev.hdr.ppid = std::os::unix::process::parent_id();
        ev.hdr.parent_start_ns = start_ns_of(ev.hdr.ppid);
        for (d, s) in ev.hdr.comm.iter_mut().zip(b"mcp-server") {
            *d = *s as i8;
        }
        ev.matched = 1;
        ev.family = libc::AF_INET as u16;
        ev.port = 443;
        ev.protocol = 6;
        ev.addr[..4].copy_from_slice(&[93, 184, 216, 34]);
        // SAFETY: generated plain C struct.
        let rec = unsafe { plain::as_bytes(&ev) }.to_vec();
        let mut resolver =
            context.then(|| Resolver::new(Some(&cgroup), std::path::Path::new("/proc")));
        let run = if context {
            RunInfo::of_host(Some("bench".into()), Some(b"bench policy"))
        } else {
            RunInfo::default()
        };
        let mut sink: Box<dyn Sink> = Box::new(JsonLines::with_run(
            std::fs::OpenOptions::new().write(true).open("/dev/null")?,
            &run,
        ));
        let t = Instant::now();
        for i in 0..n {
            let mut r = rec.clone();
            r[..8].copy_from_slice(&i.to_ne_bytes());
            let mut e = decoder.decode(&r);
            if let Some(res) = &mut resolver {
                res.enrich(&mut e);
            }
            sink.event(&e)?;
        }
        sink.flush()?;
        let rate = n as f64 / t.elapsed().as_secs_f64();
        if let Some(r) = &resolver {
            anyhow::ensure!(
                r.lookups <= 3,
                "context lookups must be cached: {} for {n} events",
                r.lookups
            );
        }
        Ok(rate)
    }

    /// 1,000,000 denied connects through the ring buffer (64 MiB), drained
    /// to /dev/null, with or without the process context.
    fn flood(context: bool) -> anyhow::Result<serde_json::Value> {
        let flood = LeafCgroup::create_tagged("bench-flood")?;
        let p = plan(&rules(1), None)?;
        let scope = Scope::of(flood.path())?;
        let (mut m, refused) = Monitor::load(&p, &scope, 64 << 20)?;
        anyhow::ensure!(refused.is_empty(), "rules refused: {refused:?}");
        if !context {
            m.without_context();
        }
        m.start_events(devnull(), None)?;
        let t = Instant::now();
        let n = "1000000";
        let child = process::spawn_in_cgroup(
            flood.path(),
            self_cmd(&["probe", "--addr", "127.0.0.1:1", "--count", n])?,
        )?;
        let v = json_out(child)?;
        let s = m.stop().map_err(anyhow::Error::msg)?;
        let secs = t.elapsed().as_secs_f64();
        let generated = v["eperm"].as_u64().unwrap_or(0);
        println!(
            "end to end ({} context): {generated} denied connects, {} delivered + {} dropped in \
             {secs:.2} s = {:.0} events/s",
            if context { "with" } else { "without" },
            s.delivered,
            s.dropped,
            s.delivered as f64 / secs
        );
        anyhow::ensure!(
            s.delivered + s.dropped == generated,
            "delivered {} + dropped {} != generated {generated}",
            s.delivered,
            s.dropped
        );
        Ok(
            serde_json::json!({"generated": generated, "delivered": s.delivered,
                              "dropped": s.dropped, "seconds": secs,
                              "events_per_s": s.delivered as f64 / secs}),
        )
    }

    pub fn run(count: u64, rounds: u32) -> anyhow::Result<()> {
        let base = LeafCgroup::create_tagged("bench-base")?;
        let cg10 = LeafCgroup::create_tagged("bench-10")?;
        let cg10k = LeafCgroup::create_tagged("bench-10k")?;
        let (m10, _) = start(&rules(10), &cg10, DEFAULT_RINGBUF_BYTES, devnull())?;
        let (m10k, startup_first) =
            start(&rules(10_000), &cg10k, DEFAULT_RINGBUF_BYTES, devnull())?;

        let mut report = serde_json::Map::new();
        for udp in [false, true] {
            let (mut b, mut a, mut c) = (vec![], vec![], vec![]);
            for _ in 0..rounds {
                let ns = latencies([&base, &cg10, &cg10k], count, udp)?;
                b.push(ns[0]);
                a.push(ns[1]);
                c.push(ns[2]);
            }
            let (b, a, c) = (median(b), median(a), median(c));
            let proto = if udp { "udp_connect" } else { "tcp_connect" };
            println!(
                "{proto}: baseline {b:.0} ns, 10 CIDR rules {a:.0} ns (x{:.3}), 10,000 CIDR rules {c:.0} ns (x{:.3})",
                a / b,
                c / b
            );
            report.insert(
                proto.into(),
                serde_json::json!({"baseline_ns": b, "cidr10_ns": a, "cidr10k_ns": c,
                                   "ratio10": a / b, "ratio10k": c / b}),
            );
        }
        drop((m10.stop(), m10k.stop()));

        let mut ups = vec![startup_first];
        for _ in 0..rounds {
            let (m, ms) = start(&rules(10_000), &cg10k, DEFAULT_RINGBUF_BYTES, devnull())?;
            ups.push(ms);
            let _ = m.stop();
        }
        let startup = median(ups);
        println!(
            "start-up (plan + load + map fill + attach, 10,000 CIDR rules): {startup:.1} ms (median)"
        );
        report.insert("startup_ms_10k".into(), startup.into());

        let plain_rate = synthetic_drain(1_000_000, false)?;
        let ctx_rate = synthetic_drain(1_000_000, true)?;
        println!(
            "consumer drain (decode + JSON line to /dev/null, one core): {plain_rate:.0} events/s \
             without context, {ctx_rate:.0} events/s with context"
        );
        report.insert("drain_events_per_s_consumer".into(), plain_rate.into());
        report.insert(
            "drain_events_per_s_consumer_context".into(),
            ctx_rate.into(),
        );

        // End to end: a flood of denied connects, drained to /dev/null.
        for context in [false, true] {
            let e2e = flood(context)?;
            let key = if context {
                "end_to_end_context"
            } else {
                "end_to_end"
            };
            report.insert(key.into(), e2e);
        }
        println!("{}", serde_json::Value::Object(report));
        Ok(())
    }
}
