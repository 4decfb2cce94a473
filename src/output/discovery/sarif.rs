//! `assay discover --format sarif`: SARIF 2.1.0.
//!
//! One rule per finding kind (`discovery/<kebab-id>`); a finding about a
//! server points at the artifact `mcp://<client>/<server>` relative to the
//! `DISCOVERY_ROOT` base id (defined in `originalUriBaseIds`), with the
//! config file as a related location; `properties.server_cmd` carries the
//! redacted launch line. Source errors point at the config file itself.

use serde_json::{Value, json};

use crate::discovery::{Finding, Report, Rule};
use crate::severity::Severity;

pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub code scanning reads this 0.0-10.0 score to rank alerts.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "1.0",
    }
}

fn camel(id: &str) -> String {
    id.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Percent-encode one URI path segment (RFC 3986 unreserved kept).
fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn file_uri(p: &std::path::Path) -> String {
    let text = p.display().to_string().replace('\\', "/");
    let encoded: Vec<String> = text.split('/').map(seg).collect();
    let joined = encoded.join("/");
    if joined.starts_with('/') {
        format!("file://{joined}")
    } else {
        format!("file:///{joined}")
    }
}

/// `mcp://<client>/<server>` for a finding: the location it concerns when
/// it has one, else the server's id.
fn artifact_uri(r: &Report, f: &Finding) -> Option<String> {
    let id = f.server_id.as_deref()?;
    let server = r.server(id);
    if let (Some(client), Some(path), Some(sv)) = (f.client, f.path.as_ref(), server) {
        if let Some(l) = sv
            .locations
            .iter()
            .find(|l| l.client == client && &l.path == path)
        {
            return Some(format!("mcp://{}/{}", seg(client), seg(&l.name)));
        }
    }
    let (client, name) = id.split_once('/').unwrap_or(("process", id));
    Some(format!("mcp://{}/{}", seg(client), seg(name)))
}

pub fn to_value(r: &Report) -> Value {
    let rules: Vec<Value> = Rule::ALL
        .iter()
        .map(|rule| {
            json!({
                "id": rule.sarif_id(),
                "name": camel(rule.id()),
                "shortDescription": { "text": rule.description() },
                "fullDescription": { "text": rule.description() },
                "defaultConfiguration": { "level": level(rule.max_severity()) },
                "help": { "text": format!("See docs/discovery.md, rule `{}`.", rule.id()) },
                "properties": {
                    "tags": ["security", "mcp"],
                    "security-severity": security_severity(rule.max_severity()),
                    "assay_rule": rule.id(),
                }
            })
        })
        .collect();
    let results: Vec<Value> = r
        .findings
        .iter()
        .map(|f| {
            let rule_index = Rule::ALL.iter().position(|x| *x == f.rule).unwrap_or(0);
            let server = f.server_id.as_deref().and_then(|id| r.server(id));
            let mut props = serde_json::Map::new();
            props.insert("severity".into(), json!(f.severity.as_str()));
            props.insert("security-severity".into(), json!(security_severity(f.severity)));
            if let Some(sv) = server {
                props.insert("server_cmd".into(), json!(sv.command_line));
                props.insert("server_id".into(), json!(sv.id));
                props.insert("transport".into(), json!(sv.transport.kind()));
            }
            if let Some(e) = &f.evidence {
                props.insert("evidence".into(), json!(e));
            }
            if let Some(p) = f.pid {
                props.insert("pid".into(), json!(p));
            }
            let mut result = json!({
                "ruleId": f.rule.sarif_id(),
                "ruleIndex": rule_index,
                "level": level(f.severity),
                "message": { "text": f.message },
                "partialFingerprints": {
                    "assayFinding/v1": format!(
                        "{:016x}",
                        crate::discovery::fnv1a(&format!(
                            "{}\0{}\0{}\0{}",
                            f.rule.id(),
                            f.server_id.as_deref().unwrap_or(""),
                            f.client.unwrap_or(""),
                            f.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
                        ))
                    )
                },
                "properties": Value::Object(props),
            });
            let location = match artifact_uri(r, f) {
                Some(uri) => json!({
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri, "uriBaseId": "DISCOVERY_ROOT" }
                    },
                    "logicalLocations": [{
                        "name": f.server_id.as_deref().unwrap_or(""),
                        "kind": "module"
                    }]
                }),
                None => json!({
                    "physicalLocation": {
                        "artifactLocation": {
                            "uri": f.path.as_deref().map(file_uri).unwrap_or_else(|| "mcp://unknown".into())
                        }
                    }
                }),
            };
            result["locations"] = json!([location]);
            if let (Some(path), Some(_)) = (&f.path, &f.server_id) {
                result["relatedLocations"] = json!([{
                    "id": 0,
                    "physicalLocation": { "artifactLocation": { "uri": file_uri(path) } },
                    "message": { "text": format!("configured in {}", path.display()) }
                }]);
            }
            result
        })
        .collect();
    json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "assay",
                    "version": env!("CARGO_PKG_VERSION"),
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "originalUriBaseIds": {
                "DISCOVERY_ROOT": {
                    "uri": "mcp://",
                    "description": { "text": "MCP servers by client: mcp://<client>/<server>" }
                }
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    })
}

pub fn render(r: &Report) -> anyhow::Result<String> {
    crate::output::to_json_pretty(&to_value(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_encoded() {
        assert_eq!(seg("my server/x"), "my%20server%2Fx");
        assert_eq!(
            file_uri(std::path::Path::new("/h/a b/.mcp.json")),
            "file:///h/a%20b/.mcp.json"
        );
        assert_eq!(camel("no_auth"), "NoAuth");
    }
}
