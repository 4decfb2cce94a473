//! Shared helpers for integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// Tests that need root call this first. Unprivileged on a laptop they skip
/// with a printed reason; in CI (`CI` set) a missing privilege is a failure,
/// because a skip there would hide an untested tier.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: needs root, and CI must run every tier");
    }
    eprintln!("SKIP {test}: needs root");
    false
}

/// The cgroup v2 mount point, read from /proc/self/mountinfo.
pub fn cgroup2_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        if post.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        pre.split_whitespace().nth(4).map(PathBuf::from)
    })
}

/// The built `assay` binary.
pub fn assay_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_assay"))
}
