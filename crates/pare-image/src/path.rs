//! [`ImagePath`]: a path inside an image's filesystem, in one canonical form.
//!
//! Every crate that hands an in-image path to another uses this type; host paths stay
//! `std::path::PathBuf`. The canonical form is absolute: `/usr/bin/env`, `/` for the root —
//! the form every JSON output (`report.json`, `pare xray/diff --json`) has always printed.
//! pare-layerfs keeps its merged view in the root-relative form (`usr/bin/env`, `""` for the
//! root); [`ImagePath::rel`] and [`ImagePath::from_rel`] convert between the two without
//! any other code writing `format!("/{p}")` or `trim_start_matches('/')`.
//!
//! Paths are UTF-8 (`str`): names that are not are made UTF-8 before they become paths (see
//! docs/limits.md, "File names that are not UTF-8").

use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A normalized path inside an image, in its canonical absolute form.
///
/// Invariants: it starts with `/`; it has no empty, `.` or `..` component, no trailing `/`
/// (except the root `/` itself) and no NUL byte. Equality, hashing and [`Ord`] are those of
/// that string (byte order, the order of pare-layerfs's merged view), and it borrows as that
/// `str`, so a `BTreeMap<ImagePath, _>` is looked up with `map.get("/etc/passwd")`.
///
/// `Display`, `Deref<Target = str>` and serde use the absolute form; deserializing normalizes
/// and refuses what [`ImagePath::new`] refuses.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImagePath(Box<str>);

/// Why a string is not an in-image path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImagePathError {
    /// A `..` component: an in-image path never climbs (resolving it needs the filesystem,
    /// as a `..` after a symlink goes elsewhere); [`ImagePath::clamped`] resolves it
    /// lexically for paths a user typed.
    #[error("`{path}`: path climbs with `..`")]
    DotDot {
        /// The path as given.
        path: String,
    },
    /// The path contains a NUL byte, which no file name can.
    #[error("{path:?}: path contains a NUL byte")]
    Nul {
        /// The path as given.
        path: String,
    },
}

impl ImagePath {
    /// The root directory, `/`.
    pub fn root() -> Self {
        ImagePath("/".into())
    }

    /// Normalizes an absolute (`/usr//bin/`) or root-relative (`./usr/bin`) path: duplicate
    /// and trailing slashes and `.` components go; `""` and `/` are the root. A `..`
    /// component or a NUL byte is refused.
    pub fn new(path: &str) -> Result<Self, ImagePathError> {
        if path.contains('\0') {
            return Err(ImagePathError::Nul { path: path.into() });
        }
        let mut out = String::with_capacity(path.len() + 1);
        for comp in path.split('/') {
            match comp {
                "" | "." => {}
                ".." => return Err(ImagePathError::DotDot { path: path.into() }),
                c => {
                    out.push('/');
                    out.push_str(c);
                }
            }
        }
        if out.is_empty() {
            out.push('/');
        }
        Ok(ImagePath(out.into_boxed_str()))
    }

    /// Normalizes a path a user typed or a symlink named, resolving `..` lexically and never
    /// above the root (`/../../etc//passwd` → `/etc/passwd`, `a/./b/../c` → `/a/c`). NUL
    /// bytes cannot come from a file name and are kept as they are.
    pub fn clamped(path: &str) -> Self {
        let mut parts: Vec<&str> = Vec::new();
        for c in path.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                c => parts.push(c),
            }
        }
        if parts.is_empty() {
            return Self::root();
        }
        let mut out = String::with_capacity(path.len() + 1);
        for p in parts {
            out.push('/');
            out.push_str(p);
        }
        ImagePath(out.into_boxed_str())
    }

    /// The path of a root-relative name that is already normalized, as pare-layerfs yields
    /// them (`MergedFs::iter`, `Record::path`): `usr/bin` → `/usr/bin`, `""` → `/`. It costs
    /// one allocation; a name that is not normalized is normalized (and a `..` clamped) so the
    /// invariants hold whatever the caller passes.
    pub fn from_rel(rel: &str) -> Self {
        if is_normalized_rel(rel) {
            let mut out = String::with_capacity(rel.len() + 1);
            out.push('/');
            out.push_str(rel);
            ImagePath(out.into_boxed_str())
        } else {
            Self::clamped(rel)
        }
    }

    /// The absolute form, `/usr/bin/env` (`/` for the root).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The root-relative form pare-layerfs keys its merged view by: `usr/bin/env` (`""` for
    /// the root). No allocation.
    pub fn rel(&self) -> &str {
        &self.0[1..]
    }

    /// Whether this is the root `/`.
    pub fn is_root(&self) -> bool {
        self.0.len() == 1
    }

    /// The parent directory (`None` for the root).
    pub fn parent(&self) -> Option<ImagePath> {
        if self.is_root() {
            return None;
        }
        let i = self.0.rfind('/').unwrap_or(0);
        Some(if i == 0 {
            Self::root()
        } else {
            ImagePath(self.0[..i].into())
        })
    }

    /// The last component (`""` for the root).
    pub fn file_name(&self) -> &str {
        self.0.rfind('/').map_or("", |i| &self.0[i + 1..])
    }

    /// This path with `name` appended; `name` may hold several components and is normalized
    /// as [`ImagePath::new`] does (a `..` or NUL is refused).
    pub fn join(&self, name: &str) -> Result<ImagePath, ImagePathError> {
        let tail = ImagePath::new(name)?;
        if self.is_root() {
            return Ok(tail);
        }
        if tail.is_root() {
            return Ok(self.clone());
        }
        Ok(ImagePath(format!("{}{}", self.0, tail.0).into_boxed_str()))
    }

    /// Whether `self` is `dir` or lies beneath it, component-wise (`/usr/lib` is within
    /// `/usr`, `/usrx` is not; `str::starts_with`, through `Deref`, compares bytes).
    pub fn is_within(&self, dir: &ImagePath) -> bool {
        dir.is_root()
            || self.0 == dir.0
            || (self.0.starts_with(&*dir.0) && self.0.as_bytes().get(dir.0.len()) == Some(&b'/'))
    }
}

/// Whether `rel` is a normalized root-relative path: no leading, trailing or double slash,
/// no `.`/`..` component, no NUL (`""` is the root).
fn is_normalized_rel(rel: &str) -> bool {
    rel.is_empty() || (!rel.contains('\0') && rel.split('/').all(|c| !matches!(c, "" | "." | "..")))
}

impl fmt::Display for ImagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ImagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// The absolute form, so `str`'s read-only methods apply (`p.ends_with(".so")`).
impl std::ops::Deref for ImagePath {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ImagePath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for ImagePath {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for ImagePath {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for ImagePath {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl std::str::FromStr for ImagePath {
    type Err = ImagePathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImagePath::new(s)
    }
}

impl TryFrom<&str> for ImagePath {
    type Error = ImagePathError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        ImagePath::new(s)
    }
}

impl From<ImagePath> for String {
    fn from(p: ImagePath) -> String {
        p.0.into()
    }
}

impl Serialize for ImagePath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ImagePath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        ImagePath::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn p(s: &str) -> ImagePath {
        ImagePath::new(s).unwrap()
    }

    #[test]
    fn normalizes_both_forms_to_one() {
        assert_eq!(p("/usr//bin/"), "/usr/bin");
        assert_eq!(p("./usr/bin"), "/usr/bin");
        assert_eq!(p("usr/./bin"), "/usr/bin");
        assert_eq!(p("//usr/bin"), p("usr/bin"));
        assert_eq!(p("/a b/ü"), "/a b/ü");
    }

    #[test]
    fn empty_and_root_are_the_root() {
        for s in ["", "/", ".", "./", "//", "/./"] {
            assert!(p(s).is_root(), "{s:?}");
            assert_eq!(p(s), ImagePath::root());
        }
        assert_eq!(ImagePath::root().as_str(), "/");
        assert_eq!(ImagePath::root().rel(), "");
        assert_eq!(ImagePath::root().parent(), None);
        assert_eq!(ImagePath::root().file_name(), "");
    }

    #[test]
    fn dotdot_and_nul_are_refused_by_new_and_clamped_by_clamped() {
        for s in ["..", "/..", "a/../b", "/etc/..", "../etc/passwd"] {
            assert!(
                matches!(ImagePath::new(s), Err(ImagePathError::DotDot { .. })),
                "{s:?}"
            );
        }
        assert!(matches!(
            ImagePath::new("a\0b"),
            Err(ImagePathError::Nul { .. })
        ));
        assert_eq!(ImagePath::clamped("/../../etc//passwd"), "/etc/passwd");
        assert_eq!(ImagePath::clamped("a/./b/../c"), "/a/c");
        assert_eq!(ImagePath::clamped("/"), "/");
        assert_eq!(ImagePath::clamped(".."), "/");
        assert_eq!(
            ImagePath::new("/x/../y").unwrap_err().to_string(),
            "`/x/../y`: path climbs with `..`"
        );
    }

    #[test]
    fn rel_and_from_rel_round_trip() {
        for rel in ["", "etc", "usr/lib/x86_64-linux-gnu/libc.so.6", "a b/ü"] {
            let ip = ImagePath::from_rel(rel);
            assert_eq!(ip.rel(), rel);
            assert_eq!(ip.as_str(), format!("/{rel}"));
            assert_eq!(ImagePath::new(ip.as_str()).unwrap(), ip);
            assert_eq!(ImagePath::new(rel).unwrap(), ip);
        }
        // A name that is not normalized still gives a canonical path.
        assert_eq!(ImagePath::from_rel("./a//b/"), "/a/b");
        assert_eq!(ImagePath::from_rel("/a"), "/a");
        assert_eq!(ImagePath::from_rel("a/../../b"), "/b");
    }

    #[test]
    fn parent_file_name_join_is_within() {
        let x = p("/usr/lib/x.so");
        assert_eq!(x.parent(), Some(p("/usr/lib")));
        assert_eq!(p("/usr").parent(), Some(ImagePath::root()));
        assert_eq!(x.file_name(), "x.so");
        assert_eq!(ImagePath::root().join("etc/passwd").unwrap(), "/etc/passwd");
        assert_eq!(p("/etc").join("passwd/").unwrap(), "/etc/passwd");
        assert_eq!(p("/etc").join("").unwrap(), "/etc");
        assert!(p("/etc").join("../x").is_err());
        assert!(x.is_within(&p("/usr")));
        assert!(x.is_within(&x));
        assert!(x.is_within(&ImagePath::root()));
        assert!(!p("/usrx").is_within(&p("/usr")));
        assert!(p("/usrx").starts_with("/usr"));
        assert!(!p("/usr").is_within(&x));
    }

    #[test]
    fn display_order_and_borrow_are_the_absolute_string() {
        let x = p("usr/bin");
        assert_eq!(x.to_string(), "/usr/bin");
        assert_eq!(format!("{x:?}"), "\"/usr/bin\"");
        // Byte order of the absolute strings, the order of the merged view: `-` sorts
        // before `/`.
        let mut v = vec![p("/a/b"), p("/a-b"), p("/"), p("/a")];
        v.sort();
        assert_eq!(v, [p("/"), p("/a"), p("/a-b"), p("/a/b")]);
        let m: BTreeMap<ImagePath, u8> = [(p("/etc/passwd"), 1)].into();
        assert_eq!(m.get("/etc/passwd"), Some(&1));
        assert_eq!(String::from(x), "/usr/bin");
    }

    #[test]
    fn serde_is_the_absolute_string() {
        let m: BTreeMap<ImagePath, Vec<ImagePath>> =
            [(p("/b"), vec![p("/")]), (p("/a/c"), vec![p("/a")])].into();
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"/a/c":["/a"],"/b":["/"]}"#);
        let back: BTreeMap<ImagePath, Vec<ImagePath>> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        // Deserializing normalizes and refuses what `new` refuses.
        let q: ImagePath = serde_json::from_str(r#""usr//bin/""#).unwrap();
        assert_eq!(q, "/usr/bin");
        let esc: ImagePath = serde_json::from_str(r#""/a\u00fcb""#).unwrap();
        assert_eq!(esc, "/aüb");
        assert!(serde_json::from_str::<ImagePath>(r#""/a/../b""#).is_err());
        assert!(serde_json::from_str::<ImagePath>("3").is_err());
    }
}
