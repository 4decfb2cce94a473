//! Wrapper mode's process handling: start the command inside the leaf cgroup
//! before it runs any code of its own, forward signals, and map its exit.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use crossbeam_channel::{Receiver, unbounded};

use super::privilege::RunAs;
use crate::caps::{self, Cap};

/// Signals assay handles itself: forwarded to the command in wrapper mode,
/// "stop" in attach mode.
pub const HANDLED: [libc::c_int; 7] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

fn handled_set() -> libc::sigset_t {
    crate::child::sigset_of(&HANDLED)
}

/// Signals delivered to assay, received synchronously on a named thread.
pub struct Signals {
    pub rx: Receiver<libc::c_int>,
    /// When > 0, every received signal is also sent to this pid.
    pub forward_to: Arc<AtomicI32>,
}

/// Block the handled signals in this thread. Called first thing, before
/// anything is loaded: a SIGTERM that arrives while the programs are being
/// attached stays pending until [`Signals::install`] receives it, instead of
/// killing assay before it can stop cleanly and report. The mask survives
/// the daemon's fork; commands get an empty mask before exec.
pub fn block_signals() -> io::Result<()> {
    let set = handled_set();
    // SAFETY: valid set pointer; null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

impl Signals {
    /// Block the handled signals in this thread (call before any other thread
    /// starts, so every thread inherits the mask) and receive them on one
    /// thread with sigwait; signals that arrived while blocked are received
    /// then.
    pub fn install() -> io::Result<Signals> {
        let set = handled_set();
        block_signals()?;
        let (tx, rx) = unbounded();
        let forward_to = Arc::new(AtomicI32::new(0));
        let fwd = forward_to.clone();
        std::thread::Builder::new()
            .name("assay-signals".into())
            .spawn(move || {
                loop {
                    // SAFETY: siginfo_t is plain data, filled by sigwaitinfo.
                    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
                    // SAFETY: valid pointers; the set is blocked in every thread.
                    let sig = unsafe { libc::sigwaitinfo(&set, &mut info) };
                    if sig < 0 {
                        continue;
                    }
                    let pid = fwd.load(Ordering::SeqCst);
                    if pid > 0 && !delivered_to_group(&info, pid) {
                        // SAFETY: plain syscall.
                        unsafe { libc::kill(pid, sig) };
                    }
                    if tx.send(sig).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Signals { rx, forward_to })
    }
}

/// Whether the kernel sent this signal to our whole process group, `pid`
/// included: Ctrl-C, Ctrl-\\ or a resize on the terminal reach every process
/// of the foreground group (si_code SI_KERNEL). Forwarding those again would
/// deliver them twice.
fn delivered_to_group(info: &libc::siginfo_t, pid: libc::pid_t) -> bool {
    // SAFETY: plain syscalls.
    info.si_code == libc::SI_KERNEL && unsafe { libc::getpgid(pid) == libc::getpgrp() }
}

/// Signals that ask assay to stop (SIGHUP only before the monitor runs:
/// then it reopens the events file instead).
pub const STOP: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

impl Signals {
    /// A stop signal that arrived before the command was started (received
    /// by the signal thread, or still pending), if any: the command should
    /// then not be started at all. Other signals received so far are
    /// dropped: there was no command to forward them to.
    pub fn stop_requested(&self) -> Option<libc::c_int> {
        if let Some(s) = self.rx.try_iter().find(|s| STOP.contains(s)) {
            return Some(s);
        }
        // SAFETY: sigset_t is plain data; sigpending fills it.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid out pointer.
        if unsafe { libc::sigpending(&mut set) } != 0 {
            return None;
        }
        // SAFETY: set was filled by sigpending.
        STOP.into_iter()
            .find(|s| unsafe { libc::sigismember(&set, *s) } == 1)
    }
}

/// Start `argv` with its pid written into `cgroup`'s `cgroup.procs` between
/// fork and exec, so not one instruction of the command runs outside the
/// scope, as `run_as` says (user, groups, capabilities, descriptors,
/// no_new_privs). stdin/stdout/stderr are inherited untouched, unless
/// `piped` (the tool-call gate relays stdin and stdout; stderr stays). The
/// child gets SIGKILL if assay dies (PR_SET_PDEATHSIG).
pub fn spawn_confined(
    cgroup: &Path,
    argv: &[OsString],
    run_as: &RunAs,
    piped: bool,
) -> io::Result<Child> {
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command given"))?;
    let mut cmd = Command::new(prog);
    cmd.args(args);
    if piped {
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
    }
    spawn(cgroup, cmd, Some(run_as.clone()))
}

/// A prepared command (its stdio settings kept) started inside `cgroup` with
/// assay's own privileges: for tests and benchmarks that play the server.
pub fn spawn_in_cgroup(cgroup: &Path, cmd: Command) -> io::Result<Child> {
    spawn(cgroup, cmd, None)
}

fn spawn(cgroup: &Path, mut cmd: Command, run_as: Option<RunAs>) -> io::Result<Child> {
    // A user's monitor (file capabilities): moving into the leaf needs write
    // access to the root-owned common ancestor (checked with the opener's
    // rights since Linux 5.16, the writer's before), and emptying the
    // bounding set needs CAP_SETPCAP; the child drops both before exec.
    let _raised = caps::raise(&[Cap::DacOverride, Cap::Setpcap]);
    // Opened before fork: the child only writes to it (async-signal-safe).
    let procs = OpenOptions::new()
        .write(true)
        .open(cgroup.join("cgroup.procs"))?;
    let procs_fd = procs.as_raw_fd();
    // SAFETY: plain syscall.
    let parent = unsafe { libc::getpid() };
    // SAFETY: only async-signal-safe calls (write, prctl, setresuid and the
    // like, getppid, sigprocmask) run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::write(procs_fd, b"0".as_ptr().cast(), 1) != 1 {
                return Err(io::Error::last_os_error());
            }
            if let Some(r) = &run_as {
                r.apply()?;
            }
            // After the ids changed: a change of credentials clears the
            // death signal.
            crate::child::guard_before_exec(parent)
        });
    }
    let child = cmd.spawn();
    drop(procs);
    child
}

/// The shell convention: the exit code, or 128 + the signal that killed it.
pub fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(c), _) => c as u8,
        (None, Some(s)) => 128u8.wrapping_add(s as u8),
        (None, None) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_signal_pending_before_the_command_starts_is_seen() {
        let s = Signals::install().unwrap();
        assert_eq!(s.stop_requested(), None);
        // Directed at this thread, which blocks it: it stays pending here.
        // SAFETY: plain call on the current thread.
        unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGHUP) };
        assert_eq!(s.stop_requested(), Some(libc::SIGHUP));
    }

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGKILL)), 137);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGTERM)), 143);
    }
}
