//! `assay discover --format json`: schema `assay.discover/v1`
//! (`schemas/assay.discover.v1.json`).
//!
//! These DTOs are the public, versioned contract; they are separate from the
//! internal [`Report`] so internals can change without breaking consumers.
//! Adding optional fields keeps version 1; removing or changing one bumps it.

use std::collections::BTreeMap;

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
    match processes {
        Processes::Scanned { total, servers } => (
            ProcessScan {
                status: "scanned".into(),
                reason: None,
                total: Some(*total),
            },
            servers.iter().map(process_v1).collect(),
        ),
        Processes::Unsupported { reason } => (
            ProcessScan {
                status: "unsupported".into(),
                reason: Some(reason.clone()),
                total: None,
            },
            Vec::new(),
        ),
        Processes::NotScanned { reason } => (
            ProcessScan {
                status: "not_scanned".into(),
                reason: Some(reason.clone()),
                total: None,
            },
            Vec::new(),
        ),
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

pub fn render(r: &Report) -> anyhow::Result<String> {
    crate::output::to_json_pretty(&to_dto(r))
}

/// Rule ids known to this schema version (for consumers and docs).
pub fn rule_ids() -> Vec<&'static str> {
    discovery::Rule::ALL.iter().map(|r| r.id()).collect()
}
