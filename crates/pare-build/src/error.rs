//! The errors of `pare build` and `pare why`.

use std::path::{Path, PathBuf};

/// Errors of `pare build`. Each names the image, path or phase it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The source reference does not parse.
    #[error(transparent)]
    Reference(#[from] pare_reference::ReferenceError),
    /// Opening or reading an image.
    #[error(transparent)]
    Source(#[from] pare_source::SourceError),
    /// Extracting the source's layers into the work dir.
    #[error("{image}: extracting into {dest}")]
    Extract {
        /// The image extracted.
        image: String,
        /// The directory extracted into.
        dest: PathBuf,
        /// What failed.
        #[source]
        source: Box<pare_layerfs::LayerFsError>,
    },
    /// The thread extracting beside the trace panicked.
    #[error("{image}: extracting into {dest}: the extraction thread panicked")]
    ExtractPanicked {
        /// The source image.
        image: String,
        /// The directory extracted into.
        dest: PathBuf,
    },
    /// Tracing the source image.
    #[error(transparent)]
    Profile(#[from] pare_profile::ProfileError),
    /// Selecting the kept files.
    #[error(transparent)]
    Select(#[from] pare_select::SelectError),
    /// Writing or loading the slim image.
    #[error(transparent)]
    Write(#[from] pare_write::WriteError),
    /// Choosing or starting a runtime.
    #[error(transparent)]
    Runtime(#[from] pare_runtime::RuntimeError),
    /// Verifying the slim image.
    #[error(transparent)]
    Verify(#[from] pare_verify::VerifyError),
    /// Analyzing an image for the report.
    #[error("{image}: analysis")]
    Analyze {
        /// The image analyzed.
        image: String,
        /// What failed.
        #[source]
        source: Box<pare_xray::XrayError>,
    },
    /// Reading or writing a file (the work dir, report.json, a recorded profile).
    #[error("{path}")]
    File {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A `report.json` that is not valid JSON of the build report's shape (`pare why`), or a
    /// report that could not be serialized.
    #[error("{path}")]
    Json {
        /// The report file.
        path: PathBuf,
        /// The JSON error, with its line and column.
        #[source]
        source: serde_json::Error,
    },
    /// No usable sensor was found for tracing (the lookup's error names what was tried).
    #[error(transparent)]
    Sensor(std::sync::Arc<pare_profile::ProfileError>),
    /// The docker runtime was asked for an image the daemon does not hold.
    #[error(
        "{reference}: the docker runtime needs the image in the daemon; use --runtime embedded"
    )]
    NeedsDaemon {
        /// The source reference.
        reference: String,
    },
    /// `pare why` found no `report.json`.
    #[error("{path}: no build report here")]
    NoReport {
        /// Where it was looked for.
        path: PathBuf,
    },
}

pub(crate) fn file_err(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::File {
        path: path.to_path_buf(),
        source,
    }
}
