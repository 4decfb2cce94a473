//! `--daemon`: detach from the terminal, with a pid file and a log file.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The pid file; removed on drop.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The pid a pid file names, when that process is alive.
pub fn live_pid(pid_file: &Path) -> Option<i32> {
    let pid = fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse::<i32>()
        .ok()?;
    // SAFETY: signal 0 only checks for existence.
    (pid > 0 && unsafe { libc::kill(pid, 0) } == 0).then_some(pid)
}

/// Fork into the background: the parent exits 0 at once (without running
/// destructors: the child owns every attached program), the child starts a
/// new session, writes `pid_file`, and sends stdout/stderr to `log_file`.
/// Call before any thread is started.
pub fn daemonize(pid_file: &Path, log_file: &Path) -> io::Result<PidFile> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file)?;
    let null = OpenOptions::new().read(true).open("/dev/null")?;
    // Refuse early when another monitor holds the pid file.
    if let Some(pid) = live_pid(pid_file) {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{}: a monitor is already running as pid {pid}",
                pid_file.display()
            ),
        ));
    }
    // SAFETY: single-threaded at this point (documented precondition).
    match unsafe { libc::fork() } {
        -1 => return Err(io::Error::last_os_error()),
        0 => {}
        child => {
            eprintln!(
                "assay: monitor running in the background as pid {child} (log: {}, pid file: {})",
                log_file.display(),
                pid_file.display()
            );
            // SAFETY: leave without destructors; the child owns the state.
            unsafe { libc::_exit(0) };
        }
    }
    // SAFETY: plain syscalls on fds we own.
    unsafe {
        libc::setsid();
        libc::dup2(null.as_raw_fd(), 0);
        libc::dup2(log.as_raw_fd(), 1);
        libc::dup2(log.as_raw_fd(), 2);
    }
    // Whole or absent: a reader never sees an empty or partial pid file.
    let tmp = pid_file.with_extension(format!("tmp.{}", std::process::id()));
    fs::write(&tmp, format!("{}\n", std::process::id()))?;
    if let Err(e) = fs::rename(&tmp, pid_file) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(PidFile {
        path: pid_file.to_path_buf(),
    })
}
