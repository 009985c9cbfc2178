//! Ways forward for errors: which transport a path needs, what to try when an image is not
//! found or the daemon does not answer. Read by the binary, which prints at most one `hint:`.

use std::path::Path;

use crate::SourceError;

/// The reference to use for a file system path typed where an image name was expected:
/// `oci:DIR` for an OCI layout directory, `docker-archive:FILE` for a `docker save` tar,
/// `oci-archive:FILE` for a tar of an OCI layout. `None` when the path does not exist or is
/// none of these.
pub fn suggest_reference(path: &str) -> Option<String> {
    let p = Path::new(path);
    if p.is_dir() {
        let is_layout = p.join("oci-layout").is_file() || p.join("index.json").is_file();
        return is_layout.then(|| format!("oci:{path}"));
    }
    if !p.is_file() {
        return None;
    }
    let file = std::fs::File::open(p).ok()?;
    let mut archive = tar::Archive::new(file);
    let (mut manifest, mut index) = (false, false);
    // The top-level names are enough; stop after a bounded number of entries.
    for entry in archive.entries().ok()?.take(10_000) {
        let entry = entry.ok()?;
        let name = entry.path().ok()?.to_string_lossy().into_owned();
        match name.trim_start_matches("./") {
            "manifest.json" => manifest = true,
            "index.json" | "oci-layout" => index = true,
            _ => {}
        }
        if manifest {
            break;
        }
    }
    if manifest {
        Some(format!("docker-archive:{path}"))
    } else if index {
        Some(format!("oci-archive:{path}"))
    } else {
        None
    }
}

/// What a reference error's path probably is, as a hint.
pub fn reference_hint(e: &pare_reference::ReferenceError) -> Option<String> {
    match e {
        pare_reference::ReferenceError::Path { reference } => match suggest_reference(reference) {
            Some(r) => Some(format!("use {r}")),
            None if !Path::new(reference).exists() => Some(format!(
                "{reference} does not exist; files need a transport: oci:DIR, docker-archive:FILE or oci-archive:FILE"
            )),
            None => e.hint(),
        },
        _ => e.hint(),
    }
}

impl SourceError {
    /// A way forward, when there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            SourceError::NotFound { name, .. } => {
                let bare = name.strip_prefix("docker-daemon:")?;
                match suggest_reference(bare) {
                    Some(r) => Some(format!("{bare} is a file here: use {r}")),
                    None => Some(
                        "`docker images` lists the daemon's images; `docker load -i FILE` adds a saved one"
                            .into(),
                    ),
                }
            }
            SourceError::Daemon { .. } => Some(
                "is dockerd running? Without a daemon, read oci:DIR or docker-archive:FILE inputs \
                 (`docker save`, `skopeo copy`)"
                    .into(),
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(dir: &Path, name: &str, entries: &[&str]) -> String {
        let path = dir.join(name);
        let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(2);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, e, &b"{}"[..]).unwrap();
        }
        b.finish().unwrap();
        path.display().to_string()
    }

    #[test]
    fn suggests_the_transport_a_path_needs() {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("layout");
        std::fs::create_dir(&layout).unwrap();
        std::fs::write(layout.join("oci-layout"), "{}").unwrap();
        let l = layout.display().to_string();
        assert_eq!(suggest_reference(&l), Some(format!("oci:{l}")));

        let saved = tar_with(
            dir.path(),
            "app.tar",
            &["blobs/x", "index.json", "manifest.json"],
        );
        assert_eq!(
            suggest_reference(&saved),
            Some(format!("docker-archive:{saved}"))
        );
        let oci = tar_with(dir.path(), "oci.tar", &["oci-layout", "index.json"]);
        assert_eq!(suggest_reference(&oci), Some(format!("oci-archive:{oci}")));

        let plain = dir.path().join("plain");
        std::fs::create_dir(&plain).unwrap();
        assert_eq!(suggest_reference(&plain.display().to_string()), None);
        assert_eq!(suggest_reference("/nonexistent/x"), None);
        let junk = dir.path().join("junk");
        std::fs::write(&junk, "not a tar").unwrap();
        assert_eq!(suggest_reference(&junk.display().to_string()), None);
    }
}
