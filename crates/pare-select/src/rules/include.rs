//! `--include-path` and `--preserve-path` globs.

use globset::GlobBuilder;

use crate::Reason;
use crate::keep::KeepSet;
use crate::root;

/// Keeps whatever matches an `--include-path`/`--preserve-path` glob; directories whole.
pub fn include_glob(set: &mut KeepSet, pattern: &str, reason: Reason) {
    let pat = root::normalize(pattern);
    let meta = |c: char| matches!(c, '*' | '?' | '[' | '{');
    if !pat.contains(meta) {
        if set.root().resolve(&pat, true).is_ok_and(|r| r.exists) {
            set.keep_tree(&pat, reason);
        } else {
            set.warn(format!("{reason}: {pat} is not in the image"));
        }
        return;
    }
    let Ok(m) = GlobBuilder::new(&pat)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
    else {
        return;
    };
    // Walk from the longest literal prefix.
    let prefix: Vec<&str> = pat
        .split('/')
        .skip(1)
        .take_while(|c| !c.contains(meta))
        .collect();
    let typed_prefix = format!("/{}", prefix.join("/"));
    let Ok(res) = set.root().resolve(&typed_prefix, true) else {
        return;
    };
    if !res.exists {
        return;
    }
    let host = set.root().host(&res.path);
    let mut hits = Vec::new();
    let mut walker = walkdir::WalkDir::new(&host)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter();
    while let Some(Ok(entry)) = walker.next() {
        let Ok(rel) = entry.path().strip_prefix(&host) else {
            continue;
        };
        let Some(rel) = rel.to_str() else { continue };
        if rel.is_empty() {
            continue;
        }
        let typed = root::normalize(&format!("{typed_prefix}/{rel}"));
        let canonical = root::normalize(&format!("{}/{rel}", res.path));
        if m.is_match(&typed) || m.is_match(&canonical) {
            hits.push(typed);
            if entry.file_type().is_dir() {
                walker.skip_current_dir();
            }
        }
    }
    if hits.is_empty() {
        set.warn(format!("{reason}: nothing in the image matches"));
    }
    for h in hits {
        set.keep_tree(&h, reason.clone());
    }
}
