//! `assay policy validate` and `assay policy check`, run as a user would.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policy")
}

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// `assay ARGS` with `stdin` (if any) as its input.
fn assay(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = common::assay()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn assay");
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        // assay may exit (e.g. on an invalid policy) before reading its input.
        match input.write_all(s.as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("writing stdin: {e}"),
            _ => {}
        }
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

struct Expectation {
    exit: i32,
    /// (line, column, text the message must contain)
    diagnostics: Vec<(usize, usize, String)>,
}

/// Reads `# expect-exit: N` and `# expect: LINE:COL: text` comments.
fn expectation(path: &Path) -> Expectation {
    let bytes = std::fs::read(path).unwrap();
    let content = String::from_utf8_lossy(&bytes);
    let mut exit = None;
    let mut diagnostics = Vec::new();
    for line in content.lines() {
        if let Some(n) = line.strip_prefix("# expect-exit: ") {
            exit = Some(n.trim().parse().unwrap());
        } else if let Some(rest) = line.strip_prefix("# expect: ") {
            let mut parts = rest.splitn(3, ':');
            let l = parts.next().unwrap().parse().unwrap();
            let c = parts.next().unwrap().parse().unwrap();
            let msg = parts.next().unwrap().trim().to_string();
            diagnostics.push((l, c, msg));
        }
    }
    Expectation {
        exit: exit.unwrap_or_else(|| panic!("{}: no `# expect-exit:` line", path.display())),
        diagnostics,
    }
}

#[test]
fn every_invalid_fixture_fails_with_its_exact_positions() {
    let files = yaml_files(&fixtures().join("invalid"));
    assert!(files.len() >= 30, "only {} invalid fixtures", files.len());
    let mut failures = Vec::new();
    for f in &files {
        let want = expectation(f);
        assert!(
            !want.diagnostics.is_empty(),
            "{}: no `# expect:` line",
            f.display()
        );
        let fs = f.to_str().unwrap();
        let out = assay(&["policy", "validate", fs], None);
        let stderr = text(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        if out.status.code() != Some(want.exit) {
            failures.push(format!(
                "{fs}: exit {:?}, want {}\n{stderr}",
                out.status.code(),
                want.exit
            ));
            continue;
        }
        // Exactly the expected diagnostics, each at its line and column.
        if lines.len() != want.diagnostics.len() {
            failures.push(format!(
                "{fs}: {} diagnostics, want {}:\n{stderr}",
                lines.len(),
                want.diagnostics.len()
            ));
            continue;
        }
        for (l, c, msg) in &want.diagnostics {
            let prefix = format!("{fs}:{l}:{c}: ");
            if !lines
                .iter()
                .any(|x| x.starts_with(&prefix) && x.contains(msg.as_str()))
            {
                failures.push(format!(
                    "{fs}: no diagnostic `{prefix}...{msg}...`; got:\n{stderr}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_valid_fixture_and_shipped_policy_validates() {
    let mut files = yaml_files(&fixtures().join("valid"));
    let shipped = yaml_files(&repo("policies"));
    assert!(
        shipped
            .iter()
            .any(|p| p.ends_with("production-hardened.yaml"))
    );
    files.extend(shipped);
    for f in &files {
        let out = assay(&["policy", "validate", f.to_str().unwrap()], None);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            f.display(),
            text(&out.stderr)
        );
        assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    }
    // All at once as well.
    let mut args = vec!["policy", "validate"];
    let strs: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(strs.iter().map(String::as_str));
    assert_eq!(assay(&args, None).status.code(), Some(0));
}

#[test]
fn validate_reports_every_file_and_fails_if_any_is_invalid() {
    let good = repo("policies/production-hardened.yaml");
    let bad = fixtures().join("invalid/unknown_rule_key.yaml");
    let out = assay(
        &[
            "--format",
            "json",
            "policy",
            "validate",
            good.to_str().unwrap(),
            bad.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema"], "assay.policy.validate/v1");
    assert_eq!(v["valid"], false);
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["valid"], true);
    assert_eq!(files[0]["version"], "2.0");
    assert_eq!(files[0]["summary"]["file_rules"], 1);
    assert_eq!(files[1]["valid"], false);
    let d = &files[1]["diagnostics"][0];
    assert!(d["line"].as_u64().unwrap() > 0);
    assert!(d["message"].as_str().unwrap().contains("actoin"));
    // The diagnostics are on stderr too, whatever the format.
    assert!(text(&out.stderr).contains("did you mean `action`"));
}

#[test]
fn unreadable_inputs_fail_cleanly_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("assay-policy-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let huge = dir.join("huge.yaml");
    let mut big = String::from("version: \"2.0\"\nmetadata:\n  description: \"");
    big.push_str(&"x".repeat(1024 * 1024));
    big.push_str("\"\n");
    std::fs::write(&huge, big).unwrap();
    let empty = dir.join("empty.yaml");
    std::fs::write(&empty, "").unwrap();
    let latin1 = dir.join("latin1.yaml");
    std::fs::write(&latin1, b"version: \"2.0\"\nmetadata:\n  name: caf\xe9\n").unwrap();
    let missing = dir.join("missing.yaml");
    for (path, code, msg) in [
        (missing.clone(), 2, "cannot open"),
        (dir.clone(), 2, "is a directory"),
        (huge.clone(), 2, "larger than"),
        (empty.clone(), 2, ":1:1: policy is empty"),
        (latin1.clone(), 2, ":3:12: file is not valid UTF-8"),
    ] {
        let p = path.to_str().unwrap();
        let out = assay(&["policy", "validate", p], None);
        assert_eq!(out.status.code(), Some(code), "{p}: {}", text(&out.stderr));
        let e = text(&out.stderr);
        assert!(e.starts_with(p) && e.contains(msg), "{p}: {e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(assay(&["policy", "validate"], None).status.code(), Some(2));
    assert_eq!(assay(&["policy", "check"], None).status.code(), Some(2));
}

fn check(policy: &str, input: &str) -> (Option<i32>, Vec<serde_json::Value>, String) {
    let p = repo(policy);
    let out = assay(
        &["policy", "check", "--policy", p.to_str().unwrap()],
        Some(input),
    );
    let lines = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    (out.status.code(), lines, text(&out.stderr))
}

const HARDENED: &str = "policies/production-hardened.yaml";

#[test]
fn check_allows_calls_within_policy() {
    let (code, d, err) = check(
        HARDENED,
        "{\"tool\":\"read_file\",\"arguments\":{\"path\":\"/data/a.txt\"},\"id\":1}\n\n\
         {\"tool\":\"list_directory\",\"arguments\":{\"path\":\"/\"}}\n",
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(d.len(), 2);
    assert_eq!(d[0]["allowed"], true);
    assert_eq!(d[0]["id"], 1);
    assert_eq!(d[0]["line"], 1);
    assert_eq!(d[0]["reasons"], serde_json::json!([]));
    // Blank lines are skipped but still counted.
    assert_eq!(d[1]["line"], 3);
    assert_eq!(d[1]["tool"], "list_directory");
}

#[test]
fn check_denies_by_list() {
    let (code, d, _) = check(HARDENED, "{\"tool\":\"write_file\",\"arguments\":{}}\n");
    assert_eq!(code, Some(3));
    assert_eq!(d[0]["allowed"], false);
    assert_eq!(d[0]["reasons"][0]["kind"], "not_in_allow_list");
    let (code, d, _) = check(
        "policies/egress-lockdown.yaml",
        "{\"tool\":\"anything\",\"arguments\":{}}\n{\"tool\":\"run_shell\",\"arguments\":{\"cmd\":\"id\"}}\n",
    );
    assert_eq!(code, Some(3));
    assert_eq!(d[0]["allowed"], true);
    assert_eq!(d[1]["reasons"][0]["kind"], "deny_list");
}

#[test]
fn check_denies_by_schema_with_keyword_and_paths() {
    let (code, d, _) = check(
        HARDENED,
        "{\"tool\":\"read_file\",\"arguments\":{\"path\":\"/etc/shadow\"}}\n\
         {\"tool\":\"read_file\",\"arguments\":{\"path\":\"/data/x\",\"mode\":\"w\"}}\n",
    );
    assert_eq!(code, Some(3));
    let r = &d[0]["reasons"][0];
    assert_eq!(r["kind"], "schema");
    assert_eq!(r["keyword"], "pattern");
    assert_eq!(r["instance_path"], "/path");
    assert_eq!(r["schema_path"], "/properties/path/pattern");
    let r = &d[1]["reasons"][0];
    assert_eq!(r["keyword"], "additionalProperties");
    assert_eq!(r["schema_path"], "/additionalProperties");
}

#[test]
fn check_malformed_line_exits_2_naming_the_line() {
    let (code, d, err) = check(
        HARDENED,
        "{\"tool\":\"list_directory\",\"arguments\":{}}\n{\"tool\": \"read_file\", \"arguments\": \n",
    );
    assert_eq!(code, Some(2));
    assert_eq!(d.len(), 1, "decisions before the bad line are kept");
    assert!(err.contains("stdin line 2"), "{err}");
    let (code, _, err) = check(HARDENED, "{\"tool\":\"read_file\",\"argumnets\":{}}\n");
    assert_eq!(code, Some(2));
    assert!(
        err.contains("stdin line 1") && err.contains("argumnets"),
        "{err}"
    );
}

#[test]
fn check_with_invalid_policy_exits_2() {
    let (code, d, err) = check(
        "tests/fixtures/policy/invalid/unknown_rule_key.yaml",
        "{\"tool\":\"x\"}\n",
    );
    assert_eq!(code, Some(2));
    assert!(d.is_empty());
    assert!(err.contains("unknown_rule_key.yaml:"), "{err}");
}
