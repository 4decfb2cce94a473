//! Discovery of real running processes: a fake MCP server under a fake
//! client, matched to its config, attributed to its parent; and (root) a
//! server inside an `assay-monitor-*` cgroup counted as managed.
#![cfg(target_os = "linux")]

mod common;

use std::fs;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use assay::discovery::{self, Options, Processes};
use assay::output::discovery::json::ReportV1;

/// A process group started for a test; killed (whole group) on drop.
struct Tree {
    child: Child,
}

impl Tree {
    fn spawn(script: &str) -> Tree {
        let child = Command::new("bash")
            .args(["-c", script])
            .process_group(0)
            .spawn()
            .expect("spawn bash");
        Tree { child }
    }
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        // SAFETY: signalling our own process group.
        unsafe {
            libc::kill(-self.pid(), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

fn argv(pid: i32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn ppid(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Wait for a descendant of `root` whose argv[0] is `name`.
fn wait_for(root: i32, name: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        for e in fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if argv(pid).first().map(String::as_str) != Some(name) {
                continue;
            }
            let mut p = Some(pid);
            while let Some(x) = p {
                if x == root {
                    return pid;
                }
                p = ppid(x).filter(|&pp| pp > 1);
            }
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not start under {root}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn home_with_cursor_config() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    fs::create_dir_all(home.path().join(".cursor")).unwrap();
    fs::write(
        home.path().join(".cursor/mcp.json"),
        r#"{"mcpServers": {"test": {"command": "mcp-server-test", "args": ["300"]}}}"#,
    )
    .unwrap();
    home
}

#[test]
fn running_server_is_found_matched_and_attributed_to_its_client() {
    let home = home_with_cursor_config();
    let token = format!("ghp_{}", "Zz9".repeat(12));
    // bash (argv0 "cursor", a fake client) -> sleep (argv0 "mcp-server-test").
    // A second, unconfigured server leaks a token on its command line.
    let tree = Tree::spawn(&format!(
        "exec -a cursor bash -c 'exec -a mcp-server-test sleep 300 & exec -a mcp-server-orphan bash -c \"sleep 300; :\" x --token={token} & wait'"
    ));
    let server_pid = wait_for(tree.pid(), "mcp-server-test");
    let orphan_pid = wait_for(tree.pid(), "mcp-server-orphan");
    assert_eq!(ppid(server_pid), Some(tree.pid()));

    let out = common::run(common::assay().args([
        "discover",
        "--home",
        home.path().to_str().unwrap(),
        "--processes",
        "--format",
        "json",
    ]));
    common::assert_exit(&out, 0);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains(&token), "token printed");
    let r: ReportV1 = serde_json::from_str(&text).unwrap();
    assert_eq!(r.scan.processes.status, "scanned");

    let p = r
        .processes
        .iter()
        .find(|p| p.pid == server_pid)
        .expect("server process found");
    assert_eq!(p.key, "mcp-server-test");
    assert_eq!(p.server_id, "cursor/test");
    assert!(p.configured);
    assert_eq!(p.client.as_deref(), Some("cursor"));
    assert_eq!(p.parent_pid, Some(tree.pid()));
    assert_eq!(p.parent_name.as_deref(), Some("bash"));
    assert_eq!(p.managed_by, None);

    let s = r.servers.iter().find(|s| s.id == "cursor/test").unwrap();
    assert!(s.running);
    assert_eq!(s.pids, [server_pid]);

    let o = r
        .processes
        .iter()
        .find(|p| p.pid == orphan_pid)
        .expect("orphan found");
    assert!(!o.configured);
    assert_eq!(o.server_id, "process/mcp-server-orphan");
    assert!(
        o.command_line.contains("--token=ghp_****"),
        "{}",
        o.command_line
    );
    let secret = r
        .findings
        .iter()
        .find(|f| f.rule == "secret_in_command_line" && f.pid == Some(orphan_pid))
        .expect("secret on command line reported");
    assert_eq!(secret.severity, "high");
    assert!(r.findings.iter().any(|f| f.rule == "unmanaged_server"
        && f.server_id.as_deref() == Some("process/mcp-server-orphan")));

    // The library API the kill switch uses.
    let mut opts = Options::for_home(home.path());
    opts.processes = true;
    let report = discovery::discover(&opts, None);
    assert_eq!(report.pids_of("cursor/test"), [server_pid]);
    assert_eq!(report.pids_of("process/mcp-server-orphan"), [orphan_pid]);
    assert!(report.pids_of("cursor/nope").is_empty());
    assert!(
        report
            .running()
            .iter()
            .any(|(id, pids)| *id == "cursor/test" && pids == &[server_pid])
    );
    drop(tree);
    // SIGKILL reaches the whole group at once, but only bash is waited for:
    // give the server the moment it needs to die (its zombie has no
    // command line, so discovery no longer sees it).
    let t0 = std::time::Instant::now();
    while !argv(server_pid).is_empty() && t0.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    // Gone after the kill: discovery no longer reports it running.
    let report = discovery::discover(&opts, None);
    assert!(report.pids_of("cursor/test").is_empty());
    match report.processes {
        Processes::Scanned { servers, .. } => assert!(servers.iter().all(|p| p.pid != server_pid)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn server_in_a_monitor_cgroup_is_managed() {
    if !common::require_root("server_in_a_monitor_cgroup_is_managed") {
        return;
    }
    // Named like the monitor's leaf cgroups.
    let cg = common::TestCgroup::new("assay-monitor-discovery-test");
    let home = tempfile::tempdir().unwrap();
    {
        let tree = Tree::spawn("exec -a mcp-server-caged sleep 300");
        let pid = wait_for_self(tree.pid(), "mcp-server-caged");
        fs::write(cg.path().join("cgroup.procs"), pid.to_string()).expect("move into cgroup");
        let mut opts = Options::for_home(home.path());
        opts.processes = true;
        let report = discovery::discover(&opts, None);
        let s = report
            .server("process/mcp-server-caged")
            .expect("caged server found");
        assert!(s.managed, "{s:?}");
        assert_eq!(s.pids, [pid]);
        assert!(matches!(
            &s.managed_by[..],
            [discovery::ManagedBy::MonitorCgroup { cgroup, .. }] if cgroup.contains("assay-monitor-discovery-test-")
        ));
        assert!(!report.findings.iter().any(|f| f.server_id.as_deref()
            == Some("process/mcp-server-caged")
            && f.rule == discovery::Rule::UnmanagedServer));
        drop(tree);
    }
    drop(cg);
}

/// The group leader itself is the server (bash exec'd into it).
fn wait_for_self(pid: i32, name: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    while argv(pid).first().map(String::as_str) != Some(name) {
        assert!(Instant::now() < deadline, "{name} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    pid
}

#[test]
fn relative_script_servers_match_by_working_directory() {
    let home = tempfile::tempdir().unwrap();
    let here = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    fs::create_dir_all(home.path().join(".cursor")).unwrap();
    fs::write(
        home.path().join(".cursor/mcp.json"),
        format!(
            r#"{{"mcpServers": {{"tool": {{"command": "python3", "args": ["tool_server.py"], "cwd": "{}"}}}}}}"#,
            here.path().display()
        ),
    )
    .unwrap();
    // argv ["python3", "-c", "...", "tool_server.py"]: python running the
    // relative script, once in the configured directory and once elsewhere.
    let run_in = |dir: &std::path::Path| {
        Tree::spawn(&format!(
            "cd '{}' && exec -a python3 bash -c 'sleep 300; :' tool_server.py",
            dir.display()
        ))
    };
    let a = run_in(here.path());
    let b = run_in(elsewhere.path());
    let pa = wait_for_self(a.pid(), "python3");
    let pb = wait_for_self(b.pid(), "python3");
    let mut opts = Options::for_home(home.path());
    opts.processes = true;
    let report = discovery::discover(&opts, None);
    assert_eq!(report.pids_of("cursor/tool"), [pa]);
    let Processes::Scanned { servers, .. } = &report.processes else {
        panic!()
    };
    assert!(
        servers.iter().all(|p| p.pid != pb),
        "same script elsewhere is not that server"
    );
}

#[test]
fn loopback_remote_server_is_the_process_listening_on_its_port() {
    // This test process plays the server: it listens on a loopback port that
    // an Antigravity config points at.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let home = tempfile::tempdir().unwrap();
    fs::create_dir_all(home.path().join(".gemini/antigravity")).unwrap();
    fs::write(
        home.path().join(".gemini/antigravity/mcp_config.json"),
        format!(
            r#"{{"mcpServers": {{"local-http": {{"serverUrl": "http://127.0.0.1:{port}/mcp"}}}}}}"#
        ),
    )
    .unwrap();
    let mut opts = Options::for_home(home.path());
    opts.processes = true;
    let report = discovery::discover(&opts, None);
    let me = std::process::id() as i32;
    assert_eq!(report.pids_of("antigravity/local-http"), [me]);
    let Processes::Scanned { servers, .. } = &report.processes else {
        panic!()
    };
    let p = servers.iter().find(|p| p.pid == me).unwrap();
    assert!(p.configured);
    assert_eq!(p.server_id, "antigravity/local-http");
    drop(listener);
    let report = discovery::discover(&opts, None);
    assert!(report.pids_of("antigravity/local-http").is_empty());
}

/// Issue 13, item 5: a package run from `node_modules` is keyed by its
/// package wherever it runs from, and a host process is never a dev
/// container's server.
#[test]
fn package_scripts_and_dev_container_servers_match_what_could_launch_them() {
    let home = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/discovery/vscode-devcontainer-host-process");
    // The "package": a script bash can run, at node_modules/<pkg>/dist/index.js.
    let cwd = tempfile::tempdir().unwrap();
    let dist = cwd
        .path()
        .join("node_modules/@modelcontextprotocol/server-filesystem/dist");
    fs::create_dir_all(&dist).unwrap();
    fs::write(dist.join("index.js"), "sleep 300\n").unwrap();
    let fs_tree = Tree::spawn(&format!(
        "cd '{}' && exec -a node bash node_modules/@modelcontextprotocol/server-filesystem/dist/index.js /srv/data",
        cwd.path().display()
    ));
    let mem_tree =
        Tree::spawn("exec -a bunx bash -c 'sleep 300; :' @modelcontextprotocol/server-memory");
    let fs_pid = wait_for_self(fs_tree.pid(), "node");
    let mem_pid = wait_for_self(mem_tree.pid(), "bunx");

    let mut opts = Options::for_home(&home);
    opts.processes = true;
    opts.projects.push(home.join("proj"));
    let report = discovery::discover(&opts, None);
    let Processes::Scanned { servers, .. } = &report.processes else {
        panic!("{:?}", report.processes)
    };
    let fs_p = servers
        .iter()
        .find(|p| p.pid == fs_pid)
        .expect("node found");
    assert_eq!(fs_p.key, "@modelcontextprotocol/server-filesystem");
    assert_eq!(fs_p.server_id, "cursor/fs");
    let mem_p = servers
        .iter()
        .find(|p| p.pid == mem_pid)
        .expect("bunx found");
    assert_eq!(mem_p.key, "@modelcontextprotocol/server-memory");
    assert!(!mem_p.configured, "matched to {}", mem_p.server_id);
    assert_eq!(mem_p.server_id, "process/server-memory");
    let dev = report
        .server("vscode/memory")
        .expect("dev container server read");
    assert!(dev.pids.is_empty(), "{:?}", dev.pids);
}
