//! Selections over a whole directory, and layers saved as they are.

use std::io::{Read, Write};
use std::path::Path;

use pare_image::ImagePath;
use pare_select::{Kept, Selection};
use pare_write::KeptLayer;
use sha2::{Digest, Sha256};

use crate::{PackError, io_err};

/// Every path under `root` (not following symlinks), parents first.
pub fn all_paths(root: &Path) -> Result<Vec<ImagePath>, PackError> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root).follow_links(false).min_depth(1) {
        let e = e.map_err(|e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            PackError::Io {
                path,
                source: e.into(),
            }
        })?;
        let rel = e.path().strip_prefix(root).unwrap_or(e.path());
        out.push(ImagePath::from_rel(&rel.to_string_lossy()));
    }
    Ok(out)
}

/// A selection of `paths` and all their parent directories.
pub fn selection_of<'a>(paths: impl IntoIterator<Item = &'a ImagePath>) -> Selection {
    let mut sel = Selection::default();
    for p in paths {
        let mut cur = Some(p.clone());
        while let Some(c) = cur.filter(|c| !c.is_root()) {
            if sel.entries.contains_key(&c) {
                break;
            }
            cur = c.parent();
            sel.entries.insert(c, Kept::default());
        }
    }
    sel
}

/// Copies a layer's uncompressed tar into `dest` as it streams (the source verifies its
/// digests at the end), returning it as a layer to keep below the written one.
pub fn save_layer(
    content: pare_source::LayerContent,
    digest: &str,
    dest: &Path,
) -> Result<KeptLayer, PackError> {
    let pare_source::LayerContent::Tar(mut r) = content else {
        return Err(PackError::Base {
            reference: digest.to_string(),
            reason: "the layer is a directory, not a tar (open the image without direct storage)"
                .into(),
        });
    };
    let mut f = std::io::BufWriter::new(std::fs::File::create(dest).map_err(io_err(dest))?);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = r.read(&mut buf).map_err(io_err(dest))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        f.write_all(&buf[..n]).map_err(io_err(dest))?;
        size += n as u64;
    }
    f.flush().map_err(io_err(dest))?;
    Ok(KeptLayer {
        file: dest.to_path_buf(),
        diff_id: pare_image::digest::sha256(&h.finalize().into()).to_string(),
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_has_every_parent() {
        let paths = ["/a/b/c", "/a/d", "/e"].map(|p| p.parse::<ImagePath>().unwrap());
        let sel = selection_of(&paths);
        let keys: Vec<&str> = sel.entries.keys().map(ImagePath::as_str).collect();
        assert_eq!(keys, ["/a", "/a/b", "/a/b/c", "/a/d", "/e"]);
    }

    #[test]
    fn saved_layer_digest_is_the_sha256_of_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = b"not really a tar".to_vec();
        let kept = save_layer(
            pare_source::LayerContent::Tar(Box::new(std::io::Cursor::new(bytes.clone()))),
            "sha256:x",
            &dir.path().join("l.tar"),
        )
        .unwrap();
        assert_eq!(kept.size, bytes.len() as u64);
        assert_eq!(
            kept.diff_id,
            format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))
        );
        assert_eq!(std::fs::read(&kept.file).unwrap(), bytes);
    }
}
