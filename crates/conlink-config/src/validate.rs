//! Validation of the merged config against the JSON schema embedded in the
//! binary (`schema.json`, draft 2020-12, checked with `boon`).
//!
//! boon reports a tree of errors; we keep the leaves and word them for
//! users. A subschema may carry a non-standard `x-error` map from keyword to
//! message, which replaces the generic text (schema keywords unknown to the
//! validator are ignored by it, so the schema stays standard).

use std::sync::OnceLock;

use boon::{Compiler, ErrorKind, SchemaIndex, Schemas, ValidationError};
use serde_json::Value;

/// The schema, as shipped (also printed by tools that want it).
pub const SCHEMA: &str = include_str!("schema.json");

const SCHEMA_URL: &str = "https://conlink.invalid/schema/network-config.json";

/// One schema violation in the merged config.
pub type SchemaError = crate::PathError;

struct Compiled {
    schemas: Schemas,
    index: SchemaIndex,
    json: Value,
}

fn compiled() -> Result<&'static Compiled, String> {
    static C: OnceLock<Result<Compiled, String>> = OnceLock::new();
    C.get_or_init(|| {
        let json: Value =
            serde_json::from_str(SCHEMA).map_err(|e| format!("embedded schema: {e}"))?;
        let mut schemas = Schemas::new();
        let mut c = Compiler::new();
        c.add_resource(SCHEMA_URL, json.clone())
            .map_err(|e| format!("embedded schema: {e}"))?;
        let index = c
            .compile(SCHEMA_URL, &mut schemas)
            .map_err(|e| format!("embedded schema: {e}"))?;
        Ok(Compiled {
            schemas,
            index,
            json,
        })
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Validates `value`; returns every violation (empty when valid).
pub fn validate(value: &Value) -> Vec<SchemaError> {
    let c = match compiled() {
        Ok(c) => c,
        // Only reachable if the shipped schema is broken; a unit test compiles it.
        Err(e) => {
            return vec![SchemaError {
                ptr: String::new(),
                message: e,
            }]
        }
    };
    let mut out = Vec::new();
    if let Err(e) = c.schemas.validate(value, c.index) {
        leaves(&e, &c.json, &mut out);
    }
    whole_numbers(value, &mut out);
    control_chars(value, "", false, &mut out);
    out.dedup();
    out
}

/// Integer fields, by list: JSON Schema's `integer` accepts `1500.0` (and
/// YAML's `1e3` or a number too big for 64 bits, both read as floats), which
/// the typed model then cannot take; say so at the field, in our words.
const INTEGER_FIELDS: &[(&str, &[&str])] = &[("links", &["mtu", "vlanid"]), ("tunnels", &["vni"])];

/// Rejects control characters in strings: names and addresses never hold
/// them, and printed in a log line a newline forges another line. Commands
/// (`commands[].command`) may hold newlines and tabs: they are scripts.
fn control_chars(v: &Value, ptr: &str, in_command: bool, out: &mut Vec<SchemaError>) {
    match v {
        Value::String(s) => {
            let bad = s
                .chars()
                .find(|c| c.is_control() && !(in_command && matches!(c, '\n' | '\t' | '\r')));
            if let Some(c) = bad {
                out.push(SchemaError {
                    ptr: ptr.to_string(),
                    message: format!(
                        "control character {} (U+{:04X}) is not allowed here",
                        c.escape_debug(),
                        c as u32
                    ),
                });
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                control_chars(x, &format!("{ptr}/{i}"), in_command, out);
            }
        }
        Value::Object(m) => {
            let top_commands = ptr.starts_with("/commands/") && ptr.matches('/').count() == 2;
            for (k, x) in m {
                let p = format!("{ptr}/{}", crate::tree::escape(k));
                control_chars(x, &p, in_command || (top_commands && k == "command"), out);
            }
        }
        _ => {}
    }
}

fn whole_numbers(value: &Value, out: &mut Vec<SchemaError>) {
    for (list, fields) in INTEGER_FIELDS {
        let Some(items) = value.get(list).and_then(Value::as_array) else {
            continue;
        };
        for (i, item) in items.iter().enumerate() {
            for f in *fields {
                let Some(Value::Number(n)) = item.get(f) else {
                    continue;
                };
                if n.is_i64() || n.is_u64() {
                    continue;
                }
                let shown = n.to_string();
                let message = match n.as_f64() {
                    Some(x) if x.fract() == 0.0 && x.abs() >= 9.0e15 => {
                        format!("{f} must be a whole number, and {shown} is far too large")
                    }
                    _ => format!(
                        "{f} must be a plain whole number like 1500 (no decimal point, \
                         exponent or leading zero); this one reads as {shown}"
                    ),
                };
                let ptr = format!("/{list}/{i}/{f}");
                // replaces the schema's "expected an integer, got a number"
                out.retain(|e| e.ptr != ptr);
                out.push(SchemaError { ptr, message });
            }
        }
    }
}

/// Validates `value` against the user's schema file at `path` as well
/// (`--config-schema`). Err: the file cannot be read or is not a schema.
pub fn validate_extra(path: &std::path::Path, value: &Value) -> Result<Vec<SchemaError>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read schema: {e}"))?;
    let json: Value =
        serde_json::from_str(&text).map_err(|e| format!("schema is not JSON: {e}"))?;
    let url = match std::fs::canonicalize(path) {
        Ok(p) => format!("file://{}", p.display()),
        Err(_) => "https://conlink.invalid/schema/user.json".to_string(),
    };
    let mut schemas = Schemas::new();
    let mut c = Compiler::new();
    c.add_resource(&url, json.clone())
        .map_err(|e| format!("invalid schema: {e}"))?;
    let index = c
        .compile(&url, &mut schemas)
        .map_err(|e| format!("invalid schema: {e}"))?;
    let mut out = Vec::new();
    if let Err(e) = schemas.validate(value, index) {
        leaves(&e, &json, &mut out);
    }
    out.dedup();
    Ok(out)
}

fn leaves(e: &ValidationError, schema: &Value, out: &mut Vec<SchemaError>) {
    if !e.causes.is_empty() {
        for c in &e.causes {
            leaves(c, schema, out);
        }
        return;
    }
    let ptr = e.instance_location.to_string();
    let custom = keyword(&e.kind).and_then(|kw| {
        let frag = e.schema_url.split_once('#').map_or("", |(_, f)| f);
        schema
            .pointer(frag)
            .and_then(|s| s.get("x-error"))
            .and_then(|x| x.get(kw))
            .and_then(Value::as_str)
    });
    if let Some(m) = custom {
        out.push(SchemaError {
            ptr,
            message: m.to_string(),
        });
        return;
    }
    match &e.kind {
        ErrorKind::AdditionalProperties { got } => {
            for p in got {
                out.push(SchemaError {
                    ptr: format!("{ptr}/{}", crate::tree::escape(p)),
                    message: format!("unknown property {p:?}"),
                });
            }
        }
        ErrorKind::Required { want } => {
            for p in want {
                out.push(SchemaError {
                    ptr: ptr.clone(),
                    message: format!("missing required property {p:?}"),
                });
            }
        }
        ErrorKind::DependentRequired { prop, missing } => out.push(SchemaError {
            ptr,
            message: format!(
                "{prop} needs {}",
                missing
                    .iter()
                    .map(|m| format!("{m:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
        ErrorKind::Type { got, want } => {
            let want: Vec<String> = want.iter().map(|t| type_word(&t.to_string())).collect();
            out.push(SchemaError {
                ptr,
                message: format!(
                    "expected {}, got {}",
                    want.join(" or "),
                    type_word(&got.to_string())
                ),
            })
        }
        ErrorKind::Enum { want } => out.push(SchemaError {
            ptr,
            message: format!(
                "must be one of {}",
                want.iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
        k => out.push(SchemaError {
            ptr,
            message: k.to_string(),
        }),
    }
}

fn type_word(t: &str) -> String {
    match t {
        "object" => "a map".into(),
        "array" => "a list".into(),
        "string" => "a string".into(),
        "integer" => "an integer".into(),
        "number" => "a number".into(),
        "boolean" => "a boolean".into(),
        "null" => "null".into(),
        other => other.into(),
    }
}

fn keyword(k: &ErrorKind) -> Option<&'static str> {
    Some(match k {
        ErrorKind::Required { .. } => "required",
        ErrorKind::Not => "not",
        ErrorKind::FalseSchema => "false",
        ErrorKind::Enum { .. } => "enum",
        ErrorKind::Const { .. } => "const",
        ErrorKind::Pattern { .. } => "pattern",
        ErrorKind::MaxLength { .. } => "maxLength",
        ErrorKind::MinLength { .. } => "minLength",
        ErrorKind::Minimum { .. } => "minimum",
        ErrorKind::Maximum { .. } => "maximum",
        ErrorKind::MinItems { .. } => "minItems",
        ErrorKind::Type { .. } => "type",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn embedded_schema_compiles() {
        assert!(compiled().is_ok(), "{:?}", compiled().err());
    }

    #[test]
    fn valid_config_passes() {
        let v = json!({"links": [{"service": "a", "bridge": "s1", "ip": "10.0.0.1/24"}]});
        assert_eq!(validate(&v), vec![]);
    }

    #[test]
    fn errors_are_leaves_with_pointers() {
        let v = json!({"links": [{"service": "a", "ip": "10.0.0.1", "bogus": 1}], "x": 1});
        let e = validate(&v);
        let shown: Vec<String> = e
            .iter()
            .map(|e| format!("{}: {}", e.ptr, e.message))
            .collect();
        assert!(
            shown.contains(&"/x: unknown property \"x\"".to_string()),
            "{shown:?}"
        );
        assert!(
            shown.contains(&"/links/0/bogus: unknown property \"bogus\"".to_string()),
            "{shown:?}"
        );
        assert!(
            shown.contains(&"/links/0: a veth link needs a bridge".to_string()),
            "{shown:?}"
        );
        assert!(
            shown.contains(
                &"/links/0/ip: not an IPv4 or IPv6 address with prefix length (like 10.0.1.1/24 or fd00::1/64)"
                    .to_string()
            ),
            "{shown:?}"
        );
    }
}
