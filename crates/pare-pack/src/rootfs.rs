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
        diff_id: format!("sha256:{}", hex::encode(h.finalize())),
        size,
    })
}

/// Creates the visible device nodes and FIFOs of `full` in `rootfs`, which extraction leaves
/// out, with the numbers their layer stores (a tar header, or an overlay2 file's `rdev`).
/// Returns how many were made; without the privilege to `mknod`, none are (as extraction).
pub fn make_devices(
    source: &dyn pare_layerfs::ImageSource,
    full: &pare_layerfs::MergedFs,
    rootfs: &Path,
) -> Result<usize, PackError> {
    use pare_layerfs::Kind;
    use std::collections::{BTreeMap, BTreeSet};
    let mut wanted: BTreeMap<u16, BTreeSet<&str>> = BTreeMap::new();
    for (path, node) in full.iter() {
        if matches!(node.kind, Kind::CharDevice | Kind::BlockDevice | Kind::Fifo) {
            wanted.entry(node.layer).or_default().insert(path);
        }
    }
    let mut made = 0;
    for (layer, paths) in wanted {
        let i = usize::from(layer);
        let digest = source
            .image()
            .layers
            .get(i)
            .map(|l| l.digest.clone())
            .unwrap_or_default();
        let source_err = |source| PackError::Source {
            reference: digest.clone(),
            source: Box::new(source),
        };
        let mut found: Vec<(String, u32, u32, u32, u64)> = Vec::new(); // path, kind, mode, uid/gid, rdev
        match source.open_layer(i).map_err(source_err)? {
            pare_source::LayerContent::Tar(r) => {
                let mut ar = tar::Archive::new(r);
                let tar_err = |e: std::io::Error| PackError::Io {
                    path: digest.clone().into(),
                    source: e,
                };
                for e in ar.entries().map_err(tar_err)? {
                    let e = e.map_err(tar_err)?;
                    let h = e.header();
                    let Ok(p) = pare_layerfs::normalize(&e.path_bytes()) else {
                        continue;
                    };
                    if !paths.contains(p.as_str()) {
                        continue;
                    }
                    let kind = match h.entry_type() {
                        tar::EntryType::Char => libc::S_IFCHR,
                        tar::EntryType::Block => libc::S_IFBLK,
                        tar::EntryType::Fifo => libc::S_IFIFO,
                        _ => continue,
                    };
                    let major = h.device_major().ok().flatten().unwrap_or(0);
                    let minor = h.device_minor().ok().flatten().unwrap_or(0);
                    let mode = h.mode().unwrap_or(0o600);
                    let dev = libc::makedev(major, minor);
                    found.push((p, kind, mode, 0, dev));
                }
            }
            pare_source::LayerContent::OverlayDir(dir) => {
                use std::os::unix::fs::{FileTypeExt, MetadataExt};
                for p in &paths {
                    let Ok(md) = std::fs::symlink_metadata(dir.join(p)) else {
                        continue;
                    };
                    let ft = md.file_type();
                    let kind = if ft.is_char_device() {
                        libc::S_IFCHR
                    } else if ft.is_block_device() {
                        libc::S_IFBLK
                    } else if ft.is_fifo() {
                        libc::S_IFIFO
                    } else {
                        continue;
                    };
                    found.push((p.to_string(), kind, md.mode() & 0o7777, 0, md.rdev()));
                }
            }
        }
        for (p, kind, mode, _, dev) in found {
            let dest = rootfs.join(&p);
            let node = full.get(&p);
            if dest.parent().is_none_or(|d| !d.is_dir()) || std::fs::symlink_metadata(&dest).is_ok()
            {
                continue;
            }
            let mode = node.map(|n| n.mode).unwrap_or(mode & 0o7777);
            if nix::sys::stat::mknod(
                &dest,
                nix::sys::stat::SFlag::from_bits_truncate(kind),
                nix::sys::stat::Mode::from_bits_truncate(mode),
                dev,
            )
            .is_err()
            {
                continue; // not root: left out, as extraction does
            }
            // mknod applies the umask; the owner and mode are the layer's.
            let _ =
                std::fs::set_permissions(&dest, std::os::unix::fs::PermissionsExt::from_mode(mode));
            if let Some(n) = node {
                let _ = std::os::unix::fs::lchown(&dest, Some(n.uid), Some(n.gid));
            }
            made += 1;
        }
    }
    Ok(made)
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
