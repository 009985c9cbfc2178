//! The errors of `pare profile`.

use std::path::{Path, PathBuf};

/// Errors of `pare profile`. Each names the image, file or port involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The image reference could not be parsed (`pare profile BAD`).
    #[error(transparent)]
    Reference(#[from] pare_reference::ReferenceError),
    /// Opening the image (daemon, registry, archive or OCI layout) or reading its config
    /// failed.
    #[error(transparent)]
    Source(#[from] pare_source::SourceError),
    /// Extracting the image's layers for the embedded runtime failed.
    #[error("{image}: extracting the root filesystem into {dest}")]
    Extract {
        /// The image reference as given.
        image: String,
        /// The `rootfs` directory inside the temp dir the layers were being extracted into.
        dest: PathBuf,
        /// The extraction error.
        #[source]
        source: Box<pare_layerfs::LayerFsError>,
    },
    /// The runtime failed to start, wait for, exec in, stop or remove the container.
    #[error(transparent)]
    Runtime(#[from] pare_runtime::RuntimeError),
    /// A probe flag or probe file is invalid (checked before the container starts), or a
    /// probe names a port the image does not expose.
    #[error(transparent)]
    Probe(#[from] pare_probe::ProbeError),
    #[error("{image}: the image has no ENTRYPOINT or CMD, so there is nothing to run")]
    /// The image config (and any [`RunOverride`](crate::RunOverride)) gives no command.
    NoCommand {
        /// The image reference as given.
        image: String,
    },
    #[error(
        "the docker runtime runs images from the daemon, but {reference} is not a docker-daemon image; use --runtime embedded (or `docker load` it first)"
    )]
    /// `--runtime docker` was asked for an image that is not in the Docker daemon (an
    /// archive, OCI layout or registry reference).
    NeedsDaemonImage {
        /// The image reference as given.
        reference: String,
    },
    #[error(
        "pare-sensor not found ({looked}); build it with `scripts/build-sensor` and pass --sensor PATH or set PARE_SENSOR"
    )]
    /// No sensor binary was found: the `--sensor` path is not a file, or none of
    /// `$PARE_SENSOR`, the embedded sensor and a `pare-sensor` beside the executable exists.
    SensorNotFound {
        /// The places tried, as text for the message (`--sensor /x`, or the list searched).
        looked: String,
    },
    #[error(
        "{path}: the sensor is dynamically linked (it names an ELF interpreter), so it cannot start in images without that libc; use a static build (the one embedded by `cargo install --path crates/pare`, or `scripts/build-sensor`)"
    )]
    /// The sensor ELF has a `PT_INTERP` program header, so it needs a dynamic loader the
    /// image may not have.
    SensorNotStatic {
        /// The sensor file checked.
        path: PathBuf,
    },
    #[error("{path}: not a pare-sensor executable (not a readable ELF file)")]
    /// The sensor file's header is not a valid ELF header.
    SensorNotElf {
        /// The sensor file checked.
        path: PathBuf,
        /// What goblin found wrong with the header.
        #[source]
        source: goblin::error::Error,
    },
    #[error("{path}: the sensor is built for {machine}, not for this machine")]
    /// The sensor ELF's `e_machine` is not this host's architecture.
    SensorWrongMachine {
        /// The sensor file checked.
        path: PathBuf,
        /// The architecture the file is built for, as goblin names it (`EM_AARCH64`).
        machine: String,
    },
    #[error(
        "{path}: the sensor cache directory is not a directory of ours; set XDG_CACHE_HOME to a private directory"
    )]
    /// The cache directory the embedded sensor is written to is not a directory owned by the
    /// current user, so another user could swap the file before the container runs it.
    SensorCacheUnsafe {
        /// The cache directory (`$XDG_CACHE_HOME/pare`, else `$HOME/.cache/pare`, else
        /// `$TMPDIR/pare-cache`).
        path: PathBuf,
    },
    #[error("{path}: the sensor wrote no usable report{stderr_tail}")]
    /// The sensor report (`sensor.json`) could not be read or is not valid JSON of the
    /// expected shape.
    SensorReport {
        /// The JSON file read.
        path: PathBuf,
        /// The last lines the container wrote to stderr, as ` (container stderr ends with:
        /// …)`, or empty when it wrote none.
        stderr_tail: String,
        /// The read or parse error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{path}")]
    /// A `profile.json` is not valid JSON of the profile's shape.
    ProfileJson {
        /// The `profile.json` read.
        path: PathBuf,
        /// The parse error, with its line and column.
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{path}: profile.json schema version {found}, but this pare reads version {supported} only"
    )]
    /// A `profile.json` was written with another schema version than
    /// [`SCHEMA_VERSION`](pare_trace::SCHEMA_VERSION) (by a newer pare, or it is not a pare
    /// profile); it is refused rather than read with a shape it was not written in.
    ProfileVersion {
        /// The `profile.json` read.
        path: PathBuf,
        /// The version the file holds.
        found: u64,
        /// The version this pare reads.
        supported: u32,
    },
    #[error("{path}")]
    /// Reading or writing a file or directory of the run (output dir, temp dirs, probe file,
    /// sensor, artifacts) failed.
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    #[error(
        "--continue-after {value:?}: expected probe, exit, exit:SECONDS, signal or a number of seconds"
    )]
    /// `--continue-after` is not one of its accepted forms.
    ContinueAfter {
        /// The value as typed.
        value: String,
    },
    #[error("{flag} {value:?}: {message}")]
    /// A `--ready-log` regex does not compile, a `--ready-url` is not a usable URL, or a
    /// `--ready-cmd` is empty. Checked before the container starts.
    ReadyFlag {
        /// The flag's name (`--ready-log`, `--ready-url`, `--ready-cmd`).
        flag: &'static str,
        /// The value as typed.
        value: String,
        /// What is wrong with it, in words (`not a valid regular expression`, `empty
        /// command`, the URL's bad part).
        message: String,
        /// The regex compiler's error, for `--ready-log`.
        #[source]
        source: Option<regex::Error>,
    },
    /// The app exited or never answered before it was ready; `hint` (what to try) is given
    /// by [`ProfileError::hint`].
    #[error("{image}: {how}{log}")]
    NotReady {
        /// The image reference as given.
        image: String,
        /// How the readiness wait ended (the app exited, or the timeout ran out), as text
        /// for the message.
        how: String,
        /// The app's last log lines, already formatted.
        log: String,
        /// What to try next (`--job`, a longer `--timeout`, a `--ready-*` flag), shown
        /// under the message rather than in it.
        hint: String,
    },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ProfileError + '_ {
    move |source| ProfileError::Io {
        path: path.to_path_buf(),
        source,
    }
}
