//! Renderers for `assay policy validate` and `assay policy check`.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Format, Style};
use crate::policy::model::{Matcher, Policy};
use crate::policy::{Decision, Diagnostic, PolicyError};

/// The outcome of validating one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileResult {
    pub file: PathBuf,
    pub valid: bool,
    /// Present when valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    pub diagnostics: Vec<Diagnostic>,
}

/// What a valid policy contains, for a quick look.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// `null` when there is no allow list (every tool not denied is allowed).
    pub tools_allowed: Option<usize>,
    pub tools_denied: usize,
    pub schemas: usize,
    pub file_rules: usize,
    pub net_rules: usize,
    pub kill_triggers: usize,
    pub discovery: bool,
    pub kill_switch: bool,
    pub runtime_monitor: bool,
}

impl FileResult {
    pub fn new(file: &Path, result: Result<Policy, PolicyError>) -> FileResult {
        match result {
            Ok(p) => {
                let rules = p.runtime_monitor.as_ref().map_or(&[][..], |m| &m.rules[..]);
                let file_rules = rules
                    .iter()
                    .filter(|r| matches!(r.matcher, Matcher::FileOpen(_)))
                    .count();
                FileResult {
                    file: file.to_path_buf(),
                    valid: true,
                    version: Some(p.version.clone()),
                    summary: Some(Summary {
                        tools_allowed: p.tools.allow.as_ref().map(Vec::len),
                        tools_denied: p.tools.deny.len(),
                        schemas: p.schemas.len(),
                        file_rules,
                        net_rules: rules.len() - file_rules,
                        kill_triggers: p.kill_switch.as_ref().map_or(0, |k| k.triggers.len()),
                        discovery: p.discovery.as_ref().is_some_and(|d| d.enabled),
                        kill_switch: p.kill_switch.as_ref().is_some_and(|k| k.enabled),
                        runtime_monitor: p.runtime_monitor.as_ref().is_some_and(|m| m.enabled),
                    }),
                    diagnostics: Vec::new(),
                }
            }
            Err(e) => FileResult {
                file: file.to_path_buf(),
                valid: false,
                version: None,
                summary: None,
                diagnostics: e.diagnostics,
            },
        }
    }
}

/// `policy validate --format json`: one document for all files.
#[derive(Debug, Serialize)]
pub struct ValidateReport<'a> {
    pub schema: &'static str,
    pub valid: bool,
    pub files: &'a [FileResult],
}

impl<'a> ValidateReport<'a> {
    pub fn new(files: &'a [FileResult]) -> Self {
        ValidateReport {
            schema: "assay.policy.validate/v1",
            valid: files.iter().all(|f| f.valid),
            files,
        }
    }
}

/// `policy validate`'s stdout: a line per file, or one JSON document.
pub fn render_validate(
    results: &[FileResult],
    format: Format,
    style: Style,
) -> anyhow::Result<String> {
    match format {
        Format::Table => Ok(validate_table(results, style)),
        Format::Json => super::to_json_pretty(&ValidateReport::new(results)),
    }
}

/// Every diagnostic of every file, one `file:line:column: message` per line.
pub fn diagnostics_text(results: &[FileResult]) -> String {
    let mut s = String::new();
    for d in results.iter().flat_map(|r| &r.diagnostics) {
        s.push_str(&d.to_string());
        s.push('\n');
    }
    s
}

/// One line per file for people: valid files with what they hold, invalid
/// files with their error count (the errors themselves are on stderr).
pub fn validate_table(results: &[FileResult], style: Style) -> String {
    let mut s = String::new();
    for r in results {
        let file = r.file.display();
        match &r.summary {
            Some(sum) => {
                let tools = match sum.tools_allowed {
                    Some(n) => format!("{n} allowed"),
                    None => "not listed (any not denied)".into(),
                };
                s.push_str(&format!(
                    "{}  {file}  version {}: tools {tools}, {} denied; {} schemas; {} file rules, {} net rules; {} kill triggers\n",
                    style.green("valid  "),
                    r.version.as_deref().unwrap_or("?"),
                    sum.tools_denied,
                    sum.schemas,
                    sum.file_rules,
                    sum.net_rules,
                    sum.kill_triggers,
                ));
            }
            None => {
                let n = r.diagnostics.len();
                s.push_str(&format!(
                    "{}  {file}  {n} error{}\n",
                    style.red("invalid"),
                    if n == 1 { "" } else { "s" }
                ));
            }
        }
    }
    s
}

/// The `schema` of every `policy check` decision line.
pub const CHECK_SCHEMA: &str = "assay.policy.check/v1";

#[derive(Serialize)]
struct DecisionLine<'a> {
    schema: &'static str,
    line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a serde_json::Value>,
    #[serde(flatten)]
    decision: &'a Decision,
}

/// One `policy check` decision as a JSON line (with the newline).
pub fn decision_line(
    line: usize,
    id: Option<&serde_json::Value>,
    decision: &Decision,
) -> anyhow::Result<String> {
    let mut s = serde_json::to_string(&DecisionLine {
        schema: CHECK_SCHEMA,
        line,
        id,
        decision,
    })?;
    s.push('\n');
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Reason;

    #[test]
    fn decision_lines_are_one_json_object() {
        let d = Decision {
            allowed: false,
            tool: "exec".into(),
            reasons: vec![Reason::DenyList],
        };
        let s = decision_line(3, Some(&serde_json::json!("a")), &d).unwrap();
        assert!(s.ends_with('\n') && !s.trim_end().contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"schema": "assay.policy.check/v1", "line": 3, "id": "a",
                "allowed": false, "tool": "exec",
                "reasons": [{"kind": "deny_list"}]})
        );
    }
}
