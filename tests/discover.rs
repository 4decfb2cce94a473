//! `assay discover` end to end: the built binary against fixture homes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use assay::output::discovery::json::ReportV1;
use common::{assay, assert_exit, run, run_assay};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/discovery")
}

fn copy_dir(from: &Path, to: &Path, home: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst, home);
        } else {
            // Fixtures name absolute project paths as @HOME@.
            let text = fs::read(e.path()).unwrap();
            let text = String::from_utf8(text)
                .unwrap()
                .replace("@HOME@", home.to_str().unwrap());
            fs::write(dst, text).unwrap();
        }
    }
}

/// A private copy of a fixture home (so absolute paths inside it are real).
fn fixture_home(name: &str) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join(name), t.path(), t.path());
    t
}

fn run_all(home: &Path, extra: &[&str]) -> Output {
    let sys = fixtures().join("sysroot");
    let mut args = vec![
        "discover",
        "--home",
        home.to_str().unwrap(),
        "--system-root",
        sys.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run_assay(&args)
}

fn json_report(home: &Path) -> ReportV1 {
    let out = run_all(home, &["--format", "json"]);
    assert_exit(&out, 0);
    serde_json::from_slice(&out.stdout).expect("JSON output matches the v1 DTOs")
}

// Fake credentials present in the fixture (valid shapes, fake bodies).
const SECRETS: &[&str] = &[
    "ghp_FAKE0fake0FAKE0fake0FAKE0fake0FAKE0f",
    "ghp_TEST1test1TEST1test1TEST1test1TEST1t",
    "sk-proj-Fake0Key0For0Tests0Only0abc123XYZ0000",
    "Sup3rS3cretPw0rd",
    "BSAplaintextkey1234567890",
    "ctx7-literal-key-0123456789",
];

#[test]
fn every_client_is_found_with_exact_servers() {
    let home = fixture_home("home-all");
    let r = json_report(home.path());
    assert_eq!(r.schema, "assay.discover/v1");

    let ids: BTreeSet<&str> = r.servers.iter().map(|s| s.id.as_str()).collect();
    let expected: BTreeSet<&str> = [
        "antigravity/ag-local",
        "claude-code/acme-search",
        "claude-code/corp-proxy",
        "claude-code/db",
        "claude-code/linear-http",
        "claude-code/playwright",
        "claude-code/sentry",
        "claude-desktop/everything",
        "claude-desktop/filesystem",
        "claude-desktop/github",
        "claude-desktop/memory",
        "cline/brave",
        "codex/remote",
        "codex/sqlite",
        "continue/sqlite-continue",
        "copilot-cli/context7",
        "crush/crush-http",
        "cursor/remote-insecure",
        "cursor/ws-tool",
        "docker-mcp/duckduckgo",
        "docker-mcp/fetch",
        "gemini-cli/stream",
        "goose/github-goose",
        "goose/goose-remote",
        "jetbrains-copilot/jb",
        "junie/managed-fs",
        "kiro/aws-docs",
        "kiro/fetch",
        "opencode/oc-local",
        "opencode/oc-remote",
        "roo-code/roo-sse",
        "vscode/gh-remote",
        "vscode/time",
        "vscode/ws-server",
        "windsurf/linear",
        "zed/zed-new",
        "zed/zed-old",
    ]
    .into();
    assert_eq!(ids, expected);

    // Every client in the table has at least one config in the fixture.
    let found_clients: BTreeSet<&str> = r
        .sources
        .iter()
        .filter(|s| s.status != "absent")
        .map(|s| s.client.as_str())
        .collect();
    for c in assay::discovery::clients::CLIENTS {
        assert!(
            found_clients.contains(c.id),
            "no fixture config for client {}",
            c.id
        );
    }

    let server = |id: &str| r.servers.iter().find(|s| s.id == id).unwrap();
    // Same server in two clients: one server, both places.
    let fs_server = server("claude-desktop/filesystem");
    let clients: Vec<&str> = fs_server
        .locations
        .iter()
        .map(|l| l.client.as_str())
        .collect();
    assert_eq!(clients, ["claude-desktop", "cursor"]);
    assert_eq!(fs_server.aliases, ["cursor/filesystem"]);
    assert_eq!(fs_server.key, "@modelcontextprotocol/server-filesystem");
    // Transports of each shape.
    let transport = |id: &str| server(id).transport.as_str().to_string();
    assert_eq!(transport("cursor/remote-insecure"), "sse");
    assert_eq!(transport("gemini-cli/stream"), "streamable-http");
    assert_eq!(transport("claude-code/linear-http"), "streamable-http");
    assert_eq!(transport("vscode/ws-server"), "ws");
    assert_eq!(transport("windsurf/linear"), "sse");
    assert_eq!(transport("codex/remote"), "http");
    assert_eq!(transport("docker-mcp/fetch"), "other");
    // Placeholders are kept as written.
    let gh = server("vscode/gh-remote");
    assert_eq!(gh.headers[0].value, "Bearer ${input:github_token}");
    // ...except the plugin's own root, which Claude Code expands before it
    // launches (so the launch matches the running process).
    assert_eq!(
        server("claude-code/acme-search").args,
        [format!(
            "{}/.claude/plugins/cache/acme/tools/dist/acme-search-mcp.js",
            home.path().display()
        )]
    );
    // Disabled servers.
    assert!(server("kiro/fetch").disabled);
    assert!(server("goose/goose-remote").disabled);
    assert!(!server("kiro/aws-docs").disabled);
    // The assay monitor wrapper makes a server managed; the wrapped server is reported.
    let m = server("junie/managed-fs");
    assert!(m.managed);
    assert_eq!(m.managed_by, ["monitor_wrapper"]);
    assert_eq!(m.key, "@modelcontextprotocol/server-filesystem");
    assert!(m.locations[0].monitor_wrapped);
    // Claude Code local scope from the projects map.
    let db = server("claude-code/db");
    assert_eq!(db.locations[0].scope, "local");
    assert_eq!(
        db.locations[0].project.as_deref(),
        Some(home.path().join("proj").to_str().unwrap())
    );
    // Managed (system-wide) scope.
    assert_eq!(
        server("claude-code/corp-proxy").locations[0].scope,
        "managed"
    );

    // Source statuses.
    let status_of = |suffix: &str| {
        r.sources
            .iter()
            .find(|s| s.path.ends_with(suffix))
            .unwrap_or_else(|| panic!("no source {suffix}"))
    };
    let q = status_of(".aws/amazonq/mcp.json");
    assert_eq!(q.status, "parse_error");
    let e = q.error.as_ref().unwrap();
    assert_eq!((e.line, e.column), (Some(5), Some(1)));
    assert_eq!(status_of(".lmstudio/mcp.json").status, "unreadable");
    let empty = status_of(".config/Code/User/mcp.json");
    assert_eq!((empty.status.as_str(), empty.servers), ("found", 0));
    assert_eq!(status_of(".claude.json").servers, 3);
    assert_eq!(status_of(".cursor/mcp.json").status, "found");
    assert!(
        r.sources.iter().any(|s| s.status == "absent"),
        "absent user paths are listed"
    );

    // Project roots: from the projects map (inside and outside the home) and
    // VS Code workspace storage (percent-decoded).
    let roots: BTreeMap<&str, (&str, bool)> = r
        .project_roots
        .iter()
        .map(|p| (p.path.as_str(), (p.origin.as_str(), p.scanned)))
        .collect();
    let proj = home.path().join("proj");
    let ws = home.path().join("ws proj");
    assert_eq!(roots[proj.to_str().unwrap()], ("claude-code", true));
    assert_eq!(roots["/nonexistent/elsewhere"], ("claude-code", false));
    assert_eq!(roots[ws.to_str().unwrap()], ("workspace-storage", true));
    assert_eq!(r.scan.processes.status, "not_scanned");
}

#[test]
fn findings_are_exact() {
    let home = fixture_home("home-all");
    let r = json_report(home.path());
    let mut got: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for f in &r.findings {
        got.entry((f.rule.clone(), f.severity.clone()))
            .or_default()
            .push(
                f.server_id
                    .clone()
                    .unwrap_or_else(|| f.path.clone().unwrap()),
            );
    }
    let ids = |rule: &str, sev: &str| {
        let mut v = got
            .get(&(rule.to_string(), sev.to_string()))
            .cloned()
            .unwrap_or_default();
        v.sort();
        v
    };
    assert_eq!(
        ids("no_auth", "high"),
        [
            "cursor/remote-insecure",
            "vscode/ws-server",
            "windsurf/linear"
        ]
    );
    assert_eq!(ids("no_auth", "low"), ["antigravity/ag-local"]);
    assert_eq!(
        ids("insecure_transport", "high"),
        ["cursor/remote-insecure"]
    );
    assert_eq!(
        ids("secret_in_config", "high"),
        [
            "claude-code/db",
            "claude-desktop/github",
            "codex/sqlite",
            "goose/github-goose"
        ]
    );
    assert_eq!(
        ids("secret_in_config", "medium"),
        ["cline/brave", "copilot-cli/context7"]
    );
    assert_eq!(
        ids("disabled_server", "info"),
        ["goose/goose-remote", "kiro/fetch"]
    );
    let unmanaged = ids("unmanaged_server", "medium");
    assert_eq!(unmanaged.len(), 34);
    for not in ["junie/managed-fs", "kiro/fetch", "goose/goose-remote"] {
        assert!(
            !unmanaged.iter().any(|u| u == not),
            "{not} must not be unmanaged"
        );
    }
    let unpinned = ids("unpinned_package", "low");
    assert!(
        unpinned.contains(&"claude-desktop/github".to_string()),
        "docker image without tag"
    );
    assert!(
        !unpinned.contains(&"claude-desktop/memory".to_string()),
        "pinned npm version"
    );
    assert!(!unpinned.contains(&"kiro/fetch".to_string()), "disabled");
    let source_errors = ids("source_error", "low");
    assert_eq!(source_errors.len(), 2);
    assert!(source_errors[0].ends_with(".aws/amazonq/mcp.json"));
    assert!(source_errors[1].ends_with(".lmstudio/mcp.json"));
    // Evidence is redacted.
    let gh = r
        .findings
        .iter()
        .find(|f| {
            f.rule == "secret_in_config" && f.server_id.as_deref() == Some("claude-desktop/github")
        })
        .unwrap();
    assert_eq!(
        gh.evidence.as_deref(),
        Some("env GITHUB_PERSONAL_ACCESS_TOKEN = ghp_****")
    );
    assert_eq!(r.summary.unmanaged, 34);
}

#[test]
fn no_secret_is_printed_in_any_format() {
    let home = fixture_home("home-all");
    for format in ["table", "json", "sarif"] {
        for verbose in [false, true] {
            let mut extra = vec!["--format", format];
            if verbose {
                extra.push("-v");
            }
            let out = run_all(home.path(), &extra);
            assert_eq!(out.status.code(), Some(0));
            let text = String::from_utf8_lossy(&out.stdout);
            let err = String::from_utf8_lossy(&out.stderr);
            for s in SECRETS {
                assert!(!text.contains(s), "{format}: secret {s} printed");
                assert!(!err.contains(s), "{format}: secret {s} on stderr");
                // Not even a long piece of it.
                assert!(
                    !text.contains(&s[s.len() - 10..]),
                    "{format}: tail of {s} printed"
                );
            }
        }
    }
}

#[test]
fn gates_and_exit_codes() {
    let home = fixture_home("home-all");
    let code = |extra: &[&str]| {
        run_all(home.path(), &[&["--format", "json"], extra].concat())
            .status
            .code()
    };
    assert_eq!(code(&[]), Some(0), "no gate: exit 0 despite findings");
    assert_eq!(code(&["--fail-on", "unmanaged_server"]), Some(10));
    assert_eq!(code(&["--fail-on", "no_auth"]), Some(11));
    assert_eq!(
        code(&["--fail-on", "no_auth", "--fail-on", "unmanaged_server"]),
        Some(10)
    );
    assert_eq!(code(&["--fail-on", "secret_in_config"]), Some(4));
    assert_eq!(code(&["--fail-on", "high"]), Some(4));
    assert_eq!(code(&["--fail-on-severity", "medium"]), Some(4));
    assert_eq!(code(&["--fail-on", "critical"]), Some(0));
    // Every accepted value can trip: low and info have codes of their own.
    assert_eq!(code(&["--fail-on", "unpinned_package"]), Some(6));
    assert_eq!(code(&["--fail-on", "source_error"]), Some(6));
    assert_eq!(code(&["--fail-on", "disabled_server"]), Some(7));
    assert_eq!(code(&["--fail-on", "low"]), Some(4), "worst finding wins");
    assert_eq!(code(&["--fail-on", "info"]), Some(4));
    assert_eq!(code(&["--fail-on-severity", "low"]), Some(4));
    assert_eq!(code(&["--fail-on", "any"]), Some(4));
    assert_eq!(
        code(&["--fail-on", "high", "--fail-on", "unmanaged_server"]),
        Some(4)
    );
    let bad = run_all(home.path(), &["--fail-on", "sometimes"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown --fail-on value `sometimes`"));
    assert!(bad.stdout.is_empty(), "nothing half-written");
    let missing = run_assay(&["discover", "--home", "/nonexistent/home/dir"]);
    assert_eq!(missing.status.code(), Some(2));
}

/// A config assay cannot parse hides its servers: a gate on unmanaged
/// servers alone passes, so `source_error` must be able to fail the run.
#[test]
fn an_unreadable_config_can_fail_the_gate() {
    let home = tempfile::tempdir().unwrap();
    fs::create_dir(home.path().join(".cursor")).unwrap();
    fs::write(
        home.path().join(".cursor/mcp.json"),
        "{\"mcpServers\": {\"x\": {\"command\": \"npx\",}\n",
    )
    .unwrap();
    let code = |extra: &[&str]| {
        let h = home.path().to_str().unwrap();
        run_assay(&[&["discover", "--home", h, "--format", "json"], extra].concat())
            .status
            .code()
    };
    assert_eq!(code(&["--fail-on", "unmanaged_server"]), Some(0));
    let gated = ["--fail-on", "unmanaged_server", "--fail-on", "source_error"];
    assert_eq!(code(&gated), Some(6));
    assert_eq!(code(&["--fail-on", "low"]), Some(6));
    assert_eq!(code(&["--fail-on", "info"]), Some(6));
    assert_eq!(code(&["--fail-on-severity", "low"]), Some(6));
    assert_eq!(code(&["--fail-on", "any"]), Some(6));
    assert_eq!(code(&["--fail-on", "medium"]), Some(0));
}

#[test]
fn sarif_is_valid_against_the_official_schema() {
    let home = fixture_home("home-all");
    let out = run_all(home.path(), &["--format", "sarif"]);
    assert_eq!(out.status.code(), Some(0));
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut schema: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/sarif/sarif-schema-2.1.0.json"),
        )
        .unwrap(),
    )
    .unwrap();
    // Known erratum of the published schema: the `language` patterns have a
    // stray `]`, which ECMA-262 reads as a literal but the validator's
    // meta-schema check rejects. Escaping it keeps the meaning exactly.
    fn fix(v: &mut serde_json::Value, n: &mut usize) {
        const BAD: &str = "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$";
        match v {
            serde_json::Value::String(s) if s == BAD => {
                *s = "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}\\]?$".into();
                *n += 1;
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| fix(x, n)),
            serde_json::Value::Object(o) => o.values_mut().for_each(|x| fix(x, n)),
            _ => {}
        }
    }
    let mut fixed = 0;
    fix(&mut schema, &mut fixed);
    assert!(fixed > 0, "the erratum is in the vendored schema");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "SARIF invalid:\n{}", errors.join("\n"));
    // A broken document is rejected, so the check can fail.
    let mut broken = sarif.clone();
    broken["runs"][0]["results"][0]["level"] = "severe".into();
    assert!(!validator.is_valid(&broken));

    let run = &sarif["runs"][0];
    assert_eq!(sarif["version"], "2.1.0");
    let root = run["originalUriBaseIds"]["DISCOVERY_ROOT"]["uri"]
        .as_str()
        .unwrap();
    assert!(root.starts_with("file:///"), "{root}");
    let results = run["results"].as_array().unwrap();
    assert!(
        results
            .iter()
            .all(|r| r["ruleId"].as_str().unwrap().starts_with("discovery/"))
    );
    let unmanaged = results
        .iter()
        .find(|r| {
            r["ruleId"] == "discovery/unmanaged-server"
                && r["properties"]["mcp_uri"] == "mcp://claude-desktop/filesystem"
        })
        .expect("unmanaged filesystem server");
    let loc = &unmanaged["locations"][0]["physicalLocation"]["artifactLocation"];
    assert_eq!(loc["uriBaseId"], "DISCOVERY_ROOT");
    assert_eq!(loc["uri"], ".config/Claude/claude_desktop_config.json");
    assert_eq!(
        unmanaged["properties"]["server_cmd"],
        "npx -y @modelcontextprotocol/server-filesystem /home/u/docs"
    );
    assert_eq!(unmanaged["level"], "warning");
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for id in [
        "discovery/unmanaged-server",
        "discovery/no-auth",
        "discovery/secret-in-config",
    ] {
        assert!(rules.contains(&id), "{id}");
    }
    // A finding about the Cursor copy of the server points at Cursor.
    assert!(results.iter().any(
        |r| r["properties"]["mcp_uri"] == "mcp://cursor/remote-insecure"
            && r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                == ".cursor/mcp.json"
            && r["ruleId"] == "discovery/insecure-transport"
    ));
}

#[test]
fn table_is_aligned_and_plain_without_colour() {
    let home = fixture_home("home-all");
    let out = run_all(home.path(), &["--no-color"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\x1b'), "no escape codes with --no-color");
    assert!(
        text.starts_with(&format!(
            "scanned home {} (linux+macos+windows path conventions",
            home.path().display()
        )),
        "{text}"
    );
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .starts_with("MCP SERVERS: 37 (0 running, 34 unmanaged)")
    );
    // Column alignment: every server row has its TRANSPORT at the header's offset.
    let lines: Vec<&str> = text.lines().collect();
    let h = lines
        .iter()
        .position(|l| l.trim_start().starts_with("ID "))
        .unwrap();
    let col = lines[h].find("TRANSPORT").unwrap();
    for l in &lines[h + 1..h + 38] {
        let before = &l[..col];
        assert!(before.ends_with("  "), "misaligned: {l}");
        assert!(!l[col..].starts_with(' '), "misaligned: {l}");
    }
    assert!(text.contains("parse_error  amazon-q"));
    // NO_COLOR in the environment works too (stdout is a pipe here anyway).
    let out = run(assay().env("NO_COLOR", "1").args([
        "discover",
        "--home",
        home.path().to_str().unwrap(),
    ]));
    assert!(!String::from_utf8_lossy(&out.stdout).contains('\x1b'));
}

#[test]
fn output_is_deterministic() {
    let home = fixture_home("home-all");
    let a = run_all(home.path(), &["--format", "json"]).stdout;
    let b = run_all(home.path(), &["--format", "json"]).stdout;
    assert_eq!(a, b);
}

#[test]
fn home_mode_never_reads_outside_the_home() {
    // A projects map pointing at a real directory outside the home is not followed.
    let home = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    fs::write(
        outside.path().join(".mcp.json"),
        r#"{"mcpServers": {"leak": {"command": "x-mcp"}}}"#,
    )
    .unwrap();
    let cfg = format!(
        r#"{{"projects": {{"{}": {{}}}}}}"#,
        outside.path().display()
    );
    fs::write(home.path().join(".claude.json"), cfg).unwrap();
    let out = run_assay(&[
        "discover",
        "--home",
        home.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    let r: ReportV1 = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r.servers.is_empty());
    assert!(!r.project_roots[0].scanned);
    assert!(
        r.sources
            .iter()
            .all(|s| s.path.starts_with(home.path().to_str().unwrap()))
    );
    // ...unless asked for explicitly.
    let out = run_assay(&[
        "discover",
        "--home",
        home.path().to_str().unwrap(),
        "--project",
        outside.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    let r: ReportV1 = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.servers.len(), 1);
    assert_eq!(r.servers[0].id, "claude-code/leak");
}

#[test]
fn too_large_files_are_reported_not_parsed() {
    let home = fixture_home("home-all");
    let out = run_all(home.path(), &["--format", "json", "--max-file-size", "64"]);
    let r: ReportV1 = serde_json::from_slice(&out.stdout).unwrap();
    let big = r
        .sources
        .iter()
        .find(|s| s.path.ends_with(".claude.json"))
        .unwrap();
    assert_eq!(big.status, "too_large");
    assert_eq!(big.error.as_ref().unwrap().limit, Some(64));
    // Small files still parse.
    assert!(r.sources.iter().any(|s| s.status == "found"));
}

#[test]
fn permission_denied_is_unreadable_and_others_still_found() {
    // Root reads anything, so this variant only runs unprivileged; the
    // directory-as-file fixture and the unit test on the error mapping cover root.
    if unsafe { libc::geteuid() } == 0 {
        eprintln!("SKIP permission_denied_is_unreadable: root can read mode-000 files");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    fs::create_dir_all(home.path().join(".cursor")).unwrap();
    let f = home.path().join(".cursor/mcp.json");
    fs::write(&f, "{}").unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o000)).unwrap();
    fs::write(
        home.path().join(".claude.json"),
        r#"{"mcpServers": {"a": {"command": "a-mcp"}}}"#,
    )
    .unwrap();
    let out = run_assay(&[
        "discover",
        "--home",
        home.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    let r: ReportV1 = serde_json::from_slice(&out.stdout).unwrap();
    let s = r
        .sources
        .iter()
        .find(|s| s.path.ends_with(".cursor/mcp.json"))
        .unwrap();
    assert_eq!(s.status, "unreadable");
    assert_eq!(r.servers.len(), 1);
}

#[test]
fn docs_list_every_client_and_rule() {
    let doc = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/discovery.md"))
        .unwrap();
    for c in assay::discovery::clients::CLIENTS {
        assert!(
            doc.contains(&format!("(`{}`)", c.id)),
            "docs/discovery.md misses client {}",
            c.id
        );
        for p in c.paths {
            assert!(
                doc.contains(p.rel),
                "docs/discovery.md misses path {} of {}",
                p.rel,
                c.id
            );
        }
    }
    for r in assay::discovery::Rule::ALL {
        assert!(
            doc.contains(&format!("`{}`", r.id())),
            "docs miss rule {}",
            r.id()
        );
        assert!(
            doc.contains(&format!("`{}`", r.sarif_id())),
            "docs miss {}",
            r.sarif_id()
        );
    }
}

#[test]
fn policy_managed_list_and_methods() {
    use assay::discovery::{Options, Rule, discover};
    use assay::policy::model::{DiscoveryConfig, DiscoveryMethod};
    let home = fixture_home("home-all");
    let cfg = DiscoveryConfig {
        enabled: true,
        methods: vec![DiscoveryMethod::ConfigFiles],
        on_findings: Default::default(),
        // By id, by alias, by bare name.
        managed: vec![
            "claude-desktop/github".into(),
            "cursor/filesystem".into(),
            "linear".into(),
        ],
    };
    let mut opts = Options::for_home(home.path());
    opts.processes = true; // the policy's methods exclude processes
    let r = discover(&opts, Some(&cfg));
    for id in [
        "claude-desktop/github",
        "claude-desktop/filesystem",
        "windsurf/linear",
    ] {
        let s = r.server(id).unwrap();
        assert!(s.managed, "{id}");
        assert_eq!(s.managed_by, [assay::discovery::ManagedBy::Policy]);
        assert!(
            !r.findings
                .iter()
                .any(|f| f.rule == Rule::UnmanagedServer && f.server_id.as_deref() == Some(id))
        );
    }
    assert!(!r.server("cursor/remote-insecure").unwrap().managed);
    assert!(matches!(
        r.processes,
        assay::discovery::Processes::NotScanned { .. }
    ));
    // Managed servers keep their other findings.
    assert!(
        r.findings
            .iter()
            .any(|f| f.rule == Rule::NoAuth && f.server_id.as_deref() == Some("windsurf/linear"))
    );
}

#[test]
fn policy_flag_applies_the_discovery_block() {
    let home = fixture_home("home-all");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.yaml");
    let h = home.path().to_str().unwrap();
    // Gates from on_findings; managed servers drop out of unmanaged_server.
    fs::write(
        &p,
        "version: \"2.0\"\ndiscovery:\n  enabled: true\n  on_findings:\n    no_auth: fail\n    unmanaged_server: warn\n",
    )
    .unwrap();
    let out = run_assay(&[
        "discover",
        "--home",
        h,
        "--policy",
        p.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_exit(&out, 11);
    // Both gates: 10 wins over 11.
    let out = run_assay(&[
        "discover",
        "--home",
        h,
        "--policy",
        p.to_str().unwrap(),
        "--fail-on",
        "unmanaged_server",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(10));
    // Every remote server without auth declared managed: no_auth still fires
    // (managed is about launch, not auth), unmanaged_server does not for them.
    fs::write(
        &p,
        "version: \"2.0\"\ndiscovery:\n  managed: [\"windsurf/linear\"]\n  on_findings:\n    unmanaged_server: fail\n",
    )
    .unwrap();
    let out = run_assay(&[
        "discover",
        "--home",
        h,
        "--policy",
        p.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(10));
    let r: ReportV1 = serde_json::from_slice(&out.stdout).unwrap();
    let linear = r
        .servers
        .iter()
        .find(|s| s.id == "windsurf/linear")
        .unwrap();
    assert!(linear.managed);
    assert_eq!(linear.managed_by, ["policy"]);
    // An invalid policy: exit 2, position named, nothing on stdout.
    fs::write(
        &p,
        "version: \"2.0\"\ndiscovery:\n  on_findings:\n    unmanaged_server: block\n",
    )
    .unwrap();
    let out = run_assay(&["discover", "--home", h, "--policy", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:4:", p.display())), "{err}");
}

#[test]
fn local_mode_honours_environment_overrides() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let w = |rel: &str, text: &str| {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    };
    w(
        "home/.cursor/mcp.json",
        r#"{"mcpServers": {"h": {"command": "h-mcp"}}}"#,
    );
    w(
        "xdg/zed/settings.json",
        r#"{"context_servers": {"x": {"command": "x-mcp"}}}"#,
    );
    w("cx/config.toml", "[mcp_servers.c]\ncommand = \"c-mcp\"\n");
    w(
        "cc/.claude.json",
        r#"{"mcpServers": {"cc": {"command": "cc-mcp"}}}"#,
    );
    w(
        "oc.json",
        r#"{"mcp": {"o": {"type": "local", "command": ["o-mcp"]}}}"#,
    );
    // Files at the default locations that the overrides replace are not read.
    w(
        "home/.codex/config.toml",
        "[mcp_servers.default]\ncommand = \"d-mcp\"\n",
    );
    fs::create_dir_all(root.join("sys")).unwrap();
    let out = run(assay()
        .env("HOME", root.join("home"))
        .env("XDG_CONFIG_HOME", root.join("xdg"))
        .env("CODEX_HOME", root.join("cx"))
        .env("CLAUDE_CONFIG_DIR", root.join("cc"))
        .env("OPENCODE_CONFIG", root.join("oc.json"))
        .args(["discover", "--local", "--no-processes", "--system-root"])
        .arg(root.join("sys"))
        .args(["--format", "json"]));
    assert_exit(&out, 0);
    let r: ReportV1 = serde_json::from_slice(&out.stdout).unwrap();
    let ids: BTreeSet<&str> = r.servers.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "claude-code/cc",
            "codex/c",
            "cursor/h",
            "opencode/o",
            "zed/x"
        ]
        .into()
    );
    assert_eq!(r.scan.os, ["linux"]);
    // Round trip of the typed DTOs.
    let again: ReportV1 = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(again, r);
}

/// Microsoft's SARIF validator (`sarif-multitool`, npm, installed by
/// scripts/install-deps.sh). Its absence skips on a laptop and fails in CI.
fn multitool() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("sarif-multitool"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "sarif-multitool is not installed: run scripts/install-deps.sh"
        );
        eprintln!("SKIP: sarif-multitool is not installed (scripts/install-deps.sh)");
    }
    found
}

/// Run the validator on a SARIF document; its findings as
/// (level, rule id, message arguments).
fn multitool_validate(tool: &Path, sarif: &[u8]) -> Vec<(String, String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.sarif");
    let output = dir.path().join("out.sarif");
    fs::write(&input, sarif).unwrap();
    let out = std::process::Command::new(tool)
        .arg("validate")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        // .NET without ICU installed: invariant culture is enough here.
        .env("DOTNET_SYSTEM_GLOBALIZATION_INVARIANT", "1")
        .output()
        .expect("sarif-multitool runs");
    let log = fs::read(&output).unwrap_or_else(|_| {
        panic!(
            "sarif-multitool wrote no log: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let log: serde_json::Value = serde_json::from_slice(&log).unwrap();
    let mut found = Vec::new();
    for run in log["runs"].as_array().unwrap() {
        for r in run["results"].as_array().into_iter().flatten() {
            found.push((
                r["level"].as_str().unwrap_or("warning").to_string(),
                r["ruleId"].as_str().unwrap_or("").to_string(),
                r["message"]["arguments"].to_string(),
            ));
        }
    }
    found
}

/// Zero errors and zero warnings, save SARIF2005 (no `informationUri`):
/// assay has no public home page to name, and an invented one would be worse.
#[track_caller]
fn assert_multitool_clean(tool: &Path, sarif: &[u8]) {
    let found: Vec<_> = multitool_validate(tool, sarif)
        .into_iter()
        .filter(|(level, rule, _)| {
            matches!(level.as_str(), "error" | "warning") && rule != "SARIF2005"
        })
        .collect();
    assert!(found.is_empty(), "sarif-multitool: {found:#?}");
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Every physical location resolves, through `DISCOVERY_ROOT` when it has
/// it, to an existing file on this machine; a server's region is the line
/// that names it. Returns the root directory.
#[track_caller]
fn assert_locations_resolve(sarif: &serde_json::Value) -> PathBuf {
    let run = &sarif["runs"][0];
    let root_uri = run["originalUriBaseIds"]["DISCOVERY_ROOT"]["uri"]
        .as_str()
        .unwrap();
    assert!(root_uri.starts_with("file:///") && root_uri.ends_with('/'));
    let root = PathBuf::from(percent_decode(&root_uri["file://".len()..]));
    let mut checked = 0;
    for r in run["results"].as_array().unwrap() {
        let primary = r["locations"].as_array().into_iter().flatten();
        let related = r["relatedLocations"].as_array().into_iter().flatten();
        for loc in primary.chain(related) {
            let Some(art) = loc["physicalLocation"]["artifactLocation"].as_object() else {
                assert_eq!(r["properties"]["origin"], "process", "{r}");
                assert!(
                    loc["logicalLocations"][0]["fullyQualifiedName"]
                        .as_str()
                        .unwrap()
                        .starts_with("mcp://")
                );
                continue;
            };
            let uri = art["uri"].as_str().unwrap();
            let path = if art.get("uriBaseId").is_some() {
                assert_eq!(art["uriBaseId"], "DISCOVERY_ROOT");
                assert!(!uri.contains(':'), "relative: {uri}");
                root.join(percent_decode(uri))
            } else {
                assert!(uri.starts_with("file:///"), "{uri}");
                PathBuf::from(percent_decode(&uri["file://".len()..]))
            };
            assert!(path.exists(), "{uri} -> {} does not exist", path.display());
            let region = &loc["physicalLocation"]["region"];
            let line = region["startLine"].as_u64().expect("region") as usize;
            if r["properties"]["origin"] == "config" && path.is_file() {
                let name = loc["logicalLocations"][0]["fullyQualifiedName"]
                    .as_str()
                    .map(|m| percent_decode(m.rsplit('/').next().unwrap()));
                let text = fs::read_to_string(&path).unwrap();
                let at = text.lines().nth(line - 1).unwrap_or("");
                if let Some(name) = name {
                    assert!(at.contains(&name), "{uri}:{line} `{at}` lacks {name}");
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 0);
    root
}

#[test]
fn sarif_passes_microsofts_validator_for_absolute_relative_and_symlinked_homes() {
    let Some(tool) = multitool() else { return };
    // Absolute home with a system root outside it.
    let home = fixture_home("home-all");
    let out = run_all(home.path(), &["--format", "sarif"]);
    assert_exit(&out, 0);
    assert_multitool_clean(&tool, &out.stdout);
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = assert_locations_resolve(&sarif);
    assert_eq!(root, fs::canonicalize(home.path()).unwrap());
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let fs_server = results
        .iter()
        .find(|r| r["properties"]["mcp_uri"] == "mcp://claude-desktop/filesystem")
        .unwrap();
    let loc = &fs_server["locations"][0];
    assert_eq!(
        loc["physicalLocation"]["artifactLocation"]["uri"],
        ".config/Claude/claude_desktop_config.json"
    );
    assert_eq!(loc["physicalLocation"]["region"]["startLine"], 3);
    assert_eq!(
        loc["logicalLocations"][0]["fullyQualifiedName"],
        "mcp://claude-desktop/filesystem"
    );
    // A parse error is placed at the error's position.
    let parse = results
        .iter()
        .find(|r| {
            r["ruleId"] == "discovery/source-error"
                && r["message"]["text"]
                    .as_str()
                    .unwrap()
                    .contains("line 5 column 1")
        })
        .expect("parse error result");
    assert_eq!(
        parse["locations"][0]["physicalLocation"]["region"],
        serde_json::json!({"startLine": 5, "startColumn": 1})
    );
    assert!(
        results
            .iter()
            .all(|r| r["partialFingerprints"]["assayFinding/v1"].is_string())
    );

    // Relative home: the root is where it really is, not file:///<relative>.
    let parent = tempfile::tempdir().unwrap();
    copy_dir(
        &fixtures().join("home-all"),
        &parent.path().join("home"),
        &parent.path().join("home"),
    );
    let rel = run(assay()
        .current_dir(parent.path())
        .args(["discover", "--home", "home", "--format", "sarif"]));
    assert_exit(&rel, 0);
    assert_multitool_clean(&tool, &rel.stdout);
    let rel_sarif: serde_json::Value = serde_json::from_slice(&rel.stdout).unwrap();
    let real = fs::canonicalize(parent.path().join("home")).unwrap();
    assert_eq!(assert_locations_resolve(&rel_sarif), real);

    // Symlinked home: the root is the real directory; fingerprints do not
    // depend on how the home was named.
    let link = parent.path().join("link");
    std::os::unix::fs::symlink(parent.path().join("home"), &link).unwrap();
    let sym = run_assay(&[
        "discover",
        "--home",
        link.to_str().unwrap(),
        "--format",
        "sarif",
    ]);
    assert_exit(&sym, 0);
    assert_multitool_clean(&tool, &sym.stdout);
    let sym_sarif: serde_json::Value = serde_json::from_slice(&sym.stdout).unwrap();
    assert_eq!(assert_locations_resolve(&sym_sarif), real);
    let prints = |s: &serde_json::Value| -> Vec<serde_json::Value> {
        s["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["partialFingerprints"].clone())
            .collect()
    };
    assert_eq!(prints(&sym_sarif), prints(&rel_sarif));
}

#[test]
fn sarif_of_a_process_only_server_has_no_file_link() {
    let Some(tool) = multitool() else { return };
    use std::os::unix::process::CommandExt;
    let mut child = std::process::Command::new("bash")
        .args(["-c", "exec -a mcp-server-sarifonly sleep 300"])
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .starts_with(b"mcp-server-sarifonly")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "process did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let home = tempfile::tempdir().unwrap();
    let out = run_assay(&[
        "discover",
        "--home",
        home.path().to_str().unwrap(),
        "--processes",
        "--format",
        "sarif",
    ]);
    // SAFETY: the test's own process group.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    let _ = child.wait();
    assert_exit(&out, 0);
    assert_multitool_clean(&tool, &out.stdout);
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["properties"]["pid"] == pid)
        .expect("a result for the process");
    assert_eq!(r["properties"]["origin"], "process");
    let loc = &r["locations"][0];
    assert!(loc.get("physicalLocation").is_none(), "{loc}");
    assert_eq!(
        loc["logicalLocations"][0]["fullyQualifiedName"],
        "mcp://process/mcp-server-sarifonly"
    );
    assert!(
        loc["message"]["text"]
            .as_str()
            .unwrap()
            .contains("running process")
    );
}

/// Piped, the table cuts nothing (a parse error keeps its position, a long
/// command line its end); `--color always` colours even then.
#[test]
fn piped_tables_are_never_cut_and_color_can_be_forced() {
    let home = fixture_home("home-all");
    let out = run_all(home.path(), &[]);
    assert_exit(&out, 0);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('…'), "{text}");
    for row in ["parse_error", "low       source_error"] {
        let parse = text
            .lines()
            .find(|l| l.trim_start().starts_with(row) && l.contains("amazon"))
            .expect(row);
        assert!(parse.contains("at line 5 column 1"), "{parse}");
    }
    assert!(!text.contains("\x1b["), "no colour when piped");
    let out = run_all(home.path(), &["--color", "always"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\x1b["));
    let out = run_all(home.path(), &["--color", "always", "--no-color"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("\x1b["));
}

/// Issue 13, item 1: secrets are found by content, and no format prints one.
/// The fixture's README says what each entry holds.
#[test]
fn secrets_are_found_by_content_and_never_printed() {
    let home = fixtures().join("claude-desktop-secret-shapes");
    let cfg: serde_json::Value = serde_json::from_slice(
        &fs::read(home.join(".config/Claude/claude_desktop_config.json")).unwrap(),
    )
    .unwrap();
    let env = |server: &str, name: &str| {
        cfg["mcpServers"][server]["env"][name]
            .as_str()
            .unwrap()
            .to_string()
    };
    let url = cfg["mcpServers"]["events"]["url"].as_str().unwrap();
    let secrets = [
        env("signer", "SIGNING_CERT_BUNDLE"),
        env("deployer", "PRIVATE_KEY"),
        env("deployer", "SESSION"),
        env("deployer", "DEPLOY_CONFIG"),
        url.split("api_key=").nth(1).unwrap().to_string(),
    ];
    for format in ["json", "sarif", "table"] {
        for verbose in [false, true] {
            let mut args = vec![
                "discover",
                "--home",
                home.to_str().unwrap(),
                "--format",
                format,
            ];
            if verbose {
                args.push("-v");
            }
            let out = run_assay(&args);
            let text = String::from_utf8_lossy(&out.stdout);
            for s in &secrets {
                // No line of a PEM body, no 12-character piece of anything.
                for piece in s
                    .lines()
                    .filter(|l| l.len() >= 12 && !l.starts_with("-----"))
                {
                    assert!(!text.contains(piece), "{format}: {piece} printed");
                }
                if !s.starts_with("-----") {
                    let tail = &s[s.len() - 12..];
                    assert!(!text.contains(tail), "{format}: tail of {s} printed");
                }
            }
        }
    }

    let out = run_assay(&[
        "discover",
        "--home",
        home.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let r: ReportV1 = serde_json::from_slice(&out.stdout).unwrap();
    let mut found: Vec<(String, String)> = r
        .findings
        .iter()
        .filter(|f| f.rule == "secret_in_config")
        .map(|f| (f.severity.clone(), f.evidence.clone().unwrap()))
        .collect();
    found.sort();
    let want = [
        (
            "high",
            "env PRIVATE_KEY = -----BEGIN RSA PRIVATE KEY-----****",
        ),
        ("high", "env SESSION = eyJ****"),
        (
            "high",
            "env SIGNING_CERT_BUNDLE = -----BEGIN PRIVATE KEY-----****",
        ),
        ("medium", "env DEPLOY_CONFIG = ****"),
        ("medium", "url https://events.example.com/sse?api_key=****"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(found, want, "placeholders are never findings");

    // Values are withheld by default; references are shown as written.
    let deployer = r
        .servers
        .iter()
        .find(|s| s.id == "claude-desktop/deployer")
        .unwrap();
    let shown: Vec<(&str, &str)> = deployer
        .env
        .iter()
        .map(|nv| (nv.name.as_str(), nv.value.as_str()))
        .collect();
    assert_eq!(
        shown,
        [
            ("API_KEY", "<your-api-key>"),
            ("DEPLOY_CONFIG", "****"),
            ("GITHUB_TOKEN", "${env:GITHUB_TOKEN}"),
            ("PRIVATE_KEY", "-----BEGIN RSA PRIVATE KEY-----****"),
            ("SESSION", "eyJ****"),
        ]
    );
    let signer = r
        .servers
        .iter()
        .find(|s| s.id == "claude-desktop/signer")
        .unwrap();
    assert_eq!(signer.env[0].name, "LOG_LEVEL");
    assert_eq!(signer.env[0].value, "****", "literal values are withheld");

    // Issue 13, item 4: the URL's path, not its query, decides the transport.
    let events = r
        .servers
        .iter()
        .find(|s| s.id == "claude-desktop/events")
        .unwrap();
    assert_eq!(events.transport, "sse");
}

/// Issue 13, item 3: approval and exclusion lists kept outside the entries
/// decide whether a Claude Code project server or a Gemini CLI server is
/// active. The fixture's README says which and why.
#[test]
fn project_approval_and_exclusion_lists_disable_servers() {
    let home = fixture_home("claude-code-gemini-project-approval");
    let h = home.path();
    let out = run_assay(&[
        "discover",
        "--home",
        h.to_str().unwrap(),
        "--system-root",
        h.join("system").to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_exit(&out, 0);
    let r: ReportV1 = serde_json::from_slice(&out.stdout).unwrap();
    let disabled: BTreeMap<&str, bool> = r
        .servers
        .iter()
        .map(|s| (s.id.as_str(), s.disabled))
        .collect();
    let want: BTreeMap<&str, bool> = [
        ("claude-code/blocked", true),
        ("claude-code/db", true),
        ("claude-code/fresh", false),
        ("claude-code/legacy", true),
        ("claude-code/web", false),
        ("gemini-cli/g-legacy-off", true),
        ("gemini-cli/g-proj-off", true),
        ("gemini-cli/g-proj-on", false),
        ("gemini-cli/g-user-off", true),
        ("gemini-cli/g-user-on", false),
    ]
    .into();
    assert_eq!(disabled, want);
    let why: BTreeSet<String> = r
        .findings
        .iter()
        .filter(|f| f.rule == "disabled_server")
        .map(|f| {
            let m = f.message.replace(h.to_str().unwrap(), "~");
            m[..m.find(", in ").unwrap()].to_string()
        })
        .collect();
    let want: BTreeSet<String> = [
        "claude-code/blocked is disabled by ~/system/etc/claude-code/managed-settings.json deniedMcpServers",
        "claude-code/db is disabled by ~/proj/.claude/settings.local.json disabledMcpjsonServers",
        "claude-code/legacy is disabled by ~/.claude.json disabledMcpjsonServers",
        "gemini-cli/g-legacy-off is disabled by ~/proj/.gemini/settings.json excludeMCPServers",
        "gemini-cli/g-proj-off is disabled by ~/.gemini/settings.json mcp.excluded",
        "gemini-cli/g-user-off is disabled by ~/.gemini/settings.json mcp.excluded",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(why, want);
    // Disabled servers are not judged unmanaged.
    assert!(
        !r.findings
            .iter()
            .any(|f| f.rule == "unmanaged_server"
                && f.server_id.as_deref() == Some("claude-code/db"))
    );
}

/// Issue 13, item 2: every client variant in the fixture is read, with
/// its launch expanded the way the client expands it, disabled where the
/// client's own switch says so. The fixture's README cites each source.
#[test]
fn client_variants_are_read() {
    let home = fixture_home("client-variants");
    let h = home.path().to_str().unwrap();
    let out = run_assay(&["discover", "--home", h, "--format", "json"]);
    assert_exit(&out, 0);
    let r: ReportV1 = serde_json::from_slice(&out.stdout).unwrap();
    let got: BTreeMap<&str, (&str, &str, bool)> = r
        .servers
        .iter()
        .map(|s| {
            let l = &s.locations[0];
            (
                s.id.as_str(),
                (l.scope.as_str(), s.key.as_str(), s.disabled),
            )
        })
        .collect();
    let notes = format!("{h}/.config/Claude/Claude Extensions/ant.dir.notes/server/index.js");
    let muted = format!("{h}/.config/Claude/Claude Extensions/ant.dir.muted/server/main.py");
    let weather = format!("{h}/.gemini/extensions/weather/dist/server.js");
    let want: BTreeMap<&str, (&str, &str, bool)> = [
        ("amazon-q/q-git", ("user", "q-git-mcp", false)),
        ("claude-code/deploy", ("plugin", "deploy-mcp", false)),
        ("claude-desktop/muted-ext", ("plugin", muted.as_str(), true)),
        ("claude-desktop/notes", ("plugin", notes.as_str(), false)),
        ("claude-desktop/tickets", ("plugin", "tickets-mcp", false)),
        (
            "continue/brave-continue",
            ("user", "@acme/brave-continue-mcp", false),
        ),
        ("gemini-cli/muted-srv", ("plugin", "muted-mcp", true)),
        ("gemini-cli/weather", ("plugin", weather.as_str(), false)),
        (
            "vscode-insiders/insiders-profile",
            ("user", "insiders-profile-mcp", false),
        ),
        ("vscode/code-server-srv", ("user", "code-server-mcp", false)),
        ("vscode/remote-ssh", ("user", "remote-ssh-mcp", false)),
        ("vscodium/codium-linux", ("user", "codium-linux-mcp", false)),
        (
            "vscodium/codium-mac-profile",
            ("user", "codium-mac-mcp", false),
        ),
    ]
    .into();
    assert_eq!(got, want);

    // The plugin's referenced file is a source of its own; the path that
    // climbs out of the plugin is refused with a warning, not read.
    let deploy = r
        .servers
        .iter()
        .find(|s| s.id == "claude-code/deploy")
        .unwrap();
    assert_eq!(
        deploy.command.as_deref(),
        Some(format!("{h}/.claude/plugins/cache/acme/deploy-tools/1.2.0/bin/deploy-mcp").as_str())
    );
    let tickets = r
        .servers
        .iter()
        .find(|s| s.id == "claude-desktop/tickets")
        .unwrap();
    assert_eq!(
        tickets.command.as_deref(),
        Some(format!("{h}/Library/Application Support/Claude/Claude Extensions/local.dxt.acme.tickets/bin/tickets-mcp").as_str())
    );
    let src = |suffix: &str| {
        r.sources
            .iter()
            .find(|s| s.path.ends_with(suffix))
            .unwrap_or_else(|| panic!("no source {suffix}"))
    };
    let inc = src("deploy-tools/1.2.0/config/servers.json");
    assert_eq!(
        (inc.client.as_str(), inc.scope.as_str(), inc.servers),
        ("claude-code", "plugin", 1)
    );
    let manifest = src("deploy-tools/1.2.0/.claude-plugin/plugin.json");
    assert_eq!(
        manifest.warnings,
        ["mcpServers: ../../../../../../../../etc/passwd is outside the plugin; not read"]
    );
    assert!(!r.sources.iter().any(|s| s.path.ends_with("etc/passwd")));
    // The Gemini extension's working directory is expanded too.
    let weather_srv = r
        .servers
        .iter()
        .find(|s| s.id == "gemini-cli/weather")
        .unwrap();
    assert_eq!(
        weather_srv.cwd.as_deref(),
        Some(format!("{h}/.gemini/extensions/weather").as_str())
    );
    let why: Vec<&str> = r
        .findings
        .iter()
        .filter(|f| f.rule == "disabled_server")
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(why.len(), 2, "{why:?}");
    assert!(
        why.iter()
            .any(|m| m.contains("ant.dir.muted.json isEnabled")),
        "{why:?}"
    );
    assert!(
        why.iter()
            .any(|m| m.contains("extension-enablement.json muted.overrides")),
        "{why:?}"
    );
}

/// Users who are not in /etc/passwd (LDAP, SSSD) come from the system's
/// user database: nss_wrapper (installed by scripts/install-deps.sh) plays
/// that database for the assay process, with a user whose home is neither
/// in /etc/passwd nor under /home.
#[test]
fn all_users_reads_the_system_user_database() {
    let lib = Path::new("/usr/lib/x86_64-linux-gnu/libnss_wrapper.so");
    if cfg!(not(all(target_os = "linux", target_arch = "x86_64"))) {
        eprintln!("skip: nss_wrapper path is for x86_64 Linux");
        return;
    }
    assert!(
        lib.exists(),
        "{} missing: run scripts/install-deps.sh",
        lib.display()
    );
    let d = tempfile::tempdir().unwrap();
    let home = d.path().join("ldap-homes/carol");
    fs::create_dir_all(home.join(".cursor")).unwrap();
    fs::write(
        home.join(".cursor/mcp.json"),
        r#"{"mcpServers": {"carol-tool": {"command": "uvx", "args": ["carol-mcp==1.0"]}}}"#,
    )
    .unwrap();
    let passwd = d.path().join("passwd");
    fs::write(
        &passwd,
        format!("carol:x:5001:5001:Carol:{}:/bin/bash\n", home.display()),
    )
    .unwrap();
    let group = d.path().join("group");
    fs::write(&group, "carol:x:5001:\n").unwrap();
    let out = run(assay()
        .env("LD_PRELOAD", lib)
        .env("NSS_WRAPPER_PASSWD", &passwd)
        .env("NSS_WRAPPER_GROUP", &group)
        .args([
            "discover",
            "--all-users",
            "--no-processes",
            "--format",
            "json",
        ]));
    let r: ReportV1 = serde_json::from_slice(&out.stdout).expect("json report");
    let carol = r
        .scan
        .homes
        .iter()
        .find(|h| h.path == home.to_str().unwrap())
        .expect("carol's home found through the user database");
    assert_eq!(carol.user.as_deref(), Some("carol"));
    let s = r
        .servers
        .iter()
        .find(|s| s.id == "cursor/carol-tool")
        .expect("her server inventoried");
    assert_eq!(s.locations[0].user.as_deref(), Some("carol"));
}

/// `--all-users --system-root DIR` scans DIR's users; with several homes,
/// absent candidates are counted, not listed.
#[test]
fn all_users_under_a_system_root_count_absent_files() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for u in ["ann", "ben"] {
        fs::create_dir_all(r.join(format!("home/{u}/.cursor"))).unwrap();
        fs::write(
            r.join(format!("home/{u}/.cursor/mcp.json")),
            format!(
                r#"{{"mcpServers": {{"{u}-tool": {{"command": "uvx", "args": ["{u}-mcp==1"]}}}}}}"#
            ),
        )
        .unwrap();
    }
    fs::create_dir_all(r.join("etc")).unwrap();
    fs::write(
        r.join("etc/passwd"),
        "ann:x:4301:4301::/home/ann:/bin/bash\nben:x:4302:4302::/home/ben:/bin/bash\n",
    )
    .unwrap();
    let out = run_assay(&[
        "discover",
        "--all-users",
        "--system-root",
        r.to_str().unwrap(),
        "--no-processes",
        "--format",
        "json",
    ]);
    assert_exit(&out, 0);
    let rep: ReportV1 = serde_json::from_slice(&out.stdout).unwrap();
    let users: Vec<Option<&str>> = rep.scan.homes.iter().map(|h| h.user.as_deref()).collect();
    assert_eq!(users, [Some("ann"), Some("ben")]);
    let ids: BTreeSet<&str> = rep.servers.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["cursor/ann-tool", "cursor/ben-tool"].into());
    let homes = r.join("home");
    let home_absent = rep
        .sources
        .iter()
        .filter(|s| s.status == "absent" && Path::new(&s.path).starts_with(&homes))
        .count();
    assert_eq!(
        home_absent, 0,
        "machine-wide files are still listed, home ones not"
    );
    assert!(rep.absent_home_files > 50, "{}", rep.absent_home_files);
}
