//! The errors of `pare build` and `pare why`.

use std::path::{Path, PathBuf};

/// Errors of `pare build`. Each names the image, path or phase it concerns.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Reference(#[from] pare_reference::ReferenceError),
    #[error(transparent)]
    Source(#[from] pare_source::SourceError),
    #[error("{image}: extracting into {dest}: {message}")]
    Extract {
        image: String,
        dest: PathBuf,
        message: String,
    },
    #[error(transparent)]
    Profile(#[from] pare_profile::ProfileError),
    #[error(transparent)]
    Select(#[from] pare_select::SelectError),
    #[error(transparent)]
    Write(#[from] pare_write::WriteError),
    #[error(transparent)]
    Runtime(#[from] pare_runtime::RuntimeError),
    #[error(transparent)]
    Verify(#[from] pare_verify::VerifyError),
    #[error("{image}: analysis: {message}")]
    Analyze { image: String, message: String },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error(
        "{reference}: the docker runtime needs the image in the daemon; use --runtime embedded"
    )]
    NeedsDaemon { reference: String },
    #[error("{path}: no build report here")]
    NoReport { path: PathBuf },
}

pub(crate) fn file_err(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |e| BuildError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}
