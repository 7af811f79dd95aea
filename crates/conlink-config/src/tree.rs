//! Config values that remember where they came from, and the merge rules of
//! spec §3 (maps merge recursively, lists concatenate, later scalars win).
//!
//! Every node carries the file and JSON pointer it was read from, so an error
//! found after merging (schema or semantic) can still name the place the user
//! has to edit.

use serde_json::{Map, Value};

/// Where a value was written: file index (into the loader's file list) and
/// JSON pointer inside that file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Loc {
    /// Index of the file, `None` for values conlink made up (the merged root).
    pub file: Option<usize>,
    /// JSON pointer inside that file (`""` is the whole document).
    pub ptr: String,
}

impl Loc {
    /// A location inside file `file`.
    pub fn new(file: usize, ptr: impl Into<String>) -> Self {
        Self {
            file: Some(file),
            ptr: ptr.into(),
        }
    }
}

/// A JSON-like value with an origin on every node.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// null, bool, number or string.
    Scalar(Value),
    /// A list.
    Seq(Vec<Tree>),
    /// A map, in file order.
    Map(Vec<(String, Tree)>),
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    /// The value.
    pub node: Node,
    /// Its origin.
    pub loc: Loc,
}

/// Escapes one JSON-pointer reference token (RFC 6901).
pub fn escape(tok: &str) -> String {
    if tok.contains(['~', '/']) {
        tok.replace('~', "~0").replace('/', "~1")
    } else {
        tok.to_string()
    }
}

impl Tree {
    /// Builds a tree from a parsed value found at `ptr` in file `file`.
    pub fn from_value(v: Value, file: usize, ptr: &str) -> Tree {
        let node = match v {
            Value::Array(a) => Node::Seq(
                a.into_iter()
                    .enumerate()
                    .map(|(i, x)| Tree::from_value(x, file, &format!("{ptr}/{i}")))
                    .collect(),
            ),
            Value::Object(m) => Node::Map(
                m.into_iter()
                    .map(|(k, x)| {
                        let p = format!("{ptr}/{}", escape(&k));
                        (k, Tree::from_value(x, file, &p))
                    })
                    .collect(),
            ),
            s => Node::Scalar(s),
        };
        Tree {
            node,
            loc: Loc::new(file, ptr),
        }
    }

    /// An empty map with no file.
    pub fn empty_map() -> Tree {
        Tree {
            node: Node::Map(Vec::new()),
            loc: Loc {
                file: None,
                ptr: String::new(),
            },
        }
    }

    /// The plain value (origins dropped).
    pub fn to_value(&self) -> Value {
        match &self.node {
            Node::Scalar(v) => v.clone(),
            Node::Seq(s) => Value::Array(s.iter().map(Tree::to_value).collect()),
            Node::Map(m) => {
                let mut out = Map::with_capacity(m.len());
                for (k, v) in m {
                    out.insert(k.clone(), v.to_value());
                }
                Value::Object(out)
            }
        }
    }

    /// The map entry `key`, if this is a map that has it.
    pub fn get(&self, key: &str) -> Option<&Tree> {
        match &self.node {
            Node::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Mutable map entry `key`.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Tree> {
        match &mut self.node {
            Node::Map(m) => m.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string value, if this is a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.node {
            Node::Scalar(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// Merges `other` into `self` with the rules of spec §3: maps merge
    /// recursively, lists concatenate, otherwise the later value wins. A
    /// scalar meeting a list (`route: "default via …"` and `route: [ … ]`)
    /// counts as a one-element list, so string-or-list properties
    /// concatenate too.
    pub fn merge(&mut self, other: Tree) {
        match (&mut self.node, other.node) {
            (Node::Map(a), Node::Map(b)) => {
                for (k, v) in b {
                    match a.iter_mut().find(|(ak, _)| *ak == k) {
                        Some((_, av)) => av.merge(v),
                        None => a.push((k, v)),
                    }
                }
            }
            (Node::Seq(a), Node::Seq(b)) => a.extend(b),
            (Node::Seq(a), b @ Node::Scalar(Value::String(_))) => a.push(Tree {
                node: b,
                loc: other.loc,
            }),
            (a @ Node::Scalar(Value::String(_)), Node::Seq(b)) => {
                let first = Tree {
                    node: std::mem::replace(a, Node::Seq(Vec::new())),
                    loc: self.loc.clone(),
                };
                let mut items = vec![first];
                items.extend(b);
                *a = Node::Seq(items);
                self.loc = other.loc;
            }
            (a, b) => {
                *a = b;
                self.loc = other.loc;
            }
        }
    }

    /// Finds where the value at `ptr` (a JSON pointer into the merged tree)
    /// was written: the deepest node on the path that exists, plus the part
    /// of the path below it (for properties that are missing).
    pub fn locate(&self, ptr: &str) -> Loc {
        let mut node = self;
        let mut toks = ptr.split('/').skip(1).peekable();
        while let Some(tok) = toks.peek() {
            let tok = tok.replace("~1", "/").replace("~0", "~");
            let next = match &node.node {
                Node::Map(m) => m.iter().find(|(k, _)| *k == tok).map(|(_, v)| v),
                Node::Seq(s) => tok.parse::<usize>().ok().and_then(|i| s.get(i)),
                Node::Scalar(_) => None,
            };
            match next {
                Some(n) => {
                    node = n;
                    toks.next();
                }
                None => break,
            }
        }
        let mut loc = node.loc.clone();
        for t in toks {
            loc.ptr.push('/');
            loc.ptr.push_str(t);
        }
        loc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(v: Value, file: usize) -> Tree {
        Tree::from_value(v, file, "")
    }

    #[test]
    fn maps_merge_recursively_lists_concat_scalars_later_wins() {
        let mut a = t(json!({"m": {"x": 1, "y": [1]}, "s": "a", "l": [1, 2]}), 0);
        a.merge(t(
            json!({"m": {"x": 2, "y": [2], "z": true}, "s": "b", "l": [3]}),
            1,
        ));
        assert_eq!(
            a.to_value(),
            json!({"m": {"x": 2, "y": [1, 2], "z": true}, "s": "b", "l": [1, 2, 3]})
        );
        // the winning scalar remembers the later file
        assert_eq!(a.locate("/s"), Loc::new(1, "/s"));
        assert_eq!(a.locate("/m/y/0"), Loc::new(0, "/m/y/0"));
        assert_eq!(a.locate("/m/y/1"), Loc::new(1, "/m/y/0"));
        assert_eq!(a.locate("/l/2"), Loc::new(1, "/l/0"));
    }

    #[test]
    fn string_meets_list_concatenates() {
        let mut a = t(json!({"route": "default via 10.0.0.1"}), 0);
        a.merge(t(json!({"route": ["10.1.0.0/16 via 10.0.0.2"]}), 1));
        assert_eq!(
            a.to_value(),
            json!({"route": ["default via 10.0.0.1", "10.1.0.0/16 via 10.0.0.2"]})
        );
        assert_eq!(a.locate("/route/0"), Loc::new(0, "/route"));
        let mut b = t(json!({"r": ["x"]}), 0);
        b.merge(t(json!({"r": "y"}), 1));
        assert_eq!(b.to_value(), json!({"r": ["x", "y"]}));
        // two strings: the later wins
        let mut c = t(json!({"netem": "delay 1ms"}), 0);
        c.merge(t(json!({"netem": "loss 2%"}), 1));
        assert_eq!(c.to_value(), json!({"netem": "loss 2%"}));
    }

    #[test]
    fn type_change_later_wins() {
        let mut a = t(json!({"k": {"a": 1}}), 0);
        a.merge(t(json!({"k": 5}), 1));
        assert_eq!(a.to_value(), json!({"k": 5}));
        let mut b = t(json!({"k": [1]}), 0);
        b.merge(t(json!({"k": {"x": 1}}), 1));
        assert_eq!(b.to_value(), json!({"k": {"x": 1}}));
    }

    #[test]
    fn locate_missing_property_points_below_deepest_node() {
        let a = Tree::from_value(json!({"links": [{"dev": "e"}]}), 2, "/x-network");
        assert_eq!(
            a.locate("/links/0/bridge"),
            Loc::new(2, "/x-network/links/0/bridge")
        );
        assert_eq!(a.locate(""), Loc::new(2, "/x-network"));
        let b = Tree::from_value(json!({"a/b": {"c~d": 1}}), 0, "");
        assert_eq!(b.locate("/a~1b/c~0d"), Loc::new(0, "/a~1b/c~0d"));
    }
}
