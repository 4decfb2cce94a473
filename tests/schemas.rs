//! Every JSON and JSON-lines output names its schema in a `schema` field
//! (`assay.<output>/v<N>`), and validates against the published file
//! `schemas/assay.<output>.v<N>.json`: real outputs of every command.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Scratch, assay, assert_exit, run_assay};
use serde_json::Value;

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

/// The published schema a document names (`assay.x/v1` ->
/// `schemas/assay.x.v1.json`), compiled.
fn validator_for(doc: &Value) -> jsonschema::Validator {
    let name = doc["schema"]
        .as_str()
        .unwrap_or_else(|| panic!("no `schema` field: {doc}"));
    let file = schemas_dir().join(format!("{}.json", name.replace('/', ".")));
    let text = fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e} (schema {name} not published)", file.display()));
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("{}: does not compile: {e}", file.display()))
}

/// `doc` validates against the schema it names; returns that schema's name.
#[track_caller]
fn assert_valid(doc: &Value) -> String {
    let v = validator_for(doc);
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{}:\n{}\n{doc:#}",
        doc["schema"],
        errors.join("\n")
    );
    doc["schema"].as_str().unwrap().to_string()
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn every_published_schema_compiles_and_is_named_by_its_file() {
    let mut n = 0;
    for e in fs::read_dir(schemas_dir()).unwrap() {
        let path = e.unwrap().path();
        let schema: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        jsonschema::validator_for(&schema).expect("compiles");
        // The `schema` constant inside (one per variant for event lines)
        // is the file's name.
        let text = schema.to_string();
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let (name, version) = stem.rsplit_once('.').unwrap();
        assert!(
            text.contains(&format!("\"const\":\"{name}/{version}\"")),
            "{}",
            path.display()
        );
        n += 1;
    }
    assert_eq!(n, 8);
}

#[cfg(target_os = "linux")]
#[test]
fn doctor_json_validates_with_and_without_a_policy() {
    let s = Scratch::new("schemas-doctor");
    let pol = s.file(
        "p.yaml",
        "version: \"2.0\"\nruntime_monitor:\n  enabled: true\n  rules:\n    - id: no-ssh\n      type: net_connect\n      match: {ports: [22]}\n      severity: high\n      action: deny\n",
    );
    let out = run_assay(&["doctor", "--format", "json"]);
    assert_exit(&out, 0);
    let doc = json(&out.stdout);
    assert_eq!(assert_valid(&doc), "assay.doctor/v1");
    let out = run_assay(&[
        "doctor",
        "--format",
        "json",
        "--policy",
        pol.to_str().unwrap(),
    ]);
    let with = json(&out.stdout);
    assert_eq!(assert_valid(&with), "assay.doctor/v1");
    // The check can fail: an ability of another kind, a bad boot parameter.
    let v = validator_for(&doc);
    let mut bad = doc.clone();
    bad["can_enforce"][0]["kind"] = "wish".into();
    assert!(!v.is_valid(&bad));
    let mut bad = doc.clone();
    bad["kernel"]["bpf_lsm"]["boot_parameter"] = "bpf".into();
    assert!(!v.is_valid(&bad));
    let mut bad = with.clone();
    bad["policy"].as_object_mut().unwrap().remove("ready");
    assert!(!v.is_valid(&bad));
}

#[test]
fn discover_json_validates_and_a_broken_one_does_not() {
    let home = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/discovery/home-all");
    let out = run_assay(&[
        "discover",
        "--home",
        home.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_exit(&out, 0);
    let doc = json(&out.stdout);
    assert_eq!(assert_valid(&doc), "assay.discover/v1");
    // The check can fail: a wrong severity, a missing field.
    let v = validator_for(&doc);
    let mut bad = doc.clone();
    bad["findings"][0]["severity"] = "severe".into();
    assert!(!v.is_valid(&bad));
    let mut bad = doc.clone();
    bad["servers"][0].as_object_mut().unwrap().remove("id");
    assert!(!v.is_valid(&bad));
}

#[test]
fn policy_validate_and_check_outputs_validate() {
    let s = Scratch::new("schemas-policy");
    let good = s.file(
        "good.yaml",
        "version: \"2.0\"\ntools:\n  allow: [read_file]\n  deny: [exec]\nschemas:\n  read_file:\n    type: object\n    required: [path]\n",
    );
    let bad = s.file("bad.yaml", "version: \"2.0\"\nbogus: 1\n");
    let out = run_assay(&[
        "policy",
        "validate",
        "--format",
        "json",
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert_exit(&out, 2);
    let doc = json(&out.stdout);
    assert_eq!(assert_valid(&doc), "assay.policy.validate/v1");

    let mut child = assay()
        .args(["policy", "check", "--policy", good.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"{\"tool\": \"read_file\", \"arguments\": {\"path\": \"/x\"}, \"id\": 1}\n\
              {\"tool\": \"exec\", \"arguments\": {}}\n\
              {\"tool\": \"read_file\", \"arguments\": {}}\n\
              {\"tool\": \"other\", \"arguments\": {}}\n",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 3);
    let lines = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(lines.len(), 4);
    for l in &lines {
        assert_eq!(assert_valid(l), "assay.policy.check/v1");
    }
    let kinds: Vec<&Value> = lines.iter().map(|l| &l["reasons"][0]["kind"]).collect();
    assert_eq!(kinds[1], "deny_list");
    assert_eq!(kinds[2], "schema");
    assert_eq!(kinds[3], "not_in_allow_list");
}

#[test]
fn kill_json_incident_and_capture_files_validate() {
    let s = Scratch::new("schemas-kill");
    let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
    let out = run_assay(&[
        "kill",
        "--pid",
        &child.id().to_string(),
        "--mode",
        "immediate",
        "--capture-state",
        "--output",
        s.path("inc").to_str().unwrap(),
        "--format",
        "json",
    ]);
    child.wait().unwrap();
    assert_exit(&out, 0);
    let doc = json(&out.stdout);
    assert_eq!(assert_valid(&doc), "assay.incident/v1");
    let dir = PathBuf::from(doc["incident_dir"].as_str().expect("incident written"));
    let incident = json(&fs::read(dir.join("incident.json")).unwrap());
    assert_eq!(assert_valid(&incident), "assay.incident/v1");
    let mut captures = 0;
    for e in fs::read_dir(dir.join("processes")).unwrap() {
        let c = json(&fs::read(e.unwrap().path()).unwrap());
        assert_eq!(assert_valid(&c), "assay.incident.process/v1");
        captures += 1;
    }
    assert!(captures >= 1);
    // A target that does not exist: the report of a failed kill validates too.
    let out = run_assay(&["kill", "--pid", "2147483647", "--format", "json"]);
    assert_exit(&out, 30);
    assert_valid(&json(&out.stdout));
}

/// Root tier: the monitor's event lines and exit summary, from a real run.
/// Network and kill events are produced here (cgroup hooks load on this
/// host); file and tamper events need the BPF LSM (the VM), so their
/// variants of the event schema are not exercised by this test.
#[cfg(all(target_os = "linux", feature = "monitor"))]
#[test]
fn monitor_events_and_summary_validate() {
    if !common::require_root("monitor_events_and_summary_validate") {
        return;
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let s = Scratch::new("schemas-monitor");
    let incidents = s.0.join("incidents");
    let pol = s.file(
        "p.yaml",
        &format!(
            "version: \"2.0\"\nkill_switch:\n  enabled: true\n  capture_state: true\n  output_dir: {}\n\
             runtime_monitor:\n  enabled: true\n  rules:\n\
             \x20   - id: exfil\n      type: net_connect\n      match: {{ports: [{port}]}}\n      severity: critical\n      action: trigger_kill\n",
            incidents.display()
        ),
    );
    let events = s.0.join("events.jsonl");
    let out = common::run(
        assay()
            .arg("monitor")
            .arg("--policy")
            .arg(&pol)
            .arg("--events")
            .arg(&events)
            .args(["--format", "json", "--", "bash", "-c"])
            // `; exit`: bash must not exec sleep, so the connecting
            // process is still bash when its context is read.
            .arg(format!(
                "echo x > /dev/tcp/127.0.0.1/{port}; sleep 300; exit"
            )),
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(137), "{err}");
    let evs = json_lines(&fs::read_to_string(&events).unwrap());
    let mut kinds = Vec::new();
    for e in &evs {
        assert_eq!(assert_valid(e), "assay.monitor.event/v1");
        kinds.push(e["kind"].as_str().unwrap().to_string());
    }
    assert!(kinds.iter().any(|k| k == "net_connect"), "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "kill"), "{kinds:?}");
    // A run starts and stops in the stream, every line numbered in order.
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("start"),
        "{kinds:?}"
    );
    assert_eq!(kinds.last().map(String::as_str), Some("stop"), "{kinds:?}");
    let seqs: Vec<u64> = evs.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..evs.len() as u64).collect::<Vec<_>>());
    // The decision names bash, its argv and its cgroup, and the policy's digest.
    let net = evs.iter().find(|e| e["kind"] == "net_connect").unwrap();
    assert!(
        net["process"]["exe"].as_str().unwrap().ends_with("/bash"),
        "{net}"
    );
    assert_eq!(net["process"]["argv"][0], "bash", "{net}");
    assert!(
        net["cgroup"]["path"]
            .as_str()
            .unwrap()
            .contains("assay-monitor-"),
        "{net}"
    );
    assert_eq!(
        net["policy"]["sha256"].as_str().unwrap(),
        assay::sha256::hex(&fs::read(&pol).unwrap())
    );
    let summary = err
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["kind"] == "summary")
        .unwrap_or_else(|| panic!("no JSON summary on stderr: {err}"));
    assert_eq!(assert_valid(&summary), "assay.monitor.summary/v1");
    // The incident the rule's kill wrote.
    let kill = evs.iter().find(|e| e["kind"] == "kill").unwrap();
    let dir = PathBuf::from(kill["incident"].as_str().expect("incident"));
    assert_valid(&json(&fs::read(dir.join("incident.json")).unwrap()));
}

/// The gate's `tool_call` events: `--gate-only` (no privileges) writes them
/// alone; wrapper mode through the monitor's stream (root) adds `seq`,
/// `host` and `policy`, and the `stop` event carries the gate's counts.
#[test]
fn tool_call_events_validate() {
    let s = Scratch::new("schemas-gate");
    let pol = s.file(
        "p.yaml",
        "version: \"2.0\"\ntools:\n  allow: [echo]\n  deny: [exec]\nschemas:\n  echo:\n    type: object\n    properties:\n      n: {type: integer}\n",
    );
    let calls = [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"n":1}}}"#,
        r#"{"jsonrpc":"2.0","id":"b","method":"tools/call","params":{"name":"echo","arguments":{"n":"x"}}}"#,
        r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"exec"}}"#,
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"other"}}"#,
    ];
    // Wrapper mode needs a kernel rule, or the gate runs alone.
    let full = s.file(
        "full.yaml",
        &format!(
            "{}runtime_monitor:\n  enabled: true\n  rules:\n    - id: no-ssh\n      type: net_connect\n      \
             match: {{ports: [22]}}\n      severity: high\n      action: deny\n",
            fs::read_to_string(&pol).unwrap()
        ),
    );
    let mut modes: Vec<(&[&str], &Path)> = vec![(&["--gate-only"], &pol)];
    if common::require_root("tool_call_events_validate (wrapper mode)") {
        modes.push((&[], &full));
    }
    for (flags, pol) in modes {
        let events = s.0.join(format!("events-{}.jsonl", flags.len()));
        let mut child = assay()
            .arg("monitor")
            .args(flags)
            .arg("--policy")
            .arg(pol)
            .arg("--events")
            .arg(&events)
            .args(["--", "cat"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        for c in calls {
            writeln!(stdin, "{c}").unwrap();
        }
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{flags:?}: {err}");
        let evs = json_lines(&fs::read_to_string(&events).unwrap());
        let calls: Vec<&Value> = evs.iter().filter(|e| e["kind"] == "tool_call").collect();
        assert_eq!(calls.len(), 4, "{flags:?}: {evs:?}");
        for e in &evs {
            assert_eq!(assert_valid(e), "assay.monitor.event/v1");
        }
        let rules: Vec<&Value> = calls.iter().map(|e| &e["rule"]).collect();
        assert_eq!(
            rules,
            [
                &Value::Null,
                &"schemas.echo".into(),
                &"tools.deny".into(),
                &"tools.allow".into()
            ]
        );
        if flags.is_empty() {
            let stop = evs.last().unwrap();
            assert_eq!(stop["kind"], "stop", "{evs:?}");
            assert_eq!(
                stop["summary"]["gate"],
                serde_json::json!({"calls": 4, "denied": 3, "killed": false})
            );
        }
    }
}
