//! From a positioned YAML tree to a checked [`Policy`], collecting every
//! problem in one pass (a problem in one block never hides one in another).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::model::*;
use super::yaml::{self, Kind, Node, Pos, Scalar};
use super::{Diagnostic, PolicyError, fileplan, glob, net, schema};
use crate::severity::Severity;

/// Longest allowed grace period: ten minutes. Longer would let a process the
/// policy condemned keep running for too long.
pub const MAX_GRACE_PERIOD_MS: u64 = 600_000;
pub const DEFAULT_GRACE_PERIOD_MS: u64 = 3_000;
pub const DEFAULT_OUTPUT_DIR: &str = ".assay/incidents";
pub const FINDING_KINDS: [&str; 3] = ["unmanaged_server", "no_auth", "secret_in_config"];

/// Most runtime rules in one policy (kernel maps are sized from this).
pub const MAX_RULES: usize = 1024;
/// Most ports all `net_connect` rules may expand to in total, so a file of
/// `"1-65535"` ranges cannot make the loader allocate gigabytes.
pub const MAX_TOTAL_PORTS: usize = 1 << 20;

struct Ctx<'a> {
    file: &'a Path,
    diags: Vec<Diagnostic>,
    /// Ports still allowed by [`MAX_TOTAL_PORTS`].
    ports_left: usize,
}

impl Ctx<'_> {
    fn err(&mut self, pos: Pos, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            file: self.file.to_path_buf(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
        });
    }
}

pub(super) fn validate(text: &str, source: &Path) -> Result<Policy, PolicyError> {
    let mut cx = Ctx {
        file: source,
        diags: Vec::new(),
        ports_left: MAX_TOTAL_PORTS,
    };
    let start = Pos { line: 1, column: 1 };
    let parsed = match yaml::parse(text) {
        Ok(p) => p,
        Err(e) => {
            cx.err(e.pos, e.message);
            return Err(PolicyError {
                diagnostics: cx.diags,
            });
        }
    };
    for p in parsed.problems {
        cx.err(p.pos, p.message);
    }
    let root = match parsed.root {
        Some(r) if !matches!(r.scalar(), Some((Scalar::Null, _))) => r,
        _ => {
            cx.err(
                start,
                "policy is empty (expected a mapping with at least `version`)",
            );
            return Err(PolicyError {
                diagnostics: cx.diags,
            });
        }
    };
    let policy = policy(&mut cx, &root, source);
    if cx.diags.is_empty() {
        // `policy` returns Some whenever no diagnostic was recorded.
        if let Some(p) = policy {
            return Ok(p);
        }
        cx.err(start, "policy could not be validated");
    }
    cx.diags.sort();
    cx.diags.dedup();
    Err(PolicyError {
        diagnostics: cx.diags,
    })
}

/// The known keys of a mapping, each with its key's position.
struct Fields<'n>(BTreeMap<&'n str, (Pos, &'n Node)>, BTreeSet<&'static str>);

impl<'n> Fields<'n> {
    fn get(&self, key: &str) -> Option<&'n Node> {
        self.0.get(key).map(|(_, v)| *v)
    }
    fn key_pos(&self, key: &str) -> Option<Pos> {
        self.0.get(key).map(|(p, _)| *p)
    }
    fn iter(&self) -> impl Iterator<Item = (&'n str, &'n Node)> + '_ {
        self.0.iter().map(|(k, (_, v))| (*k, *v))
    }
}

/// A mapping with only `allowed` keys; unknown keys are errors at the key.
fn mapping<'n>(
    cx: &mut Ctx,
    node: &'n Node,
    what: &str,
    allowed: &[&'static str],
) -> Option<Fields<'n>> {
    let Kind::Map(entries) = &node.kind else {
        cx.err(
            node.pos,
            format!("{what} must be a mapping, found {}", node.type_name()),
        );
        return None;
    };
    let mut out = BTreeMap::new();
    let mut suggested = BTreeSet::new();
    for (k, v) in entries {
        let Some((_, key)) = k.scalar() else {
            cx.err(k.pos, format!("keys in {what} must be plain names"));
            continue;
        };
        if allowed.contains(&key) {
            out.insert(key, (k.pos, v));
        } else {
            let guess = suggest(key, allowed);
            suggested.extend(guess);
            let hint = guess
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            cx.err(
                k.pos,
                format!(
                    "unknown key `{key}` in {what}{hint} (allowed: {})",
                    allowed.join(", ")
                ),
            );
        }
    }
    Some(Fields(out, suggested))
}

/// The closest allowed name within a small edit distance.
fn suggest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (edit_distance(key, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 4))
        .min()
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn required<'n>(
    cx: &mut Ctx,
    f: &Fields<'n>,
    key: &str,
    parent: &Node,
    what: &str,
) -> Option<&'n Node> {
    let v = f.get(key);
    // A misspelling of this key was already reported with "did you mean".
    if v.is_none() && !f.1.contains(key) {
        cx.err(
            parent.pos,
            format!("{what} is missing required key `{key}`"),
        );
    }
    v
}

fn string(cx: &mut Ctx, node: &Node, what: &str) -> Option<String> {
    match node.scalar() {
        Some((Scalar::Str, text)) => Some(text.to_string()),
        Some((_, text)) => {
            cx.err(
                node.pos,
                format!(
                    "{what} must be a string, found {} (quote it: \"{text}\")",
                    node.type_name()
                ),
            );
            None
        }
        None => {
            cx.err(
                node.pos,
                format!("{what} must be a string, found {}", node.type_name()),
            );
            None
        }
    }
}

fn non_empty_string(cx: &mut Ctx, node: &Node, what: &str) -> Option<String> {
    let s = string(cx, node, what)?;
    if s.trim().is_empty() {
        cx.err(node.pos, format!("{what} must not be empty"));
        return None;
    }
    Some(s)
}

fn boolean(cx: &mut Ctx, node: &Node, what: &str) -> Option<bool> {
    match node.scalar() {
        Some((Scalar::Bool(b), _)) => Some(b),
        _ => {
            cx.err(
                node.pos,
                format!("{what} must be true or false, found {}", node.type_name()),
            );
            None
        }
    }
}

fn list<'n>(cx: &mut Ctx, node: &'n Node, what: &str) -> Option<&'n [Node]> {
    match &node.kind {
        Kind::Seq(items) => Some(items),
        _ => {
            cx.err(
                node.pos,
                format!("{what} must be a list, found {}", node.type_name()),
            );
            None
        }
    }
}

/// A list of non-empty strings; duplicates are errors (they hint at a typo).
fn string_list(cx: &mut Ctx, node: &Node, what: &str) -> Option<Vec<(String, Pos)>> {
    let items = list(cx, node, what)?;
    let mut out: Vec<(String, Pos)> = Vec::new();
    let mut ok = true;
    for item in items {
        match non_empty_string(cx, item, &format!("each entry of {what}")) {
            Some(s) => {
                if let Some((_, first)) = out.iter().find(|(o, _)| *o == s) {
                    cx.err(
                        item.pos,
                        format!(
                            "`{s}` is listed twice in {what} (first at line {})",
                            first.line
                        ),
                    );
                    ok = false;
                } else {
                    out.push((s, item.pos));
                }
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn one_of<'o>(cx: &mut Ctx, node: &Node, what: &str, options: &[&'o str]) -> Option<&'o str> {
    let (_, text) = node
        .scalar()
        .filter(|(s, _)| *s == Scalar::Str)
        .or_else(|| {
            cx.err(
                node.pos,
                format!(
                    "{what} must be one of {}, found {}",
                    options.join(" | "),
                    node.type_name()
                ),
            );
            None
        })?;
    match options.iter().find(|o| **o == text) {
        Some(o) => Some(o),
        None => {
            let hint = suggest(text, options)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            cx.err(
                node.pos,
                format!(
                    "unknown {what} `{text}`{hint} (expected one of: {})",
                    options.join(" | ")
                ),
            );
            None
        }
    }
}

fn policy(cx: &mut Ctx, root: &Node, source: &Path) -> Option<Policy> {
    let f = mapping(
        cx,
        root,
        "the policy",
        &[
            "version",
            "metadata",
            "tools",
            "schemas",
            "discovery",
            "kill_switch",
            "runtime_monitor",
        ],
    )?;
    let version = required(cx, &f, "version", root, "the policy").and_then(|v| version(cx, v));
    if let Some(v) = &version {
        if v != "2.0" {
            for block in ["discovery", "kill_switch", "runtime_monitor"] {
                if let Some(pos) = f.key_pos(block) {
                    cx.err(
                        pos,
                        format!(
                            "`{block}` is a Policy v2.0 block but the policy declares \
                             version \"{v}\"; set version: \"2.0\""
                        ),
                    );
                }
            }
        }
    }
    let metadata = match f.get("metadata") {
        Some(n) => metadata(cx, n),
        None => Some(Metadata::default()),
    };
    let tools = match f.get("tools") {
        Some(n) => tools(cx, n),
        None => Some(Tools::default()),
    };
    let schemas = match f.get("schemas") {
        Some(n) => schemas(cx, n, tools.as_ref()),
        None => Some(BTreeMap::new()),
    };
    let discovery = f.get("discovery").map(|n| discovery(cx, n));
    let monitor = f.get("runtime_monitor").map(|n| runtime_monitor(cx, n));
    let rules: Vec<&Rule> = match &monitor {
        Some(Some(m)) => m.rules.iter().collect(),
        _ => Vec::new(),
    };
    let monitor_ok = !matches!(monitor, Some(None));
    let gated = tools
        .as_ref()
        .is_none_or(|t| t.allow.is_some() || !t.deny.is_empty())
        || schemas.as_ref().is_none_or(|s| !s.is_empty());
    let kill_switch = f
        .get("kill_switch")
        .map(|n| kill_switch(cx, n, &rules, monitor_ok, gated));
    // A trigger_kill rule without an enabled kill switch would only deny:
    // a weaker rule than the one written.
    if let Some(Some(m)) = &monitor {
        let ks_enabled = matches!(&kill_switch, Some(Some(k)) if k.enabled);
        let ks_broken = matches!(kill_switch, Some(None));
        if !ks_enabled && !ks_broken {
            let rm = f.get("runtime_monitor").unwrap_or(root);
            for r in &m.rules {
                if r.action == Action::TriggerKill {
                    cx.err(
                        rule_action_pos(rm, &r.id).unwrap_or(rm.pos),
                        format!(
                            "rule `{}` has action trigger_kill but the kill switch is {}; \
                             add `kill_switch: {{enabled: true}}` or use action deny",
                            r.id,
                            if kill_switch.is_some() {
                                "disabled"
                            } else {
                                "not configured"
                            }
                        ),
                    );
                }
            }
        }
    }
    Some(Policy {
        source: source.to_path_buf(),
        version: version?,
        metadata: metadata?,
        tools: tools?,
        schemas: schemas?,
        discovery: optional(discovery)?,
        kill_switch: optional(kill_switch)?,
        runtime_monitor: optional(monitor)?,
    })
}

/// An optional block: absent is fine (`Some(None)`), present but invalid
/// fails (`None`).
fn optional<T>(block: Option<Option<T>>) -> Option<Option<T>> {
    match block {
        None => Some(None),
        Some(Some(v)) => Some(Some(v)),
        Some(None) => None,
    }
}

/// Where `action:` of rule `id` is, for messages about it.
fn rule_action_pos(rm: &Node, id: &str) -> Option<Pos> {
    let Kind::Map(e) = &rm.kind else { return None };
    let rules = e
        .iter()
        .find(|(k, _)| k.scalar().map(|s| s.1) == Some("rules"))?;
    let Kind::Seq(items) = &rules.1.kind else {
        return None;
    };
    items.iter().find_map(|r| {
        let Kind::Map(f) = &r.kind else { return None };
        let has_id = f.iter().any(|(k, v)| {
            k.scalar().map(|s| s.1) == Some("id") && v.scalar().map(|s| s.1) == Some(id)
        });
        has_id
            .then(|| {
                f.iter()
                    .find(|(k, _)| k.scalar().map(|s| s.1) == Some("action"))
                    .map(|(_, v)| v.pos)
            })
            .flatten()
    })
}

fn version(cx: &mut Ctx, node: &Node) -> Option<String> {
    // Accept `2.0` unquoted too: the raw text is kept, so it cannot turn
    // into `2` the way a float would.
    let text = match node.scalar() {
        Some((Scalar::Str | Scalar::Float(_), t)) => t,
        _ => {
            cx.err(
                node.pos,
                format!(
                    "version must be \"1.0\", \"1.x\" or \"2.0\", found {}",
                    node.type_name()
                ),
            );
            return None;
        }
    };
    let v1 = text
        .strip_prefix("1.")
        .is_some_and(|m| !m.is_empty() && m.len() <= 3 && m.bytes().all(|b| b.is_ascii_digit()));
    if text == "2.0" || v1 {
        Some(text.to_string())
    } else {
        cx.err(
            node.pos,
            format!("unsupported policy version `{text}` (supported: \"1.0\" .. \"1.x\", \"2.0\")"),
        );
        None
    }
}

fn metadata(cx: &mut Ctx, node: &Node) -> Option<Metadata> {
    let f = mapping(
        cx,
        node,
        "metadata",
        &["name", "description", "owner", "labels"],
    )?;
    let mut ok = true;
    let mut opt = |cx: &mut Ctx, key: &str| -> Option<String> {
        let n = f.get(key)?;
        let s = non_empty_string(cx, n, &format!("metadata.{key}"));
        ok &= s.is_some();
        s
    };
    let name = opt(cx, "name");
    let description = opt(cx, "description");
    let owner = opt(cx, "owner");
    let mut labels = BTreeMap::new();
    if let Some(n) = f.get("labels") {
        match &n.kind {
            Kind::Map(entries) => {
                for (k, v) in entries {
                    let key = non_empty_string(cx, k, "a label name");
                    let val = string(cx, v, "a label value");
                    match (key, val) {
                        (Some(k), Some(v)) => {
                            labels.insert(k, v);
                        }
                        _ => ok = false,
                    }
                }
            }
            _ => {
                cx.err(
                    n.pos,
                    format!("metadata.labels must be a mapping, found {}", n.type_name()),
                );
                ok = false;
            }
        }
    }
    ok.then_some(Metadata {
        name,
        description,
        owner,
        labels,
    })
}

fn tools(cx: &mut Ctx, node: &Node) -> Option<Tools> {
    let f = mapping(cx, node, "tools", &["allow", "deny"])?;
    let allow = f.get("allow").map(|n| string_list(cx, n, "tools.allow"));
    let deny = match f.get("deny") {
        Some(n) => string_list(cx, n, "tools.deny"),
        None => Some(Vec::new()),
    };
    if let (Some(Some(a)), Some(d)) = (&allow, &deny) {
        for (name, pos) in d {
            if a.iter().any(|(x, _)| x == name) {
                cx.err(
                    *pos,
                    format!("tool `{name}` is in both tools.allow and tools.deny; remove one"),
                );
            }
        }
    }
    let allow = match allow {
        Some(a) => Some(a?.into_iter().map(|(s, _)| s).collect()),
        None => None,
    };
    Some(Tools {
        allow,
        deny: deny?.into_iter().map(|(s, _)| s).collect(),
    })
}

fn schemas(
    cx: &mut Ctx,
    node: &Node,
    tools: Option<&Tools>,
) -> Option<BTreeMap<String, serde_json::Value>> {
    let Kind::Map(entries) = &node.kind else {
        cx.err(
            node.pos,
            format!(
                "schemas must be a mapping of tool name to JSON Schema, found {}",
                node.type_name()
            ),
        );
        return None;
    };
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (k, v) in entries {
        let Some(name) = non_empty_string(cx, k, "a tool name in schemas") else {
            ok = false;
            continue;
        };
        if let Some(t) = tools {
            if t.deny.contains(&name) {
                cx.err(
                    k.pos,
                    format!(
                        "schema for tool `{name}`, which tools.deny denies; it would never apply"
                    ),
                );
                ok = false;
            } else if let Some(allow) = &t.allow {
                if !allow.contains(&name) {
                    let names: Vec<&str> = allow.iter().map(String::as_str).collect();
                    let hint = suggest(&name, &names)
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    cx.err(
                        k.pos,
                        format!(
                            "schema for tool `{name}`, which tools.allow does not list; it \
                             would never apply{hint}"
                        ),
                    );
                    ok = false;
                }
            }
        }
        match schema::check(&name, v) {
            Ok(json) => {
                out.insert(name, json);
            }
            Err(problems) => {
                for p in problems {
                    cx.err(p.pos, p.message);
                }
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn discovery(cx: &mut Ctx, node: &Node) -> Option<DiscoveryConfig> {
    let f = mapping(
        cx,
        node,
        "discovery",
        &["enabled", "methods", "on_findings", "managed"],
    )?;
    let enabled = f
        .get("enabled")
        .map_or(Some(true), |n| boolean(cx, n, "discovery.enabled"));
    let methods = match f.get("methods") {
        None => Some(vec![
            DiscoveryMethod::ConfigFiles,
            DiscoveryMethod::Processes,
        ]),
        Some(n) => (|| {
            let items = list(cx, n, "discovery.methods")?;
            if items.is_empty() {
                cx.err(
                    n.pos,
                    "discovery.methods must not be empty (omit it for both methods)",
                );
                return None;
            }
            let mut out = Vec::new();
            let mut ok = true;
            for item in items {
                match one_of(cx, item, "discovery method", &["config_files", "processes"]) {
                    Some(m) => {
                        let m = if m == "config_files" {
                            DiscoveryMethod::ConfigFiles
                        } else {
                            DiscoveryMethod::Processes
                        };
                        if out.contains(&m) {
                            cx.err(item.pos, "discovery method listed twice");
                            ok = false;
                        }
                        out.push(m);
                    }
                    None => ok = false,
                }
            }
            ok.then_some(out)
        })(),
    };
    let mut on_findings: BTreeMap<String, OnFinding> = FINDING_KINDS
        .iter()
        .map(|k| (k.to_string(), OnFinding::Warn))
        .collect();
    let mut findings_ok = true;
    if let Some(n) = f.get("on_findings") {
        match mapping(cx, n, "discovery.on_findings", &FINDING_KINDS) {
            Some(of) => {
                for (k, v) in of.iter() {
                    match one_of(cx, v, &format!("on_findings.{k}"), &["warn", "fail"]) {
                        Some(g) => {
                            on_findings.insert(
                                k.to_string(),
                                if g == "warn" {
                                    OnFinding::Warn
                                } else {
                                    OnFinding::Fail
                                },
                            );
                        }
                        None => findings_ok = false,
                    }
                }
            }
            None => findings_ok = false,
        }
    }
    let managed = match f.get("managed") {
        Some(n) => {
            string_list(cx, n, "discovery.managed").map(|v| v.into_iter().map(|x| x.0).collect())
        }
        None => Some(Vec::new()),
    };
    Some(DiscoveryConfig {
        enabled: enabled?,
        methods: methods?,
        on_findings: findings_ok.then_some(on_findings)?,
        managed: managed?,
    })
}

fn kill_mode(cx: &mut Ctx, node: &Node, what: &str) -> Option<KillMode> {
    one_of(cx, node, what, &["graceful", "immediate"]).map(|m| {
        if m == "graceful" {
            KillMode::Graceful
        } else {
            KillMode::Immediate
        }
    })
}

fn kill_switch(
    cx: &mut Ctx,
    node: &Node,
    rules: &[&Rule],
    rules_known: bool,
    gated: bool,
) -> Option<KillSwitchConfig> {
    let f = mapping(
        cx,
        node,
        "kill_switch",
        &[
            "enabled",
            "mode",
            "grace_period_ms",
            "kill_children",
            "capture_state",
            "output_dir",
            "triggers",
        ],
    )?;
    let enabled = f
        .get("enabled")
        .map_or(Some(false), |n| boolean(cx, n, "kill_switch.enabled"));
    let mode = f.get("mode").map_or(Some(KillMode::Graceful), |n| {
        kill_mode(cx, n, "kill_switch.mode")
    });
    let grace = match f.get("grace_period_ms") {
        None => Some(DEFAULT_GRACE_PERIOD_MS),
        Some(n) => match n.scalar() {
            Some((Scalar::Int(i), _)) if (0..=i128::from(MAX_GRACE_PERIOD_MS)).contains(&i) => {
                Some(i as u64)
            }
            Some((Scalar::Int(i), _)) => {
                cx.err(
                    n.pos,
                    format!(
                        "kill_switch.grace_period_ms {i} is out of range (0..={MAX_GRACE_PERIOD_MS})"
                    ),
                );
                None
            }
            _ => {
                cx.err(
                    n.pos,
                    format!(
                        "kill_switch.grace_period_ms must be an integer number of milliseconds, found {}",
                        n.type_name()
                    ),
                );
                None
            }
        },
    };
    let kill_children = f
        .get("kill_children")
        .map_or(Some(true), |n| boolean(cx, n, "kill_switch.kill_children"));
    let capture_state = f
        .get("capture_state")
        .map_or(Some(true), |n| boolean(cx, n, "kill_switch.capture_state"));
    let output_dir = match f.get("output_dir") {
        None => Some(PathBuf::from(DEFAULT_OUTPUT_DIR)),
        Some(n) => non_empty_string(cx, n, "kill_switch.output_dir").and_then(|s| {
            if s.contains('\0') {
                cx.err(n.pos, "kill_switch.output_dir contains a NUL byte");
                None
            } else {
                Some(PathBuf::from(s))
            }
        }),
    };
    let triggers = match f.get("triggers") {
        None => Some((Vec::new(), None)),
        Some(n) => triggers(cx, n, rules, rules_known, gated),
    };
    let (triggers, tool_denials) = match triggers {
        Some((t, d)) => (Some(t), Some(d)),
        None => (None, None),
    };
    // Like a trigger_kill rule: with the kill switch off it would only
    // refuse, a weaker rule than the one written.
    if let (Some(Some(_)), Some(false)) = (tool_denials, enabled) {
        let pos = f.get("enabled").map_or(node.pos, |n| n.pos);
        cx.err(
            pos,
            "kill_switch.triggers has on_tool_denials but kill_switch.enabled is false; \
             enable the kill switch or remove the trigger",
        );
    }
    Some(KillSwitchConfig {
        enabled: enabled?,
        mode: mode?,
        grace_period_ms: grace?,
        kill_children: kill_children?,
        capture_state: capture_state?,
        output_dir: output_dir?,
        triggers: triggers?,
        tool_denials: tool_denials?,
    })
}

/// Largest `on_tool_denials`: beyond it the trigger could never be meant.
const MAX_TOOL_DENIALS: i128 = 1_000_000;

/// `{on_tool_denials: N, mode}`: `gated` says whether the policy has the
/// `tools` or `schemas` that make refusals at all.
fn tool_denials_trigger(
    cx: &mut Ctx,
    node: &Node,
    mode: KillMode,
    gated: bool,
) -> Option<ToolDenials> {
    let count = match node.scalar() {
        Some((Scalar::Int(i), _)) if (1..=MAX_TOOL_DENIALS).contains(&i) => i as u32,
        Some((Scalar::Int(i), _)) => {
            cx.err(
                node.pos,
                format!("on_tool_denials {i} is out of range (1..={MAX_TOOL_DENIALS})"),
            );
            return None;
        }
        _ => {
            cx.err(
                node.pos,
                format!(
                    "on_tool_denials must be a number of refused tool calls, found {}",
                    node.type_name()
                ),
            );
            return None;
        }
    };
    if !gated {
        cx.err(
            node.pos,
            "on_tool_denials needs `tools` or `schemas` in the policy: without them no tool \
             call is ever refused",
        );
        return None;
    }
    Some(ToolDenials { count, mode })
}

fn triggers(
    cx: &mut Ctx,
    node: &Node,
    rules: &[&Rule],
    rules_known: bool,
    gated: bool,
) -> Option<(Vec<KillTrigger>, Option<ToolDenials>)> {
    let items = list(cx, node, "kill_switch.triggers")?;
    let mut out: Vec<KillTrigger> = Vec::new();
    let mut denials: Option<ToolDenials> = None;
    let mut ok = true;
    for item in items {
        let Some(f) = mapping(
            cx,
            item,
            "a kill_switch trigger",
            &["on_rule", "on_tool_denials", "mode"],
        ) else {
            ok = false;
            continue;
        };
        let mode = f.get("mode").map_or(Some(KillMode::Immediate), |n| {
            kill_mode(cx, n, "trigger mode")
        });
        if let Some(n) = f.get("on_tool_denials") {
            if f.get("on_rule").is_some() {
                cx.err(
                    item.pos,
                    "a trigger has either on_rule or on_tool_denials, not both",
                );
                ok = false;
                continue;
            }
            if denials.is_some() {
                cx.err(n.pos, "more than one on_tool_denials trigger");
                ok = false;
                continue;
            }
            match mode.and_then(|m| tool_denials_trigger(cx, n, m, gated)) {
                Some(d) => denials = Some(d),
                None => ok = false,
            }
            continue;
        }
        let on_rule = required(cx, &f, "on_rule", item, "a kill_switch trigger")
            .and_then(|n| non_empty_string(cx, n, "on_rule").map(|s| (s, n.pos)));
        let (Some((id, pos)), Some(mode)) = (on_rule, mode) else {
            ok = false;
            continue;
        };
        // When runtime_monitor itself failed validation its rules are not
        // known; the rule errors were reported there.
        if rules_known {
            match rules.iter().find(|r| r.id == id) {
                None => {
                    let ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
                    let hint = suggest(&id, &ids)
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    cx.err(
                        pos,
                        format!("trigger names rule `{id}`, but runtime_monitor has no rule with that id{hint}"),
                    );
                    ok = false;
                }
                Some(r) if r.action != Action::TriggerKill => {
                    cx.err(
                        pos,
                        format!(
                            "trigger names rule `{id}`, whose action is {}; only rules with \
                             action trigger_kill can trigger the kill switch",
                            r.action.as_str()
                        ),
                    );
                    ok = false;
                }
                Some(_) => {}
            }
        }
        if out.iter().any(|t| t.on_rule == id) {
            cx.err(pos, format!("rule `{id}` has more than one trigger"));
            ok = false;
        }
        out.push(KillTrigger { on_rule: id, mode });
    }
    ok.then_some((out, denials))
}

fn runtime_monitor(cx: &mut Ctx, node: &Node) -> Option<RuntimeMonitor> {
    let f = mapping(
        cx,
        node,
        "runtime_monitor",
        &["enabled", "provider", "rules", "self_protection"],
    )?;
    let self_protection = f
        .get("self_protection")
        .map_or(Some(SelfProtection::default()), |n| self_protection(cx, n));
    let enabled = f
        .get("enabled")
        .map_or(Some(false), |n| boolean(cx, n, "runtime_monitor.enabled"));
    let provider = f.get("provider").map_or(Some("ebpf"), |n| {
        one_of(cx, n, "runtime_monitor.provider", &["ebpf"])
    });
    let rules = match f.get("rules") {
        None => Some(Vec::new()),
        Some(n) => (|| {
            let items = list(cx, n, "runtime_monitor.rules")?;
            if items.len() > MAX_RULES {
                cx.err(
                    n.pos,
                    format!("{} rules; at most {MAX_RULES} are supported", items.len()),
                );
                return None;
            }
            let mut out = Vec::new();
            let mut ok = true;
            let mut seen: HashMap<String, usize> = HashMap::new();
            for item in items {
                match rule(cx, item, &mut seen) {
                    Some(r) => out.push(r),
                    None => ok = false,
                }
            }
            if !ok {
                return None;
            }
            // Limits across rules (how many globs of a kind the kernel
            // program holds): checked here so a policy that validates loads.
            if let Err(e) = fileplan::compile(&out) {
                let at = out
                    .iter()
                    .position(|r| r.id == e.rule)
                    .and_then(|i| scalar_pos(&items[i], &e.glob).or(Some(items[i].pos)))
                    .unwrap_or(n.pos);
                cx.err(at, e.to_string());
                return None;
            }
            Some(out)
        })(),
    };
    Some(RuntimeMonitor {
        enabled: enabled?,
        provider: provider?.to_string(),
        rules: rules?,
        self_protection: self_protection?,
    })
}

/// `runtime_monitor.self_protection`: guard name -> true/false, every guard
/// on unless turned off.
fn self_protection(cx: &mut Ctx, node: &Node) -> Option<SelfProtection> {
    let f = mapping(
        cx,
        node,
        "runtime_monitor.self_protection",
        &SelfProtection::KEYS,
    )?;
    let mut sp = SelfProtection::default();
    let mut ok = true;
    for key in SelfProtection::KEYS {
        if let Some(n) = f.get(key) {
            match boolean(cx, n, &format!("runtime_monitor.self_protection.{key}")) {
                Some(on) => sp.set(key, on),
                None => ok = false,
            }
        }
    }
    ok.then_some(sp)
}

/// Where the scalar `text` first appears in `node`'s tree.
fn scalar_pos(node: &Node, text: &str) -> Option<Pos> {
    match &node.kind {
        Kind::Scalar { text: t, .. } => (t == text).then_some(node.pos),
        Kind::Seq(items) => items.iter().find_map(|n| scalar_pos(n, text)),
        Kind::Map(pairs) => pairs.iter().find_map(|(_, v)| scalar_pos(v, text)),
    }
}

fn valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

fn rule(cx: &mut Ctx, node: &Node, seen: &mut HashMap<String, usize>) -> Option<Rule> {
    let f = mapping(
        cx,
        node,
        "a runtime_monitor rule",
        &["id", "type", "match", "severity", "action"],
    )?;
    let what = "a runtime_monitor rule";
    let id = required(cx, &f, "id", node, what).and_then(|n| {
        let id = non_empty_string(cx, n, "rule id")?;
        if !valid_id(&id) {
            cx.err(
                n.pos,
                format!("rule id `{id}` must match [a-z0-9][a-z0-9_-]* (at most 64 characters)"),
            );
            return None;
        }
        if let Some(first) = seen.get(&id) {
            cx.err(
                n.pos,
                format!("duplicate rule id `{id}` (first used at line {first})"),
            );
            return None;
        }
        seen.insert(id.clone(), n.pos.line);
        Some(id)
    });
    let severity = required(cx, &f, "severity", node, what).and_then(|n| {
        let names: Vec<&str> = Severity::ALL.iter().map(|s| s.as_str()).collect();
        one_of(cx, n, "severity", &names).and_then(Severity::parse)
    });
    let action = required(cx, &f, "action", node, what).and_then(|n| {
        let names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        one_of(cx, n, "action", &names).and_then(Action::parse)
    });
    let ty = required(cx, &f, "type", node, what)
        .and_then(|n| one_of(cx, n, "rule type", &["file_open", "net_connect"]));
    let matcher = match (ty, required(cx, &f, "match", node, what)) {
        (Some("file_open"), Some(m)) => file_match(cx, m).map(Matcher::FileOpen),
        (Some(_), Some(m)) => net_match(cx, m).map(Matcher::NetConnect),
        // Without a valid type the match block cannot be checked; still
        // report unknown keys in it against the union of both shapes.
        (None, Some(m)) => {
            mapping(
                cx,
                m,
                "match",
                &[
                    "path_globs",
                    "except",
                    "ports",
                    "outside_cidrs",
                    "protocols",
                    "loopback",
                ],
            );
            None
        }
        _ => None,
    };
    Some(Rule {
        id: id?,
        severity: severity?,
        action: action?,
        matcher: matcher?,
    })
}

fn globs(cx: &mut Ctx, node: &Node, what: &str) -> Option<Vec<PathGlob>> {
    let items = list(cx, node, what)?;
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut ok = true;
    for item in items {
        let Some(text) = string(cx, item, &format!("each entry of {what}")) else {
            ok = false;
            continue;
        };
        match glob::compile(&text) {
            Ok(form) => {
                if !seen.insert(text.clone()) {
                    cx.err(item.pos, format!("glob `{text}` is listed twice in {what}"));
                    ok = false;
                }
                out.push(PathGlob { text, form });
            }
            Err(why) => {
                cx.err(
                    item.pos,
                    format!("unsupported glob `{text}` in {what}: {why}"),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn file_match(cx: &mut Ctx, node: &Node) -> Option<FileMatch> {
    let f = mapping(cx, node, "a file_open match", &["path_globs", "except"])?;
    let path_globs = required(cx, &f, "path_globs", node, "a file_open match").and_then(|n| {
        let g = globs(cx, n, "path_globs")?;
        if g.is_empty() {
            cx.err(n.pos, "path_globs must not be empty");
            return None;
        }
        Some(g)
    });
    let except = match f.get("except") {
        Some(n) => globs(cx, n, "except"),
        None => Some(Vec::new()),
    };
    Some(FileMatch {
        path_globs: path_globs?,
        except: except?,
    })
}

fn net_match(cx: &mut Ctx, node: &Node) -> Option<NetMatch> {
    let what = "a net_connect match";
    let f = mapping(
        cx,
        node,
        what,
        &["ports", "outside_cidrs", "protocols", "loopback"],
    )?;
    let ports = match f.get("ports") {
        None => Some(Vec::new()),
        Some(n) => ports(cx, n),
    };
    let cidrs = match f.get("outside_cidrs") {
        None => Some(Vec::new()),
        Some(n) => (|| {
            let items = list(cx, n, "outside_cidrs")?;
            let mut out: Vec<Cidr> = Vec::new();
            let mut seen = BTreeSet::new();
            let mut ok = true;
            for item in items {
                let Some(text) = string(cx, item, "each entry of outside_cidrs") else {
                    ok = false;
                    continue;
                };
                match net::parse_cidr(text.trim()) {
                    Ok(c) if !seen.insert(c.to_string()) => {
                        cx.err(
                            item.pos,
                            format!("CIDR `{c}` is listed twice in outside_cidrs"),
                        );
                        ok = false;
                    }
                    Ok(c) => out.push(c),
                    Err(why) => {
                        cx.err(item.pos, format!("invalid CIDR: {why}"));
                        ok = false;
                    }
                }
            }
            ok.then_some(out)
        })(),
    };
    // ICMP has no port: a rule listing ports never covers it. (Ports that
    // failed to parse were listed all the same.)
    let has_ports = ports.as_ref().is_none_or(|p| !p.is_empty());
    let protocols = match f.get("protocols") {
        None => Some(Protocol::defaults(has_ports)),
        Some(n) => (|| {
            let items = list(cx, n, "protocols")?;
            if items.is_empty() {
                cx.err(
                    n.pos,
                    "protocols must not be empty (omit it for tcp, udp and, without ports, icmp)",
                );
                return None;
            }
            let names = Protocol::ALL.map(Protocol::as_str);
            let mut out = Vec::new();
            let mut ok = true;
            for item in items {
                let Some(name) = one_of(cx, item, "protocol", &names) else {
                    ok = false;
                    continue;
                };
                let p = Protocol::ALL
                    .into_iter()
                    .find(|p| p.as_str() == name)
                    .expect("one of the names");
                if out.contains(&p) {
                    cx.err(item.pos, "protocol listed twice");
                    ok = false;
                }
                if p == Protocol::Icmp && has_ports {
                    cx.err(
                        item.pos,
                        "icmp has no ports: it cannot be listed in a rule with `ports` \
                         (write a separate rule without `ports` for ICMP)",
                    );
                    ok = false;
                }
                out.push(p);
            }
            ok.then_some(out)
        })(),
    };
    let loopback = f.get("loopback").map_or(Some(Loopback::Match), |n| {
        one_of(cx, n, "loopback", &["match", "ignore"]).map(|l| {
            if l == "match" {
                Loopback::Match
            } else {
                Loopback::Ignore
            }
        })
    });
    let (ports, outside_cidrs) = (ports?, cidrs?);
    if ports.is_empty() && outside_cidrs.is_empty() {
        cx.err(
            node.pos,
            "a net_connect match needs non-empty `ports` or `outside_cidrs` (or both)",
        );
        return None;
    }
    Some(NetMatch {
        ports,
        outside_cidrs,
        protocols: protocols?,
        loopback: loopback?,
    })
}

/// Ports as integers or `"LOW-HIGH"` ranges; returned sorted and unique.
fn ports(cx: &mut Ctx, node: &Node) -> Option<Vec<u16>> {
    let items = list(cx, node, "ports")?;
    // A bitmap: ranges are filled in O(range) without per-port allocation.
    let mut set = vec![false; 65536];
    let mut ok = true;
    for item in items {
        match item.scalar() {
            Some((Scalar::Int(p), _)) if (1..=65535).contains(&p) => {
                set[p as usize] = true;
            }
            Some((Scalar::Int(p), _)) => {
                cx.err(item.pos, format!("port {p} is out of range (1..=65535)"));
                ok = false;
            }
            Some((Scalar::Str, text)) => match net::parse_port_range(text) {
                Ok((lo, hi)) => set[usize::from(lo)..=usize::from(hi)].fill(true),
                Err(why) => {
                    cx.err(item.pos, why.to_string());
                    ok = false;
                }
            },
            _ => {
                cx.err(
                    item.pos,
                    format!(
                        "each port must be an integer 1..=65535 or a range \"LOW-HIGH\", found {}",
                        item.type_name()
                    ),
                );
                ok = false;
            }
        }
    }
    let ports: Vec<u16> = (1..=65535u16).filter(|p| set[usize::from(*p)]).collect();
    if ports.len() > cx.ports_left {
        cx.err(
            node.pos,
            format!("net_connect rules expand to more than {MAX_TOTAL_PORTS} ports in total"),
        );
        cx.ports_left = 0;
        return None;
    }
    cx.ports_left -= ports.len();
    ok.then_some(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("path_glob", &["path_globs", "except"]),
            Some("path_globs")
        );
        assert_eq!(suggest("actoin", &["action", "id"]), Some("action"));
        assert_eq!(suggest("zzzzzz", &["action", "id"]), None);
    }

    #[test]
    fn ids() {
        assert!(valid_id("sensitive-file-access"));
        assert!(valid_id("r_1"));
        assert!(!valid_id("Bad"));
        assert!(!valid_id("-x"));
        assert!(!valid_id("a b"));
    }

    #[test]
    fn tool_denial_triggers_are_validated_like_other_triggers() {
        let load = |ks: &str, tools: &str| {
            let text = format!("version: \"2.0\"\n{tools}kill_switch:\n{ks}");
            super::super::load_str(&text, std::path::Path::new("p.yaml"))
        };
        let tools = "tools:\n  deny: [exec]\n";
        let p = load(
            "  enabled: true\n  triggers:\n    - on_tool_denials: 3\n      mode: graceful\n",
            tools,
        )
        .unwrap();
        assert_eq!(
            p.kill_switch.unwrap().tool_denials,
            Some(ToolDenials {
                count: 3,
                mode: KillMode::Graceful
            })
        );
        let err = |ks: &str, tools: &str| load(ks, tools).unwrap_err().to_string();
        let e = err(
            "  enabled: true\n  triggers:\n    - on_tool_denials: 0\n",
            tools,
        );
        assert!(
            e.starts_with("p.yaml:7:24: on_tool_denials 0 is out of range"),
            "{e}"
        );
        let e = err(
            "  enabled: true\n  triggers:\n    - on_tool_denials: x\n",
            tools,
        );
        assert!(e.contains("must be a number of refused tool calls"), "{e}");
        let e = err(
            "  enabled: true\n  triggers:\n    - on_tool_denials: 2\n",
            "",
        );
        assert!(
            e.starts_with("p.yaml:5:24: on_tool_denials needs `tools`"),
            "{e}"
        );
        let e = err(
            "  enabled: false\n  triggers:\n    - on_tool_denials: 2\n",
            tools,
        );
        assert!(
            e.starts_with("p.yaml:5:12: kill_switch.triggers has on_tool_denials but"),
            "{e}"
        );
        let e = err(
            "  enabled: true\n  triggers:\n    - {on_tool_denials: 2}\n    - {on_tool_denials: 3}\n",
            tools,
        );
        assert!(e.contains("more than one on_tool_denials trigger"), "{e}");
        let e = err(
            "  enabled: true\n  triggers:\n    - {on_tool_denials: 2, on_rule: r}\n",
            tools,
        );
        assert!(e.contains("either on_rule or on_tool_denials"), "{e}");
    }
}
