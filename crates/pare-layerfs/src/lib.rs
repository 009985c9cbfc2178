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

mod extract;
mod index;
pub mod inroot;
mod merge;
mod path;
mod walk;

use std::path::PathBuf;

pub use extract::{ExtractStats, extract, extract_layer};
pub use index::{Capture, LayerIndex, MAX_ENTRIES, ReadOptions, Record, read_layer};
pub use merge::{LayerChanges, MergedFs, Node, Supersede, Superseded, read_image};
pub use pare_source::{ImageSource, LayerContent, SourceError};
pub use path::{MAX_DEPTH, MAX_PATH, PathIssue, normalize};
pub use walk::{Data, Entry, Event, MAX_ENTRY_HEADERS, walk_layer};

/// The kind of a filesystem entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// A hard link to another path of the same layer (`link` names it).
    Hardlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Other,
}

/// Errors while reading or extracting layers. Every variant names the layer (digest) and, where
/// there is one, the entry or path at fault; `Display` is a single line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayerFsError {
    #[error("layer {layer}")]
    Source {
        layer: String,
        #[source]
        source: SourceError,
    },
    #[error("layer {layer}: bad tar{}: {message}", entry.as_ref().map(|e| format!(" entry `{e}`")).unwrap_or_default())]
    Tar {
        layer: String,
        entry: Option<String>,
        message: String,
    },
    #[error("layer {layer}: entry `{entry}`: {issue}")]
    UnsafePath {
        layer: String,
        entry: String,
        issue: PathIssue,
    },
    #[error("layer {layer}: {path}")]
    Io {
        layer: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("layer {layer}: entry `{entry}`: {message}")]
    Unsafe {
        layer: String,
        entry: String,
        message: String,
    },
    #[error("{path}: {message}")]
    Dest { path: PathBuf, message: String },
    #[error(
        "layer {layer}: the image has more than {limit} entries, the limit pare reads (docs/limits.md)"
    )]
    TooManyEntries { layer: String, limit: u64 },
}

impl LayerFsError {
    pub(crate) fn tar(layer: &str, entry: Option<&str>, e: impl std::fmt::Display) -> Self {
        // io errors from the source reader carry the digest already; keep it on one line.
        let message = e.to_string().replace('\n', " ");
        LayerFsError::Tar {
            layer: layer.to_string(),
            entry: entry.map(str::to_string),
            message,
        }
    }
}
