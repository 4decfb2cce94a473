//! The monitor's numbers for Prometheus: counters the event consumer bumps
//! (atomics, no lock on the hot path), gauges read when scraped (ring
//! buffer fill, processes in scope), and the HTTP endpoint that serves them
//! (`GET /metrics`, text exposition format 0.0.4) on its own thread.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::policy::model::Rule;

/// Upper bounds of the kill latency histogram, seconds (a kill includes
/// evidence capture and the policy's grace period: up to minutes).
pub const KILL_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// What a scrape reads. Shared by the consumer (writer) and the server.
pub struct Metrics {
    /// Unix time the monitor started, seconds.
    pub start_time: f64,
    /// By policy index: (rule id, action name, decisions).
    decisions: Vec<(String, &'static str, AtomicU64)>,
    pub delivered: AtomicU64,
    pub dropped: AtomicU64,
    pub unknown: AtomicU64,
    pub tamper: AtomicU64,
    pub kills: AtomicU64,
    pub kill_failures: AtomicU64,
    /// The tool-call gate's decisions (wrapper mode): allowed, refused.
    tool_calls: [AtomicU64; 2],
    kill_buckets: [AtomicU64; KILL_BUCKETS.len()],
    kill_sum_ns: AtomicU64,
    kill_count: AtomicU64,
    ring: Option<RingFill>,
    scope: Option<PathBuf>,
}

impl Metrics {
    pub fn new(rules: &[Rule], scope: Option<&Path>) -> Metrics {
        Metrics {
            start_time: super::events::now_ns() as f64 / 1e9,
            decisions: rules
                .iter()
                .map(|r| (r.id.clone(), r.action.as_str(), AtomicU64::new(0)))
                .collect(),
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            unknown: AtomicU64::new(0),
            tamper: AtomicU64::new(0),
            kills: AtomicU64::new(0),
            kill_failures: AtomicU64::new(0),
            tool_calls: Default::default(),
            kill_buckets: Default::default(),
            kill_sum_ns: AtomicU64::new(0),
            kill_count: AtomicU64::new(0),
            ring: None,
            scope: scope.map(Path::to_path_buf),
        }
    }

    /// Reads the ring buffer's fill when scraped.
    pub fn with_ring(mut self, ring: RingFill) -> Metrics {
        self.ring = Some(ring);
        self
    }

    pub fn decision(&self, rule_index: usize) {
        if let Some((_, _, n)) = self.decisions.get(rule_index) {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One `tools/call` the gate judged.
    pub fn tool_call(&self, allowed: bool) {
        self.tool_calls[usize::from(!allowed)].fetch_add(1, Ordering::Relaxed);
    }

    /// One kill done, `latency_ns` after the event that triggered it.
    pub fn kill(&self, ok: bool, latency_ns: Option<u64>) {
        self.kills.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.kill_failures.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(ns) = latency_ns {
            let secs = ns as f64 / 1e9;
            for (b, le) in self.kill_buckets.iter().zip(KILL_BUCKETS) {
                if secs <= le {
                    b.fetch_add(1, Ordering::Relaxed);
                }
            }
            self.kill_sum_ns.fetch_add(ns, Ordering::Relaxed);
            self.kill_count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The text exposition of every metric now.
    pub fn render(&self) -> String {
        let mut o = String::with_capacity(4096);
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let head = |o: &mut String, name: &str, kind: &str, help: &str| {
            o.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        };
        head(
            &mut o,
            "assay_build_info",
            "gauge",
            "Version of the assay binary (always 1).",
        );
        o.push_str(&format!(
            "assay_build_info{{version=\"{}\"}} 1\n",
            label(env!("CARGO_PKG_VERSION"))
        ));
        head(
            &mut o,
            "assay_start_time_seconds",
            "gauge",
            "Unix time the monitor started enforcing.",
        );
        o.push_str(&format!(
            "assay_start_time_seconds {:.3}\n",
            self.start_time
        ));
        head(
            &mut o,
            "assay_decisions_total",
            "counter",
            "Decisions the kernel reported, by deciding rule and its action.",
        );
        for (rule, action, n) in &self.decisions {
            o.push_str(&format!(
                "assay_decisions_total{{rule=\"{}\",action=\"{action}\"}} {}\n",
                label(rule),
                get(n)
            ));
        }
        for (name, help, v) in [
            (
                "assay_events_delivered_total",
                "Events read from the ring buffer.",
                &self.delivered,
            ),
            (
                "assay_events_dropped_total",
                "Events the kernel could not put on the full ring buffer.",
                &self.dropped,
            ),
            (
                "assay_events_unknown_total",
                "Ring buffer records this build could not decode.",
                &self.unknown,
            ),
            (
                "assay_tamper_refused_total",
                "Operations the self-protection guards refused.",
                &self.tamper,
            ),
        ] {
            head(&mut o, name, "counter", help);
            o.push_str(&format!("{name} {}\n", get(v)));
        }
        head(
            &mut o,
            "assay_tool_calls_total",
            "counter",
            "tools/call requests the tool-call gate judged, by decision.",
        );
        o.push_str(&format!(
            "assay_tool_calls_total{{decision=\"allow\"}} {}\nassay_tool_calls_total{{decision=\"deny\"}} {}\n",
            get(&self.tool_calls[0]),
            get(&self.tool_calls[1])
        ));
        head(
            &mut o,
            "assay_kills_total",
            "counter",
            "Kills the kill switch carried out, by result.",
        );
        let (kills, failed) = (get(&self.kills), get(&self.kill_failures));
        o.push_str(&format!(
            "assay_kills_total{{result=\"ok\"}} {}\nassay_kills_total{{result=\"failed\"}} {failed}\n",
            kills - failed.min(kills)
        ));
        head(
            &mut o,
            "assay_kill_latency_seconds",
            "histogram",
            "From the event that triggered a kill to the kill switch's answer.",
        );
        for (b, le) in self.kill_buckets.iter().zip(KILL_BUCKETS) {
            o.push_str(&format!(
                "assay_kill_latency_seconds_bucket{{le=\"{le}\"}} {}\n",
                get(b)
            ));
        }
        let count = get(&self.kill_count);
        o.push_str(&format!(
            "assay_kill_latency_seconds_bucket{{le=\"+Inf\"}} {count}\n\
             assay_kill_latency_seconds_sum {:.9}\nassay_kill_latency_seconds_count {count}\n",
            get(&self.kill_sum_ns) as f64 / 1e9
        ));
        if let Some(r) = &self.ring {
            head(
                &mut o,
                "assay_ringbuf_size_bytes",
                "gauge",
                "Size of the shared ring buffer.",
            );
            o.push_str(&format!("assay_ringbuf_size_bytes {}\n", r.size));
            head(
                &mut o,
                "assay_ringbuf_used_bytes",
                "gauge",
                "Bytes written to the ring buffer and not read yet.",
            );
            o.push_str(&format!("assay_ringbuf_used_bytes {}\n", r.used()));
        }
        if let Some(scope) = &self.scope {
            head(
                &mut o,
                "assay_scope_processes",
                "gauge",
                "Processes in the monitored cgroup and below.",
            );
            o.push_str(&format!(
                "assay_scope_processes {}\n",
                processes_below(scope)
            ));
        }
        o
    }
}

/// A label value, escaped as the exposition format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Processes in `dir` and its descendant cgroups.
fn processes_below(dir: &Path) -> u64 {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(s) = std::fs::read_to_string(d.join("cgroup.procs")) {
            n += s.lines().filter(|l| !l.is_empty()).count() as u64;
        }
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
    }
    n
}

/// The consumer and producer positions of a BPF ring buffer, mapped read
/// only (page 0: consumer, page 1: producer), so a scrape reads its fill
/// without touching the poller.
pub struct RingFill {
    consumer: *const u64,
    producer: *const u64,
    page: usize,
    size: u64,
}

// SAFETY: the pages are mapped for the life of the value and only read
// atomically.
unsafe impl Send for RingFill {}
// SAFETY: as above.
unsafe impl Sync for RingFill {}

impl RingFill {
    pub fn map(events: &impl std::os::fd::AsFd, size: u64) -> io::Result<RingFill> {
        // SAFETY: sysconf has no memory effects.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let fd = events.as_fd().as_raw_fd();
        let map = |off: usize| -> io::Result<*const u64> {
            // SAFETY: a fresh read-only shared mapping of one page of a ring
            // buffer map's fd; checked for failure.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    page,
                    libc::PROT_READ,
                    libc::MAP_SHARED,
                    fd,
                    off as libc::off_t,
                )
            };
            if p == libc::MAP_FAILED {
                Err(io::Error::last_os_error())
            } else {
                Ok(p as *const u64)
            }
        };
        let consumer = map(0)?;
        let producer = match map(page) {
            Ok(p) => p,
            Err(e) => {
                // SAFETY: mapped just above, one page.
                unsafe { libc::munmap(consumer as *mut _, page) };
                return Err(e);
            }
        };
        Ok(RingFill {
            consumer,
            producer,
            page,
            size,
        })
    }

    /// Bytes produced and not consumed yet.
    pub fn used(&self) -> u64 {
        // SAFETY: both pages stay mapped while self lives; the positions are
        // 8-byte aligned words the kernel and the poller update.
        let (c, p) = unsafe {
            (
                (*(self.consumer as *const AtomicU64)).load(Ordering::Acquire),
                (*(self.producer as *const AtomicU64)).load(Ordering::Acquire),
            )
        };
        p.saturating_sub(c)
    }
}

impl Drop for RingFill {
    fn drop(&mut self) {
        // SAFETY: mapped in `map`, one page each, unmapped once.
        unsafe {
            libc::munmap(self.consumer as *mut _, self.page);
            libc::munmap(self.producer as *mut _, self.page);
        }
    }
}

/// The `assay-metrics` thread: answers `GET /metrics` until stopped.
pub struct Server {
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(listener: TcpListener, metrics: Arc<Metrics>) -> io::Result<Server> {
        let stop = Arc::new(AtomicBool::new(false));
        let addr = listener.local_addr()?;
        let st = stop.clone();
        let thread = std::thread::Builder::new()
            .name("assay-metrics".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if st.load(Ordering::Relaxed) {
                        return;
                    }
                    if let Ok(c) = conn {
                        // One slow or broken client cannot hold the others
                        // up for long, nor stop the server.
                        let _ = answer(c, &metrics);
                    }
                }
            })?;
        Ok(Server {
            stop,
            addr,
            thread: Some(thread),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer(mut c: TcpStream, m: &Metrics) -> io::Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(2)))?;
    c.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut req = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = c.read(&mut buf)?;
        if n == 0 || req.len() > 16 * 1024 {
            break;
        }
        req.extend_from_slice(&buf[..n]);
    }
    let line = req.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next(), parts.next());
    let path = target.map(|t| t.split('?').next().unwrap_or(t));
    let (status, ctype, body) = match (method, path) {
        (Some("GET"), Some("/metrics")) => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            m.render(),
        ),
        (Some("GET"), _) => ("404 Not Found", "text/plain", "see /metrics\n".into()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "GET /metrics\n".into(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes())?;
    c.write_all(body.as_bytes())?;
    c.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::{Action, Loopback, Matcher, NetMatch};
    use crate::severity::Severity;

    fn rules() -> Vec<Rule> {
        vec![Rule {
            id: "a\"b".into(),
            severity: Severity::High,
            action: Action::Deny,
            matcher: Matcher::NetConnect(NetMatch {
                ports: vec![22],
                outside_cidrs: vec![],
                protocols: vec![],
                loopback: Loopback::Match,
            }),
        }]
    }

    #[test]
    fn counters_and_the_histogram_render() {
        let m = Metrics::new(&rules(), None);
        m.decision(0);
        m.decision(0);
        m.decision(7);
        m.kill(true, Some(30_000_000));
        m.kill(false, None);
        m.tool_call(true);
        m.tool_call(false);
        m.tool_call(false);
        let t = m.render();
        assert!(
            t.contains("assay_tool_calls_total{decision=\"allow\"} 1\nassay_tool_calls_total{decision=\"deny\"} 2\n"),
            "{t}"
        );
        assert!(
            t.contains("assay_decisions_total{rule=\"a\\\"b\",action=\"deny\"} 2\n"),
            "{t}"
        );
        assert!(t.contains("assay_kills_total{result=\"ok\"} 1\n"), "{t}");
        assert!(
            t.contains("assay_kills_total{result=\"failed\"} 1\n"),
            "{t}"
        );
        assert!(
            t.contains("assay_kill_latency_seconds_bucket{le=\"0.025\"} 0\n"),
            "{t}"
        );
        assert!(
            t.contains("assay_kill_latency_seconds_bucket{le=\"0.05\"} 1\n"),
            "{t}"
        );
        assert!(
            t.contains("assay_kill_latency_seconds_bucket{le=\"+Inf\"} 1\n"),
            "{t}"
        );
        assert!(t.contains("assay_kill_latency_seconds_count 1\n"), "{t}");
    }

    #[test]
    fn the_server_answers_metrics_and_404() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let m = Arc::new(Metrics::new(&rules(), None));
        m.decision(0);
        let s = Server::start(l, m).unwrap();
        let get = |path: &str| {
            let mut c = TcpStream::connect(addr).unwrap();
            write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut out = String::new();
            c.read_to_string(&mut out).unwrap();
            out
        };
        let r = get("/metrics");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("action=\"deny\"} 1\n"), "{r}");
        assert!(get("/").starts_with("HTTP/1.1 404"));
        drop(s);
        assert!(TcpStream::connect(addr).is_err(), "closed on drop");
    }
}
