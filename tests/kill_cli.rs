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

#[test]
fn init_and_missing_pids_are_exit_30() {
    let out = run_assay(&["kill", "--pid", "1"]);
    assert_eq!(out.status.code(), Some(30));
    assert!(String::from_utf8_lossy(&out.stdout).contains("pid 1: refusing to kill init"));
    let out = run_assay(&["kill", "--pid", "0"]);
    assert_eq!(out.status.code(), Some(30));
    let out = run_assay(&["kill", "--pid", "2147483647", "--format", "json"]);
    assert_eq!(out.status.code(), Some(30));
    let r: assay::kill_switch::KillReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.errors, ["pid 2147483647: no such process"]);
    assert!(r.incident_dir.is_none(), "no capture asked, no incident");
}

#[test]
fn a_cgroup_that_is_not_one_is_exit_30() {
    let out = run_assay(&["kill", "--cgroup", "/definitely-not-a-cgroup-assay"]);
    assert_eq!(out.status.code(), Some(30));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not a cgroup v2 directory"));
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
