//! Path normalization for layer entries.

/// Why an entry name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathIssue {
    #[error("absolute name (layers hold root-relative names)")]
    Absolute,
    #[error("name climbs out of the root with `..`")]
    Escape,
    #[error("name contains a NUL byte")]
    Nul,
}

/// Normalizes a raw entry name to a root-relative path without `.` components, duplicate or
/// trailing slashes: `./usr//bin/` → `usr/bin`. The root itself is `""`.
///
/// Absolute names and any `..` component are refused: container layers never need them and a
/// tool that "fixes" them silently hides a hostile or broken image.
pub fn normalize(raw: &[u8]) -> Result<String, PathIssue> {
    if raw.first() == Some(&b'/') {
        return Err(PathIssue::Absolute);
    }
    if raw.contains(&0) {
        return Err(PathIssue::Nul);
    }
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err(PathIssue::Escape),
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Ok(match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// The parent of a normalized path (`""` for top-level names).
pub(crate) fn parent(p: &str) -> &str {
    p.rfind('/').map(|i| &p[..i]).unwrap_or("")
}

/// The last component of a normalized path.
pub(crate) fn file_name(p: &str) -> &str {
    p.rfind('/').map(|i| &p[i + 1..]).unwrap_or(p)
}

pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        assert_eq!(normalize(b"./usr//bin/").unwrap(), "usr/bin");
        assert_eq!(normalize(b"./").unwrap(), "");
        assert_eq!(normalize(b"a/./b").unwrap(), "a/b");
        assert_eq!(normalize(b"/etc/x"), Err(PathIssue::Absolute));
        assert_eq!(normalize(b"../x"), Err(PathIssue::Escape));
        assert_eq!(normalize(b"a/../../x"), Err(PathIssue::Escape));
        assert_eq!(parent("a/b/c"), "a/b");
        assert_eq!(parent("a"), "");
        assert_eq!(file_name("a/b/c"), "c");
    }
}
