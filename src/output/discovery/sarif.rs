//! `assay discover --format sarif`: SARIF 2.1.0, placed where code scanning
//! can annotate it.
//!
//! One rule per finding kind (`discovery/<kebab-id>`). A result's primary
//! location is the config file, relative to the `DISCOVERY_ROOT` base id
//! (the scanned home, or `/` for several homes, declared as an absolute
//! `file:` URI in `originalUriBaseIds`), with the region of the server's
//! entry, or of a parse error. The server's `mcp://<client>/<server>`
//! identity is a logical location and `properties.mcp_uri`;
//! `properties.server_cmd` carries the redacted launch line. A result known
//! only from a running process has a logical location alone (no file), and
//! says so. Files outside the root get absolute `file:` URIs.
//!
//! Rendering is pure ([`to_value`]); [`Places::gather`] does the file
//! system work (absolute and symlink-resolved roots, config texts).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::position;
use crate::discovery::{Finding, Location, Report, Rule, SourceStatus};
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

fn file_uri(p: &Path) -> String {
    let text = p.display().to_string().replace('\\', "/");
    let encoded: Vec<String> = text.split('/').map(seg).collect();
    let joined = encoded.join("/");
    if joined.starts_with('/') {
        format!("file://{joined}")
    } else {
        format!("file:///{joined}")
    }
}

/// A path relative to the root as a relative URI reference.
fn relative_uri(p: &Path) -> String {
    let parts: Vec<String> = p
        .components()
        .map(|c| seg(&c.as_os_str().to_string_lossy()))
        .collect();
    parts.join("/")
}

/// How a config file is named in the SARIF document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    pub uri: String,
    /// `uri` is relative to `DISCOVERY_ROOT`.
    pub relative: bool,
}

/// What rendering needs from the file system: the root, each reported
/// file's URI, and the text of the files whose entries get regions.
#[derive(Debug, Clone, Default)]
pub struct Places {
    /// `DISCOVERY_ROOT`: an absolute `file:` URI ending in `/`.
    pub root_uri: String,
    pub files: BTreeMap<PathBuf, FileRef>,
    pub texts: BTreeMap<PathBuf, String>,
}

impl Places {
    /// Resolve the report's paths against `cwd` (relative `--home`) and
    /// symlinks, so URIs name the real place; read the config texts.
    pub fn gather(r: &Report, cwd: &Path) -> Places {
        let absolute = |p: &Path| {
            let abs = if p.is_absolute() {
                p.to_path_buf()
            } else {
                cwd.join(p)
            };
            std::fs::canonicalize(&abs).unwrap_or(abs)
        };
        // One home is the root; several (--all-users) share `/`.
        let (given, root) = match r.scan.homes.as_slice() {
            [(home, _)] => (Some(home.clone()), absolute(home)),
            _ => (None, PathBuf::from("/")),
        };
        let mut root_uri = file_uri(&root);
        if !root_uri.ends_with('/') {
            root_uri.push('/');
        }
        let mut places = Places {
            root_uri,
            ..Places::default()
        };
        let mut paths: Vec<&Path> = r.sources.iter().map(|s| s.path.as_path()).collect();
        paths.extend(r.findings.iter().filter_map(|f| f.path.as_deref()));
        for sv in &r.servers {
            paths.extend(sv.locations.iter().map(|l| l.path.as_path()));
        }
        for p in paths {
            if places.files.contains_key(p) {
                continue;
            }
            let under = |rel: &Path| !rel.as_os_str().is_empty();
            let rel = given
                .as_deref()
                .and_then(|g| p.strip_prefix(g).ok())
                .filter(|rel| under(rel))
                .map(Path::to_path_buf)
                .or_else(|| {
                    let abs = absolute(p);
                    abs.strip_prefix(&root)
                        .ok()
                        .filter(|rel| under(rel))
                        .map(Path::to_path_buf)
                });
            let file = match rel {
                Some(rel) => FileRef {
                    uri: relative_uri(&rel),
                    relative: true,
                },
                None => FileRef {
                    uri: file_uri(&absolute(p)),
                    relative: false,
                },
            };
            places.files.insert(p.to_path_buf(), file);
        }
        let readable =
            |st: &SourceStatus| matches!(st, SourceStatus::Found | SourceStatus::ParseError { .. });
        for s in r.sources.iter().filter(|s| readable(&s.status)) {
            if let Ok(text) = std::fs::read_to_string(&s.path) {
                places.texts.insert(s.path.clone(), text);
            }
        }
        places
    }

    fn artifact(&self, p: &Path) -> Value {
        match self.files.get(p) {
            Some(FileRef {
                uri,
                relative: true,
            }) => json!({ "uri": uri, "uriBaseId": ROOT_ID }),
            Some(FileRef { uri, .. }) => json!({ "uri": uri }),
            None => json!({ "uri": file_uri(p) }),
        }
    }

    fn uri(&self, p: &Path) -> String {
        self.files
            .get(p)
            .map_or_else(|| file_uri(p), |f| f.uri.clone())
    }
}

/// The base id every relative URI is resolved against.
pub const ROOT_ID: &str = "DISCOVERY_ROOT";

/// `mcp://<client>/<server>` for a finding: the location it concerns when
/// it has one, else the server's id.
fn mcp_uri(r: &Report, f: &Finding) -> Option<String> {
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

/// The region of a server's entry in its config file. A file whose entry
/// cannot be found is annotated from its first line, so the result still
/// lands on the right file.
fn entry_region(r: &Report, places: &Places, loc: &Location) -> Value {
    let format = r
        .sources
        .iter()
        .find(|s| s.path == loc.path)
        .map_or("json", |s| s.format);
    let project = loc.project.as_ref().map(|p| p.display().to_string());
    let found = places
        .texts
        .get(&loc.path)
        .and_then(|t| position::entry(t, format, &loc.name, project.as_deref()));
    match found {
        Some(p) => json!({ "startLine": p.line, "startColumn": p.column }),
        None => json!({ "startLine": 1 }),
    }
}

/// The region of a source error: the parse error's position, else the
/// whole file from its first line (unreadable, too large).
fn source_region(r: &Report, path: &Path) -> Value {
    let status = r.sources.iter().find(|s| s.path == path).map(|s| &s.status);
    match status {
        Some(SourceStatus::ParseError { line, column, .. }) if *line > 0 => {
            json!({ "startLine": line, "startColumn": (*column).max(1) })
        }
        _ => json!({ "startLine": 1 }),
    }
}

fn logical(mcp: &str, server_id: &str) -> Value {
    json!([{
        "name": server_id,
        "fullyQualifiedName": mcp,
        "kind": "resource"
    }])
}

fn result(r: &Report, places: &Places, f: &Finding) -> Value {
    let rule_index = Rule::ALL.iter().position(|x| *x == f.rule).unwrap_or(0);
    let server = f.server_id.as_deref().and_then(|id| r.server(id));
    let mcp = mcp_uri(r, f);
    // The config place the finding concerns: its own, else (unless it came
    // from a process) the server's first.
    let place: Option<&Location> = server.and_then(|sv| match (&f.path, f.client) {
        (Some(path), client) => sv
            .locations
            .iter()
            .find(|l| &l.path == path && client.is_none_or(|c| c == l.client)),
        (None, _) if f.pid.is_none() => sv.locations.first(),
        (None, _) => None,
    });
    let mut props = serde_json::Map::new();
    props.insert("severity".into(), json!(f.severity.as_str()));
    props.insert(
        "security-severity".into(),
        json!(security_severity(f.severity)),
    );
    if let Some(sv) = server {
        props.insert("server_cmd".into(), json!(sv.command_line));
        props.insert("server_id".into(), json!(sv.id));
        props.insert("transport".into(), json!(sv.transport.kind()));
    }
    if let Some(m) = &mcp {
        props.insert("mcp_uri".into(), json!(m));
    }
    if let Some(e) = &f.evidence {
        props.insert("evidence".into(), json!(e));
    }
    if let Some(p) = f.pid {
        props.insert("pid".into(), json!(p));
    }
    let (location, fingerprint_place) = match (place, &f.path, &mcp) {
        (Some(loc), _, _) => {
            let mut l = json!({
                "physicalLocation": {
                    "artifactLocation": places.artifact(&loc.path),
                    "region": entry_region(r, places, loc),
                }
            });
            if let Some(m) = &mcp {
                l["logicalLocations"] = logical(m, f.server_id.as_deref().unwrap_or(""));
            }
            props.insert("origin".into(), json!("config"));
            (Some(l), places.uri(&loc.path))
        }
        (None, Some(path), _) => {
            props.insert("origin".into(), json!("config_file"));
            let l = json!({
                "physicalLocation": {
                    "artifactLocation": places.artifact(path),
                    "region": source_region(r, path),
                }
            });
            (Some(l), places.uri(path))
        }
        (None, None, Some(m)) => {
            // Seen only as a running process: no file to point at.
            props.insert("origin".into(), json!("process"));
            let what = match f.pid {
                Some(pid) => format!("running process (pid {pid}); no config file names it"),
                None => "running process; no config file names it".to_string(),
            };
            let l = json!({
                "logicalLocations": logical(m, f.server_id.as_deref().unwrap_or("")),
                "message": { "text": what },
            });
            (Some(l), m.clone())
        }
        (None, None, None) => (None, String::new()),
    };
    let fingerprint = format!(
        "{:016x}",
        crate::discovery::fnv1a(&format!(
            "{}\0{}\0{}\0{}",
            f.rule.id(),
            f.server_id.as_deref().unwrap_or(""),
            f.client.unwrap_or(""),
            fingerprint_place
        ))
    );
    let mut out = json!({
        "ruleId": f.rule.sarif_id(),
        "ruleIndex": rule_index,
        "level": level(f.severity),
        "message": { "text": f.message },
        "partialFingerprints": { "assayFinding/v1": fingerprint },
        "properties": Value::Object(props),
    });
    if let Some(l) = location {
        out["locations"] = json!([l]);
    }
    // The server's other config places, so each can be found from the alert.
    if let Some(sv) = server {
        let related: Vec<Value> = sv
            .locations
            .iter()
            .filter(|l| Some(*l) != place)
            .enumerate()
            .map(|(i, l)| {
                json!({
                    "id": i + 1,
                    "physicalLocation": {
                        "artifactLocation": places.artifact(&l.path),
                        "region": entry_region(r, places, l),
                    },
                    "message": { "text": format!("also configured in {} as `{}`", l.client, l.name) }
                })
            })
            .collect();
        if !related.is_empty() {
            out["relatedLocations"] = json!(related);
        }
    }
    out
}

pub fn to_value(r: &Report, places: &Places) -> Value {
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
    let results: Vec<Value> = r.findings.iter().map(|f| result(r, places, f)).collect();
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
                ROOT_ID: {
                    "uri": places.root_uri,
                    "description": { "text": "The scanned home directory (/ for several homes); server identities are mcp://<client>/<server>" }
                }
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    })
}

pub fn render(r: &Report) -> anyhow::Result<String> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    crate::output::to_json_pretty(&to_value(r, &Places::gather(r, &cwd)))
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
