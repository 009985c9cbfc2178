//! What every page shares: the head base.html shows, the data as script-safe JSON, and the
//! rendered page with control characters shown as text.

use serde_json::Value;

/// JSON safe inside `<script>`: no `<`, `>` or `&` that could close the element or start a
/// comment.
pub(crate) fn script_json(v: &Value) -> String {
    let s = serde_json::to_string(v).unwrap_or_else(|_| "{}".into());
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The rendered page with every control character other than newline, tab and carriage return
/// shown as `\xNN` text (a file name holding ANSI escapes reads as what it is). The templates
/// hold none, so only names from the image change.
pub(crate) fn finish(html: String) -> String {
    if !html
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return html;
    }
    let mut out = String::with_capacity(html.len() + 16);
    for c in html.chars() {
        if c.is_control() && !matches!(c, '\n' | '\t' | '\r') {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What base.html shows of every page.
pub(crate) struct Head {
    pub(crate) version: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) title: String,
    pub(crate) subtitle: String,
    /// The page's data (treemaps), from [`script_json`].
    pub(crate) data_json: String,
}

impl Head {
    pub(crate) fn new(kind: &'static str, title: String, subtitle: String, data: &Value) -> Self {
        Head {
            version: VERSION,
            kind,
            title,
            subtitle,
            data_json: script_json(data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_json_cannot_close_the_element() {
        let v = serde_json::json!({"n": "</script><script>alert(1)</script> & <!--"});
        let s = script_json(&v);
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'));
        let back: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }
}
