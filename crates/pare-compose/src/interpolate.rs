//! `.env` files and `${VAR}` interpolation, as Compose does them.
//!
//! `$VAR` and `${VAR}` take the variable's value; `${VAR:-default}` (unset or empty) and
//! `${VAR-default}` (unset) a default, which may itself hold variables; `${VAR:?message}` and
//! `${VAR?message}` fail with the message; `${VAR:+alt}` / `${VAR+alt}` give `alt` when set;
//! `$$` is a literal `$`. Unlike Compose (which warns and substitutes ""), a variable with no
//! value and no default is an error: an empty database password is not what anyone meant.

use std::collections::BTreeMap;

use serde_yaml::Value;

/// An interpolation failure; `at` is the YAML path of the value (`services.api.image`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InterpolateError {
    /// `${VAR}` of a variable that is not set.
    #[error(
        "{at}: variable {name} is not set and has no default (set it or give ${{{name}:-default}})"
    )]
    Unset {
        /// Where (a YAML path).
        at: String,
        /// The variable.
        name: String,
    },
    /// `${VAR:?message}` or `${VAR?message}` of a variable that is unset (or empty).
    #[error("{at}: variable {name}: {message}")]
    Required {
        /// Where (a YAML path).
        at: String,
        /// The variable.
        name: String,
        /// The message the file gives.
        message: String,
    },
    /// Defaults holding substitutions holding substitutions… deeper than [`MAX_NESTING`].
    #[error("{at}: substitutions nested more than {MAX_NESTING} deep")]
    TooDeep {
        /// Where (a YAML path).
        at: String,
    },
    /// A `$` that starts no valid substitution.
    #[error("{at}: bad substitution in {text:?}")]
    Syntax {
        /// Where (a YAML path).
        at: String,
        /// The text holding it.
        text: String,
    },
}

/// How deep `${A:-${B:-…}}` may nest: deeper is an error, not a stack overflow.
pub const MAX_NESTING: usize = 32;

/// The variables interpolation sees: the process environment over the `.env` file.
pub type Vars = BTreeMap<String, String>;

/// Parses a `.env` file: `KEY=VALUE` lines, optional `export `, `#` comments, single quotes
/// (literal) and double quotes (`\n`, `\"`, `\\` escapes); an unquoted value ends at ` #`.
/// Returns the variables and the 1-based numbers of lines that are not assignments.
pub fn parse_env_file(text: &str) -> (Vars, Vec<usize>) {
    let mut vars = Vars::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((key, value)) = line.split_once('=') else {
            bad.push(i + 1);
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            bad.push(i + 1);
            continue;
        }
        let value = value.trim();
        let value = if let Some(rest) = value.strip_prefix('\'') {
            rest.split_once('\'').map_or(rest, |(v, _)| v).to_string()
        } else if let Some(rest) = value.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = rest.chars();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('n') => out.push('\n'),
                        Some('t') => out.push('\t'),
                        Some(o) => out.push(o),
                        None => {}
                    },
                    c => out.push(c),
                }
            }
            out
        } else {
            value
                .split_once(" #")
                .map_or(value, |(v, _)| v)
                .trim_end()
                .to_string()
        };
        vars.insert(key.to_string(), value);
    }
    (vars, bad)
}

/// Interpolates one string; `at` names it in errors.
pub fn interpolate_str(s: &str, vars: &Vars, at: &str) -> Result<String, InterpolateError> {
    interpolate_nested(s, vars, at, 0)
}

/// [`interpolate_str`] of a default (or message, or alternative) `depth` substitutions deep.
fn interpolate_nested(
    s: &str,
    vars: &Vars,
    at: &str,
    depth: usize,
) -> Result<String, InterpolateError> {
    if depth > MAX_NESTING {
        return Err(InterpolateError::TooDeep { at: at.to_string() });
    }
    let syntax = || InterpolateError::Syntax {
        at: at.to_string(),
        text: s.to_string(),
    };
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            // Find the matching brace (defaults may hold `${…}` themselves).
            let mut braces = 1;
            let mut end = None;
            let bytes = r.as_bytes();
            let mut j = 0;
            while j < bytes.len() {
                match bytes[j] {
                    b'{' => braces += 1,
                    b'}' => {
                        braces -= 1;
                        if braces == 0 {
                            end = Some(j);
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            let end = end.ok_or_else(syntax)?;
            out.push_str(&expand(&r[..end], vars, at, depth).map_err(|e| match e {
                Some(e) => e,
                None => syntax(),
            })?);
            rest = &r[end + 1..];
        } else {
            let n = after
                .char_indices()
                .find(|&(k, c)| {
                    !(c == '_' || c.is_ascii_alphanumeric()) || (k == 0 && c.is_ascii_digit())
                })
                .map_or(after.len(), |(k, _)| k);
            if n == 0 {
                // A lone `$` (before a space, a quote…) stays as it is.
                out.push('$');
                rest = after;
                continue;
            }
            out.push_str(&lookup(&after[..n], vars, at)?);
            rest = &after[n..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn lookup(name: &str, vars: &Vars, at: &str) -> Result<String, InterpolateError> {
    vars.get(name)
        .cloned()
        .ok_or_else(|| InterpolateError::Unset {
            at: at.to_string(),
            name: name.to_string(),
        })
}

/// The inside of `${…}`; `Err(None)` is a syntax error.
fn expand(
    inner: &str,
    vars: &Vars,
    at: &str,
    depth: usize,
) -> Result<String, Option<InterpolateError>> {
    let n = inner
        .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
        .unwrap_or(inner.len());
    let (name, op) = inner.split_at(n);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(None);
    }
    let value = vars.get(name);
    let (colon, op) = match op.strip_prefix(':') {
        Some(o) => (true, o),
        None => (false, op),
    };
    // With `:`, an empty value counts as unset.
    let set = value.is_some_and(|v| !colon || !v.is_empty());
    let Some(kind) = op.chars().next() else {
        return if colon {
            Err(None)
        } else {
            lookup(name, vars, at).map_err(Some)
        };
    };
    let arg = &op[kind.len_utf8()..];
    let nested = |s: &str| interpolate_nested(s, vars, at, depth + 1).map_err(Some);
    match kind {
        '-' if set => Ok(value.cloned().unwrap_or_default()),
        '-' => nested(arg),
        '+' if set => nested(arg),
        '+' => Ok(String::new()),
        '?' if set => Ok(value.cloned().unwrap_or_default()),
        '?' => Err(Some(InterpolateError::Required {
            at: at.to_string(),
            name: name.to_string(),
            message: if arg.is_empty() {
                "required".into()
            } else {
                nested(arg)?
            },
        })),
        _ => Err(None),
    }
}

/// Interpolates every string value (not the keys) of a YAML document in place. Extension
/// blocks (`x-…`) are interpolated too, as Compose does.
pub fn interpolate_value(v: &mut Value, vars: &Vars, at: &str) -> Result<(), InterpolateError> {
    match v {
        Value::String(s) => {
            if s.contains('$') {
                *s = interpolate_str(s, vars, at)?;
            }
        }
        Value::Sequence(seq) => {
            for (i, item) in seq.iter_mut().enumerate() {
                interpolate_value(item, vars, &format!("{at}[{i}]"))?;
            }
        }
        Value::Mapping(m) => {
            for (k, item) in m.iter_mut() {
                // Keys are quoted in errors: on one line.
                let key = match k {
                    Value::String(s) => crate::one_line(s),
                    other => {
                        crate::one_line(serde_yaml::to_string(other).unwrap_or_default().trim())
                    }
                };
                let path = if at.is_empty() {
                    key
                } else {
                    format!("{at}.{key}")
                };
                interpolate_value(item, vars, &path)?;
            }
        }
        Value::Tagged(t) => interpolate_value(&mut t.value, vars, at)?,
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        [("A", "1"), ("EMPTY", ""), ("NAME", "web")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn i(s: &str) -> Result<String, InterpolateError> {
        interpolate_str(s, &vars(), "x")
    }

    #[test]
    fn compose_forms() {
        assert_eq!(i("$A-${A}").unwrap(), "1-1");
        assert_eq!(i("${B:-d}").unwrap(), "d");
        assert_eq!(i("${EMPTY:-d}").unwrap(), "d");
        assert_eq!(i("${EMPTY-d}").unwrap(), "");
        assert_eq!(i("${B-d}").unwrap(), "d");
        assert_eq!(i("${A:-d}").unwrap(), "1");
        assert_eq!(i("${B:-${NAME}-x}").unwrap(), "web-x");
        assert_eq!(i("${A:+yes}|${B:+yes}|${EMPTY+set}").unwrap(), "yes||set");
        assert_eq!(i("$$A costs $$5 $ 3").unwrap(), "$A costs $5 $ 3");
        assert_eq!(i("${A:?need it}").unwrap(), "1");
        assert_eq!(i("no vars").unwrap(), "no vars");
    }

    #[test]
    fn missing_and_required_variables_are_errors() {
        let e = i("postgres://${DB_HOST}/x").unwrap_err();
        assert_eq!(
            e,
            InterpolateError::Unset {
                at: "x".into(),
                name: "DB_HOST".into()
            }
        );
        assert!(e.to_string().contains("DB_HOST is not set"), "{e}");
        assert!(matches!(i("$NOPE"), Err(InterpolateError::Unset { .. })));
        let e = i("${EMPTY:?must not be empty}").unwrap_err();
        assert!(e.to_string().contains("EMPTY: must not be empty"), "{e}");
        assert!(i("${EMPTY?x}").is_ok());
        assert!(matches!(i("${A"), Err(InterpolateError::Syntax { .. })));
        assert!(matches!(i("${}"), Err(InterpolateError::Syntax { .. })));
        assert!(matches!(i("${A:}"), Err(InterpolateError::Syntax { .. })));
        assert!(matches!(i("${A/x}"), Err(InterpolateError::Syntax { .. })));
    }

    #[test]
    fn hostile_substitutions_are_errors_not_panics() {
        // A multi-byte character where the operator goes (it used to split the character).
        assert!(matches!(i("${Aé-x}"), Err(InterpolateError::Syntax { .. })));
        assert!(matches!(i("${A:é}"), Err(InterpolateError::Syntax { .. })));
        // Defaults nested deeper than the limit (it used to overflow the stack).
        let nest = |n: usize| "${B:-".repeat(n) + "x" + &"}".repeat(n);
        assert_eq!(i(&nest(MAX_NESTING)).unwrap(), "x");
        let e = i(&nest(20_000)).unwrap_err();
        assert_eq!(e, InterpolateError::TooDeep { at: "x".into() });
        assert!(e.to_string().contains("nested more than 32 deep"), "{e}");
        // Long runs stay linear enough to finish at once.
        assert_eq!(i(&"${A}".repeat(100_000)).unwrap().len(), 100_000);
        assert!(matches!(
            i(&"${".repeat(100_000)),
            Err(InterpolateError::Syntax { .. })
        ));
    }

    #[test]
    fn env_files() {
        let (v, bad) = parse_env_file(
            "# comment\nA=1\nexport B = two words # note\nC='lit $X # no'\nD=\"a\\nb\"\nnot an assignment\n\nE=\n",
        );
        assert_eq!(v["A"], "1");
        assert_eq!(v["B"], "two words");
        assert_eq!(v["C"], "lit $X # no");
        assert_eq!(v["D"], "a\nb");
        assert_eq!(v["E"], "");
        assert_eq!(bad, vec![6]);
    }

    #[test]
    fn values_not_keys_and_paths_in_errors() {
        let mut doc: Value = serde_yaml::from_str(
            "services:\n  web:\n    image: ${NAME}:1\n    ports: [\"${P}\"]\n",
        )
        .unwrap();
        let e = interpolate_value(&mut doc, &vars(), "").unwrap_err();
        assert_eq!(
            e.to_string().split(':').next(),
            Some("services.web.ports[0]")
        );
        let mut doc: Value = serde_yaml::from_str("${A}: ${NAME}\n").unwrap();
        interpolate_value(&mut doc, &vars(), "").unwrap();
        assert_eq!(serde_yaml::to_string(&doc).unwrap().trim(), "${A}: web");
    }
}
