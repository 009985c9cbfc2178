//! The package database of the packages that own kept files, so scanners still see them:
//! dpkg's trimmed `/var/lib/dpkg/status` plus trimmed `info/PKG.list` and `.md5sums`
//! (generated content), distroless's `status.d/PKG` files, and Alpine's trimmed
//! `/lib/apk/db/installed`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use pare_image::ImagePath;

use crate::Reason;
use crate::keep::KeepSet;
use crate::root;

const STATUS: &str = "/var/lib/dpkg/status";
const INFO: &str = "/var/lib/dpkg/info";
const STATUS_D: &str = "/var/lib/dpkg/status.d";

/// Canonicalizes a listed path by resolving its parent directory (cached): dpkg lists
/// `/lib/x86_64-linux-gnu/libc.so.6` while merged-usr puts it under `/usr/lib`.
fn canonical_listed(
    set: &KeepSet,
    cache: &mut HashMap<String, String>,
    listed: &str,
) -> Option<String> {
    let listed = root::normalize(listed);
    let parent = root::parent(&listed)?.to_string();
    let cparent = match cache.get(&parent) {
        Some(c) => c.clone(),
        None => {
            let c = set
                .root()
                .resolve(&parent, true)
                .map(|r| r.path)
                .unwrap_or_else(|_| parent.clone());
            cache.insert(parent.clone(), c.clone());
            c
        }
    };
    Some(format!(
        "{}/{}",
        cparent.trim_end_matches('/'),
        root::file_name(&listed)
    ))
}

/// Kept files and file symlinks, as the owner lookup keys. Directories and symlinks to
/// directories (merged-usr `/lib`, which every package lists as a directory) own nothing.
fn kept_files(set: &KeepSet) -> BTreeSet<String> {
    set.paths()
        .filter(|p| match set.root().lstat(p) {
            Some(m) if m.file_type().is_symlink() => !set
                .root()
                .resolve(p, true)
                .is_ok_and(|r| r.exists && set.root().lstat(&r.path).is_some_and(|m| m.is_dir())),
            Some(m) => !m.is_dir(),
            None => false,
        })
        .cloned()
        .collect()
}

/// Keeps the package database entries of the packages that own kept files, trimmed to them.
pub fn trim(set: &mut KeepSet) {
    let kept = kept_files(set);
    apk(set, &kept);
    let mut cache = HashMap::new();
    // package (as named by its list file, maybe `pkg:arch`) → one kept file it owns.
    let mut owners: BTreeMap<String, String> = BTreeMap::new();

    if set.root().lstat(STATUS).is_some_and(|m| m.is_file()) {
        for name in set.list_dir(INFO) {
            let Some(pkg) = name.strip_suffix(".list") else {
                continue;
            };
            let Ok(text) = std::fs::read_to_string(set.root().host(&format!("{INFO}/{name}")))
            else {
                continue;
            };
            for line in text.lines() {
                if let Some(c) = canonical_listed(set, &mut cache, line.trim())
                    && kept.contains(&c)
                {
                    owners.entry(pkg.to_string()).or_insert(c);
                    break;
                }
            }
        }
        if !owners.is_empty() {
            let Ok(status) = std::fs::read(set.root().host(STATUS)) else {
                return;
            };
            let status = String::from_utf8_lossy(&status);
            let mut out = String::new();
            let mut kept_pkgs = Vec::new();
            for stanza in status.split("\n\n") {
                let field = |f: &str| {
                    stanza.lines().find_map(|l| {
                        l.strip_prefix(f)
                            .and_then(|r| r.strip_prefix(':'))
                            .map(|v| v.trim().to_string())
                    })
                };
                let (Some(pkg), arch) = (field("Package"), field("Architecture")) else {
                    continue;
                };
                let qualified = arch.map(|a| format!("{pkg}:{a}"));
                let hit = owners
                    .get(&pkg)
                    .or_else(|| qualified.as_ref().and_then(|q| owners.get(q)));
                if let Some(file) = hit {
                    let s = stanza.trim_matches('\n');
                    out.push_str(s);
                    out.push_str("\n\n");
                    kept_pkgs.push((pkg, file.clone()));
                }
            }
            if let Some((pkg, file)) = kept_pkgs.first().cloned()
                && set
                    .keep(
                        STATUS,
                        Reason::Dpkg {
                            package: pkg,
                            file: ImagePath::clamped(&file),
                        },
                    )
                    .is_some()
            {
                set.generate(STATUS.to_string(), out.into_bytes());
            }
            // The file lists, trimmed to what the slim image has, so that scanners map files to
            // packages correctly and the lists of big packages do not bloat the image.
            let mut present: HashSet<String> = HashSet::new();
            for p in set.paths() {
                let mut cur = Some(p.as_str());
                while let Some(c) = cur {
                    if !present.insert(c.to_string()) {
                        break;
                    }
                    cur = root::parent(c);
                }
            }
            for (listname, file) in &owners {
                for ext in ["list", "md5sums"] {
                    let p = format!("{INFO}/{listname}.{ext}");
                    let Ok(text) = std::fs::read(set.root().host(&p)) else {
                        continue;
                    };
                    let text = String::from_utf8_lossy(&text).into_owned();
                    let mut trimmed = String::new();
                    for line in text.lines() {
                        let listed = if ext == "list" {
                            line.trim().to_string()
                        } else {
                            line.split_once("  ")
                                .map(|(_, f)| format!("/{f}"))
                                .unwrap_or_default()
                        };
                        if listed.is_empty() {
                            continue;
                        }
                        if canonical_listed(set, &mut cache, &listed)
                            .is_some_and(|c| present.contains(&c))
                            || listed == "/."
                        {
                            trimmed.push_str(line);
                            trimmed.push('\n');
                        }
                    }
                    if set
                        .keep(
                            &p,
                            Reason::Dpkg {
                                package: listname.clone(),
                                file: ImagePath::clamped(file),
                            },
                        )
                        .is_some()
                    {
                        set.generate(p, trimmed.into_bytes());
                    }
                }
            }
        }
    }

    // distroless: status.d/PKG (one stanza) and PKG.md5sums ("md5  path" without leading /).
    if set.root().lstat(STATUS_D).is_some_and(|m| m.is_dir()) {
        for name in set.list_dir(STATUS_D) {
            let Some(pkg) = name.strip_suffix(".md5sums") else {
                continue;
            };
            let Ok(text) = std::fs::read_to_string(set.root().host(&format!("{STATUS_D}/{name}")))
            else {
                continue;
            };
            let owned = text.lines().find_map(|l| {
                let p = l.split_once("  ").map(|(_, p)| p).unwrap_or("");
                canonical_listed(set, &mut cache, &format!("/{p}")).filter(|c| kept.contains(c))
            });
            if let Some(file) = owned {
                for p in [format!("{STATUS_D}/{pkg}"), format!("{STATUS_D}/{name}")] {
                    if set.root().lstat(&p).is_some() {
                        set.keep(
                            &p,
                            Reason::Dpkg {
                                package: pkg.to_string(),
                                file: ImagePath::clamped(&file),
                            },
                        );
                    }
                }
            }
        }
    }
}

const APK_INSTALLED: &str = "/lib/apk/db/installed";

/// Alpine: keeps the `installed` stanzas (`P:` name, `F:` folder, `R:` file) of the packages
/// that own a kept file.
fn apk(set: &mut KeepSet, kept: &BTreeSet<String>) {
    let Ok(res) = set.root().resolve(APK_INSTALLED, true) else {
        return;
    };
    if !res.exists {
        return;
    }
    let Ok(text) = std::fs::read(set.root().host(&res.path)) else {
        return;
    };
    let text = String::from_utf8_lossy(&text).into_owned();
    let mut cache = HashMap::new();
    let mut out = String::new();
    let mut first: Option<(String, String)> = None;
    for stanza in text.split("\n\n") {
        let mut name = String::new();
        let mut folder = String::new();
        let mut owned = None;
        for line in stanza.lines() {
            if let Some(v) = line.strip_prefix("P:") {
                name = v.to_string();
            } else if let Some(v) = line.strip_prefix("F:") {
                folder = v.to_string();
            } else if let Some(v) = line.strip_prefix("R:")
                && owned.is_none()
                && let Some(c) = canonical_listed(set, &mut cache, &format!("/{folder}/{v}"))
                && kept.contains(&c)
            {
                owned = Some(c);
            }
        }
        if let Some(file) = owned {
            out.push_str(stanza.trim_matches('\n'));
            out.push_str("\n\n");
            first.get_or_insert((name, file));
        }
    }
    if let Some((package, file)) = first
        && let Some(c) = set.keep(
            APK_INSTALLED,
            Reason::Dpkg {
                package,
                file: ImagePath::clamped(&file),
            },
        )
    {
        set.generate(c, out.into_bytes());
    }
}
