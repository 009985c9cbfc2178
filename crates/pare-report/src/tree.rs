//! Size trees for the treemaps: directories summed from their files, pruned so a report stays
//! small whatever the image (the biggest children of each directory, the rest folded into one
//! `(N more)` box).

use std::collections::BTreeMap;

use pare_diff::render::printable;
use pare_layerfs::{Kind, MergedFs};
use serde::Serialize;

/// Children kept per directory.
const MAX_CHILDREN: usize = 60;
/// Boxes smaller than this share of the whole are folded.
const MIN_SHARE: f64 = 1.0 / 4000.0;

/// How a path changed, for diff highlighting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Mark {
    /// Only in the new image.
    #[serde(rename = "a")]
    Added,
    /// Only in the old image.
    #[serde(rename = "r")]
    Removed,
    /// In both, different.
    #[serde(rename = "c")]
    Changed,
    /// A directory whose changes are of several kinds.
    #[serde(rename = "m")]
    Mixed,
}

/// One box of a treemap, serialized compactly: `n` name, `s` bytes, `f` files beneath, `k` mark,
/// `c` children.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Tree {
    /// The last path component (`/` for the root).
    #[serde(rename = "n")]
    pub name: String,
    /// Bytes of the files beneath.
    #[serde(rename = "s")]
    pub size: u64,
    /// Files beneath.
    #[serde(rename = "f")]
    pub files: u64,
    /// How it changed (diff trees only).
    #[serde(rename = "k", skip_serializing_if = "Option::is_none")]
    pub mark: Option<Mark>,
    /// Its biggest entries, largest first, then one `(N more)` box for the rest.
    #[serde(rename = "c", skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Tree>,
}

#[derive(Default)]
struct Dir {
    size: u64,
    files: u64,
    mark: Option<Mark>,
    children: BTreeMap<Box<str>, Dir>,
}

fn merge_mark(a: Option<Mark>, b: Option<Mark>) -> Option<Mark> {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(x), Some(y)) if x == y => Some(x),
        _ => Some(Mark::Mixed),
    }
}

/// Collects paths with sizes into a tree.
#[derive(Default)]
pub struct TreeBuilder {
    root: Dir,
}

impl TreeBuilder {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file at a root-relative or absolute path.
    pub fn add(&mut self, path: &str, size: u64, mark: Option<Mark>) {
        let mut d = &mut self.root;
        d.size += size;
        d.files += 1;
        d.mark = merge_mark(d.mark, mark);
        for part in path.split('/').filter(|p| !p.is_empty()) {
            let name = if part.chars().any(char::is_control) {
                printable(part).into()
            } else {
                part.into()
            };
            d = d.children.entry(name).or_default();
            d.size += size;
            d.files += 1;
            d.mark = merge_mark(d.mark, mark);
        }
    }

    /// The visible regular files of a merged filesystem.
    pub fn from_fs(fs: &MergedFs) -> Self {
        let mut b = Self::new();
        for (path, node) in fs.iter() {
            if node.kind == Kind::File {
                b.add(path, node.size, None);
            }
        }
        b
    }

    /// The pruned tree, rooted at `/`.
    pub fn finish(self) -> Tree {
        let min = (self.root.size as f64 * MIN_SHARE) as u64;
        convert("/".into(), self.root, min)
    }
}

fn convert(name: String, d: Dir, min: u64) -> Tree {
    let mut kids: Vec<(Box<str>, Dir)> = d.children.into_iter().collect();
    kids.sort_by(|a, b| b.1.size.cmp(&a.1.size).then_with(|| a.0.cmp(&b.0)));
    let mut children = Vec::new();
    let (mut rest_n, mut rest_size, mut rest_files, mut rest_mark) = (0u64, 0, 0, None);
    for (i, (n, c)) in kids.into_iter().enumerate() {
        if i < MAX_CHILDREN && c.size >= min.max(1) {
            children.push(convert(n.into(), c, min));
        } else {
            rest_n += 1;
            rest_size += c.size;
            rest_files += c.files;
            rest_mark = merge_mark(rest_mark, c.mark);
        }
    }
    if rest_n > 0 && rest_size > 0 {
        children.push(Tree {
            name: format!("({rest_n} more)"),
            size: rest_size,
            files: rest_files,
            mark: rest_mark,
            children: Vec::new(),
        });
    }
    Tree {
        name,
        size: d.size,
        files: d.files,
        mark: d.mark,
        children,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_folds() {
        let mut b = TreeBuilder::new();
        b.add("usr/lib/a", 100, None);
        b.add("usr/lib/b", 50, Some(Mark::Added));
        b.add("etc/x", 10, Some(Mark::Removed));
        for i in 0..100 {
            b.add(&format!("many/f{i}"), 1, None);
        }
        let t = b.finish();
        assert_eq!(t.size, 260);
        assert_eq!(t.children[0].name, "usr");
        assert_eq!(t.children[0].size, 150);
        assert_eq!(t.children[0].mark, Some(Mark::Added));
        assert_eq!(t.mark, Some(Mark::Mixed));
        let many = t.children.iter().find(|c| c.name == "many").unwrap();
        assert_eq!(many.children.len(), MAX_CHILDREN + 1);
        assert_eq!(many.children.last().unwrap().name, "(40 more)");
        assert_eq!(many.children.last().unwrap().size, 40);
    }
}
