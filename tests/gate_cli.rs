//! `assay monitor` with a policy's tool rules, through the binary: the gate
//! alone (no privileges) and in wrapper mode with kernel rules (root). The
//! server is a shell loop or `cat`, so what reached it can be read back.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Scratch;
use serde_json::Value;

const ASSAY: &str = env!("CARGO_BIN_EXE_assay");

const TOOLS: &str = "version: \"2.0\"\ntools:\n  allow: [echo]\n  deny: [exec]\n";

fn call(id: u32, tool: &str) -> String {
    format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"tools/call\",\"params\":{{\"name\":\"{tool}\",\"arguments\":{{}}}}}}\n"
    )
}

fn start(args: &[&str], policy: &Path, events: &Path, server: &[&str]) -> Child {
    Command::new(ASSAY)
        .arg("monitor")
        .args(args)
        .arg("--policy")
        .arg(policy)
        .arg("--events")
        .arg(events)
        .arg("--")
        .args(server)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits at most 20 s for the child; its exit code (128 + signal when
/// killed), stdout, stderr.
fn finish(mut c: Child) -> (i32, String, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = c.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            panic!("assay did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
    c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (status.code().unwrap_or(-1), out, err)
}

fn events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_gate_alone_relays_judges_and_passes_the_exit_status_and_stderr() {
    let s = Scratch::new("gate-alone");
    let policy = s.file("p.yaml", TOOLS);
    let ev = s.path("ev.jsonl");
    // The server echoes every line it gets, says something on stderr, and
    // exits 7 at EOF.
    let mut c = start(
        &["--gate-only"],
        &policy,
        &ev,
        &["sh", "-c", "echo server-stderr >&2; cat; exit 7"],
    );
    let mut input = String::new();
    input.push_str(&call(1, "echo"));
    input.push_str(&call(2, "exec"));
    input.push_str("not json, passed as it is\n");
    input.push_str("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
    c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let (code, out, err) = finish(c);
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("server-stderr"), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    // The refusal comes first: it does not wait for the server.
    assert!(lines.contains(&call(1, "echo").trim_end()), "{out}");
    assert!(lines.contains(&"not json, passed as it is"), "{out}");
    assert!(out.ends_with("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}"));
    assert!(
        !out.contains("\"name\":\"exec\""),
        "exec reached the server: {out}"
    );
    let refusal: Value = serde_json::from_str(
        lines
            .iter()
            .find(|l| l.contains("\"isError\":true"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(refusal["id"], 2);
    let ev = events(&ev);
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[1]["decision"], "deny");
    assert!(
        err.contains("assay: gate: 2 tool call(s), 1 refused"),
        "{err}"
    );
}

#[test]
fn a_policy_with_only_tool_rules_runs_the_gate_alone_without_the_flag() {
    let s = Scratch::new("gate-implied");
    let policy = s.file("p.yaml", TOOLS);
    let ev = s.path("ev.jsonl");
    let mut c = start(&[], &policy, &ev, &["cat"]);
    c.stdin
        .take()
        .unwrap()
        .write_all(call(1, "exec").as_bytes())
        .unwrap();
    let (code, out, err) = finish(c);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("running the tool-call gate alone"), "{err}");
    assert!(out.contains("\"isError\":true"), "{out}");
}

#[test]
fn signals_reach_the_gated_server() {
    let s = Scratch::new("gate-signal");
    let policy = s.file("p.yaml", TOOLS);
    let c = start(
        &["--gate-only"],
        &policy,
        &s.path("ev.jsonl"),
        &[
            "sh",
            "-c",
            "trap 'echo got-term; exit 42' TERM; while :; do sleep 0.05; done",
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: plain syscall on our child.
    unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
    let (code, out, err) = finish(c);
    assert_eq!(code, 42, "{err}");
    assert_eq!(out, "got-term\n");
}

#[test]
fn repeated_refusals_kill_the_gated_server() {
    let s = Scratch::new("gate-kill");
    let policy = s.file(
        "p.yaml",
        &format!(
            "{TOOLS}kill_switch:\n  enabled: true\n  output_dir: {}\n  triggers:\n    - on_tool_denials: 2\n",
            s.path("incidents").display()
        ),
    );
    let mut c = start(&["--gate-only"], &policy, &s.path("ev.jsonl"), &["cat"]);
    let mut stdin = c.stdin.take().unwrap();
    stdin.write_all(call(1, "exec").as_bytes()).unwrap();
    stdin.write_all(call(2, "echo").as_bytes()).unwrap();
    stdin.write_all(call(3, "exec").as_bytes()).unwrap();
    // stdin stays open: only the kill ends the server.
    let (code, _out, err) = finish(c);
    drop(stdin);
    assert_eq!(code, 137, "{err}");
    assert!(err.contains("killed for repeated refusals"), "{err}");
    assert_eq!(std::fs::read_dir(s.path("incidents")).unwrap().count(), 1);
}

/// A daemon the server left behind (double fork, own session) is adopted
/// by assay, not init, and dies with the server when the trigger fires.
#[test]
fn the_kill_takes_what_the_gated_server_daemonised() {
    let s = Scratch::new("gate-kill-daemon");
    let policy = s.file(
        "p.yaml",
        &format!(
            "{TOOLS}kill_switch:\n  enabled: true\n  output_dir: {}\n  triggers:\n    - on_tool_denials: 1\n",
            s.path("incidents").display()
        ),
    );
    let pidfile = s.path("daemon.pid");
    let script = format!(
        "(setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $! > {}.tmp; mv {0}.tmp {0}); exec cat",
        pidfile.display()
    );
    let mut c = start(
        &["--gate-only"],
        &policy,
        &s.path("ev.jsonl"),
        &["sh", "-c", &script],
    );
    let t0 = Instant::now();
    while !pidfile.exists() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let daemon: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let alive = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|st| st.rsplit(") ").next().is_some_and(|r| !r.starts_with('Z')))
    };
    assert!(alive(daemon));
    let mut stdin = c.stdin.take().unwrap();
    stdin.write_all(call(1, "exec").as_bytes()).unwrap();
    let (code, _out, err) = finish(c);
    drop(stdin);
    let gone = {
        let t0 = Instant::now();
        while alive(daemon) && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        !alive(daemon)
    };
    if !gone {
        // SAFETY: plain syscall; the test's own leftover.
        unsafe { libc::kill(daemon, libc::SIGKILL) };
    }
    assert_eq!(code, 137, "{err}");
    assert!(
        gone,
        "the daemonised sleep {daemon} survived the kill: {err}"
    );
    assert!(err.contains(&daemon.to_string()), "{err}");
}

/// Root: the full monitor (a cgroup network rule here; the BPF LSM is not
/// needed) with the gate on the confined server's stdio, and the kill
/// switch through the monitor's kill path.
#[test]
fn wrapper_mode_with_kernel_rules_gates_and_kills_through_the_monitor() {
    if !common::require_root("wrapper_mode_with_kernel_rules_gates_and_kills_through_the_monitor") {
        return;
    }
    let s = Scratch::new("gate-monitor");
    let policy = s.file(
        "p.yaml",
        &format!(
            "{TOOLS}kill_switch:\n  enabled: true\n  output_dir: {}\n  triggers:\n    - on_tool_denials: 2\n\
             runtime_monitor:\n  enabled: true\n  rules:\n    - id: no-ssh\n      type: net_connect\n      \
             match: {{ports: [22]}}\n      severity: high\n      action: deny\n",
            s.path("incidents").display()
        ),
    );
    let ev = s.path("ev.jsonl");
    let mut c = start(&[], &policy, &ev, &["cat"]);
    let mut stdin = c.stdin.take().unwrap();
    stdin.write_all(call(1, "echo").as_bytes()).unwrap();
    stdin.write_all(call(2, "exec").as_bytes()).unwrap();
    stdin.write_all(call(3, "exec").as_bytes()).unwrap();
    let (code, out, err) = finish(c);
    drop(stdin);
    assert_eq!(code, 137, "{err}");
    assert!(out.contains(call(1, "echo").trim_end()), "{out}");
    assert_eq!(out.matches("\"isError\":true").count(), 2, "{out}");
    let ev = events(&ev);
    let kinds: Vec<&str> = ev.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "start",
            "tool_call",
            "tool_call",
            "tool_call",
            "kill",
            "stop"
        ],
        "{ev:?}"
    );
    assert_eq!(ev[4]["rule"], "on_tool_denials");
    assert_eq!(ev[4]["all_gone"], true);
    assert_eq!(
        ev[5]["summary"]["gate"],
        serde_json::json!({"calls": 3, "denied": 2, "killed": true})
    );
    assert!(
        err.contains("gate: 3 tool call(s), 2 refused; the server was killed"),
        "{err}"
    );
}
