//! The gate's `tool_call` event as a JSON line (events schema v1, beside the
//! monitor's kinds; see docs/monitor.md). Not behind the `monitor` feature:
//! `--gate-only` writes it without BPF.

use serde::Serialize;
use serde_json::Value;

use crate::gate::ToolCallEvent;
use crate::time::rfc3339;

/// The `schema` of every event line, the monitor's kinds and this one
/// (schemas/assay.monitor.event.v1.json).
pub const EVENT_SCHEMA: &str = "assay.monitor.event/v1";

#[derive(Serialize)]
struct Dto<'a> {
    schema: &'static str,
    time: String,
    kind: &'static str,
    /// "allow" or "deny".
    decision: &'static str,
    /// Null when the message could not be read.
    tool: Option<&'a str>,
    /// The request id as the client sent it (null: a notification, or not
    /// readable).
    id: Option<Value>,
    /// Which part of the policy refused it; null when allowed.
    rule: Option<&'a str>,
    schema_path: Option<&'a str>,
    instance_path: Option<&'a str>,
    message: Option<&'a str>,
    /// Summarised, secrets redacted.
    arguments: &'a Value,
}

/// One `tool_call` event, without the newline.
pub fn tool_call_json(ev: &ToolCallEvent) -> String {
    let c = &ev.call;
    let dto = Dto {
        schema: EVENT_SCHEMA,
        time: rfc3339(ev.time_ns),
        kind: "tool_call",
        decision: if c.allowed { "allow" } else { "deny" },
        tool: c.tool.as_deref(),
        id: c
            .id
            .as_deref()
            .map(|raw| serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.into()))),
        rule: c.rule.as_deref(),
        schema_path: c.schema_path.as_deref(),
        instance_path: c.instance_path.as_deref(),
        message: c.message.as_deref(),
        arguments: &c.arguments,
    };
    serde_json::to_string(&dto).expect("the DTO serialises")
}

/// What the gate judged, for people: `12 tool call(s), 2 refused`.
#[cfg(unix)]
pub fn counts_text(c: &crate::gate::run::Counts) -> String {
    format!(
        "{} tool call(s), {} refused{}",
        c.calls,
        c.denied,
        if c.killed {
            "; the server was killed for repeated refusals"
        } else {
            ""
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::CallVerdict;
    use serde_json::json;

    #[test]
    fn tool_call_event_schema() {
        let ev = ToolCallEvent {
            time_ns: 1_700_000_000_123_000_000,
            call: CallVerdict {
                id: Some(r#""req-1""#.into()),
                tool: Some("read_file".into()),
                allowed: false,
                rule: Some("schemas.read_file".into()),
                schema_path: Some("/properties/path/pattern".into()),
                instance_path: Some("/path".into()),
                message: Some("bad path".into()),
                arguments: json!({"path": "/etc/shadow"}),
            },
        };
        let j: Value = serde_json::from_str(&tool_call_json(&ev)).unwrap();
        assert_eq!(j["schema"], "assay.monitor.event/v1");
        assert_eq!(j["kind"], "tool_call");
        assert_eq!(j["decision"], "deny");
        assert_eq!(j["id"], "req-1");
        assert_eq!(j["rule"], "schemas.read_file");
        assert_eq!(j["schema_path"], "/properties/path/pattern");
        assert_eq!(j["instance_path"], "/path");
        assert_eq!(j["arguments"]["path"], "/etc/shadow");
        assert!(j["time"].as_str().unwrap().starts_with("2023-11-14T"));
    }
}
