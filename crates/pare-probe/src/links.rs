//! Finding same-origin links in HTML, for the crawl.

/// Values of `href=` and `src=` attributes in `html`, in document order, entity `&amp;` decoded.
pub fn extract_links(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut out = Vec::new();
    for attr in ["href", "src"] {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(attr) {
            let start = from + pos;
            from = start + attr.len();
            // The attribute name must stand alone: preceded by whitespace, followed by `=`.
            if start == 0 || !bytes[start - 1].is_ascii_whitespace() {
                continue;
            }
            let mut i = from;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if i >= bytes.len() || bytes[i] != b'=' {
                continue;
            }
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if i >= bytes.len() {
                break;
            }
            let (vstart, vend) = match bytes[i] {
                q @ (b'"' | b'\'') => match lower[i + 1..].find(q as char) {
                    Some(end) => (i + 1, i + 1 + end),
                    None => continue,
                },
                _ => {
                    let end = lower[i..]
                        .find(|c: char| c.is_ascii_whitespace() || c == '>')
                        .map(|e| i + e)
                        .unwrap_or(lower.len());
                    (i, end)
                }
            };
            // Slice the original text (same byte offsets: ASCII lower-casing keeps lengths).
            let value = html[vstart..vend].trim().replace("&amp;", "&");
            out.push((start, value));
            from = vend;
        }
    }
    let mut out: Vec<(usize, String)> = out;
    out.sort_by_key(|(pos, _)| *pos);
    out.into_iter().map(|(_, v)| v).collect()
}

/// `url(...)` references and `@import "..."` in a stylesheet (fonts, images, other sheets).
pub fn extract_css_urls(css: &str) -> Vec<String> {
    let mut out = Vec::new();
    let lower = css.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find("url(") {
        let start = from + pos + 4;
        let Some(end) = lower[start..].find(')') else {
            break;
        };
        let v = css[start..start + end]
            .trim()
            .trim_matches(['"', '\''])
            .trim();
        if !v.is_empty() && !v.starts_with("data:") {
            out.push(v.to_string());
        }
        from = start + end;
    }
    from = 0;
    while let Some(pos) = lower[from..].find("@import") {
        let rest = &css[from + pos + 7..];
        let rest = rest.trim_start();
        from += pos + 7;
        if let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') {
            if let Some(end) = rest[1..].find(q) {
                out.push(rest[1..1 + end].to_string());
            }
        }
    }
    out
}

/// Resolves `link` found on the page at `base_path` to a path+query on the same origin, or
/// `None` when it leaves the origin (another host, scheme or a non-HTTP URL).
/// `origins` lists the authorities (`host[:port]`) that count as this origin.
pub fn resolve(base_path: &str, link: &str, https: bool, origins: &[String]) -> Option<String> {
    let link = link.split('#').next().unwrap_or("").trim();
    if link.is_empty() {
        return None;
    }
    let lower = link.to_ascii_lowercase();
    let (rel, absolute) = if let Some(rest) = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
    {
        let scheme_https = lower.starts_with("https://");
        if scheme_https != https {
            return None;
        }
        let (auth, _) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        if !origins.iter().any(|o| o.eq_ignore_ascii_case(auth)) {
            return None;
        }
        let off = link.len() - rest.len() + auth.len();
        (&link[off..], true)
    } else if let Some(rest) = lower.strip_prefix("//") {
        let (auth, _) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        if !origins.iter().any(|o| o.eq_ignore_ascii_case(auth)) {
            return None;
        }
        (&link[2 + auth.len()..], true)
    } else if lower.contains(':') && lower.find(':') < lower.find('/').or(Some(usize::MAX)) {
        // mailto:, javascript:, data:, tel:, other schemes.
        return None;
    } else {
        (link, false)
    };
    let joined = if absolute || rel.starts_with('/') {
        if rel.is_empty() {
            "/".to_string()
        } else if rel.starts_with('?') {
            format!("/{rel}")
        } else {
            rel.to_string()
        }
    } else if rel.starts_with('?') {
        format!("{}{}", base_path.split('?').next().unwrap_or("/"), rel)
    } else {
        let base = base_path.split('?').next().unwrap_or("/");
        let dir = &base[..base.rfind('/').map(|i| i + 1).unwrap_or(0)];
        format!("{}{}", if dir.is_empty() { "/" } else { dir }, rel)
    };
    Some(normalize(&joined))
}

/// Removes `.` and `..` segments (never above the root), keeping the query as is.
fn normalize(path: &str) -> String {
    let (p, q) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let mut segs: Vec<&str> = Vec::new();
    let trailing = p.ends_with('/') || p.ends_with("/.") || p.ends_with("/..");
    for s in p.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    let mut out = format!("/{}", segs.join("/"));
    if trailing && out != "/" {
        out.push('/');
    }
    if let Some(q) = q {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_href_and_src_in_order() {
        let html = r#"<html><a href="/second">x</a><img SRC='img/a.png'><link rel=stylesheet href=/s.css>
            <a data-href="/no">n</a><a href="/q?a=1&amp;b=2#frag">q</a><script src="https://cdn.example/x.js"></script>"#;
        assert_eq!(
            extract_links(html),
            vec![
                "/second",
                "img/a.png",
                "/s.css",
                "/q?a=1&b=2#frag",
                "https://cdn.example/x.js"
            ]
        );
    }

    #[test]
    fn finds_css_urls() {
        let css = r#"@import "base.css"; body { background: URL( 'img/bg.png' ) } @font-face { src: url(/f.woff2) }
            .x { background: url(data:image/png;base64,AAA) }"#;
        assert_eq!(
            extract_css_urls(css),
            vec!["img/bg.png", "/f.woff2", "base.css"]
        );
    }

    #[test]
    fn resolves_same_origin_only() {
        let o = vec!["localhost:8080".to_string(), "127.0.0.1:32768".to_string()];
        assert_eq!(resolve("/a/b", "c", false, &o).as_deref(), Some("/a/c"));
        assert_eq!(
            resolve("/a/b/", "../c?x=1", false, &o).as_deref(),
            Some("/a/c?x=1")
        );
        assert_eq!(
            resolve("/a/b", "?p=2", false, &o).as_deref(),
            Some("/a/b?p=2")
        );
        assert_eq!(
            resolve("/", "http://localhost:8080/x#y", false, &o).as_deref(),
            Some("/x")
        );
        assert_eq!(
            resolve("/", "http://LOCALHOST:8080", false, &o).as_deref(),
            Some("/")
        );
        assert_eq!(
            resolve("/", "//127.0.0.1:32768/z", false, &o).as_deref(),
            Some("/z")
        );
        assert_eq!(resolve("/", "https://localhost:8080/x", false, &o), None);
        assert_eq!(resolve("/", "http://example.com/x", false, &o), None);
        assert_eq!(resolve("/", "mailto:a@b", false, &o), None);
        assert_eq!(resolve("/", "javascript:void(0)", false, &o), None);
        assert_eq!(resolve("/", "#top", false, &o), None);
        assert_eq!(
            resolve("/", "../../../etc", false, &o).as_deref(),
            Some("/etc")
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_page(page in "(?s).{0,300}", base in "/[a-zA-Z0-9/?.]{0,20}") {
            let origins = vec!["localhost:8080".to_string()];
            for link in extract_links(&page).into_iter().chain(extract_css_urls(&page)) {
                if let Some(p) = resolve(&base, &link, false, &origins) {
                    proptest::prop_assert!(p.starts_with('/'));
                    proptest::prop_assert!(!p.split('?').next().unwrap_or("").split('/').any(|s| s == ".."));
                }
            }
            let _ = resolve(&base, &page, true, &origins);
        }
    }
}
