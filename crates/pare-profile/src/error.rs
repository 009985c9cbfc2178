//! The errors of `pare profile`.

use std::path::{Path, PathBuf};

/// Errors of `pare profile`. Each names the image, file or port involved.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(transparent)]
    Reference(#[from] pare_reference::ReferenceError),
    #[error(transparent)]
    Source(#[from] pare_source::SourceError),
    #[error("{image}: extracting the root filesystem into {dest}: {message}")]
    Extract {
        image: String,
        dest: PathBuf,
        message: String,
    },
    #[error(transparent)]
    Runtime(#[from] pare_runtime::RuntimeError),
    #[error(transparent)]
    Probe(#[from] pare_probe::ProbeError),
    #[error("{image}: the image has no ENTRYPOINT or CMD, so there is nothing to run")]
    NoCommand { image: String },
    #[error(
        "the docker runtime runs images from the daemon, but {reference} is not a docker-daemon image; use --runtime embedded (or `docker load` it first)"
    )]
    NeedsDaemonImage { reference: String },
    #[error(
        "pare-sensor not found ({looked}); build it with `scripts/build-sensor` and pass --sensor PATH or set PARE_SENSOR"
    )]
    SensorNotFound { looked: String },
    #[error(
        "{path}: the sensor is dynamically linked (it names an ELF interpreter), so it cannot start in images without that libc; use a static build (the one embedded by `cargo install --path crates/pare`, or `scripts/build-sensor`)"
    )]
    SensorNotStatic { path: PathBuf },
    #[error("{path}: not a pare-sensor executable (not a readable ELF file)")]
    SensorNotElf {
        path: PathBuf,
        #[source]
        source: goblin::error::Error,
    },
    #[error("{path}: the sensor is built for {machine}, not for this machine")]
    SensorWrongMachine { path: PathBuf, machine: String },
    #[error(
        "{path}: the sensor cache directory is not a directory of ours; set XDG_CACHE_HOME to a private directory"
    )]
    SensorCacheUnsafe { path: PathBuf },
    #[error("{path}: the sensor wrote no usable report: {message}")]
    SensorReport { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "--continue-after {value:?}: expected probe, exit, exit:SECONDS, signal or a number of seconds"
    )]
    ContinueAfter { value: String },
    #[error("{flag} {value:?}: {message}")]
    ReadyFlag {
        flag: &'static str,
        value: String,
        message: String,
    },
    /// The app exited or never answered before it was ready; `hint` (what to try) is given
    /// by [`ProfileError::hint`].
    #[error("{image}: {how}{log}")]
    NotReady {
        image: String,
        how: String,
        /// The app's last log lines, already formatted.
        log: String,
        hint: String,
    },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ProfileError + '_ {
    move |source| ProfileError::Io {
        path: path.to_path_buf(),
        source,
    }
}
