//! Root tier: a handle on a process that exited never signals the process
//! that inherits its pid. The test frees a pid, makes the kernel hand exactly
//! that pid to an innocent process (via /proc/sys/kernel/ns_last_pid), then
//! signals through the stale handles and checks the innocent got nothing.
#![cfg(target_os = "linux")]

mod common;

use std::process::{Child, Command};
use std::time::Duration;

use assay::kill_switch::handle::{ProcHandle, SignalError};
use assay::kill_switch::procfs;

/// Pending signals of `pid` from /proc/<pid>/status (thread and shared).
fn pending(pid: i32) -> (String, String) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let get = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap()
            .trim()
            .to_string()
    };
    (get("SigPnd:"), get("ShdPnd:"))
}

/// Spawn `sleep` until it gets exactly `pid` (other processes on the machine
/// may take it first; retry).
fn spawn_at(pid: i32) -> Option<Child> {
    for _ in 0..200 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).unwrap();
        let mut c = Command::new("sleep").arg("1000").spawn().unwrap();
        if c.id() as i32 == pid {
            return Some(c);
        }
        c.kill().unwrap();
        c.wait().unwrap();
    }
    None
}

#[test]
fn a_reused_pid_is_never_signalled() {
    if !common::require_root("a_reused_pid_is_never_signalled") {
        return;
    }
    let mut victim = Command::new("sleep").arg("1000").spawn().unwrap();
    let pid = victim.id() as i32;
    let start = procfs::read_stat(pid).unwrap().start_time;
    let with_pidfd = ProcHandle::identify(pid).expect("victim pinned");
    assert!(with_pidfd.has_pidfd(), "this kernel has pidfd_open");
    let by_start_time = ProcHandle::open_without_pidfd(pid, start).expect("victim identified");

    // The target exits (and is reaped) before the kill switch signals it.
    victim.kill().unwrap();
    victim.wait().unwrap();
    // Let the clock tick so the newcomer's start time differs (10 ms ticks).
    std::thread::sleep(Duration::from_millis(30));
    let mut innocent = spawn_at(pid).expect("the kernel handed the freed pid to a new process");
    let innocent_start = procfs::read_stat(pid).unwrap().start_time;
    assert_ne!(innocent_start, start);

    assert_eq!(with_pidfd.signal(libc::SIGKILL), Err(SignalError::Gone));
    assert_eq!(by_start_time.signal(libc::SIGKILL), Err(SignalError::Gone));
    assert_eq!(with_pidfd.signal(libc::SIGSTOP), Err(SignalError::Gone));
    assert!(with_pidfd.is_gone() && by_start_time.is_gone());
    // A fresh identification of the pid is a different process.
    assert!(ProcHandle::open(pid, start).is_none());

    std::thread::sleep(Duration::from_millis(50));
    assert!(
        innocent.try_wait().unwrap().is_none(),
        "the innocent process still runs"
    );
    let st = procfs::read_stat(pid).unwrap();
    assert_eq!(
        (st.start_time, st.state),
        (innocent_start, 'S'),
        "not stopped, not killed"
    );
    assert_eq!(
        pending(pid),
        ("0000000000000000".into(), "0000000000000000".into()),
        "no signal pending for the innocent process"
    );
    innocent.kill().unwrap();
    innocent.wait().unwrap();
}

#[test]
fn a_live_handle_signals_and_sees_the_exit() {
    if !common::require_root("a_live_handle_signals_and_sees_the_exit") {
        return;
    }
    for use_pidfd in [true, false] {
        let mut c = Command::new("sleep").arg("1000").spawn().unwrap();
        let pid = c.id() as i32;
        let h = if use_pidfd {
            ProcHandle::identify(pid).unwrap()
        } else {
            ProcHandle::open_without_pidfd(pid, procfs::read_stat(pid).unwrap().start_time).unwrap()
        };
        assert!(!h.is_gone());
        assert_eq!(h.signal(libc::SIGTERM), Ok(()));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        assail_wait(&h, deadline);
        assert!(
            h.is_gone(),
            "exit seen (zombie counts) with pidfd={use_pidfd}"
        );
        c.wait().unwrap();
    }
}

fn assail_wait(h: &ProcHandle, deadline: std::time::Instant) {
    assay::kill_switch::handle::wait_all(&[h], deadline, |_| {});
}
