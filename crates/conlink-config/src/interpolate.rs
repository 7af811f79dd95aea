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

/// Deepest nesting of `${…}` accepted. Compose files in the wild nest two
/// or three levels; the limit exists so a hostile value cannot make the
/// loader's stack of open references grow without bound.
pub const MAX_NESTING: usize = 64;

/// Longest piece of the input quoted in an error message: a 1 MB value must
/// not be echoed whole.
const QUOTE_MAX: usize = 48;

/// The operator of a `${NAME<op>arg}` reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `:-` (with_colon) or `-`: default.
    Default { colon: bool },
    /// `:+` or `+`: alternative.
    Alt { colon: bool },
    /// `:?` or `?`: required, with a message.
    Required { colon: bool },
}

/// A `${NAME<op>` whose closing `}` has not been read yet.
struct Frame<'a> {
    /// Byte offset of its `$` (for the "missing closing" message).
    start: usize,
    name: &'a str,
    op: Op,
    /// Whether the argument's value is used (it is still scanned otherwise,
    /// to find the closing brace, but nothing is substituted or raised).
    live: bool,
    /// The argument, interpolated so far.
    arg: String,
}

/// Replaces every variable reference in `s` using `env`.
///
/// One left-to-right pass with an explicit stack of open `${`: linear in the
/// length of `s` whatever the nesting (a recursive descent that rescans each
/// default overflowed the stack at ~20,000 levels and went quadratic before
/// that), and nesting deeper than [`MAX_NESTING`] is an error.
pub fn interpolate(s: &str, env: &HashMap<String, String>) -> Result<String, InterpolateError> {
    // Fast path: most strings hold no `$` at all.
    if !s.contains('$') {
        return Ok(s.to_string());
    }
    let b = s.as_bytes();
    let mut top = String::with_capacity(s.len());
    let mut stack: Vec<Frame<'_>> = Vec::new();
    let mut i = 0;
    // Start of the literal run not yet copied.
    let mut lit = 0;
    while i < b.len() {
        let c = b[i];
        let special = c == b'$' || (c == b'}' && !stack.is_empty());
        if !special {
            i += 1;
            continue;
        }
        let live = stack.last().is_none_or(|f| f.live);
        let out = match stack.last_mut() {
            Some(f) => &mut f.arg,
            None => &mut top,
        };
        if live {
            out.push_str(&s[lit..i]);
        }
        if c == b'}' {
            // closes the innermost open reference (the stack is not empty:
            // a `}` at the top level was skipped as a literal above)
            let Some(f) = stack.pop() else { break };
            let val = resolve(f, env)?;
            let parent_live = stack.last().is_none_or(|f| f.live);
            if parent_live {
                match stack.last_mut() {
                    Some(p) => p.arg.push_str(&val),
                    None => top.push_str(&val),
                }
            }
            i += 1;
            lit = i;
            continue;
        }
        // c == '$'
        let after = &s[i + 1..];
        if after.starts_with('$') {
            if live {
                out.push('$');
            }
            i += 2;
        } else if let Some(r) = after.strip_prefix('{') {
            let n = name_len(r);
            if n == 0 {
                return Err(InterpolateError(format!(
                    "invalid interpolation {}: expected a variable name",
                    quote_ref(&s[i..])
                )));
            }
            let name = &r[..n];
            let rest = &r[n..];
            let value = env.get(name);
            if rest.starts_with('}') {
                if live {
                    out.push_str(value.map_or("", String::as_str));
                }
                i += 2 + n + 1;
            } else {
                let (op, len) = match rest.as_bytes() {
                    [b':', b'-', ..] => (Op::Default { colon: true }, 2),
                    [b':', b'+', ..] => (Op::Alt { colon: true }, 2),
                    [b':', b'?', ..] => (Op::Required { colon: true }, 2),
                    [b'-', ..] => (Op::Default { colon: false }, 1),
                    [b'+', ..] => (Op::Alt { colon: false }, 1),
                    [b'?', ..] => (Op::Required { colon: false }, 1),
                    [] => {
                        return Err(missing_close(s, stack.first().map_or(i, |f| f.start)));
                    }
                    _ => {
                        return Err(InterpolateError(format!(
                            "invalid interpolation {}: unknown operator after {name} \
                             (use :-, -, :?, ?, :+ or +)",
                            quote_ref(&s[i..])
                        )))
                    }
                };
                if stack.len() >= MAX_NESTING {
                    return Err(InterpolateError(format!(
                        "interpolation nested deeper than {MAX_NESTING} levels of ${{…}}"
                    )));
                }
                let set = value.is_some();
                let non_empty = value.is_some_and(|v| !v.is_empty());
                let uses_arg = match op {
                    Op::Default { colon: true } | Op::Required { colon: true } => !non_empty,
                    Op::Default { colon: false } | Op::Required { colon: false } => !set,
                    Op::Alt { colon: true } => non_empty,
                    Op::Alt { colon: false } => set,
                };
                stack.push(Frame {
                    start: i,
                    name,
                    op,
                    live: live && uses_arg,
                    arg: String::new(),
                });
                i += 2 + n + len;
            }
        } else {
            let n = name_len(after);
            if n == 0 {
                if live {
                    out.push('$');
                }
                i += 1;
            } else {
                if live {
                    if let Some(v) = env.get(&after[..n]) {
                        out.push_str(v);
                    }
                }
                i += 1 + n;
            }
        }
        lit = i;
    }
    if let Some(f) = stack.first() {
        return Err(missing_close(s, f.start));
    }
    top.push_str(&s[lit..]);
    Ok(top)
}

/// The value a closed `${NAME<op>arg}` stands for.
fn resolve(f: Frame<'_>, env: &HashMap<String, String>) -> Result<String, InterpolateError> {
    let val = env.get(f.name);
    let value = || val.cloned().unwrap_or_default();
    match f.op {
        Op::Default { .. } if f.live => Ok(f.arg),
        Op::Default { .. } => Ok(value()),
        Op::Alt { .. } if f.live => Ok(f.arg),
        Op::Alt { .. } => Ok(String::new()),
        Op::Required { .. } if !f.live => Ok(value()),
        Op::Required { colon } => {
            let what = if colon {
                "is unset or empty"
            } else {
                "is unset"
            };
            let name = f.name;
            Err(InterpolateError(if f.arg.is_empty() {
                format!("required variable {name} {what}")
            } else {
                format!("required variable {name} {what}: {}", cap(&f.arg))
            }))
        }
    }
}

fn missing_close(s: &str, start: usize) -> InterpolateError {
    InterpolateError(format!(
        "invalid interpolation {}: missing closing '}}' (write $$ for a literal $)",
        quoted(&s[start..])
    ))
}

/// `s` cut to [`QUOTE_MAX`] bytes (on a character boundary) with a note of
/// what was left out.
fn cap(s: &str) -> String {
    if s.len() <= QUOTE_MAX {
        return s.to_string();
    }
    let mut end = QUOTE_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &s[..end], s.len() - end)
}

/// `s` quoted for a message, capped.
fn quoted(s: &str) -> String {
    if s.len() <= QUOTE_MAX {
        return format!("{s:?}");
    }
    let mut end = QUOTE_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}… ({} more bytes)", &s[..end], s.len() - end)
}

/// The reference starting at `s` (`${…}` up to its closing brace, or the
/// rest), quoted for a message. Only called on the error path, so scanning
/// ahead here does not make the pass quadratic.
fn quote_ref(s: &str) -> String {
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
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return quoted(&s[..=i]);
                }
            }
            _ => {}
        }
        i += 1;
    }
    quoted(s)
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
        assert_eq!(
            err("${A/x}"),
            "invalid interpolation \"${A/x}\": unknown operator after A (use :-, -, :?, ?, :+ or +)"
        );
        assert_eq!(
            err("a ${A:-${B"),
            "invalid interpolation \"${A:-${B\": missing closing '}' (write $$ for a literal $)"
        );
    }

    #[test]
    fn unused_branches_raise_nothing() {
        // the `:?` inside an unused default is not evaluated
        assert_eq!(ok("${A:-${UNSET:?boom}}"), "alpha");
        assert_eq!(ok("${UNSET:+${ALSO:?boom}}"), "");
        assert_eq!(ok("${A:+[${N}]}"), "[3]");
        assert_eq!(ok("x}y"), "x}y");
        assert_eq!(ok("${UNSET:-a}b}"), "ab}");
    }

    #[test]
    fn deep_nesting_is_a_clear_error_not_a_stack_overflow() {
        // regression (issue 12, defect 1): 20,000 levels aborted with a stack
        // overflow, 150,000 took over 10 s
        let depth = 150_000;
        let s = format!("{}x{}", "${A:-".repeat(depth), "}".repeat(depth));
        let t = std::time::Instant::now();
        let e = err(&s);
        assert_eq!(e, "interpolation nested deeper than 64 levels of ${…}");
        assert!(t.elapsed() < std::time::Duration::from_secs(20));
        let s = format!(
            "{}x{}",
            "${UNSET:-".repeat(MAX_NESTING),
            "}".repeat(MAX_NESTING)
        );
        assert_eq!(ok(&s), "x");
    }

    #[test]
    fn long_inputs_are_linear_and_quoted_short() {
        // the bounds are loose (debug build, shared machine): a quadratic
        // pass over these sizes would take hours, not seconds
        let s = format!("${{A{}", "x".repeat(1_000_000));
        let t = std::time::Instant::now();
        let e = err(&s);
        assert!(e.len() < 200, "{e}");
        assert!(e.contains("more bytes"), "{e}");
        let s = "${A}$$".repeat(200_000);
        assert_eq!(ok(&s).len(), 200_000 * 6);
        assert!(t.elapsed() < std::time::Duration::from_secs(20));
    }
}
