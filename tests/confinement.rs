//! Root tier: what a wrapped command may do, tried by the command itself.
//! Wrapper mode runs it with the least privilege that still runs it: the
//! invoking user (sudo) or root without capabilities, `no_new_privs`, no
//! inherited descriptor. Each case runs the real binary as a user would.
#![cfg(all(target_os = "linux", feature = "monitor"))]

mod common;

use std::os::unix::process::CommandExt;
use std::process::Output;

use common::{Scratch, assay, assert_exit, cgroup2_mount, run};

const NOBODY: u32 = 65534;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A policy with one network rule (so the monitor has something to
/// enforce), in a scratch directory every user can read.
fn scratch(name: &str) -> (Scratch, std::path::PathBuf) {
    let s = Scratch::new(name);
    let pol = s.file(
        "p.yaml",
        "version: \"2.0\"\nruntime_monitor:\n  enabled: true\n  rules:\n    - id: no-telnet\n      \
         type: net_connect\n      match: {ports: [23]}\n      severity: high\n      action: deny\n",
    );
    (s, pol)
}

/// `assay monitor --policy P EXTRA -- bash -c SCRIPT`.
fn wrapped(pol: &std::path::Path, extra: &[&str], env: &[(&str, &str)], script: &str) -> Output {
    let mut c = assay();
    c.arg("monitor").arg("--policy").arg(pol).args(extra);
    for (k, v) in env {
        c.env(k, v);
    }
    run(c.args(["--", "bash", "-c", script]))
}

/// The `Key:\tvalue` lines of /proc/self/status the script printed.
fn status(out: &Output, key: &str) -> String {
    text(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in {}", text(&out.stdout)))
        .trim()
        .to_string()
}

const SHOW: &str =
    "grep -E '^(Uid|Gid|Groups|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/self/status";
const NO_CAPS: &str = "0000000000000000";

#[track_caller]
fn assert_unprivileged(out: &Output, uid: u32) {
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(status(out, cap), NO_CAPS, "{cap}: {}", text(&out.stdout));
    }
    assert_eq!(status(out, "NoNewPrivs"), "1");
    let ids = format!("{uid}\t{uid}\t{uid}\t{uid}");
    assert_eq!(status(out, "Uid"), ids);
}

#[test]
fn root_without_sudo_runs_the_command_as_root_with_no_capabilities() {
    if !common::require_root("root_without_sudo_runs_the_command_as_root_with_no_capabilities") {
        return;
    }
    let (_s, pol) = scratch("lp-root");
    let out = wrapped(&pol, &[], &[], SHOW);
    assert_exit(&out, 0);
    assert_unprivileged(&out, 0);
    assert!(
        text(&out.stderr).contains("runs as root with no capabilities"),
        "said on stderr: {}",
        text(&out.stderr)
    );
}

#[test]
fn under_sudo_the_command_runs_as_the_invoking_user() {
    if !common::require_root("under_sudo_the_command_runs_as_the_invoking_user") {
        return;
    }
    let (_s, pol) = scratch("lp-sudo");
    let sudo = [
        ("SUDO_UID", "65534"),
        ("SUDO_GID", "65534"),
        ("SUDO_USER", "nobody"),
    ];
    let out = wrapped(&pol, &[], &sudo, SHOW);
    assert_exit(&out, 0);
    assert_unprivileged(&out, NOBODY);
    assert!(
        !text(&out.stderr).contains("as root"),
        "{}",
        text(&out.stderr)
    );
    // --user chooses, and wins over sudo.
    let out = wrapped(&pol, &["--user", "nobody"], &[], SHOW);
    assert_exit(&out, 0);
    assert_unprivileged(&out, NOBODY);
    let out = wrapped(&pol, &["--user", "65534:0"], &sudo, SHOW);
    assert_exit(&out, 0);
    assert_eq!(status(&out, "Gid"), "0\t0\t0\t0");
}

#[test]
fn keep_capabilities_keeps_them_and_says_what_that_gives_up() {
    if !common::require_root("keep_capabilities_keeps_them_and_says_what_that_gives_up") {
        return;
    }
    let (_s, pol) = scratch("lp-keep");
    let out = wrapped(&pol, &["--keep-capabilities"], &[], SHOW);
    assert_exit(&out, 0);
    assert_ne!(status(&out, "CapEff"), NO_CAPS);
    let err = text(&out.stderr);
    assert!(err.contains("--keep-capabilities"), "{err}");
    assert!(err.contains("leave the monitored cgroup"), "{err}");
}

#[test]
fn descriptors_are_not_inherited_unless_passed() {
    if !common::require_root("descriptors_are_not_inherited_unless_passed") {
        return;
    }
    let (_s, pol) = scratch("lp-fds");
    // A descriptor of the process that starts assay, inheritable (no
    // O_CLOEXEC): a server must not get it by accident.
    // SAFETY: plain open of a path literal.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
    assert!(fd > 2);
    let script = format!("if [ -e /proc/$$/fd/{fd} ]; then echo open; else echo closed; fi");
    let out = wrapped(&pol, &[], &[], &script);
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout).trim(), "closed");
    let n = fd.to_string();
    let out = wrapped(&pol, &["--pass-fd", &n], &[], &script);
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout).trim(), "open");
    // SAFETY: closing our own descriptor.
    unsafe { libc::close(fd) };
    let out = wrapped(&pol, &["--pass-fd", &n], &[], "true");
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("not an open descriptor"));
}

/// The command, run as the sudo user, tries to leave its cgroup, to kill
/// assay and to use bpf(): each fails, and the monitor ends normally with
/// the command's own status.
#[test]
fn a_wrapped_server_cannot_leave_the_scope_kill_assay_or_use_bpf() {
    if !common::require_root("a_wrapped_server_cannot_leave_the_scope_kill_assay_or_use_bpf") {
        return;
    }
    let (_s, pol) = scratch("lp-escape");
    let root = cgroup2_mount().unwrap();
    let script = format!(
        "echo $$ > {}/cgroup.procs && echo LEFT-THE-SCOPE; \
         kill -9 $PPID && echo KILLED-ASSAY; \
         bpftool prog list >/dev/null 2>&1 && echo USED-BPF; \
         grep -q assay-monitor- /proc/self/cgroup && echo still-in-scope; exit 7",
        root.display()
    );
    let sudo = [
        ("SUDO_UID", "65534"),
        ("SUDO_GID", "65534"),
        ("SUDO_USER", "nobody"),
    ];
    let out = wrapped(&pol, &[], &sudo, &script);
    let stdout = text(&out.stdout);
    let err = text(&out.stderr);
    assert_exit(&out, 7);
    for bad in ["LEFT-THE-SCOPE", "KILLED-ASSAY", "USED-BPF"] {
        assert!(!stdout.contains(bad), "{bad}: {stdout}\n{err}");
    }
    assert!(stdout.contains("still-in-scope"), "{stdout}");
    assert!(
        err.contains("Permission denied"),
        "cgroup.procs refused: {err}"
    );
    assert!(
        err.contains("Operation not permitted"),
        "kill refused: {err}"
    );
}

/// An ordinary user cannot use assay to run a command as someone else.
#[test]
fn only_root_may_name_another_user() {
    if !common::require_root("only_root_may_name_another_user") {
        return;
    }
    let (s, pol) = scratch("lp-user");
    std::fs::set_permissions(&s.0, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for who in ["root", "0", "nobody:root"] {
        let out = run(assay()
            .uid(NOBODY)
            .gid(NOBODY)
            .args(["monitor", "--policy"])
            .arg(&pol)
            .args(["--user", who, "--", "true"]));
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains("only root may run the command as another user"),
            "{who}: {}",
            text(&out.stderr)
        );
    }
}
