//! Lexical path handling on raw bytes (paths in a container need not be UTF-8).

/// Joins `rel` onto `base` (unless `rel` is absolute) and normalizes the result lexically:
/// repeated slashes, `.` and `..` are removed. `..` above `/` stays at `/`, as the kernel does.
pub fn join_normalize(base: &[u8], rel: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    let iter: Box<dyn Iterator<Item = &[u8]>> = if rel.first() == Some(&b'/') {
        Box::new(rel.split(|b| *b == b'/'))
    } else {
        Box::new(base.split(|b| *b == b'/').chain(rel.split(|b| *b == b'/')))
    };
    for c in iter {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return b"/".to_vec();
    }
    let mut out = Vec::with_capacity(rel.len() + base.len() + 1);
    for p in parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    out
}

/// The components of a normalized absolute path.
pub fn components(path: &[u8]) -> Vec<&[u8]> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty())
        .collect()
}

pub fn lossy(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(b: &str, r: &str) -> String {
        lossy(&join_normalize(b.as_bytes(), r.as_bytes()))
    }

    #[test]
    fn normalizes() {
        assert_eq!(j("/a/b", "c"), "/a/b/c");
        assert_eq!(j("/a/b", "./c/../d"), "/a/b/d");
        assert_eq!(j("/a/b", "/x//y/"), "/x/y");
        assert_eq!(j("/", "../../etc"), "/etc");
        assert_eq!(j("/a", ""), "/a");
        assert_eq!(j("/", "."), "/");
        assert_eq!(components(b"/a//b/"), vec![&b"a"[..], &b"b"[..]]);
    }
}
