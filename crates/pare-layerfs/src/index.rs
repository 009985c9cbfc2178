//! Compact per-layer indexes: one layer's tar stream condensed into records, whiteouts,
//! opaque directories and the few captured files an analysis needs, with the entry limit.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::walk::{Data, Event, walk_layer};
use crate::{Kind, LayerContent, LayerFsError};

/// Compact metadata of one path in one layer. No file contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Normalized root-relative path (no leading `/`, no `.`/`..`; `""` is the root).
    pub path: Box<str>,
    /// What kind of entry the layer holds at `path`.
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky.
    pub mode: u32,
    /// Owner user id, clamped to `u32::MAX` when the tar header holds a larger value.
    pub uid: u32,
    /// Owner group id, clamped to `u32::MAX` when the tar header holds a larger value.
    pub gid: u32,
    /// Content length in bytes for regular files, 0 for everything else.
    pub size: u64,
    /// Symlink target as stored, or the normalized hard-link target.
    pub link: Option<Box<str>>,
    /// xxh3-64 of the content, when hashing was asked for (regular, non-sparse files).
    pub hash: Option<u64>,
    /// Carries a `security.capability` xattr.
    pub capability: bool,
}

/// Picks the few small files whose content an analysis needs, while layers stream by.
pub trait Capture: Sync {
    /// How many leading bytes of this regular file to hand to [`Capture::take`] (0: none).
    fn want(&self, path: &str, size: u64) -> usize;
    /// Keeps (possibly condensed) bytes for this path; `None` keeps nothing.
    fn take(&self, path: &str, data: &[u8]) -> Option<Box<[u8]>>;
}

/// How to read layers.
#[derive(Clone, Copy, Default)]
pub struct ReadOptions<'a> {
    /// Hash every regular file's content (for duplicate detection).
    pub hash: bool,
    /// Decides which small files' content to keep (os-release, package databases); `None` keeps none.
    pub capture: Option<&'a dyn Capture>,
    /// Worker threads for [`read_image`](crate::read_image); 0 means one per core (never more than layers).
    pub threads: usize,
    /// Most entries (paths, whiteouts, opaque markers) kept for one image, all layers together;
    /// 0 means [`MAX_ENTRIES`].
    pub max_entries: u64,
}

/// Most entries [`read_layer`] and [`read_image`](crate::read_image) keep for one image (all layers together)
/// unless [`ReadOptions::max_entries`] says otherwise: 4 million, about 20 times the largest
/// distribution images and within about 1 GiB of metadata. See `docs/limits.md`.
pub const MAX_ENTRIES: u64 = 4_000_000;

impl ReadOptions<'_> {
    fn entry_limit(&self) -> u64 {
        if self.max_entries == 0 {
            MAX_ENTRIES
        } else {
            self.max_entries
        }
    }
}

/// One layer condensed: its records, whiteouts, opaque directories and captured files.
#[derive(Debug, Default)]
pub struct LayerIndex {
    /// One record per entry, in the order the layer stores them (whiteouts not included).
    pub records: Vec<Record>,
    /// Normalized paths the layer deletes with `.wh.NAME` whiteouts (the path without the prefix).
    pub whiteouts: Vec<Box<str>>,
    /// Normalized directories the layer marks opaque (their lower-layer content is hidden).
    pub opaques: Vec<Box<str>>,
    /// (index into `records`, captured bytes)
    pub captured: Vec<(usize, Box<[u8]>)>,
}

fn clamp32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Reads one layer into a [`LayerIndex`]. `layer` names it in errors (its digest).
/// More than [`ReadOptions::max_entries`] entries are refused.
pub fn read_layer(
    content: LayerContent,
    layer: &str,
    opts: &ReadOptions<'_>,
) -> Result<LayerIndex, LayerFsError> {
    read_layer_counted(content, layer, opts, &AtomicU64::new(0))
}

/// [`read_layer`], counting entries into `seen`, which the layers of one image share.
pub(crate) fn read_layer_counted(
    content: LayerContent,
    layer: &str,
    opts: &ReadOptions<'_>,
    seen: &AtomicU64,
) -> Result<LayerIndex, LayerFsError> {
    let mut indexer = Indexer::new(opts);
    walk_layer(content, layer, &mut |ev, data| {
        indexer.event(ev, data, layer, seen)
    })?;
    Ok(indexer.finish())
}

/// Condenses one layer's events into a [`LayerIndex`], one event at a time: what
/// [`read_layer`] does over a walk of its own, and what an extraction that also indexes
/// ([`crate::extract_indexed`]) does beside each entry it writes.
pub(crate) struct Indexer<'o> {
    idx: LayerIndex,
    buf: Vec<u8>,
    opts: &'o ReadOptions<'o>,
}

impl<'o> Indexer<'o> {
    pub(crate) fn new(opts: &'o ReadOptions<'o>) -> Self {
        Indexer {
            idx: LayerIndex::default(),
            buf: vec![0u8; 128 * 1024],
            opts,
        }
    }

    /// Records one event of `layer`; a regular file's bytes are read from `data` only when
    /// they are hashed or captured. Counts into `seen` and refuses the entry over the limit.
    pub(crate) fn event(
        &mut self,
        ev: Event,
        mut data: Data<'_, '_>,
        layer: &str,
        seen: &AtomicU64,
    ) -> Result<(), LayerFsError> {
        let (opts, idx, buf) = (self.opts, &mut self.idx, &mut self.buf);
        let limit = opts.entry_limit();
        if seen.fetch_add(1, Ordering::Relaxed) >= limit {
            return Err(LayerFsError::TooManyEntries {
                layer: layer.to_string(),
                limit,
            });
        }
        match ev {
            Event::Whiteout(p) => idx.whiteouts.push(p.into()),
            Event::Opaque(p) => idx.opaques.push(p.into()),
            Event::Entry(e) => {
                let want = match opts.capture {
                    Some(c) if e.kind == Kind::File => c.want(&e.path, e.size),
                    _ => 0,
                };
                let mut hash = None;
                let mut captured = None;
                if e.kind == Kind::File && !e.sparse && (opts.hash || want > 0) {
                    let err = |x: std::io::Error| LayerFsError::tar(layer, Some(&e.path), x);
                    if let Some(mut r) = data.reader().map_err(err)? {
                        let mut h = xxhash_rust::xxh3::Xxh3::new();
                        let mut head: Vec<u8> = Vec::with_capacity(want.min(1 << 20));
                        loop {
                            let n = r.read(buf).map_err(err)?;
                            if n == 0 {
                                break;
                            }
                            if head.len() < want {
                                let k = (want - head.len()).min(n);
                                head.extend_from_slice(&buf[..k]);
                            }
                            if opts.hash {
                                h.update(&buf[..n]);
                            } else if head.len() >= want {
                                break;
                            }
                        }
                        if opts.hash {
                            hash = Some(h.digest());
                        }
                        if want > 0 {
                            captured = opts.capture.and_then(|c| c.take(&e.path, &head));
                        }
                    }
                }
                if let Some(c) = captured {
                    idx.captured.push((idx.records.len(), c));
                }
                idx.records.push(Record {
                    path: e.path.into(),
                    kind: e.kind,
                    mode: e.mode,
                    uid: clamp32(e.uid),
                    gid: clamp32(e.gid),
                    size: e.size,
                    link: e.link.map(Into::into),
                    hash,
                    capability: e.capability,
                });
            }
        }
        Ok(())
    }

    /// The layer's index.
    pub(crate) fn finish(mut self) -> LayerIndex {
        // The vector doubled as it grew: give back the unused half before the merge holds it.
        self.idx.records.shrink_to_fit();
        self.idx
    }
}

/// The layer index an extraction builds as it goes ([`crate::extract_indexed`]): the indexer of
/// the layer being applied, the entries counted so far (all layers), and the first error
/// that stopped the indexing (the extraction goes on without it).
pub(crate) struct Indexing<'o> {
    pub(crate) indexer: Option<Indexer<'o>>,
    pub(crate) seen: AtomicU64,
    pub(crate) failed: Option<LayerFsError>,
}

impl Indexing<'_> {
    /// Records one event; `file` is the host path of a regular file just written with its
    /// bytes, which the indexer reads back when it hashes or captures them.
    pub(crate) fn event(&mut self, ev: Event, file: Option<&Path>, layer: &str) {
        let Some(ix) = self.indexer.as_mut() else {
            return;
        };
        let data = file.map_or(Data::None, Data::Path);
        if let Err(e) = ix.event(ev, data, layer, &self.seen) {
            self.indexer = None;
            self.failed = Some(e);
        }
    }
}
