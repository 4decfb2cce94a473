//! Where a server's entry starts in its config file, for SARIF regions.
//!
//! Discovery parses configs into values that have no positions, so the
//! SARIF renderer finds the entry again in the file's text. This is a
//! textual search tuned to the shapes clients use (a JSON/YAML key named
//! after the server, a list item `name: <server>`, a TOML table
//! `[mcp_servers.<server>]`); when it cannot tell, it falls back to the first
//! mention of the name, and else to nothing.

/// A 1-based line and column (columns count Unicode code points).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

fn position_of(text: &str, byte: usize) -> Position {
    let before = &text[..byte];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    Position {
        line,
        column: before[start..].chars().count() + 1,
    }
}

/// `name` as a JSON string literal (the form it has as a key).
fn json_key(name: &str) -> String {
    serde_json::to_string(name).unwrap_or_else(|_| format!("\"{name}\""))
}

/// Byte offset of the first `"name"` used as an object key at or after `from`.
fn find_json_key(text: &str, name: &str, from: usize) -> Option<usize> {
    let key = json_key(name);
    let mut at = from;
    while let Some(i) = text.get(at..)?.find(&key) {
        let start = at + i;
        let after = text[start + key.len()..].trim_start();
        if after.starts_with(':') {
            return Some(start);
        }
        at = start + key.len();
    }
    None
}

fn find_json(text: &str, name: &str, project: Option<&str>) -> Option<usize> {
    // Claude Code keeps per-project servers under `projects.<path>`: search
    // from that project's key so a same-named user server is not taken.
    let from = project.and_then(|p| find_json_key(text, p, 0)).unwrap_or(0);
    find_json_key(text, name, from).or_else(|| find_json_key(text, name, 0))
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|x| x.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

fn find_yaml(text: &str, name: &str) -> Option<usize> {
    let mut offset = 0;
    let mut item = None;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let indent = body.len() - body.trim_start().len();
        let mut content = &body[indent..];
        let mut col = indent;
        if let Some(rest) = content.strip_prefix("- ") {
            col += 2 + (rest.len() - rest.trim_start().len());
            content = rest.trim_start();
        }
        if let Some((key, value)) = content.split_once(':') {
            // `<name>:` as a mapping key: the entry itself.
            if unquote(key) == name {
                return Some(offset + col);
            }
            // `name: <name>` in a list of servers (Continue): the item.
            if item.is_none() && key.trim() == "name" && unquote(value) == name {
                item = Some(offset + col);
            }
        }
        offset += line.len();
    }
    item
}

fn find_toml(text: &str, name: &str) -> Option<usize> {
    let bare = format!(".{name}]");
    let quoted = format!(".{}]", json_key(name));
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        let head = t.split('#').next().unwrap_or("").trim_end();
        if head.starts_with('[') && (head.ends_with(&bare) || head.ends_with(&quoted)) {
            return Some(offset + line.len() - t.len());
        }
        offset += line.len();
    }
    None
}

/// Where the entry of server `name` begins in `text`, a config file in
/// `format` (`json`, `yaml`, `toml`). `project` is the project root the
/// entry belongs to, for files that hold several projects' servers.
pub fn entry(text: &str, format: &str, name: &str, project: Option<&str>) -> Option<Position> {
    let found = match format {
        "yaml" => find_yaml(text, name),
        "toml" => find_toml(text, name),
        _ => find_json(text, name, project),
    };
    found
        .or_else(|| text.find(name).filter(|_| !name.is_empty()))
        .map(|b| position_of(text, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: usize, column: usize) -> Option<Position> {
        Some(Position { line, column })
    }

    #[test]
    fn json_keys_are_found_as_keys() {
        let text = "{\n  \"x\": \"fs\",\n  \"mcpServers\": {\n    \"fs\" : {\"command\": \"fs\"}\n  }\n}\n";
        assert_eq!(entry(text, "json", "fs", None), at(4, 5));
        // Per project: the entry under that project's key.
        let text = "{\"mcpServers\": {\"db\": {}},\n \"projects\": {\"/p\": {\"mcpServers\": {\n   \"db\": {}}}}}";
        assert_eq!(entry(text, "json", "db", Some("/p")), at(3, 4));
        assert_eq!(entry(text, "json", "db", None), at(1, 17));
        // Columns count characters, not bytes.
        assert_eq!(entry("{\"é\": 1, \"a\": {}}", "json", "a", None), at(1, 10));
    }

    #[test]
    fn yaml_and_toml_shapes() {
        let text = "mcpServers:\n  - name: other\n  - name: \"sqlite\"\n    command: uvx\n";
        assert_eq!(entry(text, "yaml", "sqlite", None), at(3, 5));
        let text = "extensions:\n  github:\n    cmd: npx\n";
        assert_eq!(entry(text, "yaml", "github", None), at(2, 3));
        let text =
            "model = \"o3\"\n\n[mcp_servers.sqlite]\ncommand = \"uvx\"\n  [mcp_servers.\"a b\"]\n";
        assert_eq!(entry(text, "toml", "sqlite", None), at(3, 1));
        assert_eq!(entry(text, "toml", "a b", None), at(5, 3));
        assert_eq!(entry(text, "toml", "nope", None), None);
    }
}
