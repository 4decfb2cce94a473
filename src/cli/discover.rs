//! `assay discover`: find every MCP server configured or running.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::{Global, load_policy};
use crate::discovery::{self, Options, Report, Rule, clients};
use crate::exit::{Coded, Outcome, Status, Trip};
use crate::output::{self, DiscoverFormat};
use crate::policy::model::{DiscoveryConfig, OnFinding};
use crate::severity::Severity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OsArg {
    Linux,
    Macos,
    Windows,
    All,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Scope: --local (the default) reads this user's configs, machine-wide managed
files and running processes. --home DIR reads only DIR (as a home, with every
OS's path conventions) and nothing else of the machine unless asked
(--processes, --system-root). --all-users reads every user's home: the
user database (/etc/passwd and NSS: LDAP, SSSD) and /home; with
--system-root DIR, the users of DIR/etc/passwd and DIR/home.

Gates: --fail-on unmanaged_server exits 10 when any server is unmanaged,
--fail-on no_auth 11; any other rule id (source_error: a config that could
not be read, whose servers may be hidden) exits with its findings' severity
code (3 critical, 4 high, 5 medium, 6 low, 7 info); --fail-on SEVERITY (or
--fail-on-severity) exits with that code for findings at or above it;
--fail-on any trips on every finding. When several trip, the lowest code
wins: 3 < 4 < 5 < 6 < 7 < 10 < 11. A gate that trips never exits 0.

Exit codes: 0 no gate tripped, 1 runtime error, 2 invalid command line or
policy, 3-7 findings by severity, 10 unmanaged servers, 11 servers without
authentication.")]
pub struct Args {
    /// Scan this machine: this user's configs, managed files, processes (default).
    #[arg(long)]
    pub local: bool,
    /// Scan DIR as a home directory instead of this machine.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["local", "all_users"])]
    pub home: Option<PathBuf>,
    /// Also scan project-level configs in DIR (repeatable).
    #[arg(long, value_name = "DIR")]
    pub project: Vec<PathBuf>,
    /// Scan every user's home (user database and /home; under --system-root
    /// if given); needs root to read them all.
    #[arg(long)]
    pub all_users: bool,
    /// Read machine-wide managed configs (e.g. etc/claude-code/managed-mcp.json) under DIR.
    #[arg(long, value_name = "DIR")]
    pub system_root: Option<PathBuf>,
    /// Scan running processes (default with --local / --all-users).
    #[arg(long, overrides_with = "no_processes")]
    pub processes: bool,
    /// Do not scan running processes.
    #[arg(long)]
    pub no_processes: bool,
    /// Do not follow project roots named by Claude Code's `projects` map or
    /// editor workspace storage.
    #[arg(long)]
    pub no_follow_projects: bool,
    /// Which OS path conventions to try (default: this OS for --local, all for --home).
    #[arg(long, value_enum)]
    pub os: Option<OsArg>,
    /// Fail (non-zero exit) on a finding kind (unmanaged_server, no_auth,
    /// secret_in_config, source_error, ...), a severity (critical, high,
    /// medium, low, info) or `any` finding. Repeatable.
    #[arg(long = "fail-on", value_name = "RULE|SEVERITY")]
    pub fail_on: Vec<String>,
    /// Fail on findings at or above this severity (same as --fail-on SEVERITY).
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on_severity: Option<String>,
    /// Policy whose `discovery` block applies: `managed` servers, `on_findings`
    /// gates (`fail` = like --fail-on), `methods`. An invalid policy exits 2.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Config files larger than this many bytes are reported `too_large`.
    #[arg(long, value_name = "BYTES", default_value_t = discovery::sources::MAX_FILE_SIZE)]
    pub max_file_size: u64,
}

/// One gate from `--fail-on` or the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Rule(Rule),
    AtLeast(Severity),
    /// `--fail-on any`: every finding trips, at its own severity.
    Any,
}

/// A `--fail-on` value that is neither a rule nor a severity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown --fail-on value `{0}`: expected a rule ({rules}), a severity (critical, high, \
     medium, low, info) or `any`",
    rules = rule_ids()
)]
pub struct UnknownGate(pub String);

fn rule_ids() -> String {
    let rules: Vec<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
    rules.join(", ")
}

pub fn parse_gate(s: &str) -> Result<Gate, UnknownGate> {
    if s.eq_ignore_ascii_case("any") {
        return Ok(Gate::Any);
    }
    if let Some(r) = Rule::parse(s) {
        return Ok(Gate::Rule(r));
    }
    if let Some(sev) = Severity::parse(&s.to_ascii_lowercase()) {
        return Ok(Gate::AtLeast(sev));
    }
    Err(UnknownGate(s.to_string()))
}

/// The trips a report produces under these gates. `unmanaged_server` and
/// `no_auth` have their own codes (10, 11); other rules and severity gates
/// trip at the findings' severities.
pub fn trips(report: &Report, gates: &[Gate]) -> Vec<Trip> {
    let mut out = Vec::new();
    for g in gates {
        for f in &report.findings {
            match g {
                Gate::Rule(r) if *r == f.rule => out.push(match r {
                    Rule::UnmanagedServer => Trip::Unmanaged,
                    Rule::NoAuth => Trip::NoAuth,
                    _ => Trip::Severity(f.severity),
                }),
                Gate::AtLeast(s) if f.severity >= *s => out.push(Trip::Severity(f.severity)),
                Gate::Any => out.push(Trip::Severity(f.severity)),
                _ => {}
            }
        }
    }
    out.dedup();
    out
}

/// A `discovery.on_findings` key that names no finding kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy discovery.on_findings: unknown finding kind `{0}`")]
pub struct UnknownFindingKind(pub String);

/// Gates from a policy's `discovery.on_findings` (`fail` entries).
pub fn policy_gates(cfg: &DiscoveryConfig) -> Result<Vec<Gate>, UnknownFindingKind> {
    cfg.on_findings
        .iter()
        .filter(|(_, v)| **v == OnFinding::Fail)
        .map(|(k, _)| {
            Rule::parse(k)
                .map(Gate::Rule)
                .ok_or_else(|| UnknownFindingKind(k.clone()))
        })
        .collect()
}

/// Build scan options from the command line.
pub fn options(args: &Args) -> anyhow::Result<Options> {
    let os_mask = |default| match args.os {
        None => default,
        Some(OsArg::Linux) => clients::LINUX,
        Some(OsArg::Macos) => clients::MACOS,
        Some(OsArg::Windows) => clients::WINDOWS,
        Some(OsArg::All) => clients::ALL_OS,
    };
    let mut opts = if let Some(dir) = &args.home {
        if !dir.is_dir() {
            return Err(Coded::new(
                Status::ConfigInvalid,
                anyhow::anyhow!("--home {}: not a directory", dir.display()),
            )
            .into());
        }
        let mut o = Options::for_home(dir);
        o.os = os_mask(clients::ALL_OS);
        o.processes = args.processes;
        o
    } else {
        let mut o = if args.all_users {
            Options {
                // With --system-root, the users of that root (an image, a
                // mounted disk, a generated benchmark root).
                homes: discovery::sources::user_homes(
                    args.system_root.as_deref().unwrap_or(Path::new("/")),
                ),
                system_root: Some(PathBuf::from("/")),
                projects: Vec::new(),
                follow_projects: true,
                confine_to: None,
                os: clients::host_os(),
                processes: true,
                proc_root: PathBuf::from("/proc"),
                max_file_size: args.max_file_size,
            }
        } else {
            Options::local().context("cannot tell the home directory: set HOME (or use --home)")?
        };
        o.os = os_mask(clients::host_os());
        o.processes = !args.no_processes;
        o
    };
    if let Some(root) = &args.system_root {
        opts.system_root = Some(root.clone());
    }
    if args.no_processes {
        opts.processes = false;
    }
    opts.follow_projects = !args.no_follow_projects;
    opts.max_file_size = args.max_file_size;
    for p in &args.project {
        if !p.is_dir() {
            return Err(Coded::new(
                Status::ConfigInvalid,
                anyhow::anyhow!("--project {}: not a directory", p.display()),
            )
            .into());
        }
        opts.projects.push(p.clone());
    }
    Ok(opts)
}

/// Discover, render, and compute the gate. `policy` is the loaded policy's
/// `discovery` block, when a policy was given.
pub fn run_with(
    args: Args,
    g: &Global<DiscoverFormat>,
    policy: Option<&DiscoveryConfig>,
) -> anyhow::Result<Outcome> {
    let mut gates = Vec::new();
    for s in args.fail_on.iter().chain(args.fail_on_severity.iter()) {
        gates.push(parse_gate(s).map_err(|e| Coded::new(Status::ConfigInvalid, e))?);
    }
    if let Some(cfg) = policy {
        gates.extend(policy_gates(cfg).map_err(|e| Coded::new(Status::ConfigInvalid, e))?);
    }
    let opts = options(&args)?;
    let report = discovery::discover(&opts, policy);
    if g.format == DiscoverFormat::Json {
        // Written as it is serialized: the document can be larger than the
        // report it comes from (27 MB for a thousand homes).
        output::emit_streamed(|out| output::discovery::json::write(&report, out))?;
    } else {
        let text = output::discovery::render(&report, g.format, g.style(), g.verbose > 0)?;
        output::emit(&text)?;
    }
    Ok(Outcome::Findings(trips(&report, &gates)))
}

pub fn run(args: Args, g: &Global<DiscoverFormat>) -> anyhow::Result<Outcome> {
    let Some(path) = args.policy.clone() else {
        return run_with(args, g, None);
    };
    let policy = load_policy(&path)?;
    match policy.discovery {
        Some(cfg) if cfg.enabled => run_with(args, g, Some(&cfg)),
        Some(_) => {
            eprintln!(
                "assay: {}: discovery.enabled is false; its managed list and gates are not applied",
                path.display()
            );
            run_with(args, g, None)
        }
        None => run_with(args, g, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::exit_status;

    #[test]
    fn gates_parse() {
        assert_eq!(
            parse_gate("unmanaged_server"),
            Ok(Gate::Rule(Rule::UnmanagedServer))
        );
        assert_eq!(
            parse_gate("discovery/no-auth"),
            Ok(Gate::Rule(Rule::NoAuth))
        );
        assert_eq!(parse_gate("HIGH"), Ok(Gate::AtLeast(Severity::High)));
        assert!(
            parse_gate("bogus")
                .unwrap_err()
                .to_string()
                .contains("unmanaged_server")
        );
    }

    fn report_with(findings: Vec<(Rule, Severity)>) -> Report {
        let t = tempfile::tempdir().unwrap();
        let mut r = discovery::discover(&Options::for_home(t.path()), None);
        r.findings = findings
            .into_iter()
            .map(|(rule, severity)| discovery::Finding {
                rule,
                severity,
                server_id: None,
                client: None,
                path: None,
                pid: None,
                message: String::new(),
                evidence: None,
            })
            .collect();
        r
    }

    #[test]
    fn gates_map_to_exit_codes() {
        let r = report_with(vec![
            (Rule::UnmanagedServer, Severity::Medium),
            (Rule::NoAuth, Severity::High),
            (Rule::UnpinnedPackage, Severity::Low),
        ]);
        let code = |g: &[Gate]| exit_status(&Outcome::Findings(trips(&r, g)));
        assert_eq!(code(&[]), 0);
        assert_eq!(code(&[Gate::Rule(Rule::UnmanagedServer)]), 10);
        assert_eq!(code(&[Gate::Rule(Rule::NoAuth)]), 11);
        assert_eq!(
            code(&[Gate::Rule(Rule::NoAuth), Gate::Rule(Rule::UnmanagedServer)]),
            10
        );
        assert_eq!(code(&[Gate::AtLeast(Severity::High)]), 4);
        assert_eq!(
            code(&[Gate::AtLeast(Severity::Medium), Gate::Rule(Rule::NoAuth)]),
            4
        );
        assert_eq!(
            code(&[Gate::Rule(Rule::SecretInConfig)]),
            0,
            "no such finding"
        );
        assert_eq!(code(&[Gate::AtLeast(Severity::Critical)]), 0);
    }

    /// Every value `--fail-on` accepts can fail a run: each rule on its
    /// own finding, each severity and `any` on a finding of that severity.
    #[test]
    fn every_accepted_gate_can_trip() {
        let mut values: Vec<String> = Rule::ALL.iter().map(|r| r.id().to_string()).collect();
        values.extend(Severity::ALL.iter().map(|s| s.as_str().to_string()));
        values.push("any".into());
        for v in &values {
            let gate = parse_gate(v).unwrap();
            let findings: Vec<(Rule, Severity)> = match gate {
                Gate::Rule(r) => vec![(r, r.max_severity())],
                Gate::AtLeast(s) => vec![(Rule::SourceError, s)],
                Gate::Any => vec![(Rule::DisabledServer, Severity::Info)],
            };
            let r = report_with(findings);
            let code = exit_status(&Outcome::Findings(trips(&r, &[gate])));
            assert_ne!(code, 0, "--fail-on {v} did not trip");
        }
        let r = report_with(vec![(Rule::SourceError, Severity::Low)]);
        let code = |g: &[Gate]| exit_status(&Outcome::Findings(trips(&r, g)));
        assert_eq!(code(&[Gate::Rule(Rule::SourceError)]), 6);
        assert_eq!(code(&[Gate::AtLeast(Severity::Info)]), 6);
        assert_eq!(code(&[Gate::Rule(Rule::UnmanagedServer)]), 0);
        let r = report_with(vec![(Rule::DisabledServer, Severity::Info)]);
        assert_eq!(exit_status(&Outcome::Findings(trips(&r, &[Gate::Any]))), 7);
        assert_eq!(parse_gate("ANY"), Ok(Gate::Any));
    }

    #[test]
    fn policy_on_findings_become_gates() {
        let mut cfg = DiscoveryConfig {
            enabled: true,
            methods: vec![],
            on_findings: Default::default(),
            managed: vec![],
        };
        cfg.on_findings
            .insert("unmanaged_server".into(), OnFinding::Fail);
        cfg.on_findings.insert("no_auth".into(), OnFinding::Warn);
        assert_eq!(
            policy_gates(&cfg),
            Ok(vec![Gate::Rule(Rule::UnmanagedServer)])
        );
        cfg.on_findings.insert("nonsense".into(), OnFinding::Fail);
        assert!(policy_gates(&cfg).is_err());
    }
}
