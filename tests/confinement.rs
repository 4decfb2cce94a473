//! Root tier: what a wrapped command may do, tried by the command itself.
//! Wrapper mode runs it with the least privilege that still runs it: the
//! invoking user (sudo) or root without capabilities, `no_new_privs`, no
//! inherited descriptor. Each case runs the real binary as a user would.
#![cfg(all(target_os = "linux", feature = "monitor"))]

mod common;

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Output;

use assay::monitor::netguard::IcmpSender;
use common::{Netns, Scratch, assay, assert_exit, cgroup2_mount, run};

const NOBODY: u32 = 65534;

/// Root tests run one at a time: a monitor that starts tidies what dead
/// monitors left, and the fail-closed tests kill monitors on purpose. None
/// when the test is skipped (no root, outside CI).
fn root_test(name: &str) -> Option<std::sync::MutexGuard<'static, ()>> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    common::require_root(name).then(|| LOCK.lock().unwrap_or_else(|e| e.into_inner()))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A policy with one network rule (so the monitor has something to
/// enforce), in a scratch directory every user can read.
fn scratch(name: &str) -> (Scratch, std::path::PathBuf) {
    let s = Scratch::new(name);
    let pol = s.file(
        "p.yaml",
        "version: \"2.0\"\nruntime_monitor:\n  enabled: true\n  rules:\n    - id: no-telnet\n      \
         type: net_connect\n      match: {ports: [23]}\n      severity: high\n      action: deny\n",
    );
    (s, pol)
}

/// `assay monitor --policy P EXTRA -- bash -c SCRIPT`.
fn wrapped(pol: &std::path::Path, extra: &[&str], env: &[(&str, &str)], script: &str) -> Output {
    let mut c = assay();
    c.arg("monitor").arg("--policy").arg(pol).args(extra);
    for (k, v) in env {
        c.env(k, v);
    }
    run(c.args(["--", "bash", "-c", script]))
}

/// The `Key:\tvalue` lines of /proc/self/status the script printed.
fn status(out: &Output, key: &str) -> String {
    text(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in {}", text(&out.stdout)))
        .trim()
        .to_string()
}

const SHOW: &str =
    "grep -E '^(Uid|Gid|Groups|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/self/status";
const NO_CAPS: &str = "0000000000000000";

#[track_caller]
fn assert_unprivileged(out: &Output, uid: u32) {
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(status(out, cap), NO_CAPS, "{cap}: {}", text(&out.stdout));
    }
    assert_eq!(status(out, "NoNewPrivs"), "1");
    let ids = format!("{uid}\t{uid}\t{uid}\t{uid}");
    assert_eq!(status(out, "Uid"), ids);
}

#[test]
fn root_without_sudo_runs_the_command_as_root_with_no_capabilities() {
    let Some(_serial) =
        root_test("root_without_sudo_runs_the_command_as_root_with_no_capabilities")
    else {
        return;
    };
    let (_s, pol) = scratch("lp-root");
    let out = wrapped(&pol, &[], &[], SHOW);
    assert_exit(&out, 0);
    assert_unprivileged(&out, 0);
    assert!(
        text(&out.stderr).contains("runs as root with no capabilities"),
        "said on stderr: {}",
        text(&out.stderr)
    );
}

#[test]
fn under_sudo_the_command_runs_as_the_invoking_user() {
    let Some(_serial) = root_test("under_sudo_the_command_runs_as_the_invoking_user") else {
        return;
    };
    let (_s, pol) = scratch("lp-sudo");
    let sudo = [
        ("SUDO_UID", "65534"),
        ("SUDO_GID", "65534"),
        ("SUDO_USER", "nobody"),
    ];
    let out = wrapped(&pol, &[], &sudo, SHOW);
    assert_exit(&out, 0);
    assert_unprivileged(&out, NOBODY);
    assert!(
        !text(&out.stderr).contains("as root"),
        "{}",
        text(&out.stderr)
    );
    // --user chooses, and wins over sudo.
    let out = wrapped(&pol, &["--user", "nobody"], &[], SHOW);
    assert_exit(&out, 0);
    assert_unprivileged(&out, NOBODY);
    let out = wrapped(&pol, &["--user", "65534:0"], &sudo, SHOW);
    assert_exit(&out, 0);
    assert_eq!(status(&out, "Gid"), "0\t0\t0\t0");
}

#[test]
fn keep_capabilities_keeps_them_and_says_what_that_gives_up() {
    let Some(_serial) = root_test("keep_capabilities_keeps_them_and_says_what_that_gives_up")
    else {
        return;
    };
    let (_s, pol) = scratch("lp-keep");
    let out = wrapped(&pol, &["--keep-capabilities"], &[], SHOW);
    assert_exit(&out, 0);
    assert_ne!(status(&out, "CapEff"), NO_CAPS);
    let err = text(&out.stderr);
    assert!(err.contains("--keep-capabilities"), "{err}");
    assert!(err.contains("leave the monitored cgroup"), "{err}");
}

#[test]
fn descriptors_are_not_inherited_unless_passed() {
    let Some(_serial) = root_test("descriptors_are_not_inherited_unless_passed") else {
        return;
    };
    let (_s, pol) = scratch("lp-fds");
    // A descriptor of the process that starts assay, inheritable (no
    // O_CLOEXEC): a server must not get it by accident.
    // SAFETY: plain open of a path literal.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
    assert!(fd > 2);
    let script = format!("if [ -e /proc/$$/fd/{fd} ]; then echo open; else echo closed; fi");
    let out = wrapped(&pol, &[], &[], &script);
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout).trim(), "closed");
    let n = fd.to_string();
    let out = wrapped(&pol, &["--pass-fd", &n], &[], &script);
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout).trim(), "open");
    // SAFETY: closing our own descriptor.
    unsafe { libc::close(fd) };
    let out = wrapped(&pol, &["--pass-fd", &n], &[], "true");
    assert_exit(&out, 2);
    assert!(text(&out.stderr).contains("not an open descriptor"));
}

/// The command, run as the sudo user, tries to leave its cgroup, to kill
/// assay and to use bpf(): each fails, and the monitor ends normally with
/// the command's own status.
#[test]
fn a_wrapped_server_cannot_leave_the_scope_kill_assay_or_use_bpf() {
    let Some(_serial) = root_test("a_wrapped_server_cannot_leave_the_scope_kill_assay_or_use_bpf")
    else {
        return;
    };
    let (_s, pol) = scratch("lp-escape");
    let root = cgroup2_mount().unwrap();
    let script = format!(
        "echo $$ > {}/cgroup.procs && echo LEFT-THE-SCOPE; \
         kill -9 $PPID && echo KILLED-ASSAY; \
         bpftool prog list >/dev/null 2>&1 && echo USED-BPF; \
         grep -q assay-monitor- /proc/self/cgroup && echo still-in-scope; exit 7",
        root.display()
    );
    let sudo = [
        ("SUDO_UID", "65534"),
        ("SUDO_GID", "65534"),
        ("SUDO_USER", "nobody"),
    ];
    let out = wrapped(&pol, &[], &sudo, &script);
    let stdout = text(&out.stdout);
    let err = text(&out.stderr);
    assert_exit(&out, 7);
    for bad in ["LEFT-THE-SCOPE", "KILLED-ASSAY", "USED-BPF"] {
        assert!(!stdout.contains(bad), "{bad}: {stdout}\n{err}");
    }
    assert!(stdout.contains("still-in-scope"), "{stdout}");
    assert!(
        err.contains("Permission denied"),
        "cgroup.procs refused: {err}"
    );
    assert!(
        err.contains("Operation not permitted"),
        "kill refused: {err}"
    );
}

/// assay installed as a package would (`setcap CAPS=p`), in a scratch
/// directory every user can enter.
fn installed(name: &str) -> (Scratch, std::path::PathBuf) {
    let s = Scratch::new(name);
    std::fs::set_permissions(&s.0, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let bin = common::install_with_capabilities(
        &common::assay_bin(),
        &s.0,
        assay::caps::mask(&assay::caps::NEEDED) | assay::caps::mask(&[assay::caps::MEMLOCK]),
    );
    (s, bin)
}

/// `assay monitor --policy P ARGS` as uid `NOBODY`, from `bin`.
fn as_nobody(bin: &std::path::Path, pol: &std::path::Path, args: &[&str]) -> Output {
    run(common::assay_at(bin)
        .uid(NOBODY)
        .gid(NOBODY)
        .args(["monitor", "--policy"])
        .arg(pol)
        .args(args))
}

/// The README's MCP-client line, from an ordinary account: with the
/// installed capabilities a user gets enforcement without sudo, the command
/// runs as that user with every capability set empty, and it can neither
/// leave the scope nor reach the pins that keep it confined.
#[test]
fn a_user_with_the_installed_capabilities_confines_their_own_command() {
    let Some(_serial) =
        root_test("a_user_with_the_installed_capabilities_confines_their_own_command")
    else {
        return;
    };
    let (s, bin) = installed("usercaps");
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sink.local_addr().unwrap().port();
    let pol = deny_policy(&s, port);
    let root = cgroup2_mount().unwrap();
    let script = format!(
        "{SHOW}; echo assay $PPID; echo leak > /dev/udp/127.0.0.1/{port} && echo sent; \
         echo $$ > {}/cgroup.procs && echo left; ls {PINS}/leaf-* >/dev/null 2>&1 && echo pins; \
         grep -q assay-monitor- /proc/self/cgroup && echo confined",
        root.display()
    );
    let out = as_nobody(&bin, &pol, &["--", "bash", "-c", &script]);
    assert_exit(&out, 0);
    assert_unprivileged(&out, NOBODY);
    let said = text(&out.stdout);
    for (word, why) in [
        ("sent", "the denied datagram was sent"),
        ("left", "the command left its cgroup"),
        ("pins", "the command listed the pins"),
    ] {
        assert!(!said.lines().any(|l| l == word), "{why}: {said}");
    }
    assert!(said.lines().any(|l| l == "confined"), "{said}");
    assert!(!received(&sink), "the datagram arrived");
    let err = text(&out.stderr);
    let denied = err
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["rule"] == "exfil-port")
        .unwrap_or_else(|| panic!("no event for the denied send: {err}"));
    assert_eq!(denied["action"], "deny", "{denied}");
    assert_eq!(denied["object"]["port"], port, "{denied}");
    assert_eq!(denied["object"]["protocol"], "udp", "{denied}");
    // Stopped normally: nothing left pinned or created.
    let pid = said
        .lines()
        .find_map(|l| l.strip_prefix("assay "))
        .unwrap_or_else(|| panic!("no pid in {said}"));
    let pins = std::path::Path::new(PINS).join(format!("leaf-{pid}"));
    assert!(!pins.exists(), "{} left", pins.display());
    assert!(
        !root.join(format!("assay-monitor-{pid}")).exists(),
        "leaf left"
    );
}

/// A user's monitor runs as that user, so the command (same uid) can kill
/// it; what keeps the scope closed then is the pins, which the user cannot
/// reach: a `setsid` grandchild's send after the kill is still denied, and
/// the dead monitor is the user's own to tidy on the next start.
#[test]
fn a_user_monitor_killed_by_its_command_stays_closed() {
    let Some(_serial) = root_test("a_user_monitor_killed_by_its_command_stays_closed") else {
        return;
    };
    let (s, bin) = installed("usercaps-killed");
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sink.local_addr().unwrap().port();
    let pol = deny_policy(&s, port);
    let out_dir = s.path("out");
    std::fs::create_dir(&out_dir).unwrap();
    std::os::unix::fs::chown(&out_dir, Some(NOBODY), Some(NOBODY)).unwrap();
    let said = out_dir.join("said");
    let script = format!(
        "setsid sh -c 'sleep 1; rm -rf {PINS}/leaf-$0 2>/dev/null; \
         echo leak > /dev/udp/127.0.0.1/{port} && echo sent > {0}; echo done >> {0}' $PPID & \
         kill -9 $PPID",
        said.display()
    );
    let out = as_nobody(&bin, &pol, &["--", "sh", "-c", &script]);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGKILL),
        "{}",
        text(&out.stderr)
    );
    wait_for(&said);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let told = std::fs::read_to_string(&said).unwrap();
    assert_eq!(told.trim(), "done", "the grandchild's send went through");
    assert!(!received(&sink), "the datagram arrived after assay died");
    // The next start by the same user tidies its own dead monitor.
    let (_p, ok_pol) = scratch("usercaps-killed-next");
    std::fs::set_permissions(&_p.0, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let next = as_nobody(&bin, &ok_pol, &["--", "true"]);
    assert_exit(&next, 0);
    assert!(
        text(&next.stderr).contains("died"),
        "tidied on start: {}",
        text(&next.stderr)
    );
}

/// A user may attach to a cgroup of their own (a delegated one): the
/// network rule holds there, with its event, and stops with the monitor.
#[test]
fn a_user_may_attach_to_a_cgroup_they_own() {
    let Some(_serial) = root_test("a_user_may_attach_to_a_cgroup_they_own") else {
        return;
    };
    let (s, bin) = installed("usercaps-attach");
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let pol = deny_policy(&s, port);
    let out_dir = s.path("out");
    std::fs::create_dir(&out_dir).unwrap();
    std::os::unix::fs::chown(&out_dir, Some(NOBODY), Some(NOBODY)).unwrap();
    let events = out_dir.join("events.jsonl");
    let cg = common::TestCgroup::new("usercaps-own");
    std::os::unix::fs::chown(cg.path(), Some(NOBODY), Some(NOBODY)).unwrap();
    let mon = common::assay_at(&bin)
        .uid(NOBODY)
        .gid(NOBODY)
        .args(["monitor", "--policy"])
        .arg(&pol)
        .arg("--cgroup")
        .arg(cg.path())
        .arg("--events")
        .arg(&events)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::os::unix::fs::MetadataExt;
    let id = std::fs::metadata(cg.path()).unwrap().ino();
    wait_for(
        &std::path::Path::new(PINS)
            .join(format!("cgroup-{id}-{}", mon.id()))
            .join("assay_connect4"),
    );
    let r = probe_in(cg.path(), port);
    assert_eq!(
        (r["eperm"].as_u64(), r["ok"].as_u64()),
        (Some(1), Some(0)),
        "{r}"
    );
    // SAFETY: plain syscall on our child.
    unsafe { libc::kill(mon.id() as i32, libc::SIGTERM) };
    let out = mon.wait_with_output().unwrap();
    assert_exit(&out, 0);
    let evs: Vec<serde_json::Value> = std::fs::read_to_string(&events)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        evs.iter().any(|e| e["kind"] == "net_connect"
            && e["rule"] == "exfil-port"
            && e["action"] == "deny"),
        "{evs:?} / {}",
        text(&out.stderr)
    );
    // Stopped: the same connect from the cgroup goes through.
    let r = probe_in(cg.path(), port);
    assert_eq!(r["ok"].as_u64(), Some(1), "{r}");
}

/// Running assay with its capabilities gives a user nothing beyond
/// confining their own command: no other user, no kept capabilities, no
/// cgroup or pins of others, no file they could not open themselves. And
/// without the capabilities it says what to install.
#[test]
fn a_user_cannot_use_assay_beyond_their_own_command() {
    let Some(_serial) = root_test("a_user_cannot_use_assay_beyond_their_own_command") else {
        return;
    };
    let (s, bin) = installed("usercaps-limits");
    let (_s2, pol) = scratch("usercaps-pol");
    std::fs::set_permissions(&_s2.0, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let refused = |args: &[&str], says: &str| {
        let out = as_nobody(&bin, &pol, args);
        assert_exit(&out, 2);
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    };
    for who in ["root", "0", "nobody:root"] {
        refused(
            &["--user", who, "--", "true"],
            "only root may run the command as another user",
        );
    }
    refused(
        &["--keep-capabilities", "--", "true"],
        "--keep-capabilities: only root",
    );
    let cg = common::TestCgroup::new("usercaps-theirs");
    let theirs = cg.path().to_str().unwrap().to_string();
    refused(&["--cgroup", &theirs], "not yours");
    refused(&["--cgroup", &theirs, "--pin", PINS], "only root");
    let out = run(common::assay_at(&bin)
        .uid(NOBODY)
        .gid(NOBODY)
        .args(["monitor", "--cleanup"]));
    assert_exit(&out, 2);
    // Files are opened with the user's own rights: a root-only policy is
    // unreadable, and events cannot be written into root's directory.
    let secret = s.file("root-only.yaml", &std::fs::read_to_string(&pol).unwrap());
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = as_nobody(&bin, &secret, &["--", "true"]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("ermission denied"),
        "{}",
        text(&out.stderr)
    );
    let events = s.path("events.jsonl");
    let out = as_nobody(
        &bin,
        &pol,
        &["--events", events.to_str().unwrap(), "--", "true"],
    );
    assert_ne!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!events.exists(), "events written into root's directory");
    // The same binary without its capabilities: what to install.
    let plain = s.path("plain");
    std::fs::create_dir(&plain).unwrap();
    std::fs::set_permissions(&plain, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let bare = plain.join("assay");
    std::fs::copy(common::assay_bin(), &bare).unwrap();
    let out = as_nobody(&bare, &pol, &["--", "true"]);
    assert_exit(&out, 40);
    let err = text(&out.stderr);
    assert!(err.contains("setcap cap_bpf,"), "{err}");
    assert!(err.contains(&format!("uid {NOBODY} lacks")), "{err}");
    assert!(!err.contains("  "), "one line, single spaces: {err}");
}

fn netbench() -> &'static str {
    env!("CARGO_BIN_EXE_assay-netbench")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {} / {}", text(&out.stdout), text(&out.stderr)))
}

/// The tamper events written to `events`.
fn tampers(events: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(events)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["kind"] == "tamper")
        .collect()
}

/// Whether a datagram reaches `sock` within a short wait.
fn received(sock: &std::net::UdpSocket) -> bool {
    sock.set_read_timeout(Some(std::time::Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 64];
    sock.recv(&mut buf).is_ok()
}

/// A raw socket would send past the connect/sendmsg hooks: in scope, with a
/// network rule, it is refused at creation with a tamper event, even for a
/// command that kept root's capabilities and for a root shell in attach
/// mode. Outside the scope the same datagram arrives (so the test can fail).
#[test]
fn raw_sockets_are_refused_in_scope_with_a_tamper_event() {
    let Some(_serial) = root_test("raw_sockets_are_refused_in_scope_with_a_tamper_event") else {
        return;
    };
    let (s, pol) = scratch("raw");
    let listener = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = listener.local_addr().unwrap().to_string();
    let raw = ["socket", "--kind", "raw", "--to", &to];
    // Baseline, outside any scope: created, sent, received.
    let base = json(&run(std::process::Command::new(netbench()).args(raw)));
    assert_eq!(base["created"], true, "{base}");
    assert!(
        received(&listener),
        "the raw datagram arrives outside the scope"
    );

    // Wrapper mode, capabilities kept.
    let events = s.path("events.jsonl");
    let out = run(assay()
        .args(["monitor", "--keep-capabilities", "--policy"])
        .arg(&pol)
        .arg("--events")
        .arg(&events)
        .arg("--")
        .arg(netbench())
        .args(raw));
    assert_exit(&out, 0);
    let r = json(&out);
    assert_eq!(
        (r["created"].as_bool(), r["errno"].as_i64()),
        (Some(false), Some(1)),
        "{r}"
    );
    assert!(!received(&listener), "nothing arrived");
    let t = tampers(&events);
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(t[0]["operation"], "raw_socket");
    assert_eq!(t[0]["object"]["type"], "raw");
    assert_eq!(t[0]["object"]["protocol"], 17);

    // Default wrapper mode: no CAP_NET_RAW, so the kernel refuses first;
    // packet sockets likewise.
    for kind in ["raw", "packet"] {
        let out = run(assay()
            .args(["monitor", "--policy"])
            .arg(&pol)
            .arg("--")
            .arg(netbench())
            .args(["socket", "--kind", kind, "--to", &to]));
        assert_exit(&out, 0);
        assert_eq!(json(&out)["created"], false, "{kind}");
    }
    assert!(!received(&listener));

    // Attach mode: a root shell with every capability, placed in the scope.
    let cg = common::TestCgroup::new("assay-test-raw");
    let events = s.path("attach.jsonl");
    let mut mon = assay()
        .args(["monitor", "--policy"])
        .arg(&pol)
        .arg("--cgroup")
        .arg(cg.path())
        .arg("--events")
        .arg(&events)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Enforcement is attached once the monitor's programs are on the cgroup.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let r = loop {
        let out = run(std::process::Command::new("sh").arg("-c").arg(format!(
            "echo $$ > {}/cgroup.procs && exec {} socket --kind raw --to {to}",
            cg.path().display(),
            netbench()
        )));
        let r = json(&out);
        if r["created"] == false || std::time::Instant::now() > deadline {
            break r;
        }
        let _ = received(&listener);
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(
        (r["created"].as_bool(), r["errno"].as_i64()),
        (Some(false), Some(1)),
        "{r}"
    );
    // SAFETY: signalling the monitor we started.
    unsafe { libc::kill(mon.id() as i32, libc::SIGINT) };
    let status = mon.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let t = tampers(&events);
    assert!(
        !t.is_empty() && t.iter().all(|e| e["operation"] == "raw_socket"),
        "{t:?}"
    );
}

/// Ping sockets send ICMP with sendto(), which no cgroup address hook sees.
/// Where no rule covers ICMP (a port rule; an allowlist limited to tcp) they
/// are refused at creation in scope (tamper event) even where every group
/// may open them, so no ping goes unjudged; outside the scope the echo is
/// answered.
#[test]
fn ping_sockets_are_refused_where_no_rule_covers_icmp() {
    let Some(_serial) = root_test("ping_sockets_are_refused_where_no_rule_covers_icmp") else {
        return;
    };
    let (s, ports_only) = scratch("ping");
    let tcp_only = s.file(
        "tcp.yaml",
        "version: \"2.0\"\nruntime_monitor:\n  enabled: true\n  rules:\n    - id: egress\n      \
         type: net_connect\n      match: {outside_cidrs: [127.0.0.1/32], protocols: [tcp]}\n      \
         severity: high\n      action: deny\n",
    );
    let ns = Netns::new("assay-ping");
    let ping = [
        "socket",
        "--kind",
        "ping",
        "--to",
        "127.0.0.1:0",
        "--reply-ms",
        "1000",
    ];
    let base = json(&run(
        &mut ns.exec(std::process::Command::new(netbench()).args(ping))
    ));
    assert_eq!(
        (base["created"].as_bool(), base["replied"].as_bool()),
        (Some(true), Some(true)),
        "{base}"
    );

    for (name, pol) in [("ports", &ports_only), ("tcp", &tcp_only)] {
        let events = s.path(&format!("{name}.jsonl"));
        let mut c = assay();
        c.args(["monitor", "--policy"])
            .arg(pol)
            .arg("--events")
            .arg(&events)
            .arg("--")
            .arg(netbench())
            .args(ping);
        let out = run(&mut ns.exec(&mut c));
        assert_exit(&out, 0);
        let r = json(&out);
        assert_eq!(
            (r["created"].as_bool(), r["errno"].as_i64()),
            (Some(false), Some(1)),
            "{name}: {r}"
        );
        let t = tampers(&events);
        assert_eq!(t.len(), 1, "{name}: {t:?}");
        assert_eq!(t[0]["operation"], "ping_socket");
        assert_eq!(t[0]["object"]["type"], "dgram");
        assert_eq!(t[0]["object"]["protocol"], 1);
    }
}

/// The events of `kind` written to `events`.
fn events_of(events: &std::path::Path, kind: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(events)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["kind"] == kind)
        .collect()
}

/// One ping of [`icmp_is_judged_per_destination_in_scope`].
struct IcmpCase {
    what: &'static str,
    /// assay-netbench's arguments.
    args: Vec<String>,
    /// The namespace's counter that moves when the packet leaves.
    counter: &'static str,
    allowed: bool,
    /// Source-routed through the allowed 127.0.0.1.
    lsrr: bool,
}

/// An allowlist rule (no ports) covers ICMP: in scope a ping to an allowed
/// address is answered, one elsewhere never leaves (the namespace's echo
/// counter does not move) and a deny event names it, for IPv4 and IPv6. A
/// source route (IPv4 options) would make the header's destination a hop
/// the allowlist holds while the echo goes on elsewhere: such packets are
/// dropped with a tamper event. Outside the scope every one of them leaves.
#[test]
fn icmp_is_judged_per_destination_in_scope() {
    let Some(_serial) = root_test("icmp_is_judged_per_destination_in_scope") else {
        return;
    };
    let s = Scratch::new("icmp");
    let pol = s.file(
        "p.yaml",
        "version: \"2.0\"\nruntime_monitor:\n  enabled: true\n  rules:\n    - id: egress\n      \
         type: net_connect\n      match: {outside_cidrs: [127.0.0.1/32, \"::1/128\"]}\n      \
         severity: high\n      action: deny\n",
    );
    // Who sent a denied packet, where the kernel says (Linux 6.0 and later).
    let sender = match IcmpSender::probe() {
        IcmpSender::Named => serde_json::json!("assay-netbench"),
        IcmpSender::Unnamed => serde_json::Value::Null,
    };
    let ns = Netns::new("assay-icmp");
    // A local IPv6 address outside the allowlist.
    ns.ip(&[
        "-6",
        "addr",
        "add",
        "fd00:a55a::2/128",
        "dev",
        "lo",
        "nodad",
    ]);
    let case = |what, to: &str, counter, allowed, lsrr: bool| IcmpCase {
        what,
        args: ["socket", "--kind", "ping", "--to", to, "--reply-ms", "1000"]
            .into_iter()
            .chain(if lsrr {
                vec!["--lsrr", "127.0.0.1"]
            } else {
                vec![]
            })
            .map(String::from)
            .collect(),
        counter,
        allowed,
        lsrr,
    };
    let cases = [
        case("v4 allowed", "127.0.0.1:0", "Icmp:InEchos", true, false),
        case("v4 denied", "127.0.0.2:0", "Icmp:InEchos", false, false),
        case("v6 allowed", "[::1]:0", "Icmp6InEchos", true, false),
        case(
            "v6 denied",
            "[fd00:a55a::2]:0",
            "Icmp6InEchos",
            false,
            false,
        ),
        // Through the allowed hop: counted on arrival, before any option
        // check.
        case(
            "v4 source-routed",
            "127.0.0.2:0",
            "Ip:InReceives",
            false,
            true,
        ),
    ];
    for IcmpCase {
        what,
        args,
        counter,
        allowed,
        lsrr,
    } in &cases
    {
        // Baseline outside any scope: the packet leaves (so the test can fail).
        let before = ns.counter(counter);
        let base = json(&run(
            &mut ns.exec(std::process::Command::new(netbench()).args(args))
        ));
        assert_eq!(base["sent"], true, "{what} outside the scope: {base}");
        assert!(
            ns.counter(counter) > before,
            "{what} leaves outside the scope"
        );
        if !lsrr {
            assert_eq!(base["replied"], true, "{what} outside the scope: {base}");
        }

        let events = s.path("events.jsonl");
        let _ = std::fs::remove_file(&events);
        let before = ns.counter(counter);
        let mut c = assay();
        c.arg("monitor");
        if *lsrr {
            // Setting IP options needs CAP_NET_RAW on recent kernels: a
            // command that kept root's capabilities.
            c.arg("--keep-capabilities");
        }
        c.arg("--policy")
            .arg(&pol)
            .arg("--events")
            .arg(&events)
            .arg("--")
            .arg(netbench())
            .args(args);
        let out = run(&mut ns.exec(&mut c));
        assert_exit(&out, 0);
        let r = json(&out);
        let moved = ns.counter(counter) - before;
        let net = events_of(&events, "net_sendmsg");
        let tamper = tampers(&events);
        assert_eq!(
            r["created"], true,
            "{what}: a ping socket is judged, not refused: {r}"
        );
        if *allowed {
            assert_eq!(r["replied"], true, "{what}: {r}");
            assert!(moved >= 1, "{what}: the echo arrived");
            assert!(
                net.is_empty() && tamper.is_empty(),
                "{what}: {net:?} {tamper:?}"
            );
            continue;
        }
        assert_eq!(r["replied"], false, "{what}: {r}");
        assert_eq!(moved, 0, "{what}: nothing left the scope");
        if args.iter().any(|a| a == "--lsrr") {
            assert_eq!(
                r["options_errno"], 0,
                "{what}: the source route was set: {r}"
            );
            assert_eq!(tamper.len(), 1, "{what}: {tamper:?}");
            assert_eq!(tamper[0]["operation"], "icmp_options");
            assert_eq!(tamper[0]["object"]["family"], "inet");
            assert_eq!(tamper[0]["object"]["header_len"], 28);
            assert_eq!(tamper[0]["comm"], sender);
            assert!(net.is_empty(), "{what}: {net:?}");
            continue;
        }
        assert!(tamper.is_empty(), "{what}: {tamper:?}");
        assert_eq!(net.len(), 1, "{what}: {net:?}");
        let (family, address, protocol) = if what.starts_with("v4") {
            ("inet", "127.0.0.2", "icmp")
        } else {
            ("inet6", "fd00:a55a::2", "icmpv6")
        };
        let e = &net[0];
        assert_eq!(
            (&e["rule"], &e["action"], &e["comm"]),
            (&"egress".into(), &"deny".into(), &sender),
            "{what}: {e}"
        );
        assert_eq!(
            e["object"],
            serde_json::json!({"family": family, "address": address, "port": 0,
                               "protocol": protocol}),
            "{what}"
        );
    }
}

/// Attach mode: while a monitor judges a cgroup's pings, a process outside
/// it pings the same denied address and is answered.
#[test]
fn icmp_judging_leaves_processes_outside_the_scope_alone() {
    let Some(_serial) = root_test("icmp_judging_leaves_processes_outside_the_scope_alone") else {
        return;
    };
    let s = Scratch::new("icmp-attach");
    let pol = s.file(
        "p.yaml",
        "version: \"2.0\"\nruntime_monitor:\n  enabled: true\n  rules:\n    - id: egress\n      \
         type: net_connect\n      match: {outside_cidrs: [127.0.0.1/32]}\n      \
         severity: high\n      action: deny\n",
    );
    let ns = Netns::new("assay-icmp-attach");
    let cg = common::TestCgroup::new("assay-test-icmp");
    let events = s.path("events.jsonl");
    let mut mon = assay()
        .args(["monitor", "--policy"])
        .arg(&pol)
        .arg("--cgroup")
        .arg(cg.path())
        .arg("--events")
        .arg(&events)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ping = format!(
        "nsenter --net={} {} socket --kind ping --to 127.0.0.2:0 --reply-ms 1000",
        ns.path(),
        netbench()
    );
    // Judged once the monitor's programs are on the cgroup.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let inside = loop {
        let out = run(std::process::Command::new("sh").arg("-c").arg(format!(
            "echo $$ > {}/cgroup.procs && exec {ping}",
            cg.path().display()
        )));
        let r = json(&out);
        if r["replied"] == false || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let outside = json(&run(std::process::Command::new("sh").arg("-c").arg(&ping)));
    // SAFETY: signalling the monitor we started.
    unsafe { libc::kill(mon.id() as i32, libc::SIGINT) };
    assert_eq!(mon.wait().unwrap().code(), Some(0));
    assert_eq!(
        (inside["created"].as_bool(), inside["replied"].as_bool()),
        (Some(true), Some(false)),
        "{inside}"
    );
    assert_eq!(outside["replied"], true, "outside the scope: {outside}");
    let net = events_of(&events, "net_sendmsg");
    assert!(
        !net.is_empty()
            && net
                .iter()
                .all(|e| e["object"]["address"] == "127.0.0.2" && e["action"] == "deny"),
        "{net:?}"
    );
}

/// Root without capabilities keeps uid 0 but not the power over the scope
/// that capabilities give: bpf() (to detach or rewrite enforcement) and
/// ptrace of assay (which holds more capabilities) are refused.
#[test]
fn root_without_capabilities_cannot_use_bpf_or_trace_assay() {
    let Some(_serial) = root_test("root_without_capabilities_cannot_use_bpf_or_trace_assay") else {
        return;
    };
    let (_s, pol) = scratch("lp-rootbpf");
    let script = "bpftool prog list >/dev/null 2>&1 && echo USED-BPF; \
                  cat /proc/$PPID/environ >/dev/null 2>&1 && echo READ-ASSAY-ENV; \
                  readlink /proc/$PPID/exe >/dev/null 2>&1 && echo READ-ASSAY-EXE; echo done";
    let out = wrapped(&pol, &[], &[], script);
    assert_exit(&out, 0);
    assert_eq!(text(&out.stdout).trim(), "done", "{}", text(&out.stderr));
}

/// Waits (bounded) until `p` exists.
fn wait_for(p: &std::path::Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !p.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never appeared",
            p.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A connect from a process placed in `cg` (as root): the probe's report.
fn probe_in(cg: &std::path::Path, port: u16) -> serde_json::Value {
    json(&run(std::process::Command::new("sh").arg("-c").arg(
        format!(
            "echo $$ > {}/cgroup.procs && exec {} probe --addr 127.0.0.1:{port}",
            cg.display(),
            netbench()
        ),
    )))
}

fn deny_policy(s: &Scratch, port: u16) -> std::path::PathBuf {
    s.file(
        "deny.yaml",
        &format!(
            "version: \"2.0\"\nruntime_monitor:\n  enabled: true\n  rules:\n    - id: exfil-port\n      \
             type: net_connect\n      match: {{ports: [{port}]}}\n      severity: high\n      action: deny\n"
        ),
    )
}

const PINS: &str = "/sys/fs/bpf/assay";

/// SIGKILL of assay (what a command kept as root can do) leaves no process
/// of its scope unconfined: the pinned programs go on enforcing on the leaf,
/// where a `setsid` grandchild survived, until `--cleanup` reports the dead
/// monitor, kills what it left and removes the pins.
#[test]
fn a_killed_monitor_leaves_its_scope_confined_until_cleanup() {
    let Some(_serial) = root_test("a_killed_monitor_leaves_its_scope_confined_until_cleanup")
    else {
        return;
    };
    let s = Scratch::new("failclosed");
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let pol = deny_policy(&s, port);
    let mut mon = assay()
        .args(["monitor", "--policy"])
        .arg(&pol)
        .args(["--", "sh", "-c", "setsid sleep 300 & sleep 300"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = mon.id();
    let pins = std::path::Path::new(PINS).join(format!("leaf-{pid}"));
    wait_for(&pins.join("assay_connect4"));
    let leaf = cgroup2_mount()
        .unwrap()
        .join(format!("assay-monitor-{pid}"));
    // The command and its setsid grandchild are running.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::read_to_string(leaf.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .count()
        < 3
    {
        assert!(std::time::Instant::now() < deadline, "the command started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    mon.kill().unwrap();
    mon.wait().unwrap();

    // The grandchild is still in the leaf, and so is enforcement.
    let procs = std::fs::read_to_string(leaf.join("cgroup.procs")).unwrap();
    assert!(!procs.trim().is_empty(), "the setsid grandchild survived");
    let r = probe_in(&leaf, port);
    assert_eq!(
        (r["eperm"].as_u64(), r["ok"].as_u64()),
        (Some(1), Some(0)),
        "{r}"
    );

    let out = run(assay().args(["monitor", "--cleanup", "--policy"]).arg(&pol));
    assert_exit(&out, 0);
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("wrapper-mode monitor (pid {pid})")),
        "{err}"
    );
    assert!(err.contains("were killed"), "{err}");
    // The connect denied after the monitor died is reported, by rule.
    let evs: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        evs.iter()
            .any(|e| e["kind"] == "net_connect" && e["rule"] == "exfil-port"),
        "{evs:?}"
    );
    assert!(!leaf.exists(), "leaf removed");
    assert!(!pins.exists(), "pins removed");
    // Nothing left to tidy.
    let out = run(assay().args(["monitor", "--cleanup"]));
    assert_exit(&out, 0);
    assert!(text(&out.stderr).contains("no monitor that died left anything behind"));
}

/// The next monitor started tidies what a killed wrapper-mode monitor left,
/// and says so.
#[test]
fn the_next_monitor_tidies_what_a_killed_one_left() {
    let Some(_serial) = root_test("the_next_monitor_tidies_what_a_killed_one_left") else {
        return;
    };
    let s = Scratch::new("failclosed-next");
    let pol = deny_policy(&s, 9);
    let mut dead = assay()
        .args(["monitor", "--policy"])
        .arg(&pol)
        .args(["--", "sleep", "300"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = dead.id();
    let pins = std::path::Path::new(PINS).join(format!("leaf-{pid}"));
    wait_for(&pins.join("assay_connect4"));
    dead.kill().unwrap();
    dead.wait().unwrap();
    let leaf = cgroup2_mount()
        .unwrap()
        .join(format!("assay-monitor-{pid}"));
    assert!(leaf.exists());

    let out = run(assay()
        .args(["monitor", "--policy"])
        .arg(&pol)
        .args(["--", "true"]));
    assert_exit(&out, 0);
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("wrapper-mode monitor (pid {pid})")),
        "{err}"
    );
    assert!(!leaf.exists() && !pins.exists(), "tidied: {err}");
}

/// Attach mode: the scope's services keep running under the dead monitor's
/// pinned enforcement; a new monitor of the same cgroup takes over and
/// removes the old pins.
#[test]
fn a_killed_attach_monitor_keeps_enforcing_until_taken_over() {
    let Some(_serial) = root_test("a_killed_attach_monitor_keeps_enforcing_until_taken_over")
    else {
        return;
    };
    let s = Scratch::new("failclosed-attach");
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let pol = deny_policy(&s, port);
    let cg = common::TestCgroup::new("assay-test-failclosed");
    let start = || {
        assay()
            .args(["monitor", "--policy"])
            .arg(&pol)
            .arg("--cgroup")
            .arg(cg.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    use std::os::unix::fs::MetadataExt;
    let id = std::fs::metadata(cg.path()).unwrap().ino();
    let mut first = start();
    let pins = std::path::Path::new(PINS).join(format!("cgroup-{id}-{}", first.id()));
    wait_for(&pins.join("assay_connect4"));
    first.kill().unwrap();
    first.wait().unwrap();
    let r = probe_in(cg.path(), port);
    assert_eq!(r["eperm"].as_u64(), Some(1), "still enforced: {r}");

    let second = start();
    let own = std::path::Path::new(PINS).join(format!("cgroup-{id}-{}", second.id()));
    wait_for(&own.join("assay_connect4"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while pins.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!pins.exists(), "the dead monitor's pins were taken over");
    let r = probe_in(cg.path(), port);
    assert_eq!(
        r["eperm"].as_u64(),
        Some(1),
        "enforced by the new monitor: {r}"
    );
    // SAFETY: signalling the monitor we started.
    unsafe { libc::kill(second.id() as i32, libc::SIGINT) };
    let out = second.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("attach-mode monitor (pid {})", first.id())),
        "{err}"
    );
    assert!(!own.exists(), "a normal stop removes its own pins");
}

/// `runtime_monitor.self_protection.raw_sockets: false` turns the socket
/// guard off (and only it): a raw socket is then created in scope.
#[test]
fn a_policy_may_turn_the_socket_guard_off() {
    let Some(_serial) = root_test("a_policy_may_turn_the_socket_guard_off") else {
        return;
    };
    let s = Scratch::new("guard-off");
    let pol = s.file(
        "p.yaml",
        "version: \"2.0\"\nruntime_monitor:\n  enabled: true\n  self_protection:\n    raw_sockets: false\n  rules:\n    - id: no-telnet\n      \
         type: net_connect\n      match: {ports: [23]}\n      severity: high\n      action: deny\n",
    );
    let events = s.path("events.jsonl");
    let out = run(assay()
        .args(["monitor", "--keep-capabilities", "--policy"])
        .arg(&pol)
        .arg("--events")
        .arg(&events)
        .arg("--")
        .arg(netbench())
        .args(["socket", "--kind", "raw"]));
    assert_exit(&out, 0);
    assert_eq!(json(&out)["created"], true, "{}", text(&out.stderr));
    assert!(tampers(&events).is_empty());
}
