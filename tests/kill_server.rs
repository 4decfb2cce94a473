//! `assay kill --server-id` / `--all` resolve targets through discovery.
#![cfg(target_os = "linux")]

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use assay::kill_switch::procfs;
use assay::kill_switch::report::{KillReport, TargetRecord};
use common::Scratch;

/// A home whose Cursor config declares `killme`: `mcp-server-killme -c ...`.
fn home(name: &str) -> Scratch {
    let h = Scratch::new(&format!("home-{name}"));
    std::fs::create_dir_all(h.0.join(".cursor")).unwrap();
    std::fs::write(
        h.0.join(".cursor/mcp.json"),
        r#"{"mcpServers": {"killme": {"command": "mcp-server-killme", "args": ["-c", "sleep 1000 & wait"]}}}"#,
    )
    .unwrap();
    h
}

/// `assay ARGS` with `home` as its HOME.
fn assay_in(home: &Scratch, args: &[&str]) -> Output {
    common::run(common::assay().env("HOME", &home.0).args(args))
}

/// Descendants of `root` (pid, start time), by parent pid.
fn descendants(root: i32) -> Vec<(i32, u64)> {
    let all = procfs::scan();
    let mut out: Vec<(i32, u64)> = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for s in all.iter().filter(|s| s.ppid == p && !s.is_dead()) {
            out.push((s.pid, s.start_time));
            frontier.push(s.pid);
        }
    }
    out
}

fn running(p: (i32, u64)) -> bool {
    procfs::read_stat(p.0).is_some_and(|s| s.start_time == p.1 && !s.is_dead())
}

/// Kills the fake client and whatever is left of its tree.
struct Client(Child);
impl Drop for Client {
    fn drop(&mut self) {
        for p in descendants(self.0.id() as i32) {
            // SAFETY: processes this test started.
            unsafe { libc::kill(p.0, libc::SIGKILL) };
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn server_id_kills_every_running_instance_with_its_tree() {
    if !common::require_root("server_id_kills_every_running_instance_with_its_tree") {
        return;
    }
    let h = home("kill");
    // bash as a fake `cursor` client -> the server (a bash with a sleep child).
    let client = Client(
        Command::new("bash")
            .args([
                "-c",
                "exec -a cursor bash -c 'exec -a mcp-server-killme bash -c \"sleep 1000 & wait\" & wait; sleep 1000'",
            ])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The client's own bash is the first descendant; the server is its child.
    let cpid = client.0.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(5);
    let tree = loop {
        let d = descendants(cpid);
        if d.len() >= 2
            && d.iter()
                .any(|p| procfs::read_stat(p.0).is_some_and(|s| s.comm == "sleep"))
        {
            break d;
        }
        assert!(Instant::now() < deadline, "server tree did not start");
        std::thread::sleep(Duration::from_millis(10));
    };
    let server_pid = tree[0].0;

    let out = assay_in(
        &h,
        &[
            "kill",
            "--server-id",
            "cursor/killme",
            "--mode",
            "immediate",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r: KillReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        r.request.targets,
        [TargetRecord::Server {
            id: "cursor/killme".into(),
            pids: vec![server_pid]
        }]
    );
    for p in &tree {
        assert!(!running(*p), "pid {} of the server is gone", p.0);
    }
    let cstart = procfs::read_stat(cpid).unwrap().start_time;
    assert!(
        running((cpid, cstart)),
        "the client that launched it is left alone"
    );
}

#[test]
fn unknown_ids_and_unconfirmed_all_are_refused() {
    // A server id of its own: the other test's server may be running.
    let h = home("refuse");
    std::fs::write(
        h.0.join(".cursor/mcp.json"),
        r#"{"mcpServers": {"idle": {"command": "mcp-server-never-started-by-anyone", "args": []}}}"#,
    )
    .unwrap();
    let out = assay_in(&h, &["kill", "--server-id", "cursor/nope"]);
    assert_eq!(out.status.code(), Some(30));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("server cursor/nope: no such server id"),
        "{text}"
    );
    // Known but not running.
    let out = assay_in(
        &h,
        &["kill", "--server-id", "cursor/idle", "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(30));
    let r: KillReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        r.errors,
        ["server cursor/idle: not running (discovery found no process)"]
    );
    // --all needs --yes, checked before anything runs.
    let out = assay_in(&h, &["kill", "--all"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `kill --all --yes` with nothing running succeeds, so fleet scripts can
/// run it again and again. Discovery reads every process of the machine, so
/// the run is in a fresh pid namespace with its own /proc (root).
#[test]
fn kill_all_with_nothing_running_is_success() {
    if !common::require_root("kill_all_with_nothing_running_is_success") {
        return;
    }
    let h = home("all-none");
    let out = common::run(
        std::process::Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc"])
            .arg(common::assay_bin())
            .args(["kill", "--all", "--yes"])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("NO_COLOR", "1")
            .env("HOME", &h.0),
    );
    common::assert_exit(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("no running MCP server; nothing to kill"),
        "{text}"
    );
}
