//! The explorer's tree against a plain model of it: the merged view (pare-layerfs's `MergedFs`)
//! of the lower layers, the selected layer's records or the merged view up to it, the paths its
//! whiteouts and opaque directories remove, and every directory's children, sizes and marks
//! computed from path strings. Random layers (overwrites, kind changes, whiteouts, opaque
//! directories, implicit parents) must give the same entries, marks and tree.

use std::collections::{BTreeMap, HashMap, HashSet};

use pare_layerfs::{Kind, LayerIndex, MergedFs, Record};
use pare_tui::{Image, Mark};
use proptest::prelude::*;

#[derive(Debug, Clone, PartialEq)]
struct E {
    kind: Kind,
    size: u64,
    mode: u32,
    link: Option<String>,
    mark: Mark,
}

fn parent(p: &str) -> &str {
    p.rfind('/').map(|i| &p[..i]).unwrap_or("")
}

fn copy(i: &LayerIndex) -> LayerIndex {
    LayerIndex {
        records: i.records.clone(),
        whiteouts: i.whiteouts.clone(),
        opaques: i.opaques.clone(),
        captured: Vec::new(),
    }
}

/// The entries of the view, as the model sees them.
fn model_entries(layers: &[LayerIndex], layer: usize, aggregated: bool) -> BTreeMap<String, E> {
    let mut lower = MergedFs::new();
    for l in &layers[..layer] {
        lower.apply(copy(l));
    }
    let idx = &layers[layer];
    let e_rec = |r: &Record, mark| E {
        kind: r.kind,
        size: r.size,
        mode: r.mode,
        link: r.link.as_deref().map(str::to_string),
        mark,
    };
    let e_node = |n: &pare_layerfs::Node, mark| E {
        kind: n.kind,
        size: n.size,
        mode: n.mode,
        link: n.link.as_deref().map(str::to_string),
        mark,
    };
    let whiteouts: HashSet<&str> = idx.whiteouts.iter().map(|w| &**w).collect();
    let opaques: HashSet<&str> = idx.opaques.iter().map(|o| &**o).collect();
    let mut removed = Vec::new();
    for (q, n) in lower.iter() {
        let mut gone = whiteouts.contains(q);
        let mut a = q;
        while !gone && !a.is_empty() {
            a = parent(a);
            gone = whiteouts.contains(a) || opaques.contains(a);
        }
        if gone {
            removed.push((q.to_string(), e_node(n, Mark::Removed)));
        }
    }
    let mut entries = BTreeMap::new();
    if aggregated {
        let changed: HashMap<String, bool> = idx
            .records
            .iter()
            .map(|r| (r.path.to_string(), lower.get(&r.path).is_some()))
            .collect();
        let mut upper = lower;
        upper.apply(copy(idx));
        for (p, n) in upper.iter() {
            let mark = match changed.get(p) {
                Some(true) => Mark::Modified,
                Some(false) => Mark::Added,
                None => Mark::Unchanged,
            };
            entries.insert(p.to_string(), e_node(n, mark));
        }
    } else {
        for r in &idx.records {
            let mark = if lower.get(&r.path).is_some() {
                Mark::Modified
            } else {
                Mark::Added
            };
            entries.insert(r.path.to_string(), e_rec(r, mark));
        }
    }
    for (p, e) in removed {
        entries.entry(p).or_insert(e);
    }
    entries
}

/// Children (sorted paths) and (size, marks) of every directory, from the entries' paths.
type Tree = (HashMap<String, Vec<String>>, HashMap<String, (u64, u8)>);

fn bit(m: Mark) -> u8 {
    match m {
        Mark::Added => 1,
        Mark::Modified => 2,
        Mark::Removed => 4,
        Mark::Unchanged => 8,
    }
}

fn model_tree(entries: &BTreeMap<String, E>) -> Tree {
    let mut children: HashMap<String, Vec<String>> = HashMap::new();
    let mut dirs: HashMap<String, (u64, u8)> = HashMap::new();
    let mut linked = HashSet::new();
    for (p, e) in entries {
        let size = if e.kind == Kind::File && e.mark != Mark::Removed {
            e.size
        } else {
            0
        };
        if e.kind == Kind::Dir {
            dirs.entry(p.clone()).or_default();
        }
        let mut node = p.as_str();
        loop {
            let par = parent(node);
            let d = dirs.entry(par.to_string()).or_default();
            d.0 += size;
            d.1 |= bit(e.mark);
            if linked.insert(node.to_string()) {
                children
                    .entry(par.to_string())
                    .or_default()
                    .push(node.to_string());
            }
            if par.is_empty() {
                break;
            }
            node = par;
        }
    }
    for v in children.values_mut() {
        v.sort();
    }
    (children, dirs)
}

fn check(layers: Vec<LayerIndex>) {
    let copies: Vec<LayerIndex> = layers.iter().map(copy).collect();
    let image = Image::from_indexes("model", layers);
    for layer in 0..copies.len() {
        for aggregated in [false, true] {
            let want = model_entries(&copies, layer, aggregated);
            let (children, dirs) = model_tree(&want);
            let view = image.view(layer, aggregated);
            let at = format!("layer {layer}, aggregated {aggregated}");
            let order: Vec<String> = view.entries().iter().map(|&id| view.path(id)).collect();
            let keys: Vec<String> = want.keys().cloned().collect();
            assert_eq!(order, keys, "{at}: entries in path order");
            let got: BTreeMap<String, E> = view
                .entries()
                .iter()
                .map(|&id| {
                    let p = view.path(id);
                    let e = view.entry(id).unwrap();
                    let e = E {
                        kind: e.kind,
                        size: e.size,
                        mode: e.mode,
                        link: e.link.map(str::to_string),
                        mark: e.mark,
                    };
                    (p, e)
                })
                .collect();
            assert_eq!(got, want, "{at}");
            for (dir, kids) in &children {
                let id = view.find(dir).unwrap_or_else(|| panic!("{at}: no {dir}"));
                assert!(view.is_dir(id), "{at}: {dir} is a directory");
                let got: Vec<String> = view.children(id).iter().map(|&k| view.path(k)).collect();
                assert_eq!(&got, kids, "{at}: children of {dir}");
            }
            for (dir, (size, marks)) in &dirs {
                let Some(id) = view.find(dir) else {
                    panic!("{at}: no directory {dir}");
                };
                if dir.is_empty() && !children.contains_key("") {
                    continue; // an empty view's root
                }
                let d = view
                    .dir(id)
                    .unwrap_or_else(|| panic!("{at}: {dir} has no totals"));
                assert_eq!((d.size, d.marks), (*size, *marks), "{at}: totals of {dir}");
            }
            for id in view.parents() {
                let p = view.path(id);
                assert!(children.contains_key(&p), "{at}: {p} has no children");
            }
        }
    }
}

fn rec(path: &str, kind: Kind, size: u64, mode: u32) -> Record {
    Record {
        path: path.into(),
        kind,
        mode,
        uid: 0,
        gid: 0,
        size: if kind == Kind::File { size } else { 0 },
        link: (kind == Kind::Symlink).then(|| "target".into()),
        hash: None,
        capability: false,
    }
}

const PATHS: &[&str] = &[
    "a", "a/b", "a/b/c", "a/b-c", "a/d", "a-b", "e", "e/f", "e/f/g", "h/i",
];

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::File), Just(Kind::Dir), Just(Kind::Symlink)]
}

fn layer() -> impl Strategy<Value = LayerIndex> {
    let records = prop::collection::vec((0..PATHS.len(), kind(), 1..100u64, 0..4u32), 0..8);
    let removals = prop::collection::vec(0..PATHS.len(), 0..2);
    (records, removals.clone(), removals).prop_map(|(records, w, o)| LayerIndex {
        records: records
            .into_iter()
            .map(|(p, k, s, m)| rec(PATHS[p], k, s, 0o640 + m))
            .collect(),
        whiteouts: w.into_iter().map(|p| PATHS[p].into()).collect(),
        opaques: o.into_iter().map(|p| PATHS[p].into()).collect(),
        captured: Vec::new(),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn the_tree_matches_the_merged_view_model(layers in prop::collection::vec(layer(), 1..5)) {
        check(layers);
    }
}

#[test]
fn a_file_over_a_directory_and_a_directory_over_a_file() {
    let l0 = LayerIndex {
        records: vec![
            rec("a", Kind::Dir, 0, 0o755),
            rec("a/x", Kind::File, 5, 0o644),
            rec("f", Kind::File, 7, 0o644),
        ],
        ..Default::default()
    };
    let l1 = LayerIndex {
        records: vec![
            rec("a", Kind::File, 3, 0o644),
            rec("f/y", Kind::File, 2, 0o644),
        ],
        whiteouts: vec!["a/x".into()],
        ..Default::default()
    };
    check(vec![l0, l1]);
}

#[test]
fn a_path_removed_then_listed_then_replaced_by_its_parent_shows_as_removed() {
    let l0 = LayerIndex {
        records: vec![rec("a/d", Kind::File, 1, 0o640)],
        ..Default::default()
    };
    let l1 = LayerIndex {
        records: vec![
            rec("a/d", Kind::File, 2, 0o640),
            rec("a", Kind::Symlink, 0, 0o640),
        ],
        whiteouts: vec!["a/d".into()],
        ..Default::default()
    };
    check(vec![l0, l1]);
}
