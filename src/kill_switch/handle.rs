//! A handle on one process that can never signal a different process.
//!
//! With a pidfd (Linux 5.3+) the kernel pins the identity: once the process
//! exits, signals through its pidfd fail with ESRCH even if the pid number is
//! reused. The pidfd is only trusted after the process start time read from
//! /proc *after* opening it matches the start time seen at identification, so
//! a pid reused between the scan and `pidfd_open` is rejected too. Without
//! pidfds, every signal is preceded by the same start-time check (a small race
//! remains; it is documented).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::procfs;

#[derive(Debug)]
pub struct ProcHandle {
    pub pid: i32,
    pub start_time: u64,
    pidfd: Option<OwnedFd>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalError {
    /// The identified process has exited (its pid may now belong to another).
    Gone,
    /// EPERM: not allowed to signal it.
    NotPermitted,
    Other(i32),
}

impl std::fmt::Display for SignalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignalError::Gone => write!(f, "gone"),
            SignalError::NotPermitted => write!(f, "not_permitted"),
            SignalError::Other(e) => write!(f, "error: {}", io::Error::from_raw_os_error(*e)),
        }
    }
}

fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this fd; we are its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

impl ProcHandle {
    /// Pin the process identified as (`pid`, `start_time`). `None` when it has
    /// already exited or the pid now names another process.
    pub fn open(pid: i32, start_time: u64) -> Option<ProcHandle> {
        match pidfd_open(pid) {
            Ok(fd) => {
                let same = procfs::read_stat(pid)
                    .is_some_and(|s| s.start_time == start_time && !s.is_dead());
                same.then_some(ProcHandle {
                    pid,
                    start_time,
                    pidfd: Some(fd),
                })
            }
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => None,
            // ENOSYS (kernel < 5.3) or a seccomp filter: fall back.
            Err(_) => Self::open_without_pidfd(pid, start_time),
        }
    }

    /// A handle that verifies the start time before each signal instead of
    /// holding a pidfd (for kernels without pidfd, and for tests of that path).
    pub fn open_without_pidfd(pid: i32, start_time: u64) -> Option<ProcHandle> {
        let same =
            procfs::read_stat(pid).is_some_and(|s| s.start_time == start_time && !s.is_dead());
        same.then_some(ProcHandle {
            pid,
            start_time,
            pidfd: None,
        })
    }

    /// Identify the process currently at `pid` and pin it.
    pub fn identify(pid: i32) -> Option<ProcHandle> {
        let st = procfs::read_stat(pid)?;
        Self::open(pid, st.start_time)
    }

    pub fn has_pidfd(&self) -> bool {
        self.pidfd.is_some()
    }

    /// The raw pidfd, for polling many handles at once.
    pub fn pidfd_raw(&self) -> Option<i32> {
        self.pidfd.as_ref().map(|f| f.as_raw_fd())
    }

    /// Send `sig` to exactly this process.
    pub fn signal(&self, sig: i32) -> Result<(), SignalError> {
        let rc = match &self.pidfd {
            // SAFETY: pidfd_send_signal(fd, sig, NULL info, 0 flags).
            Some(fd) => unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    sig,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            },
            None => {
                if !self.same_process_alive() {
                    return Err(SignalError::Gone);
                }
                // SAFETY: kill has no memory preconditions.
                unsafe { libc::kill(self.pid, sig) as libc::c_long }
            }
        };
        if rc == 0 {
            return Ok(());
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::ESRCH) => Err(SignalError::Gone),
            Some(libc::EPERM) => Err(SignalError::NotPermitted),
            Some(e) => Err(SignalError::Other(e)),
            None => Err(SignalError::Other(0)),
        }
    }

    fn same_process_alive(&self) -> bool {
        procfs::read_stat(self.pid).is_some_and(|s| s.start_time == self.start_time && !s.is_dead())
    }

    /// True once the process has exited (a zombie counts: it no longer runs).
    pub fn is_gone(&self) -> bool {
        match &self.pidfd {
            Some(fd) => {
                let mut p = libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd, zero timeout.
                let n = unsafe { libc::poll(&mut p, 1, 0) };
                n > 0 && p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
            }
            None => !self.same_process_alive(),
        }
    }
}

/// Wait until every handle is gone or `deadline` passes. `on_gone(i)` is
/// called once per handle index when its exit is observed. Pidfds wake the
/// wait as soon as any process exits; fallback handles are re-checked every
/// few milliseconds.
pub fn wait_all(
    handles: &[&ProcHandle],
    deadline: std::time::Instant,
    mut on_gone: impl FnMut(usize),
) {
    let mut pending: Vec<usize> = (0..handles.len()).collect();
    loop {
        pending.retain(|&i| {
            if handles[i].is_gone() {
                on_gone(i);
                false
            } else {
                true
            }
        });
        let now = std::time::Instant::now();
        if pending.is_empty() || now >= deadline {
            return;
        }
        let mut fds: Vec<libc::pollfd> = pending
            .iter()
            .filter_map(|&i| handles[i].pidfd_raw())
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let all_pidfd = fds.len() == pending.len();
        let left = deadline - now;
        let slice = if all_pidfd {
            left.min(std::time::Duration::from_millis(100))
        } else {
            left.min(std::time::Duration::from_millis(2))
        };
        if fds.is_empty() {
            std::thread::sleep(slice);
        } else {
            // SAFETY: `fds` is a valid array of pollfds for its length.
            unsafe {
                libc::poll(
                    fds.as_mut_ptr(),
                    fds.len() as libc::nfds_t,
                    slice.as_millis().max(1) as i32,
                )
            };
        }
    }
}
