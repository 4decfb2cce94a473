//! Whether a configured server is active when the decision is kept outside
//! its entry: Claude Code's approval lists for project `.mcp.json` servers
//! and its managed allow/deny lists, Gemini CLI's `mcp.excluded` /
//! `mcp.allowed`. Settings files are read once each (cached); deciding is
//! pure ([`claude_code`], [`gemini`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::clients::{self, Format};
use super::extract::Spec;
use super::sources::{self, Home};
use super::{Configured, Options, Scope};

/// One settings document: where it is (for the report) and its content.
pub(super) struct Doc<'a> {
    pub path: &'a Path,
    pub value: &'a Value,
}

/// Why an entry is inactive: the settings file and key that say so.
pub(super) type Verdict = Option<String>;

fn names<'v>(doc: &'v Value, pointer: &str) -> Option<Vec<&'v str>> {
    doc.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
}

fn says(doc: &Doc, key: &str) -> String {
    format!("{} {key}", doc.path.display())
}

/// A Claude Code entry. `approval`: the documents that approve or reject
/// project `.mcp.json` servers, most specific first (local settings,
/// project settings, `~/.claude.json` project entry, user settings; only
/// for project-scope entries). `managed`: managed-settings files, whose
/// `deniedMcpServers` / `allowedMcpServers` apply to every scope.
/// Rejection anywhere wins over approval (that is how Claude Code merges
/// list settings: the lists are concatenated).
pub(super) fn claude_code(c: &Configured, approval: &[Doc], managed: &[Doc]) -> Verdict {
    let name = c.location.name.as_str();
    for d in managed {
        if let Some(list) = d.value.get("deniedMcpServers").and_then(Value::as_array) {
            if list.iter().any(|e| server_matches(e, c)) {
                return Some(says(d, "deniedMcpServers"));
            }
        }
        if let Some(list) = d.value.get("allowedMcpServers").and_then(Value::as_array) {
            if !list.iter().any(|e| server_matches(e, c)) {
                return Some(format!("{} (not listed)", says(d, "allowedMcpServers")));
            }
        }
    }
    for d in approval {
        if names(d.value, "/disabledMcpjsonServers").is_some_and(|l| l.contains(&name)) {
            return Some(says(d, "disabledMcpjsonServers"));
        }
    }
    None
}

/// A managed allow/deny entry: `{serverName}`, `{serverCommand: [argv]}`
/// (exact) or `{serverUrl: "https://*.corp.example/*"}` (`*` wildcards).
fn server_matches(e: &Value, c: &Configured) -> bool {
    if let Some(n) = e.get("serverName").and_then(Value::as_str) {
        return n == c.location.name;
    }
    if let Some(cmd) = e.get("serverCommand").and_then(Value::as_array) {
        let want: Vec<&str> = cmd.iter().filter_map(Value::as_str).collect();
        return matches!(&c.entry.spec, Spec::Stdio { argv, .. } if argv.iter().map(String::as_str).eq(want.iter().copied()));
    }
    if let Some(pat) = e.get("serverUrl").and_then(Value::as_str) {
        return matches!(&c.entry.spec, Spec::Remote { url, .. } if wildcard(pat, url));
    }
    false
}

/// `*` matches any run of characters; everything else literally.
fn wildcard(pat: &str, s: &str) -> bool {
    let parts: Vec<&str> = pat.split('*').collect();
    if parts.len() == 1 {
        return pat == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// A Gemini CLI entry. `docs`: the settings that apply to it, most
/// specific first (system settings override, so they come first; then the
/// workspace's for a project entry; then the user's). A name in any
/// `mcp.excluded` (or legacy `excludeMCPServers`) is inactive; when an
/// allow list (`mcp.allowed`, legacy `allowMCPServers`) is set, the most
/// specific one decides.
pub(super) fn gemini(c: &Configured, docs: &[Doc]) -> Verdict {
    let name = c.location.name.as_str();
    for d in docs {
        for key in ["/mcp/excluded", "/excludeMCPServers"] {
            if names(d.value, key).is_some_and(|l| l.contains(&name)) {
                return Some(says(d, &key[1..].replace('/', ".")));
            }
        }
    }
    for d in docs {
        for key in ["/mcp/allowed", "/allowMCPServers"] {
            if let Some(l) = names(d.value, key) {
                return (!l.contains(&name))
                    .then(|| format!("{} (not listed)", says(d, &key[1..].replace('/', "."))));
            }
        }
    }
    None
}

/// A Claude Desktop extension: disabled when its settings file
/// (`Claude Extensions Settings/<id>.json`, next to `Claude Extensions/`)
/// says `isEnabled: false`.
pub(super) fn claude_desktop_extension(settings: Option<&Doc>) -> Verdict {
    let d = settings?;
    (d.value.get("isEnabled") == Some(&Value::Bool(false))).then(|| says(d, "isEnabled"))
}

/// A Gemini CLI extension's servers: disabled when the extension's entry in
/// `extension-enablement.json` disables it for the home directory. Its
/// `overrides` are path rules (`/home/u/*`, `!` to disable; `/*` also
/// covers subdirectories) read in order, the last that covers the home
/// deciding; rules for narrower directories (one workspace) do not.
pub(super) fn gemini_extension(enablement: Option<&Doc>, ext: &str, home: &Path) -> Verdict {
    let d = enablement?;
    let rules = names(
        d.value,
        &format!("/{}/overrides", ext.replace('~', "~0").replace('/', "~1")),
    )?;
    let mut disabled = false;
    for r in rules {
        let (off, rule) = match r.strip_prefix('!') {
            Some(x) => (true, x),
            None => (false, r),
        };
        let (base, subdirs) = match rule.strip_suffix('*') {
            Some(b) => (b, true),
            None => (rule, false),
        };
        let base = Path::new(base.trim_end_matches('/'));
        let covers = if subdirs {
            home.starts_with(base) || base.as_os_str().is_empty()
        } else {
            home == base
        };
        if covers {
            disabled = off;
        }
    }
    disabled.then(|| format!("{} {ext}.overrides", d.path.display()))
}

/// Claude Code managed-settings files under the system root, per OS.
const CLAUDE_MANAGED_SETTINGS: &[(clients::OsMask, &str)] = &[
    (clients::LINUX, "etc/claude-code/managed-settings.json"),
    (
        clients::MACOS,
        "Library/Application Support/ClaudeCode/managed-settings.json",
    ),
    (
        clients::WINDOWS,
        "Program Files/ClaudeCode/managed-settings.json",
    ),
];

/// Gemini CLI system settings under the system root, per OS.
const GEMINI_SYSTEM_SETTINGS: &[(clients::OsMask, &str)] = &[
    (clients::LINUX, "etc/gemini-cli/settings.json"),
    (
        clients::MACOS,
        "Library/Application Support/GeminiCli/settings.json",
    ),
    (clients::WINDOWS, "ProgramData/gemini-cli/settings.json"),
];

/// Homes by directory, to find the one a path is in by walking up the
/// path (a scan of thousands of homes must not compare every entry with
/// every home).
struct HomeIndex<'h> {
    homes: &'h [Home],
    by_dir: HashMap<&'h Path, usize>,
}

impl<'h> HomeIndex<'h> {
    fn new(homes: &'h [Home]) -> Self {
        let by_dir = homes
            .iter()
            .enumerate()
            .map(|(i, h)| (h.dir.as_path(), i))
            .collect();
        HomeIndex { homes, by_dir }
    }

    /// The home a config belongs to: the nearest one holding its file or
    /// project, else, with a single home scanned, that one.
    fn of(&self, c: &Configured) -> Option<&'h Home> {
        let at = c.location.project.as_deref().unwrap_or(&c.location.path);
        at.ancestors()
            .find_map(|a| self.by_dir.get(a))
            .map(|&i| &self.homes[i])
            .or(if self.homes.len() == 1 {
                self.homes.first()
            } else {
                None
            })
    }
}

/// Which settings documents speak for an entry: (file, key of the
/// `projects` entry to look in, or `None` for the whole file).
type Wanted = Vec<(PathBuf, Option<String>)>;

fn claude_wanted(homes: &HomeIndex, c: &Configured) -> Wanted {
    let mut out = Vec::new();
    if c.location.scope != Scope::Project {
        return out;
    }
    let Some(root) = &c.location.project else {
        return out;
    };
    let dot = root.join(".claude");
    out.push((dot.join("settings.local.json"), None));
    out.push((dot.join("settings.json"), None));
    let key = root.to_string_lossy().into_owned();
    if let Some(h) = homes.of(c) {
        // Approvals may also sit in ~/.claude.json's entry for the project.
        for dir in [Some(&h.dir), h.claude_config_dir.as_ref()]
            .into_iter()
            .flatten()
        {
            out.push((dir.join(".claude.json"), Some(key.clone())));
        }
        let user_dir = h
            .claude_config_dir
            .clone()
            .unwrap_or_else(|| h.dir.join(".claude"));
        out.push((user_dir.join("settings.json"), None));
    }
    out
}

/// An extension's own enablement file, from its manifest's path.
fn extension_settings(c: &Configured) -> Wanted {
    let path = &c.location.path;
    let (Some(ext_dir), true) = (path.parent(), c.location.scope == Scope::Plugin) else {
        return Vec::new();
    };
    let Some(id) = ext_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
    else {
        return Vec::new();
    };
    let Some(all) = ext_dir.parent() else {
        return Vec::new();
    };
    match c.location.client {
        "claude-desktop" => match all.parent() {
            Some(app) => vec![(
                app.join("Claude Extensions Settings")
                    .join(format!("{id}.json")),
                None,
            )],
            None => Vec::new(),
        },
        "gemini-cli" => vec![(all.join("extension-enablement.json"), Some(id))],
        _ => Vec::new(),
    }
}

fn gemini_wanted(homes: &HomeIndex, system: &[PathBuf], c: &Configured) -> Wanted {
    let mut out: Wanted = system.iter().map(|p| (p.clone(), None)).collect();
    if c.location.scope == Scope::Project {
        if let Some(root) = &c.location.project {
            out.push((root.join(".gemini/settings.json"), None));
        }
    }
    if let Some(h) = homes.of(c) {
        out.push((h.dir.join(".gemini/settings.json"), None));
    }
    out
}

/// The keys that decide activation; everything else of a settings file
/// (a `~/.claude.json` holds whole conversation histories) is dropped as
/// soon as it is read, so a scan of thousands of homes does not keep them.
const DECIDING_KEYS: &[&str] = &[
    "disabledMcpjsonServers",
    "enabledMcpjsonServers",
    "enableAllProjectMcpServers",
    "deniedMcpServers",
    "allowedMcpServers",
    "excludeMCPServers",
    "allowMCPServers",
    "isEnabled",
    "overrides",
];

fn prune(v: Value) -> Value {
    let Value::Object(m) = v else {
        return Value::Null;
    };
    let mut out = serde_json::Map::new();
    for (k, v) in m {
        if DECIDING_KEYS.contains(&k.as_str()) {
            out.insert(k, v);
        } else if k == "mcp" {
            let mcp: serde_json::Map<String, Value> = v
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| matches!(k.as_str(), "excluded" | "allowed"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            out.insert(k, Value::Object(mcp));
        } else if v.is_object() {
            // `projects` entries of ~/.claude.json, the per-extension
            // entries of extension-enablement.json: kept when something
            // deciding is inside (serde_json bounds the nesting).
            let inner = prune(v);
            if inner.as_object().is_some_and(|o| !o.is_empty()) {
                out.insert(k, inner);
            }
        }
    }
    Value::Object(out)
}

/// A read settings document, or the `projects[key]` entry inside it.
fn lookup<'a>(
    cache: &'a HashMap<PathBuf, Option<Value>>,
    path: &'a Path,
    key: Option<&str>,
) -> Option<Doc<'a>> {
    let v = cache.get(path)?.as_ref()?;
    let value = match key {
        Some(k) => v.get("projects")?.get(k)?,
        None => v,
    };
    Some(Doc { path, value })
}

/// Mark inactive entries disabled, with the reason. Each settings file is
/// read once, however many entries it speaks for.
pub(super) fn apply(opts: &Options, configured: &mut [Configured]) {
    let system = |list: &[(clients::OsMask, &str)]| -> Vec<PathBuf> {
        let Some(root) = &opts.system_root else {
            return Vec::new();
        };
        list.iter()
            .filter(|(os, _)| os & opts.os != 0)
            .map(|(_, rel)| root.join(rel))
            .collect()
    };
    let claude_managed = system(CLAUDE_MANAGED_SETTINGS);
    let gemini_system = system(GEMINI_SYSTEM_SETTINGS);
    let homes = HomeIndex::new(&opts.homes);
    let wanted: Vec<Wanted> = configured
        .iter()
        .map(|c| match c.location.client {
            _ if c.location.disabled => Vec::new(),
            "claude-code" => claude_wanted(&homes, c),
            "gemini-cli" => gemini_wanted(&homes, &gemini_system, c),
            _ => Vec::new(),
        })
        .collect();
    let ext_wanted: Vec<Wanted> = configured.iter().map(extension_settings).collect();
    let mut cache: HashMap<PathBuf, Option<Value>> = HashMap::new();
    let any_claude = configured
        .iter()
        .any(|c| c.location.client == "claude-code");
    let managed_paths = claude_managed.iter().filter(|_| any_claude);
    let ext_paths = ext_wanted.iter().flatten().map(|(p, _)| p);
    for p in wanted
        .iter()
        .flatten()
        .map(|(p, _)| p)
        .chain(managed_paths)
        .chain(ext_paths)
    {
        if !cache.contains_key(p) {
            let v = sources::read(p, Format::Json, opts.max_file_size).1;
            cache.insert(p.clone(), v.map(prune));
        }
    }
    let managed: Vec<Doc> = claude_managed
        .iter()
        .filter_map(|p| lookup(&cache, p, None))
        .collect();
    let mut verdicts = Vec::with_capacity(configured.len());
    for ((c, want), ext) in configured.iter().zip(&wanted).zip(&ext_wanted) {
        let docs: Vec<Doc> = want
            .iter()
            .filter_map(|(p, key)| lookup(&cache, p, key.as_deref()))
            .collect();
        // The extension's settings file, whole (its key is the extension).
        let ext_doc = ext.first().and_then(|(p, _)| lookup(&cache, p, None));
        let ext_id = ext.first().and_then(|(_, k)| k.as_deref());
        verdicts.push(match c.location.client {
            _ if c.location.disabled => None,
            "claude-code" => claude_code(c, &docs, &managed),
            "claude-desktop" => claude_desktop_extension(ext_doc.as_ref()),
            "gemini-cli" => {
                let home = homes.of(c).map(|h| h.dir.clone());
                let by_ext = match (ext_id, home) {
                    (Some(id), Some(home)) => gemini_extension(ext_doc.as_ref(), id, &home),
                    _ => None,
                };
                by_ext.or_else(|| gemini(c, &docs))
            }
            _ => None,
        });
    }
    for (c, v) in configured.iter_mut().zip(verdicts) {
        if let Some(why) = v {
            c.location.disabled = true;
            c.location.disabled_by = Some(why);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::testkit::{remote, stdio};
    use serde_json::json;

    fn project(name: &str) -> Configured {
        let mut c = stdio("claude-code", "/p/.mcp.json", name, "npx -y x-mcp");
        c.location.scope = Scope::Project;
        c.location.project = Some(PathBuf::from("/p"));
        c
    }

    #[test]
    fn claude_code_rejections_and_managed_lists() {
        let local = json!({"disabledMcpjsonServers": ["db"], "enabledMcpjsonServers": ["web"]});
        let user = json!({"enableAllProjectMcpServers": true});
        let p = Path::new("/p/.claude/settings.local.json");
        let u = Path::new("/h/.claude/settings.json");
        let approval = [
            Doc {
                path: p,
                value: &local,
            },
            Doc {
                path: u,
                value: &user,
            },
        ];
        assert_eq!(
            claude_code(&project("db"), &approval, &[]).as_deref(),
            Some("/p/.claude/settings.local.json disabledMcpjsonServers"),
            "rejected even though everything is approved elsewhere"
        );
        assert_eq!(claude_code(&project("web"), &approval, &[]), None);
        assert_eq!(claude_code(&project("other"), &approval, &[]), None);

        let m = Path::new("/etc/claude-code/managed-settings.json");
        let denied = json!({"deniedMcpServers": [{"serverName": "web"}, {"serverUrl": "https://*.evil.example/*"}]});
        let managed = [Doc {
            path: m,
            value: &denied,
        }];
        assert!(claude_code(&project("web"), &[], &managed).is_some());
        let r = remote(
            "claude-code",
            "/h/.claude.json",
            "x",
            "https://mcp.evil.example/sse",
        );
        assert_eq!(
            claude_code(&r, &[], &managed).as_deref(),
            Some("/etc/claude-code/managed-settings.json deniedMcpServers")
        );
        let allowed = json!({"allowedMcpServers": [{"serverCommand": ["npx", "-y", "x-mcp"]}]});
        let managed = [Doc {
            path: m,
            value: &allowed,
        }];
        assert_eq!(claude_code(&project("any"), &[], &managed), None);
        assert!(
            claude_code(&r, &[], &managed).is_some(),
            "not on the allow list"
        );
    }

    #[test]
    fn gemini_excluded_and_allowed() {
        let g = |name: &str| stdio("gemini-cli", "/h/.gemini/settings.json", name, "x-mcp");
        let user = json!({"mcp": {"excluded": ["a"]}});
        let legacy = json!({"excludeMCPServers": ["b"], "allowMCPServers": ["c", "d"]});
        let ws = json!({"mcp": {"allowed": ["c"]}});
        let (pu, pw) = (
            Path::new("/h/.gemini/settings.json"),
            Path::new("/p/.gemini/settings.json"),
        );
        let docs = [
            Doc {
                path: pw,
                value: &ws,
            },
            Doc {
                path: pu,
                value: &user,
            },
        ];
        assert_eq!(
            gemini(&g("a"), &docs).as_deref(),
            Some("/h/.gemini/settings.json mcp.excluded")
        );
        assert_eq!(gemini(&g("c"), &docs), None);
        assert_eq!(
            gemini(&g("d"), &docs).as_deref(),
            Some("/p/.gemini/settings.json mcp.allowed (not listed)"),
            "the most specific allow list decides"
        );
        let docs = [Doc {
            path: pu,
            value: &legacy,
        }];
        assert!(gemini(&g("b"), &docs).is_some());
        assert_eq!(gemini(&g("d"), &docs), None);
        assert_eq!(gemini(&g("z"), &[]), None);
    }

    #[test]
    fn extension_switches() {
        let off = json!({"isEnabled": false, "userConfig": {}});
        let on = json!({"isEnabled": true});
        let p = Path::new("/h/.config/Claude/Claude Extensions Settings/x.json");
        let doc = |v| Doc { path: p, value: v };
        assert!(claude_desktop_extension(Some(&doc(&off))).is_some());
        assert_eq!(claude_desktop_extension(Some(&doc(&on))), None);
        assert_eq!(claude_desktop_extension(None), None);

        let en = json!({
            "off-everywhere": {"overrides": ["!/home/u/*"]},
            "off-then-on": {"overrides": ["!/home/u/*", "/home/u/*"]},
            "off-in-one-workspace": {"overrides": ["!/home/u/proj/*"]},
            "off-at-root": {"overrides": ["!/*"]}
        });
        let p = Path::new("/home/u/.gemini/extensions/extension-enablement.json");
        let d = Doc {
            path: p,
            value: &en,
        };
        let home = Path::new("/home/u");
        assert!(gemini_extension(Some(&d), "off-everywhere", home).is_some());
        assert!(gemini_extension(Some(&d), "off-at-root", home).is_some());
        assert_eq!(gemini_extension(Some(&d), "off-then-on", home), None);
        assert_eq!(
            gemini_extension(Some(&d), "off-in-one-workspace", home),
            None
        );
        assert_eq!(gemini_extension(Some(&d), "unlisted", home), None);
    }

    #[test]
    fn pruning_keeps_what_decides() {
        let doc = json!({
            "numStartups": 3,
            "history": [{"display": "long"}],
            "mcpServers": {"a": {"command": "a"}},
            "mcp": {"excluded": ["x"], "serverCommand": "y"},
            "disabledMcpjsonServers": ["d"],
            "projects": {"/p": {"history": [], "disabledMcpjsonServers": ["e"]}, "/q": {"history": []}},
            "muted": {"overrides": ["!/h/*"]}
        });
        assert_eq!(
            prune(doc),
            json!({
                "mcp": {"excluded": ["x"]},
                "disabledMcpjsonServers": ["d"],
                "projects": {"/p": {"disabledMcpjsonServers": ["e"]}},
                "muted": {"overrides": ["!/h/*"]}
            })
        );
    }

    #[test]
    fn wildcards() {
        assert!(wildcard(
            "https://*.corp.example/*",
            "https://mcp.corp.example/sse"
        ));
        assert!(!wildcard(
            "https://*.corp.example/*",
            "https://corp.example.evil/x"
        ));
        assert!(wildcard("exact", "exact"));
        assert!(!wildcard("a*b*c", "acb"));
    }
}
