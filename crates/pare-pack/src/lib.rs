//! Two commands that write images with pare-write, without tracing anything:
//!
//! * [`squash()`] (`pare squash`): the image's merged filesystem as one layer (whiteouts
//!   applied), config and history kept, nothing minified; optionally on top of the base
//!   image's own layers, kept byte for byte ([`KeepBase`]).
//! * [`pack()`] (`pare pack`): an image from a prebuilt binary and its static closure (ELF
//!   dependencies, NSS, CA certificates, zoneinfo), resolved by pare-select on the host or in
//!   a `--from` image, plus a non-root user and `/tmp`.
//!
//! Both are reproducible: same input, same digest (pare-write's normalization).

#![deny(missing_docs)]

mod history;
pub mod pack;
mod rootfs;
pub mod squash;
pub mod verify;

use std::path::PathBuf;

pub use history::{KeepBase, base_layers};
pub use pack::{PackOptions, PackReport, pack};
pub use squash::{SquashOptions, SquashReport, squash};

/// Why squashing or packing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackError {
    /// A file or directory of the work dir, the binary or an `--include` could not be read or
    /// written.
    #[error("{path}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The image to squash, or `--from`, is not a reference pare reads.
    #[error("bad image reference {reference:?}")]
    Reference {
        /// The reference as given.
        reference: String,
        /// Which rule it breaks.
        #[source]
        source: pare_reference::ReferenceError,
    },
    /// The image could not be opened, or one of its layers read (missing, refused by the
    /// registry or daemon, digest mismatch).
    #[error("{reference}")]
    Source {
        /// The image reference, or the digest of the layer that failed.
        reference: String,
        /// What the source said.
        #[source]
        source: Box<pare_source::SourceError>,
    },
    /// A layer could not be walked, merged or extracted (hostile or malformed tar, bounds of
    /// docs/limits.md).
    #[error("{reference}: reading layers")]
    Layers {
        /// The image reference.
        reference: String,
        /// The layer reader's error.
        #[source]
        source: Box<pare_layerfs::LayerFsError>,
    },
    /// `--keep-base` cannot be honoured: the base cannot be found in the history, N is larger
    /// than the layer count, or a kept layer is not a tar stream.
    #[error("{reference}: {reason}")]
    Base {
        /// The image reference, or the digest of the layer that cannot be kept.
        reference: String,
        /// Why, in words.
        reason: String,
    },
    /// The output could not be parsed or written (no space, registry refused the push,
    /// daemon refused the load), or the source config could not be carried over.
    #[error("writing {output}")]
    Write {
        /// The output reference as given.
        output: String,
        /// The writer's error.
        #[source]
        source: Box<pare_write::WriteError>,
    },
    /// pare-select could not open the closure's root or resolve the binary's closure in it.
    #[error("{path}: resolving the static closure")]
    Select {
        /// The root (host `/` or the extracted `--from` image) or the binary.
        path: String,
        /// pare-select's error.
        #[source]
        source: Box<pare_select::SelectError>,
    },
    /// The file to pack is not an ELF executable (a script, a directory, another format).
    #[error("{path}: not an ELF executable")]
    NotElf {
        /// The file given.
        path: PathBuf,
    },
    /// Something the image needs is not in the closure's root: the binary, a library it links
    /// (`DT_NEEDED`), its ELF interpreter, an `--include` path or the `--tz` zone file.
    #[error("{path}: {what} not found")]
    Missing {
        /// The binary, or the path that was looked for.
        path: String,
        /// What was missing, naming the root it was looked for in.
        what: String,
    },
    /// `--verify-cmd`/`--http-probe`: the runtime could not start the packed image or run the
    /// command.
    #[error("running {image}")]
    Runtime {
        /// The packed image.
        image: String,
        /// The runtime's error.
        #[source]
        source: Box<pare_runtime::RuntimeError>,
    },
    /// `--http-probe`: waiting for the port or sending the request failed outright (not an
    /// answer with a bad status, which is a failed [`verify::Verdict`]).
    #[error("probing {image}")]
    Probe {
        /// The packed image.
        image: String,
        /// The probe's error.
        #[source]
        source: Box<pare_probe::ProbeError>,
    },
    /// A flag's value does not parse (`--user`, `--port`, `--env`, `--http-probe`,
    /// `--runtime`, a file that is not a readable ELF).
    #[error("bad {flag} {value:?}: {reason}")]
    Flag {
        /// The flag, as the user wrote it (`--port`).
        flag: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> PackError {
    let path = path.into();
    move |source| PackError::Io { path, source }
}

/// Parses an output reference: what pare-write takes (`oci:DIR[:TAG]`, `oci-archive:PATH[:TAG]`,
/// `docker-archive:PATH[:NAME:TAG]`, `docker://REG/NAME[:TAG]`) plus `docker-daemon:NAME[:TAG]`
/// (loaded into the local daemon).
pub fn parse_output(spec: &str) -> Result<pare_write::Output, PackError> {
    if let Some(name) = spec.strip_prefix("docker-daemon:") {
        if name.is_empty() {
            return Err(PackError::Flag {
                flag: "--output",
                value: spec.into(),
                reason: "expected docker-daemon:NAME[:TAG]".into(),
            });
        }
        let last = name.rsplit('/').next().unwrap_or(name);
        let tag = if last.contains(':') {
            name.to_string()
        } else {
            format!("{name}:latest")
        };
        return Ok(pare_write::Output::Daemon { tag });
    }
    pare_write::Output::parse(spec).map_err(|source| PackError::Write {
        output: spec.into(),
        source: Box::new(source),
    })
}
