//! `assay discover --format json`: schema `assay.discover/v1`
//! (`schemas/assay.discover.v1.json`).
//!
//! These DTOs are the public, versioned contract; they are separate from the
//! internal [`Report`] so internals can change without breaking consumers.
//! Adding optional fields keeps version 1; removing or changing one bumps it.

use std::collections::BTreeMap;
use std::io;

use serde::{Deserialize, Serialize};

use crate::discovery::{
    self, Finding, Location, ProcessInfo, Processes, ProjectRoot, Report, Server, Source,
    SourceStatus, Transport,
};

/// The document's `schema`: name and version, as every JSON output has.
pub const SCHEMA: &str = "assay.discover/v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportV1 {
    pub schema: String,
    pub tool: Tool,
    pub scan: Scan,
    pub summary: Summary,
    pub sources: Vec<SourceV1>,
    pub project_roots: Vec<ProjectRootV1>,
    /// Candidate files under discovered project roots that do not exist (not listed).
    pub absent_project_files: usize,
    /// Candidate files of the homes that do not exist, when several homes
    /// are scanned (not listed then).
    #[serde(default)]
    pub absent_home_files: usize,
    pub servers: Vec<ServerV1>,
    pub processes: Vec<ProcessV1>,
    pub findings: Vec<FindingV1>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scan {
    pub homes: Vec<ScanHome>,
    pub system_root: Option<String>,
    /// Path conventions tried: `linux`, `macos`, `windows`.
    pub os: Vec<String>,
    pub processes: ProcessScan,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanHome {
    pub path: String,
    pub user: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessScan {
    /// `scanned`, `unsupported` or `not_scanned`.
    pub status: String,
    pub reason: Option<String>,
    /// Processes examined when scanned.
    pub total: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    pub servers: usize,
    pub running: usize,
    pub unmanaged: usize,
    pub sources: BTreeMap<String, usize>,
    /// Findings per severity (`critical` .. `info`).
    pub findings: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceV1 {
    pub path: String,
    pub client: String,
    pub scope: String,
    pub format: String,
    /// `found`, `absent`, `unreadable`, `parse_error`, `too_large`.
    pub status: String,
    /// Why, for `unreadable`, `parse_error` and `too_large`.
    pub error: Option<SourceError>,
    pub servers: usize,
    pub warnings: Vec<String>,
    pub user: Option<String>,
    pub project: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceError {
    pub message: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub size: Option<u64>,
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectRootV1 {
    pub path: String,
    pub origin: String,
    pub scanned: bool,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameValue {
    pub name: String,
    /// Redacted when it is (or contains) a credential.
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerV1 {
    /// Stable id (`<client>/<name>`, `process/<name>`); see docs/discovery.md.
    pub id: String,
    pub name: String,
    pub aliases: Vec<String>,
    /// `stdio`, `sse`, `streamable-http`, `http`, `ws`, `other`, `process`.
    pub transport: String,
    pub command: Option<String>,
    pub args: Vec<String>,
    pub env: Vec<NameValue>,
    pub cwd: Option<String>,
    pub url: Option<String>,
    pub headers: Vec<NameValue>,
    /// Authentication configured outside headers (`oauth`, `bearer_token_env_var`, ...).
    pub auth: Option<String>,
    pub detail: Option<String>,
    /// The launch line or URL, redacted.
    pub command_line: String,
    /// Unwrapped package / image / program (or URL host).
    pub key: String,
    pub launchers: Vec<String>,
    pub managed: bool,
    /// `monitor_wrapper`, `monitor_cgroup`, `monitor_ancestor`, `policy`.
    pub managed_by: Vec<String>,
    pub disabled: bool,
    pub running: bool,
    /// Root pids of running instances.
    pub pids: Vec<i32>,
    pub locations: Vec<LocationV1>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationV1 {
    pub client: String,
    pub path: String,
    pub scope: String,
    pub name: String,
    pub project: Option<String>,
    pub user: Option<String>,
    pub disabled: bool,
    pub monitor_wrapped: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessV1 {
    pub pid: i32,
    pub ppid: i32,
    pub command_line: String,
    pub key: String,
    pub server_id: String,
    pub configured: bool,
    pub client: Option<String>,
    pub parent_pid: Option<i32>,
    pub parent_name: Option<String>,
    pub managed_by: Option<String>,
    pub cgroup: Option<String>,
    pub descendants: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingV1 {
    pub rule: String,
    pub severity: String,
    pub server_id: Option<String>,
    pub client: Option<String>,
    pub path: Option<String>,
    pub pid: Option<i32>,
    pub message: String,
    pub evidence: Option<String>,
}

fn s(p: &std::path::Path) -> String {
    p.display().to_string()
}

/// Assemble the v1 document; each part is converted by its own helper so
/// the mapping from internals to the contract reads field by field.
pub fn to_dto(r: &Report) -> ReportV1 {
    let (process_scan, processes) = processes_v1(&r.processes);
    ReportV1 {
        schema: SCHEMA.into(),
        tool: Tool {
            name: "assay".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        scan: scan_v1(r, process_scan),
        summary: summary_v1(r),
        sources: r.sources.iter().map(source_v1).collect(),
        project_roots: r.project_roots.iter().map(project_root_v1).collect(),
        absent_project_files: r.absent_project_files,
        absent_home_files: r.absent_home_files,
        servers: r.servers.iter().map(server_v1).collect(),
        processes,
        findings: r.findings.iter().map(finding_v1).collect(),
    }
}

/// The process scan's status for `scan.processes`, and the processes found
/// (none unless scanned).
fn processes_v1(processes: &Processes) -> (ProcessScan, Vec<ProcessV1>) {
    let found = match processes {
        Processes::Scanned { servers, .. } => servers.iter().map(process_v1).collect(),
        Processes::Unsupported { .. } | Processes::NotScanned { .. } => Vec::new(),
    };
    (process_scan(processes), found)
}

/// `scan.processes`: whether processes were scanned, and if not, why.
fn process_scan(processes: &Processes) -> ProcessScan {
    match processes {
        Processes::Scanned { total, .. } => ProcessScan {
            status: "scanned".into(),
            reason: None,
            total: Some(*total),
        },
        Processes::Unsupported { reason } => ProcessScan {
            status: "unsupported".into(),
            reason: Some(reason.clone()),
            total: None,
        },
        Processes::NotScanned { reason } => ProcessScan {
            status: "not_scanned".into(),
            reason: Some(reason.clone()),
            total: None,
        },
    }
}

fn process_v1(p: &ProcessInfo) -> ProcessV1 {
    ProcessV1 {
        pid: p.pid,
        ppid: p.ppid,
        command_line: p.command_line.clone(),
        key: p.key.clone(),
        server_id: p.server_id.clone(),
        configured: p.configured,
        client: p.client.map(str::to_string),
        parent_pid: p.parent.as_ref().map(|x| x.0),
        parent_name: p.parent.as_ref().map(|x| x.1.clone()),
        managed_by: p.managed_by.as_ref().map(|m| m.as_str().to_string()),
        cgroup: p.cgroup.clone(),
        descendants: p.descendants.clone(),
    }
}

fn scan_v1(r: &Report, processes: ProcessScan) -> Scan {
    Scan {
        homes: r
            .scan
            .homes
            .iter()
            .map(|(p, u)| ScanHome {
                path: s(p),
                user: u.clone(),
            })
            .collect(),
        system_root: r.scan.system_root.as_deref().map(s),
        os: r.scan.os.iter().map(|x| x.to_string()).collect(),
        processes,
    }
}

fn summary_v1(r: &Report) -> Summary {
    let mut sources_count: BTreeMap<String, usize> = BTreeMap::new();
    for src in &r.sources {
        *sources_count
            .entry(src.status.as_str().to_string())
            .or_insert(0) += 1;
    }
    let findings_count = r
        .count_by_severity()
        .into_iter()
        .map(|(k, v)| (k.as_str().to_string(), v))
        .collect();
    Summary {
        servers: r.servers.len(),
        running: r.servers.iter().filter(|x| !x.pids.is_empty()).count(),
        unmanaged: r
            .servers
            .iter()
            .filter(|x| !x.managed && !x.disabled)
            .count(),
        sources: sources_count,
        findings: findings_count,
    }
}

fn source_v1(src: &Source) -> SourceV1 {
    SourceV1 {
        path: s(&src.path),
        client: src.client.into(),
        scope: src.scope.as_str().into(),
        format: src.format.into(),
        status: src.status.as_str().into(),
        error: source_error(&src.status),
        servers: src.servers,
        warnings: src.warnings.clone(),
        user: src.user.clone(),
        project: src.project.as_deref().map(s),
    }
}

/// The structured why for a source that could not be used; `None` when it
/// was read or simply absent.
fn source_error(status: &SourceStatus) -> Option<SourceError> {
    match status {
        SourceStatus::Found | SourceStatus::Absent => None,
        SourceStatus::Unreadable { reason } => Some(SourceError {
            message: reason.clone(),
            line: None,
            column: None,
            size: None,
            limit: None,
        }),
        SourceStatus::ParseError {
            message,
            line,
            column,
        } => Some(SourceError {
            message: message.clone(),
            line: Some(*line),
            column: Some(*column),
            size: None,
            limit: None,
        }),
        SourceStatus::TooLarge { size, limit } => Some(SourceError {
            message: "file larger than the size limit".into(),
            line: None,
            column: None,
            size: Some(*size),
            limit: Some(*limit),
        }),
    }
}

fn project_root_v1(p: &ProjectRoot) -> ProjectRootV1 {
    ProjectRootV1 {
        path: s(&p.path),
        origin: p.origin.into(),
        scanned: p.scanned,
        note: p.note.clone(),
    }
}

fn name_values(v: &[(String, String)]) -> Vec<NameValue> {
    v.iter()
        .map(|(n, v)| NameValue {
            name: n.clone(),
            value: v.clone(),
        })
        .collect()
}

/// A server with the transport-specific fields filled in from its
/// transport; the others stay empty.
fn server_v1(sv: &Server) -> ServerV1 {
    let mut out = ServerV1 {
        id: sv.id.clone(),
        name: sv.name.clone(),
        aliases: sv.aliases.clone(),
        transport: sv.transport.kind().into(),
        command: None,
        args: Vec::new(),
        env: Vec::new(),
        cwd: None,
        url: None,
        headers: Vec::new(),
        auth: None,
        detail: None,
        command_line: sv.command_line.clone(),
        key: sv.key.clone(),
        launchers: sv.launchers.clone(),
        managed: sv.managed,
        managed_by: sv
            .managed_by
            .iter()
            .map(|m| m.as_str().to_string())
            .collect(),
        disabled: sv.disabled,
        running: !sv.pids.is_empty(),
        pids: sv.pids.clone(),
        locations: sv.locations.iter().map(location_v1).collect(),
    };
    match &sv.transport {
        Transport::Stdio {
            command,
            args,
            env,
            cwd,
        } => {
            out.command = Some(command.clone());
            out.args = args.clone();
            out.env = name_values(env);
            out.cwd = cwd.clone();
        }
        Transport::Remote {
            url, headers, auth, ..
        } => {
            out.url = Some(url.clone());
            out.headers = name_values(headers);
            out.auth = auth.clone();
        }
        Transport::Other { detail } => out.detail = Some(detail.clone()),
        Transport::Process => {}
    }
    out
}

fn location_v1(l: &Location) -> LocationV1 {
    LocationV1 {
        client: l.client.into(),
        path: s(&l.path),
        scope: l.scope.as_str().into(),
        name: l.name.clone(),
        project: l.project.as_deref().map(s),
        user: l.user.clone(),
        disabled: l.disabled,
        monitor_wrapped: l.monitor_wrapped,
    }
}

fn finding_v1(f: &Finding) -> FindingV1 {
    FindingV1 {
        rule: f.rule.id().into(),
        severity: f.severity.as_str().into(),
        server_id: f.server_id.clone(),
        client: f.client.map(str::to_string),
        path: f.path.as_deref().map(s),
        pid: f.pid,
        message: f.message.clone(),
        evidence: f.evidence.clone(),
    }
}

/// The document as a string: what [`write`] writes.
pub fn render(r: &Report) -> anyhow::Result<String> {
    let mut out = Vec::new();
    write(r, &mut out)?;
    Ok(String::from_utf8(out)?)
}

/// Write the v1 document, pretty-printed with a trailing newline, to `w`
/// as it is serialized: byte for byte what serializing [`to_dto`] gives,
/// without the copy of the report that [`to_dto`] makes or the whole
/// document in memory (27 MB for a thousand homes). I/O errors come back
/// as themselves, so a broken pipe stays a broken pipe.
pub fn write<W: io::Write>(r: &Report, mut w: W) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut w, &view::report(r))?;
    w.write_all(b"\n")
}

/// Borrowed views of the report that serialize exactly as the DTOs above
/// (same fields, same order, same values), for [`write`]. The test
/// `streamed_output_equals_the_dtos` holds them to that.
mod view {
    use std::path::Path;

    use serde::{Serialize, Serializer};

    use super::{ProcessScan, SourceError, Summary};
    use crate::discovery::{
        Finding, Location, ManagedBy, ProcessInfo, Processes, ProjectRoot, Report, Server, Source,
        Transport,
    };

    /// A slice serialized as a sequence of its items' views.
    pub struct Each<'a, T, V>(&'a [T], fn(&'a T) -> V);

    impl<T, V: Serialize> Serialize for Each<'_, T, V> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0.iter().map(self.1))
        }
    }

    /// A path as its `display()` string, written without building it.
    pub struct DisplayPath<'a>(&'a Path);

    impl Serialize for DisplayPath<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(&self.0.display())
        }
    }

    fn opt_path(p: &Option<std::path::PathBuf>) -> Option<DisplayPath<'_>> {
        p.as_deref().map(DisplayPath)
    }

    #[derive(Serialize)]
    pub struct ReportV<'a> {
        schema: &'static str,
        tool: ToolV,
        scan: ScanV<'a>,
        summary: Summary,
        sources: Each<'a, Source, SourceV<'a>>,
        project_roots: Each<'a, ProjectRoot, ProjectRootV<'a>>,
        absent_project_files: usize,
        absent_home_files: usize,
        servers: Each<'a, Server, ServerV<'a>>,
        processes: Each<'a, ProcessInfo, ProcessV<'a>>,
        findings: Each<'a, Finding, FindingV<'a>>,
    }

    #[derive(Serialize)]
    struct ToolV {
        name: &'static str,
        version: &'static str,
    }

    #[derive(Serialize)]
    struct ScanV<'a> {
        homes: Each<'a, (std::path::PathBuf, Option<String>), ScanHomeV<'a>>,
        system_root: Option<DisplayPath<'a>>,
        os: &'a [&'static str],
        processes: ProcessScan,
    }

    #[derive(Serialize)]
    struct ScanHomeV<'a> {
        path: DisplayPath<'a>,
        user: Option<&'a str>,
    }

    pub fn report(r: &Report) -> ReportV<'_> {
        let processes: &[ProcessInfo] = match &r.processes {
            Processes::Scanned { servers, .. } => servers,
            Processes::Unsupported { .. } | Processes::NotScanned { .. } => &[],
        };
        ReportV {
            schema: super::SCHEMA,
            tool: ToolV {
                name: "assay",
                version: env!("CARGO_PKG_VERSION"),
            },
            scan: ScanV {
                homes: Each(&r.scan.homes, |(p, u)| ScanHomeV {
                    path: DisplayPath(p),
                    user: u.as_deref(),
                }),
                system_root: opt_path(&r.scan.system_root),
                os: &r.scan.os,
                processes: super::process_scan(&r.processes),
            },
            summary: super::summary_v1(r),
            sources: Each(&r.sources, source),
            project_roots: Each(&r.project_roots, |p| ProjectRootV {
                path: DisplayPath(&p.path),
                origin: p.origin,
                scanned: p.scanned,
                note: p.note.as_deref(),
            }),
            absent_project_files: r.absent_project_files,
            absent_home_files: r.absent_home_files,
            servers: Each(&r.servers, server),
            processes: Each(processes, process),
            findings: Each(&r.findings, finding),
        }
    }

    #[derive(Serialize)]
    struct SourceV<'a> {
        path: DisplayPath<'a>,
        client: &'static str,
        scope: &'static str,
        format: &'static str,
        status: &'static str,
        error: Option<SourceError>,
        servers: usize,
        warnings: &'a [String],
        user: Option<&'a str>,
        project: Option<DisplayPath<'a>>,
    }

    fn source(src: &Source) -> SourceV<'_> {
        SourceV {
            path: DisplayPath(&src.path),
            client: src.client,
            scope: src.scope.as_str(),
            format: src.format,
            status: src.status.as_str(),
            error: super::source_error(&src.status),
            servers: src.servers,
            warnings: &src.warnings,
            user: src.user.as_deref(),
            project: opt_path(&src.project),
        }
    }

    #[derive(Serialize)]
    struct ProjectRootV<'a> {
        path: DisplayPath<'a>,
        origin: &'static str,
        scanned: bool,
        note: Option<&'a str>,
    }

    #[derive(Serialize)]
    struct NameValueV<'a> {
        name: &'a str,
        value: &'a str,
    }

    fn name_value((name, value): &(String, String)) -> NameValueV<'_> {
        NameValueV { name, value }
    }

    /// Name/value pairs; empty for a transport without them.
    fn name_values(v: &[(String, String)]) -> Each<'_, (String, String), NameValueV<'_>> {
        Each(v, name_value)
    }

    /// Managed-by reasons as their names.
    struct ManagedByV<'a>(&'a [ManagedBy]);

    impl Serialize for ManagedByV<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0.iter().map(ManagedBy::as_str))
        }
    }

    #[derive(Serialize)]
    struct ServerV<'a> {
        id: &'a str,
        name: &'a str,
        aliases: &'a [String],
        transport: &'static str,
        command: Option<&'a str>,
        args: &'a [String],
        env: Each<'a, (String, String), NameValueV<'a>>,
        cwd: Option<&'a str>,
        url: Option<&'a str>,
        headers: Each<'a, (String, String), NameValueV<'a>>,
        auth: Option<&'a str>,
        detail: Option<&'a str>,
        command_line: &'a str,
        key: &'a str,
        launchers: &'a [String],
        managed: bool,
        managed_by: ManagedByV<'a>,
        disabled: bool,
        running: bool,
        pids: &'a [i32],
        locations: Each<'a, Location, LocationV<'a>>,
    }

    /// As `server_v1`: the transport's own fields filled in, the others
    /// empty.
    fn server(sv: &Server) -> ServerV<'_> {
        let mut out = ServerV {
            id: &sv.id,
            name: &sv.name,
            aliases: &sv.aliases,
            transport: sv.transport.kind(),
            command: None,
            args: &[],
            env: name_values(&[]),
            cwd: None,
            url: None,
            headers: name_values(&[]),
            auth: None,
            detail: None,
            command_line: &sv.command_line,
            key: &sv.key,
            launchers: &sv.launchers,
            managed: sv.managed,
            managed_by: ManagedByV(&sv.managed_by),
            disabled: sv.disabled,
            running: !sv.pids.is_empty(),
            pids: &sv.pids,
            locations: Each(&sv.locations, location),
        };
        match &sv.transport {
            Transport::Stdio {
                command,
                args,
                env,
                cwd,
            } => {
                out.command = Some(command);
                out.args = args;
                out.env = name_values(env);
                out.cwd = cwd.as_deref();
            }
            Transport::Remote {
                url, headers, auth, ..
            } => {
                out.url = Some(url);
                out.headers = name_values(headers);
                out.auth = auth.as_deref();
            }
            Transport::Other { detail } => out.detail = Some(detail),
            Transport::Process => {}
        }
        out
    }

    #[derive(Serialize)]
    struct LocationV<'a> {
        client: &'static str,
        path: DisplayPath<'a>,
        scope: &'static str,
        name: &'a str,
        project: Option<DisplayPath<'a>>,
        user: Option<&'a str>,
        disabled: bool,
        monitor_wrapped: bool,
    }

    fn location(l: &Location) -> LocationV<'_> {
        LocationV {
            client: l.client,
            path: DisplayPath(&l.path),
            scope: l.scope.as_str(),
            name: &l.name,
            project: opt_path(&l.project),
            user: l.user.as_deref(),
            disabled: l.disabled,
            monitor_wrapped: l.monitor_wrapped,
        }
    }

    #[derive(Serialize)]
    struct ProcessV<'a> {
        pid: i32,
        ppid: i32,
        command_line: &'a str,
        key: &'a str,
        server_id: &'a str,
        configured: bool,
        client: Option<&'static str>,
        parent_pid: Option<i32>,
        parent_name: Option<&'a str>,
        managed_by: Option<&'static str>,
        cgroup: Option<&'a str>,
        descendants: &'a [i32],
    }

    fn process(p: &ProcessInfo) -> ProcessV<'_> {
        ProcessV {
            pid: p.pid,
            ppid: p.ppid,
            command_line: &p.command_line,
            key: &p.key,
            server_id: &p.server_id,
            configured: p.configured,
            client: p.client,
            parent_pid: p.parent.as_ref().map(|x| x.0),
            parent_name: p.parent.as_ref().map(|x| x.1.as_str()),
            managed_by: p.managed_by.as_ref().map(ManagedBy::as_str),
            cgroup: p.cgroup.as_deref(),
            descendants: &p.descendants,
        }
    }

    #[derive(Serialize)]
    struct FindingV<'a> {
        rule: &'static str,
        severity: &'static str,
        server_id: Option<&'a str>,
        client: Option<&'static str>,
        path: Option<DisplayPath<'a>>,
        pid: Option<i32>,
        message: &'a str,
        evidence: Option<&'a str>,
    }

    fn finding(f: &Finding) -> FindingV<'_> {
        FindingV {
            rule: f.rule.id(),
            severity: f.severity.as_str(),
            server_id: f.server_id.as_deref(),
            client: f.client,
            path: opt_path(&f.path),
            pid: f.pid,
            message: &f.message,
            evidence: f.evidence.as_deref(),
        }
    }
}

/// Rule ids known to this schema version (for consumers and docs).
pub fn rule_ids() -> Vec<&'static str> {
    discovery::Rule::ALL.iter().map(|r| r.id()).collect()
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::discovery::{ManagedBy, Options, RemoteKind, Rule};
    use crate::severity::Severity;

    /// The document as it was built before it was streamed: the DTOs,
    /// pretty-printed, and a newline.
    fn via_dtos(r: &Report) -> String {
        crate::output::to_json_pretty(&to_dto(r)).unwrap()
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/discovery")
            .join(name)
    }

    fn process(pid: i32, managed_by: Option<ManagedBy>) -> ProcessInfo {
        ProcessInfo {
            pid,
            ppid: 1,
            command_line: "uvx mcp-server-time \"quoted\"\t".into(),
            key: "mcp-server-time".into(),
            server_id: "cursor/time".into(),
            configured: pid % 2 == 0,
            client: (pid % 2 == 0).then_some("cursor"),
            parent: (pid % 2 == 0).then(|| (1, "cursor".to_string())),
            managed_by,
            cgroup: Some("/user.slice/ü".into()),
            descendants: vec![pid + 1, pid + 2],
        }
    }

    /// Every shape the document has: the fixture homes' servers, sources
    /// and findings, plus each process status, each source error, each
    /// transport and odd strings.
    fn reports() -> Vec<Report> {
        let mut out = Vec::new();
        for name in [
            "home-all",
            "client-variants",
            "claude-desktop-secret-shapes",
        ] {
            out.push(discovery::discover(
                &Options::for_home(&fixture(name)),
                None,
            ));
        }
        let mut r = out[0].clone();
        r.scan.system_root = Some(PathBuf::from("/sys root\\\"x\""));
        r.scan.homes.push((PathBuf::from("/home/nobody"), None));
        r.processes = Processes::Scanned {
            total: 412,
            servers: vec![
                process(10, None),
                process(
                    11,
                    Some(ManagedBy::MonitorCgroup {
                        pid: 9,
                        cgroup: "assay-monitor-1".into(),
                    }),
                ),
                process(12, Some(ManagedBy::MonitorAncestor { pid: 9 })),
            ],
        };
        let base = r.sources[0].clone();
        for status in [
            SourceStatus::Unreadable {
                reason: "permission denied".into(),
            },
            SourceStatus::ParseError {
                message: "expected `,`".into(),
                line: 3,
                column: 14,
            },
            SourceStatus::TooLarge {
                size: 1 << 30,
                limit: 1 << 25,
            },
        ] {
            let mut s = base.clone();
            s.status = status;
            s.warnings = vec!["a\nwarning".into()];
            s.user = Some("alice".into());
            s.project = Some(PathBuf::from("/home/alice/src/api"));
            r.sources.push(s);
        }
        r.project_roots.push(ProjectRoot {
            path: PathBuf::from("/home/alice/gone"),
            origin: "claude-code",
            scanned: false,
            note: Some("no such directory".into()),
        });
        let mut sv = r.servers[0].clone();
        for transport in [
            Transport::Stdio {
                command: "node".into(),
                args: vec!["a b".into(), "\u{1}".into()],
                env: vec![("TOKEN".into(), "[redacted]".into())],
                cwd: Some("/srv".into()),
            },
            Transport::Remote {
                kind: RemoteKind::Sse,
                url: "https://example.com/sse".into(),
                headers: vec![("Authorization".into(), "Bearer [redacted]".into())],
                auth: Some("oauth".into()),
            },
            Transport::Other {
                detail: "docker compose".into(),
            },
            Transport::Process,
        ] {
            sv.transport = transport;
            sv.managed_by = vec![ManagedBy::MonitorWrapper, ManagedBy::Policy];
            sv.pids = vec![10, 11];
            sv.aliases = vec!["claude-code/x".into()];
            r.servers.push(sv.clone());
        }
        r.findings.push(Finding {
            rule: Rule::SourceError,
            severity: Severity::Low,
            server_id: Some("cursor/time".into()),
            client: Some("cursor"),
            path: Some(PathBuf::from("/home/alice/.cursor/mcp.json")),
            pid: Some(12),
            message: "m".into(),
            evidence: Some("e\u{7f}".into()),
        });
        out.push(r);
        let mut r = out[0].clone();
        r.processes = Processes::Unsupported {
            reason: "no /proc".into(),
        };
        out.push(r);
        out
    }

    #[test]
    fn streamed_output_equals_the_dtos() {
        for r in reports() {
            assert!(!r.servers.is_empty() && !r.sources.is_empty());
            let mut streamed = Vec::new();
            write(&r, &mut streamed).unwrap();
            assert_eq!(String::from_utf8(streamed).unwrap(), via_dtos(&r));
            assert_eq!(render(&r).unwrap(), via_dtos(&r));
        }
    }

    /// A reader that hangs up: the error is the pipe's, so the command line
    /// can tell it apart (a broken pipe is not a failure).
    #[test]
    fn a_broken_pipe_comes_back_as_itself() {
        struct Closed;
        impl io::Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let r = &reports()[0];
        let err = write(r, io::BufWriter::with_capacity(16, Closed)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        assert!(crate::output::is_broken_pipe(&anyhow::Error::new(err)));
    }
}
