//! Node: the `package.json` of the package (or app) a loaded file belongs to.

use pare_image::ImagePath;

use crate::Reason;
use crate::keep::KeepSet;
use crate::root;

pub(super) fn node(set: &mut KeepSet, path: &str) {
    let name = root::file_name(path);
    let is_js = [".js", ".mjs", ".cjs", ".node", ".json"]
        .iter()
        .any(|e| name.ends_with(e));
    if !is_js || name == "package.json" {
        return;
    }
    let reason = Reason::NodePackage {
        file: ImagePath::clamped(path),
    };
    if let Some(idx) = path.rfind("/node_modules/") {
        // Package root: node_modules/NAME or node_modules/@scope/NAME.
        let rest = &path[idx + "/node_modules/".len()..];
        let mut parts = rest.split('/');
        let first = parts.next().unwrap_or("");
        let pkg_len = if first.starts_with('@') {
            first.len() + 1 + parts.next().unwrap_or("").len()
        } else {
            first.len()
        };
        let Some(pkg_root) = path.get(..idx + "/node_modules/".len() + pkg_len) else {
            return;
        };
        let mut dir = root::parent(path);
        while let Some(d) = dir {
            let pj = format!("{}/package.json", d.trim_end_matches('/'));
            if set.root().lstat(&pj).is_some() {
                set.keep(&pj, reason.clone());
            }
            if d.len() <= pkg_root.len() {
                break;
            }
            dir = root::parent(d);
        }
    } else if !name.ends_with(".json") {
        // The app's own package.json: the nearest one above.
        let mut dir = root::parent(path);
        while let Some(d) = dir {
            let pj = format!("{}/package.json", d.trim_end_matches('/'));
            if set.root().lstat(&pj).is_some_and(|m| m.is_file()) {
                set.keep(&pj, reason);
                break;
            }
            dir = root::parent(d);
        }
    }
}
