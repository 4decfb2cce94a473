//! Per-tool JSON Schemas: YAML to JSON, draft selection, and compilation with
//! the `jsonschema` crate (default features off: no HTTP or file retrieval, so
//! a `$ref` to a remote document is an error, never a network call).

use jsonschema::{Draft, Validator};
use serde_json::{Map, Number, Value};

use super::yaml::{Kind, Node, Pos, Scalar, classify};

const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";
const DRAFT_7: &str = "http://json-schema.org/draft-07/schema";

/// Why a schema cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("`$schema` must be a string")]
    DraftNotAString,
    #[error("unsupported `$schema` `{0}`; use {d2020} (the default) or {d7}#", d2020 = DRAFT_2020_12, d7 = DRAFT_7)]
    UnsupportedDraft(String),
    /// The `jsonschema` crate refused it (a meta-schema violation, an
    /// unresolvable `$ref`, ...).
    #[error(transparent)]
    Invalid(#[from] jsonschema::ValidationError<'static>),
}

/// The draft named by a schema's `$schema` (2020-12 when absent).
pub fn draft_of(schema: &Value) -> Result<Draft, SchemaError> {
    let Some(uri) = schema.get("$schema") else {
        return Ok(Draft::Draft202012);
    };
    let Some(uri) = uri.as_str() else {
        return Err(SchemaError::DraftNotAString);
    };
    let bare = uri.trim_end_matches('#');
    let https_7 = DRAFT_7.replacen("http:", "https:", 1);
    if bare == DRAFT_2020_12 {
        Ok(Draft::Draft202012)
    } else if bare == DRAFT_7 || bare == https_7 {
        Ok(Draft::Draft7)
    } else {
        Err(SchemaError::UnsupportedDraft(uri.to_string()))
    }
}

/// Compile a schema for its draft. Formats are asserted (not just annotated):
/// a policy that writes `format: uri` means it.
pub fn compile(schema: &Value) -> Result<Validator, SchemaError> {
    let draft = draft_of(schema)?;
    Ok(jsonschema::options()
        .with_draft(draft)
        .should_validate_formats(true)
        .build(schema)?)
}

/// A problem in a tool's schema, at its position in the policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Problem {
    pub pos: Pos,
    pub message: String,
}

impl Problem {
    fn new(pos: Pos, message: impl Into<String>) -> Problem {
        Problem {
            pos,
            message: message.into(),
        }
    }
}

/// Convert and compile the schema of `tool`; every problem is reported at
/// the position of the offending part of the schema.
pub(super) fn check(tool: &str, node: &Node) -> Result<Value, Vec<Problem>> {
    if !matches!(node.kind, Kind::Map(_)) && !matches!(node.scalar(), Some((Scalar::Bool(_), _))) {
        return Err(vec![Problem::new(
            node.pos,
            format!(
                "schema for tool `{tool}` must be a mapping (a JSON Schema object) or a \
                 boolean, found {}",
                node.type_name()
            ),
        )]);
    }
    let json = to_json(node).map_err(|p| vec![p])?;
    let draft = match draft_of(&json) {
        Ok(d) => d,
        Err(why) => {
            let pos = locate(node, "/$schema").unwrap_or(node.pos);
            return Err(vec![Problem::new(
                pos,
                format!("schema for tool `{tool}`: {why}"),
            )]);
        }
    };
    // Compiling also checks the meta-schema, but stops at the first
    // violation; only when it fails is the meta-schema run again to report
    // every violation at its own position (the valid path pays once).
    let why = match compile(&json) {
        Ok(_) => return Ok(json),
        Err(why) => why,
    };
    let meta = match draft {
        Draft::Draft7 => jsonschema::draft7::meta::validator(),
        _ => jsonschema::draft202012::meta::validator(),
    };
    let mut problems = Vec::new();
    for e in meta.iter_errors(&json) {
        let pointer = e.instance_path().as_str().to_string();
        let pos = locate(node, &pointer).unwrap_or(node.pos);
        let at = if pointer.is_empty() {
            String::new()
        } else {
            format!(" at `{pointer}`")
        };
        problems.push(Problem::new(
            pos,
            format!(
                "invalid JSON Schema for tool `{tool}`{at}: {e} (meta-schema keyword `{}`)",
                e.kind().keyword()
            ),
        ));
    }
    if problems.is_empty() {
        problems.push(Problem::new(
            node.pos,
            format!("JSON Schema for tool `{tool}` does not compile: {why}"),
        ));
    }
    Err(problems)
}

/// The node a JSON Pointer (RFC 6901) designates inside `root`.
fn locate(root: &Node, pointer: &str) -> Option<Pos> {
    let mut node = root;
    if pointer.is_empty() {
        return Some(node.pos);
    }
    for raw in pointer.strip_prefix('/')?.split('/') {
        let seg = raw.replace("~1", "/").replace("~0", "~");
        node = match &node.kind {
            Kind::Map(entries) => {
                &entries
                    .iter()
                    .find(|(k, _)| k.scalar().map(|s| s.1) == Some(seg.as_str()))?
                    .1
            }
            Kind::Seq(items) => items.get(seg.parse::<usize>().ok()?)?,
            Kind::Scalar { .. } => return None,
        };
    }
    Some(node.pos)
}

/// YAML (core schema) to JSON. Non-finite floats and integers outside
/// i64/u64 have no JSON form and are errors; the first one found is reported.
fn to_json(node: &Node) -> Result<Value, Problem> {
    match &node.kind {
        Kind::Scalar { text, plain } => Ok(match classify(text, *plain) {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::Int(i) => {
                if let Ok(v) = i64::try_from(i) {
                    Value::Number(v.into())
                } else if let Ok(v) = u64::try_from(i) {
                    Value::Number(v.into())
                } else {
                    return Err(Problem::new(
                        node.pos,
                        format!("integer `{text}` is too large for JSON"),
                    ));
                }
            }
            Scalar::Float(f) => match Number::from_f64(f) {
                Some(n) => Value::Number(n),
                None => {
                    return Err(Problem::new(
                        node.pos,
                        format!("`{text}` has no JSON representation"),
                    ));
                }
            },
            Scalar::Str => Value::String(text.to_string()),
        }),
        Kind::Seq(items) => items
            .iter()
            .map(to_json)
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Kind::Map(entries) => {
            let mut out = Map::new();
            for (k, v) in entries {
                let Some((_, key)) = k.scalar() else {
                    return Err(Problem::new(
                        k.pos,
                        "JSON Schema object keys must be scalars",
                    ));
                };
                out.insert(key.to_string(), to_json(v)?);
            }
            Ok(Value::Object(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn drafts() {
        assert!(matches!(draft_of(&json!({})), Ok(Draft::Draft202012)));
        assert!(matches!(
            draft_of(&json!({"$schema": "http://json-schema.org/draft-07/schema#"})),
            Ok(Draft::Draft7)
        ));
        assert!(draft_of(&json!({"$schema": "http://json-schema.org/draft-04/schema#"})).is_err());
    }

    #[test]
    fn remote_refs_do_not_compile() {
        let e = compile(&json!({"$ref": "https://example.com/s.json"})).unwrap_err();
        assert!(!e.to_string().is_empty());
    }
}
