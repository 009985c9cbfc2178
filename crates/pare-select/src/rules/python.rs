//! Python: `.py` ↔ `.pyc`, and the metadata of the distribution that owns a kept file.

use std::collections::{HashMap, HashSet};

use pare_image::ImagePath;

use crate::Reason;
use crate::keep::KeepSet;
use crate::root;

pub(super) fn python(set: &mut KeepSet, sites: &mut Sites, path: &str) {
    let name = root::file_name(path);
    let Some(dir) = root::parent(path) else {
        return;
    };
    if name.ends_with(".pyc") && root::file_name(dir) == "__pycache__" {
        let module = name.split('.').next().unwrap_or("");
        if let Some(pkg_dir) = root::parent(dir) {
            let src = format!("{}/{module}.py", pkg_dir.trim_end_matches('/'));
            if set.root().lstat(&src).is_some() {
                set.keep(
                    &src,
                    Reason::PythonSource {
                        pyc: ImagePath::clamped(path),
                    },
                );
            }
        }
    } else if let Some(module) = name.strip_suffix(".py") {
        let cache = format!("{}/__pycache__", dir.trim_end_matches('/'));
        let prefix = format!("{module}.");
        for n in set.list_dir(&cache) {
            if n.starts_with(&prefix)
                && n.ends_with(".pyc")
                && n[prefix.len()..].starts_with("cpython-")
            {
                set.keep(
                    &format!("{cache}/{n}"),
                    Reason::PythonBytecode {
                        py: ImagePath::clamped(path),
                    },
                );
            }
        }
    }
    distribution(set, sites, path);
}

/// The distributions of each site dir seen so far (site dir → its index), read once.
#[derive(Default)]
pub struct Sites(HashMap<String, Vec<DistIndex>>);

/// One installed distribution's metadata directory and what it owns.
#[derive(Debug, Clone, Default)]
struct DistIndex {
    /// Directory name, e.g. `Flask-3.0.0.dist-info`.
    name: String,
    /// Top-level import names (`top_level.txt`, or derived from RECORD).
    tops: HashSet<String>,
    /// Files it installed, relative to the site dir (`RECORD`, `installed-files.txt`).
    files: HashSet<String>,
}

/// Reads every `*.dist-info` / `*.egg-info` of a site dir once.
fn index_site(set: &mut KeepSet, site: &str) -> Vec<DistIndex> {
    let mut out = Vec::new();
    for dist in set.list_dir(site) {
        if !(dist.ends_with(".dist-info") || dist.ends_with(".egg-info")) {
            continue;
        }
        let dpath = format!("{site}/{dist}");
        let read = |f: &str| {
            std::fs::read_to_string(set.root().host(&format!("{dpath}/{f}"))).unwrap_or_default()
        };
        let mut d = DistIndex {
            name: dist.clone(),
            ..Default::default()
        };
        d.tops.extend(
            read("top_level.txt")
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty()),
        );
        for line in read("RECORD").lines() {
            let f = line.split(',').next().unwrap_or("").to_string();
            if let Some(top) = f
                .split('/')
                .next()
                .filter(|t| !t.ends_with(".dist-info") && !t.starts_with(".."))
            {
                let top = top.strip_suffix(".py").unwrap_or(top);
                if !top.contains('.') && !top.is_empty() && top != "__pycache__" {
                    d.tops.insert(top.to_string());
                }
            }
            d.files.insert(f);
        }
        for line in read("installed-files.txt").lines() {
            let rel = root::normalize(&format!("{dpath}/{}", line.trim()));
            if let Some(r) = rel.strip_prefix(site).and_then(|r| r.strip_prefix('/')) {
                d.files.insert(r.to_string());
            }
        }
        if d.tops.is_empty() && d.files.is_empty() {
            // Bare metadata (PKG-INFO only): guess the import name from the directory name.
            let n = dist
                .split(['-', '.'])
                .next()
                .unwrap_or("")
                .to_lowercase()
                .replace('-', "_");
            if !n.is_empty() {
                d.tops.insert(n);
            }
        }
        out.push(d);
    }
    out
}

/// Keeps the `*.dist-info` / `*.egg-info` of the distribution that owns `path`.
fn distribution(set: &mut KeepSet, sites: &mut Sites, path: &str) {
    let comps: Vec<&str> = path.split('/').collect();
    let Some(i) = comps
        .iter()
        .rposition(|c| *c == "site-packages" || *c == "dist-packages")
    else {
        return;
    };
    let Some(top) = comps.get(i + 1) else { return };
    if top.ends_with(".dist-info") || top.ends_with(".egg-info") || *top == "__pycache__" {
        return;
    }
    let site = comps[..=i].join("/");
    let top_name = top.split('.').next().unwrap_or(top).to_string();
    let rel = comps[i + 1..].join("/");
    let owners: Vec<String> = sites
        .0
        .entry(site.clone())
        .or_insert_with(|| index_site(set, &site))
        .iter()
        .filter(|d| {
            d.tops.contains(&top_name)
                || d.tops.contains(&top_name.to_lowercase())
                || d.files.contains(&rel)
        })
        .map(|d| d.name.clone())
        .collect();
    for dist in owners {
        let dpath = format!("{site}/{dist}");
        if !set.contains(&dpath) {
            set.keep_tree(
                &dpath,
                Reason::PythonDistribution {
                    file: ImagePath::clamped(path),
                    distribution: dist,
                },
            );
        }
    }
}
