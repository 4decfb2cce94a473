//! Tool-call arguments as events show them: bounded in size and depth, with
//! secret-looking values redacted. Events go to logs that people read; a
//! call's arguments may hold a token, or a whole file.

use serde_json::{Map, Value};

use crate::kill_switch::redact::{REDACTED, is_secret_name, is_secret_value};

/// Longest string kept (in characters); longer ones are cut and say how long
/// they were.
const MAX_STRING: usize = 120;
/// Members of an object or items of an array kept.
const MAX_ITEMS: usize = 16;
/// Levels below the arguments object kept.
const MAX_DEPTH: usize = 4;

/// The summary of a call's arguments.
pub fn summary(v: &Value) -> Value {
    walk(v, 0)
}

fn walk(v: &Value, depth: usize) -> Value {
    match v {
        Value::String(s) => string(s),
        Value::Array(items) => {
            if depth >= MAX_DEPTH {
                return Value::String(format!("<array of {}>", items.len()));
            }
            let mut out: Vec<Value> = items
                .iter()
                .take(MAX_ITEMS)
                .map(|i| walk(i, depth + 1))
                .collect();
            if items.len() > MAX_ITEMS {
                out.push(Value::String(format!("<{} more>", items.len() - MAX_ITEMS)));
            }
            Value::Array(out)
        }
        Value::Object(map) => {
            if depth >= MAX_DEPTH {
                return Value::String(format!("<object of {}>", map.len()));
            }
            let mut out = Map::new();
            for (k, v) in map.iter().take(MAX_ITEMS) {
                let kept = if is_secret_name(k) && !matches!(v, Value::Object(_) | Value::Array(_))
                {
                    Value::String(REDACTED.into())
                } else {
                    walk(v, depth + 1)
                };
                out.insert(k.clone(), kept);
            }
            if map.len() > MAX_ITEMS {
                out.insert(
                    "<more>".into(),
                    Value::String(format!("{} more members", map.len() - MAX_ITEMS)),
                );
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn string(s: &str) -> Value {
    if is_secret_value(s) {
        return Value::String(REDACTED.into());
    }
    let chars = s.chars().count();
    if chars <= MAX_STRING {
        return Value::String(s.to_string());
    }
    let head: String = s.chars().take(MAX_STRING).collect();
    Value::String(format!("{head}…<{chars} chars>"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_by_name_and_by_shape() {
        let s = summary(&json!({
            "path": "/data/a",
            "api_key": "plain",
            "headers": {"Authorization": "Bearer x"},
            "note": "ghp_0123456789abcdefghij",
        }));
        assert_eq!(s["path"], "/data/a");
        assert_eq!(s["api_key"], REDACTED);
        assert_eq!(s["headers"]["Authorization"], REDACTED);
        assert_eq!(s["note"], REDACTED);
    }

    #[test]
    fn size_and_depth_are_bounded() {
        let long = "é".repeat(10_000);
        let s = summary(&json!({"content": long}));
        let text = s["content"].as_str().unwrap();
        assert!(text.ends_with("…<10000 chars>"), "{text}");
        assert!(text.chars().count() < 200);
        let many: Vec<u32> = (0..1000).collect();
        let s = summary(&json!({"xs": many}));
        let xs = s["xs"].as_array().unwrap();
        assert_eq!(xs.len(), MAX_ITEMS + 1);
        assert_eq!(xs[MAX_ITEMS], "<984 more>");
        let mut deep = json!(1);
        for _ in 0..100 {
            deep = json!({ "d": deep });
        }
        let s = summary(&deep);
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.contains("<object of 1>"), "{text}");
        assert!(text.len() < 100, "{text}");
    }
}
