//! From configured entries to servers, in phases that each return data:
//! [`group_configured`], [`running::snapshot`] (the only I/O),
//! [`running::match_processes`], [`ids::server_ids`], [`judge::judge`].

use std::collections::HashMap;
use std::path::PathBuf;

use crate::policy::model::DiscoveryConfig;

use super::running::{self, Matched};
use super::{Configured, Finding, Options, Processes, Scope, Server, clients, ids, judge};

/// Group entries into servers, attach processes, derive ids and findings.
pub(super) fn assemble(
    opts: &Options,
    do_procs: bool,
    configured: Vec<Configured>,
    policy: Option<&DiscoveryConfig>,
) -> (Processes, Vec<Server>, Vec<Finding>) {
    let groups = group_configured(configured);
    let (processes, mut matched) = if !do_procs {
        (not_scanned(opts), Matched::default())
    } else {
        let ports: Vec<u16> = running::loopback_ports(&groups)
            .into_iter()
            .map(|(port, _)| port)
            .collect();
        match running::snapshot(&opts.proc_root, &ports) {
            Err(e) => (
                Processes::Unsupported {
                    reason: e.to_string(),
                },
                Matched::default(),
            ),
            Ok(snap) => (
                Processes::Scanned {
                    total: snap.procs.len(),
                    servers: Vec::new(),
                },
                running::match_processes(&groups, &snap),
            ),
        }
    };
    let ids = ids::server_ids(&groups, &matched.run_groups);
    stamp_server_ids(&mut matched, groups.len(), &ids);
    let managed_names: Vec<&str> = policy
        .map(|p| p.managed.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let (servers, findings) = judge::judge(groups, &matched, &ids, &managed_names);
    let processes = match processes {
        Processes::Scanned { total, .. } => Processes::Scanned {
            total,
            servers: matched.running.into_iter().map(|r| r.info).collect(),
        },
        other => other,
    };
    (processes, servers, findings)
}

fn not_scanned(opts: &Options) -> Processes {
    Processes::NotScanned {
        reason: if opts.processes {
            "disabled by the policy's discovery.methods".into()
        } else {
            "not requested (--local scans processes; use --processes with --home)".into()
        },
    }
}

/// Configured entries grouped by launch fingerprint, one group per server.
/// Entries are first put in report order (client order, scope, path,
/// name) so a group's first entry, which names the server, does not depend
/// on the order files were read in (the sort is stable: entries equal in
/// all four keep read order).
pub(super) fn group_configured(mut configured: Vec<Configured>) -> Vec<Vec<Configured>> {
    fn report_order(c: &Configured) -> (usize, Scope, &PathBuf, &String) {
        let l = &c.location;
        (clients::index_of(l.client), l.scope, &l.path, &l.name)
    }
    configured.sort_by(|a, b| report_order(a).cmp(&report_order(b)));
    let mut groups: Vec<Vec<Configured>> = Vec::new();
    let mut by_fp: HashMap<String, usize> = HashMap::new();
    for c in configured {
        match by_fp.get(&c.fingerprint) {
            Some(&g) => groups[g].push(c),
            None => {
                by_fp.insert(c.fingerprint.clone(), groups.len());
                groups.push(vec![c]);
            }
        }
    }
    groups
}

/// Write each running process's server id into its record: `ids` holds
/// the configured groups' ids, then the process-only servers'.
pub(super) fn stamp_server_ids(matched: &mut Matched, configured_groups: usize, ids: &[String]) {
    for r in &mut matched.running {
        if let Some(gi) = r.group {
            r.info.server_id = ids[gi].clone();
        }
    }
    for (ri, g) in matched.run_groups.iter().enumerate() {
        for &i in &g.procs {
            matched.running[i].info.server_id = ids[configured_groups + ri].clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::discovery::testkit::{process, snapshot, stdio};

    type Shape = Vec<(String, Vec<(&'static str, String, String)>)>;

    /// Each group's fingerprint and its locations (client, path, name).
    fn shape(groups: &[Vec<Configured>]) -> Shape {
        groups
            .iter()
            .map(|g| {
                let locs = g
                    .iter()
                    .map(|c| {
                        let l = &c.location;
                        (l.client, l.path.display().to_string(), l.name.clone())
                    })
                    .collect();
                (g[0].fingerprint.clone(), locs)
            })
            .collect()
    }

    fn entries() -> Vec<Configured> {
        vec![
            stdio("cursor", "/h/.cursor/mcp.json", "time", "mcp-server-time"),
            stdio("claude-code", "/h/p/.mcp.json", "t", "mcp-server-time"),
            stdio(
                "claude-code",
                "/h/.claude.json",
                "fetch",
                "assay monitor --policy p.yaml -- uvx mcp-server-fetch",
            ),
            stdio(
                "claude-desktop",
                "/h/c.json",
                "fetch",
                "uvx mcp-server-fetch",
            ),
            stdio("claude-code", "/h/.claude.json", "time", "mcp-server-time"),
        ]
    }

    #[test]
    fn entries_group_by_launch_in_report_order() {
        let groups = group_configured(entries());
        let s = |x: &str| x.to_string();
        assert_eq!(
            shape(&groups),
            [
                (
                    s("cmd\0mcp-server-fetch"),
                    vec![
                        ("claude-desktop", s("/h/c.json"), s("fetch")),
                        ("claude-code", s("/h/.claude.json"), s("fetch")),
                    ]
                ),
                (
                    s("cmd\0mcp-server-time"),
                    vec![
                        ("claude-code", s("/h/.claude.json"), s("time")),
                        ("claude-code", s("/h/p/.mcp.json"), s("t")),
                        ("cursor", s("/h/.cursor/mcp.json"), s("time")),
                    ]
                ),
            ]
        );
        // The monitor wrapper is unwrapped: same server, marked wrapped.
        assert!(groups[0][1].location.monitor_wrapped);
        assert!(!groups[0][0].location.monitor_wrapped);
    }

    #[test]
    fn grouping_does_not_depend_on_read_order() {
        let want = shape(&group_configured(entries()));
        let mut rev = entries();
        rev.reverse();
        assert_eq!(shape(&group_configured(rev)), want);
        let mut rot = entries();
        rot.rotate_left(2);
        assert_eq!(shape(&group_configured(rot)), want);
        assert!(group_configured(Vec::new()).is_empty());
    }

    #[test]
    fn running_processes_get_their_server_ids() {
        let groups = group_configured(vec![stdio("cursor", "/h/.cursor/mcp.json", "a", "mcp-a")]);
        let snap = snapshot(vec![
            process(10, 1, "mcp-a"),
            process(11, 1, "mcp-b"),
            process(12, 1, "mcp-a"),
            process(13, 1, "mcp-b"),
        ]);
        let mut m = running::match_processes(&groups, &snap);
        let ids = ids::server_ids(&groups, &m.run_groups);
        stamp_server_ids(&mut m, groups.len(), &ids);
        let got: Vec<(i32, &str)> = m
            .running
            .iter()
            .map(|r| (r.info.pid, r.info.server_id.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (10, "cursor/a"),
                (11, "process/mcp-b"),
                (12, "cursor/a"),
                (13, "process/mcp-b")
            ]
        );
    }

    #[test]
    fn processes_not_scanned_or_unsupported_say_why() {
        let mut opts = Options::for_home(Path::new("/nonexistent/home"));
        let (p, servers, _) = assemble(&opts, false, entries(), None);
        assert_eq!(
            p,
            Processes::NotScanned {
                reason: "not requested (--local scans processes; use --processes with --home)"
                    .into()
            }
        );
        assert_eq!(servers.len(), 2);
        opts.processes = true;
        let (p, _, _) = assemble(&opts, false, Vec::new(), None);
        assert_eq!(
            p,
            Processes::NotScanned {
                reason: "disabled by the policy's discovery.methods".into()
            }
        );
        opts.proc_root = "/nonexistent/proc".into();
        let (p, servers, _) = assemble(&opts, true, entries(), None);
        let Processes::Unsupported { reason } = p else {
            panic!("{p:?}")
        };
        if cfg!(target_os = "linux") {
            assert_eq!(
                reason,
                "/nonexistent/proc: No such file or directory (os error 2)"
            );
        }
        assert_eq!(servers.len(), 2);
    }
}
