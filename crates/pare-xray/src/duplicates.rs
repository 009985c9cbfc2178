//! Duplicate contents: visible regular files with the same size and content hash, found in
//! two passes over the merged view so that no path is held for a group that is not listed.

use std::collections::HashMap;

use pare_image::ImagePath;
use pare_layerfs::{Kind, MergedFs, Node};

use crate::Duplicate;

/// Most paths one duplicate group lists (the first in path order); the rest are counted in
/// [`Duplicate::paths_omitted`], so a layer of a million identical files does not put a
/// million paths into memory and the report.
pub const MAX_DUPLICATE_PATHS: usize = 1000;

/// The (size, hash) key of a file that can have duplicates: a regular, non-empty, hashed file.
/// Hard links are not duplicates (their kind is not `File`).
fn key(n: &Node) -> Option<(u64, u64)> {
    match (n.kind, n.hash) {
        (Kind::File, Some(h)) if n.size > 0 => Some((n.size, h)),
        _ => None,
    }
}

/// One group found in the first pass: its wasted bytes, key and number of copies.
struct Group {
    wasted: u64,
    key: (u64, u64),
    copies: u64,
}

/// The `top` groups that would save the most (ties by their first path), and the bytes all
/// groups would save.
pub(crate) fn duplicates(fs: &MergedFs, top: usize) -> (Vec<Duplicate>, u64) {
    // First pass: only the keys (16 bytes a file), sorted into groups.
    let mut keys: Vec<(u64, u64)> = fs.iter().filter_map(|(_, n)| key(n)).collect();
    keys.sort_unstable();
    let mut total = 0;
    let mut groups: Vec<Group> = Vec::new();
    for g in keys.chunk_by(|a, b| a == b) {
        if g.len() < 2 {
            continue;
        }
        let copies = g.len() as u64;
        let wasted = g[0].0 * (copies - 1);
        total += wasted;
        groups.push(Group {
            wasted,
            key: g[0],
            copies,
        });
    }
    drop(keys);
    if top == 0 || groups.is_empty() {
        return (Vec::new(), total);
    }
    // Keep the groups that can be listed: those saving at least as much as the `top`-th
    // (its ties included, which the first paths below order).
    groups.sort_unstable_by_key(|g| std::cmp::Reverse(g.wasted));
    if let Some(cut) = groups.get(top - 1).map(|g| g.wasted) {
        groups.retain(|g| g.wasted >= cut);
    }
    // Second pass: the paths of the kept groups, in path order.
    let slot: HashMap<(u64, u64), usize> =
        groups.iter().enumerate().map(|(i, g)| (g.key, i)).collect();
    let mut paths: Vec<Vec<ImagePath>> = vec![Vec::new(); groups.len()];
    for (p, n) in fs.iter() {
        if let Some(&i) = key(n).and_then(|k| slot.get(&k)) {
            if paths[i].len() < MAX_DUPLICATE_PATHS {
                paths[i].push(ImagePath::from_rel(p));
            }
        }
    }
    let mut out: Vec<Duplicate> = groups
        .into_iter()
        .zip(paths)
        .map(|(g, paths)| Duplicate {
            size: g.key.0,
            hash: format!("{:016x}", g.key.1),
            paths_omitted: g.copies - paths.len() as u64,
            paths,
            wasted_bytes: g.wasted,
        })
        .collect();
    // Groups' path sets are disjoint, so the first paths decide a tie.
    out.sort_by(|a, b| {
        b.wasted_bytes
            .cmp(&a.wasted_bytes)
            .then_with(|| a.paths.cmp(&b.paths))
    });
    out.truncate(top);
    (out, total)
}
