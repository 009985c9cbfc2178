//! Path normalization for layer entries.

/// Why an entry name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathIssue {
    /// The name starts with `/`.
    #[error("absolute name (layers hold root-relative names)")]
    Absolute,
    /// A `..` component would take the name above the layer root.
    #[error("name climbs out of the root with `..`")]
    Escape,
    /// The name contains a NUL byte, which no filesystem path can.
    #[error("name contains a NUL byte")]
    Nul,
    /// The name is longer than [`MAX_PATH`] bytes.
    #[error("name is {len} bytes long, over the {MAX_PATH}-byte limit (Linux PATH_MAX)")]
    TooLong {
        /// Length of the name in bytes, as stored (before normalization).
        len: usize,
    },
    /// The normalized name has more than [`MAX_DEPTH`] components.
    #[error("name is nested {depth} directories deep, over the limit of {MAX_DEPTH}")]
    TooDeep {
        /// Number of components of the normalized name.
        depth: usize,
    },
}

/// The longest entry name accepted, in bytes: Linux's `PATH_MAX`. No container runtime can
/// create or open a longer path in one system call.
pub const MAX_PATH: usize = 4096;

/// The deepest entry accepted, in path components. Real images stay far below it (deep
/// `node_modules` trees reach about 100); the bound keeps the merge and the extraction, which
/// resolve every component of every path, fast on a hostile layer.
pub const MAX_DEPTH: usize = 512;

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
    let mut out: Vec<u8> = Vec::with_capacity(raw.len().min(MAX_PATH));
    let mut depth = 0usize;
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err(PathIssue::Escape),
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
                depth += 1;
            }
        }
    }
    if out.len() > MAX_PATH {
        return Err(PathIssue::TooLong { len: out.len() });
    }
    if depth > MAX_DEPTH {
        return Err(PathIssue::TooDeep { depth });
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
        let deep = "a/".repeat(10_000);
        assert_eq!(
            normalize(deep.as_bytes()),
            Err(PathIssue::TooLong { len: 19_999 })
        );
        let long = "x".repeat(5000);
        assert_eq!(
            normalize(long.as_bytes()),
            Err(PathIssue::TooLong { len: 5000 })
        );
        assert_eq!(
            normalize("a/".repeat(513).as_bytes()),
            Err(PathIssue::TooDeep { depth: 513 })
        );
        // `./` and duplicate slashes do not count.
        let padded = format!("{}{}", "./".repeat(3000), "ab//".repeat(512));
        assert_eq!(normalize(padded.as_bytes()).unwrap().len(), 512 * 3 - 1);
    }
}
