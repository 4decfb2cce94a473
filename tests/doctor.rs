//! `assay doctor`: its report agrees with itself and with the exit code,
//! whatever this host provides (the answers are never this host's
//! hard-coded: each test checks what follows from what doctor found), and
//! a user without capabilities is told they can enforce nothing.

#![cfg(target_os = "linux")]

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Output;

use common::{Scratch, assert_exit, run, run_assay};
use serde_json::Value;

const NOBODY: u32 = 65534;

const NET_POLICY: &str = "version: \"2.0\"\nruntime_monitor:\n  enabled: true\n  rules:\n    \
    - id: no-ssh\n      type: net_connect\n      match: {ports: [22]}\n      severity: high\n      \
    action: deny\n";

fn file_policy() -> String {
    format!(
        "{NET_POLICY}    - id: no-keys\n      type: file_open\n      match: {{path_globs: \
         [\"/root/.ssh/**\"]}}\n      severity: high\n      action: deny\n"
    )
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn ability<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["can_enforce"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {doc:#}"))
}

/// Exit 0 when the policy is ready, 40 when not, and `unenforceable` says
/// which rules and why exactly when it is not.
#[track_caller]
fn assert_exit_agrees(out: &Output, doc: &Value) {
    let ready = doc["policy"]["ready"].as_bool().expect("policy judged");
    let unenforceable = doc["policy"]["unenforceable"].as_array().unwrap();
    assert_eq!(ready, unenforceable.is_empty(), "{doc:#}");
    assert_exit(out, if ready { 0 } else { 40 });
    for u in unenforceable {
        assert!(!u["fix"].as_str().unwrap().is_empty(), "{u}");
    }
}

#[test]
fn the_report_is_consistent_with_the_host_it_found() {
    let out = run_assay(&["doctor", "--format", "json"]);
    assert_exit(&out, 0);
    let doc = json(&out);
    assert_eq!(doc["schema"], "assay.doctor/v1");
    assert_eq!(doc["policy"], Value::Null);
    assert_eq!(doc["assay"]["version"], env!("CARGO_PKG_VERSION"));
    let lsm = &doc["kernel"]["bpf_lsm"];
    match lsm["in_lsm_list"].as_bool() {
        // The exact boot parameter: the current list, then bpf.
        Some(false) => {
            let list = lsm["lsms"].as_str().unwrap();
            assert_eq!(lsm["boot_parameter"], format!("lsm={list},bpf"));
            assert_eq!(lsm["active"], false);
        }
        Some(true) => assert_eq!(lsm["boot_parameter"], Value::Null),
        None => assert!(lsm["error"].is_string(), "{lsm}"),
    }
    // File rules and guards need the BPF LSM; without it they are refused
    // with the fix, and network rules do not depend on it.
    if lsm["active"] == false {
        for name in ["file_open", "signals", "ptrace", "block_devices"] {
            let a = ability(&doc, name);
            assert_eq!(a["available"], false, "{a}");
            assert!(a["fix"].as_str().unwrap().contains("bpf"), "{a}");
        }
    }
    if lsm["active"] == true {
        assert_ne!(ability(&doc, "file_open")["available"], false);
    }
    // Nothing at all without BTF or cgroup v2.
    if doc["kernel"]["btf"] == false || doc["kernel"]["cgroup2"].is_null() {
        assert_eq!(ability(&doc, "net_connect")["available"], false);
    }
    assert!(doc["paths"]["incidents"].as_str().unwrap().starts_with('/'));
}

#[test]
fn the_table_says_the_same_as_the_json() {
    let doc = json(&run_assay(&["doctor", "--format", "json"]));
    let out = run_assay(&["doctor"]);
    assert_exit(&out, 0);
    let text = String::from_utf8(out.stdout).unwrap();
    for section in ["kernel", "privileges", "can enforce", "installed", "paths"] {
        assert!(text.lines().any(|l| l == section), "{section}: {text}");
    }
    if let Some(p) = doc["kernel"]["bpf_lsm"]["boot_parameter"].as_str() {
        assert!(
            text.contains(&format!("to enable: boot with {p}")),
            "{text}"
        );
    }
    let net = ability(&doc, "net_connect");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("net_connect "))
        .unwrap();
    assert_eq!(
        line.contains(" yes"),
        net["available"] == true,
        "{line} / {net}"
    );
}

#[test]
fn a_policy_is_ready_or_exit_40_names_what_is_missing() {
    let s = Scratch::new("doctor-policy");
    let net = s.file("net.yaml", NET_POLICY);
    let out = run_assay(&[
        "doctor",
        "--format",
        "json",
        "--policy",
        net.to_str().unwrap(),
    ]);
    let doc = json(&out);
    assert_exit_agrees(&out, &doc);
    assert_eq!(doc["policy"]["rules"], 1);
    assert_eq!(
        doc["policy"]["ready"],
        ability(&doc, "net_connect")["available"],
        "{doc:#}"
    );

    let files = s.file("files.yaml", &file_policy());
    let out = run_assay(&[
        "doctor",
        "--format",
        "json",
        "--policy",
        files.to_str().unwrap(),
    ]);
    let doc = json(&out);
    assert_exit_agrees(&out, &doc);
    if ability(&doc, "file_open")["available"] == false {
        let ids: Vec<&str> = doc["policy"]["unenforceable"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["rule_id"].as_str().unwrap())
            .collect();
        assert!(ids.contains(&"no-keys"), "{doc:#}");
    }
    // The same verdict in the table.
    let out = run_assay(&["doctor", "--policy", files.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        text.contains("cannot be enforced here"),
        out.status.code() == Some(40),
        "{text}"
    );
}

#[test]
fn a_gate_only_policy_needs_nothing_and_an_invalid_one_is_exit_2() {
    let s = Scratch::new("doctor-gate");
    let gate = s.file("gate.yaml", "version: \"2.0\"\ntools:\n  deny: [exec]\n");
    let out = run_assay(&[
        "doctor",
        "--format",
        "json",
        "--policy",
        gate.to_str().unwrap(),
    ]);
    assert_exit(&out, 0);
    let doc = json(&out);
    assert_eq!(doc["policy"]["ready"], true);
    assert_eq!(doc["policy"]["rules"], 0);
    let bad = s.file("bad.yaml", "version: \"2.0\"\nbogus: 1\n");
    let out = run_assay(&["doctor", "--policy", bad.to_str().unwrap()]);
    assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
}

/// Root tier: the same binary as a user, without and with the file
/// capabilities `make install` and the package give it.
#[test]
fn a_user_is_told_what_the_file_capabilities_give() {
    if !common::require_root("a_user_is_told_what_the_file_capabilities_give") {
        return;
    }
    let s = Scratch::new("doctor-user");
    std::fs::set_permissions(&s.0, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let pol = s.file("net.yaml", NET_POLICY);
    std::fs::set_permissions(&pol, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let as_nobody = |bin: &Path| {
        run(common::assay_at(bin)
            .uid(NOBODY)
            .gid(NOBODY)
            .current_dir("/")
            .args(["doctor", "--format", "json", "--policy"])
            .arg(&pol))
    };
    let plain = s.path("plain");
    std::fs::create_dir(&plain).unwrap();
    std::fs::set_permissions(&plain, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let bare = plain.join("assay");
    std::fs::copy(common::assay_bin(), &bare).unwrap();
    // Without capabilities: nothing, whatever the kernel offers.
    let out = as_nobody(&bare);
    let doc = json(&out);
    assert_exit(&out, 40);
    assert_eq!(doc["privileges"]["mode"], "unprivileged");
    assert_eq!(doc["privileges"]["euid"], NOBODY);
    assert_eq!(doc["installed"]["file_capabilities"], Value::Null);
    for a in doc["can_enforce"].as_array().unwrap() {
        assert_eq!(a["available"], false, "{a}");
    }
    assert!(
        ability(&doc, "net_connect")["fix"]
            .as_str()
            .unwrap()
            .contains("setcap"),
        "{doc:#}"
    );
    assert_eq!(doc["policy"]["unenforceable"][0]["rule_id"], "no-ssh");

    // With them: what root can enforce on the network, the user can too.
    let bin = common::install_with_capabilities(
        &common::assay_bin(),
        &s.0,
        assay::caps::mask(&assay::caps::NEEDED) | assay::caps::mask(&[assay::caps::MEMLOCK]),
    );
    let out = as_nobody(&bin);
    let doc = json(&out);
    assert_exit_agrees(&out, &doc);
    assert_eq!(doc["privileges"]["mode"], "file_capabilities");
    assert_eq!(doc["installed"]["file_capabilities"]["complete"], true);
    assert_eq!(doc["installed"]["file_capabilities"]["effective"], false);
    let root = json(&run_assay(&["doctor", "--format", "json"]));
    assert_eq!(
        ability(&doc, "net_connect")["available"],
        ability(&root, "net_connect")["available"]
    );
    // A user's monitor never kills other users' processes.
    assert_eq!(ability(&doc, "kill_other_users")["available"], false);
}
