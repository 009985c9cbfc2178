//! Image references in skopeo's transport syntax.
//!
//! | syntax                         | meaning                                         |
//! |--------------------------------|-------------------------------------------------|
//! | `docker-daemon:NAME[:TAG]`     | an image in the local Docker Engine             |
//! | `docker-archive:PATH[:REF]`    | a `docker save` tarball (legacy or OCI-in-tar)  |
//! | `oci:DIR[:TAG]`                | an OCI image layout directory                   |
//! | `oci-archive:PATH[:TAG]`       | a tar of an OCI image layout                    |
//! | `docker://NAME[:TAG]`          | a registry (reserved; see `pare-source`)        |
//! | `NAME[:TAG]`                   | shorthand for `docker-daemon:NAME[:TAG]`        |

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// `docker-daemon:NAME[:TAG]` or a bare `NAME[:TAG]`. `name` is kept as the user wrote it
    /// (the daemon resolves short names, image IDs and digests itself).
    DockerDaemon { name: String },
    /// `docker-archive:PATH[:REF]`; `reference` picks one image when the archive holds several.
    DockerArchive {
        path: PathBuf,
        reference: Option<String>,
    },
    /// `oci:DIR[:TAG]`; `tag` matches `org.opencontainers.image.ref.name` in `index.json`.
    Oci { dir: PathBuf, tag: Option<String> },
    /// `oci-archive:PATH[:TAG]`.
    OciArchive { path: PathBuf, tag: Option<String> },
    /// `docker://NAME[:TAG|@DIGEST]`.
    Registry { name: String },
}

/// Why a reference could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("empty image reference")]
    Empty,
    #[error("image reference `{reference}`: {reason}")]
    Invalid {
        reference: String,
        reason: &'static str,
    },
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
            Ok(ImageRef::Registry {
                name: rest.to_string(),
            })
        } else {
            check_name(s, s)?;
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
    fn display_roundtrip() {
        for s in [
            "docker-daemon:a:b",
            "oci:/d:t",
            "docker-archive:/x.tar",
            "docker://r/a:1",
        ] {
            assert_eq!(ImageRef::parse(s).unwrap().to_string(), s);
        }
    }
}
