//! What the explorer shows: every layer condensed to compact per-path records (no contents),
//! and, built on demand for the selected layer only, the tree view of that layer or of all
//! layers up to it.

use std::sync::Arc;

use pare_image::ImagePath;
use pare_layerfs::{Kind, LayerIndex, MergedFs, ReadOptions, read_layer};
use pare_source::ImageSource;

pub use crate::tree::View;

/// How a path fares in the selected layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// New in this layer.
    Added,
    /// Replaces a lower copy.
    Modified,
    /// Deleted by this layer (whiteout or opaque directory).
    Removed,
    /// From a lower layer, untouched here (aggregated view only).
    Unchanged,
}

impl Mark {
    pub(crate) fn bit(self) -> u8 {
        match self {
            Mark::Added => 1,
            Mark::Modified => 2,
            Mark::Removed => 4,
            Mark::Unchanged => 8,
        }
    }
}

/// One layer as the layer list shows it.
#[derive(Debug, Clone)]
pub struct LayerInfo {
    /// Position of the layer, 0 for the base layer.
    pub index: usize,
    /// Digest of the layer blob, as the source names it.
    pub digest: String,
    /// Regular-file bytes in the layer (every copy, whether or not it stays visible).
    pub size: u64,
    /// Entries in the layer (whiteouts and opaque markers not counted).
    pub entries: usize,
    /// The Dockerfile instruction that made the layer, cleaned from its history `created_by`.
    pub instruction: String,
}

/// The image, read once.
pub struct Image {
    /// The image reference or file name, shown in the title.
    pub name: String,
    /// One entry per layer, base layer first.
    pub layers: Vec<LayerInfo>,
    indexes: Arc<[LayerIndex]>,
}

/// Errors from reading an image for the explorer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TuiError {
    /// Reading a layer failed (tar, unsafe path or entry-limit error).
    #[error(transparent)]
    Layers(#[from] pare_layerfs::LayerFsError),
    /// The image source could not open a layer.
    #[error("layer {layer}")]
    Open {
        /// Digest of the layer.
        layer: String,
        /// The source's error.
        #[source]
        source: pare_source::SourceError,
    },
    /// Setting up, drawing on or reading events from the terminal failed.
    #[error("terminal")]
    Terminal(#[source] std::io::Error),
    /// Standard input or output is not a terminal, so there is nothing to draw on.
    #[error("--tui needs a terminal: stdin and stdout must be a TTY")]
    NotATerminal,
}

fn clone_index(i: &LayerIndex) -> LayerIndex {
    LayerIndex {
        records: i.records.clone(),
        whiteouts: i.whiteouts.clone(),
        opaques: i.opaques.clone(),
        captured: Vec::new(),
    }
}

impl Image {
    /// Reads every layer (in parallel, `threads` 0: one per core) into compact records.
    pub fn load(source: &dyn ImageSource, threads: usize) -> Result<Image, TuiError> {
        let img = source.image();
        let n = img.layers.len();
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |p| p.get())
        } else {
            threads
        }
        .clamp(1, n.max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results: std::sync::Mutex<Vec<Option<Result<LayerIndex, TuiError>>>> =
            std::sync::Mutex::new((0..n).map(|_| None).collect());
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        let digest = &img.layers[i].digest;
                        let r = source
                            .open_layer(i)
                            .map_err(|e| TuiError::Open {
                                layer: digest.clone(),
                                source: e,
                            })
                            .and_then(|c| {
                                read_layer(c, digest, &ReadOptions::default()).map_err(Into::into)
                            });
                        if let Ok(mut v) = results.lock() {
                            v[i] = Some(r);
                        }
                    }
                });
            }
        });
        let mut indexes = Vec::with_capacity(n);
        for r in results.into_inner().unwrap_or_default() {
            match r {
                Some(r) => indexes.push(r?),
                None => indexes.push(LayerIndex::default()),
            }
        }
        let steps = img.history_steps();
        let layers = indexes
            .iter()
            .enumerate()
            .map(|(i, idx)| {
                let created_by = steps
                    .iter()
                    .find(|s| s.layer_index == Some(i))
                    .map(|s| s.created_by.as_str())
                    .unwrap_or("");
                LayerInfo {
                    index: i,
                    digest: img.layers[i].digest.clone(),
                    size: idx.records.iter().map(|r| r.size).sum(),
                    entries: idx.records.len(),
                    instruction: pare_xray::clean_created_by(created_by),
                }
            })
            .collect();
        Ok(Image {
            name: img.name.clone(),
            layers,
            indexes: indexes.into(),
        })
    }

    /// An image from layer indexes already read (tests).
    pub fn from_indexes(name: &str, indexes: Vec<LayerIndex>) -> Image {
        let layers = indexes
            .iter()
            .enumerate()
            .map(|(i, idx)| LayerInfo {
                index: i,
                digest: format!("layer{i}"),
                size: idx.records.iter().map(|r| r.size).sum(),
                entries: idx.records.len(),
                instruction: String::new(),
            })
            .collect();
        Image {
            name: name.to_string(),
            layers,
            indexes: indexes.into(),
        }
    }

    /// The merged filesystem of layers `0..upto`.
    fn merged(&self, upto: usize) -> MergedFs {
        let mut fs = MergedFs::new();
        for idx in self.indexes.iter().take(upto) {
            fs.apply(clone_index(idx));
        }
        fs
    }

    /// File copies that later layers overwrote or deleted, most bytes first.
    pub fn wasted(&self) -> Vec<Waste> {
        let fs = self.merged(self.indexes.len());
        let mut v: Vec<Waste> = fs
            .superseded
            .iter()
            .filter(|s| s.wasted > 0)
            .map(|s| Waste {
                path: ImagePath::from_rel(&s.path),
                layer: usize::from(s.layer),
                by_layer: usize::from(s.by_layer),
                bytes: s.wasted,
            })
            .collect();
        v.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
        v
    }

    /// The tree of layer `layer` alone, or (`aggregated`) of all layers up to it.
    pub fn view(&self, layer: usize, aggregated: bool) -> View {
        View::build(self.indexes.clone(), layer, aggregated)
    }
}

/// One path of a view, borrowed from the layer's record.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// Kind of the entry.
    pub kind: Kind,
    /// Regular-file size in bytes (0 for other kinds).
    pub size: u64,
    /// Permission bits including setuid/setgid/sticky.
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Symlink target as stored, or the path a hard link points to.
    pub link: Option<&'a str>,
    /// How the selected layer changed this path.
    pub mark: Mark,
}

/// A wasted file copy.
#[derive(Debug, Clone)]
pub struct Waste {
    /// The path of the copy (`/usr/…`).
    pub path: ImagePath,
    /// Layer holding the superseded copy.
    pub layer: usize,
    /// Layer that overwrote or deleted it.
    pub by_layer: usize,
    /// Bytes wasted (0-sized copies and copies a visible hard link still uses are not listed).
    pub bytes: u64,
}

/// Per directory: bytes of files beneath, and which marks occur beneath.
#[derive(Debug, Clone, Copy, Default)]
pub struct DirInfo {
    /// Bytes of the regular files beneath (removed ones weigh nothing).
    pub size: u64,
    /// The marks beneath, as bits: added 1, modified 2, removed 4, unchanged 8.
    pub marks: u8,
}
