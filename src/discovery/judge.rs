//! Judging: each server's record, managed status and findings, from the
//! grouped configs, the matched processes and the ids. Pure.

use crate::severity::Severity;

use super::extract::Spec;
use super::ids::aliases;
use super::is_loopback_host;
use super::launch;
use super::running::{Matched, RunGroup, Running};
use super::secrets;
use super::{Configured, Finding, Location, ManagedBy, ProcessInfo, Rule, Server, Transport};

/// Servers (configured groups, then process-only ones) and findings, in
/// the order the report's stable sort starts from: per configured server
/// its unmanaged finding then its location findings, then process-only
/// servers, then secrets on running command lines. The groups are consumed:
/// their locations move into the servers (a thousand homes have over
/// 25,000 of them) instead of being copied while the groups stay alive.
pub(super) fn judge(
    groups: Vec<Vec<Configured>>,
    matched: &Matched,
    ids: &[String],
    managed_names: &[&str],
) -> (Vec<Server>, Vec<Finding>) {
    let configured_groups = groups.len();
    // Each group's running instances, in one pass over the processes
    // rather than one per group.
    let mut procs_of: Vec<Vec<&ProcessInfo>> = vec![Vec::new(); configured_groups];
    for r in &matched.running {
        if let Some(gi) = r.group {
            procs_of[gi].push(&r.info);
        }
    }
    let mut servers = Vec::with_capacity(configured_groups + matched.run_groups.len());
    let mut findings = Vec::new();
    for ((g, procs), id) in groups.into_iter().zip(&procs_of).zip(ids) {
        let (server, found) = configured_server(id, g, procs, managed_names);
        servers.push(server);
        findings.extend(found);
    }
    for (ri, r) in matched.run_groups.iter().enumerate() {
        let procs: Vec<&ProcessInfo> = r.procs.iter().map(|&i| &matched.running[i].info).collect();
        let (server, found) =
            process_server(&ids[configured_groups + ri], r, &procs, managed_names);
        servers.push(server);
        findings.extend(found);
    }
    findings.extend(matched.running.iter().filter_map(command_line_finding));
    (servers, findings)
}

/// Whether a server counts as managed, why, and what keeps it from being.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Status<'a> {
    pub managed: bool,
    pub managed_by: Vec<ManagedBy>,
    /// Enabled config locations that do not launch it under `assay monitor`.
    pub unwrapped: Vec<&'a Location>,
    /// Running instances outside `assay monitor`.
    pub unmanaged_pids: Vec<i32>,
}

/// A configured server is managed when the policy says so, or when every
/// enabled location and every running instance is under `assay monitor`
/// (and there is at least one of them: a server only disabled is not).
pub(super) fn configured_status<'a>(
    by_policy: bool,
    locations: &'a [Location],
    procs: &[&ProcessInfo],
) -> Status<'a> {
    let mut managed_by = Vec::new();
    if by_policy {
        managed_by.push(ManagedBy::Policy);
    }
    if locations.iter().any(|l| l.monitor_wrapped) {
        managed_by.push(ManagedBy::MonitorWrapper);
    }
    managed_by.extend(procs.iter().filter_map(|p| p.managed_by.clone()));
    let unwrapped: Vec<&Location> = locations
        .iter()
        .filter(|l| !l.disabled && !l.monitor_wrapped)
        .collect();
    let unmanaged_pids: Vec<i32> = procs
        .iter()
        .filter(|p| p.managed_by.is_none())
        .map(|p| p.pid)
        .collect();
    let managed =
        by_policy || unwrapped.is_empty() && unmanaged_pids.is_empty() && !managed_by.is_empty();
    Status {
        managed,
        managed_by,
        unwrapped,
        unmanaged_pids,
    }
}

/// A process-only server is managed when the policy says so or every
/// instance is under `assay monitor`.
pub(super) fn process_status(by_policy: bool, procs: &[&ProcessInfo]) -> Status<'static> {
    let mut managed_by = Vec::new();
    if by_policy {
        managed_by.push(ManagedBy::Policy);
    }
    let mut unmanaged_pids = Vec::new();
    for p in procs {
        match &p.managed_by {
            Some(m) => managed_by.push(m.clone()),
            None => unmanaged_pids.push(p.pid),
        }
    }
    Status {
        managed: by_policy || unmanaged_pids.is_empty(),
        managed_by,
        unwrapped: Vec::new(),
        unmanaged_pids,
    }
}

fn configured_server(
    id: &str,
    g: Vec<Configured>,
    procs: &[&ProcessInfo],
    managed_names: &[&str],
) -> (Server, Vec<Finding>) {
    let first = &g[0];
    let aliases = aliases(id, &g);
    let (transport, command_line, key, launchers) = view_of(first);
    let name = first.location.name.clone();
    // Location findings come after the unmanaged one, but are taken now:
    // the locations move out of the entries below.
    let mut location_found = Vec::new();
    for c in &g {
        location_findings(id, c, &mut location_found);
    }
    let locations: Vec<Location> = g.into_iter().map(|c| c.location).collect();
    let running_pids: Vec<i32> = procs.iter().map(|p| p.pid).collect();
    // The policy may name a server by id, alias or its name in a config.
    let by_policy = managed_names.iter().any(|m| {
        *m == id || aliases.iter().any(|a| a == m) || locations.iter().any(|l| l.name == *m)
    });
    let status = configured_status(by_policy, &locations, procs);
    let mut findings = Vec::new();
    if !status.managed && (!status.unwrapped.is_empty() || !status.unmanaged_pids.is_empty()) {
        let mut why = Vec::new();
        for l in &status.unwrapped {
            why.push(format!("{} {}", l.client, l.path.display()));
        }
        for pid in &status.unmanaged_pids {
            why.push(format!("running as pid {pid}"));
        }
        findings.push(Finding {
            rule: Rule::UnmanagedServer,
            severity: Severity::Medium,
            server_id: Some(id.to_string()),
            client: status.unwrapped.first().map(|l| l.client),
            path: status.unwrapped.first().map(|l| l.path.clone()),
            pid: status.unmanaged_pids.first().copied(),
            message: format!(
                "{id} is not launched under assay monitor ({})",
                why.join("; ")
            ),
            evidence: None,
        });
    }
    findings.append(&mut location_found);
    let (managed, managed_by) = (status.managed, status.managed_by);
    let disabled = locations.iter().all(|l| l.disabled) && running_pids.is_empty();
    let server = Server {
        id: id.to_string(),
        name,
        aliases,
        key,
        launchers,
        transport,
        command_line,
        locations,
        disabled,
        managed,
        managed_by,
        pids: running_pids,
    };
    (server, findings)
}

fn process_server(
    id: &str,
    r: &RunGroup,
    procs: &[&ProcessInfo],
    managed_names: &[&str],
) -> (Server, Option<Finding>) {
    let short_name = r.launch.short_name();
    let by_policy = managed_names.iter().any(|m| *m == id || *m == short_name);
    let status = process_status(by_policy, procs);
    let finding = (!status.managed).then(|| {
        let pids: Vec<String> = status.unmanaged_pids.iter().map(i32::to_string).collect();
        Finding {
            rule: Rule::UnmanagedServer,
            severity: Severity::Medium,
            server_id: Some(id.to_string()),
            client: None,
            path: None,
            pid: status.unmanaged_pids.first().copied(),
            message: format!(
                "{id} is running (pid {}) without assay monitor and is not in any known config",
                pids.join(", ")
            ),
            evidence: None,
        }
    });
    let server = Server {
        id: id.to_string(),
        name: short_name,
        aliases: Vec::new(),
        key: r.launch.key.clone(),
        launchers: r.launch.launchers.iter().map(|s| s.to_string()).collect(),
        transport: Transport::Process,
        command_line: procs[0].command_line.clone(),
        locations: Vec::new(),
        disabled: false,
        managed: status.managed,
        managed_by: status.managed_by,
        pids: procs.iter().map(|p| p.pid).collect(),
    };
    (server, finding)
}

/// A credential on a running server's command line, which every local
/// user can read.
fn command_line_finding(r: &Running) -> Option<Finding> {
    let (label, evidence) = command_line_secret(&r.argv)?;
    let pi = &r.info;
    Some(Finding {
        rule: Rule::SecretInCommandLine,
        severity: Severity::High,
        server_id: Some(pi.server_id.clone()),
        client: pi.client,
        path: None,
        pid: Some(pi.pid),
        message: format!(
            "pid {} of {} has a {label} in its command line",
            pi.pid, pi.server_id
        ),
        evidence: Some(evidence),
    })
}

/// The first secret in an argv: (kind label, redacted evidence).
fn command_line_secret(argv: &[String]) -> Option<(&'static str, String)> {
    let hits = secrets::scan_args(argv);
    let (idx, kind) = hits.first()?;
    let red = secrets::redact_args(argv);
    Some((kind.label(), format!("argv[{idx}] = {}", red[*idx])))
}

/// The redacted view of a configured entry: transport, display line, key, launchers.
fn view_of(c: &Configured) -> (Transport, String, String, Vec<String>) {
    match &c.entry.spec {
        Spec::Stdio { argv, env, cwd } => {
            let command = secrets::redact_text(&argv[0]);
            let args = secrets::redact_args(&argv[1..]);
            let env = env
                .iter()
                .map(|(k, v)| (k.clone(), secrets::shown_value(v)))
                .collect();
            let mut line = vec![command.clone()];
            line.extend(args.iter().cloned());
            let l = c.launch.clone().unwrap_or_default();
            (
                Transport::Stdio {
                    command,
                    args,
                    env,
                    cwd: cwd.as_deref().map(secrets::redact_text),
                },
                line.join(" "),
                l.key,
                l.launchers.iter().map(|s| s.to_string()).collect(),
            )
        }
        Spec::Remote {
            kind,
            url,
            headers,
            auth_configured,
        } => {
            let url_r = secrets::redact_text(url);
            let host = url_r
                .split("://")
                .nth(1)
                .and_then(|r| r.split(['/', '?']).next())
                .map(|h| h.rsplit('@').next().unwrap_or(h).to_string())
                .unwrap_or_else(|| url_r.clone());
            (
                Transport::Remote {
                    kind: *kind,
                    url: url_r.clone(),
                    headers: headers
                        .iter()
                        .map(|(k, v)| (k.clone(), secrets::shown_value(v)))
                        .collect(),
                    auth: auth_configured.clone(),
                },
                url_r,
                host,
                Vec::new(),
            )
        }
        Spec::Other { detail } => (
            Transport::Other {
                detail: detail.clone(),
            },
            detail.clone(),
            c.location.name.clone(),
            Vec::new(),
        ),
    }
}

fn location_findings(id: &str, c: &Configured, findings: &mut Vec<Finding>) {
    let loc = &c.location;
    let mk = |rule: Rule, severity: Severity, message: String, evidence: Option<String>| Finding {
        rule,
        severity,
        server_id: Some(id.to_string()),
        client: Some(loc.client),
        path: Some(loc.path.clone()),
        pid: None,
        message,
        evidence,
    };
    let where_ = format!("{} ({})", loc.path.display(), loc.client);
    if loc.disabled {
        let message = match &loc.disabled_by {
            Some(by) => format!("{id} is disabled by {by}, in {where_}"),
            None => format!("{id} is disabled in {where_}"),
        };
        findings.push(mk(Rule::DisabledServer, Severity::Info, message, None));
    }
    // Secrets: on disk whether enabled or not.
    let mut secret = |what: String, kind: secrets::SecretKind| {
        let sev = if matches!(
            kind,
            secrets::SecretKind::Named | secrets::SecretKind::HighEntropy
        ) {
            Severity::Medium
        } else {
            Severity::High
        };
        findings.push(mk(
            Rule::SecretInConfig,
            sev,
            format!(
                "{} in {} of {id} in {where_}",
                kind.label(),
                what.split(' ').next().unwrap_or("config")
            ),
            Some(what),
        ));
    };
    match &c.entry.spec {
        Spec::Stdio { argv, env, .. } => {
            for (k, v) in env {
                if let Some(kind) = secrets::classify(Some(k), v) {
                    secret(
                        format!("env {k} = {}", secrets::redact_value(Some(k), v).trim_end()),
                        kind,
                    );
                }
            }
            let red = secrets::redact_args(argv);
            for (i, kind) in secrets::scan_args(argv) {
                secret(format!("args[{}] = {}", i, red[i]), kind);
            }
            if !loc.disabled {
                if let (Some(l), Some(spec)) = (
                    &c.launch,
                    c.launch.as_ref().and_then(|l| l.package_spec.as_ref()),
                ) {
                    let launcher = l.launchers.last().copied().unwrap_or("");
                    if !launch::is_pinned(spec, launcher) {
                        findings.push(mk(
                            Rule::UnpinnedPackage,
                            Severity::Low,
                            format!("{id} runs {spec} through {launcher} without a pinned version (each start may fetch different code), in {where_}"),
                            Some(secrets::redact_text(spec)),
                        ));
                    }
                }
            }
        }
        Spec::Remote {
            url,
            headers,
            auth_configured,
            ..
        } => {
            for (k, v) in headers {
                if let Some(kind) = secrets::classify(Some(k), v) {
                    secret(
                        format!(
                            "headers {k} = {}",
                            secrets::redact_value(Some(k), v).trim_end()
                        ),
                        kind,
                    );
                }
            }
            for (_, _, kind) in secrets::scan_text(url) {
                secret(format!("url {}", secrets::redact_text(url)), kind);
            }
            if loc.disabled {
                return;
            }
            let lower = url.to_ascii_lowercase();
            let loopback = is_loopback_host(url);
            let plain = lower.starts_with("http://") || lower.starts_with("ws://");
            if plain && !loopback {
                findings.push(mk(
                    Rule::InsecureTransport,
                    Severity::High,
                    format!(
                        "{id} is reached over unencrypted {} to a non-loopback host",
                        &lower[..lower.find(':').unwrap_or(0)]
                    ),
                    Some(secrets::redact_text(url)),
                ));
            }
            let header_auth = headers.iter().any(|(k, _)| {
                let k = k.to_ascii_lowercase();
                k == "authorization"
                    || k == "cookie"
                    || secrets::is_secret_name(&k)
                    || k.contains("api-key")
                    || k.contains("apikey")
            });
            let url_auth = !secrets::scan_text(url).is_empty()
                || url.contains("${")
                || ["key=", "token=", "apikey=", "api_key=", "access_token="]
                    .iter()
                    .any(|p| lower.contains(p));
            if !header_auth && !url_auth && auth_configured.is_none() {
                let sev = if loopback {
                    Severity::Low
                } else {
                    Severity::High
                };
                findings.push(mk(
                    Rule::NoAuth,
                    sev,
                    format!(
                        "{id} is a remote server with no Authorization/API-key header, token or OAuth configuration{}, in {where_}",
                        if plain && !loopback { ", over plain http" } else { "" }
                    ),
                    Some(secrets::redact_text(url)),
                ));
            }
        }
        Spec::Other { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::assemble::{group_configured, stamp_server_ids};
    use crate::discovery::process::Proc;
    use crate::discovery::testkit::{location, process, snapshot, stdio};
    use crate::discovery::{ids, running};

    /// Every pure phase after the snapshot, as `assemble` runs them.
    fn run(
        configured: Vec<Configured>,
        procs: Vec<Proc>,
        managed: &[&str],
    ) -> (Vec<Server>, Vec<Finding>) {
        let groups = group_configured(configured);
        let mut m = running::match_processes(&groups, &snapshot(procs));
        let ids = ids::server_ids(&groups, &m.run_groups);
        stamp_server_ids(&mut m, groups.len(), &ids);
        judge(groups, &m, &ids, managed)
    }

    fn info(pid: i32, managed_by: Option<ManagedBy>) -> ProcessInfo {
        ProcessInfo {
            pid,
            ppid: 1,
            command_line: String::new(),
            key: String::new(),
            server_id: String::new(),
            configured: true,
            client: None,
            parent: None,
            managed_by,
            cgroup: None,
            descendants: Vec::new(),
        }
    }

    fn messages(findings: &[Finding]) -> Vec<(Rule, &str)> {
        findings
            .iter()
            .map(|f| (f.rule, f.message.as_str()))
            .collect()
    }

    #[test]
    fn configured_status_cases() {
        let plain = location("cursor", "/h/m.json", "a");
        let wrapped = Location {
            monitor_wrapped: true,
            ..plain.clone()
        };
        let disabled = Location {
            disabled: true,
            ..plain.clone()
        };
        let cg = ManagedBy::MonitorCgroup {
            pid: 7,
            cgroup: "/assay-monitor-1".into(),
        };
        let (free, in_cg) = (info(6, None), info(7, Some(cg.clone())));

        let s = configured_status(false, std::slice::from_ref(&plain), &[]);
        assert!(!s.managed && s.managed_by.is_empty());
        assert_eq!((s.unwrapped, s.unmanaged_pids), (vec![&plain], vec![]));

        let s = configured_status(false, std::slice::from_ref(&wrapped), &[]);
        assert!(s.managed);
        assert_eq!(s.managed_by, [ManagedBy::MonitorWrapper]);

        let s = configured_status(false, std::slice::from_ref(&wrapped), &[&free, &in_cg]);
        assert!(!s.managed, "one instance runs outside the monitor");
        assert_eq!(s.managed_by, [ManagedBy::MonitorWrapper, cg.clone()]);
        assert_eq!(s.unmanaged_pids, [6]);

        let s = configured_status(false, std::slice::from_ref(&disabled), &[&in_cg]);
        assert!(s.managed);
        let s = configured_status(false, std::slice::from_ref(&disabled), &[]);
        assert!(!s.managed && s.unwrapped.is_empty(), "nothing to judge");

        let both = [plain.clone(), wrapped];
        let s = configured_status(true, &both, &[&free]);
        assert!(s.managed);
        assert_eq!(s.managed_by, [ManagedBy::Policy, ManagedBy::MonitorWrapper]);
        assert_eq!(s.unwrapped, [&plain]);
    }

    #[test]
    fn process_status_cases() {
        let anc = ManagedBy::MonitorAncestor { pid: 3 };
        let (free, under) = (info(6, None), info(7, Some(anc.clone())));
        let s = process_status(false, &[&under]);
        assert!(s.managed);
        assert_eq!(s.managed_by, std::slice::from_ref(&anc));
        let s = process_status(false, &[&under, &free]);
        assert!(!s.managed);
        assert_eq!(s.unmanaged_pids, [6]);
        let s = process_status(true, &[&free]);
        assert!(s.managed);
        assert_eq!(s.managed_by, [ManagedBy::Policy]);
    }

    #[test]
    fn unmanaged_servers_and_command_line_secrets_are_findings() {
        let token = format!("ghp_{}", "a".repeat(36));
        let (servers, findings) = run(
            vec![stdio("cursor", "/h/m.json", "a", "mcp-a")],
            vec![
                process(10, 1, "mcp-a"),
                process(11, 1, "mcp-b"),
                process(12, 1, &format!("mcp-c --token {token}")),
                process(13, 1, "mcp-b"),
            ],
            &[],
        );
        let ids: Vec<(&str, &[i32], bool)> = servers
            .iter()
            .map(|s| (s.id.as_str(), s.pids.as_slice(), s.managed))
            .collect();
        assert_eq!(
            ids,
            [
                ("cursor/a", &[10][..], false),
                ("process/mcp-b", &[11, 13][..], false),
                ("process/mcp-c", &[12][..], false),
            ]
        );
        assert_eq!(
            messages(&findings),
            [
                (
                    Rule::UnmanagedServer,
                    "cursor/a is not launched under assay monitor (cursor /h/m.json; running as pid 10)"
                ),
                (
                    Rule::UnmanagedServer,
                    "process/mcp-b is running (pid 11, 13) without assay monitor and is not in any known config"
                ),
                (
                    Rule::UnmanagedServer,
                    "process/mcp-c is running (pid 12) without assay monitor and is not in any known config"
                ),
                (
                    Rule::SecretInCommandLine,
                    "pid 12 of process/mcp-c has a GitHub token in its command line"
                ),
            ]
        );
        let secret = &findings[3];
        assert_eq!(secret.severity, Severity::High);
        assert_eq!(secret.server_id.as_deref(), Some("process/mcp-c"));
        assert_eq!(secret.pid, Some(12));
        let evidence = secret.evidence.as_deref().unwrap();
        assert!(evidence.starts_with("argv[2] = ghp_"), "{evidence}");
        assert!(!evidence.contains(&token), "{evidence}");
        assert_eq!(
            (findings[0].client, findings[0].pid),
            (Some("cursor"), Some(10))
        );
    }

    #[test]
    fn the_policy_names_servers_by_id_alias_config_name_or_short_name() {
        let configured = || {
            vec![
                stdio("claude-desktop", "/h/c.json", "files", "mcp-server-files"),
                stdio("cursor", "/h/m.json", "fs", "mcp-server-files"),
            ]
        };
        let procs = || vec![process(20, 1, "node /opt/weather-mcp/build/index.js")];
        let managed = |names: &[&str]| -> Vec<bool> {
            let (servers, _) = run(configured(), procs(), names);
            servers.iter().map(|s| s.managed).collect()
        };
        assert_eq!(managed(&[]), [false, false]);
        assert_eq!(managed(&["claude-desktop/files"]), [true, false]);
        assert_eq!(managed(&["cursor/fs"]), [true, false]);
        assert_eq!(managed(&["fs"]), [true, false]);
        assert_eq!(managed(&["process/weather-mcp"]), [false, true]);
        assert_eq!(managed(&["weather-mcp"]), [false, true]);
        assert_eq!(
            managed(&["mcp-server-files"]),
            [false, false],
            "a key is no name"
        );
    }

    #[test]
    fn a_disabled_server_is_disabled_until_it_runs() {
        let off = || {
            let mut c = stdio("cursor", "/h/m.json", "a", "mcp-a");
            c.location.disabled = true;
            vec![c]
        };
        let (servers, findings) = run(off(), Vec::new(), &[]);
        assert!(servers[0].disabled && !servers[0].managed);
        assert_eq!(
            messages(&findings),
            [(
                Rule::DisabledServer,
                "cursor/a is disabled in /h/m.json (cursor)"
            )]
        );
        let (servers, findings) = run(off(), vec![process(5, 1, "mcp-a")], &[]);
        assert!(!servers[0].disabled);
        assert_eq!(findings.len(), 2);
        assert_eq!(
            findings[0].message,
            "cursor/a is not launched under assay monitor (running as pid 5)"
        );
    }
}
