//! The merged filesystem view of layer indexes ([`crate::index`]), with waste accounting.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::index::{LayerIndex, ReadOptions, Record, read_layer_counted};
use crate::{ImageSource, Kind, LayerFsError};

/// One path in the merged view (the path is the map key, see [`MergedFs::iter`]).
#[derive(Debug, Clone)]
pub struct Node {
    /// Index of the layer the visible copy comes from.
    pub layer: u16,
    /// Kind of the visible entry.
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky.
    pub mode: u32,
    /// Owner user id (clamped to `u32::MAX`).
    pub uid: u32,
    /// Owner group id (clamped to `u32::MAX`).
    pub gid: u32,
    /// Content length in bytes for regular files (and hard links to them), else 0.
    pub size: u64,
    /// Symlink target as stored, or the normalized path a hard link points to.
    pub link: Option<Box<str>>,
    /// xxh3-64 of the content, when [`ReadOptions::hash`] was set and the file is regular and not sparse.
    pub hash: Option<u64>,
    /// Carries a `security.capability` xattr (file capabilities, like a setuid bit).
    pub capability: bool,
    /// The shared data of a regular file some hard link names too; `NO_UNIT` for a file
    /// that is its data's only name (most files: they need no unit) and for other kinds.
    unit: u32,
}

const NO_UNIT: u32 = u32::MAX;

/// The visible paths in order. The map holds only a slot number per path and the nodes sit
/// in one vector: B-tree leaves are about half full under the in-order inserts layers make,
/// so keeping the 64-byte nodes out of them halves the memory per path.
#[derive(Debug, Default)]
struct Nodes {
    map: BTreeMap<Box<str>, u32>,
    slots: Vec<Option<Node>>,
    /// Slots of removed nodes, reused first.
    free: Vec<u32>,
}

impl Nodes {
    fn get(&self, path: &str) -> Option<&Node> {
        let slot = *self.map.get(path)?;
        self.slots.get(slot as usize)?.as_ref()
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.map.iter().filter_map(|(k, &slot)| {
            let node = self.slots.get(slot as usize)?.as_ref()?;
            Some((&**k, node))
        })
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn remove_entry(&mut self, path: &str) -> Option<(Box<str>, Node)> {
        let (k, slot) = self.map.remove_entry(path)?;
        let node = self.slots.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        Some((k, node))
    }

    fn insert(&mut self, path: Box<str>, node: Node) {
        if let Some(&slot) = self.map.get(&path) {
            if let Some(s) = self.slots.get_mut(slot as usize) {
                *s = Some(node);
                return;
            }
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(node);
                slot
            }
            None => {
                // MAX_ENTRIES keeps the slot numbers far below u32::MAX.
                let slot = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                self.slots.push(Some(node));
                slot
            }
        };
        self.map.insert(path, slot);
    }
}

/// A stored copy of file data that hard links share (made when the first link to a file is
/// applied; a file with one name needs none).
#[derive(Debug, Clone)]
struct Unit {
    size: u64,
    layer: u16,
    alive: u32,
}

/// How a lower copy stopped being visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Supersede {
    /// A later layer wrote the same path (or a path above it).
    Overwritten,
    /// A whiteout or opaque directory removed it.
    Deleted,
}

/// A file copy in a lower layer that a later layer superseded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superseded {
    /// Normalized path of the superseded copy.
    pub path: Box<str>,
    /// Layer holding the superseded copy.
    pub layer: u16,
    /// Layer that superseded it.
    pub by_layer: u16,
    /// Bytes that became waste through this: the copy's size, or 0 while another hard link to
    /// the same data is still visible.
    pub wasted: u64,
    /// Whether a later write or a deletion superseded it.
    pub how: Supersede,
}

/// What one layer did to the merged view.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LayerChanges {
    /// Entries in the layer (whiteouts excluded).
    pub entries: u64,
    /// Sum of regular file sizes in the layer.
    pub size: u64,
    /// Paths new to the image, and their file bytes.
    pub added: u64,
    /// New paths' regular file bytes.
    pub added_bytes: u64,
    /// Paths that replaced a lower copy (directories re-listed as directories excluded).
    pub modified: u64,
    /// Replacing paths' regular file bytes.
    pub modified_bytes: u64,
    /// Paths the layer removed (whiteouts, opaque directories and directories replaced by
    /// non-directories, counting everything beneath), and the bytes they had.
    pub deleted: u64,
    /// Regular file bytes the deleted paths had in the view before this layer.
    pub deleted_bytes: u64,
    /// Bytes of this layer's own copies that later layers superseded.
    pub wasted_bytes: u64,
}

/// The merged filesystem of layers applied in order.
#[derive(Debug, Default)]
pub struct MergedFs {
    nodes: Nodes,
    units: Vec<Unit>,
    /// Bytes of the visible regular files without a unit.
    single_bytes: u64,
    /// One entry per applied layer.
    pub layers: Vec<LayerChanges>,
    /// Every superseded file copy (regular files and hard links), in the order it happened.
    pub superseded: Vec<Superseded>,
    captured: HashMap<Box<str>, Box<[u8]>>,
}

impl MergedFs {
    /// An empty view, with no layer applied yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The visible entry at a normalized path.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// All visible entries in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter()
    }

    /// Number of visible paths, directories included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when no path is visible (no layer applied, or every path deleted).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Captured bytes of a visible file (see [`Capture`](crate::Capture)).
    pub fn captured(&self, path: &str) -> Option<&[u8]> {
        self.captured.get(path).map(|b| &**b)
    }

    /// All captured files still visible, in no particular order.
    pub fn captured_files(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.captured.iter().map(|(k, v)| (&**k, &**v))
    }

    /// Bytes of file copies that are in some layer but not visible in the final filesystem.
    pub fn wasted_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.wasted_bytes).sum()
    }

    /// Sum of all layers' regular file bytes.
    pub fn total_size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    /// Bytes of the visible files, each stored copy counted once (hard links share).
    pub fn final_size(&self) -> u64 {
        self.single_bytes
            + self
                .units
                .iter()
                .filter(|u| u.alive > 0)
                .map(|u| u.size)
                .sum::<u64>()
    }

    /// Whether the visible node at `path` shares its data with an earlier-seen path (a hard
    /// link that is not the first name of its data).
    pub fn same_data(&self, a: &Node, b: &Node) -> bool {
        a.unit != NO_UNIT && a.unit == b.unit
    }

    fn supersede(&mut self, path: Box<str>, node: Node, by: u16, how: Supersede) {
        if !self.captured.is_empty() {
            self.captured.remove(&path);
        }
        let mut wasted = 0;
        if node.kind == Kind::File && node.unit == NO_UNIT {
            // The only name of its data.
            self.single_bytes -= node.size;
            wasted = node.size;
            if let Some(lc) = self.layers.get_mut(usize::from(node.layer)) {
                lc.wasted_bytes += wasted;
            }
        } else if let Some(u) = self.units.get_mut(node.unit as usize) {
            u.alive = u.alive.saturating_sub(1);
            if u.alive == 0 {
                wasted = u.size;
                let l = usize::from(u.layer);
                if let Some(lc) = self.layers.get_mut(l) {
                    lc.wasted_bytes += wasted;
                }
            }
        }
        if matches!(node.kind, Kind::File | Kind::Hardlink) {
            self.superseded.push(Superseded {
                path,
                layer: node.layer,
                by_layer: by,
                wasted,
                how,
            });
        }
    }

    /// The unit of the data at `path`, which a hard link is about to share: a regular file
    /// with no unit yet gets one now. `NO_UNIT` when there is no file data there.
    fn share(&mut self, path: &str) -> u32 {
        let Some(&slot) = self.nodes.map.get(path) else {
            return NO_UNIT;
        };
        let Some(Some(node)) = self.nodes.slots.get_mut(slot as usize) else {
            return NO_UNIT;
        };
        if node.unit == NO_UNIT && node.kind == Kind::File {
            self.single_bytes -= node.size;
            node.unit = u32::try_from(self.units.len()).unwrap_or(NO_UNIT);
            self.units.push(Unit {
                size: node.size,
                layer: node.layer,
                alive: 1,
            });
        }
        node.unit
    }

    /// Removes `path`'s descendants (and `path` itself when `with_self`), returning how many
    /// entries and file bytes went.
    fn remove_tree(&mut self, path: &str, with_self: bool, by: u16, how: Supersede) -> (u64, u64) {
        let mut keys: Vec<Box<str>> = Vec::new();
        if path.is_empty() {
            keys.extend(self.nodes.map.keys().cloned());
        } else {
            let lo = format!("{path}/");
            let hi = format!("{path}0"); // '0' sorts right after '/'
            keys.extend(
                self.nodes
                    .map
                    .range::<str, _>((
                        std::ops::Bound::Included(&*lo),
                        std::ops::Bound::Excluded(&*hi),
                    ))
                    .map(|(k, _)| k.clone()),
            );
            if with_self && self.nodes.map.contains_key(path) {
                keys.push(path.into());
            }
        }
        let (mut n, mut bytes) = (0, 0);
        for k in keys {
            if let Some((k, node)) = self.nodes.remove_entry(&k) {
                n += 1;
                bytes += node.size;
                self.supersede(k, node, by, how);
            }
        }
        (n, bytes)
    }

    /// Applies the next layer on top (layers must come bottom first).
    pub fn apply(&mut self, idx: LayerIndex) {
        let l = u16::try_from(self.layers.len()).unwrap_or(u16::MAX);
        let li = self.layers.len();
        self.layers.push(LayerChanges::default());
        // Whiteouts and opaque markers only ever refer to lower layers: apply them first.
        for w in &idx.whiteouts {
            let (n, b) = self.remove_tree(w, true, l, Supersede::Deleted);
            self.layers[li].deleted += n;
            self.layers[li].deleted_bytes += b;
        }
        for o in &idx.opaques {
            let (n, b) = self.remove_tree(o, false, l, Supersede::Deleted);
            self.layers[li].deleted += n;
            self.layers[li].deleted_bytes += b;
        }
        let mut captured: HashMap<usize, Box<[u8]>> = idx.captured.into_iter().collect();
        // The records are taken from the back of a reversed list, which is shrunk each time a
        // quarter of it has gone: the layer's records and the merged view they fill are not
        // both held whole (with a shrink at half, a one-layer image peaked mid-way).
        let mut records = idx.records;
        records.reverse();
        let mut next = 0usize;
        while let Some(rec) = records.pop() {
            if records.capacity() > 4096 && records.len() < records.capacity() / 4 * 3 {
                records.shrink_to_fit();
            }
            let i = next;
            next += 1;
            let is_file = rec.kind == Kind::File;
            {
                let lc = &mut self.layers[li];
                lc.entries += 1;
                if is_file {
                    lc.size += rec.size;
                }
            }
            // A non-directory standing where this path needs a directory is replaced. Nothing
            // in the view lies beneath a non-directory (see below), so the walk up stops at the
            // first directory: one lookup for a layer that lists directories first.
            let mut anc = &*rec.path;
            while let Some(pos) = anc.rfind('/') {
                anc = &anc[..pos];
                match self.nodes.get(anc).map(|n| n.kind) {
                    None => {}
                    Some(Kind::Dir) => break,
                    Some(_) => {
                        if let Some((k, old)) = self.nodes.remove_entry(anc) {
                            self.layers[li].modified += 1;
                            self.supersede(k, old, l, Supersede::Overwritten);
                        }
                    }
                }
            }
            let (added, modified) = match self.nodes.get(&rec.path).map(|n| n.kind) {
                None => {
                    // A non-directory over a directory that was only implied by the paths
                    // beneath it replaces that tree, as extraction does.
                    if rec.kind != Kind::Dir {
                        let (n, b) = self.remove_tree(&rec.path, false, l, Supersede::Overwritten);
                        self.layers[li].deleted += n;
                        self.layers[li].deleted_bytes += b;
                    }
                    (true, false)
                }
                Some(Kind::Dir) if rec.kind == Kind::Dir => (false, false),
                Some(old_kind) => {
                    if old_kind == Kind::Dir {
                        let (n, b) = self.remove_tree(&rec.path, false, l, Supersede::Overwritten);
                        self.layers[li].deleted += n;
                        self.layers[li].deleted_bytes += b;
                    }
                    if let Some((k, old)) = self.nodes.remove_entry(&rec.path) {
                        self.supersede(k, old, l, Supersede::Overwritten);
                    }
                    (false, true)
                }
            };
            {
                let lc = &mut self.layers[li];
                if added {
                    lc.added += 1;
                    lc.added_bytes += rec.size;
                } else if modified {
                    lc.modified += 1;
                    lc.modified_bytes += rec.size;
                }
            }
            let unit = match rec.kind {
                Kind::File => {
                    self.single_bytes += rec.size;
                    NO_UNIT
                }
                Kind::Hardlink => {
                    let target = rec.link.as_deref().map_or(NO_UNIT, |t| self.share(t));
                    if let Some(u) = self.units.get_mut(target as usize) {
                        u.alive += 1;
                    }
                    target
                }
                _ => NO_UNIT,
            };
            if let Some(c) = captured.remove(&i) {
                self.captured.insert(rec.path.clone(), c);
            }
            let Record {
                path,
                kind,
                mode,
                uid,
                gid,
                size,
                link,
                hash,
                capability,
            } = rec;
            self.nodes.insert(
                path,
                Node {
                    layer: l,
                    kind,
                    mode,
                    uid,
                    gid,
                    size,
                    link,
                    hash,
                    capability,
                    unit,
                },
            );
        }
    }
}

/// Reads every layer of `source` (in parallel, one worker per core at most) and merges them in
/// order. Only compact records are kept; file contents are streamed and dropped.
pub fn read_image(
    source: &dyn ImageSource,
    opts: &ReadOptions<'_>,
) -> Result<MergedFs, LayerFsError> {
    let layers = &source.image().layers;
    let n = layers.len();
    let cores = std::thread::available_parallelism()
        .map(|c| c.get())
        .unwrap_or(1);
    let threads = if opts.threads == 0 {
        cores
    } else {
        opts.threads
    }
    .min(n)
    .max(1);
    let next = AtomicUsize::new(0);
    let seen = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let slots: Mutex<BTreeMap<usize, Result<LayerIndex, LayerFsError>>> =
        Mutex::new(BTreeMap::new());
    let ready = std::sync::Condvar::new();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= n {
                        break;
                    }
                    let name = &layers[i].digest;
                    let r = source
                        .open_layer(i)
                        .map_err(|e| LayerFsError::Source {
                            layer: name.clone(),
                            source: e,
                        })
                        .and_then(|c| read_layer_counted(c, name, opts, &seen));
                    if let Ok(mut m) = slots.lock() {
                        m.insert(i, r);
                    }
                    ready.notify_all();
                }
            });
        }
        let mut merged = MergedFs::new();
        for i in 0..n {
            let r = {
                let Ok(mut m) = slots.lock() else { break };
                loop {
                    if let Some(r) = m.remove(&i) {
                        break r;
                    }
                    m = match ready.wait(m) {
                        Ok(m) => m,
                        Err(p) => p.into_inner(),
                    };
                }
            };
            match r {
                Ok(idx) => merged.apply(idx),
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        Ok(merged)
    })
}
