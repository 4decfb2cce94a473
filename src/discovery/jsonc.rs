//! A small, strict-where-it-matters JSONC parser: JSON plus `//` and `/* */`
//! comments and trailing commas (what VS Code, Zed and opencode accept), into a
//! `serde_json::Value`. Errors carry a 1-based line and column so a user can
//! go straight to the broken spot.

use serde_json::{Map, Number, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at line {line} column {column}")]
pub struct JsoncError {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

/// Nesting deeper than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 256;

pub fn parse(text: &str) -> Result<Value, JsoncError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut p = Parser {
        src: text.as_bytes(),
        text,
        pos: 0,
    };
    p.skip_ws()?;
    if p.pos >= p.src.len() {
        return Err(p.err("empty document"));
    }
    let v = p.value(0)?;
    p.skip_ws()?;
    if p.pos < p.src.len() {
        return Err(p.err("unexpected content after the document"));
    }
    Ok(v)
}

struct Parser<'a> {
    src: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, message: &str) -> JsoncError {
        self.err_at(self.pos, message)
    }

    fn err_at(&self, pos: usize, message: &str) -> JsoncError {
        let pos = pos.min(self.src.len());
        let before = &self.text[..floor_char_boundary(self.text, pos)];
        let line = before.matches('\n').count() + 1;
        let col_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[col_start..].chars().count() + 1;
        JsoncError {
            message: message.to_string(),
            line,
            column,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    /// Whitespace and comments.
    fn skip_ws(&mut self) -> Result<(), JsoncError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.pos += 1,
                Some(b'/') => match self.src.get(self.pos + 1) {
                    Some(b'/') => {
                        while let Some(c) = self.peek() {
                            if c == b'\n' {
                                break;
                            }
                            self.pos += 1;
                        }
                    }
                    Some(b'*') => {
                        let start = self.pos;
                        self.pos += 2;
                        loop {
                            match self.peek() {
                                None => return Err(self.err_at(start, "unterminated comment")),
                                Some(b'*') if self.src.get(self.pos + 1) == Some(&b'/') => {
                                    self.pos += 2;
                                    break;
                                }
                                _ => self.pos += 1,
                            }
                        }
                    }
                    _ => return Err(self.err("unexpected '/'")),
                },
                _ => return Ok(()),
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, JsoncError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("expected a value")),
            None => Err(self.err("unexpected end of input, expected a value")),
        }
    }

    fn literal(&mut self, word: &str, v: Value) -> Result<Value, JsoncError> {
        if self.src[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.err("expected a value"))
        }
    }

    fn number(&mut self) -> Result<Value, JsoncError> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E') {
                self.pos += 1;
            } else {
                break;
            }
        }
        let s = &self.text[start..self.pos];
        serde_json::from_str::<Number>(s)
            .map(Value::Number)
            .map_err(|_| self.err_at(start, "invalid number"))
    }

    fn string(&mut self) -> Result<String, JsoncError> {
        let start = self.pos;
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            // Copy runs of plain characters at once.
            let run_start = self.pos;
            while let Some(c) = self.peek() {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[run_start..self.pos]);
            match self.peek() {
                None => return Err(self.err_at(start, "unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let esc = self.peek().ok_or_else(|| self.err("unterminated escape"))?;
                    self.pos += 1;
                    match esc {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()?),
                        _ => return Err(self.err_at(self.pos - 2, "invalid escape")),
                    }
                }
                Some(_) => return Err(self.err("control character in string")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, JsoncError> {
        let s = self
            .text
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.err("truncated \\u escape"))?;
        let v = u32::from_str_radix(s, 16).map_err(|_| self.err("invalid \\u escape"))?;
        self.pos += 4;
        Ok(v)
    }

    fn unicode_escape(&mut self) -> Result<char, JsoncError> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi) {
            // A surrogate pair must follow.
            if self.src[self.pos..].starts_with(b"\\u") {
                self.pos += 2;
                let lo = self.hex4()?;
                if (0xDC00..0xE000).contains(&lo) {
                    let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    return char::from_u32(c).ok_or_else(|| self.err("invalid \\u escape"));
                }
            }
            return Err(self.err("unpaired surrogate in \\u escape"));
        }
        char::from_u32(hi).ok_or_else(|| self.err("invalid \\u escape"))
    }

    fn object(&mut self, depth: usize) -> Result<Value, JsoncError> {
        self.pos += 1;
        let mut map = Map::new();
        loop {
            self.skip_ws()?;
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(map));
                }
                Some(b'"') => {}
                None => return Err(self.err("unexpected end of input in object")),
                _ => return Err(self.err("expected a string key or '}'")),
            }
            let key = self.string()?;
            self.skip_ws()?;
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':' after key"));
            }
            self.pos += 1;
            self.skip_ws()?;
            let v = self.value(depth + 1)?;
            map.insert(key, v);
            self.skip_ws()?;
            match self.peek() {
                Some(b',') => self.pos += 1, // a trailing comma is fine: the loop sees '}'
                Some(b'}') => {}
                None => return Err(self.err("unexpected end of input in object")),
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, JsoncError> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_ws()?;
            match self.peek() {
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                None => return Err(self.err("unexpected end of input in array")),
                _ => {}
            }
            items.push(self.value(depth + 1)?);
            self.skip_ws()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {}
                None => return Err(self.err("unexpected end of input in array")),
                _ => return Err(self.err("expected ',' or ']'")),
            }
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_json() {
        let v = parse(r#"{"a": [1, 2.5, -3e2, true, false, null, "x\u00e9\n"]}"#).unwrap();
        assert_eq!(v, json!({"a": [1, 2.5, -300.0, true, false, null, "xé\n"]}));
    }

    #[test]
    fn comments_and_trailing_commas() {
        let text = "\u{feff}// header\n{\n  /* block\n  comment */ \"servers\": {\n    \"a\": {\"command\": \"x\",}, // tail\n  },\n  \"list\": [1, 2,],\n}\n";
        let v = parse(text).unwrap();
        assert_eq!(
            v,
            json!({"servers": {"a": {"command": "x"}}, "list": [1, 2]})
        );
    }

    #[test]
    fn slashes_inside_strings_are_not_comments() {
        let v = parse(r#"{"url": "https://x.example/a//b", "c": "/* no */"}"#).unwrap();
        assert_eq!(v["url"], "https://x.example/a//b");
        assert_eq!(v["c"], "/* no */");
    }

    #[test]
    fn surrogate_pairs() {
        assert_eq!(parse(r#""\ud83d\ude00""#).unwrap(), json!("😀"));
        assert!(parse(r#""\ud83d""#).is_err());
    }

    #[test]
    fn errors_carry_line_and_column() {
        let e = parse("{\n  \"a\": 1,\n  \"b\" 2\n}").unwrap_err();
        assert_eq!((e.line, e.column), (3, 7), "{e}");
        assert!(e.message.contains("':'"));
        let e = parse("{\"a\": [1, 2}").unwrap_err();
        assert_eq!((e.line, e.column), (1, 12), "{e}");
        let e = parse("").unwrap_err();
        assert_eq!(e.message, "empty document");
        let e = parse("  // only a comment\n").unwrap_err();
        assert_eq!(e.message, "empty document");
        let e = parse("{} x").unwrap_err();
        assert_eq!((e.line, e.column), (1, 4));
        let e = parse("{\"a\": \"é\" x}").unwrap_err();
        assert_eq!((e.line, e.column), (1, 11), "columns count characters");
        let e = parse("/* open").unwrap_err();
        assert_eq!(e.message, "unterminated comment");
        assert!(parse("{\"a\": 01x}").is_err());
        assert!(parse("[,]").is_err());
        assert!(parse("{,}").is_err());
    }

    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        let text = "[".repeat(100_000);
        assert_eq!(parse(&text).unwrap_err().message, "nesting too deep");
    }
}
