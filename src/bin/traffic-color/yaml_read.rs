//! Kubernetes YAML read into a small tree whose every node knows its line and column, so
//! `routes` can point at the exact value in a manifest. Built from saphyr-parser's events;
//! only what manifests use: mappings, sequences, scalars (kept as text), anchors and aliases.

use saphyr_parser::{Event, Parser, ScalarStyle};
use std::collections::HashMap;

/// 1-based line and column (in characters) of a node's first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone)]
pub enum Value {
    Map(Vec<(Node, Node)>),
    Seq(Vec<Node>),
    /// The scalar's text, and whether it was written as a literal block (`|`).
    Scalar {
        text: String,
        literal: bool,
    },
}

#[derive(Debug, Clone)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

/// A YAML file that could not be read: the position and the parser's message.
#[derive(Debug)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

impl Node {
    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Walks mapping keys in order.
    pub fn path(&self, keys: &[&str]) -> Option<&Node> {
        keys.iter().try_fold(self, |node, k| node.get(k))
    }

    pub fn str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    pub fn seq(&self) -> &[Node] {
        match &self.value {
            Value::Seq(items) => items,
            _ => &[],
        }
    }

    pub fn entries(&self) -> &[(Node, Node)] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    pub fn is_literal_block(&self) -> bool {
        matches!(self.value, Value::Scalar { literal: true, .. })
    }
}

enum Open {
    Map(Vec<(Node, Node)>, Option<Node>, Pos, usize),
    Seq(Vec<Node>, Pos, usize),
}

/// Every document of a YAML stream (empty documents left out).
pub fn documents(text: &str) -> Result<Vec<Node>, YamlError> {
    let mut docs = Vec::new();
    let mut stack: Vec<Open> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| YamlError {
            pos: Pos {
                line: e.marker().line(),
                col: e.marker().col() + 1,
            },
            message: e.info().to_string(),
        })?;
        let pos = Pos {
            line: span.start.line(),
            col: span.start.col() + 1,
        };
        let done = match event {
            Event::MappingStart(anchor, _) => {
                stack.push(Open::Map(Vec::new(), None, pos, anchor));
                None
            }
            Event::SequenceStart(anchor, _) => {
                stack.push(Open::Seq(Vec::new(), pos, anchor));
                None
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let (node, anchor) = match stack.pop() {
                    Some(Open::Map(entries, _, p, a)) => (
                        Node {
                            value: Value::Map(entries),
                            pos: p,
                        },
                        a,
                    ),
                    Some(Open::Seq(items, p, a)) => (
                        Node {
                            value: Value::Seq(items),
                            pos: p,
                        },
                        a,
                    ),
                    None => continue,
                };
                if anchor > 0 {
                    anchors.insert(anchor, node.clone());
                }
                Some(node)
            }
            Event::Scalar(text, style, anchor, _) => {
                let node = Node {
                    value: Value::Scalar {
                        text: text.into_owned(),
                        literal: style == ScalarStyle::Literal,
                    },
                    pos,
                };
                if anchor > 0 {
                    anchors.insert(anchor, node.clone());
                }
                Some(node)
            }
            Event::Alias(id) => Some(anchors.get(&id).cloned().ok_or_else(|| YamlError {
                pos,
                message: "an alias to an unknown anchor".to_string(),
            })?),
            _ => None,
        };
        let Some(node) = done else { continue };
        match stack.last_mut() {
            Some(Open::Map(entries, key, _, _)) => match key.take() {
                Some(k) => entries.push((k, node)),
                None => *key = Some(node),
            },
            Some(Open::Seq(items, _, _)) => items.push(node),
            None => {
                // A document's root; a bare `null` or empty document is no manifest.
                if !matches!(&node.value, Value::Scalar { text, .. } if text.is_empty() || text == "null" || text == "~")
                {
                    docs.push(node);
                }
            }
        }
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn positions_are_one_based_and_aliases_resolve() {
        let text = "a:\n  b: &x [1, 2]\n  c: *x\n---\n- k: |\n    line 1\n    line 2\n";
        let docs = documents(text).unwrap();
        assert_eq!(docs.len(), 2);
        let b = docs[0].path(&["a", "b"]).unwrap();
        assert_eq!(b.pos, Pos { line: 2, col: 6 });
        assert_eq!(b.seq()[1].pos, Pos { line: 2, col: 13 });
        assert_eq!(docs[0].path(&["a", "c"]).unwrap().seq().len(), 2);
        let k = docs[1].seq()[0].get("k").unwrap();
        assert!(k.is_literal_block());
        assert_eq!(k.str(), Some("line 1\nline 2\n"));
        // A literal block starts at its first content line, not at the `|`.
        assert_eq!(k.pos, Pos { line: 6, col: 5 });
    }

    #[test]
    fn a_syntax_error_has_a_position() {
        let e = documents("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.pos.line >= 1, "{e:?}");
    }
}
