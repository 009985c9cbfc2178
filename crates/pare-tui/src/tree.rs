//! The tree of one layer selection, built from the layers' records without copying them.
//!
//! Every path is a node holding its parent, its name (in one arena) and a reference to the
//! record it shows (layer, index): metadata stays in the shared layer indexes. Nodes are found
//! by (parent, name) in one open-addressing table of node numbers. A parent always has a
//! smaller number than its children, so one backward pass sums directory sizes; the sorted
//! children of a directory are listed only when it is first drawn.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use pare_layerfs::{Kind, LayerIndex, Record};

use crate::model::{DirInfo, Entry, Mark};

/// No node (a link or parent that is not there).
const NONE: u32 = u32::MAX;
/// The root directory's node.
pub(crate) const ROOT: u32 = 0;

/// Present in the merged view of the layers applied so far.
const ALIVE: u8 = 1;
/// Alive only as the parent of other paths: no record of its own (not an entry of the view).
const IMPLICIT: u8 = 2;
/// Shown as an entry with `mark` and its record.
const SHOWN: u8 = 4;
/// Shown because the selected layer lists it (not because it removed it).
const LISTED: u8 = 8;
/// Shown, or the parent of a shown path.
const IN_VIEW: u8 = 16;
/// Has children in view.
const PARENT: u8 = 32;

#[derive(Debug, Clone, Copy)]
struct Node {
    parent: u32,
    name: u32,
    name_len: u16,
    /// Layer of `rec`; `u16::MAX` for a directory no layer lists.
    layer: u16,
    /// The record last written at this path (kept when it is removed, to show it as removed).
    rec: u32,
    first_child: u32,
    next_sibling: u32,
    flags: u8,
    mark: Mark,
}

/// The tree of one layer selection: the selected layer alone, or every layer up to it.
/// Directories that a layer lists only implicitly (a file without its parent entry) are here.
#[derive(Debug)]
pub struct View {
    indexes: Arc<[LayerIndex]>,
    nodes: Vec<Node>,
    names: String,
    /// Open-addressing table of node numbers by (parent, name); `NONE` is empty.
    table: Vec<u32>,
    dirs: HashMap<u32, DirInfo>,
    children: RefCell<HashMap<u32, Arc<[u32]>>>,
    /// The shown entries in path order, once a search asked for them.
    order: RefCell<Option<Arc<[u32]>>>,
    /// While building: the record (layer, index) each path the selected layer removes had.
    removed: HashMap<u32, (u16, u32)>,
}

fn hash(parent: u32, name: &str) -> u64 {
    // FNV-1a over the parent number and the name: short names, no allocation.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parent.to_le_bytes().iter().chain(name.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^ (h >> 29)
}

impl View {
    fn empty(indexes: Arc<[LayerIndex]>) -> View {
        let mut v = View {
            indexes,
            nodes: Vec::new(),
            names: String::new(),
            table: vec![NONE; 1024],
            dirs: HashMap::new(),
            children: RefCell::new(HashMap::new()),
            order: RefCell::new(None),
            removed: HashMap::new(),
        };
        v.nodes.push(Node {
            parent: NONE,
            name: 0,
            name_len: 0,
            layer: u16::MAX,
            rec: 0,
            first_child: NONE,
            next_sibling: NONE,
            flags: ALIVE | IMPLICIT,
            mark: Mark::Unchanged,
        });
        v
    }

    /// The view of layer `layer` alone or (`aggregated`) of all layers up to it.
    pub(crate) fn build(indexes: Arc<[LayerIndex]>, layer: usize, aggregated: bool) -> View {
        let mut v = View::empty(indexes.clone());
        let Some(top) = indexes.get(layer) else {
            v.summarize();
            return v;
        };
        for (l, idx) in indexes.iter().enumerate().take(layer) {
            v.apply(l, idx, false);
        }
        v.apply(layer, top, true);
        let removed = std::mem::take(&mut v.removed);
        for (id, n) in v.nodes.iter_mut().enumerate() {
            let exists = n.flags & (ALIVE | IMPLICIT) == ALIVE;
            if aggregated && n.flags & LISTED != 0 && !exists {
                // Listed, then replaced within the layer: not in the merged view, but shown
                // as removed when the layer removed the lower copy too.
                n.flags &= !(SHOWN | LISTED);
                if let Some(&(layer, rec)) = removed.get(&(id as u32)) {
                    (n.layer, n.rec, n.mark) = (layer, rec, Mark::Removed);
                    n.flags |= SHOWN;
                }
            }
            if aggregated && exists && n.flags & SHOWN == 0 {
                n.flags |= SHOWN;
                n.mark = Mark::Unchanged;
            }
        }
        v.summarize();
        v
    }

    fn name_of(&self, id: u32) -> &str {
        let n = &self.nodes[id as usize];
        &self.names[n.name as usize..n.name as usize + usize::from(n.name_len)]
    }

    fn child(&self, parent: u32, name: &str) -> Option<u32> {
        let mask = self.table.len() - 1;
        let mut i = hash(parent, name) as usize & mask;
        loop {
            let id = self.table[i];
            if id == NONE {
                return None;
            }
            if self.nodes[id as usize].parent == parent && self.name_of(id) == name {
                return Some(id);
            }
            i = (i + 1) & mask;
        }
    }

    fn place(&mut self, id: u32) {
        let mask = self.table.len() - 1;
        let mut i = hash(self.nodes[id as usize].parent, self.name_of(id)) as usize & mask;
        while self.table[i] != NONE {
            i = (i + 1) & mask;
        }
        self.table[i] = id;
    }

    /// The child `name` of `parent`, made (alive, implicit) when missing.
    fn child_or_new(&mut self, parent: u32, name: &str) -> u32 {
        if let Some(id) = self.child(parent, name) {
            return id;
        }
        if (self.nodes.len() + 1) * 2 > self.table.len() {
            self.table = vec![NONE; self.table.len() * 2];
            for id in 1..self.nodes.len() {
                self.place(id as u32);
            }
        }
        let id = u32::try_from(self.nodes.len()).unwrap_or(NONE);
        let off = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push_str(name);
        let p = &mut self.nodes[parent as usize];
        let next_sibling = p.first_child;
        p.first_child = id;
        self.nodes.push(Node {
            parent,
            name: off,
            name_len: u16::try_from(name.len()).unwrap_or(u16::MAX),
            layer: u16::MAX,
            rec: 0,
            first_child: NONE,
            next_sibling,
            flags: ALIVE | IMPLICIT,
            mark: Mark::Unchanged,
        });
        self.place(id);
        id
    }

    /// The node of a normalized path, if the tree has one.
    pub fn find(&self, path: &str) -> Option<u32> {
        let mut id = ROOT;
        for c in path.split('/').filter(|c| !c.is_empty()) {
            id = self.child(id, c)?;
        }
        Some(id)
    }

    fn record(&self, id: u32) -> Option<&Record> {
        let n = &self.nodes[id as usize];
        self.indexes
            .get(usize::from(n.layer))?
            .records
            .get(n.rec as usize)
    }

    /// Kind of the record a node holds while it is an entry of the merged view.
    fn kind(&self, id: u32) -> Option<Kind> {
        let n = &self.nodes[id as usize];
        if n.flags & (ALIVE | IMPLICIT) != ALIVE {
            return None;
        }
        self.record(id).map(|r| r.kind)
    }

    /// Takes `id`'s descendants (and `id` when `with_self`) out of the merged view; with
    /// `removed`, those that were entries show as removed by the selected layer.
    fn kill(&mut self, id: u32, with_self: bool, removed: bool) {
        let mut stack = Vec::new();
        if with_self {
            stack.push(id);
        } else {
            stack.extend(self.kids(id));
        }
        while let Some(k) = stack.pop() {
            let n = &mut self.nodes[k as usize];
            if n.flags & ALIVE == 0 {
                continue; // nothing alive lies beneath a removed path
            }
            if removed && n.flags & IMPLICIT == 0 {
                n.flags = (n.flags | SHOWN) & !LISTED;
                n.mark = Mark::Removed;
                self.removed.insert(k, (n.layer, n.rec));
            }
            n.flags &= !(ALIVE | IMPLICIT);
            stack.extend(self.kids(k));
        }
    }

    /// Every child node, in the view or not.
    fn kids(&self, id: u32) -> impl Iterator<Item = u32> + '_ {
        let mut k = self.nodes[id as usize].first_child;
        std::iter::from_fn(move || {
            let here = k;
            (here != NONE).then(|| {
                k = self.nodes[here as usize].next_sibling;
                here
            })
        })
    }

    /// Applies layer `l` as the merge does (whiteouts and opaque directories first, then the
    /// records in order; a non-directory replaces a directory tree, a directory replaces a
    /// non-directory). For the selected layer (`last`), marks what it adds, modifies, removes.
    fn apply(&mut self, l: usize, idx: &LayerIndex, last: bool) {
        let layer = u16::try_from(l).unwrap_or(u16::MAX);
        let existed: Vec<bool> = if last {
            let s: &View = self;
            idx.records
                .iter()
                .map(|r| s.find(&r.path).and_then(|id| s.kind(id)).is_some())
                .collect()
        } else {
            Vec::new()
        };
        for w in &idx.whiteouts {
            if let Some(id) = self.find(w) {
                self.kill(id, true, last);
            }
        }
        for o in &idx.opaques {
            if let Some(id) = self.find(o) {
                self.kill(id, false, last);
            }
        }
        // The parent of the previous record: layers list a directory's entries together.
        let mut cached: (String, u32) = (String::new(), ROOT);
        for (i, r) in idx.records.iter().enumerate() {
            let (dir, name) = match r.path.rfind('/') {
                Some(p) => (&r.path[..p], &r.path[p + 1..]),
                None => ("", &*r.path),
            };
            let parent = if r.path.is_empty() {
                NONE
            } else if dir == cached.0 && self.nodes[cached.1 as usize].flags & ALIVE != 0 {
                cached.1
            } else {
                let mut id = ROOT;
                for c in dir.split('/').filter(|c| !c.is_empty()) {
                    id = self.child_or_new(id, c);
                    self.as_parent(id);
                }
                cached = (dir.to_string(), id);
                id
            };
            let id = if parent == NONE {
                ROOT
            } else {
                self.child_or_new(parent, name)
            };
            let was = self.nodes[id as usize].flags;
            let old = self.kind(id);
            if r.kind != Kind::Dir && (old == Some(Kind::Dir) || was & IMPLICIT != 0) {
                self.kill(id, false, false);
            }
            let n = &mut self.nodes[id as usize];
            n.layer = layer;
            n.rec = u32::try_from(i).unwrap_or(u32::MAX);
            n.flags = (n.flags | ALIVE) & !IMPLICIT;
            if last {
                n.flags |= SHOWN | LISTED;
                n.mark = if existed[i] {
                    Mark::Modified
                } else {
                    Mark::Added
                };
            }
        }
    }

    /// Makes `id` alive as a directory for a path beneath it: a removed node comes back as an
    /// implicit directory, a non-directory is replaced by one.
    fn as_parent(&mut self, id: u32) {
        let kind = self.kind(id);
        let n = &mut self.nodes[id as usize];
        if n.flags & ALIVE == 0 {
            n.flags |= ALIVE | IMPLICIT;
        } else if kind.is_some_and(|k| k != Kind::Dir) {
            n.flags |= IMPLICIT;
        }
    }

    /// Marks what is in view and sums sizes and marks beneath each directory (backward: a
    /// parent's number is below its children's).
    fn summarize(&mut self) {
        // Totals are kept for directories only: a node's are complete when the backward walk
        // reaches it, its children having come first.
        let mut dirs: HashMap<u32, DirInfo> = HashMap::new();
        self.nodes[ROOT as usize].flags |= IN_VIEW;
        for id in (1..self.nodes.len() as u32).rev() {
            let n = self.nodes[id as usize];
            let mut info = if n.flags & PARENT != 0 {
                dirs.get(&id).copied().unwrap_or_default()
            } else {
                DirInfo::default()
            };
            if n.flags & SHOWN != 0 {
                let r = self.record(id);
                if r.is_some_and(|r| r.kind == Kind::File) && n.mark != Mark::Removed {
                    info.size += r.map_or(0, |r| r.size);
                }
                info.marks |= n.mark.bit();
            }
            if n.flags & (SHOWN | PARENT) != 0 {
                self.nodes[id as usize].flags |= IN_VIEW;
                self.nodes[n.parent as usize].flags |= PARENT;
                let d = dirs.entry(n.parent).or_default();
                d.size += info.size;
                d.marks |= info.marks;
            }
            if n.flags & PARENT == 0 && self.is_dir(id) {
                dirs.insert(id, DirInfo::default()); // an empty directory
            }
        }
        self.dirs = dirs;
    }

    /// True when `id` has children in this view or its entry is a directory.
    pub fn is_dir(&self, id: u32) -> bool {
        let n = &self.nodes[id as usize];
        n.flags & PARENT != 0
            || (n.flags & SHOWN != 0 && self.record(id).is_some_and(|r| r.kind == Kind::Dir))
    }

    /// The entry shown at `id`, if the view has one (implicit directories have none).
    pub fn entry(&self, id: u32) -> Option<Entry<'_>> {
        let n = self.nodes.get(id as usize)?;
        if n.flags & SHOWN == 0 {
            return None;
        }
        let r = self.record(id)?;
        Some(Entry {
            kind: r.kind,
            size: r.size,
            mode: r.mode,
            uid: r.uid,
            gid: r.gid,
            link: r.link.as_deref(),
            mark: n.mark,
        })
    }

    /// Size and marks beneath a directory.
    pub fn dir(&self, id: u32) -> Option<DirInfo> {
        self.dirs.get(&id).copied()
    }

    /// The children in view of `id`, sorted by name (listed once, then kept).
    pub fn children(&self, id: u32) -> Arc<[u32]> {
        if let Some(c) = self.children.borrow().get(&id) {
            return c.clone();
        }
        let mut kids: Vec<u32> = self
            .kids(id)
            .filter(|&k| self.nodes[k as usize].flags & IN_VIEW != 0)
            .collect();
        kids.sort_unstable_by(|&a, &b| self.name_of(a).cmp(self.name_of(b)));
        let kids: Arc<[u32]> = kids.into();
        self.children.borrow_mut().insert(id, kids.clone());
        kids
    }

    /// Every directory with children in view.
    pub fn parents(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.nodes.len() as u32).filter(|&id| self.nodes[id as usize].flags & PARENT != 0)
    }

    /// The parent of `id` (`None` for the root).
    pub fn parent(&self, id: u32) -> Option<u32> {
        let p = self.nodes.get(id as usize)?.parent;
        (p != NONE).then_some(p)
    }

    /// The last component of `id`'s path (`""` for the root).
    pub fn name(&self, id: u32) -> &str {
        self.name_of(id)
    }

    /// The normalized path of `id` (no leading `/`; `""` is the root).
    pub fn path(&self, id: u32) -> String {
        let mut out = String::new();
        self.path_into(id, &mut out);
        out
    }

    /// Writes the normalized path of `id` into `out`, replacing what it held.
    pub fn path_into(&self, id: u32, out: &mut String) {
        let mut parts = Vec::new();
        let mut k = id;
        while k != ROOT && k != NONE {
            parts.push(k);
            k = self.nodes[k as usize].parent;
        }
        out.clear();
        for (i, &k) in parts.iter().rev().enumerate() {
            if i > 0 {
                out.push('/');
            }
            out.push_str(self.name_of(k));
        }
    }

    /// Every shown entry, in path order (sorted the first time it is asked for, then kept:
    /// a search goes through it at every key).
    pub fn entries(&self) -> Arc<[u32]> {
        if let Some(order) = self.order.borrow().as_ref() {
            return order.clone();
        }
        let mut v: Vec<(String, u32)> = (1..self.nodes.len() as u32)
            .filter(|&id| self.nodes[id as usize].flags & SHOWN != 0)
            .map(|id| (self.path(id), id))
            .collect();
        v.sort_unstable();
        let order: Arc<[u32]> = v.into_iter().map(|(_, id)| id).collect();
        *self.order.borrow_mut() = Some(order.clone());
        order
    }
}
