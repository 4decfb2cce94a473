//! Unprivileged tier: `assay kill` argument handling and refusals.
#![cfg(target_os = "linux")]

mod common;

use std::process::Command;

use common::{Scratch, assert_exit, run_assay};

#[test]
fn a_target_is_required() {
    let out = run_assay(&["kill"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run_assay(&["kill", "--pid", "12", "--grace", "soon"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sarif_is_refused_before_anything_is_killed() {
    let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
    let out = run_assay(&[
        "kill",
        "--pid",
        &child.id().to_string(),
        "--format",
        "sarif",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(child.try_wait().unwrap().is_none(), "still running");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A target that must not be touched is a usage error: nothing was
/// signalled, so not the kill failure (30) it used to be. Errors go to
/// stderr with the one prefix every command uses.
#[test]
fn refused_targets_are_usage_errors() {
    let refused = |args: &[&str], says: &str| {
        let out = run_assay(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("assay: error: "), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    };
    refused(&["kill", "--pid", "1"], "pid 1: refusing to kill init");
    refused(&["kill", "--pid", "0"], "pid 0: not a process id");
    refused(&["kill", "--pid", "-5"], "pid -5: not a process id");
    refused(&["kill", "--pid=-5"], "pid -5: not a process id");
    refused(&["kill", "--pid", "-5", "--format", "json"], "pid -5");
    // assay's own parent (this test).
    let me = std::process::id().to_string();
    refused(
        &["kill", "--pid", &me],
        "refusing to kill assay itself or one of its ancestors",
    );
    // kthreadd, where this kernel has it as pid 2 (not in a pid namespace).
    let stat = std::fs::read_to_string("/proc/2/stat").unwrap_or_default();
    if stat.contains("(kthreadd)") {
        refused(&["kill", "--pid", "2"], "a kernel thread");
    }
    // One refused target refuses the request: the other is left running.
    let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
    refused(
        &["kill", "--pid", &child.id().to_string(), "--pid", "1"],
        "pid 1",
    );
    assert!(child.try_wait().unwrap().is_none(), "still running");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_missing_pid_is_exit_30_with_the_error_on_stderr() {
    let out = run_assay(&["kill", "--pid", "2147483647"]);
    assert_eq!(out.status.code(), Some(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("assay: error: pid 2147483647: no such process"),
        "{err}"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("error"), "errors are not on stdout: {text}");
    let out = run_assay(&["kill", "--pid", "2147483647", "--format", "json"]);
    assert_eq!(out.status.code(), Some(30));
    let r: assay::kill_switch::KillReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.errors, ["pid 2147483647: no such process"]);
    assert!(r.incident_dir.is_none(), "no capture asked, no incident");
    assert!(String::from_utf8_lossy(&out.stderr).contains("assay: error: pid 2147483647"));
}

#[test]
fn a_cgroup_that_is_not_one_is_a_usage_error() {
    let out = run_assay(&["kill", "--cgroup", "/definitely-not-a-cgroup-assay"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("assay: error: "), "{err}");
    assert!(err.contains("not a cgroup v2 directory"), "{err}");
}

#[test]
fn help_lists_exit_codes_and_documents_every_flag() {
    for cmd in [
        &["kill"][..],
        &["monitor"],
        &["discover"],
        &["policy", "validate"],
        &["policy", "check"],
    ] {
        let out = run_assay(&[cmd, &["--help"]].concat());
        assert_exit(&out, 0);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("Exit codes:"), "{cmd:?}: {help}");
        // In the options list, every flag line is followed by text on the
        // same or the next line.
        let lines: Vec<&str> = help
            .lines()
            .skip_while(|l| *l != "Options:")
            .skip(1)
            .take_while(|l| l.is_empty() || l.starts_with(' '))
            .collect();
        assert!(lines.len() > 3, "{cmd:?}: {help}");
        for (i, l) in lines.iter().enumerate() {
            let t = l.trim_start();
            let is_flag =
                t.starts_with("--") || (t.starts_with('-') && t.chars().nth(2) == Some(','));
            if !is_flag {
                continue;
            }
            let described = t.contains("  ")
                || lines.get(i + 1).is_some_and(|n| {
                    n.starts_with("          ") && !n.trim_start().starts_with('-')
                });
            assert!(described, "{cmd:?}: `{t}` has no help text");
        }
    }
}

#[test]
fn an_invalid_policy_is_exit_2_and_nothing_is_killed() {
    let d = Scratch::new("badpolicy");
    let policy = d.path("bad.yaml");
    std::fs::write(
        &policy,
        "version: \"2.0\"\nkill_switch:\n  mode: sometimes\n",
    )
    .unwrap();
    let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
    let out = run_assay(&[
        "kill",
        "--pid",
        &child.id().to_string(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml:3:"),
        "names file and position: {err}"
    );
    assert!(child.try_wait().unwrap().is_none(), "still running");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn policy_kill_switch_block_sets_the_defaults_and_flags_win() {
    let d = Scratch::new("policy");
    let policy = d.path("p.yaml");
    std::fs::write(
        &policy,
        format!(
            "version: \"2.0\"\nkill_switch:\n  mode: immediate\n  grace_period_ms: 1234\n  \
             kill_children: false\n  capture_state: true\n  output_dir: \"{}\"\n",
            d.path("incidents").display()
        ),
    )
    .unwrap();
    let p = policy.to_str().unwrap();
    let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
    let pid = child.id().to_string();
    let out = run_assay(&["kill", "--pid", &pid, "--policy", p, "--format", "json"]);
    assert_exit(&out, 0);
    child.wait().unwrap();
    let r: assay::kill_switch::KillReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.request.mode, assay::kill_switch::report::Mode::Immediate);
    assert_eq!(r.request.grace_ms, 1234);
    assert!(!r.request.kill_children);
    assert!(r.request.capture);
    assert!(r.incident_dir.unwrap().starts_with(d.path("incidents")));

    // Flags override the policy.
    let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
    let pid = child.id().to_string();
    let out = run_assay(&[
        "kill",
        "--pid",
        &pid,
        "--policy",
        p,
        "--mode",
        "graceful",
        "--grace",
        "200ms",
        "--no-capture-state",
        "--format",
        "json",
    ]);
    assert_exit(&out, 0);
    child.wait().unwrap();
    let r: assay::kill_switch::KillReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.request.mode, assay::kill_switch::report::Mode::Graceful);
    assert_eq!(r.request.grace_ms, 200);
    assert!(!r.request.capture && r.incident_dir.is_none());
}

/// A target that leads neither its process group nor its session and owns
/// no cgroup cannot have its double-forked daemons attributed: say so.
#[test]
fn a_target_without_group_session_or_cgroup_gets_a_double_fork_warning() {
    use std::os::unix::process::CommandExt;
    const WARNING: &str = "double-forked cannot be attributed";
    // Shares this test's process group, session and cgroup.
    let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
    let out = run_assay(&[
        "kill",
        "--pid",
        &child.id().to_string(),
        "--mode",
        "immediate",
    ]);
    assert_exit(&out, 0);
    child.wait().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("assay: warning: ") && err.contains(WARNING),
        "{err}"
    );
    // Leads its own process group: its daemons keep that group.
    let mut child = Command::new("sleep")
        .arg("1000")
        .process_group(0)
        .spawn()
        .unwrap();
    let out = run_assay(&[
        "kill",
        "--pid",
        &child.id().to_string(),
        "--mode",
        "immediate",
    ]);
    assert_exit(&out, 0);
    child.wait().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains(WARNING), "{err}");
}
