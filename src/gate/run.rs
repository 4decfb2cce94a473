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

/// Called with the command's pid when repeated refusals trip the kill.
pub type Kill = Box<dyn FnMut(u32) + Send>;

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
    // SAFETY: sigset_t is plain data, initialised by sigemptyset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in FORWARDED {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

fn dup(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<File> {
    let owned: OwnedFd = fd.try_clone_to_owned()?;
    Ok(File::from(owned))
}

/// Runs the command behind the gate until it exits.
pub fn run(
    opts: Options,
    mut on_event: Box<dyn FnMut(&ToolCallEvent) + Send>,
    mut kill: Kill,
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
    let mut cmd = Command::new(prog);
    cmd.args(rest)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            #[cfg(target_os = "linux")]
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let server_in = child.stdin.take().expect("piped");
    let server_out = child.stdout.take().expect("piped");
    let client_in = dup(io::stdin().as_fd())?;
    let client_out = Arc::new(Mutex::new(dup(io::stdout().as_fd())?));

    let forward_to = Arc::new(AtomicI32::new(pid as i32));
    spawn_signal_thread(set, forward_to.clone())?;

    let counts = Arc::new(Mutex::new((0u64, 0u64, false)));
    {
        let (judge, client_out, counts) = (opts.judge.clone(), client_out.clone(), counts.clone());
        let mut strikes = Strikes::new(opts.kill_after);
        std::thread::Builder::new()
            .name("assay-gate-in".into())
            .spawn(move || {
                let mut on_call = |ev: ToolCallEvent| {
                    on_event(&ev);
                    let trip = strikes.record(ev.call.allowed);
                    {
                        let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
                        c.0 += 1;
                        c.1 += u64::from(!ev.call.allowed);
                        c.2 |= trip;
                    }
                    if trip {
                        kill(pid);
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
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(1);
    {
        let (judge, client_out) = (opts.judge.clone(), client_out.clone());
        std::thread::Builder::new()
            .name("assay-gate-out".into())
            .spawn(move || {
                // A failed write to the client ends it: dropping the pipe's
                // read end gives the server EPIPE, as without the gate.
                let _ = relay::server_to_client(&judge, server_out, &client_out);
                let _ = done_tx.send(());
            })?;
    }
    let status = child.wait()?;
    forward_to.store(0, Ordering::SeqCst);
    let _ = done_rx.recv_timeout(DRAIN);
    let c = *counts.lock().unwrap_or_else(|e| e.into_inner());
    Ok(Ran {
        status: exit_code(status),
        calls: c.0,
        denied: c.1,
        killed: c.2,
    })
}

fn spawn_signal_thread(set: libc::sigset_t, forward_to: Arc<AtomicI32>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("assay-signals".into())
        .spawn(move || {
            loop {
                let mut sig: libc::c_int = 0;
                // SAFETY: valid pointers; the set is blocked in every thread.
                if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                    continue;
                }
                let pid = forward_to.load(Ordering::SeqCst);
                if pid > 0 {
                    // SAFETY: plain syscall.
                    unsafe { libc::kill(pid, sig) };
                }
            }
        })?;
    Ok(())
}

fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => c as u8,
        (None, Some(s)) => 128u8.wrapping_add(s as u8),
        (None, None) => 1,
    }
}
