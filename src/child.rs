//! What a wrapped command does between fork and exec, shared by the
//! monitor's wrapper mode and the tool-call gate.

use std::io;

/// In the forked child, before exec: die with assay (`PR_SET_PDEATHSIG`,
/// Linux), refuse to run if assay already died (`parent` is assay's pid),
/// and unblock every signal assay blocked for its own signal thread.
///
/// # Safety
/// Only for a `pre_exec` closure: it makes async-signal-safe calls only.
/// Call it after any change of credentials, which clears the death signal.
pub unsafe fn guard_before_exec(parent: libc::pid_t) -> io::Result<()> {
    // SAFETY: plain syscalls on the calling process (see the contract).
    unsafe {
        #[cfg(target_os = "linux")]
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        // assay died before the death signal was set: the command would run
        // unguarded, with nobody reading its output.
        if libc::getppid() != parent {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
    Ok(())
}

/// The signal set of `signals` (for sigmask and sigwait).
pub fn sigset_of(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}
