//! Image references in skopeo's transport syntax.
//!
//! | syntax                         | meaning                                         |
//! |--------------------------------|-------------------------------------------------|
//! | `docker-daemon:NAME[:TAG]`     | an image in the local Docker Engine             |
//! | `docker-archive:PATH[:REF]`    | a `docker save` tarball (legacy or OCI-in-tar)  |
//! | `oci:DIR[:TAG]`                | an OCI image layout directory                   |
//! | `oci-archive:PATH[:TAG]`       | a tar of an OCI image layout                    |
//! | `docker://NAME[:TAG\|@DIGEST]` | a registry (see `pare_source::registry`)        |
//! | `NAME[:TAG]`                   | shorthand for `docker-daemon:NAME[:TAG]`        |

#![deny(missing_docs)]

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// `docker-daemon:NAME[:TAG]` or a bare `NAME[:TAG]`. `name` is kept as the user wrote it
    /// (the daemon resolves short names, image IDs and digests itself).
    DockerDaemon {
        /// The name with its tag or digest (`nginx:1.27`, `sha256:…`), without the transport.
        name: String,
    },
    /// `docker-archive:PATH[:REF]`; `reference` picks one image when the archive holds several.
    DockerArchive {
        /// The tar file, as given (relative paths stay relative).
        path: PathBuf,
        /// The `NAME:TAG` after the path, as in the archive's `RepoTags`; `None` takes the
        /// archive's only image.
        reference: Option<String>,
    },
    /// `oci:DIR[:TAG]`; `tag` matches `org.opencontainers.image.ref.name` in `index.json`.
    Oci {
        /// The layout directory (holding `oci-layout` and `index.json`).
        dir: PathBuf,
        /// `None` takes the index's only entry (an image, or a list of its platforms).
        tag: Option<String>,
    },
    /// `oci-archive:PATH[:TAG]`.
    OciArchive {
        /// The tar file holding an OCI image layout.
        path: PathBuf,
        /// As for [`ImageRef::Oci`]: matches `org.opencontainers.image.ref.name`; `None`
        /// takes the only entry.
        tag: Option<String>,
    },
    /// `docker://NAME[:TAG|@DIGEST]`.
    Registry {
        /// `[DOMAIN[:PORT]/]PATH[:TAG|@DIGEST]` after `docker://`, as written (no default
        /// registry or tag is filled in here).
        name: String,
    },
}

/// Why a reference could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReferenceError {
    /// The reference is empty or only whitespace.
    #[error("empty image reference")]
    Empty,
    /// A transport with nothing after it (`oci:`), or a daemon/registry name that breaks
    /// the Docker reference grammar (uppercase, whitespace, a bad tag or digest).
    #[error("image reference `{reference}`: {reason}")]
    Invalid {
        /// The whole reference as typed (trimmed).
        reference: String,
        /// Which rule it breaks (`missing path`, `an image ID is sha256: and 64 hex digits`).
        reason: &'static str,
    },
    /// A file system path where an image name was expected (`./layout`, `/tmp/app.tar`).
    #[error("`{reference}` is a path, not an image name")]
    Path {
        /// The path as typed, without any `docker-daemon:` prefix.
        reference: String,
    },
}

impl ReferenceError {
    /// The hint that does not need to look at the file system.
    pub fn hint(&self) -> Option<String> {
        match self {
            ReferenceError::Path { reference } => Some(format!(
                "name the transport: oci:{reference} (OCI layout directory), \
                 docker-archive:{reference} (`docker save` tar) or oci-archive:{reference}"
            )),
            ReferenceError::Invalid { .. } => Some(
                "a daemon image is NAME[:TAG] or NAME@sha256:DIGEST with a lowercase NAME; \
                 files need a transport (oci:DIR, docker-archive:FILE)"
                    .into(),
            ),
            ReferenceError::Empty => None,
        }
    }
}

impl ImageRef {
    /// Parses a reference; see the module docs for the syntax.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        s.parse()
    }

    /// A short name for reports and default tags: the repository and tag for daemon and
    /// registry references, the path otherwise.
    pub fn display_name(&self) -> String {
        match self {
            ImageRef::DockerDaemon { name } | ImageRef::Registry { name } => name.clone(),
            ImageRef::DockerArchive { path, .. } | ImageRef::OciArchive { path, .. } => {
                path.display().to_string()
            }
            ImageRef::Oci { dir, .. } => dir.display().to_string(),
        }
    }
}

/// Splits a daemon or registry image name without its digest, `NAME[:TAG]`, at its tag: the
/// tag follows the last `:` after the last `/` (`localhost:5000/app:2` gives
/// `("localhost:5000/app", Some("2"))`, `localhost:5000/app` no tag).
pub fn split_tag(name: &str) -> (&str, Option<&str>) {
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => (&name[..slash + i], Some(&name[slash + i + 1..])),
        None => (name, None),
    }
}

/// Splits `PATH[:SUFFIX]` at the first `:`, as skopeo does, so the suffix may itself hold a
/// `:` (`docker-archive:a.tar:app:1` names `app:1` inside `a.tar`).
fn split_path_suffix(rest: &str) -> (PathBuf, Option<String>) {
    match rest.split_once(':') {
        Some((path, suffix)) if !path.is_empty() => (
            PathBuf::from(path),
            (!suffix.is_empty()).then(|| suffix.to_string()),
        ),
        _ => (PathBuf::from(rest), None),
    }
}

/// Whether `s` reads as a file system path rather than an image name: it starts with `/`,
/// `./`, `../` or `~`, or is `.` or `..`.
pub fn looks_like_path(s: &str) -> bool {
    s.starts_with('/')
        || s.starts_with("./")
        || s.starts_with("../")
        || s.starts_with('~')
        || s == "."
        || s == ".."
}

/// Checks a daemon or registry name against the Docker reference grammar
/// (`[DOMAIN[:PORT]/]PATH[:TAG][@ALGO:HEX]`, lowercase path components separated by `.`,
/// `_`, `__` or dashes), so that a bad name is a local error and not a daemon's 400. Image
/// IDs (`sha256:HEX`, a hex prefix) pass too, as the daemon accepts them.
fn check_grammar(reference: &str, name: &str) -> Result<(), ReferenceError> {
    let invalid = |reason| ReferenceError::Invalid {
        reference: reference.into(),
        reason,
    };
    let is_hex = |h: &str| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(id) = name.strip_prefix("sha256:") {
        return if id.len() == 64 && is_hex(id) {
            Ok(())
        } else {
            Err(invalid("an image ID is sha256: and 64 hex digits"))
        };
    }
    let (rest, digest) = match name.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (name, None),
    };
    if let Some(d) = digest {
        let ok = d.split_once(':').is_some_and(|(algo, hex)| {
            !algo.is_empty()
                && algo
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
                && hex.len() >= 32
                && is_hex(hex)
        });
        if !ok {
            return Err(invalid("the digest after `@` must be ALGORITHM:HEX"));
        }
    }
    let (repo, tag) = split_tag(rest);
    if let Some(tag) = tag {
        let ok = tag.len() <= 128
            && tag
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !ok {
            return Err(invalid(
                "a tag is up to 128 letters, digits, `_`, `.` or `-` (not starting with . or -)",
            ));
        }
    }
    let mut parts: Vec<&str> = repo.split('/').collect();
    // A first part with a '.' or ':' or equal to `localhost` is a registry host[:port].
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        let domain = parts.remove(0);
        let (host, port) = match domain.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        };
        let host_ok = !host.is_empty()
            && host.split('.').all(|c| {
                !c.is_empty()
                    && !c.starts_with('-')
                    && !c.ends_with('-')
                    && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !host_ok || !port_ok {
            return Err(invalid("the registry host is HOST[:PORT]"));
        }
    }
    for part in parts {
        if part.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid("repository names must be lowercase"));
        }
        if !path_component_ok(part) {
            return Err(invalid(
                "a repository name is lowercase letters and digits, separated by `.`, `_`, `__`, `-` or `/`",
            ));
        }
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn path_component_ok(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

fn check_name(reference: &str, name: &str) -> Result<(), ReferenceError> {
    if name.is_empty() {
        return Err(ReferenceError::Invalid {
            reference: reference.into(),
            reason: "missing image name",
        });
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ReferenceError::Invalid {
            reference: reference.into(),
            reason: "image name contains whitespace or control characters",
        });
    }
    Ok(())
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let path_ref = |rest: &str| -> Result<(PathBuf, Option<String>), ReferenceError> {
            if rest.is_empty() {
                return Err(ReferenceError::Invalid {
                    reference: s.into(),
                    reason: "missing path",
                });
            }
            Ok(split_path_suffix(rest))
        };
        if let Some(rest) = s.strip_prefix("docker-daemon:") {
            check_name(s, rest)?;
            if looks_like_path(rest) {
                return Err(ReferenceError::Path {
                    reference: rest.into(),
                });
            }
            check_grammar(s, rest)?;
            Ok(ImageRef::DockerDaemon {
                name: rest.to_string(),
            })
        } else if let Some(rest) = s.strip_prefix("docker-archive:") {
            let (path, reference) = path_ref(rest)?;
            Ok(ImageRef::DockerArchive { path, reference })
        } else if let Some(rest) = s.strip_prefix("oci-archive:") {
            let (path, tag) = path_ref(rest)?;
            Ok(ImageRef::OciArchive { path, tag })
        } else if let Some(rest) = s.strip_prefix("oci:") {
            let (dir, tag) = path_ref(rest)?;
            Ok(ImageRef::Oci { dir, tag })
        } else if let Some(rest) = s.strip_prefix("docker://") {
            check_name(s, rest)?;
            check_grammar(s, rest)?;
            Ok(ImageRef::Registry {
                name: rest.to_string(),
            })
        } else {
            check_name(s, s)?;
            if looks_like_path(s) {
                return Err(ReferenceError::Path {
                    reference: s.into(),
                });
            }
            check_grammar(s, s)?;
            Ok(ImageRef::DockerDaemon {
                name: s.to_string(),
            })
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let suffix = |o: &Option<String>| o.as_ref().map(|t| format!(":{t}")).unwrap_or_default();
        match self {
            ImageRef::DockerDaemon { name } => write!(f, "docker-daemon:{name}"),
            ImageRef::DockerArchive { path, reference } => {
                write!(f, "docker-archive:{}{}", path.display(), suffix(reference))
            }
            ImageRef::Oci { dir, tag } => write!(f, "oci:{}{}", dir.display(), suffix(tag)),
            ImageRef::OciArchive { path, tag } => {
                write!(f, "oci-archive:{}{}", path.display(), suffix(tag))
            }
            ImageRef::Registry { name } => write!(f, "docker://{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_splits_at_its_tag_not_at_a_registry_port() {
        // What a pushed image is read back by (`NAME@DIGEST`) and slim tags are made from.
        assert_eq!(
            split_tag("localhost:5000/app:v2"),
            ("localhost:5000/app", Some("v2"))
        );
        assert_eq!(
            split_tag("localhost:5000/app"),
            ("localhost:5000/app", None)
        );
        assert_eq!(split_tag("app:latest"), ("app", Some("latest")));
        assert_eq!(split_tag("app"), ("app", None));
    }

    #[test]
    fn bare_name_is_daemon() {
        assert_eq!(
            ImageRef::parse("nginx:1.25").unwrap(),
            ImageRef::DockerDaemon {
                name: "nginx:1.25".into()
            }
        );
        assert_eq!(
            ImageRef::parse("localhost:5000/app").unwrap(),
            ImageRef::DockerDaemon {
                name: "localhost:5000/app".into()
            }
        );
    }

    #[test]
    fn transports() {
        assert_eq!(
            ImageRef::parse("docker-archive:/tmp/a.tar").unwrap(),
            ImageRef::DockerArchive {
                path: "/tmp/a.tar".into(),
                reference: None
            }
        );
        assert_eq!(
            ImageRef::parse("docker-archive:a.tar:app:1").unwrap(),
            ImageRef::DockerArchive {
                path: "a.tar".into(),
                reference: Some("app:1".into())
            }
        );
        assert_eq!(
            ImageRef::parse("oci:./layout:v1").unwrap(),
            ImageRef::Oci {
                dir: "./layout".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            ImageRef::parse("oci:/x/y").unwrap(),
            ImageRef::Oci {
                dir: "/x/y".into(),
                tag: None
            }
        );
        assert_eq!(
            ImageRef::parse("docker://alpine:3").unwrap(),
            ImageRef::Registry {
                name: "alpine:3".into()
            }
        );
    }

    #[test]
    fn errors() {
        assert_eq!(ImageRef::parse("  "), Err(ReferenceError::Empty));
        assert!(ImageRef::parse("oci:").is_err());
        assert!(ImageRef::parse("docker-daemon:").is_err());
        assert!(ImageRef::parse("bad name").is_err());
    }

    #[test]
    fn daemon_names_follow_the_docker_grammar() {
        for ok in [
            "nginx",
            "nginx:1.25",
            "library/nginx:1.25-alpine",
            "pare-example/python-web",
            "a__b/c.d-e---f:latest",
            "localhost:5000/app:v2",
            "registry.example.com/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "6ba821155019",
            "docker-daemon:app:1",
            "docker://quay.io/app:2",
        ] {
            assert!(ImageRef::parse(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("NoSuch:Bad:ref", "lowercase"),
            ("App", "lowercase"),
            ("app:", "tag"),
            ("app:-x", "tag"),
            ("a..b", "repository name"),
            ("-a", "repository name"),
            ("app@sha256:xyz", "digest"),
            ("sha256:abc", "image ID"),
            ("docker-daemon:Bad", "lowercase"),
        ] {
            let e = ImageRef::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn paths_are_not_names() {
        for p in [
            "./layout",
            "/tmp/app.tar",
            "../x",
            "~/img",
            ".",
            "docker-daemon:./x",
        ] {
            let e = ImageRef::parse(p).unwrap_err();
            assert!(matches!(e, ReferenceError::Path { .. }), "{p}: {e}");
            let hint = e.hint().unwrap();
            assert!(
                hint.contains("oci:") && hint.contains("docker-archive:"),
                "{hint}"
            );
        }
    }

    #[test]
    fn display_roundtrip() {
        for s in [
            "docker-daemon:a:b",
            "oci:/d:t",
            "docker-archive:/x.tar",
            "docker://r/a:1",
            "docker://127.0.0.1:5000/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(ImageRef::parse(s).unwrap().to_string(), s);
        }
    }
}
