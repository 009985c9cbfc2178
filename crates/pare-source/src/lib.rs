//! Image sources. Each opens an [`ImageRef`] as a [`ResolvedImage`] plus a way to stream each
//! layer's content, verifying digests while streaming.
//!
//! The trait is designed so that a registry source (`docker://`) can be added without changing
//! callers: everything is pull-based and per layer.

#![deny(missing_docs)]

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

pub use digest::{sha256_digest, sha256_hex, sha256_of};
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
            source: None,
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
    /// Reading a file of an OCI layout, a `docker save` archive or the daemon's storage
    /// failed (absent, unreadable, a read error mid-way).
    #[error("{path}")]
    Io {
        /// The file or directory being read.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON document (index, manifest, config, `manifest.json`) does not parse or breaks
    /// a rule (a bad digest, more than [`MAX_LAYERS`] layers, over [`MAX_JSON`] bytes).
    #[error(
        "{path}: malformed {what}{}{message}",
        if message.is_empty() { "" } else { ": " }
    )]
    Malformed {
        /// The file (or archive member) holding the document.
        path: PathBuf,
        /// Which kind of document, e.g. `image config` or `image index`.
        what: &'static str,
        /// The rule it breaks, in words (`file is missing`, `indexes nested more than 8
        /// deep`); empty when `source` says what is wrong.
        message: String,
        /// The JSON (or tar) parser's error, when the document does not parse.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A manifest references a blob (layer, config) that the layout or archive does not
    /// contain.
    #[error("{path}: blob {digest} is missing")]
    MissingBlob {
        /// The layout directory or archive.
        path: PathBuf,
        /// `sha256:…` of the absent blob.
        digest: String,
    },
    /// A blob's SHA-256, computed while streaming it, differs from the digest that names it;
    /// raised at the blob's end.
    #[error("blob {digest}: digest mismatch (got {actual})")]
    DigestMismatch {
        /// The expected `sha256:…`, from the manifest.
        digest: String,
        /// The `sha256:…` of the bytes actually read.
        actual: String,
    },
    /// A layer's decompressed tar hashes to something other than its diff ID from the config.
    #[error("layer {diff_id}: uncompressed content does not match the diff ID (got {actual})")]
    DiffIdMismatch {
        /// The expected `sha256:…` from the config's `rootfs.diff_ids`.
        diff_id: String,
        /// The `sha256:…` of the uncompressed bytes read.
        actual: String,
    },
    /// A blob ended before, or went past, the size its descriptor declares (usually a
    /// truncated download or file).
    #[error("blob {digest}: size mismatch: expected {expected} bytes, got {actual} (truncated?)")]
    SizeMismatch {
        /// `sha256:…` of the blob.
        digest: String,
        /// Bytes the descriptor declares.
        expected: u64,
        /// Bytes read.
        actual: u64,
    },
    /// A layer does not decompress: a gzip/zstd error, or the content's compression differs
    /// from the one its media type declares.
    #[error("blob {digest}: {message}")]
    Corrupt {
        /// `sha256:…` of the layer blob.
        digest: String,
        /// The mismatch found, in words (`media type says gzip but the content is none`).
        message: String,
    },
    /// A layer's bytes could not be read or decompressed (a gzip/zstd error, or the blob's
    /// own reader failed).
    #[error("blob {digest}")]
    Decode {
        /// `sha256:…` of the layer blob.
        digest: String,
        /// The reader's or decoder's error.
        #[source]
        source: std::io::Error,
    },
    /// A multi-arch index has no manifest for the requested (or host) platform.
    #[error("{name}: no image for platform {platform} (available: {available})")]
    NoPlatform {
        /// The image as the user named it.
        name: String,
        /// The wanted platform, `os/arch[/variant]`.
        platform: String,
        /// The platforms the index lists, comma-separated.
        available: String,
    },
    /// No image of that name or tag in the layout, archive or daemon.
    #[error("{name}: {message}")]
    NotFound {
        /// The image as the user named it.
        name: String,
        /// Where it was looked for and, when few, the tags that do exist, in words.
        message: String,
    },
    /// The Docker daemon could not be reached or answered with an error (other than "no
    /// such image", which is [`SourceError::NotFound`]), or exporting the image failed.
    #[error("docker daemon: {message}")]
    Daemon {
        /// What was being done (`inspecting NAME`), or what is wrong, in words.
        message: String,
        /// The client's, daemon's or JSON (de)serializer's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Pulling from (or pushing to) a registry failed; the cause says how.
    #[error("{reference}")]
    Registry {
        /// The image reference, `REGISTRY/NAME[:TAG|@DIGEST]`.
        reference: String,
        /// What went wrong talking to the registry.
        #[source]
        source: registry::RegistryError,
    },
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
