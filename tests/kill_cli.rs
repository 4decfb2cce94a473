//! Unprivileged tier: `assay kill` argument handling and refusals.
#![cfg(target_os = "linux")]

mod common;

use std::process::{Command, Output, Stdio};

fn assay(args: &[&str]) -> Output {
    Command::new(common::assay_bin())
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_target_is_required() {
    let out = assay(&["kill"]);
    assert_eq!(out.status.code(), Some(2));
    let out = assay(&["kill", "--pid", "12", "--grace", "soon"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sarif_is_refused_before_anything_is_killed() {
    let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
    let out = assay(&[
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
    let out = assay(&["kill", "--pid", "1"]);
    assert_eq!(out.status.code(), Some(30));
    assert!(String::from_utf8_lossy(&out.stdout).contains("pid 1: refusing to kill init"));
    let out = assay(&["kill", "--pid", "0"]);
    assert_eq!(out.status.code(), Some(30));
    let out = assay(&["kill", "--pid", "2147483647", "--format", "json"]);
    assert_eq!(out.status.code(), Some(30));
    let r: assay::kill_switch::KillReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.errors, ["pid 2147483647: no such process"]);
    assert!(r.incident_dir.is_none(), "no capture asked, no incident");
}

#[test]
fn a_cgroup_that_is_not_one_is_exit_30() {
    let out = assay(&["kill", "--cgroup", "/definitely-not-a-cgroup-assay"]);
    assert_eq!(out.status.code(), Some(30));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not a cgroup v2 directory"));
}
