//! The event pipeline: a polling thread drains the ring buffer into batches on
//! a bounded crossbeam channel; a consumer thread decodes, writes JSON lines,
//! counts, reads the drop counter, and runs actions (trigger_kill).
//!
//! Back-pressure is deliberate: when the consumer falls behind, the channel
//! fills, the poller blocks, the ring buffer fills and the kernel counts the
//! events it could not reserve. Nothing grows without bound, nothing is lost
//! silently.

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use libbpf_rs::{MapHandle, RingBufferBuilder};

use super::compile::NetPlan;
use super::netguard::dropped_total;
use super::netguard_skel::types;
use crate::policy::model::Action;
use crate::severity::Severity;

/// `enum assay_event_kind` in assay.h.
pub const EV_NET_CONNECT: u32 = 1;
pub const EV_NET_SENDMSG: u32 = 2;
pub const EV_FILE_OPEN: u32 = 3;

const BATCH_RECORDS: usize = 1024;
const CHANNEL_BATCHES: usize = 64;
const POLL_TIMEOUT: Duration = Duration::from_millis(100);
const DROPS_EVERY: Duration = Duration::from_secs(1);

/// Raw records, as copied out of the ring buffer.
#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl Batch {
    fn push(&mut self, rec: &[u8]) {
        self.data.extend_from_slice(rec);
        self.ends.push(self.data.len());
    }
    fn records(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let r = &self.data[start..end];
            start = end;
            r
        })
    }
}

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
    pub pid: u32,
    pub tgid: u32,
    pub comm: String,
    pub cgroup_id: u64,
    pub addr: IpAddr,
    pub port: u16,
    /// IPPROTO_* of the socket.
    pub protocol: u32,
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
    /// Kernel device number (`major << 20 | minor`) and inode of the file.
    pub dev: u32,
    pub ino: u64,
    /// Which kernel form of the rule matched.
    pub matched: super::fileguard::MatchKind,
    /// Basename of the opened file.
    pub name: String,
    /// Full path, where the kernel provides it.
    pub path: Option<String>,
}

/// The process a `trigger_kill` decision is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Offense {
    pub rule: Arc<str>,
    pub tgid: u32,
    /// What it did, for the incident record.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Net(NetEvent),
    File(FileEvent),
    /// Events the kernel could not put on the ring buffer since the last report.
    Drops {
        time_ns: i128,
        new: u64,
        total: u64,
    },
    Kill(KillEvent),
    /// A record of a kind this build does not know (counted, never hidden).
    Unknown {
        time_ns: i128,
        kind: u32,
        len: usize,
    },
}

/// Runs the kill switch for a `trigger_kill` decision. Called on the consumer
/// thread, at most once per offending process.
pub type Killer = Box<dyn FnMut(&Offense) -> KillEvent + Send>;

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
    pub kills: u64,
    pub kill_failures: u64,
    /// The first error writing events, if any (later events were only counted).
    pub sink_error: Option<String>,
}

/// Offset from CLOCK_MONOTONIC (bpf_ktime_get_ns) to the wall clock.
fn mono_to_wall_ns() -> i128 {
    let ts = |clock| {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: valid out pointer.
        unsafe { libc::clock_gettime(clock, &mut t) };
        i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec)
    };
    ts(libc::CLOCK_REALTIME) - ts(libc::CLOCK_MONOTONIC)
}

pub fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// Decodes raw records with the rule table of this monitor.
pub struct Decoder {
    /// By net rule bit: (id, action, severity, policy index).
    slots: Vec<(Arc<str>, Action, Severity, usize)>,
    /// By policy index: (id, severity).
    rules: Vec<(Arc<str>, Severity)>,
    offset_ns: i128,
}

fn comm_of(c: &[i8]) -> String {
    let n = c.iter().position(|c| *c == 0).unwrap_or(c.len());
    let b: Vec<u8> = c[..n].iter().map(|c| *c as u8).collect();
    String::from_utf8_lossy(&b).into_owned()
}

impl Decoder {
    pub fn new(plan: &NetPlan, rules: &[crate::policy::model::Rule]) -> Decoder {
        let ids: Vec<Arc<str>> = rules.iter().map(|r| Arc::from(r.id.as_str())).collect();
        Decoder {
            slots: plan
                .slots
                .iter()
                .map(|s| {
                    let id = ids
                        .get(s.index)
                        .cloned()
                        .unwrap_or_else(|| Arc::from(s.id.as_str()));
                    (id, s.action, s.severity, s.index)
                })
                .collect(),
            rules: ids
                .iter()
                .zip(rules)
                .map(|(id, r)| (id.clone(), r.severity))
                .collect(),
            offset_ns: mono_to_wall_ns(),
        }
    }

    pub fn decode(&self, rec: &[u8]) -> Event {
        let mut hdr = types::event_hdr::default();
        if plain::copy_from_bytes(&mut hdr, rec).is_err() {
            return Event::Unknown {
                time_ns: now_ns(),
                kind: 0,
                len: rec.len(),
            };
        }
        let time_ns = i128::from(hdr.ts_ns) + self.offset_ns;
        let unknown = Event::Unknown {
            time_ns,
            kind: hdr.kind,
            len: rec.len(),
        };
        match hdr.kind {
            EV_NET_CONNECT | EV_NET_SENDMSG => {
                let mut ev = types::net_event::default();
                let slot = self.slots.get(hdr.rule_idx as usize);
                let (Ok(()), Some((rule, action, severity, index))) =
                    (plain::copy_from_bytes(&mut ev, rec), slot)
                else {
                    return unknown;
                };
                let addr = if ev.family == libc::AF_INET as u16 {
                    IpAddr::V4(Ipv4Addr::new(
                        ev.addr[0], ev.addr[1], ev.addr[2], ev.addr[3],
                    ))
                } else {
                    IpAddr::V6(Ipv6Addr::from(ev.addr))
                };
                let also_matched = self
                    .slots
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != hdr.rule_idx as usize && ev.matched & (1u64 << i) != 0)
                    .map(|(_, s)| s.0.clone())
                    .collect();
                Event::Net(NetEvent {
                    time_ns,
                    hook: if hdr.kind == EV_NET_CONNECT {
                        NetHook::Connect
                    } else {
                        NetHook::Sendmsg
                    },
                    rule: rule.clone(),
                    rule_index: *index,
                    severity: *severity,
                    action: *action,
                    also_matched,
                    pid: hdr.pid,
                    tgid: hdr.tgid,
                    comm: comm_of(&hdr.comm),
                    cgroup_id: hdr.cgroup_id,
                    addr,
                    port: ev.port,
                    protocol: ev.protocol,
                })
            }
            EV_FILE_OPEN => {
                let Ok(f) = super::fileguard::decode(rec) else {
                    return unknown;
                };
                let Some((rule, severity)) = self.rules.get(f.rule_idx as usize) else {
                    return unknown;
                };
                Event::File(FileEvent {
                    time_ns,
                    rule: rule.clone(),
                    rule_index: f.rule_idx as usize,
                    severity: *severity,
                    action: f.action,
                    pid: f.pid,
                    tgid: f.tgid,
                    comm: f.comm,
                    cgroup_id: f.cgroup_id,
                    dev: f.dev,
                    ino: f.ino,
                    matched: f.matched,
                    name: f.name,
                    path: f.path,
                })
            }
            _ => unknown,
        }
    }
}

/// The running pipeline. `stop` drains everything still in the ring buffer,
/// reads the final drop count and returns the summary.
pub struct Pipeline {
    stop: Arc<AtomicBool>,
    poller: Option<JoinHandle<Result<(), String>>>,
    consumer: Option<JoinHandle<Summary>>,
}

impl Pipeline {
    pub fn start(
        events: Arc<MapHandle>,
        dropped: Arc<MapHandle>,
        plan: &NetPlan,
        rules: &[crate::policy::model::Rule],
        sink: Box<dyn Sink>,
        killer: Option<Killer>,
        drops_reported: u64,
    ) -> io::Result<Pipeline> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = bounded::<Batch>(CHANNEL_BATCHES);
        let decoder = Decoder::new(plan, rules);
        // Every rule, in policy order (indexed by the events' rule_index).
        let summary = Summary {
            by_rule: rules
                .iter()
                .map(|r| RuleCount {
                    rule: r.id.clone(),
                    action: r.action,
                    severity: r.severity,
                    events: 0,
                })
                .collect(),
            // Drops reported before (by the monitor that pinned these maps)
            // are not reported again.
            dropped: drops_reported,
            ..Summary::default()
        };
        let consumer = std::thread::Builder::new()
            .name("assay-events".into())
            .spawn(move || consume(rx, decoder, dropped, sink, killer, summary))?;
        let st = stop.clone();
        let poller = std::thread::Builder::new()
            .name("assay-ringbuf".into())
            .spawn(move || poll(events, tx, st))?;
        Ok(Pipeline {
            stop,
            poller: Some(poller),
            consumer: Some(consumer),
        })
    }

    pub fn stop(mut self) -> Result<Summary, String> {
        self.finish()
    }

    fn finish(&mut self) -> Result<Summary, String> {
        self.stop.store(true, Ordering::Relaxed);
        let polled = self
            .poller
            .take()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("ring buffer thread panicked".into()))
            })
            .unwrap_or(Ok(()));
        let summary = self
            .consumer
            .take()
            .ok_or("pipeline already stopped")?
            .join()
            .map_err(|_| "event consumer thread panicked".to_string())?;
        polled.map(|()| summary)
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if self.consumer.is_some() {
            let _ = self.finish();
        }
    }
}

fn poll(events: Arc<MapHandle>, tx: Sender<Batch>, stop: Arc<AtomicBool>) -> Result<(), String> {
    let pending = std::rc::Rc::new(std::cell::RefCell::new(Batch::default()));
    let full = std::rc::Rc::new(std::cell::Cell::new(false));
    let (p, f) = (pending.clone(), full.clone());
    let mut b = RingBufferBuilder::new();
    b.add(events.as_ref(), move |rec: &[u8]| {
        let mut batch = p.borrow_mut();
        batch.push(rec);
        if batch.ends.len() >= BATCH_RECORDS {
            // Stop this round of consumption so the batch can be sent.
            f.set(true);
            return -libc::EAGAIN;
        }
        0
    })
    .map_err(|e| format!("ring buffer: {e}"))?;
    let rb = b.build().map_err(|e| format!("ring buffer: {e}"))?;
    let send = |tx: &Sender<Batch>| -> Result<(), String> {
        let batch = std::mem::take(&mut *pending.borrow_mut());
        if batch.ends.is_empty() {
            return Ok(());
        }
        tx.send(batch)
            .map_err(|_| "event consumer stopped".to_string())
    };
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let r = if full.replace(false) {
            rb.consume_raw()
        } else {
            rb.poll_raw(POLL_TIMEOUT)
        };
        if r < 0 && r != -libc::EINTR && r != -libc::EAGAIN {
            return Err(format!(
                "ring buffer poll: {}",
                io::Error::from_raw_os_error(-r)
            ));
        }
        send(&tx)?;
        if stopping && !full.get() {
            // One last drain after the stop flag: everything produced before
            // the programs were detached is read.
            loop {
                let r = rb.consume_raw();
                send(&tx)?;
                if !full.replace(false) || r < 0 && r != -libc::EAGAIN {
                    break;
                }
            }
            return Ok(());
        }
    }
}

fn emit(sink: &mut dyn Sink, ev: &Event, summary: &mut Summary) {
    if summary.sink_error.is_none() {
        if let Err(e) = sink.event(ev) {
            summary.sink_error = Some(e.to_string());
        }
    }
}

fn flush(sink: &mut dyn Sink, summary: &mut Summary) {
    if summary.sink_error.is_none() {
        if let Err(e) = sink.flush() {
            summary.sink_error = Some(e.to_string());
        }
    }
}

/// Report drops the kernel counted since the last check.
fn check_drops(dropped: &MapHandle, sink: &mut dyn Sink, summary: &mut Summary) {
    if let Ok(total) = dropped_total(dropped) {
        if total > summary.dropped {
            let ev = Event::Drops {
                time_ns: now_ns(),
                new: total - summary.dropped,
                total,
            };
            summary.dropped = total;
            emit(sink, &ev, summary);
        }
    }
}

fn consume(
    rx: Receiver<Batch>,
    decoder: Decoder,
    dropped: Arc<MapHandle>,
    mut sink: Box<dyn Sink>,
    mut killer: Option<Killer>,
    mut summary: Summary,
) -> Summary {
    let sink = sink.as_mut();
    let mut killed: HashSet<u32> = HashSet::new();
    let mut last_drops_check = Instant::now();
    loop {
        let batch = match rx.recv_timeout(DROPS_EVERY) {
            Ok(b) => Some(b),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        for rec in batch.iter().flat_map(|b| b.records()) {
            summary.delivered += 1;
            let ev = decoder.decode(rec);
            let offense = match &ev {
                Event::Net(n) => {
                    if let Some(c) = summary.by_rule.get_mut(n.rule_index) {
                        c.events += 1;
                    }
                    (n.action == Action::TriggerKill).then(|| Offense {
                        rule: n.rule.clone(),
                        tgid: n.tgid,
                        detail: format!(
                            "{} to {} port {} denied",
                            match n.hook {
                                NetHook::Connect => "connect",
                                NetHook::Sendmsg => "sendmsg",
                            },
                            n.addr,
                            n.port
                        ),
                    })
                }
                Event::File(f) => {
                    if let Some(c) = summary.by_rule.get_mut(f.rule_index) {
                        c.events += 1;
                    }
                    (f.action == Action::TriggerKill).then(|| Offense {
                        rule: f.rule.clone(),
                        tgid: f.tgid,
                        detail: format!(
                            "open of {} (dev {} ino {}) denied",
                            f.path.as_deref().unwrap_or(&f.name),
                            f.dev,
                            f.ino
                        ),
                    })
                }
                Event::Unknown { .. } => {
                    summary.unknown += 1;
                    None
                }
                Event::Drops { .. } | Event::Kill(_) => None,
            };
            emit(sink, &ev, &mut summary);
            if let (Some(o), Some(k)) = (offense, killer.as_mut()) {
                // One kill per offending process, however many events it
                // produced before it died.
                if killed.insert(o.tgid) {
                    let ke = k(&o);
                    summary.kills += 1;
                    if !ke.all_gone || ke.error.is_some() {
                        summary.kill_failures += 1;
                    }
                    emit(sink, &Event::Kill(ke), &mut summary);
                }
            }
        }
        if last_drops_check.elapsed() >= DROPS_EVERY {
            check_drops(&dropped, sink, &mut summary);
            last_drops_check = Instant::now();
        }
        if rx.is_empty() {
            // Idle for now: make what was written visible.
            flush(sink, &mut summary);
        }
    }
    check_drops(&dropped, sink, &mut summary);
    flush(sink, &mut summary);
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::compile::net_plan;
    use crate::monitor::fileguard::MatchKind;
    use crate::monitor::fileguard_skel::types as ft;
    use crate::policy::model::{
        FileMatch, GlobForm, Loopback, Matcher, NetMatch, PathGlob, Protocol, Rule,
    };

    fn rules() -> Vec<Rule> {
        vec![
            Rule {
                id: "creds".into(),
                severity: Severity::Critical,
                action: Action::TriggerKill,
                matcher: Matcher::FileOpen(FileMatch {
                    path_globs: vec![PathGlob {
                        text: "/etc/shadow".into(),
                        form: GlobForm::Exact("/etc/shadow".into()),
                    }],
                    except: vec![],
                }),
            },
            Rule {
                id: "watch".into(),
                severity: Severity::Low,
                action: Action::Log,
                matcher: Matcher::NetConnect(NetMatch {
                    ports: vec![53],
                    outside_cidrs: vec![],
                    protocols: vec![Protocol::Udp],
                    loopback: Loopback::Match,
                }),
            },
            Rule {
                id: "ports".into(),
                severity: Severity::High,
                action: Action::Deny,
                matcher: Matcher::NetConnect(NetMatch {
                    ports: vec![22, 53],
                    outside_cidrs: vec![],
                    protocols: vec![Protocol::Tcp, Protocol::Udp],
                    loopback: Loopback::Match,
                }),
            },
        ]
    }

    #[test]
    fn file_events_map_their_index_to_the_policy_rule() {
        let r = rules();
        let d = Decoder::new(&net_plan(&r).unwrap(), &r);
        let mut ev = ft::file_event::default();
        ev.hdr.kind = EV_FILE_OPEN;
        ev.hdr.rule_idx = 0;
        ev.hdr.action = 3;
        ev.hdr.tgid = 77;
        ev.ino = 99;
        ev.r#match = 1;
        for (d, s) in ev.name.iter_mut().zip(b"shadow") {
            *d = *s as i8;
        }
        // SAFETY: generated plain C struct.
        let Event::File(f) = d.decode(unsafe { plain::as_bytes(&ev) }) else {
            panic!("not a file event");
        };
        assert_eq!(&*f.rule, "creds");
        assert_eq!(f.rule_index, 0);
        assert_eq!(f.action, Action::TriggerKill);
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.matched, MatchKind::Inode);
        assert_eq!((f.tgid, f.ino, f.name.as_str()), (77, 99, "shadow"));
        // An index past the policy is reported, not guessed.
        ev.hdr.rule_idx = 9;
        let e = d.decode(unsafe { plain::as_bytes(&ev) });
        assert!(
            matches!(
                e,
                Event::Unknown {
                    kind: EV_FILE_OPEN,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn net_events_name_the_deciding_rule_and_the_others() {
        let r = rules();
        let plan = net_plan(&r).unwrap();
        let d = Decoder::new(&plan, &r);
        // Bits: 0 = "ports" (deny first), 1 = "watch" (log).
        assert_eq!(plan.slots[0].id, "ports");
        let mut ev = types::net_event::default();
        ev.hdr.kind = EV_NET_SENDMSG;
        ev.hdr.rule_idx = 0;
        ev.hdr.action = 2;
        ev.matched = 0b11;
        ev.family = libc::AF_INET6 as u16;
        ev.addr = std::net::Ipv6Addr::LOCALHOST.octets();
        ev.port = 53;
        ev.protocol = 17;
        // SAFETY: generated plain C struct.
        let Event::Net(n) = d.decode(unsafe { plain::as_bytes(&ev) }) else {
            panic!("not a net event");
        };
        assert_eq!(&*n.rule, "ports");
        assert_eq!(n.rule_index, 2, "position in the policy");
        assert_eq!(n.hook, NetHook::Sendmsg);
        assert_eq!(
            n.also_matched.iter().map(|s| &**s).collect::<Vec<_>>(),
            ["watch"]
        );
        assert_eq!(n.addr, IpAddr::V6(Ipv6Addr::LOCALHOST));
        // Too short to be a net event.
        assert!(matches!(d.decode(&[0u8; 8]), Event::Unknown { .. }));
    }
}
