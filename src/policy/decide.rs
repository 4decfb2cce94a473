//! Tool-call decisions: `tools.deny`, then `tools.allow`, then the tool's
//! JSON Schema. A call is allowed only when every applicable check passes.

use std::collections::BTreeMap;

use jsonschema::Validator;
use serde::Serialize;

use super::model::{Policy, Tools};
use super::schema::{self, SchemaError};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    pub tool: String,
    /// Why the call was denied; empty when allowed.
    pub reasons: Vec<Reason>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The tool is listed in `tools.deny`.
    DenyList,
    /// `tools.allow` exists and does not list the tool.
    NotInAllowList,
    /// The arguments violate the tool's schema.
    Schema {
        /// The failing JSON Schema keyword (`pattern`, `required`, ...).
        keyword: String,
        /// JSON Pointer into the arguments.
        instance_path: String,
        /// JSON Pointer into the tool's schema.
        schema_path: String,
        message: String,
    },
}

/// A tool's schema that does not compile (only for a [`Policy`] built by
/// hand: the loader compiles every schema).
#[derive(Debug, thiserror::Error)]
#[error("schema for tool `{tool}`: {source}")]
pub struct GateError {
    pub tool: String,
    pub source: SchemaError,
}

/// Compiled schemas of a policy, for judging many calls. It owns what it
/// needs, so the stdio gate's threads can share it.
pub struct Gate {
    tools: Tools,
    validators: BTreeMap<String, Validator>,
}

impl Gate {
    /// Compile every schema once. The loader already compiled them, so this
    /// only fails for a `Policy` built by hand with a broken schema.
    pub fn new(policy: &Policy) -> Result<Gate, GateError> {
        let mut validators = BTreeMap::new();
        for (tool, s) in &policy.schemas {
            let v = schema::compile(s).map_err(|source| GateError {
                tool: tool.clone(),
                source,
            })?;
            validators.insert(tool.clone(), v);
        }
        Ok(Gate {
            tools: policy.tools.clone(),
            validators,
        })
    }

    /// Whether `tools.allow`/`tools.deny` let this tool be called at all
    /// (its schema aside): what a filtered `tools/list` shows.
    pub fn listed(&self, tool: &str) -> bool {
        list_reasons(&self.tools, tool).is_empty()
    }

    pub fn decide(&self, tool: &str, arguments: &serde_json::Value) -> Decision {
        let mut reasons = list_reasons(&self.tools, tool);
        if reasons.is_empty() {
            if let Some(v) = self.validators.get(tool) {
                reasons.extend(schema_reasons(v, arguments));
            }
        }
        Decision {
            allowed: reasons.is_empty(),
            tool: tool.to_string(),
            reasons,
        }
    }
}

fn list_reasons(tools: &Tools, tool: &str) -> Vec<Reason> {
    if tools.deny.iter().any(|t| t == tool) {
        return vec![Reason::DenyList];
    }
    match &tools.allow {
        Some(allow) if !allow.iter().any(|t| t == tool) => vec![Reason::NotInAllowList],
        _ => Vec::new(),
    }
}

fn schema_reasons(v: &Validator, arguments: &serde_json::Value) -> Vec<Reason> {
    v.iter_errors(arguments)
        .map(|e| Reason::Schema {
            keyword: e.kind().keyword().to_string(),
            instance_path: e.instance_path().as_str().to_string(),
            schema_path: e.schema_path().as_str().to_string(),
            message: e.to_string(),
        })
        .collect()
}

/// Judge one tool call. Compiles only this tool's schema; to judge many
/// calls, build a [`Gate`] once.
pub fn decide(policy: &Policy, tool: &str, arguments: &serde_json::Value) -> Decision {
    let mut reasons = list_reasons(&policy.tools, tool);
    if reasons.is_empty() {
        if let Some(s) = policy.schemas.get(tool) {
            match schema::compile(s) {
                Ok(v) => reasons.extend(schema_reasons(&v, arguments)),
                // Fail closed: a schema that cannot be compiled denies.
                Err(e) => reasons.push(Reason::Schema {
                    keyword: "$schema".into(),
                    instance_path: String::new(),
                    schema_path: String::new(),
                    message: format!("the tool's schema does not compile: {e}"),
                }),
            }
        }
    }
    Decision {
        allowed: reasons.is_empty(),
        tool: tool.to_string(),
        reasons,
    }
}

/// Why a `policy check` input line is not a tool call.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("not valid JSON: {0}")]
    Json(serde_json::Error),
    #[error("expected a JSON object {{\"tool\": ..., \"arguments\": {{...}}}}")]
    NotAnObject,
    #[error("unknown key `{0}` (allowed: tool, arguments, id)")]
    UnknownKey(String),
    #[error("`tool` must be a non-empty string")]
    BadTool,
    #[error("missing `tool`")]
    MissingTool,
    #[error("`arguments` must be a JSON object")]
    BadArguments,
}

/// One tool call as `policy check` reads it: `{"tool": "...", "arguments": {...}}`
/// with an optional `id` that is echoed back. Unknown keys are errors, so a
/// misspelt `argumnets` cannot make a call look argument-free.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: Option<serde_json::Value>,
    pub tool: String,
    pub arguments: serde_json::Value,
}

impl ToolCall {
    pub fn parse_line(line: &str) -> Result<ToolCall, CallError> {
        let v: serde_json::Value = serde_json::from_str(line).map_err(CallError::Json)?;
        let serde_json::Value::Object(mut obj) = v else {
            return Err(CallError::NotAnObject);
        };
        if let Some(k) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "tool" | "arguments" | "id"))
        {
            return Err(CallError::UnknownKey(k.clone()));
        }
        let tool = match obj.remove("tool") {
            Some(serde_json::Value::String(t)) if !t.is_empty() => t,
            Some(_) => return Err(CallError::BadTool),
            None => return Err(CallError::MissingTool),
        };
        // MCP `tools/call` arguments are an object; absent means none.
        let arguments = match obj.remove("arguments") {
            None => serde_json::Value::Object(serde_json::Map::new()),
            Some(a @ serde_json::Value::Object(_)) => a,
            Some(_) => return Err(CallError::BadArguments),
        };
        Ok(ToolCall {
            id: obj.remove("id"),
            tool,
            arguments,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    fn policy() -> Policy {
        super::super::load_str(
            r#"
version: "2.0"
tools:
  allow: [read_file, list_directory]
  deny: [exec]
schemas:
  read_file:
    type: object
    properties:
      path: {type: string, pattern: "^/data/.*"}
    required: [path]
    additionalProperties: false
"#,
            Path::new("t.yaml"),
        )
        .unwrap()
    }

    #[test]
    fn allow_deny_and_schema() {
        let p = policy();
        let gate = Gate::new(&p).unwrap();
        for d in [
            decide(&p, "read_file", &json!({"path": "/data/x"})),
            gate.decide("read_file", &json!({"path": "/data/x"})),
        ] {
            assert!(d.allowed, "{d:?}");
        }
        assert!(gate.decide("list_directory", &json!({})).allowed);
        assert_eq!(
            gate.decide("exec", &json!({})).reasons,
            vec![Reason::DenyList]
        );
        assert_eq!(
            gate.decide("write_file", &json!({})).reasons,
            vec![Reason::NotInAllowList]
        );
        let d = decide(&p, "read_file", &json!({"path": "/etc/shadow"}));
        assert!(!d.allowed);
        let Reason::Schema {
            keyword,
            instance_path,
            schema_path,
            ..
        } = &d.reasons[0]
        else {
            panic!("{d:?}")
        };
        assert_eq!(keyword, "pattern");
        assert_eq!(instance_path, "/path");
        assert_eq!(schema_path, "/properties/path/pattern");
        // Every violation is reported, not only the first.
        let d = gate.decide("read_file", &json!({"extra": 1}));
        let kws: Vec<_> = d
            .reasons
            .iter()
            .map(|r| match r {
                Reason::Schema { keyword, .. } => keyword.as_str(),
                _ => "",
            })
            .collect();
        assert!(
            kws.contains(&"required") && kws.contains(&"additionalProperties"),
            "{kws:?}"
        );
    }

    #[test]
    fn tool_call_lines() {
        let c = ToolCall::parse_line(r#"{"tool":"a","arguments":{"x":1},"id":7}"#).unwrap();
        assert_eq!(c.tool, "a");
        assert_eq!(c.id, Some(json!(7)));
        assert_eq!(
            ToolCall::parse_line(r#"{"tool":"a"}"#).unwrap().arguments,
            json!({})
        );
        assert!(ToolCall::parse_line("[1]").is_err());
        assert!(
            ToolCall::parse_line(r#"{"tool":"a","argumnets":{}}"#)
                .unwrap_err()
                .to_string()
                .contains("argumnets")
        );
        assert!(ToolCall::parse_line(r#"{"tool":"a","arguments":[1]}"#).is_err());
        assert!(ToolCall::parse_line(r#"{"arguments":{}}"#).is_err());
        assert!(ToolCall::parse_line("{").is_err());
    }

    #[test]
    fn tool_call_errors_read_as_before() {
        let e = |line| ToolCall::parse_line(line).unwrap_err().to_string();
        assert_eq!(
            e("[1]"),
            r#"expected a JSON object {"tool": ..., "arguments": {...}}"#
        );
        assert!(e("{").starts_with("not valid JSON: "));
        assert_eq!(e(r#"{"tool":""}"#), "`tool` must be a non-empty string");
    }
}
