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
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bad image reference {reference:?}")]
    Reference {
        reference: String,
        #[source]
        source: pare_reference::ReferenceError,
    },
    #[error("{reference}")]
    Source {
        reference: String,
        #[source]
        source: Box<pare_source::SourceError>,
    },
    #[error("{reference}: reading layers")]
    Layers {
        reference: String,
        #[source]
        source: Box<pare_layerfs::LayerFsError>,
    },
    #[error("{reference}: {reason}")]
    Base { reference: String, reason: String },
    #[error("writing {output}")]
    Write {
        output: String,
        #[source]
        source: Box<pare_write::WriteError>,
    },
    #[error("{path}: resolving the static closure")]
    Select {
        path: String,
        #[source]
        source: Box<pare_select::SelectError>,
    },
    #[error("{path}: not an ELF executable")]
    NotElf { path: PathBuf },
    #[error("{path}: {what} not found")]
    Missing { path: String, what: String },
    #[error("running {image}")]
    Runtime {
        image: String,
        #[source]
        source: Box<pare_runtime::RuntimeError>,
    },
    #[error("probing {image}")]
    Probe {
        image: String,
        #[source]
        source: Box<pare_probe::ProbeError>,
    },
    #[error("bad {flag} {value:?}: {reason}")]
    Flag {
        flag: &'static str,
        value: String,
        reason: String,
    },
}

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> PackError {
    let path = path.into();
    move |source| PackError::Io { path, source }
}

/// Parses an output reference: what pare-write takes (`oci:DIR[:TAG]`,
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
