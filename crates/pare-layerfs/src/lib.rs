//! Streaming layer reading, whiteouts, merged filesystem view, safe extraction.
//!
//! * [`walk_layer`] turns one layer ([`LayerContent`]: a tar stream or an overlay2 `diff`
//!   directory) into a stream of [`Event`]s with normalized, root-relative paths. Names that are
//!   absolute or climb out with `..` are rejected with a one-line error naming the layer.
//! * [`read_layer`] condenses a layer into compact per-path [`Record`]s (no file contents), with an
//!   optional content hash and a few captured small files; [`read_image`] reads all layers in
//!   parallel and merges them in order into a [`MergedFs`] that knows, for every path, which layer
//!   it came from and which lower copies it superseded (the basis of waste accounting).
//! * [`extract`] applies an image's layers into an empty directory without ever writing outside it.
//!   [`extract_indexed`] also builds the [`MergedFs`] of [`read_image`] in the same pass, so a
//!   caller that needs both decompresses and walks each layer once.
//!
//! Paths here are root-relative (`usr/bin/env`, `""` for the root), the form
//! `pare_image::ImagePath::rel` returns: the merged view keys and lends them as `str`, so a
//! walk over millions of entries allocates nothing. What a caller hands on to other crates
//! becomes an `ImagePath` (`ImagePath::from_rel`), and an `ImagePath` is looked up here with
//! `fs.get(path.rel())`.

#![deny(missing_docs)]

mod extract;
mod index;
pub mod inroot;
mod merge;
mod path;
mod walk;

use std::path::PathBuf;

pub use extract::{
    ExtractOptions, ExtractStats, extract, extract_indexed, extract_layer, extract_with,
};
pub use index::{Capture, LayerIndex, MAX_ENTRIES, ReadOptions, Record, read_layer};
pub use merge::{LayerChanges, MergedFs, Node, Supersede, Superseded, read_image};
pub use pare_source::{ImageSource, LayerContent, SourceError};
pub use path::{MAX_DEPTH, MAX_PATH, PathIssue, normalize};
pub use walk::{Data, Entry, Event, MAX_ENTRY_HEADERS, walk_layer};

/// The kind of a filesystem entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A regular file; its `size` is the content length in bytes.
    File,
    /// A directory.
    Dir,
    /// A symbolic link; `link` holds the target exactly as stored (it may be relative or
    /// absolute and is never resolved here).
    Symlink,
    /// A hard link to another path of the same layer (`link` names it).
    Hardlink,
    /// A character device node (tar type `3`); never created by [`extract`].
    CharDevice,
    /// A block device node (tar type `4`); never created by [`extract`].
    BlockDevice,
    /// A named pipe (tar type `6`); never created by [`extract`].
    Fifo,
    /// Any other tar entry type (an unknown type flag); kept in listings but never created by
    /// [`extract`].
    Other,
}

/// Errors while reading or extracting layers. Every variant names the layer (digest) and, where
/// there is one, the entry or path at fault; `Display` is a single line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayerFsError {
    /// The image source could not open or stream the layer (registry, daemon or archive
    /// failure, digest mismatch); `source` says which.
    #[error("layer {layer}")]
    Source {
        /// Digest of the layer being opened.
        layer: String,
        /// The source's error.
        #[source]
        source: SourceError,
    },
    /// The layer's tar stream is malformed or truncated (a bad header, a short read, a
    /// corrupt compression stream), or an I/O error surfaced while reading it.
    #[error(
        "layer {layer}: bad tar{}{}",
        entry.as_ref().map(|e| format!(" entry `{e}`")).unwrap_or_default(),
        after.as_ref().map(|e| format!(" (after `{e}`)")).unwrap_or_default()
    )]
    Tar {
        /// Digest of the layer being read.
        layer: String,
        /// The raw name of the entry being read, when the failure is inside one.
        entry: Option<String>,
        /// The name of the last entry read whole, when the failure is between entries.
        after: Option<String>,
        /// The tar reader's (or the layer reader's) error.
        #[source]
        source: std::io::Error,
    },
    /// An entry name (or hard-link target, shown as `name -> target`) is absolute, climbs out
    /// of the root, contains NUL or exceeds the length/depth limits of [`normalize`].
    #[error("layer {layer}: entry `{entry}`: {issue}")]
    UnsafePath {
        /// Digest of the layer holding the entry.
        layer: String,
        /// The entry name as stored, non-UTF-8 bytes escaped.
        entry: String,
        /// Which rule the name breaks.
        issue: PathIssue,
    },
    /// Reading an overlay2 `diff` directory or writing into the extraction directory failed.
    #[error("layer {layer}: {path}")]
    Io {
        /// Digest of the layer being read or applied.
        layer: String,
        /// The host path the failed operation touched.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// An entry is well named but applying it would be unsafe: a hard link to the root
    /// directory, or (while extracting) a hard link whose target's directory cannot be resolved
    /// inside the extraction root or whose target is missing or a directory.
    #[error("layer {layer}: entry `{entry}`: {message}")]
    Unsafe {
        /// Digest of the layer holding the entry.
        layer: String,
        /// The entry's normalized path.
        entry: String,
        /// What makes it unsafe, in words (`hard link to the root directory`, `hard link
        /// target `etc/x` is not an extracted file`).
        message: String,
        /// Why the hard link target's directory could not be resolved, when that is the
        /// reason.
        #[source]
        source: Option<std::io::Error>,
    },
    /// The extraction destination does not exist, cannot be canonicalized or is not a
    /// directory; nothing was written.
    #[error("{path}")]
    Dest {
        /// The destination as given.
        path: PathBuf,
        /// Why it cannot be used (`not a directory` when it is something else).
        #[source]
        source: std::io::Error,
    },
    /// The image holds more entries (paths, whiteouts, opaque markers, all layers together)
    /// than [`ReadOptions::max_entries`] allows ([`MAX_ENTRIES`] by default); reading stops
    /// rather than grow memory without bound.
    #[error(
        "layer {layer}: the image has more than {limit} entries, the limit pare reads (docs/limits.md)"
    )]
    TooManyEntries {
        /// Digest of the layer being read when the limit was crossed.
        layer: String,
        /// The limit in force, in entries.
        limit: u64,
    },
}

impl LayerFsError {
    pub(crate) fn tar(layer: &str, entry: Option<&str>, source: std::io::Error) -> Self {
        LayerFsError::Tar {
            layer: layer.to_string(),
            entry: entry.map(str::to_string),
            after: None,
            source,
        }
    }
}
