//! From a parsed document to server entries, per client shape. Every client
//! spells the same thing differently (`command` string/array/object, `env` /
//! `environment` / `envs`, `url` / `serverUrl` / `httpUrl` / `uri`, `disabled`
//! / `enabled`); one lenient reader covers them all.

use std::path::PathBuf;

use serde_json::{Map, Value};

use super::clients::{Scope, Shape};

/// How a remote server is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RemoteKind {
    Sse,
    StreamableHttp,
    /// `type: http` or unspecified over http(s).
    Http,
    WebSocket,
}

impl RemoteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RemoteKind::Sse => "sse",
            RemoteKind::StreamableHttp => "streamable-http",
            RemoteKind::Http => "http",
            RemoteKind::WebSocket => "ws",
        }
    }
}

/// What a config entry says about launching or reaching a server (raw: may
/// hold secrets; never rendered as is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    Stdio {
        /// Command followed by its arguments.
        argv: Vec<String>,
        env: Vec<(String, String)>,
        cwd: Option<String>,
    },
    Remote {
        kind: RemoteKind,
        url: String,
        headers: Vec<(String, String)>,
        /// OAuth block, bearer token env var, auth provider: authentication
        /// configured outside the headers.
        auth_configured: Option<String>,
    },
    /// Run by something else (a gateway, an editor extension): it exists, but
    /// the config does not say how it is launched.
    Other { detail: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub spec: Spec,
    pub disabled: bool,
    /// Scope override (Claude Code `projects` entries are `local`).
    pub scope: Option<Scope>,
    /// The project an entry belongs to (Claude Code `projects` map key).
    pub project: Option<PathBuf>,
}

/// Entries of a document, project roots it names, and notes on entries that
/// could not be understood.
#[derive(Debug, Default)]
pub struct Extracted {
    pub entries: Vec<Entry>,
    pub project_roots: Vec<PathBuf>,
    pub warnings: Vec<String>,
    /// Other files of servers the document points to, as written (a Claude
    /// Code plugin's `"mcpServers": "./config/servers.json"`).
    pub includes: Vec<String>,
}

pub fn extract(shape: Shape, doc: &Value) -> Extracted {
    let mut x = Extracted::default();
    let Some(root) = doc.as_object() else {
        if !doc.is_null() {
            x.warnings.push("document is not an object".into());
        }
        return x;
    };
    match shape {
        Shape::McpServers => map_at(&mut x, root.get("mcpServers"), "mcpServers"),
        Shape::McpServersOrFlat => {
            if root.contains_key("mcpServers") {
                map_at(&mut x, root.get("mcpServers"), "mcpServers");
            } else {
                let flat: Map<String, Value> = root
                    .iter()
                    .filter(|(_, v)| v.as_object().is_some_and(looks_like_server))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                map_at(&mut x, Some(&Value::Object(flat)), "");
            }
        }
        Shape::Servers => {
            map_at(&mut x, root.get("servers"), "servers");
            map_at(&mut x, root.get("mcpServers"), "mcpServers");
        }
        Shape::VsCodeSettings => vscode_settings(&mut x, root),
        Shape::CodeWorkspace => {
            if let Some(s) = root.get("settings").and_then(Value::as_object) {
                vscode_settings(&mut x, s);
            }
        }
        Shape::Devcontainer => {
            let v = root
                .get("customizations")
                .and_then(|c| c.get("vscode"))
                .and_then(|c| c.get("mcp"))
                .and_then(|c| c.get("servers"));
            map_at(&mut x, v, "customizations.vscode.mcp.servers");
        }
        Shape::ClaudeCodeUser => {
            map_at(&mut x, root.get("mcpServers"), "mcpServers");
            if let Some(projects) = root.get("projects").and_then(Value::as_object) {
                for (dir, p) in projects {
                    x.project_roots.push(PathBuf::from(dir));
                    let before = x.entries.len();
                    map_at(
                        &mut x,
                        p.get("mcpServers"),
                        &format!("projects[{dir}].mcpServers"),
                    );
                    for e in &mut x.entries[before..] {
                        e.scope = Some(Scope::Local);
                        e.project = Some(PathBuf::from(dir));
                    }
                }
            }
        }
        Shape::Kiro => {
            map_at(&mut x, root.get("mcpServers"), "mcpServers");
            map_at(
                &mut x,
                root.get("powers").and_then(|p| p.get("mcpServers")),
                "powers.mcpServers",
            );
        }
        Shape::Codex => map_at(&mut x, root.get("mcp_servers"), "mcp_servers"),
        Shape::Opencode => map_at(&mut x, root.get("mcp"), "mcp"),
        Shape::Crush => map_at(&mut x, root.get("mcp"), "mcp"),
        Shape::Zed => map_at(&mut x, root.get("context_servers"), "context_servers"),
        Shape::ContinueYaml => match root.get("mcpServers") {
            Some(Value::Array(list)) => list_of_named(&mut x, list, "mcpServers"),
            other => map_at(&mut x, other, "mcpServers"),
        },
        Shape::ContinueJson => {
            let list = root
                .get("experimental")
                .and_then(|e| e.get("modelContextProtocolServers"))
                .and_then(Value::as_array);
            for (i, item) in list.into_iter().flatten().enumerate() {
                let Some(obj) = item.as_object() else {
                    continue;
                };
                let name = obj
                    .get("name")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("server-{}", i + 1), str::to_string);
                let t = obj
                    .get("transport")
                    .and_then(Value::as_object)
                    .unwrap_or(obj);
                push(&mut x, &name, t);
            }
        }
        Shape::Goose => {
            if let Some(exts) = root.get("extensions").and_then(Value::as_object) {
                for (name, v) in exts {
                    let Some(obj) = v.as_object() else { continue };
                    // Built-in extensions run inside goose, not as servers.
                    if matches!(
                        obj.get("type").and_then(Value::as_str),
                        Some("builtin" | "platform" | "frontend" | "inline_python")
                    ) || obj.get("bundled").and_then(Value::as_bool) == Some(true)
                    {
                        continue;
                    }
                    push(&mut x, name, obj);
                }
            }
        }
        Shape::ClaudePlugin => match root.get("mcpServers") {
            Some(Value::String(p)) => x.includes.push(p.clone()),
            Some(Value::Array(list)) => {
                for (i, item) in list.iter().enumerate() {
                    match item {
                        Value::String(p) => x.includes.push(p.clone()),
                        Value::Object(m) => map_at(
                            &mut x,
                            Some(m.get("mcpServers").unwrap_or(item)),
                            &format!("mcpServers[{i}]"),
                        ),
                        _ => x
                            .warnings
                            .push(format!("mcpServers[{i}]: not a path or an object")),
                    }
                }
            }
            other => map_at(&mut x, other, "mcpServers"),
        },
        Shape::McpbManifest => mcpb_manifest(&mut x, root),
        Shape::ContinueBlock => match root.get("mcpServers") {
            Some(Value::Array(list)) => list_of_named(&mut x, list, "mcpServers"),
            Some(other) => map_at(&mut x, Some(other), "mcpServers"),
            None if looks_like_server(root) => {
                let name = root
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("server-1");
                push(&mut x, name, root);
            }
            None => {
                let flat: Map<String, Value> = root
                    .iter()
                    .filter(|(_, v)| v.as_object().is_some_and(looks_like_server))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                map_at(&mut x, Some(&Value::Object(flat)), "");
            }
        },
        Shape::DockerRegistry => {
            if let Some(reg) = root.get("registry").and_then(Value::as_object) {
                for (name, v) in reg {
                    let r = v.get("ref").and_then(Value::as_str).unwrap_or("");
                    x.entries.push(Entry {
                        name: name.clone(),
                        spec: Spec::Other {
                            detail: if r.is_empty() {
                                "run by the Docker MCP gateway".into()
                            } else {
                                format!("run by the Docker MCP gateway ({r})")
                            },
                        },
                        disabled: false,
                        scope: None,
                        project: None,
                    });
                }
            }
        }
    }
    x
}

/// A Claude Desktop extension manifest: its one server, named by the
/// manifest's `name`. `mcp_config` says how Claude Desktop launches it;
/// without one, the runtime `type` and `entry_point` do (paths stay
/// relative to `${__dirname}`, which the caller substitutes).
fn mcpb_manifest(x: &mut Extracted, root: &Map<String, Value>) {
    let Some(server) = root.get("server").and_then(Value::as_object) else {
        x.warnings.push("server: missing".into());
        return;
    };
    let name = root
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("extension");
    if let Some(cfg) = server.get("mcp_config").and_then(Value::as_object) {
        push(x, name, cfg);
        return;
    }
    let entry_point = server.get("entry_point").and_then(Value::as_str);
    let argv: Option<Vec<String>> = match (server.get("type").and_then(Value::as_str), entry_point)
    {
        (Some("node"), Some(e)) => Some(vec!["node".into(), format!("${{__dirname}}/{e}")]),
        (Some("python"), Some(e)) => Some(vec!["python".into(), format!("${{__dirname}}/{e}")]),
        (Some("binary"), Some(e)) => Some(vec![format!("${{__dirname}}/{e}")]),
        _ => None,
    };
    match argv {
        Some(argv) => x.entries.push(Entry {
            name: name.to_string(),
            spec: Spec::Stdio {
                argv,
                env: Vec::new(),
                cwd: None,
            },
            disabled: false,
            scope: None,
            project: None,
        }),
        None => x.warnings.push(format!(
            "{name}: server has no mcp_config and no type/entry_point"
        )),
    }
}

/// Replace `${VAR}`-style variables a client expands itself (an
/// extension's own directory) in the command, arguments and working
/// directory; env and headers keep theirs (they are references to show).
pub fn expand_vars(spec: &mut Spec, vars: &[(&str, &str)]) {
    let sub = |s: &mut String| {
        for (k, v) in vars {
            if s.contains(k) {
                *s = s.replace(k, v);
            }
        }
    };
    if let Spec::Stdio { argv, cwd, .. } = spec {
        argv.iter_mut().for_each(sub);
        if let Some(c) = cwd {
            sub(c);
        }
    }
}

fn vscode_settings(x: &mut Extracted, root: &Map<String, Value>) {
    if let Some(v) = root.get("mcp").and_then(|m| m.get("servers")) {
        map_at(x, Some(v), "mcp.servers");
    }
    if let Some(v) = root.get("mcp.servers") {
        map_at(x, Some(v), "\"mcp.servers\"");
    }
}

fn looks_like_server(o: &Map<String, Value>) -> bool {
    ["command", "url", "serverUrl", "httpUrl", "type"]
        .iter()
        .any(|k| o.contains_key(*k))
}

fn map_at(x: &mut Extracted, v: Option<&Value>, at: &str) {
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (name, e) in m {
                match e.as_object() {
                    Some(obj) => push(x, name, obj),
                    None => x.warnings.push(format!("{at}.{name}: not an object")),
                }
            }
        }
        Some(_) => x.warnings.push(format!("{at}: not an object")),
    }
}

fn list_of_named(x: &mut Extracted, list: &[Value], at: &str) {
    for (i, item) in list.iter().enumerate() {
        match item.as_object() {
            Some(obj) => {
                let name = obj
                    .get("name")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("server-{}", i + 1), str::to_string);
                push(x, &name, obj);
            }
            None => x.warnings.push(format!("{at}[{i}]: not an object")),
        }
    }
}

fn push(x: &mut Extracted, name: &str, obj: &Map<String, Value>) {
    match entry(name, obj) {
        Ok(e) => x.entries.push(e),
        Err(why) => x.warnings.push(format!("{name}: {why}")),
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn pairs(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), scalar(v).unwrap_or_else(|| v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(scalar).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn first_str<'a>(o: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| o.get(*k).and_then(Value::as_str))
        .filter(|s| !s.trim().is_empty())
}

fn truthy(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Why an object is not a server entry. The text becomes a source warning
/// (`<name>: <text>`), so it must not change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("no command and no url")]
    NoCommandOrUrl,
}

/// One server entry, whatever the client's spelling.
pub fn entry(name: &str, o: &Map<String, Value>) -> Result<Entry, EntryError> {
    let disabled =
        truthy(o.get("disabled")) == Some(true) || truthy(o.get("enabled")) == Some(false);
    let ty = first_str(o, &["type", "transport"]).map(str::to_ascii_lowercase);
    let url = first_str(o, &["url", "serverUrl", "httpUrl", "uri", "endpoint"]);

    // command: string, array (opencode), or object {path,args,env} (old Zed).
    let mut argv: Vec<String> = Vec::new();
    let mut env = Vec::new();
    match o.get("command").or_else(|| o.get("cmd")) {
        Some(Value::String(s)) if !s.trim().is_empty() => argv.push(s.clone()),
        Some(Value::Array(a)) => argv.extend(a.iter().filter_map(scalar)),
        Some(Value::Object(c)) => {
            if let Some(p) = c.get("path").and_then(Value::as_str) {
                argv.push(p.to_string());
            }
            argv.extend(strings(c.get("args")));
            env.extend(pairs(c.get("env")));
        }
        _ => {}
    }
    if !argv.is_empty() {
        argv.extend(strings(o.get("args")));
    }
    env.extend(pairs(o.get("env")));
    env.extend(pairs(o.get("environment")));
    env.extend(pairs(o.get("envs")));

    let remote_type = matches!(
        ty.as_deref(),
        Some(
            "sse"
                | "http"
                | "streamable-http"
                | "streamablehttp"
                | "streamable_http"
                | "ws"
                | "websocket"
                | "remote"
        )
    );
    let prefer_url = remote_type && url.is_some();
    let spec = if !argv.is_empty() && !prefer_url {
        Spec::Stdio {
            argv,
            env,
            cwd: first_str(o, &["cwd", "workingDirectory"]).map(str::to_string),
        }
    } else if let Some(url) = url {
        let lower = url.to_ascii_lowercase();
        let kind = match ty.as_deref() {
            Some("sse") => RemoteKind::Sse,
            Some("streamable-http" | "streamablehttp" | "streamable_http") => {
                RemoteKind::StreamableHttp
            }
            Some("ws" | "websocket") => RemoteKind::WebSocket,
            _ if lower.starts_with("ws://") || lower.starts_with("wss://") => RemoteKind::WebSocket,
            _ if o.contains_key("httpUrl") => RemoteKind::StreamableHttp,
            Some("http") => RemoteKind::Http,
            _ if url_path(&lower).trim_end_matches('/').ends_with("/sse") => RemoteKind::Sse,
            _ => RemoteKind::Http,
        };
        let mut headers = pairs(o.get("headers"));
        headers.extend(pairs(o.get("http_headers")));
        if let Some(h) = o.get("requestInit").and_then(|r| r.get("headers")) {
            headers.extend(pairs(Some(h)));
        }
        Spec::Remote {
            kind,
            url: url.to_string(),
            headers,
            auth_configured: auth_outside_headers(o),
        }
    } else if o.get("source").and_then(Value::as_str) == Some("extension") {
        Spec::Other {
            detail: "provided by an editor extension".into(),
        }
    } else {
        return Err(EntryError::NoCommandOrUrl);
    };
    Ok(Entry {
        name: name.to_string(),
        spec,
        disabled,
        scope: None,
        project: None,
    })
}

/// The path of a URL: what follows the authority, without query or
/// fragment (`/sse?api_key=x` is an SSE endpoint; `/mcp?next=/sse` is not).
fn url_path(url: &str) -> &str {
    let rest = url.find("://").map_or(url, |i| &url[i + 3..]);
    let rest = rest.find('/').map_or("", |i| &rest[i..]);
    rest.split(['?', '#']).next().unwrap_or("")
}

/// Authentication configured by something other than a header.
fn auth_outside_headers(o: &Map<String, Value>) -> Option<String> {
    if let Some(v) = o.get("oauth") {
        if v != &Value::Bool(false) && !v.is_null() {
            return Some("oauth".into());
        }
    }
    for k in [
        "bearer_token_env_var",
        "bearer_token",
        "env_http_headers",
        "authProviderType",
        "auth",
        "authorization_token",
        "apiKey",
        "api_key",
        "token",
    ] {
        if o.get(k)
            .is_some_and(|v| !v.is_null() && v != &Value::Bool(false))
        {
            return Some(k.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(shape: Shape, doc: Value) -> Entry {
        let x = extract(shape, &doc);
        assert!(x.warnings.is_empty(), "{:?}", x.warnings);
        assert_eq!(x.entries.len(), 1, "{:?}", x.entries);
        x.entries.into_iter().next().unwrap()
    }

    #[test]
    fn an_entry_without_command_or_url_is_a_warning_with_the_same_text() {
        let obj = json!({"env": {"A": "1"}});
        let err = entry("x", obj.as_object().unwrap()).unwrap_err();
        assert_eq!(err, EntryError::NoCommandOrUrl);
        assert_eq!(err.to_string(), "no command and no url");
        let x = extract(Shape::McpServers, &json!({"mcpServers": {"x": obj}}));
        assert!(x.entries.is_empty());
        assert_eq!(x.warnings, ["x: no command and no url"]);
    }

    #[test]
    fn stdio_spellings() {
        let e = one(
            Shape::McpServers,
            json!({"mcpServers": {"fs": {"command": "npx", "args": ["-y", "x"], "env": {"A": "1"}}}}),
        );
        assert_eq!(
            e.spec,
            Spec::Stdio {
                argv: vec!["npx".into(), "-y".into(), "x".into()],
                env: vec![("A".into(), "1".into())],
                cwd: None
            }
        );
        let e = one(
            Shape::Opencode,
            json!({"mcp": {"x": {"type": "local", "command": ["bunx", "y"], "environment": {"B": "2"}, "enabled": false}}}),
        );
        assert!(e.disabled);
        assert!(
            matches!(e.spec, Spec::Stdio { ref argv, ref env, .. } if argv == &["bunx", "y"] && env.len() == 1)
        );
        let e = one(
            Shape::Zed,
            json!({"context_servers": {"z": {"command": {"path": "z-mcp", "args": ["a"], "env": {}}}}}),
        );
        assert!(matches!(e.spec, Spec::Stdio { ref argv, .. } if argv == &["z-mcp", "a"]));
        let e = one(
            Shape::Goose,
            json!({"extensions": {"g": {"cmd": "uvx", "args": ["mcp-x"], "envs": {"K": "v"}, "type": "stdio", "enabled": true}, "developer": {"type": "builtin"}}}),
        );
        assert_eq!(e.name, "g");
        let e = one(
            Shape::ContinueYaml,
            json!({"mcpServers": [{"name": "c", "command": "c-mcp"}]}),
        );
        assert_eq!(e.name, "c");
        let e = one(
            Shape::ContinueJson,
            json!({"experimental": {"modelContextProtocolServers": [{"transport": {"type": "stdio", "command": "uvx", "args": ["m"]}}]}}),
        );
        assert_eq!(e.name, "server-1");
    }

    #[test]
    fn remote_spellings() {
        let kind = |v: Value| match one(Shape::McpServers, json!({"mcpServers": {"r": v}})).spec {
            Spec::Remote { kind, .. } => kind,
            s => panic!("{s:?}"),
        };
        assert_eq!(kind(json!({"url": "https://x/sse"})), RemoteKind::Sse);
        assert_eq!(kind(json!({"url": "https://x/mcp"})), RemoteKind::Http);
        // The path decides, not the whole URL.
        assert_eq!(
            kind(json!({"url": "https://x/sse?api_key=k"})),
            RemoteKind::Sse
        );
        assert_eq!(kind(json!({"url": "https://x/sse/#top"})), RemoteKind::Sse);
        assert_eq!(
            kind(json!({"url": "https://x/mcp?next=/sse"})),
            RemoteKind::Http
        );
        assert_eq!(kind(json!({"url": "https://sse"})), RemoteKind::Http);
        assert_eq!(
            kind(json!({"serverUrl": "https://x/mcp", "type": "streamable-http"})),
            RemoteKind::StreamableHttp
        );
        assert_eq!(
            kind(json!({"httpUrl": "https://x/mcp"})),
            RemoteKind::StreamableHttp
        );
        assert_eq!(
            kind(json!({"type": "ws", "url": "wss://x"})),
            RemoteKind::WebSocket
        );
        match one(
            Shape::Codex,
            json!({"mcp_servers": {"c": {"url": "https://x", "bearer_token_env_var": "T"}}}),
        )
        .spec
        {
            Spec::Remote {
                auth_configured, ..
            } => assert_eq!(auth_configured.as_deref(), Some("bearer_token_env_var")),
            s => panic!("{s:?}"),
        }
    }

    #[test]
    fn plugin_manifests_extensions_and_blocks() {
        let x = extract(
            Shape::ClaudePlugin,
            &json!({"mcpServers": "./config/servers.json"}),
        );
        assert_eq!(
            (x.entries.len(), x.includes.clone()),
            (0, vec!["./config/servers.json".to_string()])
        );
        let x = extract(
            Shape::ClaudePlugin,
            &json!({"mcpServers": ["./a.json", {"inline": {"command": "i-mcp"}}, 3]}),
        );
        assert_eq!(x.includes, ["./a.json"]);
        assert_eq!(x.entries[0].name, "inline");
        assert_eq!(x.warnings, ["mcpServers[2]: not a path or an object"]);
        let e = one(
            Shape::ClaudePlugin,
            json!({"mcpServers": {"p": {"command": "p-mcp"}}}),
        );
        assert_eq!(e.name, "p");

        let e = one(
            Shape::McpbManifest,
            json!({"name": "notes", "server": {"type": "node", "entry_point": "s.js",
                   "mcp_config": {"command": "node", "args": ["${__dirname}/s.js"]}}}),
        );
        assert_eq!(e.name, "notes");
        let mut spec = e.spec;
        expand_vars(&mut spec, &[("${__dirname}", "/ext")]);
        assert!(matches!(&spec, Spec::Stdio { argv, .. } if argv == &["node", "/ext/s.js"]));
        let e = one(
            Shape::McpbManifest,
            json!({"name": "bin", "server": {"type": "binary", "entry_point": "bin/x"}}),
        );
        assert!(matches!(&e.spec, Spec::Stdio { argv, .. } if argv == &["${__dirname}/bin/x"]));
        let x = extract(Shape::McpbManifest, &json!({"name": "n"}));
        assert_eq!(x.warnings, ["server: missing"]);

        for doc in [
            json!({"mcpServers": {"b": {"command": "b-mcp"}}}),
            json!({"mcpServers": [{"name": "b", "command": "b-mcp"}]}),
            json!({"name": "b", "command": "b-mcp"}),
            json!({"b": {"command": "b-mcp"}}),
        ] {
            assert_eq!(one(Shape::ContinueBlock, doc).name, "b");
        }
    }

    #[test]
    fn shapes_and_warnings() {
        let x = extract(
            Shape::ClaudeCodeUser,
            &json!({"mcpServers": {"a": {"command": "a"}}, "projects": {"/p": {"mcpServers": {"b": {"command": "b"}}}, "/q": {}}}),
        );
        assert_eq!(x.entries.len(), 2);
        assert_eq!(x.entries[1].scope, Some(Scope::Local));
        assert_eq!(x.project_roots, [PathBuf::from("/p"), PathBuf::from("/q")]);
        let x = extract(
            Shape::VsCodeSettings,
            &json!({"mcp": {"servers": {"a": {"command": "a"}}}, "mcp.servers": {"b": {"url": "https://b"}}}),
        );
        assert_eq!(x.entries.len(), 2);
        let x = extract(
            Shape::McpServersOrFlat,
            &json!({"p": {"command": "p"}, "version": 2}),
        );
        assert_eq!(x.entries.len(), 1);
        let x = extract(
            Shape::McpServers,
            &json!({"mcpServers": {"bad": {"args": []}, "num": 3}}),
        );
        assert!(x.entries.is_empty());
        assert_eq!(x.warnings.len(), 2);
        let x = extract(Shape::McpServers, &json!([1]));
        assert_eq!(x.warnings, ["document is not an object"]);
    }
}
