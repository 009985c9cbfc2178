//! File-level comparison of two merged filesystems, walked side by side in path order.

use std::cmp::Ordering;

use pare_image::ImagePath;
use pare_layerfs::{Kind, MergedFs, Node};
use serde::Serialize;

use crate::{Change, FileChange, FilesDiff};

/// The metadata of one path as `pare diff` compares it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FileMeta {
    /// File, directory, symlink, hard link, device, FIFO or other.
    pub kind: Kind,
    /// Size in bytes (regular files; 0 for the others).
    pub size: u64,
    /// Octal permission bits, e.g. `0755`.
    pub mode: String,
    /// Owner user ID, as stored in the layer tar.
    pub uid: u32,
    /// Owner group ID, as stored in the layer tar.
    pub gid: u32,
    /// The symlink target as stored, or the hard link's target path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// `xxh3:` and the 64-bit xxh3 of the content, hex (regular files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Index of the layer the visible copy comes from.
    pub layer: u16,
}

impl FileMeta {
    /// The compared metadata of one node of a merged filesystem.
    pub fn from_node(n: &Node) -> Self {
        FileMeta {
            kind: n.kind,
            size: n.size,
            mode: format!("{:04o}", n.mode),
            uid: n.uid,
            gid: n.gid,
            link: n.link.as_deref().map(str::to_string),
            digest: n.hash.map(|h| format!("xxh3:{h:016x}")),
            layer: n.layer,
        }
    }
}

/// Which of kind, size, mode, owner, link target and content differ. Directories compare by
/// mode and owner only; contents compare when both sides were hashed.
fn fields(x: &Node, y: &Node) -> Vec<&'static str> {
    let mut f = Vec::new();
    if x.kind != y.kind {
        f.push("kind");
    }
    if x.size != y.size {
        f.push("size");
    }
    if x.mode != y.mode {
        f.push("mode");
    }
    if (x.uid, x.gid) != (y.uid, y.gid) {
        f.push("owner");
    }
    if x.link != y.link {
        f.push("link");
    }
    if let (Some(a), Some(b)) = (x.hash, y.hash) {
        if a != b && x.kind == y.kind {
            f.push("digest");
        }
    }
    f
}

/// Paths only in `a`, only in `b`, and in both with different metadata or content. `glob`
/// (over absolute paths) limits the paths compared.
pub fn file_changes(a: &MergedFs, b: &MergedFs, glob: Option<&globset::GlobMatcher>) -> FilesDiff {
    let keep = |p: &str| glob.is_none_or(|g| g.is_match(ImagePath::from_rel(p).as_str()));
    let mut out = FilesDiff::default();
    let mut ia = a.iter().peekable();
    let mut ib = b.iter().peekable();
    loop {
        let ord = match (ia.peek(), ib.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((pa, _)), Some((pb, _))) => pa.cmp(pb),
        };
        let (path, x, y) = match ord {
            Ordering::Less => {
                let (p, n) = ia.next().expect("peeked");
                (p, Some(n), None)
            }
            Ordering::Greater => {
                let (p, n) = ib.next().expect("peeked");
                (p, None, Some(n))
            }
            Ordering::Equal => {
                let (p, n) = ia.next().expect("peeked");
                let (_, m) = ib.next().expect("peeked");
                (p, Some(n), Some(m))
            }
        };
        if !keep(path) {
            continue;
        }
        let (change, f) = match (x, y) {
            (Some(x), Some(y)) => {
                let f = fields(x, y);
                if f.is_empty() {
                    continue;
                }
                out.changed += 1;
                out.changed_bytes_delta += i64::try_from(y.size).unwrap_or(i64::MAX)
                    - i64::try_from(x.size).unwrap_or(i64::MAX);
                (Change::Changed, f)
            }
            (Some(x), None) => {
                out.removed += 1;
                out.removed_bytes += x.size;
                (Change::Removed, Vec::new())
            }
            (None, Some(y)) => {
                out.added += 1;
                out.added_bytes += y.size;
                (Change::Added, Vec::new())
            }
            (None, None) => continue,
        };
        out.entries.push(FileChange {
            path: ImagePath::from_rel(path),
            change,
            fields: f,
            a: x.map(FileMeta::from_node),
            b: y.map(FileMeta::from_node),
        });
    }
    out
}
