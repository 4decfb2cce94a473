//! `assay monitor --gate-only`: the gate alone around a command, without the
//! kernel part. No privileges, no BPF, no cgroup: the command runs as a plain
//! child with its stdin and stdout through the relay and its stderr
//! untouched; signals assay receives are passed on; its exit status is
//! assay's.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::strikes::Strikes;
use super::{Judge, ToolCallEvent, relay};

/// Signals passed on to the command (as the monitor's wrapper mode does).
const FORWARDED: [libc::c_int; 7] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

/// How long the server's output may still flow after it exited (a child it
/// left behind may hold the pipe open).
const DRAIN: Duration = Duration::from_secs(2);
/// How long a kill the trigger started may take to finish: the longest grace
/// period a policy may set, and a minute for the capture.
const KILL_WAIT: Duration = Duration::from_millis(crate::policy::MAX_GRACE_PERIOD_MS + 60_000);

/// Called when repeated refusals trip the kill, with the processes to kill
/// each with its tree: the command, and on Linux every process assay
/// adopted (it is their subreaper), so a daemon the server double-forked
/// goes too.
pub type Kill = Box<dyn FnOnce(Vec<i32>) + Send>;

pub struct Options {
    pub command: Vec<OsString>,
    pub judge: Arc<Judge>,
    /// Refusals that trigger `kill` (policy `on_tool_denials`).
    pub kill_after: Option<u32>,
}

/// How the gated command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    /// Shell convention: exit code, or 128 + signal.
    pub status: u8,
    pub calls: u64,
    pub denied: u64,
    /// The kill trigger fired.
    pub killed: bool,
}

fn signal_set() -> libc::sigset_t {
    crate::child::sigset_of(&FORWARDED)
}

fn dup(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<File> {
    let owned: OwnedFd = fd.try_clone_to_owned()?;
    Ok(File::from(owned))
}

/// Runs the command behind the gate until it exits.
pub fn run(
    opts: Options,
    on_event: Box<dyn FnMut(&ToolCallEvent) + Send>,
    kill: Kill,
) -> io::Result<Ran> {
    let (prog, rest) = opts
        .command
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command given"))?;
    // Blocked before any thread starts (all inherit the mask), received by
    // the signal thread; the command gets an empty mask before exec.
    let set = signal_set();
    // SAFETY: valid set pointer.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    // A process the server orphans (a double fork, `setsid`) is adopted by
    // assay instead of init, so the kill can still find it.
    become_subreaper()?;
    let mut cmd = Command::new(prog);
    cmd.args(rest)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // SAFETY: plain syscall.
    let parent = unsafe { libc::getpid() };
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || crate::child::guard_before_exec(parent));
    }
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let forward_to = Arc::new(AtomicI32::new(pid as i32));
    spawn_signal_thread(set, forward_to.clone())?;
    let relaying = start(
        opts.judge,
        opts.kill_after,
        &mut child,
        on_event,
        Box::new(move || {
            let mut roots = adopted();
            if !roots.contains(&(pid as i32)) {
                roots.insert(0, pid as i32);
            }
            kill(roots)
        }),
    )?;
    let status = wait_reaping(pid)?;
    forward_to.store(0, Ordering::SeqCst);
    let counts = relaying.finish();
    Ok(Ran {
        status: exit_code(status),
        calls: counts.calls,
        denied: counts.denied,
        killed: counts.killed,
    })
}

/// What the relay counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub calls: u64,
    pub denied: u64,
    /// The kill trigger fired.
    pub killed: bool,
}

/// A relay running between the client (assay's stdin and stdout) and a
/// child started with piped stdin and stdout.
pub struct Relaying {
    done: crossbeam_channel::Receiver<()>,
    /// Says when a kill the trigger started has finished.
    killed: crossbeam_channel::Receiver<()>,
    counts: Arc<Mutex<Counts>>,
}

impl Relaying {
    /// After the child exited: waits (a bounded time) for the rest of its
    /// output to reach the client, and returns the counts.
    pub fn finish(self) -> Counts {
        let _ = self.done.recv_timeout(DRAIN);
        let counts = *self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.killed {
            // The server died of the kill, which may still be writing its
            // incident record: assay does not exit under it.
            let _ = self.killed.recv_timeout(KILL_WAIT);
        }
        counts
    }
}

/// Starts both directions' threads on `child`'s pipes (taken from it).
/// `on_trip` runs once, on the client thread, when the refusals reach
/// `kill_after`.
pub fn start(
    judge: Arc<Judge>,
    kill_after: Option<u32>,
    child: &mut std::process::Child,
    mut on_event: Box<dyn FnMut(&ToolCallEvent) + Send>,
    on_trip: Box<dyn FnOnce() + Send>,
) -> io::Result<Relaying> {
    let missing = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the command's stdio is not piped",
        )
    };
    let server_in = child.stdin.take().ok_or_else(missing)?;
    let server_out = child.stdout.take().ok_or_else(missing)?;
    let client_in = dup(io::stdin().as_fd())?;
    let client_out = dup(io::stdout().as_fd())?;
    // Large results cross two pipes instead of one: fewer, larger reads and
    // writes keep the relay near the direct pipe's rate.
    grow_pipe(&server_out);
    grow_pipe(&client_out);
    let client_out = Arc::new(Mutex::new(client_out));
    let counts = Arc::new(Mutex::new(Counts::default()));
    let (killed_tx, killed) = crossbeam_channel::bounded::<()>(1);
    {
        let (judge, client_out, counts) = (judge.clone(), client_out.clone(), counts.clone());
        let mut strikes = Strikes::new(kill_after);
        let mut on_trip = Some(on_trip);
        std::thread::Builder::new()
            .name("assay-gate-in".into())
            .spawn(move || {
                let mut on_call = |ev: ToolCallEvent| {
                    on_event(&ev);
                    let trip = strikes.record(ev.call.allowed);
                    {
                        let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
                        c.calls += 1;
                        c.denied += u64::from(!ev.call.allowed);
                        c.killed |= trip;
                    }
                    if trip {
                        if let Some(f) = on_trip.take() {
                            f();
                            let _ = killed_tx.send(());
                        }
                    }
                };
                // Ends at the client's EOF (then the server's stdin closes,
                // as if the client had closed it) or when the server's stdin
                // is gone.
                let _ = relay::client_to_server(
                    &judge,
                    client_in,
                    server_in,
                    &client_out,
                    &mut on_call,
                );
            })?;
    }
    let (done_tx, done) = crossbeam_channel::bounded::<()>(1);
    std::thread::Builder::new()
        .name("assay-gate-out".into())
        .spawn(move || {
            // A failed write to the client ends it: dropping the pipe's read
            // end gives the server EPIPE, as without the gate.
            let _ = server_to_client(&judge, server_out, &client_out);
            let _ = done_tx.send(());
        })?;
    Ok(Relaying {
        done,
        killed,
        counts,
    })
}

#[cfg(target_os = "linux")]
fn become_subreaper() -> io::Result<()> {
    // SAFETY: plain prctl on this process.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn become_subreaper() -> io::Result<()> {
    Ok(())
}

/// assay's children: the command and every orphan it adopted, from each
/// thread's `children` list (an orphan goes to one of the reaper's threads).
#[cfg(target_os = "linux")]
fn adopted() -> Vec<i32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(
            list.split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok()),
        );
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(not(target_os = "linux"))]
fn adopted() -> Vec<i32> {
    Vec::new()
}

/// Waits for the command, reaping the orphans assay adopted on the way so
/// none stays a zombie; the command's status.
fn wait_reaping(pid: u32) -> io::Result<std::process::ExitStatus> {
    use std::os::unix::process::ExitStatusExt;
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: valid pointer; nothing else in assay waits for children
        // while the gate runs.
        let got = unsafe { libc::waitpid(-1, &mut status, 0) };
        if got == pid as i32 {
            return Ok(std::process::ExitStatus::from_raw(status));
        }
        if got < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

fn spawn_signal_thread(set: libc::sigset_t, forward_to: Arc<AtomicI32>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("assay-signals".into())
        .spawn(move || {
            loop {
                let Some((sig, to_group)) = wait_signal(&set) else {
                    continue;
                };
                let pid = forward_to.load(Ordering::SeqCst);
                // SAFETY: plain syscalls.
                if pid > 0 && !(to_group && unsafe { libc::getpgid(pid) == libc::getpgrp() }) {
                    // SAFETY: plain syscall.
                    unsafe { libc::kill(pid, sig) };
                }
            }
        })?;
    Ok(())
}

/// The next signal of `set`, and whether the kernel sent it to the whole
/// process group (Ctrl-C, Ctrl-\\, a resize on the terminal): the command,
/// in the same group, then has it already and must not get it twice.
#[cfg(target_os = "linux")]
fn wait_signal(set: &libc::sigset_t) -> Option<(libc::c_int, bool)> {
    // SAFETY: siginfo_t is plain data, filled by sigwaitinfo.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers; the set is blocked in every thread.
    let sig = unsafe { libc::sigwaitinfo(set, &mut info) };
    (sig > 0).then_some((sig, info.si_code == libc::SI_KERNEL))
}

/// Elsewhere the sender is unknown: every signal is passed on.
#[cfg(not(target_os = "linux"))]
fn wait_signal(set: &libc::sigset_t) -> Option<(libc::c_int, bool)> {
    let mut sig: libc::c_int = 0;
    // SAFETY: valid pointers; the set is blocked in every thread.
    (unsafe { libc::sigwait(set, &mut sig) } == 0).then_some((sig, false))
}

/// Raise a pipe's capacity (Linux: F_SETPIPE_SZ, up to the unprivileged
/// limit); anything else, or a refusal, leaves it as it is.
fn grow_pipe(fd: &impl std::os::fd::AsRawFd) {
    #[cfg(target_os = "linux")]
    {
        const WANT: libc::c_int = 1 << 20;
        // SAFETY: plain fcntl on a descriptor we own; fails harmlessly on
        // anything that is not a pipe.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, WANT) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = fd;
}

#[cfg(target_os = "linux")]
fn server_to_client(
    judge: &Judge,
    server: std::process::ChildStdout,
    client: &Mutex<File>,
) -> io::Result<()> {
    super::splice::server_to_client(judge, File::from(OwnedFd::from(server)), client)
}

#[cfg(not(target_os = "linux"))]
fn server_to_client(
    judge: &Judge,
    server: std::process::ChildStdout,
    client: &Mutex<File>,
) -> io::Result<()> {
    relay::server_to_client(judge, server, client)
}

fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => c as u8,
        (None, Some(s)) => 128u8.wrapping_add(s as u8),
        (None, None) => 1,
    }
}
