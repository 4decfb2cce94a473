//! Root tier: `assay monitor --metrics` scraped by a real Prometheus server
//! (Debian's `prometheus`, started here on loopback with a temp config and
//! storage), whose query API must return the counts of a known number of
//! denials; the exposition passes `promtool check metrics`.
#![cfg(all(target_os = "linux", feature = "monitor"))]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Daemon, Scratch, TestCgroup, assay, probe_in, wait_for};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` over HTTP/1.0 (no chunking): status line and body.
fn http_get(port: u16, path: &str) -> Option<(String, String)> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(c, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut out = String::new();
    c.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

/// One instant query's single value, when Prometheus has exactly one series.
fn query(prom: u16, q: &str) -> Option<String> {
    let enc: String = q
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (status, body) = http_get(prom, &format!("/api/v1/query?query={enc}"))?;
    if !status.contains(" 200 ") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let r = v["data"]["result"].as_array()?;
    if r.len() != 1 {
        return None;
    }
    Some(r[0]["value"][1].as_str()?.to_string())
}

#[test]
fn prometheus_scrapes_the_denials_it_was_shown() {
    if !common::require_root("prometheus_scrapes_the_denials_it_was_shown") {
        return;
    }
    const N: u64 = 25;
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = target.local_addr().unwrap().port();
    let s = Scratch::new("metrics");
    let pol = s.file(
        "p.yaml",
        &format!(
            "version: \"2.0\"\nruntime_monitor:\n  enabled: true\n  rules:\n\
             \x20   - id: no-admin-ports\n      type: net_connect\n      match: {{ports: [{port}]}}\n      severity: high\n      action: deny\n"
        ),
    );
    let cg = TestCgroup::new("assay-test-metrics");
    let mport = free_port();
    let mon = Daemon(
        assay()
            .arg("monitor")
            .arg("--policy")
            .arg(&pol)
            .arg("--cgroup")
            .arg(cg.path())
            .arg("--events")
            .arg(s.path("events.jsonl"))
            .arg("--metrics")
            .arg(mport.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("the metrics endpoint", 10, || http_get(mport, "/metrics"));
    let probe = probe_in(cg.path(), port, N);
    assert_eq!(probe["eperm"], N, "{probe}");

    // Scraped directly: every denial counted, and promtool finds nothing
    // to complain about.
    let want = format!("assay_decisions_total{{rule=\"no-admin-ports\",action=\"deny\"}} {N}\n");
    let body = wait_for("the denials to be counted", 10, || {
        let (_, b) = http_get(mport, "/metrics")?;
        b.contains(&want).then_some(b)
    });
    for line in [
        "assay_build_info{version=\"",
        "assay_start_time_seconds ",
        "assay_kill_latency_seconds_bucket{le=\"+Inf\"} 0\n",
        "assay_ringbuf_size_bytes 4194304\n",
        "assay_scope_processes 0\n",
        "assay_events_dropped_total 0\n",
    ] {
        assert!(body.contains(line), "{line:?} missing:\n{body}");
    }
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (scripts/install-deps.sh installs prometheus)");
    check
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}"
    );

    // A real Prometheus scraping assay every second.
    let prom_port = free_port();
    let config = s.file(
        "prometheus.yml",
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: assay\n    \
             static_configs:\n      - targets: ['127.0.0.1:{mport}']\n"
        ),
    );
    let _prom = Daemon(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", s.path("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (scripts/install-deps.sh installs it)"),
    );
    let got = wait_for("Prometheus to scrape the denials", 60, || {
        query(
            prom_port,
            "assay_decisions_total{job=\"assay\",rule=\"no-admin-ports\",action=\"deny\"}",
        )
        .filter(|v| v == &N.to_string())
    });
    assert_eq!(got, N.to_string());
    assert_eq!(
        query(prom_port, "up{job=\"assay\"}").as_deref(),
        Some("1"),
        "the scrape succeeded"
    );
    let delivered: u64 = query(prom_port, "assay_events_delivered_total")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(delivered, N, "one event per denial, none lost");

    // SIGINT: the monitor stops cleanly, its endpoint with it.
    // SAFETY: plain syscall on our child.
    unsafe { libc::kill(mon.0.id() as i32, libc::SIGINT) };
    let mut mon = mon;
    let status = mon.0.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(http_get(mport, "/metrics").is_none(), "endpoint closed");
}

#[test]
fn a_bad_metrics_address_is_a_usage_error() {
    let out = assay()
        .args([
            "monitor",
            "--policy",
            "/nonexistent",
            "--metrics",
            "localhost",
        ])
        .args(["--cgroup", "/sys/fs/cgroup"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--metrics"), "{err}");
    assert!(err.contains("PORT"), "{err}");
}

/// Wrapper mode with the tool-call gate: its decisions are counted by
/// decision, read from /metrics while the server runs.
#[test]
fn the_gates_decisions_are_counted() {
    if !common::require_root("the_gates_decisions_are_counted") {
        return;
    }
    let s = Scratch::new("metrics-gate");
    let pol = s.file(
        "p.yaml",
        "version: \"2.0\"\ntools:\n  allow: [echo]\nruntime_monitor:\n  enabled: true\n  rules:\n    \
         - id: no-ssh\n      type: net_connect\n      match: {ports: [22]}\n      severity: high\n      action: deny\n",
    );
    let port = free_port();
    let mut child = assay()
        .arg("monitor")
        .arg("--policy")
        .arg(&pol)
        .arg("--events")
        .arg(s.path("ev.jsonl"))
        .arg("--metrics")
        .arg(port.to_string())
        .args(["--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for (id, tool) in [(1, "echo"), (2, "exec"), (3, "rm"), (4, "echo"), (5, "x")] {
        writeln!(
            stdin,
            "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"tools/call\",\"params\":{{\"name\":\"{tool}\"}}}}"
        )
        .unwrap();
    }
    let want = "assay_tool_calls_total{decision=\"allow\"} 2\nassay_tool_calls_total{decision=\"deny\"} 3\n";
    let body = wait_for("the gate's counts on /metrics", 20, || {
        let (_, body) = http_get(port, "/metrics")?;
        body.contains(want).then_some(body)
    });
    drop(stdin);
    let daemon = Daemon(child);
    drop(daemon);
    assert!(
        body.contains("# TYPE assay_tool_calls_total counter"),
        "{body}"
    );
}
