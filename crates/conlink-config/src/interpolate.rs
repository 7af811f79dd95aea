//! Compose-style environment interpolation of string values (spec §3).
//!
//! Forms: `$VAR`, `${VAR}`, `${VAR:-default}` (unset or empty),
//! `${VAR-default}` (unset), `${VAR:+alt}` (set and non-empty),
//! `${VAR+alt}` (set), `${VAR:?message}` (error if unset or empty),
//! `${VAR?message}` (error if unset), `$$` (a literal `$`). Defaults,
//! alternatives and messages are interpolated themselves, so
//! `${A:-${B:-x}}` works as in compose. An unset plain variable becomes the
//! empty string. A `$` not followed by a name, `{` or `$` stays literal.

use std::collections::HashMap;

/// Why a string could not be interpolated (the message is user-facing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InterpolateError(pub String);

/// Replaces every variable reference in `s` using `env`.
pub fn interpolate(s: &str, env: &HashMap<String, String>) -> Result<String, InterpolateError> {
    // Fast path: most strings hold no `$` at all.
    if !s.contains('$') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let end = matching_brace(r).ok_or_else(|| {
                InterpolateError(format!(
                    "invalid interpolation {:?}: missing closing '}}' (write $$ for a literal $)",
                    &rest[i..]
                ))
            })?;
            out.push_str(&braced(&r[..end], env)?);
            rest = &r[end + 1..];
        } else {
            let n = name_len(after);
            if n == 0 {
                out.push('$');
                rest = after;
            } else {
                if let Some(v) = env.get(&after[..n]) {
                    out.push_str(v);
                }
                rest = &after[n..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Length of the variable name at the start of `s` (`[A-Za-z_][A-Za-z0-9_]*`).
fn name_len(s: &str) -> usize {
    let b = s.as_bytes();
    if b.is_empty() || !(b[0].is_ascii_alphabetic() || b[0] == b'_') {
        return 0;
    }
    b.iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count()
}

/// Index of the `}` closing a `${`, counting nested `${ … }`.
fn matching_brace(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'$' if b.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if b.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Evaluates the inside of `${…}`.
fn braced(inner: &str, env: &HashMap<String, String>) -> Result<String, InterpolateError> {
    let n = name_len(inner);
    let name = &inner[..n];
    let op = &inner[n..];
    if n == 0 {
        return Err(InterpolateError(format!(
            "invalid interpolation \"${{{inner}}}\": expected a variable name"
        )));
    }
    let val = env.get(name);
    let set = val.is_some();
    let non_empty = val.is_some_and(|v| !v.is_empty());
    let value = || val.cloned().unwrap_or_default();
    let (kind, arg) = if op.is_empty() {
        return Ok(value());
    } else if let Some(a) = op.strip_prefix(":-") {
        (":-", a)
    } else if let Some(a) = op.strip_prefix(":?") {
        (":?", a)
    } else if let Some(a) = op.strip_prefix(":+") {
        (":+", a)
    } else if let Some(a) = op.strip_prefix('-') {
        ("-", a)
    } else if let Some(a) = op.strip_prefix('?') {
        ("?", a)
    } else if let Some(a) = op.strip_prefix('+') {
        ("+", a)
    } else {
        return Err(InterpolateError(format!(
            "invalid interpolation \"${{{inner}}}\": unknown operator after {name} \
             (use :-, -, :?, ?, :+ or +)"
        )));
    };
    match kind {
        ":-" if non_empty => Ok(value()),
        "-" if set => Ok(value()),
        ":-" | "-" => interpolate(arg, env),
        ":+" if non_empty => interpolate(arg, env),
        "+" if set => interpolate(arg, env),
        ":+" | "+" => Ok(String::new()),
        ":?" if non_empty => Ok(value()),
        "?" if set => Ok(value()),
        _ => {
            let msg = interpolate(arg, env)?;
            let what = if kind == ":?" {
                "is unset or empty"
            } else {
                "is unset"
            };
            Err(InterpolateError(if msg.is_empty() {
                format!("required variable {name} {what}")
            } else {
                format!("required variable {name} {what}: {msg}")
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> HashMap<String, String> {
        [("A", "alpha"), ("EMPTY", ""), ("N", "3"), ("B_2", "beta")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ok(s: &str) -> String {
        interpolate(s, &env()).unwrap()
    }

    fn err(s: &str) -> String {
        interpolate(s, &env()).unwrap_err().0
    }

    #[test]
    fn plain_and_braced() {
        assert_eq!(ok("no vars"), "no vars");
        assert_eq!(ok("$A"), "alpha");
        assert_eq!(ok("x$A-y"), "xalpha-y");
        assert_eq!(ok("$B_2.z"), "beta.z");
        assert_eq!(ok("${A}"), "alpha");
        assert_eq!(ok("pre${A}post"), "prealphapost");
        assert_eq!(ok("10.0.${N}.1/24"), "10.0.3.1/24");
    }

    #[test]
    fn unset_plain_is_empty() {
        assert_eq!(ok("[$UNSET]"), "[]");
        assert_eq!(ok("[${UNSET}]"), "[]");
        assert_eq!(ok("[${EMPTY}]"), "[]");
    }

    #[test]
    fn colon_dash_default_for_unset_or_empty() {
        assert_eq!(ok("${UNSET:-d}"), "d");
        assert_eq!(ok("${EMPTY:-d}"), "d");
        assert_eq!(ok("${A:-d}"), "alpha");
        assert_eq!(ok("${UNSET:-}"), "");
        assert_eq!(ok("${UNSET:-a b/c:d}"), "a b/c:d");
    }

    #[test]
    fn dash_default_for_unset_only() {
        assert_eq!(ok("${UNSET-d}"), "d");
        assert_eq!(ok("${EMPTY-d}"), "");
        assert_eq!(ok("${A-d}"), "alpha");
    }

    #[test]
    fn plus_alternatives() {
        assert_eq!(ok("${A:+x}"), "x");
        assert_eq!(ok("${EMPTY:+x}"), "");
        assert_eq!(ok("${EMPTY+x}"), "x");
        assert_eq!(ok("${UNSET+x}"), "");
    }

    #[test]
    fn nested_defaults() {
        assert_eq!(ok("${UNSET:-${A}}"), "alpha");
        assert_eq!(ok("${UNSET:-${ALSO_UNSET:-deep}}"), "deep");
        assert_eq!(ok("${UNSET:-$$}"), "$");
    }

    #[test]
    fn colon_question_errors_when_unset_or_empty() {
        assert_eq!(ok("${A:?need A}"), "alpha");
        assert_eq!(
            err("${UNSET:?set UNSET please}"),
            "required variable UNSET is unset or empty: set UNSET please"
        );
        assert_eq!(
            err("${EMPTY:?}"),
            "required variable EMPTY is unset or empty"
        );
    }

    #[test]
    fn question_errors_when_unset_only() {
        assert_eq!(ok("${EMPTY?x}"), "");
        assert_eq!(
            err("${UNSET?no ${A}}"),
            "required variable UNSET is unset: no alpha"
        );
    }

    #[test]
    fn dollar_dollar_is_literal() {
        assert_eq!(ok("$$"), "$");
        assert_eq!(ok("$$A"), "$A");
        assert_eq!(ok("$${A}"), "${A}");
        assert_eq!(ok("a$$$A"), "a$alpha");
    }

    #[test]
    fn lone_dollar_stays() {
        assert_eq!(ok("cost $5"), "cost $5");
        assert_eq!(ok("end$"), "end$");
    }

    #[test]
    fn malformed_braces_are_errors() {
        assert!(err("${A").contains("missing closing"));
        assert!(err("${}").contains("expected a variable name"));
        assert!(err("${1X}").contains("expected a variable name"));
        assert!(err("${A/x}").contains("unknown operator"));
    }
}
