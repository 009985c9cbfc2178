//! Image sources. Each opens an [`ImageRef`] as a [`ResolvedImage`] plus a way to stream each
//! layer's content, verifying digests while streaming.
//!
//! The trait is designed so that a registry source (`docker://`) can be added without changing
//! callers: everything is pull-based and per layer.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

mod daemon;
mod digest;
mod docker_archive;
pub mod hint;
mod layer;
mod layout;
pub mod registry;
mod store;

pub use digest::{sha256_digest, sha256_hex};
pub use layer::drain_and_verify;
pub use pare_image::ImageConfiguration;

pub use pare_image::{Compression, LayerDescriptor, Platform, ResolvedImage};
pub use pare_reference::ImageRef;
pub use store::MAX_JSON;

/// Most layers an image may have: 1,024. Docker's overlay2 storage stops at 128; a manifest
/// listing more is refused before its config or layers are read (see `docs/limits.md`).
pub const MAX_LAYERS: usize = 1024;

/// Refuses a layer count over [`MAX_LAYERS`]; `path` names the manifest.
pub(crate) fn check_layer_count(
    path: PathBuf,
    what: &'static str,
    layers: usize,
) -> Result<(), SourceError> {
    if layers > MAX_LAYERS {
        return Err(SourceError::Malformed {
            path,
            what,
            message: format!("lists {layers} layers, over the limit of {MAX_LAYERS}"),
        });
    }
    Ok(())
}

/// The content of one layer, ready to walk.
pub enum LayerContent {
    /// An uncompressed tar stream. The reader verifies the blob's digest (and the diff ID when
    /// known) when it reaches EOF and returns an `io::Error` naming the digest on mismatch.
    /// The error wraps a [`SourceError`] (`DigestMismatch`, `DiffIdMismatch`, `SizeMismatch`,
    /// `Corrupt`) that `io::Error::get_ref` + `downcast_ref` recover.
    ///
    /// A tar parser stops at the end-of-archive blocks without reading the blob's tail, so
    /// after walking the entries call [`drain_and_verify`] on the reader (for `tar::Archive`:
    /// `drain_and_verify(&mut archive.into_inner())`), or the digest is never checked.
    Tar(Box<dyn Read + Send>),
    /// A directory in overlay2 form (the daemon's `diff` dir): whiteouts are 0/0 character
    /// devices and opaque directories carry `trusted.overlay.opaque=y` (or the `user.` variant).
    OverlayDir(PathBuf),
}

/// Options for opening a source.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Platform to pick from a multi-arch index; the host's when `None`.
    pub platform: Option<Platform>,
    /// For `docker-daemon:`, never read the daemon's storage directly; always export.
    pub no_direct_storage: bool,
}

/// Errors from opening or reading a source. Every variant names the file or digest at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: malformed {what}: {message}")]
    Malformed {
        path: PathBuf,
        what: &'static str,
        message: String,
    },
    #[error("{path}: blob {digest} is missing")]
    MissingBlob { path: PathBuf, digest: String },
    #[error("blob {digest}: digest mismatch (got {actual})")]
    DigestMismatch { digest: String, actual: String },
    #[error("layer {diff_id}: uncompressed content does not match the diff ID (got {actual})")]
    DiffIdMismatch { diff_id: String, actual: String },
    #[error("blob {digest}: size mismatch: expected {expected} bytes, got {actual} (truncated?)")]
    SizeMismatch {
        digest: String,
        expected: u64,
        actual: u64,
    },
    #[error("blob {digest}: {message}")]
    Corrupt { digest: String, message: String },
    #[error("{name}: no image for platform {platform} (available: {available})")]
    NoPlatform {
        name: String,
        platform: String,
        available: String,
    },
    #[error("{name}: {message}")]
    NotFound { name: String, message: String },
    #[error("docker daemon: {message}")]
    Daemon { message: String },
    #[error("{reference}")]
    Registry {
        reference: String,
        #[source]
        source: registry::RegistryError,
    },
    #[error("{reference}: transport not supported yet: {message}")]
    Unsupported { reference: String, message: String },
}

/// An opened image.
pub trait ImageSource: Send + Sync {
    /// The resolved manifest and config.
    fn image(&self) -> &ResolvedImage;

    /// Opens layer `index` (bottom first). May be called concurrently from several threads for
    /// different layers.
    fn open_layer(&self, index: usize) -> Result<LayerContent, SourceError>;

    /// A short description of how layers are read (`docker-archive`, `oci`, `overlay2`, `export`).
    fn kind(&self) -> &'static str;

    /// The config JSON as stored, when the source has it (it holds Docker-only fields such as
    /// `Healthcheck`, `Shell` and `OnBuild` that [`ImageConfiguration`] drops). For a daemon
    /// whose storage cannot be read this is rebuilt from inspect data.
    fn raw_config(&self) -> Option<&[u8]> {
        None
    }
}

/// Opens a reference.
///
/// * `oci:DIR[:TAG]` and `oci-archive:PATH[:TAG]`: `index.json`, nested indexes and a
///   multi-arch index resolved to [`OpenOptions::platform`] (the host's by default);
/// * `docker-archive:PATH[:REF]`: both `docker save` formats; `REF` is a `RepoTags` entry or
///   `@INDEX`;
/// * `docker-daemon:NAME` / `NAME`: overlay2 directories when local, else an export;
/// * `docker://NAME[:TAG|@DIGEST]`: a registry (see [`registry`]); blobs are cached.
pub fn open(
    reference: &ImageRef,
    options: &OpenOptions,
) -> Result<Box<dyn ImageSource>, SourceError> {
    let display = reference.to_string();
    let platform = options.platform.clone().unwrap_or_else(Platform::host);
    match reference {
        ImageRef::Oci { dir, tag } => {
            if !dir.is_dir() {
                let source = std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory");
                return Err(SourceError::Io {
                    path: dir.clone(),
                    source,
                });
            }
            let store = Arc::new(store::DirStore { root: dir.clone() });
            Ok(Box::new(layout::open_layout(
                store,
                display,
                tag.as_deref(),
                &platform,
                "oci",
            )?))
        }
        ImageRef::OciArchive { path, tag } => {
            let store = Arc::new(store::TarStore::open_path(path)?);
            Ok(Box::new(layout::open_layout(
                store,
                display,
                tag.as_deref(),
                &platform,
                "oci-archive",
            )?))
        }
        ImageRef::DockerArchive { path, reference } => {
            let store = Arc::new(store::TarStore::open_path(path)?);
            let image = docker_archive::open_docker_archive(
                store,
                display,
                reference.as_deref(),
                &platform,
                "docker-archive",
            )?;
            image.check_layers_present()?;
            Ok(Box::new(image))
        }
        ImageRef::DockerDaemon { name } => daemon::open_daemon(name, display, options),
        ImageRef::Registry { name } => registry::open_registry(name, &platform),
    }
}
