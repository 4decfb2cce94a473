//! A YAML document as a tree where every node keeps its line and column.
//!
//! Why `saphyr-parser`: it is a maintained, pure-Rust YAML 1.2 event parser
//! that gives a span for every event, so every diagnostic (an unknown key, a
//! bad port, a schema keyword) can name its exact `line:column`. `serde_yaml`
//! is unmaintained and loses positions below the top error; building our own
//! tree from events also lets us refuse duplicate keys, extra documents and
//! alias bombs ourselves, before any value is used.

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// Nodes allowed after alias expansion. A real policy has a few hundred; a
/// "billion laughs" document is cut off here instead of exhausting memory.
pub const MAX_NODES: usize = 100_000;
/// Nesting allowed. Deeper documents are refused before anything recurses.
pub const MAX_DEPTH: usize = 64;

/// 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn from_span(span: &Span) -> Pos {
        Pos {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Scalar { text: String, plain: bool },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// A problem found while building the tree. Fatal ones stop the build.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

/// What `parse` returns: the root (None when the document is empty) and the
/// non-fatal problems (duplicate keys) found on the way.
#[derive(Debug)]
pub struct Parsed {
    pub root: Option<Node>,
    pub problems: Vec<YamlError>,
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        /// Scalar keys seen so far -> line, for duplicate detection in O(1).
        seen: HashMap<String, usize>,
    },
}

/// Parse one YAML document. Fatal problems (syntax, a second document,
/// nesting or expansion limits) return `Err` with the one error.
pub fn parse(text: &str) -> Result<Parsed, YamlError> {
    let mut b = Builder {
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        root: None,
        problems: Vec::new(),
    };
    let mut documents = 0usize;
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| YamlError {
            pos: Pos {
                line: e.marker().line(),
                column: e.marker().col() + 1,
            },
            message: format!("YAML syntax error: {}", e.info()),
        })?;
        let pos = Pos::from_span(&span);
        match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing | Event::DocumentEnd => {}
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(YamlError {
                        pos,
                        message: "a policy file holds exactly one YAML document; found a second \
                                  one (`---`)"
                            .into(),
                    });
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                if let Some(tag) = tag {
                    return Err(YamlError {
                        pos,
                        message: format!(
                            "YAML tags are not supported in policies (found `{}{}`)",
                            tag.handle, tag.suffix
                        ),
                    });
                }
                let node = Node {
                    pos,
                    kind: Kind::Scalar {
                        text: value.into_owned(),
                        plain: style == ScalarStyle::Plain,
                    },
                };
                b.count(pos, 1)?;
                b.finish(node, anchor)?;
            }
            Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                let is_seq = matches!(event, Event::SequenceStart(..));
                if let Some(tag) = tag {
                    return Err(YamlError {
                        pos,
                        message: format!(
                            "YAML tags are not supported in policies (found `{}{}`)",
                            tag.handle, tag.suffix
                        ),
                    });
                }
                if b.stack.len() >= MAX_DEPTH {
                    return Err(YamlError {
                        pos,
                        message: format!("nesting deeper than {MAX_DEPTH} levels"),
                    });
                }
                b.count(pos, 1)?;
                b.stack.push(if is_seq {
                    Frame::Seq {
                        pos,
                        anchor,
                        items: Vec::new(),
                    }
                } else {
                    Frame::Map {
                        pos,
                        anchor,
                        entries: Vec::new(),
                        key: None,
                        seen: HashMap::new(),
                    }
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let frame = b.stack.pop().ok_or_else(|| YamlError {
                    pos,
                    message: "YAML syntax error: unbalanced collection end".into(),
                })?;
                let (node, anchor) = match frame {
                    Frame::Seq { pos, anchor, items } => (
                        Node {
                            pos,
                            kind: Kind::Seq(items),
                        },
                        anchor,
                    ),
                    Frame::Map {
                        pos,
                        anchor,
                        entries,
                        ..
                    } => (
                        Node {
                            pos,
                            kind: Kind::Map(entries),
                        },
                        anchor,
                    ),
                };
                b.finish(node, anchor)?;
            }
            Event::Alias(id) => {
                let target = b.anchors.get(&id).cloned();
                let Some(mut node) = target else {
                    return Err(YamlError {
                        pos,
                        message: "alias refers to an anchor that is not defined before it".into(),
                    });
                };
                // Every expansion is paid for in full: this is what bounds
                // "billion laughs" documents.
                b.count(pos, node_count(&node))?;
                if b.stack.len() + depth(&node) > MAX_DEPTH {
                    return Err(YamlError {
                        pos,
                        message: format!("nesting deeper than {MAX_DEPTH} levels"),
                    });
                }
                // Keep the alias's own position for messages about it.
                node.pos = pos;
                b.finish(node, 0)?;
            }
        }
    }
    Ok(Parsed {
        root: b.root,
        problems: b.problems,
    })
}

struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    root: Option<Node>,
    problems: Vec<YamlError>,
}

impl Builder {
    fn count(&mut self, pos: Pos, n: usize) -> Result<(), YamlError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(YamlError {
                pos,
                message: format!(
                    "document expands to more than {MAX_NODES} nodes (YAML alias bomb?)"
                ),
            });
        }
        Ok(())
    }

    /// A node is complete: record its anchor and attach it to its parent.
    fn finish(&mut self, node: Node, anchor: usize) -> Result<(), YamlError> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries, key, seen, ..
            }) => match key.take() {
                None => *key = Some(node),
                Some(k) => {
                    let first = match &k.kind {
                        Kind::Scalar { text, .. } => match seen.get(text) {
                            Some(line) => Some(*line),
                            None => {
                                seen.insert(text.clone(), k.pos.line);
                                None
                            }
                        },
                        _ => None,
                    };
                    if let Some(line) = first {
                        self.problems.push(YamlError {
                            pos: k.pos,
                            message: format!(
                                "duplicate key `{}` (first defined at line {line})",
                                key_text(&k)
                            ),
                        });
                    } else {
                        entries.push((k, node));
                    }
                }
            },
        }
        Ok(())
    }
}

fn key_text(n: &Node) -> Cow<'_, str> {
    match &n.kind {
        Kind::Scalar { text, .. } => Cow::Borrowed(text),
        _ => Cow::Borrowed("<collection>"),
    }
}

fn node_count(n: &Node) -> usize {
    match &n.kind {
        Kind::Scalar { .. } => 1,
        Kind::Seq(items) => 1 + items.iter().map(node_count).sum::<usize>(),
        Kind::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| node_count(k) + node_count(v))
                .sum::<usize>()
        }
    }
}

fn depth(n: &Node) -> usize {
    match &n.kind {
        Kind::Scalar { .. } => 0,
        Kind::Seq(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Kind::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| depth(k).max(depth(v)))
                .max()
                .unwrap_or(0)
        }
    }
}

impl Node {
    /// A short name of the node's YAML type for messages.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar { text, plain } => match classify(text, *plain) {
                Scalar::Null => "null",
                Scalar::Bool(_) => "a boolean",
                Scalar::Int(_) => "an integer",
                Scalar::Float(_) => "a number",
                Scalar::Str => "a string",
            },
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// The scalar's typed value under the YAML 1.2 core schema.
    pub fn scalar(&self) -> Option<(Scalar, &str)> {
        match &self.kind {
            Kind::Scalar { text, plain } => Some((classify(text, *plain), text)),
            _ => None,
        }
    }
}

/// A scalar resolved with the YAML 1.2 core schema (quoted scalars are strings).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str,
}

pub fn classify(text: &str, plain: bool) -> Scalar {
    if !plain {
        return Scalar::Str;
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
        "true" | "True" | "TRUE" => return Scalar::Bool(true),
        "false" | "False" | "FALSE" => return Scalar::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Scalar::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Scalar::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Scalar::Float(f64::NAN),
        _ => {}
    }
    if let Some(i) = parse_int(text) {
        return Scalar::Int(i);
    }
    if is_float(text) {
        if let Ok(f) = text.parse::<f64>() {
            return Scalar::Float(f);
        }
    }
    Scalar::Str
}

fn parse_int(t: &str) -> Option<i128> {
    if let Some(h) = t.strip_prefix("0x") {
        return (!h.is_empty() && h.bytes().all(|c| c.is_ascii_hexdigit()))
            .then(|| i128::from_str_radix(h, 16).ok())
            .flatten();
    }
    if let Some(o) = t.strip_prefix("0o") {
        return (!o.is_empty() && o.bytes().all(|c| (b'0'..=b'7').contains(&c)))
            .then(|| i128::from_str_radix(o, 8).ok())
            .flatten();
    }
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    t.parse::<i128>().ok()
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
fn is_float(t: &str) -> bool {
    let b = t.strip_prefix(['-', '+']).unwrap_or(t).as_bytes();
    let mut i = 0;
    let int_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let exp = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp == 0 {
            return false;
        }
        i += exp;
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Node {
        parse(text).unwrap().root.unwrap()
    }

    #[test]
    fn positions_are_one_based() {
        let n = root("a:\n  b: 1\n");
        let Kind::Map(e) = &n.kind else { panic!() };
        assert_eq!(e[0].0.pos, Pos { line: 1, column: 1 });
        let Kind::Map(inner) = &e[0].1.kind else {
            panic!()
        };
        assert_eq!(inner[0].0.pos, Pos { line: 2, column: 3 });
        assert_eq!(inner[0].1.pos, Pos { line: 2, column: 6 });
    }

    #[test]
    fn duplicate_keys_are_reported_at_the_second() {
        let p = parse("a: 1\nb: 2\na: 3\n").unwrap();
        assert_eq!(p.problems.len(), 1);
        assert_eq!(p.problems[0].pos, Pos { line: 3, column: 1 });
        assert!(p.problems[0].message.contains("first defined at line 1"));
    }

    #[test]
    fn second_document_is_fatal() {
        let e = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(e.pos.line, 2);
    }

    #[test]
    fn aliases_expand_within_budget() {
        let n = root("a: &x [1, 2]\nb: *x\n");
        let Kind::Map(e) = &n.kind else { panic!() };
        assert!(matches!(&e[1].1.kind, Kind::Seq(v) if v.len() == 2));
    }

    #[test]
    fn billion_laughs_is_refused() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = parse(&doc).unwrap_err();
        assert!(e.message.contains("alias bomb"), "{}", e.message);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let doc = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let e = parse(&doc).unwrap_err();
        assert!(e.message.contains("nesting"));
    }

    #[test]
    fn core_schema_scalars() {
        assert_eq!(classify("true", true), Scalar::Bool(true));
        assert_eq!(classify("true", false), Scalar::Str);
        assert_eq!(classify("8080", true), Scalar::Int(8080));
        assert_eq!(classify("0x1F", true), Scalar::Int(31));
        assert_eq!(classify("2.0", true), Scalar::Float(2.0));
        assert_eq!(classify("1e3", true), Scalar::Float(1000.0));
        assert_eq!(classify("~", true), Scalar::Null);
        assert_eq!(classify("8000-8100", true), Scalar::Str);
        assert_eq!(classify("1.2.3", true), Scalar::Str);
        assert_eq!(classify(".", true), Scalar::Str);
    }

    #[test]
    fn tags_are_refused() {
        assert!(parse("a: !!str 1\n").is_err());
    }
}
