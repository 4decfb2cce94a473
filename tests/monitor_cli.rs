//! Root tier: `assay monitor` as a user runs it (the built binary, scrubbed
//! environment, loopback traffic only).
#![cfg(all(target_os = "linux", feature = "monitor"))]

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Scratch, TestCgroup, assay, run};

fn netbench() -> &'static str {
    env!("CARGO_BIN_EXE_assay-netbench")
}

fn policy(rules: &str) -> String {
    format!(
        "version: \"2.0\"\nruntime_monitor:\n  enabled: true\n  provider: ebpf\n  rules:\n{rules}"
    )
}

/// A policy with a kill_switch block (its lines, indented) and `rules`.
fn kill_policy(kill_switch: &str, rules: &str) -> String {
    format!(
        "version: \"2.0\"\nkill_switch:\n{kill_switch}runtime_monitor:\n  enabled: true\n  rules:\n{rules}"
    )
}

/// The rule `exfil`: a connect to `port` triggers the kill switch.
fn exfil(port: u16) -> String {
    format!(
        "    - id: exfil\n      type: net_connect\n      match: {{ports: [{port}]}}\n      severity: critical\n      action: trigger_kill\n"
    )
}

fn deny_port(port: u16) -> String {
    format!(
        "    - id: no-admin-ports\n      type: net_connect\n      match: {{ports: [{port}]}}\n      severity: high\n      action: deny\n"
    )
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A fresh cgroup for one test, removed on drop.
fn test_cgroup(name: &str) -> TestCgroup {
    TestCgroup::new(&format!("assay-test-{name}"))
}

/// `assay-netbench probe` to 127.0.0.1:`port` from a process inside `cg`:
/// its JSON report.
fn probe_in(cg: &Path, port: u16) -> serde_json::Value {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {}/cgroup.procs && exec {} probe --addr 127.0.0.1:{port}",
            cg.display(),
            netbench()
        ))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The names in `dir`.
fn entries(dir: &Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect()
}

fn leaf_of(pid: u32) -> PathBuf {
    common::cgroup2_mount()
        .unwrap()
        .join(format!("assay-monitor-{pid}"))
}

#[test]
fn wrapper_denies_blocked_port_passes_stdout_and_cleans_up() {
    if !common::require_root("wrapper_denies_blocked_port_passes_stdout_and_cleans_up") {
        return;
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let s = Scratch::new("wrap");
    let pol = s.file("p.yaml", &policy(&deny_port(port)));
    let child = assay()
        .arg("monitor")
        .arg("--policy")
        .arg(&pol)
        .arg("--")
        .arg(netbench())
        .args(["probe", "--addr", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let assay_pid = child.id();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    // stdout is the command's, byte for byte: one JSON document, ours nowhere.
    let probe: serde_json::Value = serde_json::from_str(stdout.trim()).expect(&stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert_eq!(probe["eperm"], 1, "{stdout}");
    assert_eq!(probe["ok"], 0);
    // Events default to stderr in wrapper mode.
    let evs = json_lines(&stderr);
    let ev = evs
        .iter()
        .find(|e| e["kind"] == "net_connect")
        .unwrap_or_else(|| panic!("no event in {stderr}"));
    assert_eq!(ev["rule"], "no-admin-ports");
    assert_eq!(ev["action"], "deny");
    assert_eq!(ev["severity"], "high");
    assert_eq!(ev["comm"], "assay-netbench");
    assert_eq!(ev["object"]["port"], port);
    assert_eq!(ev["object"]["address"], "127.0.0.1");
    assert_eq!(ev["object"]["family"], "inet");
    assert_eq!(ev["object"]["protocol"], "tcp");
    assert!(ev["pid"].as_u64().unwrap() > 0);
    assert!(ev["cgroup_id"].as_u64().unwrap() > 0);
    assert!(ev["time"].as_str().unwrap().ends_with('Z'));
    assert!(stderr.contains("assay monitor summary"), "{stderr}");
    assert!(stderr.contains("events dropped:   0"), "{stderr}");
    assert!(
        !leaf_of(assay_pid).exists(),
        "leaf cgroup removed after exit"
    );
}

#[test]
fn wrapper_exits_with_the_command_status_and_signal() {
    if !common::require_root("wrapper_exits_with_the_command_status_and_signal") {
        return;
    }
    let s = Scratch::new("status");
    let pol = s.file("p.yaml", &policy(&deny_port(9)));
    let out = run(assay()
        .arg("monitor")
        .arg("--policy")
        .arg(&pol)
        .args(["--", "sh", "-c", "exit 7"]));
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    let out = run(assay().arg("monitor").arg("--policy").arg(&pol).args([
        "--",
        "sh",
        "-c",
        "kill -KILL $$",
    ]));
    assert_eq!(out.status.code(), Some(137), "{}", text(&out.stderr));
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn procs_of(cg: &Path) -> Vec<i32> {
    std::fs::read_to_string(cg.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect()
}

#[test]
fn wrapper_forwards_sigterm_and_kills_leftovers() {
    if !common::require_root("wrapper_forwards_sigterm_and_kills_leftovers") {
        return;
    }
    let s = Scratch::new("sig");
    let pol = s.file("p.yaml", &policy(&deny_port(9)));
    // The command leaves a background grandchild that ignores SIGTERM.
    let mut child: Child = assay()
        .arg("monitor")
        .arg("--policy")
        .arg(&pol)
        .args([
            "--",
            "sh",
            "-c",
            "(trap '' TERM; exec sleep 300) & trap 'exit 42' TERM; while :; do sleep 0.05; done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let leaf = leaf_of(child.id());
    wait_for("the command and its grandchild in the leaf", || {
        procs_of(&leaf).len() >= 2
    });
    let members = procs_of(&leaf);
    // SAFETY: plain syscall on our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(42), "the command's trap ran: {err}");
    assert!(!leaf.exists(), "leaf removed");
    for pid in members {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "process {pid} outlived the monitor"
        );
    }
}

#[test]
fn file_rule_on_this_host_exits_40_without_starting_the_command() {
    if !common::require_root("file_rule_on_this_host_exits_40_without_starting_the_command") {
        return;
    }
    let s = Scratch::new("file40");
    let marker = s.0.join("ran");
    let rules = "    - id: sensitive-file-access\n      type: file_open\n      match:\n        path_globs: [\"/etc/shadow\", \"**/.ssh/*\"]\n      severity: critical\n      action: deny\n";
    let pol = s.file("p.yaml", &policy(&format!("{rules}{}", deny_port(9))));
    let out = run(assay()
        .arg("monitor")
        .arg("--policy")
        .arg(&pol)
        .arg("--")
        .arg("touch")
        .arg(&marker));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(40), "{err}");
    assert!(!marker.exists(), "the command must not have run");
    assert!(err.contains("rule sensitive-file-access"), "{err}");
    assert!(err.contains("fix:"), "{err}");
    assert!(err.contains("--allow-degraded"), "{err}");

    // Degraded: the rest is enforced, and it says so loudly.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let pol = s.file("p2.yaml", &policy(&format!("{rules}{}", deny_port(port))));
    let out = run(assay()
        .arg("monitor")
        .arg("--policy")
        .arg(&pol)
        .arg("--allow-degraded")
        .arg("--")
        .arg(netbench())
        .args(["probe", "--addr", &format!("127.0.0.1:{port}")]));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("DEGRADED"), "{err}");
    assert!(err.contains("rule sensitive-file-access"), "{err}");
    let probe: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(probe["eperm"], 1, "net rules still enforced");
}

#[test]
fn disabled_runtime_monitor_is_refused_unless_overridden() {
    if !common::require_root("disabled_runtime_monitor_is_refused_unless_overridden") {
        return;
    }
    let s = Scratch::new("disabled");
    let pol = s.file(
        "p.yaml",
        &policy(&deny_port(9)).replace("enabled: true", "enabled: false"),
    );
    let marker = s.0.join("ran");
    let out = run(assay()
        .arg("monitor")
        .arg("--policy")
        .arg(&pol)
        .arg("--")
        .arg("touch")
        .arg(&marker));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--ignore-disabled"));
    assert!(!marker.exists());
    let out = run(assay()
        .arg("monitor")
        .arg("--policy")
        .arg(&pol)
        .arg("--ignore-disabled")
        .arg("--")
        .arg("touch")
        .arg(&marker));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(marker.exists());
}

#[test]
fn attach_mode_enforces_on_an_existing_cgroup_until_sigint() {
    if !common::require_root("attach_mode_enforces_on_an_existing_cgroup_until_sigint") {
        return;
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let s = Scratch::new("attach");
    let pol = s.file("p.yaml", &policy(&deny_port(port)));
    let events = s.0.join("events.jsonl");
    let cg = test_cgroup("attach");
    let mut mon = assay()
        .arg("monitor")
        .arg("--policy")
        .arg(&pol)
        .arg("--cgroup")
        .arg(cg.path())
        .arg("--events")
        .arg(&events)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let probe_in_cg = || probe_in(cg.path(), port);
    wait_for("enforcement", || probe_in_cg()["eperm"] == 1);
    // SAFETY: plain syscall on our child.
    unsafe { libc::kill(mon.id() as i32, libc::SIGINT) };
    let status = mon.wait().unwrap();
    let mut err = String::new();
    mon.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let mut out = String::new();
    mon.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(out.is_empty(), "events went to --events: {out}");
    assert!(err.contains("assay monitor summary"), "{err}");
    // Without -v, attach mode says what it enforces on which cgroup.
    assert!(
        err.contains(&format!(
            "assay: enforcing 1 network rule(s) on cgroup {}",
            cg.path().display()
        )),
        "{err}"
    );
    let evs = json_lines(&std::fs::read_to_string(&events).unwrap());
    assert!(
        evs.iter()
            .any(|e| e["kind"] == "net_connect" && e["object"]["port"] == port)
    );
    // Detached: the same connect now passes.
    wait_for("detached", || probe_in_cg()["ok"] == 1);
}

#[test]
fn pinned_enforcement_outlives_the_monitor_until_unpinned() {
    if !common::require_root("pinned_enforcement_outlives_the_monitor_until_unpinned") {
        return;
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let s = Scratch::new("pin");
    let pol = s.file("p.yaml", &policy(&deny_port(port)));
    let bpffs = s.0.join("bpffs");
    std::fs::create_dir(&bpffs).unwrap();
    let fs = std::ffi::CString::new(bpffs.to_str().unwrap()).unwrap();
    // SAFETY: valid strings; unmounted below.
    let rc = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            fs.as_ptr(),
            c"bpf".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "mount bpffs: {}", std::io::Error::last_os_error());
    let pins = bpffs.join("assay");
    let cg = test_cgroup("pin");
    let probe_in_cg = || probe_in(cg.path(), port);
    // `assay monitor` attached to `cg`, pinning into `dir`.
    let pin_into = |dir: &Path| {
        let mut c = assay();
        c.arg("monitor")
            .arg("--policy")
            .arg(&pol)
            .arg("--cgroup")
            .arg(cg.path())
            .arg("--pin")
            .arg(dir);
        c
    };
    let mut mon = pin_into(&pins)
        .arg("--events")
        .arg(s.0.join("ev"))
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("enforcement", || probe_in_cg()["eperm"] == 1);
    // SAFETY: plain syscall on our child.
    unsafe { libc::kill(mon.id() as i32, libc::SIGTERM) };
    let mut err = String::new();
    mon.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(mon.wait().unwrap().code(), Some(0), "{err}");
    assert!(err.contains("--unpin"), "{err}");
    // A second --pin into the same directory fails without touching the
    // first one's pins, and leaves none of its own.
    let before = entries(&pins);
    let second = run(&mut pin_into(&pins));
    assert_eq!(second.status.code(), Some(40), "{}", text(&second.stderr));
    let after = entries(&pins);
    assert_eq!(before, after, "{}", text(&second.stderr));
    // A pin that fails halfway (the last link's name is taken) removes the
    // pins it made before failing.
    let pins2 = bpffs.join("half");
    std::fs::create_dir_all(pins2.join("assay_sendmsg6")).unwrap();
    let half = run(&mut pin_into(&pins2));
    assert_eq!(half.status.code(), Some(40), "{}", text(&half.stderr));
    let left = entries(&pins2);
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("assay_sendmsg6")],
        "{}",
        text(&half.stderr)
    );
    // Denied while nobody reads: the event waits in the pinned ring buffer.
    assert_eq!(probe_in_cg()["eperm"], 1, "still enforced after exit");
    let late = s.0.join("late-events");
    let out = run(assay()
        .arg("monitor")
        .arg("--unpin")
        .arg(&pins)
        .arg("--policy")
        .arg(&pol)
        .arg("--events")
        .arg(&late));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let evs = json_lines(&std::fs::read_to_string(&late).unwrap_or_default());
    let denied: Vec<_> = evs
        .iter()
        .filter(|e| {
            e["kind"] == "net_connect"
                && e["rule"] == "no-admin-ports"
                && e["object"]["port"] == port
        })
        .collect();
    assert_eq!(denied.len(), 1, "the event made after exit: {evs:?} {err}");
    assert!(err.contains("events delivered: 1"), "{err}");
    assert!(!pins.exists(), "pins and their directory removed: {err}");
    wait_for("detach after unpin", || probe_in_cg()["ok"] == 1);
    // SAFETY: valid path.
    unsafe { libc::umount2(fs.as_ptr(), libc::MNT_DETACH) };
}

#[test]
fn trigger_kill_kills_the_offending_tree_and_writes_an_incident() {
    if !common::require_root("trigger_kill_kills_the_offending_tree_and_writes_an_incident") {
        return;
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let s = Scratch::new("kill");
    let incidents = s.0.join("incidents");
    let pol = s.file(
        "p.yaml",
        &kill_policy(
            &format!(
                "  enabled: true\n  mode: graceful\n  output_dir: {}\n  triggers:\n    - on_rule: exfil\n      mode: immediate\n",
                incidents.display()
            ),
            &exfil(port),
        ),
    );
    let events = s.0.join("events.jsonl");
    let started = Instant::now();
    // The offender (bash) survives its denied connect and waits on a child:
    // only the kill ends it, well before the 300 s sleep.
    let out = run(assay()
        .arg("monitor")
        .arg("--policy")
        .arg(&pol)
        .arg("--events")
        .arg(&events)
        .args([
            "--",
            "bash",
            "-c",
            &format!("echo x > /dev/tcp/127.0.0.1/{port}; sleep 300; echo survived"),
        ]));
    let err = text(&out.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the tree was not killed: {err}"
    );
    assert_eq!(
        out.status.code(),
        Some(137),
        "command killed by SIGKILL: {err}"
    );
    assert!(!text(&out.stdout).contains("survived"));
    let evs = json_lines(&std::fs::read_to_string(&events).unwrap());
    let net = evs
        .iter()
        .find(|e| e["kind"] == "net_connect")
        .expect("net event");
    assert_eq!(net["action"], "trigger_kill");
    assert_eq!(net["rule"], "exfil");
    assert_eq!(net["comm"], "bash");
    let kill = evs
        .iter()
        .find(|e| e["kind"] == "kill")
        .expect("kill event");
    assert_eq!(kill["rule"], "exfil");
    assert_eq!(kill["pid"], net["tgid"]);
    assert_eq!(kill["all_gone"], true, "{kill}");
    let dir = PathBuf::from(kill["incident"].as_str().expect("incident written"));
    assert!(dir.starts_with(&incidents), "{}", dir.display());
    assert!(dir.join("incident.json").exists());
    assert!(err.contains("kills: 1 (0 failed)"), "{err}");
}

#[test]
fn trigger_kill_in_wrapper_mode_stops_the_whole_server() {
    if !common::require_root("trigger_kill_in_wrapper_mode_stops_the_whole_server") {
        return;
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let s = Scratch::new("killsrv");
    let incidents = s.0.join("incidents");
    let pol = s.file(
        "p.yaml",
        &kill_policy(
            &format!("  enabled: true\n  output_dir: {}\n", incidents.display()),
            &exfil(port),
        ),
    );
    let events = s.0.join("events.jsonl");
    // The offender is a helper the server spawned; the server itself only
    // waits for it. Killing just the helper's tree would let the server go
    // on ("server-survived", exit 0); the whole wrapped server must stop.
    let out = run(assay()
        .arg("monitor")
        .arg("--policy")
        .arg(&pol)
        .arg("--events")
        .arg(&events)
        .args([
            "--",
            "bash",
            "-c",
            &format!(
                "bash -c 'echo x > /dev/tcp/127.0.0.1/{port}; sleep 300' & wait; \
                 echo server-survived"
            ),
        ]));
    let err = text(&out.stderr);
    assert!(!text(&out.stdout).contains("server-survived"), "{err}");
    assert_eq!(
        out.status.code(),
        Some(137),
        "server killed by SIGKILL: {err}"
    );
    let evs = json_lines(&std::fs::read_to_string(&events).unwrap());
    let kill = evs
        .iter()
        .find(|e| e["kind"] == "kill")
        .expect("kill event");
    assert_eq!(kill["all_gone"], true, "{kill}");
    let dir = PathBuf::from(kill["incident"].as_str().expect("incident written"));
    let incident: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("incident.json")).unwrap()).unwrap();
    // The server (bash) and the helper (whose bash execs its last command,
    // sleep) are both in the incident: the kill took the whole leaf.
    let procs = incident["processes"].as_array().expect("processes");
    assert!(procs.len() >= 2, "server and helper captured: {incident}");
    assert!(
        procs.iter().all(|p| p["fate"] == "gone"),
        "every process gone: {incident}"
    );
}

#[test]
fn daemon_mode_detaches_with_pid_file_and_log() {
    if !common::require_root("daemon_mode_detaches_with_pid_file_and_log") {
        return;
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let s = Scratch::new("daemon");
    let pol = s.file("p.yaml", &policy(&deny_port(port)));
    let (pid_file, log) = (s.0.join("m.pid"), s.0.join("m.log"));
    let cg = test_cgroup("daemon");
    let out = run(assay()
        .arg("monitor")
        .arg("--policy")
        .arg(&pol)
        .arg("--cgroup")
        .arg(cg.path())
        .arg("--daemon")
        .arg("--pid-file")
        .arg(&pid_file)
        .arg("--log-file")
        .arg(&log));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("in the background"));
    // One line on the terminal says what is enforced where.
    assert!(
        text(&out.stderr).contains(&format!(
            "assay: enforcing 1 network rule(s) on cgroup {}",
            cg.path().display()
        )),
        "{}",
        text(&out.stderr)
    );
    wait_for("the pid file", || pid_file.exists());
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let v = probe_in(cg.path(), port);
    assert_eq!(v["eperm"], 1, "the daemon enforces");
    // SAFETY: plain syscall on the daemon we started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    wait_for("the pid file to go", || !pid_file.exists());
    wait_for("the summary in the log", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("assay monitor summary"))
    });
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        json_lines(&logged)
            .iter()
            .any(|e| e["kind"] == "net_connect" && e["object"]["port"] == port),
        "{logged}"
    );
}

/// Ctrl-C on a terminal: the kernel sends SIGINT to the whole foreground
/// process group, the wrapped command included, so assay must not forward it
/// again. A signal sent to assay alone (kill) is still forwarded.
#[test]
fn ctrl_c_on_a_terminal_reaches_the_command_once() {
    if !common::require_root("ctrl_c_on_a_terminal_reaches_the_command_once") {
        return;
    }
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    let s = Scratch::new("tty");
    let pol = s.file("p.yaml", &policy(&deny_port(9)));
    // Counts SIGINTs for a while after saying it is ready, then reports.
    let counter = s.file(
        "count.py",
        "import signal, sys, time\nn = 0\ndef h(s, f):\n    global n\n    n += 1\n\
         signal.signal(signal.SIGINT, h)\nprint('ready', flush=True)\n\
         for _ in range(30):\n    time.sleep(0.05)\nprint('count', n, flush=True)\n",
    );
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: valid out-pointers; null name, termios and winsize are allowed.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty");
    // SAFETY: both fds were just opened and are owned here.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut cmd = assay();
    cmd.arg("monitor")
        .arg("--policy")
        .arg(&pol)
        .args(["--", "python3"])
        .arg(&counter)
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // A new session whose controlling terminal is the pty: assay's
            // group is the terminal's foreground group, as in a shell.
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    drop(slave);
    let mut out = std::fs::File::from(master);
    let mut seen = String::new();
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.contains("ready") && Instant::now() < deadline {
        match out.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert!(seen.contains("ready"), "the command started: {seen:?}");
    use std::io::Write;
    out.write_all(b"\x03").unwrap();
    while !seen.contains("count") && Instant::now() < deadline {
        match out.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    // Let the last line arrive whole.
    std::thread::sleep(Duration::from_millis(200));
    if let Ok(n) = out.read(&mut buf) {
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let status = child.wait().unwrap();
    assert!(
        seen.lines().any(|l| l.trim().ends_with("count 1")),
        "one SIGINT expected: {seen:?}"
    );
    assert_eq!(status.code(), Some(0), "{seen:?}");
}

/// A pinned trigger_kill rule would silently become a deny once the monitor
/// exits (nothing left to kill): refused before anything is loaded.
#[test]
fn pin_refuses_trigger_kill_rules() {
    if !common::require_root("pin_refuses_trigger_kill_rules") {
        return;
    }
    let s = Scratch::new("pin-kill");
    let pol = s.file("p.yaml", &kill_policy("  enabled: true\n", &exfil(9)));
    let cg = test_cgroup("pinkill");
    let out = run(assay()
        .arg("monitor")
        .arg("--policy")
        .arg(&pol)
        .arg("--cgroup")
        .arg(cg.path())
        .arg("--pin")
        .arg(s.0.join("pins")));
    drop(cg);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--pin cannot keep rule `exfil`"), "{err}");
    assert!(!s.0.join("pins").exists(), "nothing pinned: {err}");
}

/// A graceful kill waits out its grace period on the kill worker: events the
/// server produces meanwhile are decoded and written at once, none dropped,
/// and the kill's own event follows them when it ends.
#[test]
fn events_keep_flowing_during_a_graceful_kill() {
    if !common::require_root("events_keep_flowing_during_a_graceful_kill") {
        return;
    }
    const FLOOD: usize = 2000;
    const GRACE_MS: u64 = 8000;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let watched = udp.local_addr().unwrap().port();
    let s = Scratch::new("graceful-flow");
    let watch_rule = format!(
        "    - id: watch\n      type: net_connect\n      match: {{ports: [{watched}], protocols: [udp]}}\n      severity: low\n      action: log\n"
    );
    let pol = s.file(
        "p.yaml",
        &kill_policy(
            &format!(
                "  enabled: true\n  mode: graceful\n  grace_period_ms: {GRACE_MS}\n  output_dir: {}\n  triggers:\n    - on_rule: exfil\n      mode: graceful\n",
                s.path("incidents").display()
            ),
            &format!("{}{watch_rule}", exfil(port)),
        ),
    );
    let events = s.path("events.jsonl");
    // The server ignores SIGTERM (so the kill waits out its grace period),
    // triggers the kill, then sends FLOOD datagrams the `watch` rule logs.
    let script = format!(
        "trap '' TERM; echo x > /dev/tcp/127.0.0.1/{port}; \
         for i in $(seq {FLOOD}); do echo x > /dev/udp/127.0.0.1/{watched}; done; sleep 300"
    );
    let mut child = assay()
        .arg("--format")
        .arg("json")
        .arg("monitor")
        .arg("--policy")
        .arg(&pol)
        .arg("--events")
        .arg(&events)
        .args(["--", "bash", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let count = |kind: &str, rule: &str| {
        let evs = json_lines(&std::fs::read_to_string(&events).unwrap_or_default());
        evs.iter()
            .filter(|e| e["kind"] == kind && (rule.is_empty() || e["rule"] == rule))
            .count()
    };
    // Every datagram's event is written while the kill is still waiting.
    let deadline = started + Duration::from_millis(GRACE_MS * 3 / 4);
    while count("net_connect", "watch") < FLOOD && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(count("net_connect", "exfil"), 1);
    assert_eq!(
        count("net_connect", "watch"),
        FLOOD,
        "events written during the grace period"
    );
    assert_eq!(
        count("kill", ""),
        0,
        "the kill is still in its grace period"
    );
    assert!(child.try_wait().unwrap().is_none(), "the monitor runs on");

    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(137),
        "killed after the grace: {err}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(GRACE_MS),
        "the grace period was honoured"
    );
    let evs = json_lines(&std::fs::read_to_string(&events).unwrap());
    let (stop, evs) = evs.split_last().expect("events");
    assert_eq!(stop["kind"], "stop", "the run's stop event ends it: {stop}");
    let last = evs.last().expect("events");
    assert_eq!(last["kind"], "kill", "the kill's event comes last: {last}");
    assert_eq!(last["all_gone"], true, "{last}");
    assert!(!evs.iter().any(|e| e["kind"] == "drops"), "no drops");
    let summary = json_lines(&err)
        .into_iter()
        .find(|v| v.get("delivered").is_some())
        .unwrap_or_else(|| panic!("JSON summary on stderr: {err}"));
    assert_eq!(summary["dropped"], 0, "{summary}");
    assert_eq!(summary["kills"], 1, "{summary}");
}

/// A command that cannot be started is told apart from the command's own
/// exit 1, as `env` and `timeout` do: 127 not found, 126 not executable.
#[test]
fn a_command_that_cannot_start_exits_127_or_126() {
    if !common::require_root("a_command_that_cannot_start_exits_127_or_126") {
        return;
    }
    let s = Scratch::new("nocmd");
    let pol = s.file("p.yaml", &policy(&deny_port(9)));
    let out = run(assay()
        .arg("monitor")
        .arg("--policy")
        .arg(&pol)
        .args(["--", "/no/such/cmd"]));
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("assay: error: "),
        "{}",
        text(&out.stderr)
    );
    let plain = s.file("not-executable", "#!/bin/sh\nexit 0\n");
    let out = run(assay()
        .arg("monitor")
        .arg("--policy")
        .arg(&pol)
        .arg("--")
        .arg(&plain));
    assert_eq!(out.status.code(), Some(126), "{}", text(&out.stderr));
}

/// A bad `--cgroup` or a second `--daemon` is a usage error (2), not a
/// failed attach (40), and nothing is loaded.
#[test]
fn a_bad_cgroup_or_a_second_daemon_is_a_usage_error() {
    if !common::require_root("a_bad_cgroup_or_a_second_daemon_is_a_usage_error") {
        return;
    }
    let s = Scratch::new("badcg");
    let pol = s.file("p.yaml", &policy(&deny_port(9)));
    for cg in [PathBuf::from("/no/such/cgroup"), s.0.clone()] {
        let out = run(assay()
            .arg("monitor")
            .arg("--policy")
            .arg(&pol)
            .arg("--cgroup")
            .arg(&cg));
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("--cgroup"),
            "{}",
            text(&out.stderr)
        );
    }
    let cg = test_cgroup("second-daemon");
    // A pid file naming a live process (this test) stands for a running monitor.
    let pid_file = s.file("m.pid", &format!("{}\n", std::process::id()));
    let out = run(assay()
        .arg("monitor")
        .arg("--policy")
        .arg(&pol)
        .arg("--cgroup")
        .arg(cg.path())
        .arg("--daemon")
        .arg("--pid-file")
        .arg(&pid_file)
        .arg("--log-file")
        .arg(s.path("m.log")));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("running"),
        "{}",
        text(&out.stderr)
    );
    assert!(!s.path("m.log").exists(), "nothing started");
}

/// Attaching to the cgroup2 root puts the whole host in scope: assay warns
/// before anything is attached. (An invalid policy then stops the run, so
/// this test never enforces anything on the host.)
#[test]
fn attaching_to_the_cgroup2_root_warns_first() {
    if !common::require_root("attaching_to_the_cgroup2_root_warns_first") {
        return;
    }
    let root = common::cgroup2_mount().expect("cgroup2 mounted");
    let s = Scratch::new("rootcg");
    let pol = s.file("bad.yaml", "version: \"2.0\"\nbogus: 1\n");
    let out = run(assay()
        .arg("monitor")
        .arg("--policy")
        .arg(&pol)
        .arg("--cgroup")
        .arg(&root));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let warn = err.find("assay: warning: --cgroup").expect(&err);
    assert!(err[warn..].contains("every process on this host"), "{err}");
    assert!(warn < err.find("bogus").expect(&err), "warned first: {err}");
}
