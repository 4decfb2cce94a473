//! Root tier: where `assay monitor` writes its events, each checked against
//! the real thing: an events file that logrotate moves away (SIGHUP) or
//! assay rotates (`--events-max-bytes`); a real rsyslogd (temp config,
//! temp socket, temp output file) for `--events syslog`; a real
//! systemd-journald for `--events journald`, run standalone in a private
//! mount namespace whose /run is a fresh tmpfs, so its sockets and journal
//! land in a temp directory and the host's /run is untouched.
#![cfg(all(target_os = "linux", feature = "monitor"))]

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Daemon, Scratch, TestCgroup, assay, probe_in, wait_for};

/// A policy denying connects to `port`, with severity high.
fn deny_policy(s: &Scratch, port: u16) -> PathBuf {
    s.file(
        "p.yaml",
        &format!(
            "version: \"2.0\"\nmetadata:\n  name: outputs\nruntime_monitor:\n  enabled: true\n  rules:\n\
             \x20   - id: no-admin-ports\n      type: net_connect\n      match: {{ports: [{port}]}}\n      severity: high\n      action: deny\n"
        ),
    )
}

/// An attach-mode monitor of `cg` with these extra arguments.
fn monitor(pol: &Path, cg: &TestCgroup, extra: &[&str]) -> Daemon {
    Daemon(
        assay()
            .arg("monitor")
            .arg("--policy")
            .arg(pol)
            .arg("--cgroup")
            .arg(cg.path())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// SIGINT, then its exit status and stderr.
fn stop(mut d: Daemon) -> (Option<i32>, String) {
    use std::io::Read;
    // SAFETY: plain syscall on our child.
    unsafe { libc::kill(d.0.id() as i32, libc::SIGINT) };
    let status = d.0.wait().unwrap();
    let mut err = String::new();
    d.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (status.code(), err)
}

fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: half a line? {l}")))
        .collect()
}

fn seqs(evs: &[serde_json::Value]) -> Vec<u64> {
    evs.iter().map(|e| e["seq"].as_u64().unwrap()).collect()
}

#[test]
fn the_events_file_is_reopened_on_sighup_and_rotated_at_max_bytes() {
    if !common::require_root("the_events_file_is_reopened_on_sighup_and_rotated_at_max_bytes") {
        return;
    }
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = target.local_addr().unwrap().port();
    let s = Scratch::new("outputs-file");
    let pol = deny_policy(&s, port);
    let cg = TestCgroup::new("assay-test-outputs-file");
    let events = s.path("events.jsonl");
    let rotated = s.path("events.jsonl.1");
    let ev = events.display().to_string();
    let mon = monitor(&pol, &cg, &["--events", &ev, "--events-max-bytes", "8192"]);
    wait_for("the start event", 10, || {
        json_lines(&events).first().map(|e| e["kind"] == "start")
    });

    // logrotate moves the file away, then signals.
    let moved = s.path("events.jsonl.moved");
    std::fs::rename(&events, &moved).unwrap();
    // SAFETY: plain syscall on our child.
    unsafe { libc::kill(mon.0.id() as i32, libc::SIGHUP) };
    wait_for("the reopened file", 10, || events.exists().then_some(()));
    assert_eq!(probe_in(cg.path(), port, 1)["eperm"], 1);
    let first = wait_for("the event in the new file", 10, || {
        let e = json_lines(&events);
        (!e.is_empty()).then_some(e)
    });
    assert_eq!(first[0]["kind"], "net_connect");
    assert_eq!(first[0]["seq"], 1, "seq 0 (start) went to the moved file");
    assert_eq!(seqs(&json_lines(&moved)), [0]);

    // Enough events (about 1 KB each) to rotate several times at 8 KiB.
    assert_eq!(probe_in(cg.path(), port, 40)["eperm"], 40);
    let (code, err) = stop(mon);
    assert_eq!(code, Some(0), "SIGHUP did not stop it, SIGINT did: {err}");
    let (old, new) = (json_lines(&rotated), json_lines(&events));
    assert!(!old.is_empty(), "rotated to {}", rotated.display());
    for f in [&rotated, &events] {
        let len = std::fs::metadata(f).unwrap().len();
        assert!(len <= 8192, "{} is {len} bytes", f.display());
    }
    // Whole lines only, in order, and the newest file ends with the stop.
    let (a, b) = (seqs(&old), seqs(&new));
    assert!(a.windows(2).all(|w| w[1] == w[0] + 1), "{a:?}");
    assert!(b.windows(2).all(|w| w[1] == w[0] + 1), "{b:?}");
    assert_eq!(a.last().unwrap() + 1, b[0]);
    assert_eq!(new.last().unwrap()["kind"], "stop");
    assert_eq!(new.last().unwrap()["summary"]["delivered"], 41);
}

#[test]
fn syslog_events_reach_a_real_rsyslogd() {
    if !common::require_root("syslog_events_reach_a_real_rsyslogd") {
        return;
    }
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = target.local_addr().unwrap().port();
    let s = Scratch::new("outputs-syslog");
    let pol = deny_policy(&s, port);
    let sock = s.path("log.sock");
    let out = s.path("out.log");
    let conf = s.file(
        "rsyslog.conf",
        &format!(
            "global(workDirectory=\"{dir}\" maxMessageSize=\"64k\")\n\
             module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
             input(type=\"imuxsock\" Socket=\"{sock}\" UseSpecialParser=\"off\" ParseHostname=\"on\")\n\
             template(name=\"t\" type=\"string\" string=\"%syslogfacility-text% %syslogseverity% %app-name% %procid% %msgid% %msg%\\n\")\n\
             if $app-name == \"assay\" then {{\n  action(type=\"omfile\" file=\"{out}\" template=\"t\")\n}}\n",
            dir = s.0.display(),
            sock = sock.display(),
            out = out.display()
        ),
    );
    let _rsyslogd = Daemon(
        Command::new("rsyslogd")
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(s.path("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rsyslogd (scripts/install-deps.sh installs rsyslog)"),
    );
    wait_for("rsyslogd's socket", 10, || sock.exists().then_some(()));
    let cg = TestCgroup::new("assay-test-outputs-syslog");
    let dest = format!("syslog:{}", sock.display());
    let mon = monitor(&pol, &cg, &["--events", &dest]);
    wait_for("the start message", 10, || {
        std::fs::read_to_string(&out)
            .ok()
            .filter(|t| t.contains(" start {"))
    });
    assert_eq!(probe_in(cg.path(), port, 3)["eperm"], 3);
    let (code, err) = stop(mon);
    assert_eq!(code, Some(0), "{err}");
    let text = wait_for("the stop message", 10, || {
        std::fs::read_to_string(&out)
            .ok()
            .filter(|t| t.contains(" stop {"))
    });
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "start, 3 denials, stop:\n{text}");
    for (seq, l) in lines.iter().enumerate() {
        // facility, severity, app, procid, msgid, then the JSON.
        let f: Vec<&str> = l.splitn(6, ' ').collect();
        let j: serde_json::Value =
            serde_json::from_str(f[5]).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert_eq!((f[0], f[2]), ("daemon", "assay"), "{l}");
        assert_eq!(f[4], j["kind"].as_str().unwrap(), "MSGID is the kind: {l}");
        assert_eq!(j["seq"], seq, "{l}");
        if j["kind"] == "net_connect" {
            assert_eq!(f[1], "3", "severity high is syslog err: {l}");
            // From the kernel at the event (exe and argv may be absent:
            // the probe can exit before assay reads /proc).
            assert_eq!(j["process"]["uid"], 0, "{l}");
            assert!(j["process"]["start_boottime_ns"].as_u64().is_some(), "{l}");
        }
    }
}

#[test]
fn journald_events_reach_a_real_systemd_journald() {
    if !common::require_root("journald_events_reach_a_real_systemd_journald") {
        return;
    }
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = target.local_addr().unwrap().port();
    let s = Scratch::new("outputs-journald");
    let pol = deny_policy(&s, port);
    let (sockets, store) = (s.path("sockets"), s.path("store"));
    std::fs::create_dir_all(&sockets).unwrap();
    std::fs::create_dir_all(&store).unwrap();
    // journald's paths are fixed: give it a /run of its own whose journal
    // directories are these two.
    let _journald = Daemon(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal /run/log/journal && \
                 mount --bind {} /run/systemd/journal && mount --bind {} /run/log/journal && \
                 exec /lib/systemd/systemd-journald",
                sockets.display(),
                store.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("unshare"),
    );
    let sock = sockets.join("socket");
    wait_for("journald's socket", 10, || sock.exists().then_some(()));
    let cg = TestCgroup::new("assay-test-outputs-journald");
    let dest = format!("journald:{}", sock.display());
    let mon = monitor(&pol, &cg, &["--events", &dest]);
    let read = || -> Vec<serde_json::Value> {
        let out = Command::new("journalctl")
            .arg("-D")
            .arg(&store)
            .args(["-o", "json", "--no-pager", "SYSLOG_IDENTIFIER=assay"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    wait_for("the start entry", 15, || {
        read()
            .first()
            .map(|e| e["ASSAY_KIND"] == "start")?
            .then_some(())
    });
    assert_eq!(probe_in(cg.path(), port, 2)["eperm"], 2);
    let (code, err) = stop(mon);
    assert_eq!(code, Some(0), "{err}");
    let entries = wait_for("4 journal entries", 15, || {
        let e = read();
        (e.len() >= 4).then_some(e)
    });
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["ASSAY_KIND"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["start", "net_connect", "net_connect", "stop"]);
    let d = &entries[1];
    assert_eq!(d["PRIORITY"], "3", "severity high: err");
    assert_eq!(d["ASSAY_RULE"], "no-admin-ports");
    assert_eq!(d["ASSAY_ACTION"], "deny");
    assert_eq!(d["ASSAY_POLICY_NAME"], "outputs");
    assert_eq!(d["ASSAY_OBJECT_PORT"], port.to_string());
    // From the kernel at the event (exe and argv may be absent: the probe
    // can exit before assay reads /proc).
    assert_eq!(d["ASSAY_PROCESS_UID"], "0", "{d}");
    assert!(d["ASSAY_PROCESS_PID"].as_str().is_some(), "{d}");
    let cg_name = cg.path().file_name().unwrap().to_str().unwrap();
    assert_eq!(
        d["ASSAY_CGROUP_PATH"].as_str().unwrap(),
        format!("/{cg_name}"),
        "{d}"
    );
    let msg: serde_json::Value = serde_json::from_str(d["MESSAGE"].as_str().unwrap()).unwrap();
    assert_eq!(msg["kind"], "net_connect");
    assert_eq!(entries[3]["ASSAY_SUMMARY_DELIVERED"], "2");
}
