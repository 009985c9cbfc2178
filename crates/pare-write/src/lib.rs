//! Deterministic single-layer image writer.
//!
//! [`write_image`] turns a [`Selection`] of an extracted rootfs into one gzip layer plus an
//! image config that keeps the source's runtime settings (including Docker's `Healthcheck`),
//! and writes it as an OCI image layout or a `docker save` archive. Same rootfs content, same
//! selection, same metadata and epoch ⇒ byte-identical blobs ⇒ the same digests, whatever the
//! rootfs' timestamps or the machine.
//!
//! Normalization: entries sorted component-wise (parents first), ustar headers with PAX
//! records only where needed (long names, big sizes/ids, `SCHILY.xattr.*` for
//! `security.capability` and `user.*`), mtime = epoch, uid/gid/mode from the rootfs,
//! uname/gname empty, no atime/ctime, hardlinks (same dev+inode) as link entries to the first
//! path, gzip level [`layer::GZIP_LEVEL`] with zlib-rs, compressed in parallel in fixed 1 MiB
//! pieces ([`pgzip`]) so the bytes do not depend on the thread count, no name and mtime 0 in
//! the gzip header.
//!
//! Into a local daemon ([`Output::Daemon`], [`daemon`]) the same tar goes uncompressed,
//! streamed into `docker load`: the image ID is the same, and the gzip form is only measured,
//! off the critical path, for the digests and sizes reported. To a registry, `pare build`
//! likewise writes the plain tar first and gzips, stages and pushes it on a thread
//! ([`PushingImage`]) while it verifies from the plain tar.

#![deny(missing_docs)]

pub mod daemon;
mod dispatch;
mod image;
pub mod layer;
mod output;
pub mod pgzip;
mod pushing;
pub mod stack;
mod tmp;

use std::path::PathBuf;

pub use daemon::{LoadedImage, PlainLayer, write_plain_layer};
pub use daemon::{docker_load, load_into_docker};
pub use image::{ImageMeta, config_json, parse_rfc3339, rfc3339};
pub use layer::{LayerInfo, write_layer, write_layer_threads};
pub use output::Output;
use pare_image::Digest;
use pare_select::Selection;
pub use pushing::PushingImage;
pub use stack::{KeptLayer, Stack};
pub use tmp::remove_temp_files;

/// Why writing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// Reading the rootfs or writing a blob, temp file or the output failed for a reason
    /// other than a full disk (that is [`WriteError::NoSpace`]).
    #[error("{path}")]
    Io {
        /// The file or directory being read or written.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The extracted rootfs directory cannot be opened as a confined root (missing, not a
    /// directory, or not readable).
    #[error("{path}: {reason}")]
    Rootfs {
        /// The rootfs directory given to the writer.
        path: PathBuf,
        /// The cause, already rendered as one chain of messages.
        reason: String,
    },
    /// A write failed with `ENOSPC` or `EDQUOT`; the temp files are removed and no partial
    /// output is left.
    #[error("{path}: the filesystem is full, writing the slim image stopped")]
    NoSpace {
        /// The output (or temp directory) on the filesystem that is full, rather than the
        /// entry that happened to be copied at the time.
        path: PathBuf,
        /// The operating system's error (`ENOSPC` or `EDQUOT`).
        #[source]
        source: std::io::Error,
    },
    /// A selected path resolves to something else inside the rootfs (it contains `..` or
    /// goes through a symlinked parent), e.g. from a hand-edited `report.json`; nothing
    /// outside the rootfs is ever read.
    #[error(
        "{path}: not a canonical path of the rootfs (\"..\" or a symlinked parent); refusing to write it"
    )]
    NotCanonical {
        /// The selected path, as given in the selection.
        path: pare_image::ImagePath,
    },
    /// `$SOURCE_DATE_EPOCH` is set, not blank, and not a non-negative integer.
    #[error(
        "bad SOURCE_DATE_EPOCH {value:?}: expected seconds since 1970 as a non-negative integer"
    )]
    Epoch {
        /// The variable's value as found in the environment.
        value: String,
    },
    /// The source image config is not valid JSON or not an OCI image configuration, or the
    /// slim config cannot be serialized.
    #[error("source image config {what}: {reason}")]
    Config {
        /// Which step failed (e.g. `JSON`).
        what: String,
        /// The parser's or serializer's message.
        reason: String,
    },
    /// [`Output::parse`] rejected an output specification (unknown transport, empty path,
    /// a digest instead of a tag for `docker://`).
    #[error("bad output {spec:?}: {reason}")]
    Output {
        /// The specification as the user typed it.
        spec: String,
        /// What is wrong with it and the accepted forms.
        reason: String,
    },
    /// An [`Output::Oci`] directory exists, is not empty and has no `oci-layout` file, or its
    /// `index.json` has no `manifests` array: adding to it could clobber something that is
    /// not an image layout.
    #[error("{path}: exists and is not an OCI image layout")]
    NotALayout {
        /// The existing directory, or its `index.json`.
        path: PathBuf,
    },
    /// `docker load` could not be started or waited for, the archive could not be streamed
    /// into it, or it exited with an error (for [`Output::Daemon`]).
    #[error("docker load: {reason}")]
    Docker {
        /// What failed, with docker's own stderr when it exited with an error.
        reason: String,
    },
    /// Uploading the blobs or the manifest of an [`Output::Registry`] image failed. The
    /// message leaves the reference to the source error, which names it, so a chain names it
    /// once.
    #[error("pushing the image")]
    Push {
        /// The destination, `REGISTRY/NAME[:TAG]`.
        reference: String,
        /// The registry client's error.
        #[source]
        source: pare_source::SourceError,
    },
}

/// The timestamp for every entry and the config: `given` when there is one, else
/// `SOURCE_DATE_EPOCH` when set, else 0.
pub fn resolve_epoch(given: Option<u64>) -> Result<u64, WriteError> {
    if let Some(e) = given {
        return Ok(e);
    }
    Ok(env_epoch()?.unwrap_or(0))
}

/// `SOURCE_DATE_EPOCH`, when set.
fn env_epoch() -> Result<Option<u64>, WriteError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| WriteError::Epoch { value: v }),
        _ => Ok(None),
    }
}

/// Where the slim image's timestamps come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochFrom {
    /// `--epoch`.
    Flag,
    /// `$SOURCE_DATE_EPOCH`.
    Env,
    /// The source image's `created`: the default, so `docker images` shows a sensible age
    /// while the same input still gives the same digest.
    SourceCreated,
    /// Nothing said: 1970-01-01.
    Zero,
}

impl EpochFrom {
    /// How the summary and `report.json` name it.
    pub fn describe(self) -> &'static str {
        match self {
            EpochFrom::Flag => "--epoch",
            EpochFrom::Env => "$SOURCE_DATE_EPOCH",
            EpochFrom::SourceCreated => "the source image's creation time",
            EpochFrom::Zero => "the source image has no creation time",
        }
    }
}

/// The epoch for a build: `--epoch`, else `$SOURCE_DATE_EPOCH`, else the source image's
/// creation time, else 0. Every choice depends only on the input, so builds stay reproducible.
pub fn choose_epoch(flag: Option<u64>, meta: &ImageMeta) -> Result<(u64, EpochFrom), WriteError> {
    if let Some(e) = flag {
        return Ok((e, EpochFrom::Flag));
    }
    if let Some(e) = env_epoch()? {
        return Ok((e, EpochFrom::Env));
    }
    Ok(match meta.source_created_epoch() {
        Some(e) => (e, EpochFrom::SourceCreated),
        None => (0, EpochFrom::Zero),
    })
}

/// What [`write_image`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenImage {
    /// `sha256:…` of the config: Docker's image ID.
    pub config_digest: Digest,
    /// `sha256:…` of the image manifest: the digest a registry or OCI layout names the image
    /// by (`NAME@sha256:…`).
    pub manifest_digest: Digest,
    /// The single written layer (digests of its gzip and tar forms, sizes, entry counts).
    pub layer: LayerInfo,
    /// The config JSON as written.
    pub config: Vec<u8>,
    /// Epoch used for all timestamps.
    pub epoch: u64,
    /// Where the image went, as given to [`write_image`].
    pub output: Output,
}

/// Writes the slim image. `epoch`: see [`resolve_epoch`].
pub fn write_image(
    rootfs: &std::path::Path,
    selection: &Selection,
    meta: &ImageMeta,
    output: Output,
    epoch: Option<u64>,
) -> Result<WrittenImage, WriteError> {
    write_image_on(rootfs, selection, meta, &Stack::default(), output, epoch)
}

/// [`write_image`] with kept layers below the written one and a history of its own
/// (`pare squash`); an empty `stack` writes exactly what [`write_image`] writes.
pub fn write_image_on(
    rootfs: &std::path::Path,
    selection: &Selection,
    meta: &ImageMeta,
    stack: &Stack,
    output: Output,
    epoch: Option<u64>,
) -> Result<WrittenImage, WriteError> {
    let epoch = resolve_epoch(epoch)?;
    dispatch::write(rootfs, selection, meta, stack, output, epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How callers (`pare squash`, `pare pack`, `pare build`) wrap a write error.
    #[derive(Debug, thiserror::Error)]
    #[error("writing docker://{output}")]
    struct Writing {
        output: String,
        #[source]
        source: WriteError,
    }

    #[test]
    fn a_failed_push_names_the_destination_once() {
        let reference = "127.0.0.1:5555/app:slim".to_string();
        let e = Writing {
            output: reference.clone(),
            source: WriteError::Push {
                reference: reference.clone(),
                source: pare_source::SourceError::Registry {
                    reference: reference.clone(),
                    source: pare_source::registry::RegistryError::Denied,
                },
            },
        };
        let line = pare_progress::chain(&e);
        assert_eq!(line.matches(&reference).count(), 1, "{line}");
        assert!(line.ends_with("access denied (403)"), "{line}");
    }
}
