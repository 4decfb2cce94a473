//! Discovery: every MCP server configured or running on a machine, with
//! findings. Plain Rust, no privileges, no dependency on `monitor`.
//!
//! [`discover`] returns a [`Report`]: data only. Every string in it that came
//! from a config or a command line has already been redacted
//! ([`secrets`]), so renderers cannot leak a credential.
//!
//! # Server ids
//! A server is identified by the place it is first configured, in the fixed
//! order of [`clients::CLIENTS`] then scope, path and name:
//! `<client>/<name>` (e.g. `claude-desktop/filesystem`). The same server
//! (same unwrapped launch: package/program and arguments, or same URL)
//! configured in several clients is one server; each other place's
//! `<client>/<name>` is kept as an alias and accepted wherever an id is.
//! A server seen only as a running process is `process/<short name>`. When
//! two different servers would get the same id, each gets `~` plus six hex
//! digits of a stable (FNV-1a) hash of its launch fingerprint appended. Ids
//! therefore only change when the configs themselves change.

pub mod clients;
pub mod extract;
pub mod jsonc;
pub mod launch;
pub mod process;
pub mod secrets;
pub mod sources;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::policy::model::{DiscoveryConfig, DiscoveryMethod};
use crate::severity::Severity;

pub use clients::Scope;
pub use extract::RemoteKind;
pub use sources::{Home, Status as SourceStatus};

use clients::{Base, CLIENTS, OsMask};
use extract::Spec;
use launch::Launch;

/// What to scan.
#[derive(Debug, Clone)]
pub struct Options {
    /// Homes to scan (one for `--local`/`--home`, several for `--all-users`).
    pub homes: Vec<Home>,
    /// Root for machine-wide managed files (`/` for `--local`); `None`: skip them.
    pub system_root: Option<PathBuf>,
    /// Explicit project roots (`--project`).
    pub projects: Vec<PathBuf>,
    /// Follow project roots named by Claude Code's `projects` map and editor
    /// workspace storage.
    pub follow_projects: bool,
    /// When set, discovered (not explicit) project roots outside these
    /// directories are not read (`--home` never reads the real machine).
    pub confine_to: Option<Vec<PathBuf>>,
    /// Which OS path conventions to try.
    pub os: OsMask,
    /// Scan running processes.
    pub processes: bool,
    /// Where `/proc` is.
    pub proc_root: PathBuf,
    /// Files larger than this are `too_large`.
    pub max_file_size: u64,
}

impl Options {
    /// This machine as `assay discover --local` sees it: the current user's
    /// home (from the environment), managed files under `/`, project roots
    /// the clients know, running processes. `None` when no home can be told.
    pub fn local() -> Option<Options> {
        let env = |k: &str| std::env::var(k).ok();
        Some(Options {
            homes: vec![Home::from_env(&env)?],
            system_root: Some(PathBuf::from("/")),
            projects: Vec::new(),
            follow_projects: true,
            confine_to: None,
            os: clients::host_os(),
            processes: true,
            proc_root: PathBuf::from("/proc"),
            max_file_size: sources::MAX_FILE_SIZE,
        })
    }

    /// Scan exactly one home, nothing else of the machine.
    pub fn for_home(dir: &Path) -> Options {
        Options {
            homes: vec![Home::from_dir(dir)],
            system_root: None,
            projects: Vec::new(),
            follow_projects: true,
            confine_to: Some(vec![dir.to_path_buf()]),
            os: clients::ALL_OS,
            processes: false,
            proc_root: PathBuf::from("/proc"),
            max_file_size: sources::MAX_FILE_SIZE,
        }
    }
}

/// One candidate config file and what reading it gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    pub client: &'static str,
    pub scope: Scope,
    pub format: &'static str,
    pub status: SourceStatus,
    /// Server entries read from it.
    pub servers: usize,
    /// Entries that could not be understood (the rest of the file still counts).
    pub warnings: Vec<String>,
    pub user: Option<String>,
    pub project: Option<PathBuf>,
}

/// Where a project root came from and whether it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRoot {
    pub path: PathBuf,
    /// `--project`, `claude-code` (projects map) or `workspace-storage`.
    pub origin: &'static str,
    pub scanned: bool,
    pub note: Option<String>,
}

/// One place a server is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub client: &'static str,
    pub path: PathBuf,
    pub scope: Scope,
    /// The server's name in that file.
    pub name: String,
    pub project: Option<PathBuf>,
    pub user: Option<String>,
    pub disabled: bool,
    /// Launched through `assay monitor ... --`.
    pub monitor_wrapped: bool,
}

/// How a server is reached (redacted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Stdio {
        command: String,
        args: Vec<String>,
        /// Names with redacted values.
        env: Vec<(String, String)>,
        cwd: Option<String>,
    },
    Remote {
        kind: RemoteKind,
        url: String,
        headers: Vec<(String, String)>,
        /// Authentication configured outside headers (`oauth`, ...).
        auth: Option<String>,
    },
    /// Launched by something else (gateway, extension).
    Other { detail: String },
    /// Seen only as a process.
    Process,
}

impl Transport {
    pub fn kind(&self) -> &'static str {
        match self {
            Transport::Stdio { .. } => "stdio",
            Transport::Remote { kind, .. } => kind.as_str(),
            Transport::Other { .. } => "other",
            Transport::Process => "process",
        }
    }
}

/// Why a server counts as managed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManagedBy {
    /// Its config launches it through `assay monitor ... --`.
    MonitorWrapper,
    /// Its process runs in an `assay-monitor-*` cgroup.
    MonitorCgroup { pid: i32, cgroup: String },
    /// Its process descends from an `assay monitor` process.
    MonitorAncestor { pid: i32 },
    /// The policy's `discovery.managed` list names it.
    Policy,
}

impl ManagedBy {
    pub fn as_str(&self) -> &'static str {
        match self {
            ManagedBy::MonitorWrapper => "monitor_wrapper",
            ManagedBy::MonitorCgroup { .. } => "monitor_cgroup",
            ManagedBy::MonitorAncestor { .. } => "monitor_ancestor",
            ManagedBy::Policy => "policy",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub id: String,
    pub name: String,
    /// Other `<client>/<name>` ids this server is known by.
    pub aliases: Vec<String>,
    /// The unwrapped launch key (package, image, program) or the URL host.
    pub key: String,
    pub launchers: Vec<String>,
    pub transport: Transport,
    /// The full launch line or URL, redacted (SARIF `server_cmd`).
    pub command_line: String,
    pub locations: Vec<Location>,
    /// Every location disabled, and not running.
    pub disabled: bool,
    pub managed: bool,
    pub managed_by: Vec<ManagedBy>,
    /// Root pids of running instances (what `assay kill` stops, with trees).
    pub pids: Vec<i32>,
}

/// A running MCP server process (the root of its tree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: i32,
    pub ppid: i32,
    /// Redacted.
    pub command_line: String,
    pub key: String,
    pub server_id: String,
    /// Whether it matched a configured server.
    pub configured: bool,
    /// The client found in its parent chain.
    pub client: Option<&'static str>,
    pub parent: Option<(i32, String)>,
    pub managed_by: Option<ManagedBy>,
    pub cgroup: Option<String>,
    /// Descendant processes folded into this one (npm exec -> sh -> node).
    pub descendants: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processes {
    Scanned {
        total: usize,
        servers: Vec<ProcessInfo>,
    },
    Unsupported {
        reason: String,
    },
    NotScanned {
        reason: String,
    },
}

/// Finding rules. Ids are stable (JSON `rule`, `--fail-on`, policy keys);
/// SARIF uses `discovery/<kebab-id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    UnmanagedServer,
    NoAuth,
    SecretInConfig,
    SecretInCommandLine,
    InsecureTransport,
    UnpinnedPackage,
    DisabledServer,
    SourceError,
}

impl Rule {
    pub const ALL: [Rule; 8] = [
        Rule::UnmanagedServer,
        Rule::NoAuth,
        Rule::SecretInConfig,
        Rule::SecretInCommandLine,
        Rule::InsecureTransport,
        Rule::UnpinnedPackage,
        Rule::DisabledServer,
        Rule::SourceError,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Rule::UnmanagedServer => "unmanaged_server",
            Rule::NoAuth => "no_auth",
            Rule::SecretInConfig => "secret_in_config",
            Rule::SecretInCommandLine => "secret_in_command_line",
            Rule::InsecureTransport => "insecure_transport",
            Rule::UnpinnedPackage => "unpinned_package",
            Rule::DisabledServer => "disabled_server",
            Rule::SourceError => "source_error",
        }
    }

    pub fn sarif_id(self) -> String {
        format!("discovery/{}", self.id().replace('_', "-"))
    }

    pub fn parse(s: &str) -> Option<Rule> {
        let s = s.strip_prefix("discovery/").unwrap_or(s).replace('-', "_");
        Rule::ALL.into_iter().find(|r| r.id() == s)
    }

    /// The highest severity this rule can produce.
    pub fn max_severity(self) -> Severity {
        match self {
            Rule::SecretInConfig
            | Rule::SecretInCommandLine
            | Rule::NoAuth
            | Rule::InsecureTransport => Severity::High,
            Rule::UnmanagedServer => Severity::Medium,
            Rule::UnpinnedPackage | Rule::SourceError => Severity::Low,
            Rule::DisabledServer => Severity::Info,
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Rule::UnmanagedServer => {
                "MCP server not launched under assay monitor and not declared managed by policy"
            }
            Rule::NoAuth => {
                "Remote MCP server configured without any authentication (no Authorization/API-key header, token placeholder or OAuth)"
            }
            Rule::SecretInConfig => {
                "Literal credential in an MCP server config (env, args, headers or URL)"
            }
            Rule::SecretInCommandLine => {
                "Credential visible in a running MCP server's command line (readable by every local user)"
            }
            Rule::InsecureTransport => {
                "Remote MCP server reached over plain http:// or ws:// to a non-loopback host"
            }
            Rule::UnpinnedPackage => {
                "MCP server fetched by a package runner (npx, uvx, docker) without a pinned version"
            }
            Rule::DisabledServer => "MCP server configured but disabled",
            Rule::SourceError => {
                "Config file exists but could not be read or parsed; servers in it are not inventoried"
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    /// The server concerned (`None` for source errors).
    pub server_id: Option<String>,
    /// Client and file of the location concerned, when there is one.
    pub client: Option<&'static str>,
    pub path: Option<PathBuf>,
    pub pid: Option<i32>,
    pub message: String,
    /// Redacted evidence (`env GITHUB_TOKEN = ghp_****`).
    pub evidence: Option<String>,
}

/// What was scanned (for the report header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanInfo {
    pub homes: Vec<(PathBuf, Option<String>)>,
    pub system_root: Option<PathBuf>,
    pub os: Vec<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub scan: ScanInfo,
    /// Every candidate file of the homes and explicit projects, with status;
    /// for discovered project roots only files that exist.
    pub sources: Vec<Source>,
    /// Candidate files under discovered project roots that do not exist.
    pub absent_project_files: usize,
    pub project_roots: Vec<ProjectRoot>,
    pub servers: Vec<Server>,
    pub processes: Processes,
    pub findings: Vec<Finding>,
}

impl Report {
    /// The server with this id or alias.
    pub fn server(&self, id: &str) -> Option<&Server> {
        self.servers.iter().find(|s| s.id == id).or_else(|| {
            self.servers
                .iter()
                .find(|s| s.aliases.iter().any(|a| a == id))
        })
    }

    /// Root pids of the running instances of a server (id or alias); empty
    /// when unknown or not running. `assay kill --server-id` stops these
    /// with their process trees.
    pub fn pids_of(&self, id: &str) -> Vec<i32> {
        self.server(id).map(|s| s.pids.clone()).unwrap_or_default()
    }

    /// Every running server: (id, root pids).
    pub fn running(&self) -> Vec<(&str, &[i32])> {
        self.servers
            .iter()
            .filter(|s| !s.pids.is_empty())
            .map(|s| (s.id.as_str(), s.pids.as_slice()))
            .collect()
    }

    pub fn count_by_severity(&self) -> BTreeMap<Severity, usize> {
        let mut m = BTreeMap::new();
        for f in &self.findings {
            *m.entry(f.severity).or_insert(0) += 1;
        }
        m
    }
}

/// A configured entry with where it came from (raw, internal).
struct Configured {
    entry: extract::Entry,
    location: Location,
    launch: Option<Launch>,
    fingerprint: String,
}

/// Run discovery. Never fails: unreadable files, broken configs and an
/// unsupported process table are reported in the result.
pub fn discover(opts: &Options, policy: Option<&DiscoveryConfig>) -> Report {
    let methods = policy.map(|p| p.methods.clone()).filter(|m| !m.is_empty());
    let do_configs = methods
        .as_ref()
        .is_none_or(|m| m.contains(&DiscoveryMethod::ConfigFiles));
    let do_procs = opts.processes
        && methods
            .as_ref()
            .is_none_or(|m| m.contains(&DiscoveryMethod::Processes));

    let mut sources = Vec::new();
    let mut configured = Vec::new();
    let mut project_roots: Vec<ProjectRoot> = Vec::new();
    let mut absent_project_files = 0;
    if do_configs {
        let mut discovered_roots: Vec<(PathBuf, &'static str)> = Vec::new();
        for home in &opts.homes {
            scan_home(
                opts,
                home,
                &mut sources,
                &mut configured,
                &mut discovered_roots,
            );
        }
        if let Some(root) = &opts.system_root {
            scan_system(opts, root, &mut sources, &mut configured);
        }
        for p in &opts.projects {
            project_roots.push(ProjectRoot {
                path: p.clone(),
                origin: "--project",
                scanned: true,
                note: None,
            });
            scan_project(
                opts,
                p,
                true,
                &mut sources,
                &mut configured,
                &mut absent_project_files,
            );
        }
        if opts.follow_projects {
            let mut seen: BTreeSet<PathBuf> = opts.projects.iter().cloned().collect();
            for (p, origin) in discovered_roots {
                if !seen.insert(p.clone()) {
                    continue;
                }
                let confined = opts
                    .confine_to
                    .as_ref()
                    .is_some_and(|dirs| !dirs.iter().any(|d| p.starts_with(d)));
                let note = if confined {
                    Some("outside the scanned home; not read".to_string())
                } else if !p.is_dir() {
                    Some("no such directory".to_string())
                } else {
                    None
                };
                let scanned = note.is_none();
                if scanned {
                    scan_project(
                        opts,
                        &p,
                        false,
                        &mut sources,
                        &mut configured,
                        &mut absent_project_files,
                    );
                }
                project_roots.push(ProjectRoot {
                    path: p,
                    origin,
                    scanned,
                    note,
                });
            }
        }
    }

    let (procs_result, mut servers, findings_extra) = assemble(opts, do_procs, configured, policy);
    let mut findings = findings_extra;
    for s in &sources {
        if matches!(
            s.status,
            SourceStatus::Unreadable { .. }
                | SourceStatus::ParseError { .. }
                | SourceStatus::TooLarge { .. }
        ) {
            findings.push(Finding {
                rule: Rule::SourceError,
                severity: Severity::Low,
                server_id: None,
                client: Some(s.client),
                path: Some(s.path.clone()),
                pid: None,
                message: format!(
                    "{} config {} is {}",
                    s.client,
                    s.path.display(),
                    describe_status(&s.status)
                ),
                evidence: None,
            });
        }
    }
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.rule.cmp(&b.rule))
            .then(a.server_id.cmp(&b.server_id))
            .then(a.path.cmp(&b.path))
            .then(a.message.cmp(&b.message))
    });
    servers.sort_by(|a, b| a.id.cmp(&b.id));
    let mut os = Vec::new();
    for (bit, name) in [
        (clients::LINUX, "linux"),
        (clients::MACOS, "macos"),
        (clients::WINDOWS, "windows"),
    ] {
        if opts.os & bit != 0 {
            os.push(name);
        }
    }
    Report {
        scan: ScanInfo {
            homes: opts
                .homes
                .iter()
                .map(|h| (h.dir.clone(), h.user.clone()))
                .collect(),
            system_root: opts.system_root.clone(),
            os,
        },
        sources,
        absent_project_files,
        project_roots,
        servers,
        processes: procs_result,
        findings,
    }
}

pub fn describe_status(st: &SourceStatus) -> String {
    match st {
        SourceStatus::Found => "found".into(),
        SourceStatus::Absent => "absent".into(),
        SourceStatus::Unreadable { reason } => format!("unreadable ({reason})"),
        SourceStatus::ParseError {
            message,
            line,
            column,
        } => {
            format!("not parseable: {message} at line {line} column {column}")
        }
        SourceStatus::TooLarge { size, limit } => {
            format!("too large ({size} bytes, limit {limit})")
        }
    }
}

fn read_source(
    opts: &Options,
    path: PathBuf,
    client: &'static clients::Client,
    rule: &clients::PathRule,
    user: Option<String>,
    project: Option<PathBuf>,
    configured: &mut Vec<Configured>,
) -> (Source, Vec<PathBuf>) {
    let (status, doc) = sources::read(&path, rule.format, opts.max_file_size);
    let mut src = Source {
        path: path.clone(),
        client: client.id,
        scope: rule.scope,
        format: rule.format.as_str(),
        status,
        servers: 0,
        warnings: Vec::new(),
        user: user.clone(),
        project: project.clone(),
    };
    let mut roots = Vec::new();
    if let Some(doc) = doc {
        let x = extract::extract(rule.shape, &doc);
        src.servers = x.entries.len();
        src.warnings = x.warnings.iter().map(|w| secrets::redact_text(w)).collect();
        roots = x.project_roots;
        for entry in x.entries {
            let location = Location {
                client: client.id,
                path: path.clone(),
                scope: entry.scope.unwrap_or(rule.scope),
                name: entry.name.clone(),
                project: entry.project.clone().or_else(|| project.clone()),
                user: user.clone(),
                disabled: entry.disabled,
                monitor_wrapped: false,
            };
            configured.push(configured_entry(entry, location));
        }
    }
    (src, roots)
}

fn configured_entry(entry: extract::Entry, mut location: Location) -> Configured {
    let (launch, fingerprint) = match &entry.spec {
        Spec::Stdio { argv, cwd, .. } => {
            let mut l = launch::analyze(argv);
            if let Some(cwd) = cwd {
                l.resolve_relative(cwd);
            }
            location.monitor_wrapped = l.monitor_wrapped;
            let fp = launch_fingerprint(&l);
            (Some(l), fp)
        }
        Spec::Remote { url, .. } => (None, format!("url\0{}", normalize_url(url))),
        Spec::Other { .. } => (None, format!("other\0{}\0{}", location.client, entry.name)),
    };
    Configured {
        entry,
        location,
        launch,
        fingerprint,
    }
}

fn launch_fingerprint(l: &Launch) -> String {
    let mut s = format!("cmd\0{}", l.key);
    for a in &l.args {
        s.push('\0');
        s.push_str(a);
    }
    s
}

fn normalize_url(u: &str) -> String {
    let t = u.trim().trim_end_matches('/');
    match t.find("://") {
        Some(i) => {
            let (scheme, rest) = t.split_at(i);
            let host_end = rest[3..].find('/').map_or(rest.len(), |x| x + 3);
            format!(
                "{}{}{}",
                scheme.to_ascii_lowercase(),
                rest[..host_end].to_ascii_lowercase(),
                &rest[host_end..]
            )
        }
        None => t.to_string(),
    }
}

fn scan_home(
    opts: &Options,
    home: &Home,
    sources: &mut Vec<Source>,
    configured: &mut Vec<Configured>,
    roots: &mut Vec<(PathBuf, &'static str)>,
) {
    let mut seen = BTreeSet::new();
    for client in CLIENTS {
        for rule in client.paths {
            if rule.os & opts.os == 0 || matches!(rule.base, Base::System | Base::ProjectRoot) {
                continue;
            }
            let Some(base) = home.base(rule.base) else {
                continue;
            };
            for path in sources::expand(&base, rule.rel) {
                // CLAUDE_CONFIG_DIR may equal HOME: read each file once.
                if !seen.insert((client.id, path.clone())) {
                    continue;
                }
                let (src, found_roots) = read_source(
                    opts,
                    path,
                    client,
                    rule,
                    home.user.clone(),
                    None,
                    configured,
                );
                roots.extend(found_roots.into_iter().map(|r| (r, "claude-code")));
                sources.push(src);
            }
        }
    }
    for (os, base, rel) in clients::WORKSPACE_STORAGE {
        if os & opts.os == 0 {
            continue;
        }
        let Some(base) = home.base(*base) else {
            continue;
        };
        for dir in sources::expand(&base, rel) {
            for ws in sources::expand(&dir, "*/workspace.json") {
                if let Some(root) = workspace_folder(&ws) {
                    roots.push((root, "workspace-storage"));
                }
            }
        }
    }
}

/// The folder a VS Code-family `workspace.json` names (`file://` URIs only).
fn workspace_folder(path: &Path) -> Option<PathBuf> {
    let (_, doc) = sources::read(path, clients::Format::Json, 1 << 20);
    let uri = doc?.get("folder")?.as_str()?.to_string();
    let p = uri.strip_prefix("file://")?;
    Some(PathBuf::from(percent_decode(p)))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn scan_system(
    opts: &Options,
    root: &Path,
    sources: &mut Vec<Source>,
    configured: &mut Vec<Configured>,
) {
    for client in CLIENTS {
        for rule in client
            .paths
            .iter()
            .filter(|r| r.base == Base::System && r.os & opts.os != 0)
        {
            for path in sources::expand(root, rule.rel) {
                let (src, _) = read_source(opts, path, client, rule, None, None, configured);
                sources.push(src);
            }
        }
    }
}

fn scan_project(
    opts: &Options,
    root: &Path,
    explicit: bool,
    sources: &mut Vec<Source>,
    configured: &mut Vec<Configured>,
    absent: &mut usize,
) {
    for client in CLIENTS {
        for rule in client.paths.iter().filter(|r| r.base == Base::ProjectRoot) {
            for path in sources::expand(root, rule.rel) {
                let (src, _) = read_source(
                    opts,
                    path,
                    client,
                    rule,
                    None,
                    Some(root.to_path_buf()),
                    configured,
                );
                if src.status == SourceStatus::Absent && !explicit {
                    *absent += 1;
                } else {
                    sources.push(src);
                }
            }
        }
    }
}

/// FNV-1a 64: stable across builds and platforms (std's hasher is not).
pub fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn sanitize(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == '/' || c == '\\' {
                '-'
            } else {
                c
            }
        })
        .collect();
    if t.is_empty() { "unnamed".into() } else { t }
}

/// The explicit port of a URL (`http://127.0.0.1:7777/mcp` -> 7777).
fn url_port(url: &str) -> Option<u16> {
    let rest = &url[url.find("://")? + 3..];
    let auth = rest.split(['/', '?', '#']).next()?;
    let host_port = auth.rsplit('@').next()?;
    let port = if host_port.starts_with('[') {
        host_port.split_once("]:")?.1
    } else {
        host_port.rsplit_once(':')?.1
    };
    port.parse().ok()
}

fn is_loopback_host(url: &str) -> bool {
    let Some(i) = url.find("://") else {
        return false;
    };
    let rest = &url[i + 3..];
    let auth = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = auth.rsplit('@').next().unwrap_or(auth);
    let host = if let Some(h) = host_port.strip_prefix('[') {
        h.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    let h = host.to_ascii_lowercase();
    h == "localhost"
        || h.ends_with(".localhost")
        || h == "::1"
        || h == "0.0.0.0"
        || h.parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_loopback())
}

/// Group entries into servers, attach processes, derive ids and findings.
fn assemble(
    opts: &Options,
    do_procs: bool,
    configured: Vec<Configured>,
    policy: Option<&DiscoveryConfig>,
) -> (Processes, Vec<Server>, Vec<Finding>) {
    // Group configured entries by fingerprint, in report order.
    let mut configured = configured;
    configured.sort_by(|a, b| {
        (
            clients::index_of(a.location.client),
            a.location.scope,
            &a.location.path,
            &a.location.name,
        )
            .cmp(&(
                clients::index_of(b.location.client),
                b.location.scope,
                &b.location.path,
                &b.location.name,
            ))
    });
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

    // Processes.
    struct RunGroup {
        fingerprint: String,
        launch: Launch,
        procs: Vec<usize>,
    }
    let mut proc_infos: Vec<ProcessInfo> = Vec::new();
    let mut proc_group_of: Vec<Option<usize>> = Vec::new(); // configured group per proc info
    let mut run_groups: Vec<RunGroup> = Vec::new();
    let processes = if !do_procs {
        Processes::NotScanned {
            reason: if opts.processes {
                "disabled by the policy's discovery.methods".into()
            } else {
                "not requested (--local scans processes; use --processes with --home)".into()
            },
        }
    } else {
        match process::snapshot(&opts.proc_root) {
            Err(reason) => Processes::Unsupported { reason },
            Ok(all) => {
                let table = process::Table::new(&all);
                let configured_keys: HashMap<&str, Vec<usize>> = {
                    let mut m: HashMap<&str, Vec<usize>> = HashMap::new();
                    for (gi, g) in groups.iter().enumerate() {
                        if let Some(l) = &g[0].launch {
                            if !l.key.is_empty() && l.key != "assay" {
                                m.entry(l.key.as_str()).or_default().push(gi);
                            }
                        }
                    }
                    m
                };
                let me = std::process::id() as i32;
                let recognised: Vec<(usize, Launch, Launch)> = all
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| !p.argv.is_empty() && p.pid != me)
                    .filter_map(|(i, p)| {
                        let raw = launch::analyze(&p.argv);
                        // Relative scripts resolve against the process's cwd.
                        let mut l = raw.clone();
                        if l.script {
                            if let Ok(cwd) = std::fs::read_link(
                                opts.proc_root.join(p.pid.to_string()).join("cwd"),
                            ) {
                                l.resolve_relative(&cwd.to_string_lossy());
                            }
                        }
                        let configured = configured_keys.contains_key(l.key.as_str())
                            || configured_keys.contains_key(raw.key.as_str());
                        (l.looks_like_mcp() || configured).then_some((i, l, raw))
                    })
                    .collect();
                let rec_pids: BTreeSet<i32> =
                    recognised.iter().map(|(i, _, _)| all[*i].pid).collect();
                let mut descendants: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
                let mut roots = Vec::new();
                for (i, l, raw) in recognised {
                    let p = &all[i];
                    let anc = table.ancestors(p.pid);
                    // The topmost recognised ancestor owns this process.
                    if let Some(top) = anc.iter().rev().find(|a| rec_pids.contains(&a.pid)) {
                        descendants.entry(top.pid).or_default().push(p.pid);
                    } else {
                        roots.push((i, l, raw, anc));
                    }
                }
                let total = all.len();
                // The record of one server root process.
                let info = |p: &process::Proc,
                            l: &Launch,
                            anc: &[&process::Proc],
                            descendants: Vec<i32>| {
                    let client = anc.iter().find_map(|a| {
                        let names = process::names_of(a);
                        CLIENTS
                            .iter()
                            .find(|c| c.process_names.iter().any(|n| names.iter().any(|x| x == n)))
                            .map(|c| c.id)
                    });
                    let cgroup = process::cgroup_of(&opts.proc_root, p.pid);
                    let managed_by = if let Some(cg) =
                        cgroup.as_ref().filter(|c| process::cgroup_is_managed(c))
                    {
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
                        command_line: secrets::redact_args(&p.argv).join(" "),
                        key: l.key.clone(),
                        server_id: String::new(),
                        configured: false,
                        client,
                        parent: table.get(p.ppid).map(|pp| (pp.pid, pp.comm.clone())),
                        managed_by,
                        cgroup,
                        descendants,
                    }
                };
                let mut launches: Vec<(Launch, String)> = Vec::new();
                for (i, l, raw, anc) in roots {
                    let p = &all[i];
                    let fp = launch_fingerprint(&l);
                    // Exact launch match, else a unique configured key; a
                    // config whose relative script could not be resolved
                    // matches the process's unresolved form.
                    let unique_key = |k: &str| match configured_keys.get(k) {
                        Some(v) if v.len() == 1 => Some(v[0]),
                        _ => None,
                    };
                    let group = by_fp
                        .get(&fp)
                        .or_else(|| by_fp.get(&launch_fingerprint(&raw)))
                        .copied()
                        .or_else(|| unique_key(&l.key))
                        .or_else(|| unique_key(&raw.key));
                    let mut pi = info(p, &l, &anc, descendants.remove(&p.pid).unwrap_or_default());
                    pi.configured = group.is_some();
                    proc_infos.push(pi);
                    proc_group_of.push(group);
                    launches.push((l, fp));
                }
                // A remote server on loopback is the process listening on
                // its URL's port, whatever its command line.
                let wanted: Vec<(u16, usize)> = groups
                    .iter()
                    .enumerate()
                    .filter(|(_, g)| !g.iter().all(|c| c.location.disabled))
                    .filter_map(|(gi, g)| match &g[0].entry.spec {
                        Spec::Remote { url, .. } if is_loopback_host(url) => {
                            url_port(url).map(|p| (p, gi))
                        }
                        _ => None,
                    })
                    .collect();
                if !wanted.is_empty() {
                    let ports = process::listening_ports(&opts.proc_root);
                    let inodes: Vec<u64> = wanted
                        .iter()
                        .filter_map(|(p, _)| ports.get(p))
                        .flatten()
                        .copied()
                        .collect();
                    let owners = process::socket_owners(&opts.proc_root, &inodes);
                    for (port, gi) in &wanted {
                        let mut pids: Vec<i32> = ports
                            .get(port)
                            .into_iter()
                            .flatten()
                            .filter_map(|ino| owners.get(ino))
                            .flatten()
                            .copied()
                            .collect();
                        pids.sort_unstable();
                        pids.dedup();
                        // Workers inherit the listening socket: keep the topmost owner.
                        let tops: Vec<i32> = pids
                            .iter()
                            .copied()
                            .filter(|&pid| {
                                !table.ancestors(pid).iter().any(|a| pids.contains(&a.pid))
                            })
                            .collect();
                        for pid in tops {
                            let existing = proc_infos
                                .iter()
                                .position(|pi| pi.pid == pid || pi.descendants.contains(&pid));
                            let idx = match existing {
                                Some(idx) => idx,
                                None => {
                                    let Some(p) = table.get(pid) else { continue };
                                    let l = launch::analyze(&p.argv);
                                    let fp = launch_fingerprint(&l);
                                    proc_infos.push(info(p, &l, &table.ancestors(pid), Vec::new()));
                                    proc_group_of.push(None);
                                    launches.push((l, fp));
                                    proc_infos.len() - 1
                                }
                            };
                            proc_group_of[idx] = Some(*gi);
                            proc_infos[idx].configured = true;
                        }
                    }
                }
                for (idx, (l, fp)) in launches.into_iter().enumerate() {
                    if proc_group_of[idx].is_some() {
                        continue;
                    }
                    match run_groups.iter_mut().find(|g| g.fingerprint == fp) {
                        Some(g) => g.procs.push(idx),
                        None => run_groups.push(RunGroup {
                            fingerprint: fp,
                            launch: l,
                            procs: vec![idx],
                        }),
                    }
                }
                Processes::Scanned {
                    total,
                    servers: Vec::new(),
                }
            }
        }
    };

    // Ids: `<client>/<name>` of the first location, `process/<name>` for
    // running-only; collisions get a fingerprint hash.
    let mut base_ids: Vec<(String, String)> = groups
        .iter()
        .map(|g| {
            let l = &g[0].location;
            (
                format!("{}/{}", l.client, sanitize(&l.name)),
                g[0].fingerprint.clone(),
            )
        })
        .collect();
    base_ids.extend(run_groups.iter().map(|r| {
        (
            format!("process/{}", sanitize(&r.launch.short_name())),
            r.fingerprint.clone(),
        )
    }));
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (id, _) in &base_ids {
        *count.entry(id.as_str()).or_insert(0) += 1;
    }
    let ids: Vec<String> = base_ids
        .iter()
        .map(|(id, fp)| {
            if count[id.as_str()] > 1 {
                format!("{id}~{:06x}", fnv1a(fp) & 0xff_ffff)
            } else {
                id.clone()
            }
        })
        .collect();

    let managed_names: Vec<&str> = policy
        .map(|p| p.managed.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let mut servers = Vec::new();
    let mut findings = Vec::new();

    for (gi, g) in groups.iter().enumerate() {
        let id = ids[gi].clone();
        let first = &g[0];
        let procs: Vec<usize> = (0..proc_infos.len())
            .filter(|&i| proc_group_of[i] == Some(gi))
            .collect();
        for &i in &procs {
            proc_infos[i].server_id = id.clone();
        }
        let aliases: Vec<String> = g
            .iter()
            .map(|c| format!("{}/{}", c.location.client, sanitize(&c.location.name)))
            .filter(|a| *a != id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let (transport, command_line, key, launchers) = view_of(first);
        let locations: Vec<Location> = g.iter().map(|c| c.location.clone()).collect();
        let running_pids: Vec<i32> = procs.iter().map(|&i| proc_infos[i].pid).collect();
        let all_disabled = locations.iter().all(|l| l.disabled);

        // Managed?
        let by_policy = managed_names.iter().any(|m| {
            *m == id || aliases.iter().any(|a| a == m) || locations.iter().any(|l| l.name == *m)
        });
        let mut managed_by = Vec::new();
        if by_policy {
            managed_by.push(ManagedBy::Policy);
        }
        if locations.iter().any(|l| l.monitor_wrapped) {
            managed_by.push(ManagedBy::MonitorWrapper);
        }
        for &i in &procs {
            if let Some(m) = &proc_infos[i].managed_by {
                managed_by.push(m.clone());
            }
        }
        let unwrapped: Vec<&Location> = locations
            .iter()
            .filter(|l| !l.disabled && !l.monitor_wrapped)
            .collect();
        let unmanaged_procs: Vec<i32> = procs
            .iter()
            .filter(|&&i| proc_infos[i].managed_by.is_none())
            .map(|&i| proc_infos[i].pid)
            .collect();
        let managed = by_policy
            || unwrapped.is_empty() && unmanaged_procs.is_empty() && !managed_by.is_empty();
        if !managed && (!unwrapped.is_empty() || !unmanaged_procs.is_empty()) {
            let mut why = Vec::new();
            for l in &unwrapped {
                why.push(format!("{} {}", l.client, l.path.display()));
            }
            for pid in &unmanaged_procs {
                why.push(format!("running as pid {pid}"));
            }
            findings.push(Finding {
                rule: Rule::UnmanagedServer,
                severity: Severity::Medium,
                server_id: Some(id.clone()),
                client: unwrapped.first().map(|l| l.client),
                path: unwrapped.first().map(|l| l.path.clone()),
                pid: unmanaged_procs.first().copied(),
                message: format!(
                    "{id} is not launched under assay monitor ({})",
                    why.join("; ")
                ),
                evidence: None,
            });
        }

        for c in g {
            location_findings(&id, c, &mut findings);
        }

        servers.push(Server {
            id,
            name: first.location.name.clone(),
            aliases,
            key,
            launchers,
            transport,
            command_line,
            locations,
            disabled: all_disabled && running_pids.is_empty(),
            managed,
            managed_by,
            pids: running_pids,
        });
    }

    for (ri, r) in run_groups.iter().enumerate() {
        let id = ids[groups.len() + ri].clone();
        let mut managed_by = Vec::new();
        let by_policy = managed_names
            .iter()
            .any(|m| *m == id || *m == r.launch.short_name());
        if by_policy {
            managed_by.push(ManagedBy::Policy);
        }
        let mut pids = Vec::new();
        let mut unmanaged = Vec::new();
        for &i in &r.procs {
            proc_infos[i].server_id = id.clone();
            pids.push(proc_infos[i].pid);
            match &proc_infos[i].managed_by {
                Some(m) => managed_by.push(m.clone()),
                None => unmanaged.push(proc_infos[i].pid),
            }
        }
        let managed = by_policy || unmanaged.is_empty();
        if !managed {
            findings.push(Finding {
                rule: Rule::UnmanagedServer,
                severity: Severity::Medium,
                server_id: Some(id.clone()),
                client: None,
                path: None,
                pid: unmanaged.first().copied(),
                message: format!(
                    "{id} is running (pid {}) without assay monitor and is not in any known config",
                    unmanaged
                        .iter()
                        .map(i32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                evidence: None,
            });
        }
        let first = &proc_infos[r.procs[0]];
        servers.push(Server {
            id,
            name: r.launch.short_name(),
            aliases: Vec::new(),
            key: r.launch.key.clone(),
            launchers: r.launch.launchers.iter().map(|s| s.to_string()).collect(),
            transport: Transport::Process,
            command_line: first.command_line.clone(),
            locations: Vec::new(),
            disabled: false,
            managed,
            managed_by,
            pids,
        });
    }

    // Secrets on running command lines (visible to every local user).
    for pi in &proc_infos {
        if let Some(p) = pi_secret(pi, &opts.proc_root) {
            findings.push(Finding {
                rule: Rule::SecretInCommandLine,
                severity: Severity::High,
                server_id: Some(pi.server_id.clone()),
                client: pi.client,
                path: None,
                pid: Some(pi.pid),
                message: format!(
                    "pid {} of {} has a {} in its command line",
                    pi.pid, pi.server_id, p.0
                ),
                evidence: Some(p.1),
            });
        }
    }

    let processes = match processes {
        Processes::Scanned { total, .. } => Processes::Scanned {
            total,
            servers: proc_infos,
        },
        other => other,
    };
    (processes, servers, findings)
}

/// Re-read a root process's argv to look for secrets (the stored command
/// line is already redacted). Returns (kind label, redacted evidence).
fn pi_secret(pi: &ProcessInfo, proc_root: &Path) -> Option<(&'static str, String)> {
    let bytes = std::fs::read(proc_root.join(pi.pid.to_string()).join("cmdline")).ok()?;
    let argv = process::parse_cmdline(&bytes);
    let hits = secrets::scan_args(&argv);
    let (idx, kind) = hits.first()?;
    let red = secrets::redact_args(&argv);
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
                .map(|(k, v)| (k.clone(), secrets::redact_value(Some(k), v)))
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
                        .map(|(k, v)| (k.clone(), secrets::redact_value(Some(k), v)))
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
        findings.push(mk(
            Rule::DisabledServer,
            Severity::Info,
            format!("{id} is disabled in {where_}"),
            None,
        ));
    }
    // Secrets: on disk whether enabled or not.
    let mut secret = |what: String, kind: secrets::SecretKind| {
        let sev = if kind == secrets::SecretKind::Named {
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
                        format!("env {k} = {}", secrets::redact_value(Some(k), v)),
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
                        format!("headers {k} = {}", secrets::redact_value(Some(k), v)),
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

    #[test]
    fn loopback_hosts() {
        for u in [
            "http://localhost:3000/mcp",
            "http://127.0.0.1/sse",
            "http://[::1]:8080",
            "ws://api.localhost/x",
            "http://user:p@127.0.0.2/",
        ] {
            assert!(is_loopback_host(u), "{u}");
        }
        for u in [
            "http://10.0.0.1/mcp",
            "https://mcp.example.com",
            "http://localhost.evil.com/",
            "nonsense",
        ] {
            assert!(!is_loopback_host(u), "{u}");
        }
    }

    #[test]
    fn url_ports() {
        assert_eq!(url_port("http://127.0.0.1:7777/mcp"), Some(7777));
        assert_eq!(url_port("http://[::1]:8080"), Some(8080));
        assert_eq!(url_port("http://u:p@localhost:9/x"), Some(9));
        assert_eq!(url_port("http://localhost/x"), None);
        assert_eq!(url_port("nonsense"), None);
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn rule_ids_round_trip() {
        for r in Rule::ALL {
            assert_eq!(Rule::parse(r.id()), Some(r));
            assert_eq!(Rule::parse(&r.sarif_id()), Some(r));
        }
        assert_eq!(
            Rule::sarif_id(Rule::UnmanagedServer),
            "discovery/unmanaged-server"
        );
    }

    #[test]
    fn urls_normalise_for_dedupe() {
        assert_eq!(
            normalize_url("HTTPS://Mcp.Example.com/Path/"),
            "https://mcp.example.com/Path"
        );
        assert_eq!(percent_decode("/home/a%20b/c"), "/home/a b/c");
    }
}
