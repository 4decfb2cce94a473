//! Discovery: every MCP server configured or running on a machine, with
//! findings. Plain Rust, no privileges, no dependency on `monitor`.
//!
//! [`discover`] returns a [`Report`]: data only. Every string in it that came
//! from a config or a command line has already been redacted
//! ([`secrets`]), so renderers cannot leak a credential.
//!
//! Config files are read first; servers are then assembled in phases that
//! each return data (`assemble.rs`): group the configured entries, take one
//! `/proc` snapshot (the only process I/O, `running.rs`), match processes to
//! configs, assign ids (`ids.rs`), judge managed status and findings
//! (`judge.rs`). Everything after the snapshot is pure and unit-tested.
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

mod activation;
mod assemble;
pub mod clients;
pub mod extract;
mod ids;
pub mod jsonc;
mod judge;
pub mod launch;
pub mod process;
mod running;
pub mod secrets;
pub mod sources;
#[cfg(test)]
mod testkit;

use std::collections::{BTreeMap, BTreeSet};
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
    /// When disabled by a setting outside the entry: the file and key
    /// (`/p/.claude/settings.json disabledMcpjsonServers`).
    pub disabled_by: Option<String>,
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
    /// Candidate files of the homes that do not exist, when several homes
    /// are scanned (then not listed: 1,000 homes would list 50,000 of them).
    pub absent_home_files: usize,
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
    /// Launched inside a container (a dev container's servers), so only a
    /// containerised process can be an instance of it.
    in_container: bool,
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

    let configs = if do_configs {
        scan_configs(opts)
    } else {
        Configs::default()
    };
    let (processes, mut servers, mut findings) =
        assemble::assemble(opts, do_procs, configs.configured, policy);
    findings.extend(configs.sources.iter().filter_map(source_finding));
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
        sources: configs.sources,
        absent_project_files: configs.absent_project_files,
        absent_home_files: configs.absent_home_files,
        project_roots: configs.project_roots,
        servers,
        processes,
        findings,
    }
}

/// What reading the config files gave.
#[derive(Default)]
struct Configs {
    sources: Vec<Source>,
    configured: Vec<Configured>,
    project_roots: Vec<ProjectRoot>,
    absent_project_files: usize,
    absent_home_files: usize,
}

/// Read every candidate config file: homes, machine-wide files, explicit
/// project roots, then project roots the clients name.
fn scan_configs(opts: &Options) -> Configs {
    let mut c = Configs::default();
    let mut discovered_roots: Vec<(PathBuf, &'static str)> = Vec::new();
    for home in &opts.homes {
        scan_home(opts, home, &mut c, &mut discovered_roots);
    }
    if let Some(root) = &opts.system_root {
        scan_system(opts, root, &mut c.sources, &mut c.configured);
    }
    for p in &opts.projects {
        c.project_roots.push(ProjectRoot {
            path: p.clone(),
            origin: "--project",
            scanned: true,
            note: None,
        });
        scan_project(
            opts,
            p,
            true,
            &mut c.sources,
            &mut c.configured,
            &mut c.absent_project_files,
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
                    &mut c.sources,
                    &mut c.configured,
                    &mut c.absent_project_files,
                );
            }
            c.project_roots.push(ProjectRoot {
                path: p,
                origin,
                scanned,
                note,
            });
        }
    }
    activation::apply(opts, &mut c.configured);
    c
}

/// A config file that exists but could not be used.
fn source_finding(s: &Source) -> Option<Finding> {
    matches!(
        s.status,
        SourceStatus::Unreadable { .. }
            | SourceStatus::ParseError { .. }
            | SourceStatus::TooLarge { .. }
    )
    .then(|| Finding {
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
    })
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

/// Read one candidate file into a [`Source`] and its entries; returns the
/// project roots it names and the sources of files it points to (read
/// here, listed after it).
fn read_source(
    opts: &Options,
    path: PathBuf,
    client: &'static clients::Client,
    rule: &clients::PathRule,
    user: Option<String>,
    project: Option<PathBuf>,
    configured: &mut Vec<Configured>,
) -> (Source, Vec<PathBuf>, Vec<Source>) {
    let vars = expansion_vars(client, rule, &path);
    let (mut src, x) = read_with(
        opts, &path, client, rule, &user, &project, &vars, configured,
    );
    let mut included = Vec::new();
    if !x.includes.is_empty() {
        let root = plugin_root(&path);
        for inc in &x.includes {
            match include_path(&root, inc) {
                // The plugins glob reads every `.mcp.json` already.
                Some(p) if p.file_name().is_some_and(|n| n == ".mcp.json") => {}
                Some(p) => {
                    let (s, _) = read_with(
                        opts,
                        &p,
                        client,
                        &PLUGIN_INCLUDE,
                        &user,
                        &project,
                        &vars,
                        configured,
                    );
                    included.push(s);
                }
                None => src.warnings.push(format!(
                    "mcpServers: {} is outside the plugin; not read",
                    secrets::redact_text(inc)
                )),
            }
        }
    }
    (src, x.project_roots, included)
}

/// How a file a plugin manifest points to is read.
static PLUGIN_INCLUDE: clients::PathRule = clients::PathRule {
    os: clients::ALL_OS,
    base: Base::Home,
    rel: "",
    format: clients::Format::Json,
    shape: clients::Shape::McpServersOrFlat,
    scope: Scope::Plugin,
};

/// A Claude Code plugin's root: the directory holding `.claude-plugin/`
/// (where `plugin.json` lives), else the file's own directory.
fn plugin_root(path: &Path) -> PathBuf {
    let dir = path.parent().unwrap_or(Path::new(""));
    if dir.file_name().is_some_and(|n| n == ".claude-plugin") {
        dir.parent().unwrap_or(dir).to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// A manifest's relative path (`./config/servers.json`,
/// `${CLAUDE_PLUGIN_ROOT}/x.json`) under the plugin root; `None` when it
/// is absolute or climbs out (a hostile manifest must not make discovery
/// read arbitrary files).
fn include_path(root: &Path, rel: &str) -> Option<PathBuf> {
    let rel = rel
        .strip_prefix("${CLAUDE_PLUGIN_ROOT}")
        .unwrap_or(rel)
        .trim_start_matches(['/', '\\']);
    let mut out = root.to_path_buf();
    for c in rel.split(['/', '\\']) {
        match c {
            "" | "." => {}
            ".." => return None,
            c if c.contains(':') => return None,
            c => out.push(c),
        }
    }
    (out != root).then_some(out)
}

/// Variables a client expands in a launch line before running it, for
/// files whose servers live next to them.
fn expansion_vars(
    client: &clients::Client,
    rule: &clients::PathRule,
    path: &Path,
) -> Vec<(&'static str, String)> {
    let dir = path.parent().unwrap_or(Path::new("")).display().to_string();
    if rule.shape == clients::Shape::McpbManifest {
        vec![("${__dirname}", dir)]
    } else if path
        .file_name()
        .is_some_and(|n| n == "gemini-extension.json")
    {
        vec![
            ("${extensionPath}", dir),
            ("${/}", "/".into()),
            ("${pathSeparator}", "/".into()),
        ]
    } else if client.id == "claude-code" && rule.scope == Scope::Plugin {
        vec![(
            "${CLAUDE_PLUGIN_ROOT}",
            plugin_root(path).display().to_string(),
        )]
    } else {
        Vec::new()
    }
}

#[allow(clippy::too_many_arguments)]
fn read_with(
    opts: &Options,
    path: &Path,
    client: &'static clients::Client,
    rule: &clients::PathRule,
    user: &Option<String>,
    project: &Option<PathBuf>,
    vars: &[(&'static str, String)],
    configured: &mut Vec<Configured>,
) -> (Source, extract::Extracted) {
    let (status, doc) = sources::read(path, rule.format, opts.max_file_size);
    let mut src = Source {
        path: path.to_path_buf(),
        client: client.id,
        scope: rule.scope,
        format: rule.format.as_str(),
        status,
        servers: 0,
        warnings: Vec::new(),
        user: user.clone(),
        project: project.clone(),
    };
    let Some(doc) = doc else {
        return (src, extract::Extracted::default());
    };
    let mut x = extract::extract(rule.shape, &doc);
    src.servers = x.entries.len();
    src.warnings = x.warnings.iter().map(|w| secrets::redact_text(w)).collect();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for mut entry in std::mem::take(&mut x.entries) {
        extract::expand_vars(&mut entry.spec, &vars);
        let location = Location {
            client: client.id,
            path: path.to_path_buf(),
            scope: entry.scope.unwrap_or(rule.scope),
            name: entry.name.clone(),
            project: entry.project.clone().or_else(|| project.clone()),
            user: user.clone(),
            disabled: entry.disabled,
            disabled_by: None,
            monitor_wrapped: false,
        };
        let mut c = configured_entry(entry, location);
        c.in_container = rule.shape == clients::Shape::Devcontainer;
        configured.push(c);
    }
    (src, x)
}

fn configured_entry(entry: extract::Entry, mut location: Location) -> Configured {
    let (launch, fingerprint) = match &entry.spec {
        Spec::Stdio { argv, cwd, .. } => {
            let mut l = launch::analyze(argv);
            if let Some(cwd) = cwd {
                l.resolve_relative(cwd);
            } else if let (Scope::Project, Some(root)) = (location.scope, &location.project) {
                // Project servers start in the project's directory.
                l.resolve_relative(&root.to_string_lossy());
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
        in_container: false,
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
    c: &mut Configs,
    roots: &mut Vec<(PathBuf, &'static str)>,
) {
    let list_absent = opts.homes.len() <= 1;
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
                let (src, found_roots, included) = read_source(
                    opts,
                    path,
                    client,
                    rule,
                    home.user.clone(),
                    None,
                    &mut c.configured,
                );
                roots.extend(found_roots.into_iter().map(|r| (r, "claude-code")));
                if src.status == SourceStatus::Absent && !list_absent {
                    c.absent_home_files += 1;
                } else {
                    c.sources.push(src);
                }
                c.sources.extend(included);
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
                let (src, _, included) =
                    read_source(opts, path, client, rule, None, None, configured);
                sources.push(src);
                sources.extend(included);
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
                let (src, _, included) = read_source(
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
                sources.extend(included);
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
    fn project_servers_resolve_relative_scripts_against_the_project() {
        let entry = |cwd: Option<&str>| extract::Entry {
            name: "t".into(),
            spec: Spec::Stdio {
                argv: vec!["node".into(), "tools/server.js".into()],
                env: Vec::new(),
                cwd: cwd.map(str::to_string),
            },
            disabled: false,
            scope: None,
            project: None,
        };
        let mut loc = testkit::location("claude-code", "/p/.mcp.json", "t");
        loc.scope = Scope::Project;
        loc.project = Some(PathBuf::from("/p"));
        let key = |e, l| configured_entry(e, l).launch.unwrap().key;
        assert_eq!(key(entry(None), loc.clone()), "/p/tools/server.js");
        assert_eq!(key(entry(Some("/q")), loc.clone()), "/q/tools/server.js");
        let user = testkit::location("cursor", "/h/.cursor/mcp.json", "t");
        assert_eq!(key(entry(None), user), "tools/server.js");
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
