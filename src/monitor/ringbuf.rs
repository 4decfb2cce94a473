//! The one ring buffer every assay BPF object writes to, its drop counter,
//! the polling thread that drains it, and the decoding of its records.
//!
//! Nothing here knows which program produced a record: the loader of each
//! object makes it reuse [`SharedMaps`] (between open and load), and records
//! are decoded by the kind in their header (`struct event_hdr`, assay.h).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::Sender;
use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType, OpenMapMut, RingBufferBuilder};

use super::compile::{NetPlan, action_code};
use super::context::Identity;
use super::events::{
    Event, FileEvent, FileOp, Guard, MatchKind, NetEvent, NetHook, TamperEvent, now_ns,
};
use super::fileguard_skel::types as ft;
use super::netguard::{LoadError, NewPins, bpf};
use super::netguard_skel::types;
use crate::policy::model::{Action, Rule};
use crate::severity::Severity;

/// Values of `enum assay_event_kind`, read from the skeleton (assay.h is the
/// one definition).
pub const EV_NET_CONNECT: u32 = types::assay_event_kind::ASSAY_EV_NET_CONNECT.0;
pub const EV_NET_SENDMSG: u32 = types::assay_event_kind::ASSAY_EV_NET_SENDMSG.0;
pub const EV_FILE_OPEN: u32 = types::assay_event_kind::ASSAY_EV_FILE_OPEN.0;
pub const EV_TAMPER: u32 = types::assay_event_kind::ASSAY_EV_TAMPER.0;
pub const EV_FILE_LINK: u32 = types::assay_event_kind::ASSAY_EV_FILE_LINK.0;
pub const EV_FILE_RENAME: u32 = types::assay_event_kind::ASSAY_EV_FILE_RENAME.0;

/// Records per batch handed to the consumer, and batches in flight.
const BATCH_RECORDS: usize = 1024;
pub(super) const CHANNEL_BATCHES: usize = 64;
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

fn create_opts() -> libbpf_rs::libbpf_sys::bpf_map_create_opts {
    libbpf_rs::libbpf_sys::bpf_map_create_opts {
        sz: size_of::<libbpf_rs::libbpf_sys::bpf_map_create_opts>() as _,
        ..Default::default()
    }
}

/// The ring buffer (`events`) and per-CPU drop counter (`dropped`) every
/// assay BPF object shares. Created once; each object reuses their fds (see
/// [`SharedMaps::reuse`]). Cloning shares the same maps.
#[derive(Clone)]
pub struct SharedMaps {
    pub events: Arc<MapHandle>,
    pub dropped: Arc<MapHandle>,
}

impl SharedMaps {
    pub fn create(ringbuf_bytes: u32) -> Result<SharedMaps, LoadError> {
        if ringbuf_bytes < 4096 || !ringbuf_bytes.is_power_of_two() {
            return Err(LoadError::RingbufSize(ringbuf_bytes));
        }
        let opts = create_opts();
        let events =
            MapHandle::create(MapType::RingBuf, Some("events"), 0, 0, ringbuf_bytes, &opts)
                .map_err(|source| LoadError::SharedMap {
                    map: "events",
                    source,
                })?;
        let dropped = MapHandle::create(MapType::PercpuArray, Some("dropped"), 4, 8, 1, &opts)
            .map_err(|source| LoadError::SharedMap {
                map: "dropped",
                source,
            })?;
        Ok(SharedMaps {
            events: Arc::new(events),
            dropped: Arc::new(dropped),
        })
    }

    /// Make an opened (not yet loaded) object use the shared maps.
    pub fn reuse(
        &self,
        events: &mut OpenMapMut<'_>,
        dropped: &mut OpenMapMut<'_>,
    ) -> Result<(), LoadError> {
        events
            .reuse_fd(self.events.as_fd())
            .map_err(bpf("reusing the shared ring buffer"))?;
        dropped
            .reuse_fd(self.dropped.as_fd())
            .map_err(bpf("reusing the shared drop counter"))?;
        Ok(())
    }

    /// Pin the ring buffer and the drop counter under `dir` next to the
    /// links, plus a counter of the drops already reported (written by
    /// [`record_reported`] when the monitor stops), so that `--unpin` can
    /// report what happened while nobody was reading.
    pub fn pin(&self, dir: &Path, pins: &mut NewPins) -> Result<MapHandle, LoadError> {
        let mut reported =
            MapHandle::create(MapType::Array, Some("reported"), 4, 8, 1, &create_opts()).map_err(
                |source| LoadError::SharedMap {
                    map: "reported",
                    source,
                },
            )?;
        let [events, dropped, rep] = MAP_PINS.map(|n| dir.join(n));
        // The Arc'd handles are shared with the pipeline; pinning needs
        // &mut, so pin duplicates of the same maps.
        for (map, path) in [(&self.events, events), (&self.dropped, dropped)] {
            let mut dup =
                MapHandle::try_from(map.as_ref()).map_err(bpf("duplicating a shared map"))?;
            dup.pin(&path)
                .map_err(bpf(format!("pinning {}", path.display())))?;
            pins.made(path);
        }
        reported
            .pin(&rep)
            .map_err(bpf(format!("pinning {}", rep.display())))?;
        pins.made(rep);
        Ok(reported)
    }

    /// Total failed ring buffer reservations, summed over CPUs.
    pub fn dropped_total(&self) -> Result<u64, LoadError> {
        dropped_total(&self.dropped)
    }
}

/// Names of the map pins next to the link pins: ring buffer, drop counter,
/// drops already reported.
pub const MAP_PINS: [&str; 3] = ["events", "dropped", "drops_reported"];

pub fn dropped_total(map: &MapHandle) -> Result<u64, LoadError> {
    let per_cpu = map
        .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
        .map_err(bpf("reading the drop counter"))?
        .unwrap_or_default();
    Ok(per_cpu
        .iter()
        .map(|v| {
            v.get(..8)
                .map_or(0, |b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
        })
        .sum())
}

/// Writes how many drops the monitor reported into the pinned counter.
pub fn record_reported(reported: &MapHandle, total: u64) -> Result<(), LoadError> {
    reported
        .update(&0u32.to_ne_bytes(), &total.to_ne_bytes(), MapFlags::ANY)
        .map_err(bpf("recording the reported drops"))
}

/// The pinned maps of `dir`: (ring buffer, drop counter, drops already
/// reported), or None when `dir` has no pinned events (pinned by an older
/// assay).
pub fn pinned_maps(dir: &Path) -> Result<Option<(SharedMaps, u64)>, LoadError> {
    let [events, dropped, reported] = MAP_PINS.map(|n| dir.join(n));
    if !events.exists() {
        return Ok(None);
    }
    let open =
        |p: &Path| MapHandle::from_pinned_path(p).map_err(bpf(format!("opening {}", p.display())));
    let rep = open(&reported)?
        .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
        .map_err(bpf("reading the reported drops"))?
        .and_then(|v| {
            v.get(..8)
                .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
        })
        .unwrap_or(0);
    let shared = SharedMaps {
        events: Arc::new(open(&events)?),
        dropped: Arc::new(open(&dropped)?),
    };
    Ok(Some((shared, rep)))
}

/// Raw records, as copied out of the ring buffer.
#[derive(Default)]
pub struct Batch {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl Batch {
    pub fn push(&mut self, rec: &[u8]) {
        self.data.extend_from_slice(rec);
        self.ends.push(self.data.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn records(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let r = &self.data[start..end];
            start = end;
            r
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("ring buffer: {0}")]
    Setup(#[source] libbpf_rs::Error),
    #[error("ring buffer poll: {0}")]
    Poll(#[source] io::Error),
    #[error("the event consumer stopped")]
    ConsumerGone,
}

/// The polling thread's body: drains `events` into batches on `tx` until
/// `stop` is set, then drains once more, so everything produced before the
/// programs were detached is read. A full channel blocks it (back-pressure
/// to the kernel, which counts what it cannot reserve).
pub fn poll(events: &MapHandle, tx: &Sender<Batch>, stop: &AtomicBool) -> Result<(), PollError> {
    let pending = std::rc::Rc::new(std::cell::RefCell::new(Batch::default()));
    let full = std::rc::Rc::new(std::cell::Cell::new(false));
    let (p, f) = (pending.clone(), full.clone());
    let mut b = RingBufferBuilder::new();
    b.add(events, move |rec: &[u8]| {
        let mut batch = p.borrow_mut();
        batch.push(rec);
        if batch.len() >= BATCH_RECORDS {
            // Stop this round of consumption so the batch can be sent.
            f.set(true);
            return -libc::EAGAIN;
        }
        0
    })
    .map_err(PollError::Setup)?;
    let rb = b.build().map_err(PollError::Setup)?;
    let send = || -> Result<(), PollError> {
        let batch = std::mem::take(&mut *pending.borrow_mut());
        if batch.is_empty() {
            return Ok(());
        }
        tx.send(batch).map_err(|_| PollError::ConsumerGone)
    };
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let r = if full.replace(false) {
            rb.consume_raw()
        } else {
            rb.poll_raw(POLL_TIMEOUT)
        };
        if r < 0 && r != -libc::EINTR && r != -libc::EAGAIN {
            return Err(PollError::Poll(io::Error::from_raw_os_error(-r)));
        }
        send()?;
        if stopping && !full.get() {
            loop {
                let r = rb.consume_raw();
                send()?;
                if !full.replace(false) || r < 0 && r != -libc::EAGAIN {
                    break;
                }
            }
            return Ok(());
        }
    }
}

/// The action of a kernel action code (`enum assay_action` in assay.h).
pub fn action_of(v: u32) -> Option<Action> {
    [
        Action::Log,
        Action::Alert,
        Action::Deny,
        Action::TriggerKill,
    ]
    .into_iter()
    .find(|a| action_code(*a) == v)
}

/// `enum assay_file_match` in assay.h.
pub fn match_kind_of(v: u32) -> Option<MatchKind> {
    use ft::assay_file_match as M;
    Some(match v {
        x if x == M::ASSAY_MATCH_INODE.0 => MatchKind::Inode,
        x if x == M::ASSAY_MATCH_ENTRY.0 => MatchKind::Entry,
        x if x == M::ASSAY_MATCH_SUBTREE.0 => MatchKind::Subtree,
        x if x == M::ASSAY_MATCH_BASENAME.0 => MatchKind::Basename,
        x if x == M::ASSAY_MATCH_DIRNAME.0 => MatchKind::DirName,
        x if x == M::ASSAY_MATCH_PAIR.0 => MatchKind::DirAndBasename,
        x if x == M::ASSAY_MATCH_SUFFIX.0 => MatchKind::Suffix,
        x if x == M::ASSAY_MATCH_PATTERN.0 => MatchKind::Anchored,
        x if x == M::ASSAY_MATCH_UNDECIDED.0 => MatchKind::Undecided,
        _ => return None,
    })
}

/// A `struct file_event` as the kernel wrote it, before the rule index is
/// named with the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub ts_ns: u64,
    pub cgroup_id: u64,
    pub rule_idx: u32,
    pub action: Action,
    pub pid: u32,
    pub tgid: u32,
    pub comm: String,
    pub ident: Identity,
    /// Kernel device number (`major << 20 | minor`) and inode of the file.
    pub dev: u32,
    pub ino: u64,
    pub matched: MatchKind,
    pub op: FileOp,
    /// Basename of the file.
    pub name: String,
    /// Full path as the opener reached it (`bpf_d_path`), when the kernel
    /// provides it and it fits in the event.
    pub path: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("file event of {0} bytes is shorter than struct file_event")]
    Short(usize),
    #[error("event kind {0} is not a file event")]
    Kind(u32),
    #[error("unknown action {0} in a file event")]
    Action(u32),
    #[error("unknown match kind {0} in a file event")]
    Match(u32),
}

fn c_string(chars: &[i8]) -> String {
    let b: Vec<u8> = chars
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&b).into_owned()
}

/// The sender's identity in an event header (each skeleton has its own
/// copy of `struct event_hdr`).
macro_rules! identity_of {
    ($h:expr) => {
        Identity {
            uid: $h.uid,
            gid: $h.gid,
            ppid: $h.ppid,
            start_ns: $h.start_ns,
            parent_start_ns: $h.parent_start_ns,
        }
    };
}

fn identity(h: &types::event_hdr) -> Identity {
    identity_of!(h)
}

/// Decodes one record written by the file programs (open, link, rename).
pub fn decode_file(data: &[u8]) -> Result<FileRecord, DecodeError> {
    let mut ev = ft::file_event::default();
    plain::copy_from_bytes(&mut ev, data).map_err(|_| DecodeError::Short(data.len()))?;
    let op = match ev.hdr.kind {
        EV_FILE_OPEN => FileOp::Open,
        EV_FILE_LINK => FileOp::Link,
        EV_FILE_RENAME => FileOp::Rename,
        k => return Err(DecodeError::Kind(k)),
    };
    Ok(FileRecord {
        ts_ns: ev.hdr.ts_ns,
        cgroup_id: ev.hdr.cgroup_id,
        rule_idx: ev.hdr.rule_idx,
        action: action_of(ev.hdr.action).ok_or(DecodeError::Action(ev.hdr.action))?,
        pid: ev.hdr.pid,
        tgid: ev.hdr.tgid,
        comm: c_string(&ev.hdr.comm),
        ident: identity_of!(ev.hdr),
        dev: ev.dev,
        ino: ev.ino,
        matched: match_kind_of(ev.r#match).ok_or(DecodeError::Match(ev.r#match))?,
        op,
        name: c_string(&ev.name),
        path: (ev.path_len > 0).then(|| c_string(&ev.path)),
    })
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

/// `enum assay_guard` in assay.h.
pub fn guard_of(v: u32) -> Option<Guard> {
    use types::assay_guard as G;
    Some(match v {
        x if x == G::ASSAY_GUARD_RAW_SOCKET.0 => Guard::RawSocket,
        x if x == G::ASSAY_GUARD_PING_SOCKET.0 => Guard::PingSocket,
        x if x == G::ASSAY_GUARD_BPF.0 => Guard::Bpf,
        x if x == G::ASSAY_GUARD_SIGNAL.0 => Guard::Signal,
        x if x == G::ASSAY_GUARD_PTRACE.0 => Guard::Ptrace,
        x if x == G::ASSAY_GUARD_CGROUP_WRITE.0 => Guard::CgroupWrite,
        x if x == G::ASSAY_GUARD_MOUNT.0 => Guard::Mount,
        x if x == G::ASSAY_GUARD_PACKET_SOCKET.0 => Guard::PacketSocket,
        x if x == G::ASSAY_GUARD_BLOCK_DEVICE.0 => Guard::BlockDevice,
        x if x == G::ASSAY_GUARD_ICMP_OPTIONS.0 => Guard::IcmpOptions,
        _ => return None,
    })
}

fn tamper(hdr: &types::event_hdr, rec: &[u8], time_ns: i128) -> Option<Event> {
    let mut ev = types::tamper_event::default();
    plain::copy_from_bytes(&mut ev, rec).ok()?;
    Some(Event::Tamper(TamperEvent {
        time_ns,
        guard: guard_of(ev.guard)?,
        pid: hdr.pid,
        tgid: hdr.tgid,
        comm: c_string(&hdr.comm),
        cgroup_id: hdr.cgroup_id,
        ident: identity(hdr),
        ctx: Default::default(),
        args: ev.args,
    }))
}

/// Decodes raw records into events named with the policy's rules.
pub struct Decoder {
    /// By net rule bit: (id, action, severity, policy index).
    slots: Vec<(Arc<str>, Action, Severity, usize)>,
    /// By policy index: (id, severity).
    rules: Vec<(Arc<str>, Severity)>,
    offset_ns: i128,
}

impl Decoder {
    pub fn new(plan: &NetPlan, rules: &[Rule]) -> Decoder {
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
        let decoded = match hdr.kind {
            EV_NET_CONNECT | EV_NET_SENDMSG => self.net(&hdr, rec, time_ns),
            EV_FILE_OPEN | EV_FILE_LINK | EV_FILE_RENAME => self.file(rec, time_ns),
            EV_TAMPER => tamper(&hdr, rec, time_ns),
            _ => None,
        };
        decoded.unwrap_or(unknown)
    }

    fn net(&self, hdr: &types::event_hdr, rec: &[u8], time_ns: i128) -> Option<Event> {
        let mut ev = types::net_event::default();
        plain::copy_from_bytes(&mut ev, rec).ok()?;
        let (rule, action, severity, index) = self.slots.get(hdr.rule_idx as usize)?;
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
        Some(Event::Net(NetEvent {
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
            comm: c_string(&hdr.comm),
            cgroup_id: hdr.cgroup_id,
            ident: identity(hdr),
            ctx: Default::default(),
            addr,
            port: ev.port,
            protocol: ev.protocol,
        }))
    }

    fn file(&self, rec: &[u8], time_ns: i128) -> Option<Event> {
        let f = decode_file(rec).ok()?;
        let (rule, severity) = self.rules.get(f.rule_idx as usize)?;
        Some(Event::File(FileEvent {
            time_ns,
            rule: rule.clone(),
            rule_index: f.rule_idx as usize,
            severity: *severity,
            action: f.action,
            pid: f.pid,
            tgid: f.tgid,
            comm: f.comm,
            cgroup_id: f.cgroup_id,
            ident: f.ident,
            ctx: Default::default(),
            dev: f.dev,
            ino: f.ino,
            matched: f.matched,
            op: f.op,
            name: f.name,
            path: f.path,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::compile::net_plan;
    use crate::policy::model::{
        FileMatch, GlobForm, Loopback, Matcher, NetMatch, PathGlob, Protocol,
    };

    fn bytes<T: plain::Plain>(v: &T) -> &[u8] {
        // SAFETY: generated plain C struct.
        unsafe { plain::as_bytes(v) }
    }

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
        ev.hdr.action = action_code(Action::TriggerKill);
        ev.hdr.tgid = 77;
        ev.ino = 99;
        ev.r#match = ft::assay_file_match::ASSAY_MATCH_INODE.0;
        for (d, s) in ev.name.iter_mut().zip(b"shadow") {
            *d = *s as i8;
        }
        let Event::File(f) = d.decode(bytes(&ev)) else {
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
        let e = d.decode(bytes(&ev));
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
        ev.hdr.action = action_code(Action::Deny);
        ev.matched = 0b11;
        ev.family = libc::AF_INET6 as u16;
        ev.addr = std::net::Ipv6Addr::LOCALHOST.octets();
        ev.port = 53;
        ev.protocol = 17;
        let Event::Net(n) = d.decode(bytes(&ev)) else {
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

    #[test]
    fn decode_round_trip_and_errors() {
        let mut ev = ft::file_event::default();
        ev.hdr.kind = EV_FILE_OPEN;
        ev.hdr.action = action_code(Action::Deny);
        ev.hdr.rule_idx = 4;
        ev.hdr.tgid = 77;
        ev.r#match = ft::assay_file_match::ASSAY_MATCH_SUBTREE.0;
        ev.ino = 9;
        ev.dev = 1 << 20;
        for (d, s) in ev.name.iter_mut().zip(b"id_ed25519") {
            *d = *s as i8;
        }
        for (d, s) in ev.hdr.comm.iter_mut().zip(b"cat") {
            *d = *s as i8;
        }
        let e = decode_file(bytes(&ev)).unwrap();
        assert_eq!(e.action, Action::Deny);
        assert_eq!(e.matched, MatchKind::Subtree);
        assert_eq!(e.name, "id_ed25519");
        assert_eq!(e.comm, "cat");
        assert_eq!((e.tgid, e.rule_idx, e.ino), (77, 4, 9));
        assert_eq!(decode_file(&bytes(&ev)[..10]), Err(DecodeError::Short(10)));
        assert_eq!(e.op, FileOp::Open);
        for (kind, op) in [
            (EV_FILE_LINK, FileOp::Link),
            (EV_FILE_RENAME, FileOp::Rename),
        ] {
            ev.hdr.kind = kind;
            assert_eq!(decode_file(bytes(&ev)).unwrap().op, op);
        }
        ev.r#match = ft::assay_file_match::ASSAY_MATCH_UNDECIDED.0;
        assert_eq!(
            decode_file(bytes(&ev)).unwrap().matched,
            MatchKind::Undecided
        );
        ev.hdr.kind = EV_NET_CONNECT;
        assert_eq!(
            decode_file(bytes(&ev)),
            Err(DecodeError::Kind(EV_NET_CONNECT))
        );
    }

    #[test]
    fn every_kernel_action_and_match_kind_has_a_name() {
        for a in [
            Action::Log,
            Action::Alert,
            Action::Deny,
            Action::TriggerKill,
        ] {
            assert_eq!(action_of(action_code(a)), Some(a));
        }
        let kinds = ft::assay_limit::ASSAY_MATCH_KINDS.0;
        for v in 1..kinds {
            assert!(match_kind_of(v).is_some(), "match kind {v}");
        }
        assert_eq!(match_kind_of(kinds), None);
        assert_eq!(match_kind_of(0), None);
    }

    #[test]
    fn tamper_events_name_the_guard() {
        let r = rules();
        let d = Decoder::new(&net_plan(&r).unwrap(), &r);
        let mut ev = types::tamper_event::default();
        ev.hdr.kind = EV_TAMPER;
        ev.hdr.tgid = 5;
        ev.guard = types::assay_guard::ASSAY_GUARD_RAW_SOCKET.0;
        ev.args = [libc::AF_INET as u64, libc::SOCK_RAW as u64, 17];
        let Event::Tamper(t) = d.decode(bytes(&ev)) else {
            panic!("not a tamper event");
        };
        assert_eq!((t.guard, t.tgid, t.args[2]), (Guard::RawSocket, 5, 17));
        for v in 1..=9 {
            assert!(guard_of(v).is_some(), "guard {v}");
        }
        ev.guard = 99;
        assert!(matches!(d.decode(bytes(&ev)), Event::Unknown { .. }));
    }

    #[test]
    fn batches_keep_record_boundaries() {
        let mut b = Batch::default();
        b.push(b"ab");
        b.push(b"");
        b.push(b"cde");
        assert_eq!(b.len(), 3);
        assert_eq!(
            b.records().collect::<Vec<_>>(),
            [&b"ab"[..], &b""[..], &b"cde"[..]]
        );
    }
}
