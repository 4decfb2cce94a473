//! The event pipeline, one named thread per concern:
//! - `assay-ringbuf` drains the shared ring buffer into batches on a bounded
//!   channel (`ringbuf::poll`);
//! - `assay-events` decodes, counts, writes to the sink, reads the drop
//!   counter, and hands `trigger_kill` decisions to the kill worker;
//! - `assay-kill` runs the injected kill switch (capture, grace period: up to
//!   minutes) off the event thread, fed by a bounded channel; its answers flow
//!   back into the event stream as `kill` events.
//!
//! Back-pressure is deliberate: when the consumer falls behind, the channel
//! fills, the poller blocks, the ring buffer fills and the kernel counts the
//! events it could not reserve. Nothing grows without bound, nothing is lost
//! silently, and a slow kill never stops decoding.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, select, unbounded};

use super::context::Resolver;
use super::events::{
    Event, FileOp, KillDone, KillEvent, KillOrder, KillUnit, Killer, NetHook, RuleCount, Sink,
    StartEvent, Summary, now_ns,
};
use super::metrics::Metrics;
use super::ringbuf::{self, Batch, CHANNEL_BATCHES, Decoder, PollError, SharedMaps};
use crate::policy::model::{Action, Rule};

const DROPS_EVERY: Duration = Duration::from_secs(1);
/// Kills waiting for the worker. Each offending process is ordered killed
/// once, so this only fills when that many distinct processes offend during
/// one kill; the consumer then waits rather than forget a kill.
const KILL_QUEUE: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Poll(#[from] PollError),
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
}

/// What a `trigger_kill` decision stops, and who stops it.
pub struct KillPlan {
    pub killer: Killer,
    /// Wrapper mode: the leaf cgroup; None: the offender's tree.
    pub cgroup: Option<std::path::PathBuf>,
}

/// What a monitor's pipeline adds to the kernel's records: the process
/// context of each event, and the `start` and `stop` events of the run.
/// Default: neither (draining what pinned enforcement left).
#[derive(Default)]
pub struct Extras {
    pub context: Option<Resolver>,
    /// Emitted first; a `stop` event with the summary is emitted last.
    pub start: Option<StartEvent>,
    /// Counted as events are (for `--metrics`).
    pub metrics: Option<Arc<Metrics>>,
    /// What the tool-call gate counted, put here before the pipeline stops
    /// (the gate's events reach the sink directly), for the summary.
    pub gate: GateTally,
}

/// The gate's counts, handed to the consumer for the `stop` event.
pub type GateTally = Arc<std::sync::Mutex<Option<crate::gate::run::Counts>>>;

/// The running pipeline. [`Pipeline::stop`] drains everything still in the
/// ring buffer, waits for pending kills, reads the final drop count and
/// returns the summary.
pub struct Pipeline {
    stop: Arc<AtomicBool>,
    poller: Option<JoinHandle<Result<(), PollError>>>,
    consumer: Option<JoinHandle<Summary>>,
}

fn empty_summary(rules: &[Rule], drops_reported: u64) -> Summary {
    Summary {
        // Every rule, in policy order (indexed by the events' rule_index).
        by_rule: rules
            .iter()
            .map(|r| RuleCount {
                rule: r.id.clone(),
                action: r.action,
                severity: r.severity,
                events: 0,
            })
            .collect(),
        // Drops reported before (by the monitor that pinned these maps) are
        // not reported again.
        dropped: drops_reported,
        ..Summary::default()
    }
}

impl Pipeline {
    pub fn start(
        shared: &SharedMaps,
        decoder: Decoder,
        rules: &[Rule],
        sink: Box<dyn Sink>,
        kill: Option<KillPlan>,
        drops_reported: u64,
        extras: Extras,
    ) -> io::Result<Pipeline> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = bounded::<Batch>(CHANNEL_BATCHES);
        let dropped = shared.dropped.clone();
        let drops = move || ringbuf::dropped_total(&dropped).ok();
        let consumer = Consumer::spawn(
            rx,
            decoder,
            Box::new(drops),
            sink,
            kill,
            empty_summary(rules, drops_reported),
            extras,
        )?;
        let (events, st) = (shared.events.clone(), stop.clone());
        let poller = std::thread::Builder::new()
            .name("assay-ringbuf".into())
            .spawn(move || ringbuf::poll(&events, &tx, &st))?;
        Ok(Pipeline {
            stop,
            poller: Some(poller),
            consumer: Some(consumer),
        })
    }

    pub fn stop(mut self) -> Result<Summary, PipelineError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<Summary, PipelineError> {
        self.stop.store(true, Ordering::Relaxed);
        let polled = match self.poller.take() {
            Some(h) => h
                .join()
                .map_err(|_| PipelineError::Panicked("ring buffer"))?,
            None => Ok(()),
        };
        let summary = self
            .consumer
            .take()
            .ok_or(PipelineError::Panicked("event consumer"))?
            .join()
            .map_err(|_| PipelineError::Panicked("event consumer"))?;
        polled?;
        Ok(summary)
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if self.consumer.is_some() {
            let _ = self.finish();
        }
    }
}

/// Reads the kernel's drop counter (None: unreadable this time).
type DropCounter = Box<dyn FnMut() -> Option<u64> + Send>;

/// The consumer's state: owned by the `assay-events` thread.
struct Consumer {
    decoder: Decoder,
    drops: DropCounter,
    sink: Box<dyn Sink>,
    summary: Summary,
    /// Orders for the kill worker, and the unit it stops.
    orders: Option<(Sender<KillOrder>, Option<std::path::PathBuf>)>,
    /// Offenders already ordered killed.
    killed: HashSet<u32>,
    context: Option<Resolver>,
    lifecycle: bool,
    metrics: Option<Arc<Metrics>>,
    gate: GateTally,
    /// Time of the event that ordered each pending kill, by offender.
    ordered_at: HashMap<u32, i128>,
}

impl Consumer {
    /// Starts the consumer (and, with `kill`, the kill worker).
    fn spawn(
        batches: Receiver<Batch>,
        decoder: Decoder,
        drops: DropCounter,
        sink: Box<dyn Sink>,
        kill: Option<KillPlan>,
        summary: Summary,
        extras: Extras,
    ) -> io::Result<JoinHandle<Summary>> {
        let (orders, done) = match kill {
            Some(k) => {
                let (order_tx, order_rx) = bounded(KILL_QUEUE);
                let (done_tx, done_rx) = unbounded();
                spawn_kill_worker(k.killer, order_rx, done_tx)?;
                (Some((order_tx, k.cgroup)), done_rx)
            }
            None => (None, crossbeam_channel::never()),
        };
        let c = Consumer {
            decoder,
            drops,
            sink,
            summary,
            orders,
            killed: HashSet::new(),
            context: extras.context,
            lifecycle: extras.start.is_some(),
            metrics: extras.metrics,
            gate: extras.gate,
            ordered_at: HashMap::new(),
        };
        let start = extras.start;
        std::thread::Builder::new()
            .name("assay-events".into())
            .spawn(move || {
                let mut c = c;
                if let Some(s) = start {
                    c.emit(&Event::Start(Box::new(s)));
                }
                c.run(&batches, &done)
            })
    }

    fn run(mut self, batches: &Receiver<Batch>, done: &Receiver<KillEvent>) -> Summary {
        let mut last_drops_check = Instant::now();
        loop {
            select! {
                recv(batches) -> b => match b {
                    Ok(b) => self.batch(&b),
                    Err(_) => break,
                },
                recv(done) -> k => if let Ok(k) = k {
                    self.killed_one(k);
                },
                default(DROPS_EVERY) => {}
            }
            if last_drops_check.elapsed() >= DROPS_EVERY {
                self.check_drops();
                last_drops_check = Instant::now();
            }
            if batches.is_empty() {
                // Idle for now: make what was written visible.
                self.flush();
            }
        }
        // No more events, so no more orders: the worker finishes the kills
        // it has, and each one's answer is reported. (Without a worker,
        // `done` never disconnects: nothing to wait for.)
        if self.orders.take().is_some() {
            for k in done.iter() {
                self.killed_one(k);
            }
        }
        self.check_drops();
        self.summary.gate = *self.gate.lock().unwrap_or_else(|e| e.into_inner());
        if self.lifecycle {
            self.emit(&Event::Stop(Box::new(self.summary.clone())));
        }
        self.flush();
        self.summary
    }

    fn batch(&mut self, batch: &Batch) {
        for rec in batch.records() {
            self.summary.delivered += 1;
            let mut ev = self.decoder.decode(rec);
            if let Some(r) = &mut self.context {
                r.enrich(&mut ev);
            }
            let order = self.count(&ev);
            self.emit(&ev);
            if let Some(o) = order {
                self.ordered_at.insert(o.1, event_time(&ev));
                self.order_kill(o);
            }
        }
        if let Some(m) = &self.metrics {
            m.delivered
                .fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Counts the event; a `trigger_kill` decision becomes a kill order.
    fn count(&mut self, ev: &Event) -> Option<(Arc<str>, u32, String)> {
        let (index, action, rule, tgid) = match ev {
            Event::Net(n) => (n.rule_index, n.action, &n.rule, n.tgid),
            Event::File(f) => (f.rule_index, f.action, &f.rule, f.tgid),
            Event::Unknown { .. } => {
                self.summary.unknown += 1;
                if let Some(m) = &self.metrics {
                    m.unknown.fetch_add(1, Ordering::Relaxed);
                }
                return None;
            }
            Event::Tamper(_) => {
                self.summary.tamper += 1;
                if let Some(m) = &self.metrics {
                    m.tamper.fetch_add(1, Ordering::Relaxed);
                }
                return None;
            }
            // Tool calls reach the sink from the gate, not the ring buffer.
            Event::Drops { .. }
            | Event::Kill(_)
            | Event::ToolCall(_)
            | Event::Start(_)
            | Event::Stop(_) => return None,
        };
        if let Some(c) = self.summary.by_rule.get_mut(index) {
            c.events += 1;
        }
        if let Some(m) = &self.metrics {
            m.decision(index);
        }
        (action == Action::TriggerKill).then(|| (rule.clone(), tgid, offense(ev)))
    }

    fn order_kill(&mut self, (rule, offender, detail): (Arc<str>, u32, String)) {
        let Some((tx, cgroup)) = &self.orders else {
            return;
        };
        // One kill per offending process, however many events it produced
        // before it died.
        if !self.killed.insert(offender) {
            return;
        }
        let unit = match cgroup {
            Some(cg) => KillUnit::Cgroup(cg.clone()),
            // The kernel did not name the sender (ICMP before Linux 6.0):
            // there is no process to stop, only the packet was denied.
            None if offender == 0 => {
                return self.killed_one(KillEvent {
                    time_ns: now_ns(),
                    rule,
                    pid: 0,
                    all_gone: false,
                    incident: None,
                    error: Some(
                        "the kernel did not name the sending process (ICMP before Linux 6.0): \
                         denied, not killed"
                            .into(),
                    ),
                });
            }
            None => KillUnit::Tree(offender),
        };
        let order = KillOrder {
            rule,
            offender,
            detail,
            unit,
        };
        if tx.send(order).is_err() {
            // The worker is gone (it panicked): say so rather than pretend.
            self.killed_one(KillEvent {
                time_ns: now_ns(),
                rule: Arc::from("?"),
                pid: offender,
                all_gone: false,
                incident: None,
                error: Some("the kill worker stopped".into()),
            });
        }
    }

    fn killed_one(&mut self, k: KillEvent) {
        self.summary.kills += 1;
        let failed = !k.all_gone || k.error.is_some();
        if failed {
            self.summary.kill_failures += 1;
        }
        if let Some(m) = &self.metrics {
            let latency = self
                .ordered_at
                .remove(&k.pid)
                .and_then(|t| u64::try_from(k.time_ns - t).ok());
            m.kill(!failed, latency);
        }
        self.emit(&Event::Kill(k));
    }

    fn emit(&mut self, ev: &Event) {
        if self.summary.sink_error.is_none() {
            if let Err(e) = self.sink.event(ev) {
                self.summary.sink_error = Some(e.to_string());
            }
        }
    }

    fn flush(&mut self) {
        if self.summary.sink_error.is_none() {
            if let Err(e) = self.sink.flush() {
                self.summary.sink_error = Some(e.to_string());
            }
        }
    }

    /// Report drops the kernel counted since the last check.
    fn check_drops(&mut self) {
        if let Some(total) = (self.drops)() {
            if total > self.summary.dropped {
                let ev = Event::Drops {
                    time_ns: now_ns(),
                    new: total - self.summary.dropped,
                    total,
                };
                self.summary.dropped = total;
                if let Some(m) = &self.metrics {
                    m.dropped.store(total, Ordering::Relaxed);
                }
                self.emit(&ev);
            }
        }
    }
}

/// When the kernel saw the event.
fn event_time(ev: &Event) -> i128 {
    match ev {
        Event::Net(n) => n.time_ns,
        Event::File(f) => f.time_ns,
        _ => now_ns(),
    }
}

/// What the offender did, for the incident record.
fn offense(ev: &Event) -> String {
    match ev {
        Event::Net(n) if n.protocol == libc::IPPROTO_ICMP as u32 => {
            format!("ICMP to {} denied", n.addr)
        }
        Event::Net(n) if n.protocol == libc::IPPROTO_ICMPV6 as u32 => {
            format!("ICMPv6 to {} denied", n.addr)
        }
        Event::Net(n) => format!(
            "{} to {} port {} denied",
            match n.hook {
                NetHook::Connect => "connect",
                NetHook::Sendmsg => "sendmsg",
            },
            n.addr,
            n.port
        ),
        Event::File(f) => format!(
            "{} of {} (dev {} ino {}) denied",
            match f.op {
                FileOp::Open => "open",
                FileOp::Link => "link",
                FileOp::Rename => "rename",
            },
            f.path.as_deref().unwrap_or(&f.name),
            f.dev,
            f.ino
        ),
        Event::Drops { .. }
        | Event::Kill(_)
        | Event::Unknown { .. }
        | Event::Tamper(_)
        | Event::Start(_)
        | Event::Stop(_)
        | Event::ToolCall(_) => String::new(),
    }
}

/// The `assay-kill` thread: runs each order through the kill switch and sends
/// its answer back. Ends when the consumer drops the order channel.
fn spawn_kill_worker(
    mut killer: Killer,
    orders: Receiver<KillOrder>,
    done: Sender<KillEvent>,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("assay-kill".into())
        .spawn(move || {
            for o in orders.iter() {
                let KillDone {
                    all_gone,
                    incident,
                    error,
                } = killer(&o);
                let ev = KillEvent {
                    time_ns: now_ns(),
                    rule: o.rule.clone(),
                    pid: o.offender,
                    all_gone,
                    incident,
                    error,
                };
                if done.send(ev).is_err() {
                    return;
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::compile::action_code;
    use crate::monitor::compile::net_plan;
    use crate::monitor::fileguard_skel::types as ft;
    use crate::monitor::ringbuf::EV_FILE_OPEN;
    use crate::policy::model::{FileMatch, GlobForm, Matcher, PathGlob};
    use crate::severity::Severity;
    use std::sync::Mutex;

    fn file_rule(id: &str, action: Action) -> Rule {
        Rule {
            id: id.into(),
            severity: Severity::High,
            action,
            matcher: Matcher::FileOpen(FileMatch {
                path_globs: vec![PathGlob {
                    text: "/x".into(),
                    form: GlobForm::Exact("/x".into()),
                }],
                except: vec![],
            }),
        }
    }

    fn record(rule_idx: u32, action: Action, tgid: u32) -> Vec<u8> {
        let mut ev = ft::file_event::default();
        ev.hdr.kind = EV_FILE_OPEN;
        ev.hdr.rule_idx = rule_idx;
        ev.hdr.action = action_code(action);
        ev.hdr.tgid = tgid;
        ev.r#match = ft::assay_file_match::ASSAY_MATCH_INODE.0;
        // SAFETY: generated plain C struct.
        unsafe { plain::as_bytes(&ev) }.to_vec()
    }

    type Seen = Arc<Mutex<Vec<Event>>>;

    /// A consumer of `rules`' events with a fixed drop count and `kill`;
    /// its input, its thread, and what its sink saw.
    fn consumer(
        rules: &[Rule],
        drops: u64,
        kill: Option<KillPlan>,
    ) -> (Sender<Batch>, JoinHandle<Summary>, Seen) {
        let decoder = Decoder::new(&net_plan(rules).unwrap(), rules);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = bounded::<Batch>(CHANNEL_BATCHES);
        let handle = Consumer::spawn(
            rx,
            decoder,
            Box::new(move || Some(drops)),
            Box::new(Counting(seen.clone())),
            kill,
            empty_summary(rules, 0),
            Extras::default(),
        )
        .unwrap();
        (tx, handle, seen)
    }

    /// Counts what reaches it, shared with the test.
    struct Counting(Arc<Mutex<Vec<Event>>>);

    impl Sink for Counting {
        fn event(&mut self, ev: &Event) -> io::Result<()> {
            self.0.lock().unwrap().push(ev.clone());
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn events_keep_flowing_while_a_kill_is_in_progress() {
        let rules = vec![
            file_rule("kill", Action::TriggerKill),
            file_rule("log", Action::Log),
        ];
        // A graceful kill that lasts until the test releases it.
        let (started_tx, started_rx) = bounded::<KillOrder>(1);
        let (release_tx, release_rx) = bounded::<()>(1);
        let killer: Killer = Box::new(move |o: &KillOrder| {
            started_tx.send(o.clone()).unwrap();
            release_rx.recv().unwrap();
            KillDone {
                all_gone: true,
                ..KillDone::default()
            }
        });
        let plan = KillPlan {
            killer,
            cgroup: None,
        };
        let (tx, consumer, seen) = consumer(&rules, 0, Some(plan));

        let mut b = Batch::default();
        b.push(&record(0, Action::TriggerKill, 77));
        tx.send(b).unwrap();
        let order = started_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the kill starts");
        assert_eq!((order.offender, &*order.rule), (77, "kill"));
        assert_eq!(order.unit, KillUnit::Tree(77));

        // While the kill waits, 100 full batches of log events arrive (more
        // than the channel holds, so a stalled consumer would block here).
        const N: usize = 100 * 1024;
        for _ in 0..100 {
            let mut b = Batch::default();
            for _ in 0..1024 {
                b.push(&record(1, Action::Log, 78));
            }
            tx.send_timeout(b, Duration::from_secs(10))
                .expect("the consumer keeps reading during the kill");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen.lock().unwrap().len() < N + 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        {
            let seen = seen.lock().unwrap();
            assert_eq!(seen.len(), N + 1, "every event written during the kill");
            assert!(!seen.iter().any(|e| matches!(e, Event::Kill(_))));
        }
        // The same offender offends again: no second kill.
        let mut b = Batch::default();
        b.push(&record(0, Action::TriggerKill, 77));
        tx.send(b).unwrap();

        release_tx.send(()).unwrap();
        drop(tx);
        let summary = consumer.join().unwrap();
        assert_eq!(summary.delivered, N as u64 + 2);
        assert_eq!((summary.kills, summary.kill_failures), (1, 0));
        assert_eq!(summary.by_rule[1].events, N as u64);
        let seen = seen.lock().unwrap();
        let Some(Event::Kill(k)) = seen.last() else {
            panic!("the kill's answer is the last event: {:?}", seen.last());
        };
        assert_eq!((k.pid, k.all_gone), (77, true));
    }

    #[test]
    fn an_unnamed_sender_is_never_killed_as_pid_0() {
        let rules = vec![file_rule("kill", Action::TriggerKill)];
        let killer: Killer = Box::new(|o: &KillOrder| panic!("no kill ordered: {o:?}"));
        let plan = KillPlan {
            killer,
            cgroup: None,
        };
        let (tx, consumer, seen) = consumer(&rules, 0, Some(plan));
        let mut b = Batch::default();
        b.push(&record(0, Action::TriggerKill, 0));
        tx.send(b).unwrap();
        drop(tx);
        let summary = consumer.join().unwrap();
        assert_eq!((summary.kills, summary.kill_failures), (1, 1));
        let seen = seen.lock().unwrap();
        let Some(Event::Kill(k)) = seen.last() else {
            panic!("a kill event says why: {seen:?}");
        };
        assert_eq!((k.pid, k.all_gone), (0, false));
        assert!(
            k.error.as_deref().unwrap().contains("did not name"),
            "{k:?}"
        );
    }

    #[test]
    fn without_a_kill_switch_the_consumer_ends_with_its_input() {
        let rules = vec![file_rule("kill", Action::TriggerKill)];
        let (tx, consumer, _) = consumer(&rules, 0, None);
        let mut b = Batch::default();
        b.push(&record(0, Action::TriggerKill, 5));
        tx.send(b).unwrap();
        drop(tx);
        let summary = consumer.join().unwrap();
        assert_eq!((summary.delivered, summary.kills), (1, 0));
    }

    #[test]
    fn kills_pending_at_stop_are_finished_and_reported() {
        let rules = vec![file_rule("kill", Action::TriggerKill)];
        let killer: Killer = Box::new(|o: &KillOrder| {
            std::thread::sleep(Duration::from_millis(50));
            KillDone {
                all_gone: o.offender != 2,
                error: (o.offender == 2).then(|| "not permitted".into()),
                incident: None,
            }
        });
        let plan = KillPlan {
            killer,
            cgroup: Some("/sys/fs/cgroup/leaf".into()),
        };
        let (tx, consumer, seen) = consumer(&rules, 3, Some(plan));
        let mut b = Batch::default();
        for tgid in 1..=3 {
            b.push(&record(0, Action::TriggerKill, tgid));
        }
        tx.send(b).unwrap();
        // Stop at once: the three kills are still queued or running.
        drop(tx);
        let summary = consumer.join().unwrap();
        assert_eq!((summary.kills, summary.kill_failures), (3, 1));
        assert_eq!(summary.dropped, 3, "final drop count read");
        let seen = seen.lock().unwrap();
        let kills: Vec<u32> = seen
            .iter()
            .filter_map(|e| match e {
                Event::Kill(k) => Some(k.pid),
                _ => None,
            })
            .collect();
        assert_eq!(kills, [1, 2, 3]);
        assert!(matches!(
            seen.last(),
            Some(Event::Drops {
                new: 3,
                total: 3,
                ..
            })
        ));
    }
}
