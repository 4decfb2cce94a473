//! Running servers: one read of `/proc` ([`snapshot`], the only process I/O
//! discovery does), then pure matching of what runs to what is configured
//! ([`match_processes`]), so the matching can be tested on made-up tables.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use super::clients::CLIENTS;
use super::extract::Spec;
use super::launch::{self, Launch};
use super::process::{self, Proc, SnapshotError, Table};
use super::{Configured, ManagedBy, ProcessInfo, is_loopback_host, launch_fingerprint, url_port};

/// Everything discovery reads about running processes, read at once.
pub(super) struct Snapshot {
    /// Every process, sorted by pid.
    pub procs: Vec<Proc>,
    /// `launch::analyze` of each process's argv (parallel to `procs`).
    /// Computed here because whether a cwd is needed depends on it.
    pub launches: Vec<Launch>,
    /// Working directories of processes that run a script (relative
    /// scripts resolve against them).
    pub cwds: HashMap<i32, String>,
    /// cgroup of every process that can become a server root.
    pub cgroups: HashMap<i32, String>,
    /// Listening TCP sockets by port; read only when a config wants a port.
    pub ports: HashMap<u16, Vec<u64>>,
    /// Holders of the wanted ports' sockets.
    pub socket_owners: HashMap<u64, Vec<i32>>,
    /// Discovery's own pid: never reported as a server by its command line.
    pub own_pid: i32,
}

/// Read the process table and what matching needs from it. `ports`: the
/// loopback ports configured remote servers listen on (see
/// [`loopback_ports`]); the socket tables are only read when there are any,
/// because finding socket owners walks every process's fds.
pub(super) fn snapshot(proc_root: &Path, ports: &[u16]) -> Result<Snapshot, SnapshotError> {
    let procs = process::snapshot(proc_root)?;
    let own_pid = std::process::id() as i32;
    let launches: Vec<Launch> = procs.iter().map(|p| launch::analyze(&p.argv)).collect();
    let candidate = |p: &Proc| !p.argv.is_empty() && p.pid != own_pid;
    let mut cwds = HashMap::new();
    for (p, l) in procs.iter().zip(&launches) {
        if candidate(p) && l.script {
            if let Ok(cwd) = std::fs::read_link(proc_root.join(p.pid.to_string()).join("cwd")) {
                cwds.insert(p.pid, cwd.to_string_lossy().into_owned());
            }
        }
    }
    let (listening, socket_owners) = if ports.is_empty() {
        (HashMap::new(), HashMap::new())
    } else {
        let listening = process::listening_ports(proc_root);
        let inodes: Vec<u64> = ports
            .iter()
            .filter_map(|p| listening.get(p))
            .flatten()
            .copied()
            .collect();
        let owners = process::socket_owners(proc_root, &inodes);
        (listening, owners)
    };
    // Roots come from the candidates, listeners from the socket owners.
    let owner_pids: BTreeSet<i32> = socket_owners.values().flatten().copied().collect();
    let mut cgroups = HashMap::new();
    for pid in procs
        .iter()
        .filter(|p| candidate(p))
        .map(|p| p.pid)
        .chain(owner_pids)
    {
        if let Some(cg) = process::cgroup_of(proc_root, pid) {
            cgroups.insert(pid, cg);
        }
    }
    Ok(Snapshot {
        procs,
        launches,
        cwds,
        cgroups,
        ports: listening,
        socket_owners,
        own_pid,
    })
}

/// `(port, configured group)` of every enabled remote server on a loopback
/// URL with an explicit port: such a server is whatever listens there.
pub(super) fn loopback_ports(groups: &[Vec<Configured>]) -> Vec<(u16, usize)> {
    groups
        .iter()
        .enumerate()
        .filter(|(_, g)| !g.iter().all(|c| c.location.disabled))
        .filter_map(|(gi, g)| match &g[0].entry.spec {
            Spec::Remote { url, .. } if is_loopback_host(url) => url_port(url).map(|p| (p, gi)),
            _ => None,
        })
        .collect()
}

/// A running server's root process, as matched.
#[derive(Debug)]
pub(super) struct Running {
    /// The report's record (`server_id` is filled in by id assignment).
    pub info: ProcessInfo,
    /// The raw argv, for the command-line secret check only (the
    /// record's command line is redacted).
    pub argv: Vec<String>,
    /// The configured group it is an instance of.
    pub group: Option<usize>,
    /// What it runs, for grouping unconfigured processes.
    pub launch: Launch,
    pub fingerprint: String,
}

/// Running processes of the same launch that match no config: one
/// process-only server.
#[derive(Debug)]
pub(super) struct RunGroup {
    pub fingerprint: String,
    pub launch: Launch,
    /// Indices into the matched [`Running`] list.
    pub procs: Vec<usize>,
}

/// Running servers in report order (roots by pid, then listeners found by
/// port), and the process-only servers among them.
#[derive(Debug, Default)]
pub(super) struct Matched {
    pub running: Vec<Running>,
    pub run_groups: Vec<RunGroup>,
}

/// A recognised process: index in the snapshot, launch resolved against
/// its cwd, and the launch as written.
type Recognised = (usize, Launch, Launch);

/// Match the snapshot's processes to the configured groups.
pub(super) fn match_processes(groups: &[Vec<Configured>], snap: &Snapshot) -> Matched {
    let table = Table::new(&snap.procs);
    let keys = configured_keys(groups);
    let by_fp: HashMap<&str, usize> = groups
        .iter()
        .enumerate()
        .map(|(gi, g)| (g[0].fingerprint.as_str(), gi))
        .collect();
    let recognised = recognise(snap, &keys);
    let (roots, mut descendants) = fold_trees(snap, &table, recognised);

    let mut running = Vec::new();
    for (i, l, raw) in roots {
        let p = &snap.procs[i];
        let fp = launch_fingerprint(&l);
        // Exact launch match, else a unique configured key; a config whose
        // relative script could not be resolved matches the process's
        // unresolved form.
        // Only a config that could have launched this process counts: a
        // dev container's servers run in a container, never on the host.
        let contained = snap
            .cgroups
            .get(&p.pid)
            .is_some_and(|c| process::cgroup_is_container(c));
        let could_launch = |gi: usize| contained || groups[gi].iter().any(|c| !c.in_container);
        let info = process_info(
            snap,
            &table,
            p,
            &l,
            descendants.remove(&p.pid).unwrap_or_default(),
        );
        // Among several configs with its key, the one of the client that
        // runs it (found among its ancestors).
        let unique_key = |k: &str| {
            let v: Vec<usize> = keys
                .get(k)
                .into_iter()
                .flatten()
                .copied()
                .filter(|&gi| could_launch(gi))
                .collect();
            match v[..] {
                [one] => Some(one),
                _ => {
                    let of_client: Vec<usize> = v
                        .into_iter()
                        .filter(|&gi| {
                            info.client.is_some_and(|cl| {
                                groups[gi].iter().any(|c| c.location.client == cl)
                            })
                        })
                        .collect();
                    (of_client.len() == 1).then(|| of_client[0])
                }
            }
        };
        let group = by_fp
            .get(fp.as_str())
            .or_else(|| by_fp.get(launch_fingerprint(&raw).as_str()))
            .copied()
            .filter(|&gi| could_launch(gi))
            .or_else(|| unique_key(&l.key))
            .or_else(|| unique_key(&raw.key));
        running.push(Running {
            info,
            argv: p.argv.clone(),
            group,
            launch: l,
            fingerprint: fp,
        });
    }
    match_listeners(groups, snap, &table, &mut running);
    for r in &mut running {
        r.info.configured = r.group.is_some();
    }
    let run_groups = group_unmatched(&running);
    Matched {
        running,
        run_groups,
    }
}

/// Configured launch keys -> groups having that key (`assay` itself is
/// not a server key: a monitor wrapper unwraps to what it runs).
fn configured_keys(groups: &[Vec<Configured>]) -> HashMap<&str, Vec<usize>> {
    let mut m: HashMap<&str, Vec<usize>> = HashMap::new();
    for (gi, g) in groups.iter().enumerate() {
        if let Some(l) = &g[0].launch {
            if !l.key.is_empty() && l.key != "assay" {
                m.entry(l.key.as_str()).or_default().push(gi);
            }
        }
    }
    m
}

/// Processes that look like MCP servers or run a configured key.
fn recognise(snap: &Snapshot, keys: &HashMap<&str, Vec<usize>>) -> Vec<Recognised> {
    snap.procs
        .iter()
        .zip(&snap.launches)
        .enumerate()
        .filter(|(_, (p, _))| !p.argv.is_empty() && p.pid != snap.own_pid)
        .filter_map(|(i, (p, raw))| {
            // Relative scripts resolve against the process's cwd.
            let mut l = raw.clone();
            if l.script {
                if let Some(cwd) = snap.cwds.get(&p.pid) {
                    l.resolve_relative(cwd);
                }
            }
            let configured =
                keys.contains_key(l.key.as_str()) || keys.contains_key(raw.key.as_str());
            (l.looks_like_mcp() || configured).then(|| (i, l, raw.clone()))
        })
        .collect()
}

/// Split recognised processes into roots and, per root pid, the recognised
/// processes below it (npm exec -> sh -> node is one server).
fn fold_trees(
    snap: &Snapshot,
    table: &Table,
    recognised: Vec<Recognised>,
) -> (Vec<Recognised>, BTreeMap<i32, Vec<i32>>) {
    let pids: BTreeSet<i32> = recognised
        .iter()
        .map(|(i, _, _)| snap.procs[*i].pid)
        .collect();
    let mut descendants: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    let mut roots = Vec::new();
    for r in recognised {
        let pid = snap.procs[r.0].pid;
        // The topmost recognised ancestor owns this process.
        match table
            .ancestors(pid)
            .iter()
            .rev()
            .find(|a| pids.contains(&a.pid))
        {
            Some(top) => descendants.entry(top.pid).or_default().push(pid),
            None => roots.push(r),
        }
    }
    (roots, descendants)
}

/// The record of one server root process: the client found among its
/// ancestors and whether `assay monitor` manages it.
fn process_info(
    snap: &Snapshot,
    table: &Table,
    p: &Proc,
    l: &Launch,
    descendants: Vec<i32>,
) -> ProcessInfo {
    let anc = table.ancestors(p.pid);
    let client = anc.iter().find_map(|a| {
        let names = process::names_of(a);
        CLIENTS
            .iter()
            .find(|c| c.process_names.iter().any(|n| names.iter().any(|x| x == n)))
            .map(|c| c.id)
    });
    let cgroup = snap.cgroups.get(&p.pid).cloned();
    let managed_by = if let Some(cg) = cgroup.as_ref().filter(|c| process::cgroup_is_managed(c)) {
        Some(ManagedBy::MonitorCgroup {
            pid: p.pid,
            cgroup: cg.clone(),
        })
    } else if let Some(a) = anc.iter().find(|a| process::is_assay_monitor(a)) {
        Some(ManagedBy::MonitorAncestor { pid: a.pid })
    } else if l.monitor_wrapped {
        Some(ManagedBy::MonitorAncestor { pid: p.pid })
    } else {
        None
    };
    ProcessInfo {
        pid: p.pid,
        ppid: p.ppid,
        command_line: super::secrets::redact_args(&p.argv).join(" "),
        key: l.key.clone(),
        server_id: String::new(),
        configured: false,
        client,
        parent: table.get(p.ppid).map(|pp| (pp.pid, pp.comm.clone())),
        managed_by,
        cgroup,
        descendants,
    }
}

/// A remote server on loopback is the process listening on its URL's port,
/// whatever its command line: attach (or add) the topmost listener to its
/// group. When two groups want the same port, the later one wins.
fn match_listeners(
    groups: &[Vec<Configured>],
    snap: &Snapshot,
    table: &Table,
    running: &mut Vec<Running>,
) {
    for (port, gi) in loopback_ports(groups) {
        let mut pids: Vec<i32> = snap
            .ports
            .get(&port)
            .into_iter()
            .flatten()
            .filter_map(|ino| snap.socket_owners.get(ino))
            .flatten()
            .copied()
            .collect();
        pids.sort_unstable();
        pids.dedup();
        // Workers inherit the listening socket: keep the topmost owner.
        let tops: Vec<i32> = pids
            .iter()
            .copied()
            .filter(|&pid| !table.ancestors(pid).iter().any(|a| pids.contains(&a.pid)))
            .collect();
        for pid in tops {
            let existing = running
                .iter()
                .position(|r| r.info.pid == pid || r.info.descendants.contains(&pid));
            let idx = match existing {
                Some(idx) => idx,
                None => {
                    let Some(p) = table.get(pid) else { continue };
                    // Its launch as written: a listener is not resolved
                    // against its cwd.
                    let l = snap
                        .procs
                        .iter()
                        .position(|q| q.pid == pid)
                        .map(|i| snap.launches[i].clone())
                        .unwrap_or_default();
                    let fp = launch_fingerprint(&l);
                    running.push(Running {
                        info: process_info(snap, table, p, &l, Vec::new()),
                        argv: p.argv.clone(),
                        group: None,
                        launch: l,
                        fingerprint: fp,
                    });
                    running.len() - 1
                }
            };
            running[idx].group = Some(gi);
        }
    }
}

/// Unmatched running servers grouped by launch fingerprint, in order of
/// first appearance.
fn group_unmatched(running: &[Running]) -> Vec<RunGroup> {
    let mut run_groups: Vec<RunGroup> = Vec::new();
    for (idx, r) in running.iter().enumerate() {
        if r.group.is_some() {
            continue;
        }
        match run_groups
            .iter_mut()
            .find(|g| g.fingerprint == r.fingerprint)
        {
            Some(g) => g.procs.push(idx),
            None => run_groups.push(RunGroup {
                fingerprint: r.fingerprint.clone(),
                launch: r.launch.clone(),
                procs: vec![idx],
            }),
        }
    }
    run_groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::assemble::group_configured;
    use crate::discovery::testkit::{process, remote, snapshot, stdio, stdio_in};

    fn claude_with(children: Vec<Proc>) -> Vec<Proc> {
        let mut procs = vec![
            process(1, 0, "/sbin/init"),
            process(
                100,
                1,
                "node /usr/lib/node_modules/@anthropic-ai/claude-code/cli.js",
            ),
        ];
        procs.extend(children);
        procs
    }

    fn summary(m: &Matched) -> Vec<(i32, Option<usize>, bool, Vec<i32>)> {
        m.running
            .iter()
            .map(|r| {
                (
                    r.info.pid,
                    r.group,
                    r.info.configured,
                    r.info.descendants.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn a_configured_server_is_matched_with_its_tree_and_client() {
        let groups = group_configured(vec![stdio(
            "claude-code",
            "/h/.claude.json",
            "fs",
            "npx -y @modelcontextprotocol/server-filesystem /tmp",
        )]);
        let snap = snapshot(claude_with(vec![
            process(
                200,
                100,
                "npm exec @modelcontextprotocol/server-filesystem /tmp",
            ),
            process(201, 200, "sh -c 'mcp-server-filesystem /tmp'"),
            process(202, 201, "node /n/.bin/mcp-server-filesystem /tmp"),
            process(300, 1, "bash"),
        ]));
        let m = match_processes(&groups, &snap);
        assert_eq!(summary(&m), [(200, Some(0), true, vec![201, 202])]);
        assert!(m.run_groups.is_empty());
        let info = &m.running[0].info;
        assert_eq!(info.client, Some("claude-code"));
        assert_eq!(info.parent, Some((100, "node".to_string())));
        assert_eq!(info.key, "@modelcontextprotocol/server-filesystem");
        assert_eq!(info.managed_by, None);
        assert_eq!(info.server_id, "", "ids come later");
    }

    #[test]
    fn a_unique_configured_key_matches_other_arguments_but_a_shared_one_does_not() {
        let one = group_configured(vec![stdio(
            "cursor",
            "/h/.cursor/mcp.json",
            "gh",
            "npx -y @acme/github-mcp --toolsets all",
        )]);
        let snap = snapshot(vec![process(
            10,
            1,
            "node /x/node_modules/@acme/github-mcp/dist/index.js",
        )]);
        assert_eq!(
            summary(&match_processes(&one, &snap)),
            [(10, Some(0), true, vec![])]
        );

        let two = group_configured(vec![
            stdio(
                "cursor",
                "/h/.cursor/mcp.json",
                "a",
                "npx @acme/github-mcp a",
            ),
            stdio(
                "cursor",
                "/h/.cursor/mcp.json",
                "b",
                "npx @acme/github-mcp b",
            ),
        ]);
        let m = match_processes(&two, &snap);
        assert_eq!(summary(&m), [(10, None, false, vec![])]);
        assert_eq!(m.run_groups.len(), 1);
        assert_eq!(m.run_groups[0].procs, [0]);
    }

    #[test]
    fn only_mcp_looking_or_configured_processes_are_servers() {
        let groups = group_configured(vec![stdio(
            "cursor",
            "/h/.cursor/mcp.json",
            "w",
            "python3 /srv/weather.py",
        )]);
        let mut procs = vec![
            process(5, 1, "python3 /srv/weather.py"),
            process(6, 1, "python3 /srv/other.py"),
            process(7, 1, "mcp-server-time"),
            process(8, 1, "/usr/bin/assay discover"),
        ];
        procs.push(Proc {
            pid: 9,
            ppid: 2,
            comm: "kworker/0:1".into(),
            argv: Vec::new(),
        });
        let mut snap = snapshot(procs);
        snap.own_pid = 7;
        let m = match_processes(&groups, &snap);
        // 7 is discovery itself; 9 is a kernel thread.
        assert_eq!(summary(&m), [(5, Some(0), true, vec![])]);
        snap.own_pid = 0;
        let m = match_processes(&groups, &snap);
        assert_eq!(
            summary(&m),
            [(5, Some(0), true, vec![]), (7, None, false, vec![])]
        );
    }

    #[test]
    fn unconfigured_processes_group_by_launch_in_order_of_appearance() {
        let snap = snapshot(vec![
            process(20, 1, "mcp-server-time --tz UTC"),
            process(21, 1, "uvx mcp-server-fetch"),
            process(22, 1, "mcp-server-time --tz UTC"),
            process(23, 1, "mcp-server-time --tz CET"),
        ]);
        let m = match_processes(&[], &snap);
        let groups: Vec<(&str, &[usize])> = m
            .run_groups
            .iter()
            .map(|g| (g.launch.key.as_str(), g.procs.as_slice()))
            .collect();
        assert_eq!(
            groups,
            [
                ("mcp-server-time", &[0, 2][..]),
                ("mcp-server-fetch", &[1][..]),
                ("mcp-server-time", &[3][..]),
            ]
        );
        assert!(m.running.iter().all(|r| !r.info.configured));
    }

    #[test]
    fn a_relative_script_resolves_against_the_process_cwd() {
        let groups = group_configured(vec![
            stdio_in("cursor", "/h/a.json", "a", "python server.py", "/srv/a"),
            stdio_in("cursor", "/h/b.json", "b", "python server.py", "/srv/b"),
        ]);
        let mut snap = snapshot(vec![
            process(30, 1, "python server.py"),
            process(31, 1, "python server.py"),
        ]);
        snap.cwds.insert(30, "/srv/b".into());
        snap.cwds.insert(31, "/srv/a".into());
        let m = match_processes(&groups, &snap);
        let key_of = |gi: usize| groups[gi][0].launch.as_ref().unwrap().key.clone();
        assert_eq!(key_of(0), "/srv/a/server.py");
        assert_eq!(
            summary(&m),
            [(30, Some(1), true, vec![]), (31, Some(0), true, vec![])]
        );
        assert_eq!(m.running[0].info.key, "/srv/b/server.py");
    }

    #[test]
    fn a_loopback_remote_server_is_the_topmost_process_on_its_port() {
        let groups = group_configured(vec![
            remote("cursor", "/h/m.json", "local", "http://127.0.0.1:7777/mcp"),
            remote(
                "cursor",
                "/h/m.json",
                "far",
                "https://mcp.example.com:7777/",
            ),
        ]);
        // Groups are in name order: `far` is 0, `local` 1.
        assert_eq!(loopback_ports(&groups), [(7777, 1)]);
        let mut snap = snapshot(vec![
            process(40, 1, "python -m http.server 7777"),
            process(41, 40, "python -m http.server 7777"),
            process(42, 1, "mcp-server-time"),
        ]);
        snap.ports.insert(7777, vec![9001]);
        snap.ports.insert(8080, vec![9002]);
        snap.socket_owners.insert(9001, vec![41, 40]);
        snap.socket_owners.insert(9002, vec![42]);
        let m = match_processes(&groups, &snap);
        assert_eq!(
            summary(&m),
            [(42, None, false, vec![]), (40, Some(1), true, vec![])]
        );
        assert_eq!(m.running[1].info.key, "http.server");
        assert_eq!(m.run_groups.len(), 1);

        // A recognised root (or a process below one) on the port is that root.
        let snap2 = {
            let mut s = snapshot(vec![
                process(50, 1, "uvx mcp-server-fetch"),
                process(51, 50, "python -m mcp_server_fetch"),
            ]);
            s.ports.insert(7777, vec![1]);
            s.socket_owners.insert(1, vec![51]);
            s
        };
        let m = match_processes(&groups, &snap2);
        assert_eq!(summary(&m), [(50, Some(1), true, vec![51])]);
        assert!(m.run_groups.is_empty());
    }

    #[test]
    fn a_disabled_remote_server_wants_no_port() {
        let mut c = remote("cursor", "/h/m.json", "local", "http://localhost:7777/mcp");
        c.location.disabled = true;
        let groups = group_configured(vec![
            c,
            remote("cursor", "/h/m.json", "noport", "http://localhost/mcp"),
        ]);
        assert!(loopback_ports(&groups).is_empty());
    }

    #[test]
    fn monitor_management_is_read_from_cgroup_ancestry_and_wrapper() {
        let mut snap = snapshot(vec![
            process(60, 1, "mcp-server-a"),
            process(61, 1, "/usr/bin/assay monitor --policy p.yaml -- sh -c x"),
            process(62, 61, "mcp-server-b"),
            process(63, 1, "assay monitor --policy p -- mcp-server-c"),
            process(64, 1, "mcp-server-d"),
        ]);
        snap.cgroups
            .insert(60, "/user.slice/assay-monitor-7/leaf".into());
        snap.cgroups.insert(64, "/user.slice/session.scope".into());
        let m = match_processes(&[], &snap);
        let by: Vec<(i32, Option<ManagedBy>)> = m
            .running
            .iter()
            .map(|r| (r.info.pid, r.info.managed_by.clone()))
            .collect();
        assert_eq!(
            by,
            [
                (
                    60,
                    Some(ManagedBy::MonitorCgroup {
                        pid: 60,
                        cgroup: "/user.slice/assay-monitor-7/leaf".into()
                    })
                ),
                (62, Some(ManagedBy::MonitorAncestor { pid: 61 })),
                (63, Some(ManagedBy::MonitorAncestor { pid: 63 })),
                (64, None),
            ]
        );
        assert_eq!(
            m.running[3].info.cgroup.as_deref(),
            Some("/user.slice/session.scope")
        );
    }

    #[test]
    fn a_dev_container_server_matches_only_a_containerised_process() {
        let dev = || {
            let mut c = stdio(
                "vscode",
                "/h/p/.devcontainer/devcontainer.json",
                "memory",
                "npx -y @modelcontextprotocol/server-memory",
            );
            c.in_container = true;
            c
        };
        let host = || process(10, 1, "bunx @modelcontextprotocol/server-memory");
        // On the host: not the dev container's server.
        let groups = group_configured(vec![dev()]);
        let m = match_processes(&groups, &snapshot(vec![host()]));
        assert_eq!(summary(&m), [(10, None, false, vec![])]);
        assert_eq!(m.run_groups.len(), 1);
        // Inside a container: it is.
        let mut snap = snapshot(vec![host()]);
        snap.cgroups
            .insert(10, "/system.slice/docker-3f2a.scope".into());
        let m = match_processes(&groups, &snap);
        assert_eq!(summary(&m), [(10, Some(0), true, vec![])]);
        // The same launch also configured on the host: that config could
        // have launched it.
        let groups = group_configured(vec![
            dev(),
            stdio(
                "cursor",
                "/h/.cursor/mcp.json",
                "memory",
                "npx -y @modelcontextprotocol/server-memory",
            ),
        ]);
        let m = match_processes(&groups, &snapshot(vec![host()]));
        assert_eq!(summary(&m), [(10, Some(0), true, vec![])]);
    }

    #[test]
    fn a_shared_key_goes_to_the_config_of_the_client_that_runs_it() {
        let groups = group_configured(vec![
            stdio(
                "claude-code",
                "/h/.claude.json",
                "fs",
                "npx -y @modelcontextprotocol/server-filesystem /a",
            ),
            stdio(
                "cursor",
                "/h/.cursor/mcp.json",
                "fs",
                "npx -y @modelcontextprotocol/server-filesystem /b",
            ),
        ]);
        let run = "node /n/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js /c";
        let m = match_processes(
            &groups,
            &snapshot(claude_with(vec![process(200, 100, run)])),
        );
        assert_eq!(summary(&m), [(200, Some(0), true, vec![])]);
        // With no client among its ancestors, two candidates: none chosen.
        let m = match_processes(&groups, &snapshot(vec![process(200, 1, run)]));
        assert_eq!(summary(&m), [(200, None, false, vec![])]);
    }
}
