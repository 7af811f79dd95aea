//! Input limits and the wording of parser errors.
//!
//! serde-saphyr has budgets (nodes, depth, aliases, …) but words their
//! breaches for programmers (`budget breached: Depth { depth: 65 }`);
//! serde_json has no node budget at all (200,000 links took 690 MB). This
//! module counts JSON nodes while parsing, and turns both libraries' errors
//! into `what is wrong, and how to fix it` sentences.

use std::cell::Cell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use serde_saphyr::budget::BudgetBreach;

/// How to raise the node limit, appended to its error.
const RAISE_NODES: &str = "raise it with --config-max-nodes or CONLINK_CONFIG_MAX_NODES";

/// Parses JSON, failing once more than `max_nodes` nodes (maps, lists,
/// scalars) were read: memory stays bounded by the limit, not the input.
pub(crate) fn json_with_node_limit(text: &str, max_nodes: usize) -> Result<Value, String> {
    let left = Cell::new(max_nodes);
    let mut de = serde_json::Deserializer::from_str(text);
    let v = Counted { left: &left }.deserialize(&mut de).and_then(|v| {
        de.end()?;
        Ok(v)
    });
    v.map_err(|e| {
        let msg = e.to_string();
        if msg.starts_with(NODES_MARK) {
            format!("more than {max_nodes} JSON nodes (maps, lists and values); {RAISE_NODES}")
        } else {
            format!("invalid JSON: {msg}")
        }
    })
}

/// Start of the custom error a [`Counted`] raises; recognised above.
const NODES_MARK: &str = "\u{0}node limit";

/// A `serde_json::Value` seed that charges one node per value.
#[derive(Clone, Copy)]
struct Counted<'a> {
    left: &'a Cell<usize>,
}

impl Counted<'_> {
    fn charge<E: serde::de::Error>(&self) -> Result<(), E> {
        match self.left.get().checked_sub(1) {
            Some(n) => {
                self.left.set(n);
                Ok(())
            }
            None => Err(E::custom(NODES_MARK)),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Counted<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Counted<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        self.charge()?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        self.charge()?;
        Ok(Value::from(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        self.charge()?;
        Ok(Value::from(v))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        self.charge()?;
        // JSON cannot spell a non-finite number, so `from_f64` succeeds
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.charge()?;
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        self.charge()?;
        Ok(Value::String(v))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.charge()?;
        Ok(Value::Null)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.charge()?;
        let mut v = Vec::new();
        while let Some(x) = seq.next_element_seed(self)? {
            v.push(x);
        }
        Ok(Value::Array(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.charge()?;
        let mut m = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(self)?;
            // as serde_json's own Value: a repeated key keeps the last value
            m.insert(k, v);
        }
        Ok(Value::Object(m))
    }
}

/// A serde-saphyr error in users' words, on one line.
pub(crate) fn yaml_message(e: &serde_saphyr::Error, max_nodes: usize) -> String {
    let loc = e
        .location()
        .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
        .unwrap_or_default();
    // the cause may be wrapped (an alias replay reports where the anchor
    // was defined and used); the innermost error says what went wrong
    let mut inner = e.without_snippet();
    while let serde_saphyr::Error::AliasError { error, .. } = inner {
        inner = error.without_snippet();
    }
    if let serde_saphyr::Error::Budget { breach, .. } = inner {
        return format!("{}{loc}", budget_message(breach, max_nodes));
    }
    let msg = e.without_snippet().to_string();
    let msg = msg.strip_prefix("error: ").unwrap_or(&msg);
    let first = msg.lines().next().unwrap_or_default();
    // the library's hints are for programmers, not for users
    let first = first.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
    if first.contains("multiple YAML documents") {
        return format!(
            "invalid YAML: more than one document (a `---` line inside the file){loc}; \
             conlink reads one document per file"
        );
    }
    if first.contains("non-finite float") {
        return format!(
            "invalid YAML: .inf and .nan are not allowed (conlink's numbers are finite){loc}"
        );
    }
    format!("invalid YAML: {first}")
}

fn budget_message(b: &BudgetBreach, max_nodes: usize) -> String {
    match b {
        BudgetBreach::Nodes { .. } | BudgetBreach::Events { .. } => format!(
            "YAML document has more than {max_nodes} nodes (maps, lists and values); {RAISE_NODES}"
        ),
        BudgetBreach::Depth { depth } => format!(
            "YAML nested too deeply (more than {} levels of maps and lists)",
            depth.saturating_sub(1)
        ),
        BudgetBreach::Aliases { .. } | BudgetBreach::AliasAnchorRatio { .. } => {
            "YAML uses too many aliases (*name) for its anchors (&name): \
             alias expansion is limited so a small file cannot expand to a huge one"
                .to_string()
        }
        BudgetBreach::Anchors { .. } => "YAML defines too many anchors (&name)".to_string(),
        BudgetBreach::MergeKeys { .. } => "YAML uses too many merge keys (<<)".to_string(),
        BudgetBreach::Documents { .. } => "YAML file holds too many documents".to_string(),
        BudgetBreach::ScalarBytes { .. } => "YAML values are too large in total".to_string(),
        _ => "YAML document is too large or too complex (anchor or alias expansion)".to_string(),
    }
}
