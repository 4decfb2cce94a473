//! The tool-call gate end to end with real MCP software: the official Python
//! SDK as the client, a FastMCP (Python SDK) server and the Node
//! `@modelcontextprotocol/server-filesystem`, all installed by
//! `scripts/install-deps.sh` under `.cache/mcp/`. The gate runs as
//! `assay monitor --gate-only` (no privileges, no BPF).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Scratch;
use serde_json::{Value, json};

const ASSAY: &str = env!("CARGO_BIN_EXE_assay");

/// The MCP software, or None (skip) when it is not installed; in CI a
/// missing piece fails, as a skip there would hide an untested tier.
struct Mcp {
    python: PathBuf,
    fs_server: PathBuf,
}

fn mcp(test: &str) -> Option<Mcp> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/mcp");
    let m = Mcp {
        python: root.join("venv/bin/python"),
        fs_server: root.join("npm/node_modules/.bin/mcp-server-filesystem"),
    };
    let missing: Vec<String> = [&m.python, &m.fs_server]
        .iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return Some(m);
    }
    let why = format!(
        "{test}: missing {} (scripts/install-deps.sh installs them)",
        missing.join(", ")
    );
    if std::env::var_os("CI").is_some() {
        panic!("{why}; CI must run the end-to-end gate tests");
    }
    eprintln!("SKIP {why}");
    None
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gate")
        .join(name)
}

/// Runs the SDK client with `plan`; returns its report.
fn client(m: &Mcp, s: &Scratch, plan: Value) -> Value {
    let plan_path = s.path("plan.json");
    std::fs::write(&plan_path, plan.to_string()).unwrap();
    let out = Command::new(&m.python)
        .arg(fixture("client.py"))
        .arg(&plan_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "client failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stdout));
    })
}

fn events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn gated(policy: &Path, events: &Path, extra: &[&str], server: &[&str]) -> Vec<String> {
    let mut c = vec![
        ASSAY.to_string(),
        "monitor".into(),
        "--gate-only".into(),
        "--policy".into(),
        policy.display().to_string(),
        "--events".into(),
        events.display().to_string(),
    ];
    c.extend(extra.iter().map(|s| s.to_string()));
    c.push("--".into());
    c.extend(server.iter().map(|s| s.to_string()));
    c
}

fn call(report: &Value, i: usize) -> &Value {
    &report["calls"][i]
}

fn refused_by(report: &Value, i: usize, rule: &str) {
    let c = call(report, i);
    assert_eq!(c["is_error"], true, "{c}");
    assert!(
        c["text"]
            .as_str()
            .unwrap()
            .starts_with("assay policy refused this tool call: "),
        "{c}"
    );
    assert_eq!(c["meta"]["assay/refusal"]["rule"], rule, "{c}");
}

#[test]
fn python_sdk_client_and_server_through_the_gate() {
    let Some(m) = mcp("python_sdk_client_and_server_through_the_gate") else {
        return;
    };
    let s = Scratch::new("gate-py");
    let policy = s.path("policy.yaml");
    std::fs::write(
        &policy,
        r#"version: "2.0"
tools:
  allow: [echo, add, big, ask_client]
  deny: [run_command]
schemas:
  echo:
    type: object
    properties:
      text: {type: string, maxLength: 20}
    required: [text]
"#,
    )
    .unwrap();
    let log = s.path("seen.log");
    let ev = s.path("events.jsonl");
    let server = fixture("py_server.py").display().to_string();
    let python = m.python.display().to_string();
    let plan = json!({
        "command": gated(&policy, &ev, &[], &[&python, &server]),
        "env": {"GATE_TEST_LOG": log.display().to_string()},
        "calls": [
            {"name": "echo", "arguments": {"text": "hello"}},
            {"name": "add", "arguments": {"a": 2, "b": 3}},
            {"name": "run_command", "arguments": {"command": "id", "api_token": "s3cr3t"}},
            {"name": "echo", "arguments": {"text": "far too long for the schema's limit"}},
            {"name": "big", "arguments": {"size": 8_000_000}},
            {"name": "ask_client", "arguments": {"question": "why?"}},
        ],
    });
    let r = client(&m, &s, plan);
    assert_eq!(
        r["tools"],
        json!(["echo", "add", "big", "ask_client"]),
        "run_command is hidden"
    );
    assert_eq!(call(&r, 0)["is_error"], false);
    assert_eq!(call(&r, 0)["text"], "hello");
    assert_eq!(call(&r, 1)["text"], "5");
    refused_by(&r, 2, "tools.deny");
    refused_by(&r, 3, "schemas.echo");
    assert_eq!(
        call(&r, 3)["meta"]["assay/refusal"]["schema_path"],
        "/properties/text/maxLength"
    );
    assert_eq!(call(&r, 4)["text"].as_str().unwrap().len(), 8_000_000);
    // Server-initiated requests (roots, sampling) and their answers pass.
    assert_eq!(call(&r, 5)["text"], "2 root(s); sampled: answer to why?");
    // The server saw exactly the allowed calls.
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "echo\nadd\nbig\nask_client\n"
    );
    let ev = events(&ev);
    let decisions: Vec<(&str, &str)> = ev
        .iter()
        .map(|e| (e["tool"].as_str().unwrap(), e["decision"].as_str().unwrap()))
        .collect();
    assert_eq!(
        decisions,
        [
            ("echo", "allow"),
            ("add", "allow"),
            ("run_command", "deny"),
            ("echo", "deny"),
            ("big", "allow"),
            ("ask_client", "allow")
        ]
    );
    assert!(
        ev.iter()
            .all(|e| e["kind"] == "tool_call" && e["schema"] == "assay.monitor.event/v1")
    );
    assert_eq!(ev[2]["arguments"]["api_token"], "<redacted>");
    assert_eq!(ev[3]["instance_path"], "/text");

    // --show-denied-tools: listed, still refused.
    std::fs::remove_file(&log).ok();
    let plan = json!({
        "command": gated(&policy, &s.path("events2.jsonl"), &["--show-denied-tools"], &[&python, &server]),
        "env": {"GATE_TEST_LOG": log.display().to_string()},
        "calls": [{"name": "run_command", "arguments": {"command": "id"}}],
    });
    let r = client(&m, &s, plan);
    assert_eq!(
        r["tools"],
        json!(["echo", "add", "run_command", "big", "ask_client"])
    );
    refused_by(&r, 0, "tools.deny");
    assert!(!log.exists(), "the server ran nothing");
}

#[test]
fn python_sdk_client_and_the_node_filesystem_server_through_the_gate() {
    let Some(m) = mcp("python_sdk_client_and_the_node_filesystem_server_through_the_gate") else {
        return;
    };
    let s = Scratch::new("gate-fs");
    let root = s.path("root");
    std::fs::create_dir_all(root.join("public")).unwrap();
    std::fs::create_dir_all(root.join("private")).unwrap();
    let root = root.canonicalize().unwrap();
    std::fs::write(root.join("private/keep.txt"), "untouched").unwrap();
    let policy = s.path("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            r#"version: "2.0"
tools:
  allow: [read_text_file, write_file, list_directory]
  deny: [move_file]
schemas:
  write_file:
    type: object
    properties:
      path: {{type: string, pattern: "^{}/public/[^/.][^/]*$"}}
      content: {{type: string}}
    required: [path, content]
"#,
            root.display()
        ),
    )
    .unwrap();
    let ev = s.path("events.jsonl");
    let p = |rel: &str| root.join(rel).display().to_string();
    let fs_server = m.fs_server.display().to_string();
    let root_arg = root.display().to_string();
    let plan = json!({
        "command": gated(&policy, &ev, &[], &[&fs_server, &root_arg]),
        "calls": [
            {"name": "write_file", "arguments": {"path": p("public/a.txt"), "content": "hello"}},
            {"name": "write_file", "arguments": {"path": p("private/evil.txt"), "content": "pwned"}},
            {"name": "write_file", "arguments": {"path": p("public/../private/keep.txt"), "content": "pwned"}},
            {"name": "move_file", "arguments": {"source": p("private/keep.txt"), "destination": p("public/stolen.txt")}},
            {"name": "read_text_file", "arguments": {"path": p("public/a.txt")}},
            {"name": "create_directory", "arguments": {"path": p("public/d")}},
        ],
    });
    let r = client(&m, &s, plan);
    let tools: Vec<&str> = r["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tools, ["read_text_file", "write_file", "list_directory"]);
    assert_eq!(call(&r, 0)["is_error"], false, "{}", call(&r, 0));
    assert_eq!(
        std::fs::read_to_string(root.join("public/a.txt")).unwrap(),
        "hello"
    );
    refused_by(&r, 1, "schemas.write_file");
    refused_by(&r, 2, "schemas.write_file");
    refused_by(&r, 3, "tools.deny");
    assert_eq!(call(&r, 4)["text"], "hello");
    refused_by(&r, 5, "tools.allow");
    // The server never saw the refused calls: nothing it would have done
    // happened.
    assert!(!root.join("private/evil.txt").exists());
    assert_eq!(
        std::fs::read_to_string(root.join("private/keep.txt")).unwrap(),
        "untouched"
    );
    assert!(!root.join("public/stolen.txt").exists());
    assert!(!root.join("public/d").exists());
    let ev = events(&ev);
    assert_eq!(ev.len(), 6);
    assert_eq!(ev.iter().filter(|e| e["decision"] == "deny").count(), 4);
}

/// Root: the same SDK client and FastMCP server through the full monitor
/// (kernel network rule in a fresh cgroup, the gate on the confined
/// server's stdio).
#[test]
fn python_sdk_through_the_full_monitor() {
    if !common::require_root("python_sdk_through_the_full_monitor") {
        return;
    }
    let Some(m) = mcp("python_sdk_through_the_full_monitor") else {
        return;
    };
    let s = Scratch::new("gate-full");
    let policy = s.path("policy.yaml");
    std::fs::write(
        &policy,
        "version: \"2.0\"\ntools:\n  allow: [echo, add]\n\
         runtime_monitor:\n  enabled: true\n  rules:\n    - id: no-ssh\n      type: net_connect\n      \
         match: {ports: [22]}\n      severity: high\n      action: deny\n",
    )
    .unwrap();
    let log = s.path("seen.log");
    let ev = s.path("events.jsonl");
    let command = vec![
        ASSAY.to_string(),
        "monitor".into(),
        "--policy".into(),
        policy.display().to_string(),
        "--events".into(),
        ev.display().to_string(),
        "--".into(),
        m.python.display().to_string(),
        fixture("py_server.py").display().to_string(),
    ];
    let r = client(
        &m,
        &s,
        json!({
            "command": command,
            "env": {"GATE_TEST_LOG": log.display().to_string()},
            "calls": [
                {"name": "add", "arguments": {"a": 40, "b": 2}},
                {"name": "big", "arguments": {"size": 10}},
            ],
        }),
    );
    assert_eq!(r["tools"], json!(["echo", "add"]));
    assert_eq!(call(&r, 0)["text"], "42");
    refused_by(&r, 1, "tools.allow");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "add\n");
    // The run's start and stop around the gate's two decisions, one stream.
    let kinds: Vec<String> = events(&ev)
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["start", "tool_call", "tool_call", "stop"]);
}
