//! Root tier: `assay kill` on real process trees. Every test checks that each
//! process is gone (exited: reaped, vanished, or a zombie awaiting a parent
//! that does not reap), and that the incident written is complete and parses
//! back into the typed report.
#![cfg(target_os = "linux")]

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use assay::kill_switch::capture::ProcessCapture;
use assay::kill_switch::procfs;
use assay::kill_switch::report::{Fate, KillReport, Via};
use common::{Scratch, TestCgroup, assay, assert_exit, run, run_assay};

/// A process identity: (pid, start time).
#[derive(Debug, Clone, Copy)]
struct Ident(i32, u64);

fn ident(pid: i32) -> Ident {
    Ident(
        pid,
        procfs::read_stat(pid).expect("process exists").start_time,
    )
}

/// Still running: same process at that pid and not exited.
fn running(p: Ident) -> bool {
    procfs::read_stat(p.0).is_some_and(|s| s.start_time == p.1 && !s.is_dead())
}

/// Kill processes the test started, whatever happened (no leaks on failure).
struct Cleanup(Vec<Ident>);
impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            if running(*p) {
                // SAFETY: plain kill of a process this test started and verified.
                unsafe { libc::kill(p.0, libc::SIGKILL) };
            }
        }
    }
}

/// `assay kill ARGS --capture-state --output DIR --format json`.
fn kill_captured(args: &[&str], dir: &str) -> Output {
    let mut all = vec!["kill"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--capture-state", "--output", dir, "--format", "json"]);
    run_assay(&all)
}

/// Wait until `file` has `n` lines (pids written by the tree being built).
fn read_pids(file: &Path, n: usize) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(t) = std::fs::read_to_string(file) {
            let v: Vec<i32> = t.lines().filter_map(|l| l.trim().parse().ok()).collect();
            if v.len() >= n {
                return v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "tree did not start: {}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn bash(script: &str) -> Command {
    let mut c = Command::new("bash");
    c.arg("-c").arg(script).stdin(Stdio::null());
    c
}

/// Parse stdout as the report and check it equals the incident on disk, and
/// that every process captured has a complete, parseable state file.
fn check_incident(out: &Output) -> KillReport {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: KillReport = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is the report ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(report.schema, "assay.incident/v1");
    let dir = report
        .incident_dir
        .clone()
        .expect("an incident was written");
    let on_disk: KillReport =
        serde_json::from_slice(&std::fs::read(dir.join("incident.json")).unwrap()).unwrap();
    assert_eq!(on_disk, report, "incident.json is the printed report");
    let tmp_left = std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".tmp-")
        })
        .count();
    assert_eq!(tmp_left, 0, "no temporary incident left behind");
    for p in &report.processes {
        if p.message.as_deref() == Some("had already exited when identified") {
            continue;
        }
        let rel = p
            .capture_file
            .as_ref()
            .unwrap_or_else(|| panic!("pid {} captured: {:?}", p.pid, p.capture_error));
        let c: ProcessCapture =
            serde_json::from_slice(&std::fs::read(dir.join(rel)).unwrap()).unwrap();
        assert_eq!((c.pid, c.start_time), (p.pid, p.start_time));
        assert_eq!(c.errors.is_empty(), p.capture_error.is_none());
        if p.capture_error.is_some() {
            // A short-lived process (e.g. a `sleep 0.05` of a loop) may exit
            // while it is read; what could not be read is listed.
            continue;
        }
        assert!(!c.cmdline.is_empty(), "cmdline of {}", p.pid);
        assert!(
            c.exe.is_some() && c.cwd.is_some(),
            "exe/cwd of {}: {:?}",
            p.pid,
            c.errors
        );
        assert_eq!(c.status.ppid, Some(p.ppid));
        assert_eq!(c.status.uid.len(), 4);
        assert!(!c.limits.is_empty() && !c.cgroup.is_empty());
        assert!(!c.fds.is_empty());
        assert!(c.maps.as_ref().is_some_and(|m| m.regions > 0));
        assert!(!c.parent_chain.is_empty());
        assert!(c.start_seconds_after_boot.is_some());
    }
    report
}

/// The processes the test started were captured completely.
fn assert_captured(r: &KillReport, idents: &[Ident]) {
    for p in idents {
        let row = r
            .processes
            .iter()
            .find(|x| x.pid == p.0)
            .expect("in the report");
        assert!(row.capture_file.is_some(), "pid {} captured", p.0);
        assert_eq!(row.capture_error, None, "pid {} fully captured", p.0);
    }
}

fn assert_all_gone(idents: &[Ident]) {
    for p in idents {
        assert!(!running(*p), "pid {} still running", p.0);
    }
}

fn reap(child: &mut Child) -> std::process::ExitStatus {
    child.wait().unwrap()
}

#[test]
fn kills_a_sleep_and_captures_it() {
    if !common::require_root("kills_a_sleep_and_captures_it") {
        return;
    }
    let s = Scratch::new("sleep");
    let mut child = Command::new("sleep")
        .arg("1000")
        .env("GITHUB_TOKEN", "ghp_secretsecretsecret")
        .spawn()
        .unwrap();
    let p = ident(child.id() as i32);
    let _c = Cleanup(vec![p]);
    let pid = p.0.to_string();
    let out = kill_captured(
        &["--pid", &pid, "--mode", "immediate"],
        s.0.to_str().unwrap(),
    );
    assert_exit(&out, 0);
    let st = reap(&mut child);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    let r = check_incident(&out);
    assert!(r.all_gone);
    assert_eq!(r.processes.len(), 1);
    assert_eq!(r.processes[0].via, Via::Target);
    assert_eq!(r.processes[0].fate, Fate::Gone);
    assert!(r.method.pidfd);
    assert_captured(&r, &[p]);
    let dir = r.incident_dir.unwrap();
    let c: ProcessCapture =
        serde_json::from_slice(&std::fs::read(dir.join(format!("processes/{pid}.json"))).unwrap())
            .unwrap();
    assert_eq!(c.cmdline, ["sleep", "1000"]);
    assert!(
        c.environ.contains(&"GITHUB_TOKEN=<redacted>".to_string()),
        "{:?}",
        c.environ
    );
    assert_all_gone(&[p]);
}

#[test]
fn graceful_kill_of_three_generations() {
    if !common::require_root("graceful_kill_of_three_generations") {
        return;
    }
    let s = Scratch::new("gen3");
    let f = s.path("pids");
    let script = format!(
        "bash -c 'sleep 1000 & echo $! >> {f}; wait' & echo $! >> {f}; wait",
        f = f.display()
    );
    let mut child = bash(&script).spawn().unwrap();
    let top = ident(child.id() as i32);
    let pids = read_pids(&f, 2);
    // Order in the file is not guaranteed; both must be descendants.
    let all: Vec<Ident> = std::iter::once(top)
        .chain(pids.iter().map(|p| ident(*p)))
        .collect();
    let _c = Cleanup(all.clone());
    let out = kill_captured(
        &["--pid", &top.0.to_string(), "--grace", "2s"],
        s.path("inc").to_str().unwrap(),
    );
    assert_exit(&out, 0);
    reap(&mut child);
    let r = check_incident(&out);
    assert!(r.all_gone);
    for p in &all {
        let row = r
            .processes
            .iter()
            .find(|x| x.pid == p.0)
            .expect("every generation is in the report");
        assert_eq!(row.fate, Fate::Gone);
        assert!(
            row.signals
                .iter()
                .any(|x| x.signal == "SIGTERM" && x.result == "delivered")
        );
    }
    // They all honour SIGTERM: nobody needed SIGKILL and the grace was not used up.
    assert!(
        r.timings.grace_waited_ms.unwrap() < 2000.0,
        "{:?}",
        r.timings
    );
    assert_captured(&r, &all);
    assert_all_gone(&all);
}

#[test]
fn graceful_escalates_when_sigterm_is_ignored() {
    if !common::require_root("graceful_escalates_when_sigterm_is_ignored") {
        return;
    }
    let s = Scratch::new("ignore");
    let f = s.path("pids");
    let script = format!("trap '' TERM; sleep 1000 & echo $! > {}; wait", f.display());
    let mut child = bash(&script).spawn().unwrap();
    let top = ident(child.id() as i32);
    let kid = ident(read_pids(&f, 1)[0]);
    let _c = Cleanup(vec![top, kid]);
    let t = Instant::now();
    let out = kill_captured(
        &[
            "--pid",
            &top.0.to_string(),
            "--mode",
            "graceful",
            "--grace",
            "400ms",
        ],
        s.path("inc").to_str().unwrap(),
    );
    let took = t.elapsed();
    assert_exit(&out, 0);
    reap(&mut child);
    assert!(
        took >= Duration::from_millis(400),
        "the grace period was honoured: {took:?}"
    );
    let r = check_incident(&out);
    assert!(r.timings.grace_waited_ms.unwrap() >= 400.0);
    for p in [top, kid] {
        let row = r.processes.iter().find(|x| x.pid == p.0).unwrap();
        let sigs: Vec<&str> = row
            .signals
            .iter()
            .filter(|x| x.result == "delivered")
            .map(|x| x.signal.as_str())
            .collect();
        assert!(
            sigs.contains(&"SIGTERM") && sigs.contains(&"SIGKILL"),
            "{sigs:?}"
        );
        assert_eq!(row.fate, Fate::Gone);
    }
    assert_captured(&r, &[top, kid]);
    assert_all_gone(&[top, kid]);
}

#[test]
fn double_forked_and_setsid_descendants_are_found() {
    if !common::require_root("double_forked_and_setsid_descendants_are_found") {
        return;
    }
    let s = Scratch::new("daemon");
    let f1 = s.path("orphan");
    let f2 = s.path("setsid");
    // The target leads its own session (as a service or a shell job would).
    // The subshell double-forks a sleep that is re-parented away from the
    // tree; a second child calls setsid() and keeps a child of its own.
    let script = format!(
        "( sleep 1000 & echo $! > {f1} ); \
         setsid bash -c 'sleep 1000 & echo $! > {f2}; wait' & \
         sleep 1000",
        f1 = f1.display(),
        f2 = f2.display()
    );
    let mut cmd = bash(&script);
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let top = ident(child.id() as i32);
    let orphan = ident(read_pids(&f1, 1)[0]);
    let setsid_kid = ident(read_pids(&f2, 1)[0]);
    let _c = Cleanup(vec![top, orphan, setsid_kid]);
    let ost = procfs::read_stat(orphan.0).unwrap();
    assert_ne!(
        ost.ppid, top.0,
        "the orphan was re-parented away from the target"
    );
    let kst = procfs::read_stat(setsid_kid.0).unwrap();
    assert_ne!(
        kst.session, top.0,
        "the setsid child left the target's session"
    );
    let out = kill_captured(
        &["--pid", &top.0.to_string(), "--mode", "immediate"],
        s.path("inc").to_str().unwrap(),
    );
    assert_exit(&out, 0);
    reap(&mut child);
    let r = check_incident(&out);
    let row = r
        .processes
        .iter()
        .find(|x| x.pid == orphan.0)
        .expect("the orphan was found");
    assert_eq!(row.via, Via::Session);
    assert!(r.processes.iter().any(|x| x.pid == setsid_kid.0));
    assert_captured(&r, &[top, orphan, setsid_kid]);
    assert_all_gone(&[top, orphan, setsid_kid]);
}

fn make_cgroup(name: &str) -> TestCgroup {
    TestCgroup::new(&format!("assay-test-kill-{name}"))
}

/// A tree in `cg` whose daemon escaped both parent and session (setsid +
/// double fork): only the cgroup still holds it.
fn tree_in_cgroup(cg: &TestCgroup, s: &Scratch) -> (Child, Vec<Ident>) {
    let f = s.path("daemon");
    let script = format!(
        "echo $$ > {cg}/cgroup.procs; ( setsid sleep 1000 & echo $! > {f} ); sleep 1000 & wait",
        cg = cg.path().display(),
        f = f.display()
    );
    let child = bash(&script).spawn().unwrap();
    let daemon = read_pids(&f, 1)[0];
    // Wait until the daemon runs the sleep (setsid may still be exec'ing).
    let deadline = Instant::now() + Duration::from_secs(5);
    while procfs::read_stat(daemon).is_some_and(|s| s.comm != "sleep") && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let d = ident(daemon);
    let st = procfs::read_stat(daemon).unwrap();
    assert_eq!(st.session, daemon, "the daemon leads its own session");
    let members: Vec<Ident> = std::fs::read_to_string(cg.path().join("cgroup.procs"))
        .unwrap()
        .lines()
        .map(|l| ident(l.parse().unwrap()))
        .collect();
    assert!(members.iter().any(|m| m.0 == d.0));
    (child, members)
}

#[test]
fn kills_a_cgroup_including_an_escaped_daemon() {
    if !common::require_root("kills_a_cgroup_including_an_escaped_daemon") {
        return;
    }
    let s = Scratch::new("cg");
    let cg = make_cgroup("cg");
    let (mut child, members) = tree_in_cgroup(&cg, &s);
    let _c = Cleanup(members.clone());
    // The form /proc/PID/cgroup prints, relative to the mount.
    let rel = format!("/{}", cg.path().file_name().unwrap().to_string_lossy());
    let out = kill_captured(
        &["--cgroup", &rel, "--mode", "immediate"],
        s.path("inc").to_str().unwrap(),
    );
    assert_exit(&out, 0);
    reap(&mut child);
    let r = check_incident(&out);
    assert_eq!(r.method.frozen_cgroups, [cg.path()]);
    assert_eq!(r.method.cgroup_kill, [cg.path()]);
    assert_eq!(
        r.method.sigstopped, 0,
        "the freezer made SIGSTOP unnecessary"
    );
    for m in &members {
        let row = r.processes.iter().find(|x| x.pid == m.0).unwrap();
        assert_eq!(row.via, Via::Cgroup);
        assert!(row.signals.iter().any(|x| x.via == "cgroup.kill"));
    }
    assert_captured(&r, &members);
    assert_all_gone(&members);
    let left = std::fs::read_to_string(cg.path().join("cgroup.procs")).unwrap();
    assert!(left.trim().is_empty(), "cgroup empty: {left}");
    assert_eq!(
        std::fs::read_to_string(cg.path().join("cgroup.freeze"))
            .unwrap()
            .trim(),
        "0",
        "thawed"
    );
}

#[test]
fn a_pid_that_owns_its_cgroup_takes_the_cgroup_with_it() {
    if !common::require_root("a_pid_that_owns_its_cgroup_takes_the_cgroup_with_it") {
        return;
    }
    let s = Scratch::new("owned");
    let cg = make_cgroup("owned");
    let (mut child, members) = tree_in_cgroup(&cg, &s);
    let _c = Cleanup(members.clone());
    let out = kill_captured(
        &["--pid", &child.id().to_string(), "--grace", "1s"],
        s.path("inc").to_str().unwrap(),
    );
    assert_exit(&out, 0);
    reap(&mut child);
    let r = check_incident(&out);
    assert_eq!(r.method.frozen_cgroups, [cg.path()]);
    assert_captured(&r, &members);
    assert_all_gone(&members);
}

#[test]
fn a_missing_pid_is_exit_30() {
    if !common::require_root("a_missing_pid_is_exit_30") {
        return;
    }
    let s = Scratch::new("missing");
    let pid_max: i32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Above pid_max: can never exist.
    let pid = (pid_max + 1).to_string();
    let out = kill_captured(&["--pid", &pid], s.path("inc").to_str().unwrap());
    assert_eq!(out.status.code(), Some(30));
    let r = check_incident(&out);
    assert!(!r.all_gone);
    assert_eq!(r.errors, [format!("pid {pid}: no such process")]);
    // And in the table, a clear message.
    let out = run_assay(&["kill", "--pid", &pid]);
    assert_eq!(out.status.code(), Some(30));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains(&format!("assay: error: pid {pid}: no such process")),
        "{text}"
    );
}

#[test]
fn another_users_process_is_exit_30_and_left_running() {
    if !common::require_root("another_users_process_is_exit_30_and_left_running") {
        return;
    }
    let s = Scratch::new("eperm");
    let out_dir = s.path("inc");
    std::fs::create_dir(&out_dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&s.0, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&out_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut victim = Command::new("sleep").arg("1000").spawn().unwrap();
    let v = ident(victim.id() as i32);
    let _c = Cleanup(vec![v]);
    // Drop to nobody in the child before exec'ing assay.
    let mut cmd = assay();
    cmd.args([
        "kill",
        "--pid",
        &v.0.to_string(),
        "--mode",
        "immediate",
        "--capture-state",
        "--output",
        out_dir.to_str().unwrap(),
        "--format",
        "json",
    ]);
    cmd.uid(65534).gid(65534).current_dir(&s.0);
    let out = run(&mut cmd);
    assert_exit(&out, 30);
    let r = check_incident_relaxed(&out);
    assert_eq!(r.who.euid, 65534);
    let row = r.processes.iter().find(|x| x.pid == v.0).unwrap();
    assert_eq!(row.fate, Fate::NotPermitted);
    assert!(row.message.as_deref().unwrap().contains("not permitted"));
    assert!(running(v), "the other user's process was left alone");
    victim.kill().unwrap();
    reap(&mut victim);
}

/// As [`check_incident`], but capture of another user's process is partial
/// by design (environ, fds, cwd are not readable): only the record is checked.
fn check_incident_relaxed(out: &Output) -> KillReport {
    let report: KillReport = serde_json::from_slice(&out.stdout).unwrap();
    let dir = report.incident_dir.clone().expect("incident written");
    let on_disk: KillReport =
        serde_json::from_slice(&std::fs::read(dir.join("incident.json")).unwrap()).unwrap();
    assert_eq!(on_disk, report);
    for p in &report.processes {
        let rel = p.capture_file.as_ref().unwrap();
        let c: ProcessCapture =
            serde_json::from_slice(&std::fs::read(dir.join(rel)).unwrap()).unwrap();
        assert_eq!(c.pid, p.pid);
        assert!(!c.errors.is_empty(), "unreadable fields are recorded");
        assert!(p.capture_error.is_some());
    }
    report
}

#[test]
fn a_capture_that_cannot_be_written_does_not_stop_the_kill() {
    if !common::require_root("a_capture_that_cannot_be_written_does_not_stop_the_kill") {
        return;
    }
    let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
    let p = ident(child.id() as i32);
    let _c = Cleanup(vec![p]);
    // /proc refuses new directories: the incident cannot be written.
    let out = kill_captured(
        &["--pid", &p.0.to_string(), "--mode", "immediate"],
        "/proc/assay-incidents",
    );
    assert_exit(&out, 0);
    reap(&mut child);
    let r: KillReport = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r.all_gone);
    assert!(r.incident_dir.is_none());
    assert!(
        r.incident_error
            .as_deref()
            .unwrap()
            .contains("/proc/assay-incidents")
    );
    assert_all_gone(&[p]);
}

/// The monitor's entry point: the library call, a rule as the reason, the
/// policy defaults, a bounded capture.
#[test]
fn library_call_for_a_rule_records_the_rule() {
    if !common::require_root("library_call_for_a_rule_records_the_rule") {
        return;
    }
    use assay::kill_switch::{self, Defaults, KillMode, Reason, Target};
    use assay::policy::model::KillSwitchConfig;
    let s = Scratch::new("rule");
    let cfg = KillSwitchConfig {
        enabled: true,
        mode: KillMode::Graceful,
        grace_period_ms: 1000,
        kill_children: true,
        capture_state: true,
        output_dir: s.path("incidents"),
        triggers: vec![],
        tool_denials: None,
    };
    let mut child = bash("sleep 1000 & wait").spawn().unwrap();
    let top = ident(child.id() as i32);
    let _c = Cleanup(vec![top]);
    // The tree is whole once bash has forked its child (under load that
    // can come after the kill would have started).
    let kids = format!("/proc/{0}/task/{0}/children", top.0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_to_string(&kids)
        .unwrap_or_default()
        .trim()
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "bash forked its child"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let req = Defaults::from_config(Some(&cfg)).request(
        vec![Target::Pid(top.0)],
        KillMode::Immediate,
        Reason::Rule {
            rule_id: "sensitive-file-access".into(),
            detail: "open /etc/shadow".into(),
        },
    );
    let r = kill_switch::execute(&req);
    reap(&mut child);
    assert!(r.all_gone(), "{r:?}");
    assert!(
        r.processes.len() >= 2,
        "the sleep child too: {:?}",
        r.processes
    );
    let dir = r.incident_dir.clone().unwrap();
    assert!(dir.starts_with(s.path("incidents")));
    let on_disk: KillReport =
        serde_json::from_slice(&std::fs::read(dir.join("incident.json")).unwrap()).unwrap();
    assert_eq!(on_disk, r);
    assert_eq!(
        on_disk.why,
        assay::kill_switch::report::Why::Rule {
            rule_id: "sensitive-file-access".into(),
            detail: "open /etc/shadow".into()
        }
    );
    assert_eq!(
        on_disk.request.mode,
        assay::kill_switch::report::Mode::Immediate
    );
    for p in &r.processes {
        assert!(!running(Ident(p.pid, p.start_time)));
    }
}

#[test]
fn a_cgroup_holding_assays_own_parent_is_refused() {
    if !common::require_root("a_cgroup_holding_assays_own_parent_is_refused") {
        return;
    }
    let cg = make_cgroup("self");
    // bash joins the cgroup, then runs assay against it: assay's parent is
    // inside, so freezing or cgroup.kill would take out the caller.
    let script = format!(
        "echo $$ > {cg}/cgroup.procs; {bin} kill --cgroup {cg} --mode immediate 2>&1; echo \"rc=$?\"",
        cg = cg.path().display(),
        bin = common::assay_bin().display()
    );
    let out = bash(&script).env("NO_COLOR", "1").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "bash survived: {text}");
    assert!(text.contains("refusing to freeze or kill it"), "{text}");
    assert!(text.contains("assay: error: "), "{text}");
    assert!(
        text.trim_end().ends_with("rc=2"),
        "refused, nothing signalled: {text}"
    );
    assert_eq!(
        std::fs::read_to_string(cg.path().join("cgroup.freeze"))
            .unwrap()
            .trim(),
        "0"
    );
}

#[test]
fn capture_resolves_sockets_and_redacts_arguments() {
    if !common::require_root("capture_resolves_sockets_and_redacts_arguments") {
        return;
    }
    let s = Scratch::new("sock");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // `sleep` rejects the flag and the fallback runs; bash keeps fd 3 open,
    // and its command line (the script) carries a secret to be redacted.
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port}; sleep 1000 --api-key=hunter2 2>/dev/null || sleep 1000"
    );
    let mut child = bash(&script).spawn().unwrap();
    let (_conn, peer) = listener.accept().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let top = ident(child.id() as i32);
    let _c = Cleanup(vec![top]);
    let out = kill_captured(
        &["--pid", &top.0.to_string(), "--mode", "immediate"],
        s.path("inc").to_str().unwrap(),
    );
    assert_exit(&out, 0);
    reap(&mut child);
    let r = check_incident(&out);
    let dir = r.incident_dir.unwrap();
    let c: ProcessCapture = serde_json::from_slice(
        &std::fs::read(dir.join(format!("processes/{}.json", top.0))).unwrap(),
    )
    .unwrap();
    let sock = c
        .fds
        .iter()
        .find(|f| f.fd == 3)
        .and_then(|f| f.socket.clone())
        .unwrap_or_else(|| panic!("fd 3 resolved: {:?}", c.fds));
    assert_eq!(sock.proto, "tcp");
    assert_eq!(sock.state, "ESTABLISHED");
    assert_eq!(
        sock.remote.as_deref(),
        Some(format!("127.0.0.1:{port}").as_str())
    );
    assert_eq!(sock.local.as_deref(), Some(peer.to_string().as_str()));
    let argv = c.cmdline.join(" ");
    assert!(!argv.contains("hunter2"), "{argv}");
    assert!(argv.contains("--api-key=<redacted>"), "{argv}");
}

#[test]
fn children_forked_during_the_grace_period_are_killed_too() {
    if !common::require_root("children_forked_during_the_grace_period_are_killed_too") {
        return;
    }
    let s = Scratch::new("latefork");
    let f = s.path("late");
    // On SIGTERM the shell starts a new child and carries on.
    let script = format!(
        "trap 'sleep 1000 & echo $! > {f}' TERM; echo ready > {r}; while :; do sleep 0.05; done",
        f = f.display(),
        r = s.path("ready").display()
    );
    // (bash reports its killed loop sleeps on stderr: not interesting here)
    let mut child = bash(&script).stderr(Stdio::null()).spawn().unwrap();
    let top = ident(child.id() as i32);
    let _c = Cleanup(vec![top]);
    read_pids(&s.path("ready"), 0);
    let out = kill_captured(
        &["--pid", &top.0.to_string(), "--grace", "500ms"],
        s.path("inc").to_str().unwrap(),
    );
    assert_exit(&out, 0);
    reap(&mut child);
    let late = read_pids(&f, 1)[0];
    let r = check_incident(&out);
    let row = r
        .processes
        .iter()
        .find(|p| p.pid == late)
        .expect("the child started by the SIGTERM handler was found");
    assert_eq!(row.fate, Fate::Gone);
    assert!(
        row.signals
            .iter()
            .any(|x| x.signal == "SIGKILL" && x.result == "delivered")
    );
    assert!(!running(Ident(late, row.start_time)));
    assert_captured(&r, &[top]);
    assert_all_gone(&[top]);
}

#[test]
fn a_shared_cgroup_is_not_taken_over_by_a_younger_process() {
    if !common::require_root("a_shared_cgroup_is_not_taken_over_by_a_younger_process") {
        return;
    }
    let s = Scratch::new("shared");
    let cg = make_cgroup("shared");
    // An unrelated, older process lives in the cgroup first.
    let mut bystander = Command::new("sleep").arg("1000").spawn().unwrap();
    let b = ident(bystander.id() as i32);
    std::fs::write(cg.path().join("cgroup.procs"), b.0.to_string()).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let f = s.path("kid");
    let script = format!(
        "echo $$ > {cg}/cgroup.procs; sleep 1000 & echo $! > {f}; wait",
        cg = cg.path().display(),
        f = f.display()
    );
    let mut child = bash(&script).spawn().unwrap();
    let top = ident(child.id() as i32);
    let kid = ident(read_pids(&f, 1)[0]);
    let _c = Cleanup(vec![b, top, kid]);
    let out = kill_captured(
        &["--pid", &top.0.to_string(), "--mode", "immediate"],
        s.path("inc").to_str().unwrap(),
    );
    assert_exit(&out, 0);
    reap(&mut child);
    let r = check_incident(&out);
    assert!(
        r.method.frozen_cgroups.is_empty(),
        "not owned: {:?}",
        r.method
    );
    assert!(r.method.cgroup_kill.is_empty());
    assert!(
        r.processes.iter().all(|p| p.pid != b.0),
        "the bystander is not part of the kill"
    );
    assert_captured(&r, &[top, kid]);
    assert_all_gone(&[top, kid]);
    assert!(running(b), "the older process in the same cgroup survives");
    bystander.kill().unwrap();
    reap(&mut bystander);
}

#[test]
fn a_tree_that_is_still_forking_is_killed_completely() {
    if !common::require_root("a_tree_that_is_still_forking_is_killed_completely") {
        return;
    }
    // The shell forks sleeps as fast as it can while assay kills it; it leads
    // its own session so every fork can be counted afterwards.
    let mut cmd = bash("for i in $(seq 400); do sleep 1000 & done; wait");
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let sid = child.id() as i32;
    let session = || -> Vec<Ident> {
        procfs::scan()
            .into_iter()
            .filter(|s| s.session == sid && !s.is_dead())
            .map(|s| Ident(s.pid, s.start_time))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while session().len() < 20 {
        assert!(Instant::now() < deadline, "the tree started forking");
        std::thread::sleep(Duration::from_millis(1));
    }
    let _c = Cleanup(session());
    let out = run_assay(&[
        "kill",
        "--pid",
        &sid.to_string(),
        "--mode",
        "immediate",
        "--format",
        "json",
    ]);
    assert_exit(&out, 0);
    reap(&mut child);
    let r: KillReport = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        r.all_gone && r.processes.len() >= 20,
        "{} processes",
        r.processes.len()
    );
    let left = session();
    assert!(
        left.is_empty(),
        "{} processes of the session still run",
        left.len()
    );
}

#[test]
fn no_kill_children_stops_only_the_named_process() {
    if !common::require_root("no_kill_children_stops_only_the_named_process") {
        return;
    }
    let s = Scratch::new("nochildren");
    let f = s.path("kid");
    let mut child = bash(&format!("sleep 1000 & echo $! > {}; wait", f.display()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let top = ident(child.id() as i32);
    let kid = ident(read_pids(&f, 1)[0]);
    let _c = Cleanup(vec![top, kid]);
    let out = run_assay(&[
        "kill",
        "--pid",
        &top.0.to_string(),
        "--no-kill-children",
        "--mode",
        "immediate",
        "--format",
        "json",
    ]);
    assert_exit(&out, 0);
    reap(&mut child);
    let r: KillReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.processes.len(), 1);
    assert_all_gone(&[top]);
    assert!(running(kid), "the child was left alone");
    let st = procfs::read_stat(kid.0).unwrap();
    assert_eq!(st.state, 'S', "and not left stopped");
}
