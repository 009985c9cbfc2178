//! Variable expansion in ARG/ENV values, as BuildKit does it.

/// Expands `$V`, `${V}`, `${V:-default}`, `${V-default}`, `${V:+alt}` and `${V+alt}` the way
/// BuildKit does for ARG/ENV values. Unknown variables expand to the empty string (or the
/// default); `\$` stays a literal `$`.
pub fn expand(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if c == '\\' && s[i + 1..].starts_with('$') {
            out.push('$');
            it.next();
            continue;
        }
        if c != '$' {
            out.push(c);
            continue;
        }
        let rest = &s[i + 1..];
        if let Some(body) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let close = body.char_indices().find_map(|(k, ch)| match ch {
                '{' => {
                    depth += 1;
                    None
                }
                '}' if depth == 0 => Some(k),
                '}' => {
                    depth -= 1;
                    None
                }
                _ => None,
            });
            let Some(close) = close else {
                out.push_str(&s[i..]);
                break;
            };
            let inner = &body[..close];
            let name_end = inner
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .unwrap_or(inner.len());
            let (name, op) = inner.split_at(name_end);
            let val = lookup(name);
            let set_nonempty = val.as_deref().is_some_and(|v| !v.is_empty());
            let rendered = match op {
                "" => val.unwrap_or_default(),
                _ if op.starts_with(":-") => {
                    if set_nonempty {
                        val.unwrap_or_default()
                    } else {
                        expand(&op[2..], lookup)
                    }
                }
                _ if op.starts_with('-') => val.unwrap_or_else(|| expand(&op[1..], lookup)),
                _ if op.starts_with(":+") => {
                    if set_nonempty {
                        expand(&op[2..], lookup)
                    } else {
                        String::new()
                    }
                }
                _ if op.starts_with('+') => {
                    if val.is_some() {
                        expand(&op[1..], lookup)
                    } else {
                        String::new()
                    }
                }
                _ => val.unwrap_or_default(),
            };
            out.push_str(&rendered);
            // Skip `{inner}`.
            let skip = 1 + close + 1;
            while let Some(&(j, _)) = it.peek() {
                if j < i + 1 + skip {
                    it.next();
                } else {
                    break;
                }
            }
        } else {
            let name_len = rest
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .unwrap_or(rest.len());
            if name_len == 0 {
                out.push('$');
                continue;
            }
            out.push_str(&lookup(&rest[..name_len]).unwrap_or_default());
            for _ in 0..rest[..name_len].chars().count() {
                it.next();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn expansion_forms() {
        let look = |n: &str| match n {
            "A" => Some("x".to_string()),
            "E" => Some(String::new()),
            _ => None,
        };
        assert_eq!(
            expand(
                "$A-${A}/${B:-def}/${E:-d2}/${E-d3}/${A:+alt}/${B:+alt}/${E+set}",
                &look
            ),
            "x-x/def/d2//alt//set"
        );
        assert_eq!(expand("\\$A ${unterminated", &look), "$A ${unterminated");
        assert_eq!(expand("${B:-${A}y}é$", &look), "xyé$");
    }
}
