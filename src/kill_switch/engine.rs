//! The Linux kill sequence: identify, freeze, snapshot, capture, signal, wait.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::capture::{self, ProcessCapture};
use super::cgroup::{self, Frozen};
use super::handle::{self, ProcHandle, SignalError};
use super::incident::{self, IncidentFile};
use super::procfs::{self, Stat};
use super::report::{Fate, KillReport, ProcessReport, SignalRecord, Via, ms};
use super::{KillMode, KillRequest, Target};

/// How long to wait for `cgroup.events` to report a completed freeze.
const FREEZE_WAIT: Duration = Duration::from_millis(50);
/// Re-scans after SIGSTOP until the tree stops growing; a tree that keeps
/// growing past this many rounds is killed as found (the final scan after
/// SIGKILL catches late children too).
const MAX_STOP_ROUNDS: usize = 16;
/// Scans after the kill for processes forked while it happened.
const MAX_SWEEPS: usize = 8;

struct Member {
    stat: Stat,
    handle: Option<Rc<ProcHandle>>,
    report: usize,
}

/// Processes assay must never signal: itself, its ancestors, init.
fn protected(scan: &HashMap<i32, Stat>) -> HashSet<i32> {
    let mut p: HashSet<i32> = [0, 1].into_iter().collect();
    let mut cur = std::process::id() as i32;
    while cur > 1 && p.insert(cur) {
        match scan.get(&cur) {
            Some(s) => cur = s.ppid,
            None => break,
        }
    }
    p
}

/// Targets that must not be acted on at all: not a process id, init, a
/// kernel thread, assay or one of its ancestors, the root cgroup, a cgroup
/// assay runs in, a path that is not a cgroup. Checked before anything is
/// signalled, so a caller can refuse the whole request as a usage error.
pub fn refusals(req: &KillRequest) -> Vec<String> {
    let scan = scan_map();
    let protected = protected(&scan);
    let mut out = Vec::new();
    for t in &req.targets {
        let pids: &[i32] = match t {
            Target::Pid(p) => std::slice::from_ref(p),
            Target::Pids(ps) => ps,
            Target::Cgroup(c) => {
                if let Ok(mount) = cgroup::mount() {
                    match cgroup::resolve(&mount, c) {
                        Ok(dir)
                            if cgroup::contains_pid(&mount, &dir, std::process::id() as i32)
                                || cgroup::procs(&dir, true)
                                    .is_ok_and(|ps| ps.iter().any(|p| protected.contains(p))) =>
                        {
                            out.push(cgroup::CgroupError::ContainsSelf(dir).to_string())
                        }
                        Ok(_) => {}
                        Err(e) => out.push(e.to_string()),
                    }
                }
                continue;
            }
            Target::Server { .. } | Target::Unresolved(_) => continue,
        };
        for &p in pids {
            match scan.get(&p) {
                _ if p <= 0 => out.push(format!("pid {p}: not a process id")),
                _ if p == 1 => out.push("pid 1: refusing to kill init".into()),
                _ if protected.contains(&p) => out.push(format!(
                    "pid {p}: refusing to kill assay itself or one of its ancestors"
                )),
                Some(s) if s.is_kernel_thread() => out.push(format!(
                    "pid {p} ({}): a kernel thread, not a process that can be killed",
                    s.comm
                )),
                _ => {}
            }
        }
    }
    out
}

/// Grow `members` (pid -> start time) with the processes that belong to the
/// tree: children by parent pid, and processes whose session or process group
/// is led by a member. A leader id counts when the leader is still that member
/// or has exited: the kernel never hands out a pid still used as a session or
/// group id, so an absent leader's id cannot belong to an unrelated process.
/// Returns the new (pid, via) pairs in start-time order (parents first).
pub(crate) fn expand(
    scan: &HashMap<i32, Stat>,
    members: &HashMap<i32, u64>,
    protected: &HashSet<i32>,
) -> Vec<(i32, Via)> {
    let mut known: HashMap<i32, u64> = members.clone();
    let mut added = Vec::new();
    let mut procs: Vec<&Stat> = scan.values().collect();
    procs.sort_by_key(|s| (s.start_time, s.pid));
    loop {
        let is_parent = |k: &HashMap<i32, u64>, x: i32| {
            k.get(&x)
                .is_some_and(|st| scan.get(&x).is_some_and(|s| s.start_time == *st))
        };
        let is_leader = |k: &HashMap<i32, u64>, x: i32| {
            x > 0
                && k.get(&x)
                    .is_some_and(|st| scan.get(&x).is_none_or(|s| s.start_time == *st))
        };
        let mut grew = false;
        for s in &procs {
            if known.contains_key(&s.pid)
                || protected.contains(&s.pid)
                || s.is_kernel_thread()
                || s.is_dead()
            {
                continue;
            }
            let via = if is_parent(&known, s.ppid) {
                Via::Child
            } else if is_leader(&known, s.session) {
                Via::Session
            } else if is_leader(&known, s.pgrp) {
                Via::ProcessGroup
            } else {
                continue;
            };
            known.insert(s.pid, s.start_time);
            added.push((s.pid, via));
            grew = true;
        }
        if !grew {
            return added;
        }
    }
}

/// The leaf cgroup `pid` owns, if any: not the root, no child cgroups, and no
/// process in it that is assay, an ancestor of assay, older than the target,
/// or an ancestor of the target. (A login session's scope is not owned by a
/// shell in it; a service's or the monitor's leaf cgroup is owned by its
/// first process.)
fn owned_leaf(
    mount: &Path,
    pid: i32,
    scan: &HashMap<i32, Stat>,
    protected: &HashSet<i32>,
) -> Option<PathBuf> {
    let rel = procfs::cgroup_v2_of(pid)?;
    if rel == "/" {
        return None;
    }
    let dir = mount.join(rel.trim_start_matches('/'));
    if !cgroup::children(&dir).is_empty() {
        return None;
    }
    let procs = cgroup::procs(&dir, false).ok()?;
    let me = scan.get(&pid)?;
    let mut ancestors = HashSet::new();
    let mut cur = me.ppid;
    while cur > 0 && ancestors.insert(cur) {
        cur = scan.get(&cur).map_or(0, |s| s.ppid);
    }
    let foreign = procs.iter().any(|p| {
        protected.contains(p)
            || ancestors.contains(p)
            || scan.get(p).is_some_and(|s| s.start_time < me.start_time)
    });
    (!foreign).then_some(dir)
}

fn scan_map() -> HashMap<i32, Stat> {
    procfs::scan().into_iter().map(|s| (s.pid, s)).collect()
}

fn sig_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGCONT => "SIGCONT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGKILL => "SIGKILL",
        _ => "signal",
    }
}

/// Processes stopped with SIGSTOP; continued (SIGCONT) when dropped, except
/// those that were already stopped by someone else before assay came.
struct Stopped(Vec<Rc<ProcHandle>>);

impl Drop for Stopped {
    fn drop(&mut self) {
        for h in &self.0 {
            let _ = h.signal(libc::SIGCONT);
        }
    }
}

struct Run<'a> {
    req: &'a KillRequest,
    t0: Instant,
    r: KillReport,
    members: Vec<Member>,
    protected: HashSet<i32>,
    frozen: Vec<Frozen>,
    frozen_dirs: Vec<PathBuf>,
    /// Pid -> the targeted cgroup it was found in.
    in_cgroup: HashMap<i32, PathBuf>,
    stopped: Stopped,
    captures: Vec<ProcessCapture>,
}

impl Run<'_> {
    fn at(&self) -> f64 {
        ms(self.t0.elapsed())
    }

    fn member_map(&self) -> HashMap<i32, u64> {
        self.members
            .iter()
            .map(|m| (m.stat.pid, m.stat.start_time))
            .collect()
    }

    /// Add a process as a member: pin it and give it a report row.
    fn add(&mut self, stat: Stat, via: Via) {
        if self
            .members
            .iter()
            .any(|m| m.stat.pid == stat.pid && m.stat.start_time == stat.start_time)
        {
            return;
        }
        let handle = ProcHandle::open(stat.pid, stat.start_time).map(Rc::new);
        if handle.as_ref().is_some_and(|h| h.has_pidfd()) {
            self.r.method.pidfd = true;
        }
        let gone_now = handle.is_none();
        self.r.processes.push(ProcessReport {
            pid: stat.pid,
            ppid: stat.ppid,
            start_time: stat.start_time,
            comm: stat.comm.clone(),
            via,
            signals: Vec::new(),
            fate: if gone_now { Fate::Gone } else { Fate::Survived },
            gone_after_ms: gone_now.then(|| ms(self.t0.elapsed())),
            message: gone_now.then(|| "had already exited when identified".to_string()),
            capture_file: None,
            capture_error: None,
        });
        self.members.push(Member {
            stat,
            handle,
            report: self.r.processes.len() - 1,
        });
    }

    fn record(&mut self, i: usize, sig: i32, via: &str, result: Result<(), SignalError>) {
        let at = self.at();
        let rep = &mut self.r.processes[self.members[i].report];
        rep.signals.push(SignalRecord {
            signal: sig_name(sig).to_string(),
            via: via.to_string(),
            at_ms: at,
            result: match result {
                Ok(()) => "delivered".to_string(),
                Err(e) => e.to_string(),
            },
        });
    }

    /// Pids whose cgroup is in `dirs` (frozen, or killed with cgroup.kill).
    fn covered_by(&self, dirs: &[PathBuf]) -> HashSet<i32> {
        self.in_cgroup
            .iter()
            .filter(|(_, d)| dirs.contains(d))
            .map(|(p, _)| *p)
            .collect()
    }

    fn frozen_now(&self) -> Vec<PathBuf> {
        self.frozen.iter().map(|f| f.dir().to_path_buf()).collect()
    }

    /// Send `sig` to every live member from index `from` on (parents first),
    /// except the pids in `skip`.
    fn signal_all(&mut self, sig: i32, from: usize, skip: &HashSet<i32>) {
        let mut order: Vec<usize> = (from..self.members.len()).collect();
        order.sort_by_key(|&i| (self.members[i].stat.start_time, self.members[i].stat.pid));
        for i in order {
            let Some(h) = self.members[i].handle.clone() else {
                continue;
            };
            if skip.contains(&h.pid) {
                continue;
            }
            if self.r.processes[self.members[i].report]
                .gone_after_ms
                .is_some()
            {
                continue;
            }
            // As seen by the snapshot: a process someone else had stopped
            // stays stopped when assay thaws the tree.
            let was_stopped = matches!(self.members[i].stat.state, 'T' | 't');
            let res = h.signal(sig);
            let via = if h.has_pidfd() { "pidfd" } else { "kill" };
            self.record(i, sig, via, res);
            if sig == libc::SIGSTOP && res.is_ok() {
                self.r.method.sigstopped += 1;
                if !was_stopped {
                    self.stopped.0.push(h);
                }
            }
        }
    }

    /// Find members not yet known (children, sessions, groups, cgroup
    /// members) and add them. Returns how many were added.
    fn grow(&mut self, scan: Option<HashMap<i32, Stat>>) -> usize {
        // Only the tree search needs the whole process table; cgroup
        // members are read one by one.
        let full = scan.is_some() || self.req.kill_children;
        let scan = match scan {
            Some(s) => s,
            None if full => scan_map(),
            None => HashMap::new(),
        };
        let before = self.members.len();
        for dir in self.frozen_dirs.clone() {
            match cgroup::procs(&dir, true) {
                Ok(pids) => {
                    for p in pids {
                        self.in_cgroup.insert(p, dir.clone());
                        if self.protected.contains(&p) {
                            continue;
                        }
                        let st = if full {
                            scan.get(&p).cloned()
                        } else {
                            procfs::read_stat(p)
                        };
                        if let Some(s) = st {
                            self.add(s, Via::Cgroup);
                        }
                    }
                }
                Err(e) => self.r.errors.push(e.to_string()),
            }
        }
        if self.req.kill_children {
            let known = self.member_map();
            for (pid, via) in expand(&scan, &known, &self.protected) {
                self.add(scan[&pid].clone(), via);
            }
        }
        self.members.len() - before
    }

    /// Freeze the cgroups (again) and stop everything else, top-down, until
    /// the tree stops growing.
    fn freeze_all(&mut self) {
        self.freeze_cgroups(" (a task in uninterruptible sleep?)");
        let mut from = 0;
        for _ in 0..MAX_STOP_ROUNDS {
            let n = self.members.len();
            let skip = self.covered_by(&self.frozen_now());
            self.signal_all(libc::SIGSTOP, from, &skip);
            from = n;
            if self.grow(None) == 0 {
                return;
            }
        }
        let skip = self.covered_by(&self.frozen_now());
        self.signal_all(libc::SIGSTOP, from, &skip);
        self.r.notes.push(format!(
            "the tree was still growing after {MAX_STOP_ROUNDS} stop rounds"
        ));
    }

    /// Undo freezing: thaw the cgroups, SIGCONT what was stopped.
    fn thaw(&mut self) {
        self.frozen.clear();
        drop(std::mem::replace(&mut self.stopped, Stopped(Vec::new())));
    }

    fn kill_now(&mut self) {
        let anything =
            !self.frozen_dirs.is_empty() || self.members.iter().any(|m| m.handle.is_some());
        if anything && self.r.timings.first_signal_ms.is_none() {
            self.r.timings.first_signal_ms = Some(self.at());
        }
        let mut killed = Vec::new();
        for dir in self.frozen_dirs.clone() {
            match cgroup::kill(&dir) {
                Ok(()) => {
                    let at = self.at();
                    for m in &self.members {
                        let live = m.handle.is_some()
                            && self.r.processes[m.report].gone_after_ms.is_none();
                        if live && self.in_cgroup.get(&m.stat.pid) == Some(&dir) {
                            self.r.processes[m.report].signals.push(SignalRecord {
                                signal: "SIGKILL".into(),
                                via: "cgroup.kill".into(),
                                at_ms: at,
                                result: "delivered".into(),
                            });
                        }
                    }
                    if !self.r.method.cgroup_kill.contains(&dir) {
                        self.r.method.cgroup_kill.push(dir.clone());
                    }
                    killed.push(dir);
                }
                Err(e) => self
                    .r
                    .notes
                    .push(format!("cgroup.kill failed, signalling each process: {e}")),
            }
        }
        // Everything not covered by a successful cgroup.kill; a process killed
        // by both simply reports `gone` for the second signal.
        let skip = self.covered_by(&killed);
        self.signal_all(libc::SIGKILL, 0, &skip);
    }

    fn wait(&mut self, deadline: Instant) {
        // Processes assay may not signal will not exit because of it: waiting
        // for them would only delay the report.
        let idx: Vec<usize> = (0..self.members.len())
            .filter(|&i| {
                let rep = &self.r.processes[self.members[i].report];
                let denied = rep.signals.iter().any(|s| s.result == "not_permitted")
                    && !rep.signals.iter().any(|s| {
                        s.result == "delivered" && (s.signal == "SIGTERM" || s.signal == "SIGKILL")
                    });
                self.members[i].handle.is_some() && rep.gone_after_ms.is_none() && !denied
            })
            .collect();
        let handles: Vec<Rc<ProcHandle>> = idx
            .iter()
            .map(|&i| self.members[i].handle.clone().unwrap())
            .collect();
        let refs: Vec<&ProcHandle> = handles.iter().map(|h| h.as_ref()).collect();
        let t0 = self.t0;
        let mut gone = Vec::new();
        handle::wait_all(&refs, deadline, |k| gone.push((k, ms(t0.elapsed()))));
        for (k, at) in gone {
            let rep = self.members[idx[k]].report;
            self.r.processes[rep].gone_after_ms = Some(at);
            self.r.processes[rep].fate = Fate::Gone;
        }
    }

    /// Capture members from index `from` on that are still alive, within the
    /// request's budget. Failures are recorded per process.
    fn capture_from(&mut self, from: usize) {
        let Some(opts) = self.req.capture.clone() else {
            return;
        };
        let tc = Instant::now();
        let live: Vec<(i32, u64)> = self.members[from..]
            .iter()
            .filter(|m| m.handle.is_some() && self.r.processes[m.report].gone_after_ms.is_none())
            .map(|m| (m.stat.pid, m.stat.start_time))
            .collect();
        if live.is_empty() {
            return;
        }
        for (pid, res) in capture::capture_all(&live, opts.redact, opts.budget) {
            let Some(m) = self.members[from..].iter().find(|m| m.stat.pid == pid) else {
                continue;
            };
            let rep = &mut self.r.processes[m.report];
            match res {
                Ok(c) => {
                    rep.capture_file = Some(format!("processes/{pid}.json"));
                    if !c.errors.is_empty() {
                        rep.capture_error = Some(c.errors.join("; "));
                    }
                    self.captures.push(c);
                }
                Err(e) => rep.capture_error = Some(e.to_string()),
            }
        }
        self.r.timings.capture_ms += ms(tc.elapsed());
    }

    fn all_pinned_gone(&self) -> bool {
        self.members
            .iter()
            .all(|m| self.r.processes[m.report].gone_after_ms.is_some())
    }

    /// Phase 1: turn the request's targets into cgroups to freeze (in
    /// `frozen_dirs`) and seed processes, recording every target that is
    /// refused or cannot be found. Returns the seeds.
    fn resolve_targets(&mut self, scan0: &HashMap<i32, Stat>) -> Vec<Stat> {
        let (pids, cgroups) = self.split_targets();
        let mount = cgroup::mount();
        if !cgroups.is_empty() {
            match &mount {
                Ok(m) => self.resolve_cgroups(m, &cgroups),
                Err(e) => self.r.errors.push(e.to_string()),
            }
        }
        let seeds = self.seed_processes(pids, scan0);
        if self.req.kill_children {
            let owners = match &mount {
                Ok(m) => self.add_owned_leaves(m, &seeds, scan0),
                Err(_) => Vec::new(),
            };
            for s in &seeds {
                // A double-forked daemon is reparented away; only a session,
                // process group or cgroup the target leads still ties it to
                // the target, and this one has none of them.
                if s.pgrp != s.pid && s.session != s.pid && !owners.contains(&s.pid) {
                    self.r.notes.push(format!(
                        "pid {} ({}) leads neither its process group nor its session and has no \
                         cgroup of its own: processes it double-forked cannot be attributed to it \
                         and are not killed",
                        s.pid, s.comm
                    ));
                }
            }
        }
        self.r.method.frozen_cgroups = self.frozen_dirs.clone();
        seeds
    }

    /// The pids and cgroups named by the targets; targets that name nothing
    /// killable are recorded as errors.
    fn split_targets(&mut self) -> (Vec<i32>, Vec<PathBuf>) {
        let req = self.req;
        let mut pids = Vec::new();
        let mut cgroups = Vec::new();
        for t in &req.targets {
            match t {
                Target::Pid(p) => pids.push(*p),
                Target::Pids(ps) => pids.extend(ps.iter().copied()),
                Target::Cgroup(c) => cgroups.push(c.clone()),
                Target::Server { id, pids: ps } if ps.is_empty() => self.r.errors.push(format!(
                    "server {id}: not running (discovery found no process)"
                )),
                Target::Server { pids: ps, .. } => pids.extend(ps.iter().copied()),
                Target::Unresolved(e) => self.r.errors.push(e.clone()),
            }
        }
        if req.targets.is_empty() {
            self.r.errors.push("no target given".into());
        }
        (pids, cgroups)
    }

    /// Resolve the named cgroups to directories to freeze and kill.
    fn resolve_cgroups(&mut self, mount: &Path, cgroups: &[PathBuf]) {
        for c in cgroups {
            match cgroup::resolve(mount, c) {
                // Freezing or cgroup.kill would hit assay or what it
                // runs under (its shell, the monitor, init).
                Ok(dir)
                    if cgroup::contains_pid(mount, &dir, std::process::id() as i32)
                        || cgroup::procs(&dir, true)
                            .is_ok_and(|ps| ps.iter().any(|p| self.protected.contains(p))) =>
                {
                    self.r
                        .errors
                        .push(cgroup::CgroupError::ContainsSelf(dir).to_string())
                }
                Ok(dir) => self.frozen_dirs.push(dir),
                Err(e) => self.r.errors.push(e.to_string()),
            }
        }
    }

    /// The named pids that may be killed, as found by the first scan.
    fn seed_processes(&mut self, pids: Vec<i32>, scan0: &HashMap<i32, Stat>) -> Vec<Stat> {
        let mut seeds = Vec::new();
        for p in pids {
            match scan0.get(&p) {
                _ if p <= 0 => self.r.errors.push(format!("pid {p}: not a process id")),
                _ if p == 1 => self.r.errors.push("pid 1: refusing to kill init".into()),
                _ if self.protected.contains(&p) => self.r.errors.push(format!(
                    "pid {p}: refusing to kill assay itself or one of its ancestors"
                )),
                None => self.r.errors.push(format!("pid {p}: no such process")),
                Some(s) if s.is_kernel_thread() => self.r.errors.push(format!(
                    "pid {p} ({}): a kernel thread, not a process that can be killed",
                    s.comm
                )),
                Some(s) => seeds.push(s.clone()),
            }
        }
        seeds
    }

    /// With the tree, a seed's own leaf cgroup is frozen and killed too.
    /// Returns the seeds that own a leaf.
    fn add_owned_leaves(
        &mut self,
        mount: &Path,
        seeds: &[Stat],
        scan0: &HashMap<i32, Stat>,
    ) -> Vec<i32> {
        let mut owners = Vec::new();
        for s in seeds {
            if let Some(dir) = owned_leaf(mount, s.pid, scan0, &self.protected) {
                owners.push(s.pid);
                if !self.frozen_dirs.contains(&dir) {
                    self.frozen_dirs.push(dir);
                }
            }
        }
        owners
    }

    /// Freezes each target cgroup not frozen yet; a freeze that fails or
    /// does not complete is noted (`slow` says why it may be slow), and the
    /// SIGSTOP rounds cover what it left running.
    fn freeze_cgroups(&mut self, slow: &str) {
        for dir in self.frozen_dirs.clone() {
            if self.frozen.iter().any(|f| f.dir() == dir) {
                continue;
            }
            match Frozen::freeze(&dir, FREEZE_WAIT) {
                Ok(f) => {
                    if !f.complete {
                        self.r.notes.push(format!(
                            "{}: not fully frozen within {} ms{slow}; continuing",
                            dir.display(),
                            FREEZE_WAIT.as_millis()
                        ));
                    }
                    self.frozen.push(f);
                }
                Err(e) => self
                    .r
                    .notes
                    .push(format!("freeze failed, using SIGSTOP: {e}")),
            }
        }
    }

    /// Phase 2: freeze the target cgroups before the snapshot, so it cannot
    /// race with forks. A failed freeze falls back to SIGSTOP.
    fn freeze_targets(&mut self) {
        let tf = Instant::now();
        self.freeze_cgroups("");
        self.r.method.frozen_cgroups = self.frozen_now();
        self.r.timings.freeze_ms = ms(tf.elapsed());
    }

    /// Phase 3: named pids, then the tree; stop what no freeze covers.
    fn snapshot(&mut self, seeds: Vec<Stat>, scan0: HashMap<i32, Stat>) {
        let ts = Instant::now();
        for s in seeds {
            self.add(s, Via::Target);
        }
        // The first scan can serve the first expansion when no cgroup was
        // frozen in between; after a freeze, re-read so the snapshot is the
        // frozen state.
        let first = self.frozen.is_empty().then_some(scan0);
        self.grow(first);
        self.freeze_all();
        self.r.timings.snapshot_ms = ms(ts.elapsed());
    }

    /// Phase 5, graceful: SIGTERM, thaw so handlers run, wait out the grace
    /// period, then kill what is left.
    fn terminate_gracefully(&mut self) {
        if self.members.iter().any(|m| m.handle.is_some()) {
            self.r.timings.first_signal_ms = Some(self.at());
        }
        self.signal_all(libc::SIGTERM, 0, &HashSet::new());
        // Handlers only run once the tree is thawed.
        self.thaw();
        let tg = Instant::now();
        self.wait(tg + self.req.grace);
        self.r.timings.grace_waited_ms = Some(ms(tg.elapsed()));
        // Survivors, and anything started during the grace period (a
        // handler may fork): freeze again, re-scan, capture newcomers,
        // SIGKILL.
        let known = self.members.len();
        self.freeze_all();
        self.capture_from(known);
        self.kill_now();
        self.thaw();
    }

    /// Phase 6, after the first wait: a fork can complete between the last
    /// stop round's scan and the SIGKILL (a signal sent to one process is
    /// not passed to a child it is still forking), so sweep: whatever now
    /// descends from the tree (a re-parented child keeps its dead leader's
    /// session and group) is captured and killed too, until a scan finds
    /// nothing new.
    fn sweep(&mut self) {
        for _ in 0..MAX_SWEEPS {
            let known = self.members.len();
            if self.grow(None) == 0 {
                break;
            }
            self.capture_from(known);
            self.kill_now();
            self.wait(Instant::now() + self.req.wait_timeout);
        }
    }

    /// Settle each member's fate for the report: when all are gone, the
    /// time the last one went; otherwise why each survivor is still there.
    fn settle_fates(&mut self) {
        if self.all_pinned_gone() {
            self.r.timings.all_gone_ms = self
                .r
                .processes
                .iter()
                .filter_map(|p| p.gone_after_ms)
                .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))));
        }
        for m in &self.members {
            let rep = &mut self.r.processes[m.report];
            if rep.fate == Fate::Gone {
                continue;
            }
            // Not waited for (not permitted), but it may have exited anyway.
            if m.handle.as_ref().is_some_and(|h| h.is_gone()) {
                rep.fate = Fate::Gone;
                rep.gone_after_ms = Some(ms(self.t0.elapsed()));
                continue;
            }
            let denied = rep.signals.iter().any(|s| s.result == "not_permitted");
            let state = procfs::read_stat(m.stat.pid)
                .filter(|s| s.start_time == m.stat.start_time)
                .map(|s| s.state);
            if denied {
                rep.fate = Fate::NotPermitted;
                rep.message = Some(format!(
                    "pid {} ({}): not permitted to signal it (owned by another user?)",
                    m.stat.pid, m.stat.comm
                ));
            } else {
                rep.message = Some(format!(
                    "pid {} ({}): still running {} ms after SIGKILL (state {})",
                    m.stat.pid,
                    m.stat.comm,
                    self.req.wait_timeout.as_millis(),
                    state.map_or("?".into(), |c| c.to_string())
                ));
            }
        }
    }
}

/// Kill the request's targets, one phase at a time (the numbered steps
/// below; module docs give the order and why).
pub fn execute(req: &KillRequest) -> KillReport {
    let t0 = Instant::now();
    let scan0 = scan_map();
    let protected = protected(&scan0);
    let mut run = Run {
        req,
        t0,
        r: KillReport::begin(req),
        members: Vec::new(),
        protected,
        frozen: Vec::new(),
        frozen_dirs: Vec::new(),
        in_cgroup: HashMap::new(),
        stopped: Stopped(Vec::new()),
        captures: Vec::new(),
    };

    // 1. Targets.
    let seeds = run.resolve_targets(&scan0);
    // 2. Freeze owned cgroups first, so the snapshot cannot race with forks.
    run.freeze_targets();
    // 3. Snapshot: named pids, then the tree; stop what no freeze covers.
    run.snapshot(seeds, scan0);
    // 4. Capture, before the first terminating signal.
    run.capture_from(0);

    // 5. Signal.
    match req.mode {
        KillMode::Immediate => {
            run.kill_now();
            run.thaw();
        }
        KillMode::Graceful => run.terminate_gracefully(),
    }

    // 6. Wait until every pinned process has exited, then catch late forks.
    let deadline = Instant::now() + req.wait_timeout;
    run.wait(deadline);
    run.sweep();
    run.settle_fates();
    if run.members.is_empty() && run.r.errors.is_empty() {
        run.r.errors.push("no process matched the targets".into());
    }
    run.r.timings.total_ms = run.at();
    run.r.finish();

    // 7. The incident record (never affects the kill's outcome).
    if let Some(opts) = &req.capture {
        write_incident(&mut run.r, &run.captures, &opts.output_dir);
    }
    run.r
}

fn write_incident(r: &mut KillReport, captures: &[ProcessCapture], output_dir: &Path) {
    let final_dir = output_dir.join(&r.id);
    r.incident_dir = Some(final_dir);
    let mut files = Vec::new();
    let mut fail = None;
    match serde_json::to_vec_pretty(&r) {
        Ok(b) => files.push(IncidentFile {
            rel: "incident.json".into(),
            bytes: b,
        }),
        Err(e) => fail = Some(e.to_string()),
    }
    for c in captures {
        match serde_json::to_vec_pretty(c) {
            Ok(b) => files.push(IncidentFile {
                rel: format!("processes/{}.json", c.pid),
                bytes: b,
            }),
            Err(e) => fail = Some(e.to_string()),
        }
    }
    let res = match fail {
        Some(e) => Err(std::io::Error::other(e)),
        None => incident::write_atomic(output_dir, &r.id, &files),
    };
    match res {
        Ok(dir) => r.incident_dir = Some(dir),
        Err(e) => {
            r.incident_dir = None;
            r.incident_error = Some(format!(
                "writing incident under {}: {e}",
                output_dir.display()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(pid: i32, ppid: i32, pgrp: i32, session: i32, start: u64) -> Stat {
        Stat {
            pid,
            comm: format!("p{pid}"),
            state: 'S',
            ppid,
            pgrp,
            session,
            flags: 0,
            start_time: start,
        }
    }

    fn table(v: Vec<Stat>) -> HashMap<i32, Stat> {
        v.into_iter().map(|s| (s.pid, s)).collect()
    }

    #[test]
    fn expand_finds_children_and_escaped_daemons() {
        // 100 (target, session leader) -> 101 -> 102; 103 double-forked into
        // init but kept the session; 104 setsid under 101, and its child 105.
        // 200 is unrelated; 300 is assay.
        let scan = table(vec![
            st(1, 0, 1, 1, 1),
            st(100, 50, 100, 100, 10),
            st(101, 100, 100, 100, 11),
            st(102, 101, 100, 100, 12),
            st(103, 1, 100, 100, 13),
            st(104, 101, 104, 104, 14),
            st(105, 1, 104, 104, 15),
            st(200, 1, 200, 200, 20),
            st(300, 50, 300, 100, 30),
        ]);
        let members: HashMap<i32, u64> = [(100, 10)].into_iter().collect();
        let protected: HashSet<i32> = [0, 1, 300, 50].into_iter().collect();
        let got = expand(&scan, &members, &protected);
        let pids: Vec<i32> = got.iter().map(|(p, _)| *p).collect();
        assert_eq!(pids, [101, 102, 103, 104, 105]);
        assert_eq!(got[2], (103, Via::Session));
        assert_eq!(got[4], (105, Via::Session));
    }

    #[test]
    fn expand_ignores_a_reused_parent_pid() {
        // Member 100 (start 10) exited; pid 100 now belongs to an unrelated
        // process (start 99) whose child must not be taken.
        let scan = table(vec![st(100, 1, 100, 100, 99), st(101, 100, 100, 100, 100)]);
        let members: HashMap<i32, u64> = [(100, 10)].into_iter().collect();
        assert!(expand(&scan, &members, &HashSet::new()).is_empty());
        // An exited leader (pid absent) still anchors its session.
        let scan = table(vec![st(7, 1, 5, 5, 3)]);
        let members: HashMap<i32, u64> = [(5, 1)].into_iter().collect();
        assert_eq!(
            expand(&scan, &members, &HashSet::new()),
            [(7, Via::Session)]
        );
    }

    #[test]
    fn expand_skips_kernel_threads_and_zombies() {
        let mut k = st(2, 10, 10, 10, 5);
        k.flags = 0x0020_0000;
        let mut z = st(3, 10, 10, 10, 6);
        z.state = 'Z';
        let scan = table(vec![st(10, 1, 10, 10, 1), k, z]);
        let members: HashMap<i32, u64> = [(10, 1)].into_iter().collect();
        assert!(expand(&scan, &members, &HashSet::new()).is_empty());
    }
}
