//! Policy v2.0: loading, validation, and tool-call decisions.
//!
//! [`load`] reads a YAML policy and returns a fully checked
//! [`model::Policy`] or every problem found, each with its `file:line:column`.
//! [`decide`] judges one tool call against `tools` and `schemas`.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub mod decide;
pub mod fileplan;
pub mod glob;
pub mod model;
pub mod net;
mod schema;
mod validate;
mod yaml;

pub use decide::{CallError, Decision, Gate, GateError, Reason, ToolCall, decide};
pub use model::Policy;
pub use schema::SchemaError;
pub use validate::MAX_GRACE_PERIOD_MS;

/// Largest policy file accepted. Real policies are a few KiB; the cap keeps a
/// stray multi-GiB file from being read into memory.
pub const MAX_POLICY_BYTES: u64 = 1024 * 1024;

/// One problem in a policy file. `line` and `column` are 1-based; both are 0
/// when the problem concerns the whole file (missing, unreadable, too large).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

/// Why a policy could not be loaded: every diagnostic found, in file order.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct PolicyError {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl PolicyError {
    fn whole_file(file: &Path, message: impl Into<String>) -> PolicyError {
        PolicyError {
            diagnostics: vec![Diagnostic {
                file: file.to_path_buf(),
                line: 0,
                column: 0,
                message: message.into(),
            }],
        }
    }
}

/// Read and validate a policy file.
pub fn load(path: &Path) -> Result<Policy, PolicyError> {
    let text = read(path)?;
    load_str(&text, path)
}

/// [`load`], and the text the policy was read from (what its digest names).
pub fn load_with_text(path: &Path) -> Result<(Policy, String), PolicyError> {
    let text = read(path)?;
    Ok((load_str(&text, path)?, text))
}

/// Validate policy text; `source` names it in diagnostics.
pub fn load_str(text: &str, source: &Path) -> Result<Policy, PolicyError> {
    if text.len() as u64 > MAX_POLICY_BYTES {
        return Err(PolicyError::whole_file(
            source,
            format!("policy is larger than {MAX_POLICY_BYTES} bytes"),
        ));
    }
    validate::validate(text, source)
}

fn read(path: &Path) -> Result<String, PolicyError> {
    let fail = |what: String| PolicyError::whole_file(path, what);
    let mut file = std::fs::File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| fail(format!("cannot stat: {e}")))?;
    if meta.is_dir() {
        return Err(fail("is a directory, not a policy file".into()));
    }
    if !meta.is_file() {
        return Err(fail("is not a regular file".into()));
    }
    if meta.len() > MAX_POLICY_BYTES {
        return Err(fail(format!(
            "policy is {} bytes, larger than the {MAX_POLICY_BYTES}-byte limit",
            meta.len()
        )));
    }
    // Read at most one byte past the cap in case the file grows meanwhile.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.by_ref()
        .take(MAX_POLICY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_POLICY_BYTES {
        return Err(fail(format!(
            "policy is larger than the {MAX_POLICY_BYTES}-byte limit"
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        // Safe: `good` is the valid UTF-8 prefix.
        let prefix = std::str::from_utf8(good).unwrap_or_default();
        let line = prefix.matches('\n').count() + 1;
        let column = prefix
            .rsplit_once('\n')
            .map_or(prefix, |(_, l)| l)
            .chars()
            .count()
            + 1;
        PolicyError {
            diagnostics: vec![Diagnostic {
                file: path.to_path_buf(),
                line,
                column,
                message: "file is not valid UTF-8".into(),
            }],
        }
    })
}

#[cfg(test)]
mod tests {
    use super::model::*;
    use super::*;
    use crate::severity::Severity;

    const HARDENED: &str = include_str!("../../policies/production-hardened.yaml");
    const EGRESS: &str = include_str!("../../policies/egress-lockdown.yaml");

    #[test]
    fn the_seed_example_loads_into_the_model() {
        let p = load_str(HARDENED, Path::new("production-hardened.yaml")).unwrap();
        assert_eq!(p.version, "2.0");
        assert_eq!(p.metadata.name.as_deref(), Some("hardened-policy"));
        assert_eq!(
            p.tools.allow,
            Some(vec!["read_file".to_string(), "list_directory".to_string()])
        );
        assert_eq!(p.schemas["read_file"]["required"][0], "path");
        let d = p.discovery.as_ref().unwrap();
        assert!(d.enabled);
        assert_eq!(
            d.methods,
            [DiscoveryMethod::ConfigFiles, DiscoveryMethod::Processes]
        );
        assert_eq!(d.on_findings["unmanaged_server"], OnFinding::Warn);
        assert_eq!(d.on_findings["secret_in_config"], OnFinding::Warn);
        let k = p.kill_switch.as_ref().unwrap();
        assert!(k.enabled && k.kill_children && k.capture_state);
        assert_eq!(k.mode, KillMode::Graceful);
        assert_eq!(k.grace_period_ms, 3000);
        assert_eq!(k.output_dir, PathBuf::from(".assay/incidents"));
        assert_eq!(
            k.triggers,
            [KillTrigger {
                on_rule: "sensitive-file-access".into(),
                mode: KillMode::Immediate
            }]
        );
        let m = p.runtime_monitor.as_ref().unwrap();
        assert!(!m.enabled);
        assert_eq!(m.provider, "ebpf");
        let r = &m.rules[0];
        assert_eq!(r.id, "sensitive-file-access");
        assert_eq!(r.severity, Severity::Critical);
        assert_eq!(r.action, Action::TriggerKill);
        let Matcher::FileOpen(f) = &r.matcher else {
            panic!("{r:?}")
        };
        let forms: Vec<&GlobForm> = f.path_globs.iter().map(|g| &g.form).collect();
        assert_eq!(
            forms,
            [
                &GlobForm::Exact("/etc/shadow".into()),
                &GlobForm::InDirNamed(".ssh".into()),
                &GlobForm::Basename(".env".into()),
            ]
        );
        assert!(f.except.is_empty());
    }

    #[test]
    fn net_rules_load_with_defaults_and_ranges() {
        let p = load_str(EGRESS, Path::new("egress-lockdown.yaml")).unwrap();
        let rules = &p.runtime_monitor.as_ref().unwrap().rules;
        let Matcher::NetConnect(ports) = &rules[0].matcher else {
            panic!()
        };
        assert_eq!(ports.ports, [22, 23, 3389, 5432, 6379, 27017, 27018, 27019]);
        assert!(ports.outside_cidrs.is_empty());
        assert_eq!(ports.protocols, [Protocol::Tcp, Protocol::Udp]);
        assert_eq!(ports.loopback, Loopback::Match);
        let Matcher::NetConnect(allow) = &rules[1].matcher else {
            panic!()
        };
        let cidrs: Vec<String> = allow.outside_cidrs.iter().map(|c| c.to_string()).collect();
        assert_eq!(cidrs, ["10.20.0.0/16", "192.168.10.0/24", "fd00:20::/32"]);
        assert_eq!(allow.loopback, Loopback::Ignore);
        assert!(allow.ports.is_empty());
        // Without ports the default covers ICMP too.
        assert_eq!(allow.protocols, Protocol::ALL);
        let Matcher::NetConnect(dns) = &rules[2].matcher else {
            panic!()
        };
        assert_eq!(dns.protocols, [Protocol::Udp, Protocol::Tcp]);
    }

    #[test]
    fn every_error_is_collected_and_displayed_one_per_line() {
        let text =
            "version: \"2.0\"\nbogus: 1\nkill_switch:\n  mode: fast\n  grace_period_ms: -1\n";
        let e = load_str(text, Path::new("p.yaml")).unwrap_err();
        let lines: Vec<String> = e.to_string().lines().map(String::from).collect();
        assert_eq!(lines.len(), 3, "{e}");
        assert!(lines[0].starts_with("p.yaml:2:1: unknown key `bogus`"));
        assert!(lines[1].starts_with("p.yaml:4:9: unknown kill_switch.mode `fast`"));
        assert!(lines[2].starts_with("p.yaml:5:20: "));
        assert_eq!(e.diagnostics[1].line, 4);
        assert_eq!(e.diagnostics[1].column, 9);
    }

    #[test]
    fn defaults_for_absent_keys() {
        let text = "version: \"2.0\"\ndiscovery: {}\nkill_switch: {}\nruntime_monitor: {}\n";
        let p = load_str(text, Path::new("p.yaml")).unwrap();
        let d = p.discovery.unwrap();
        assert!(d.enabled);
        assert_eq!(d.methods.len(), 2);
        assert_eq!(d.on_findings.len(), 3);
        let k = p.kill_switch.unwrap();
        assert!(!k.enabled);
        assert_eq!(k.mode, KillMode::Graceful);
        assert_eq!(k.grace_period_ms, 3000);
        assert!(k.kill_children && k.capture_state);
        let m = p.runtime_monitor.unwrap();
        assert!(!m.enabled);
        assert_eq!(m.provider, "ebpf");
        assert!(m.rules.is_empty());
        assert_eq!(p.tools, Tools::default());
    }

    #[test]
    fn icmp_is_covered_without_ports_and_refused_with_them() {
        let rule = |m: &str| {
            format!(
                "version: \"2.0\"\nruntime_monitor:\n  rules:\n    - id: r\n      type: net_connect\n      match: {m}\n      severity: low\n      action: deny\n"
            )
        };
        let protocols = |m: &str| {
            let p = load_str(&rule(m), Path::new("p.yaml")).unwrap();
            let Matcher::NetConnect(n) = &p.runtime_monitor.unwrap().rules[0].matcher else {
                panic!()
            };
            n.protocols.clone()
        };
        assert_eq!(protocols("{outside_cidrs: [10.0.0.0/8]}"), Protocol::ALL);
        assert_eq!(
            protocols("{outside_cidrs: [10.0.0.0/8], ports: [22]}"),
            [Protocol::Tcp, Protocol::Udp]
        );
        assert_eq!(
            protocols("{outside_cidrs: [10.0.0.0/8], protocols: [icmp]}"),
            [Protocol::Icmp]
        );
        let e = load_str(
            &rule("{ports: [22], protocols: [udp, icmp]}"),
            Path::new("p.yaml"),
        )
        .unwrap_err();
        assert_eq!(e.diagnostics.len(), 1, "{e}");
        assert!(
            e.to_string().starts_with("p.yaml:6:45: icmp has no ports"),
            "{e}"
        );
    }

    #[test]
    fn port_expansion_is_bounded() {
        let mut text = String::from("version: \"2.0\"\nruntime_monitor:\n  rules:\n");
        for i in 0..17 {
            text.push_str(&format!(
                "    - {{id: r{i}, type: net_connect, match: {{ports: [\"1-65535\"]}}, severity: low, action: log}}\n"
            ));
        }
        let e = load_str(&text, Path::new("p.yaml")).unwrap_err();
        assert_eq!(e.diagnostics.len(), 1, "{e}");
        assert!(e.to_string().contains("ports in total"), "{e}");
        assert_eq!(e.diagnostics[0].line, 20);
    }

    #[test]
    fn oversized_text_is_refused() {
        let big = "#".repeat(MAX_POLICY_BYTES as usize + 1);
        let e = load_str(&big, Path::new("big.yaml")).unwrap_err();
        assert!(e.to_string().contains("larger than"));
    }
}
