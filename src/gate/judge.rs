//! The gate's decisions, as data: what to do with one line the client sent
//! (forward it, or answer it in the server's place) and with one line the
//! server sent (forward it, or a filtered `tools/list` result). No I/O here;
//! `relay` reads, writes and stamps the time.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;

use super::args;
use crate::policy::{Decision, Gate, Reason};

/// JSON-RPC's "Parse error", "Invalid Request" and "Invalid params" codes
/// (JSON-RPC 2.0 §5.1). MCP answers a `tools/call` that fails its own
/// request schema with "Invalid params".
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const INVALID_PARAMS: i64 = -32602;

/// Where the refusal's details live in the result's `_meta` (MCP reserves
/// `_meta` for such data; a prefix keeps the key out of others' way).
pub const REFUSAL_META: &str = "assay/refusal";

/// Outstanding `tools/list` requests the gate keeps at most. A client that
/// never reads its answers cannot grow this without bound; the oldest is
/// forgotten first (its answer then passes unfiltered, its tools' calls are
/// still judged).
const MAX_PENDING_LISTS: usize = 1024;

/// Which part of the policy decided a call, in events and refusals.
pub mod rule {
    pub const DENY_LIST: &str = "tools.deny";
    pub const ALLOW_LIST: &str = "tools.allow";
    /// `schemas.<tool>`.
    pub const SCHEMA_PREFIX: &str = "schemas.";
    /// A `tools/call` without a string `name`, or with non-object arguments.
    pub const MALFORMED: &str = "gate.malformed";
    /// A line that is not JSON the gate can read but may be a tool call.
    pub const UNREADABLE: &str = "gate.unreadable";
}

/// One judged call: the data of a `tool_call` event, less its time.
#[derive(Debug, Clone, PartialEq)]
pub struct CallVerdict {
    /// The request's id as the client wrote it (JSON text); None for a
    /// notification or an unreadable line.
    pub id: Option<String>,
    /// None when the line could not be read.
    pub tool: Option<String>,
    pub allowed: bool,
    /// None when allowed.
    pub rule: Option<String>,
    /// For a schema violation: JSON Pointers into the tool's schema and into
    /// the arguments.
    pub schema_path: Option<String>,
    pub instance_path: Option<String>,
    /// Why it was refused, in words.
    pub message: Option<String>,
    /// The arguments, summarised with secrets redacted ([`args::summary`]).
    pub arguments: Value,
}

/// What to do with one line from the client.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientAction {
    /// Forward the line exactly as read.
    Forward,
    /// Forward `forward` instead (a batch without its refused members; the
    /// members kept are their original bytes), and send `reply` to the
    /// client (None: nothing to answer, e.g. a refused notification).
    Rewrite {
        forward: Option<Vec<u8>>,
        reply: Option<Vec<u8>>,
    },
}

/// The judgement of one client line.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientJudgement {
    pub action: ClientAction,
    /// One per `tools/call` found (a batch may hold several).
    pub calls: Vec<CallVerdict>,
}

/// The gate's state shared by both directions: the policy, and the ids of
/// `tools/list` requests whose answers are to be filtered.
pub struct Judge {
    gate: Gate,
    /// Hide denied tools from `tools/list` results.
    filter_lists: bool,
    pending: Mutex<VecDeque<String>>,
    /// `pending.len()`, read without the lock on every server line.
    pending_len: AtomicUsize,
}

/// The members of a JSON-RPC message the gate reads. Other members are
/// skipped (but still parsed: a line that is not one JSON value is not a
/// message). A duplicate member is an error, never "the first one wins".
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    /// Present even when `null` (an explicit null id still gets an answer).
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    params: Option<&'a RawValue>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct CallParams<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(default)]
    arguments: Option<Value>,
}

/// What one message (a line, or a member of a batch) is.
enum Judged {
    Forward,
    /// Refused; the reply when it was a request.
    Refused(Option<String>),
}

impl Judge {
    pub fn new(gate: Gate, filter_lists: bool) -> Judge {
        Judge {
            gate,
            filter_lists,
            pending: Mutex::new(VecDeque::new()),
            pending_len: AtomicUsize::new(0),
        }
    }

    /// Judges one line from the client (without its newline, which the
    /// caller keeps). Records `tools/list` ids before the line is forwarded,
    /// so the answer cannot overtake the record.
    pub fn client_line(&self, line: &[u8]) -> ClientJudgement {
        let mut calls = Vec::new();
        let text = trim(line);
        if text.first() == Some(&b'[') {
            if let Ok(members) = serde_json::from_slice::<Vec<&RawValue>>(text) {
                return self.batch(&members, calls);
            }
        }
        match self.one(text, &mut calls) {
            Judged::Forward => ClientJudgement {
                action: ClientAction::Forward,
                calls,
            },
            Judged::Refused(reply) => ClientJudgement {
                action: ClientAction::Rewrite {
                    forward: None,
                    reply: reply.map(|r| r.into_bytes()),
                },
                calls,
            },
        }
    }

    /// A JSON-RPC batch (MCP 2025-03-26): each member judged alone; the
    /// allowed ones forwarded in one batch of their original bytes, the
    /// refusals answered in one batch.
    fn batch(&self, members: &[&RawValue], mut calls: Vec<CallVerdict>) -> ClientJudgement {
        let mut kept: Vec<&str> = Vec::with_capacity(members.len());
        let mut replies: Vec<String> = Vec::new();
        for m in members {
            match self.one(m.get().as_bytes(), &mut calls) {
                Judged::Forward => kept.push(m.get()),
                Judged::Refused(r) => replies.extend(r),
            }
        }
        if kept.len() == members.len() {
            return ClientJudgement {
                action: ClientAction::Forward,
                calls,
            };
        }
        let join = |items: &[&str]| format!("[{}]", items.join(",")).into_bytes();
        let replies: Vec<&str> = replies.iter().map(String::as_str).collect();
        ClientJudgement {
            action: ClientAction::Rewrite {
                forward: (!kept.is_empty()).then(|| join(&kept)),
                reply: (!replies.is_empty()).then(|| join(&replies)),
            },
            calls,
        }
    }

    fn one(&self, text: &[u8], calls: &mut Vec<CallVerdict>) -> Judged {
        let env = match serde_json::from_slice::<Envelope>(text) {
            Ok(e) => e,
            Err(_) => return self.unreadable(text, calls),
        };
        match env.method.as_deref() {
            Some("tools/call") => self.call(&env, calls),
            Some("tools/list") if self.filter_lists => {
                if let Some(id) = env.id {
                    self.expect_list(id.get());
                }
                Judged::Forward
            }
            _ => Judged::Forward,
        }
    }

    /// Not JSON the gate can read (invalid UTF-8, NaN, a lone surrogate,
    /// nesting deeper than 128, two values on a line, a duplicate member).
    /// Passed through, as the server answers it itself, unless a lenient
    /// parser could still read a tool call out of it: JSON spells the
    /// method either literally or with `\/` or `\u` escapes, so a line
    /// without those cannot carry one.
    fn unreadable(&self, text: &[u8], calls: &mut Vec<CallVerdict>) -> Judged {
        let may_call = contains(text, b"tools/call")
            || contains(text, b"tools\\/call")
            || contains(text, b"\\u");
        if !may_call {
            return Judged::Forward;
        }
        let message = "the message is not JSON that assay can read, and may be a tool call";
        calls.push(CallVerdict {
            id: None,
            tool: None,
            allowed: false,
            rule: Some(rule::UNREADABLE.into()),
            schema_path: None,
            instance_path: None,
            message: Some(message.into()),
            arguments: Value::Null,
        });
        Judged::Refused(Some(error_reply(
            "null",
            PARSE_ERROR,
            &format!("assay: {message}; it was not forwarded"),
        )))
    }

    fn call(&self, env: &Envelope, calls: &mut Vec<CallVerdict>) -> Judged {
        let id = env.id.map(|r| r.get().to_string());
        let params = env
            .params
            .and_then(|p| serde_json::from_str::<CallParams>(p.get()).ok());
        let (name, arguments) = match params {
            Some(p) => match p.arguments {
                None | Some(Value::Null) => (p.name, Value::Object(Default::default())),
                Some(a @ Value::Object(_)) => (p.name, a),
                Some(other) => {
                    return self.malformed(
                        id,
                        Some(p.name.into_owned()),
                        &other,
                        "`params.arguments` is not an object",
                        calls,
                    );
                }
            },
            None => {
                return self.malformed(
                    id,
                    None,
                    &Value::Null,
                    "`params.name` is not a string",
                    calls,
                );
            }
        };
        let decision = self.gate.decide(&name, &arguments);
        let verdict = verdict(id, &decision, &arguments);
        let reply = (!decision.allowed)
            .then(|| verdict.id.as_deref().map(|id| refusal(id, &verdict)))
            .flatten();
        calls.push(verdict);
        if decision.allowed {
            Judged::Forward
        } else {
            Judged::Refused(reply)
        }
    }

    fn malformed(
        &self,
        id: Option<String>,
        tool: Option<String>,
        arguments: &Value,
        why: &str,
        calls: &mut Vec<CallVerdict>,
    ) -> Judged {
        let message = format!("malformed tools/call: {why}");
        let reply = id
            .as_deref()
            .map(|id| error_reply(id, INVALID_PARAMS, &format!("assay: {message}")));
        calls.push(CallVerdict {
            id,
            tool,
            allowed: false,
            rule: Some(rule::MALFORMED.into()),
            schema_path: None,
            instance_path: None,
            message: Some(message),
            arguments: args::summary(arguments),
        });
        Judged::Refused(reply)
    }

    fn expect_list(&self, id: &str) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if p.len() == MAX_PENDING_LISTS {
            p.pop_front();
        }
        p.push_back(canonical_id(id));
        self.pending_len.store(p.len(), Ordering::Release);
    }

    /// Whether any server line may need rewriting: false on the fast path
    /// (no `tools/list` awaiting its answer), where lines pass unparsed.
    pub fn server_needs_look(&self) -> bool {
        self.pending_len.load(Ordering::Acquire) > 0
    }

    /// A server line (without its newline): Some(new line) when it answers
    /// a pending `tools/list` and a tool the policy denies was hidden.
    pub fn server_line(&self, line: &[u8]) -> Option<Vec<u8>> {
        let text = trim(line);
        // Only objects and arrays can be answers; skip everything else unparsed.
        if !matches!(text.first(), Some(b'{') | Some(b'[')) {
            return None;
        }
        let mut v: Value = serde_json::from_slice(text).ok()?;
        let changed = match &mut v {
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |c, item| self.filter_answer(item) | c),
            item => self.filter_answer(item),
        };
        changed.then(|| serde_json::to_vec(&v).expect("a Value serialises"))
    }

    /// Filters one answer in place if it is the result of a pending
    /// `tools/list`; true when something was hidden.
    fn filter_answer(&self, msg: &mut Value) -> bool {
        let Some(obj) = msg.as_object_mut() else {
            return false;
        };
        if obj.contains_key("method") {
            return false;
        }
        let Some(id) = obj.get("id") else {
            return false;
        };
        let key = serde_json::to_string(id).expect("a Value serialises");
        {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let Some(at) = p.iter().position(|k| *k == key) else {
                return false;
            };
            p.remove(at);
            self.pending_len.store(p.len(), Ordering::Release);
        }
        let Some(tools) = obj
            .get_mut("result")
            .and_then(|r| r.get_mut("tools"))
            .and_then(Value::as_array_mut)
        else {
            return false;
        };
        let before = tools.len();
        tools.retain(|t| match t.get("name").and_then(Value::as_str) {
            Some(name) => self.gate.listed(name),
            // Not a tool the policy can name; the client will not call it.
            None => true,
        });
        tools.len() != before
    }
}

/// The id as `serde_json` writes it, so the request's `1` and the answer's
/// `1` (or `"a"` and `"\u0061"`) compare equal.
fn canonical_id(raw: &str) -> String {
    serde_json::from_str::<Value>(raw)
        .ok()
        .and_then(|v| serde_json::to_string(&v).ok())
        .unwrap_or_else(|| raw.to_string())
}

fn verdict(id: Option<String>, d: &Decision, arguments: &Value) -> CallVerdict {
    let mut v = CallVerdict {
        id,
        tool: Some(d.tool.clone()),
        allowed: d.allowed,
        rule: None,
        schema_path: None,
        instance_path: None,
        message: None,
        arguments: args::summary(arguments),
    };
    // The first reason decides what the event names; the message lists all.
    match d.reasons.first() {
        None => {}
        Some(Reason::DenyList) => {
            v.rule = Some(rule::DENY_LIST.into());
            v.message = Some(format!("tool `{}` is denied by the policy", d.tool));
        }
        Some(Reason::NotInAllowList) => {
            v.rule = Some(rule::ALLOW_LIST.into());
            v.message = Some(format!(
                "tool `{}` is not in the policy's allowed tools",
                d.tool
            ));
        }
        Some(Reason::Schema {
            instance_path,
            schema_path,
            ..
        }) => {
            v.rule = Some(format!("{}{}", rule::SCHEMA_PREFIX, d.tool));
            v.schema_path = Some(schema_path.clone());
            v.instance_path = Some(instance_path.clone());
            let all: Vec<String> = d
                .reasons
                .iter()
                .filter_map(|r| match r {
                    Reason::Schema {
                        instance_path,
                        message,
                        ..
                    } => Some(format!(
                        "{}: {}",
                        if instance_path.is_empty() {
                            "arguments"
                        } else {
                            instance_path
                        },
                        clip(message, 200)
                    )),
                    _ => None,
                })
                .collect();
            v.message = Some(format!(
                "the arguments of `{}` violate the policy's schema ({})",
                d.tool,
                all.join("; ")
            ));
        }
    }
    v
}

/// The answer to a refused `tools/call`: a tool result with `isError: true`
/// (the MCP form for a failure the model should see and can correct),
/// whose text says it was assay's policy, not the tool, and whose `_meta`
/// carries the details for programs.
pub fn refusal(id: &str, v: &CallVerdict) -> String {
    let message = v.message.as_deref().unwrap_or("refused by the policy");
    let text = format!("assay policy refused this tool call: {message}. The tool did not run.");
    let mut details = serde_json::Map::new();
    details.insert("tool".into(), v.tool.clone().into());
    details.insert("rule".into(), v.rule.clone().into());
    if let Some(p) = &v.schema_path {
        details.insert("schema_path".into(), p.clone().into());
    }
    if let Some(p) = &v.instance_path {
        details.insert("instance_path".into(), p.clone().into());
    }
    let result = serde_json::json!({
        "content": [{"type": "text", "text": text}],
        "isError": true,
        "_meta": {REFUSAL_META: details},
    });
    // The id is echoed as the client wrote it (any JSON type).
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"result":{}}}"#,
        serde_json::to_string(&result).expect("a Value serialises")
    )
}

fn error_reply(id: &str, code: i64, message: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{code},"message":{}}}}}"#,
        serde_json::to_string(message).expect("a string serialises")
    )
}

fn clip(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &s[..end]))
}

fn trim(line: &[u8]) -> &[u8] {
    let start = line
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &line[start..end]
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

/// The answer to a client line longer than the gate judges, and its event.
pub fn too_long(bytes: usize) -> (Vec<u8>, CallVerdict) {
    let message = format!(
        "a message of {bytes} bytes is longer than the {} bytes assay judges",
        super::relay::MAX_CLIENT_LINE
    );
    let reply = error_reply(
        "null",
        INVALID_REQUEST,
        &format!("assay: {message}; it was not forwarded"),
    );
    let call = CallVerdict {
        id: None,
        tool: None,
        allowed: false,
        rule: Some(rule::UNREADABLE.into()),
        schema_path: None,
        instance_path: None,
        message: Some(message),
        arguments: Value::Null,
    };
    (format!("{reply}\n").into_bytes(), call)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    pub(crate) const POLICY: &str = r#"
version: "2.0"
tools:
  allow: [read_file, list_directory, echo]
  deny: [exec]
schemas:
  read_file:
    type: object
    properties:
      path: {type: string, pattern: "^/data/"}
    required: [path]
"#;

    pub(crate) fn judge() -> Judge {
        let p = crate::policy::load_str(POLICY, Path::new("t.yaml")).unwrap();
        Judge::new(Gate::new(&p).unwrap(), true)
    }

    fn reply(j: &ClientJudgement) -> Value {
        match &j.action {
            ClientAction::Rewrite {
                reply: Some(r),
                forward: None,
            } => serde_json::from_slice(r).unwrap(),
            other => panic!("not a refusal: {other:?}"),
        }
    }

    fn call(id: &str, tool: &str, args: &str) -> String {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{args}}}}}"#
        )
    }

    #[test]
    fn allowed_calls_are_forwarded_and_reported() {
        let j = judge();
        let line = call("1", "read_file", r#"{"path":"/data/a"}"#);
        let d = j.client_line(line.as_bytes());
        assert_eq!(d.action, ClientAction::Forward);
        assert_eq!(d.calls.len(), 1);
        let c = &d.calls[0];
        assert!(c.allowed);
        assert_eq!(c.tool.as_deref(), Some("read_file"));
        assert_eq!(c.id.as_deref(), Some("1"));
        assert_eq!(c.rule, None);
        assert_eq!(c.arguments, json!({"path": "/data/a"}));
    }

    #[test]
    fn refusals_are_tool_errors_that_name_the_policy() {
        let j = judge();
        for (tool, args, rule_name) in [
            ("exec", "{}", "tools.deny"),
            ("write_file", "{}", "tools.allow"),
            (
                "read_file",
                r#"{"path":"/etc/shadow"}"#,
                "schemas.read_file",
            ),
        ] {
            let d = j.client_line(call(r#""r1""#, tool, args).as_bytes());
            let r = reply(&d);
            assert_eq!(r["jsonrpc"], "2.0");
            assert_eq!(r["id"], "r1");
            assert_eq!(r["result"]["isError"], true);
            let text = r["result"]["content"][0]["text"].as_str().unwrap();
            assert!(
                text.starts_with("assay policy refused this tool call: "),
                "{text}"
            );
            assert_eq!(r["result"]["_meta"][REFUSAL_META]["rule"], rule_name);
            assert_eq!(r["result"]["_meta"][REFUSAL_META]["tool"], tool);
            let c = &d.calls[0];
            assert!(!c.allowed);
            assert_eq!(c.rule.as_deref(), Some(rule_name));
        }
        let d = j.client_line(call("2", "read_file", r#"{"path":"/etc/shadow"}"#).as_bytes());
        let c = &d.calls[0];
        assert_eq!(c.schema_path.as_deref(), Some("/properties/path/pattern"));
        assert_eq!(c.instance_path.as_deref(), Some("/path"));
        let r = reply(&d);
        assert_eq!(
            r["result"]["_meta"][REFUSAL_META]["schema_path"],
            "/properties/path/pattern"
        );
    }

    #[test]
    fn ids_of_every_json_type_are_echoed_as_written() {
        let j = judge();
        for id in [
            "0",
            "-1",
            "1.5",
            "1e3",
            "-0",
            "123456789012345678901234567890",
            r#""""#,
            r#""a\"b\u00e9""#,
            "null",
            r#"{"x":[1]}"#,
            "[1,2]",
            "true",
        ] {
            let d = j.client_line(call(id, "exec", "{}").as_bytes());
            let ClientAction::Rewrite {
                reply: Some(r),
                forward: None,
            } = &d.action
            else {
                panic!("{id}: {d:?}")
            };
            let text = std::str::from_utf8(r).unwrap();
            assert!(
                text.starts_with(&format!(r#"{{"jsonrpc":"2.0","id":{id},"result":"#)),
                "{text}"
            );
            serde_json::from_str::<Value>(text).unwrap();
        }
    }

    #[test]
    fn a_refused_notification_is_dropped_without_an_answer() {
        let j = judge();
        let line = r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"exec"}}"#;
        let d = j.client_line(line.as_bytes());
        assert_eq!(
            d.action,
            ClientAction::Rewrite {
                forward: None,
                reply: None
            }
        );
        assert_eq!(d.calls[0].id, None);
    }

    #[test]
    fn malformed_calls_are_refused() {
        let j = judge();
        for params in [
            r#"{"name":5}"#,
            r#"{"arguments":{}}"#,
            r#""exec""#,
            r#"{"name":"echo","arguments":[1]}"#,
            r#"{"name":"echo","arguments":"x"}"#,
        ] {
            let line =
                format!(r#"{{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{params}}}"#);
            let d = j.client_line(line.as_bytes());
            let r = reply(&d);
            assert_eq!(r["error"]["code"], INVALID_PARAMS, "{params}");
            assert_eq!(d.calls[0].rule.as_deref(), Some(rule::MALFORMED));
        }
        let no_params = r#"{"jsonrpc":"2.0","id":9,"method":"tools/call"}"#;
        assert_eq!(reply(&j.client_line(no_params.as_bytes()))["id"], 9);
        // Absent or null arguments are no arguments.
        let none = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":null}}"#;
        assert_eq!(j.client_line(none.as_bytes()).action, ClientAction::Forward);
    }

    #[test]
    fn other_messages_pass_whatever_they_hold() {
        let j = judge();
        for line in [
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":"s1","result":{"roots":[]}}"#,
            r#"{"jsonrpc":"2.0","id":3,"error":{"code":-1,"message":"no"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/callx","params":{"name":"exec"}}"#,
            "",
            "   ",
            "[]",
            "42",
            "not json at all",
            "{\"a\":",
        ] {
            let d = j.client_line(line.as_bytes());
            assert_eq!(d.action, ClientAction::Forward, "{line}");
            assert!(d.calls.is_empty());
        }
        // Invalid UTF-8 that cannot be a call.
        assert_eq!(
            j.client_line(b"{\"x\":\"\xff\xfe\"}").action,
            ClientAction::Forward
        );
    }

    #[test]
    fn unreadable_lines_that_may_be_calls_are_refused() {
        let j = judge();
        for line in [
            // Python's json reads NaN; serde_json does not.
            call("1", "exec", r#"{"x":NaN}"#),
            // Escaped method name plus trailing garbage.
            r#"{"jsonrpc":"2.0","id":1,"method":"tools\u002fcall","params":{"name":"exec"}} x"#
                .into(),
            r#"{"id":1,"method":"tools\/call","params":{"name":"exec"}}{"id":2}"#.into(),
            // A duplicate member: parsers differ on which one wins.
            r#"{"id":1,"method":"tools/call","params":{"name":"echo"},"params":{"name":"exec"}}"#
                .into(),
            format!("{}{}", call("1", "exec", "{}"), "\u{0}"),
        ] {
            let d = j.client_line(line.as_bytes());
            let r = reply(&d);
            assert_eq!(r["error"]["code"], PARSE_ERROR, "{line}");
            assert_eq!(r["id"], Value::Null);
            assert_eq!(d.calls[0].rule.as_deref(), Some(rule::UNREADABLE));
        }
        // A lone surrogate (JavaScript and Python read it): the arguments
        // cannot be judged, so the call is refused as malformed.
        let lone = call("1", "echo", r#"{"x":"\ud800"}"#);
        let d = j.client_line(lone.as_bytes());
        assert_eq!(reply(&d)["error"]["code"], INVALID_PARAMS);
        assert!(!d.calls[0].allowed);
        let mut bad = call("1", "exec", "{}").into_bytes();
        bad.insert(5, 0xff);
        assert_eq!(reply(&j.client_line(&bad))["error"]["code"], PARSE_ERROR);
    }

    #[test]
    fn batches_are_judged_member_by_member_keeping_their_bytes() {
        let j = judge();
        let ok = r#"{ "jsonrpc" : "2.0", "id" : 1, "method":"tools/call","params":{"name":"echo","arguments":{"t":"é"}} }"#;
        let bad = call("2", "exec", "{}");
        let note = r#"{"jsonrpc":"2.0","method":"notifications/progress"}"#;
        let line = format!("[{ok},  {bad} ,{note}]");
        let d = j.client_line(line.as_bytes());
        let ClientAction::Rewrite {
            forward: Some(f),
            reply: Some(r),
        } = &d.action
        else {
            panic!("{d:?}")
        };
        assert_eq!(std::str::from_utf8(f).unwrap(), format!("[{ok},{note}]"));
        let r: Value = serde_json::from_slice(r).unwrap();
        assert_eq!(r.as_array().unwrap().len(), 1);
        assert_eq!(r[0]["id"], 2);
        assert_eq!(d.calls.len(), 2);
        // All allowed: the line itself.
        let fine = format!("[{ok} , {note}]");
        assert_eq!(j.client_line(fine.as_bytes()).action, ClientAction::Forward);
        // All refused: nothing forwarded.
        let all = format!("[{bad}]");
        assert!(matches!(
            j.client_line(all.as_bytes()).action,
            ClientAction::Rewrite {
                forward: None,
                reply: Some(_)
            }
        ));
    }

    #[test]
    fn tools_list_answers_hide_denied_tools() {
        let j = judge();
        let answer = |id: &str| {
            format!(
                r#"{{"jsonrpc":"2.0","id":{id},"result":{{"tools":[{{"name":"echo","inputSchema":{{}}}},{{"name":"exec"}},{{"name":"write_file"}},{{"name":"read_file"}}],"nextCursor":"c"}}}}"#
            )
        };
        // Nothing awaited: never parsed, never changed.
        assert!(!j.server_needs_look());
        assert_eq!(j.server_line(answer("7").as_bytes()), None);
        let req = r#"{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{}}"#;
        assert_eq!(j.client_line(req.as_bytes()).action, ClientAction::Forward);
        assert!(j.server_needs_look());
        // Another id, a notification, a server request: untouched.
        assert_eq!(j.server_line(answer(r#""7""#).as_bytes()), None);
        assert_eq!(
            j.server_line(br#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#),
            None
        );
        assert_eq!(
            j.server_line(br#"{"jsonrpc":"2.0","id":7,"method":"sampling/createMessage"}"#),
            None
        );
        let out: Value =
            serde_json::from_slice(&j.server_line(answer("7").as_bytes()).unwrap()).unwrap();
        let names: Vec<&str> = out["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["echo", "read_file"]);
        assert_eq!(out["result"]["nextCursor"], "c");
        assert!(!j.server_needs_look());
        // Answered once: a replay is not filtered again.
        assert_eq!(j.server_line(answer("7").as_bytes()), None);

        // Inside batches, and ids compared by value.
        j.client_line(format!("[{}]", req.replace("7", r#""\u0061""#)).as_bytes());
        let batch = format!("[{}]", answer(r#""a""#));
        let out: Value = serde_json::from_slice(&j.server_line(batch.as_bytes()).unwrap()).unwrap();
        assert_eq!(out[0]["result"]["tools"].as_array().unwrap().len(), 2);

        // With the flag to show them, nothing is awaited.
        let p = crate::policy::load_str(POLICY, Path::new("t.yaml")).unwrap();
        let show = Judge::new(Gate::new(&p).unwrap(), false);
        show.client_line(req.as_bytes());
        assert!(!show.server_needs_look());
    }

    #[test]
    fn pending_lists_are_bounded() {
        let j = judge();
        for i in 0..(MAX_PENDING_LISTS + 10) {
            j.client_line(format!(r#"{{"id":{i},"method":"tools/list"}}"#).as_bytes());
        }
        assert_eq!(j.pending.lock().unwrap().len(), MAX_PENDING_LISTS);
    }

    /// Deterministic xorshift: the same "random" cases on every run.
    pub(crate) struct Rng(u64);
    impl Rng {
        pub(crate) fn new(seed: u64) -> Rng {
            Rng(seed | 1)
        }
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// What a lenient reader would take for a `tools/call` of a tool the
    /// policy refuses, per message of the line.
    fn strict_calls(line: &[u8]) -> Vec<(String, Value)> {
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            return Vec::new();
        };
        let members = match v {
            Value::Array(a) => a,
            other => vec![other],
        };
        members
            .into_iter()
            .filter(|m| m["method"] == "tools/call")
            .map(|m| {
                let name = m["params"]["name"].as_str().unwrap_or("").to_string();
                (name, m["params"]["arguments"].clone())
            })
            .collect()
    }

    #[test]
    fn mutated_messages_never_crash_and_never_smuggle_a_refused_call() {
        let j = judge();
        let p = crate::policy::load_str(POLICY, Path::new("t.yaml")).unwrap();
        let seeds = [
            call("1", "exec", r#"{"cmd":"rm -rf /"}"#),
            call("\"x\"", "read_file", r#"{"path":"/etc/passwd"}"#),
            call("3", "read_file", r#"{"path":"/data/ok"}"#),
            format!("[{},{}]", call("1", "echo", "{}"), call("2", "exec", "{}")),
            r#"{"jsonrpc":"2.0","id":5,"method":"tools/list"}"#.to_string(),
            r#"{"jsonrpc":"2.0","id":5,"result":{"tools":[{"name":"exec"}]}}"#.to_string(),
        ];
        let alphabet: &[u8] = b"{}[]\",:\\/u0ae \xff\x00tools/call\n\rexec";
        let mut rng = Rng::new(0x5eed);
        for round in 0..30_000 {
            let mut line = seeds[round % seeds.len()].clone().into_bytes();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(line.len() + 1);
                match rng.below(3) {
                    0 if at < line.len() => {
                        line.remove(at);
                    }
                    1 if at < line.len() => line[at] = alphabet[rng.below(alphabet.len())],
                    _ => line.insert(at, alphabet[rng.below(alphabet.len())]),
                }
            }
            let d = j.client_line(&line);
            let _ = j.server_line(&line);
            if d.action == ClientAction::Forward {
                for (tool, args) in strict_calls(&line) {
                    let args = if args.is_null() { json!({}) } else { args };
                    let ok = crate::policy::decide(&p, &tool, &args).allowed;
                    assert!(
                        ok,
                        "forwarded a refused call: {}",
                        String::from_utf8_lossy(&line)
                    );
                }
            }
        }
    }

    #[test]
    fn hostile_sizes_and_depths_do_not_crash() {
        let j = judge();
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(j.client_line(deep.as_bytes()).action, ClientAction::Forward);
        let deep_call = call(
            "1",
            "echo",
            &format!("{}1{}", "[".repeat(5000), "]".repeat(5000)),
        );
        assert!(matches!(
            j.client_line(deep_call.as_bytes()).action,
            ClientAction::Rewrite { .. }
        ));
        let huge = "x".repeat(20 << 20);
        let big = call("1", "read_file", &format!(r#"{{"path":"/data/{huge}"}}"#));
        let d = j.client_line(big.as_bytes());
        assert_eq!(d.action, ClientAction::Forward);
        assert!(d.calls[0].arguments["path"].as_str().unwrap().len() < 300);
        let big_bad = call("1", "read_file", &format!(r#"{{"path":"/etc/{huge}"}}"#));
        let r = reply(&j.client_line(big_bad.as_bytes()));
        assert!(
            r.to_string().len() < 4096,
            "the refusal does not echo the argument"
        );
    }
}
