//! The deterministic layer tar.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use pare_image::Digest;
use sha2::{Digest as _, Sha256};
use tar::{EntryType, Header};

use pare_image::ImagePath;
use pare_select::Selection;
use pare_select::root::Rootfs;

use crate::WriteError;

/// Fixed gzip level: same input, same bytes (for one zlib-rs version), see [`crate::pgzip`].
pub const GZIP_LEVEL: u32 = 6;

/// Facts about a written layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// `sha256:…` of the uncompressed tar (the config's diff_id).
    pub diff_id: Digest,
    /// `sha256:…` of the gzip blob.
    pub digest: Digest,
    /// Bytes of the gzip blob (the manifest's layer `size`).
    pub size: u64,
    /// Bytes of the uncompressed tar, padding and end-of-archive blocks included.
    pub uncompressed_size: u64,
    /// Entries written (directories, files, links…).
    pub entries: u64,
    /// Of those, hardlink entries.
    pub hardlinks: u64,
}

/// A writer that hashes and counts what goes through it.
pub(crate) struct Hashing<W> {
    pub inner: W,
    pub hasher: Sha256,
    pub n: u64,
}

impl<W> Hashing<W> {
    pub fn new(inner: W) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            n: 0,
        }
    }
    pub fn digest(&self) -> Digest {
        pare_image::digest::sha256(&self.hasher.clone().finalize().into())
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.hasher.update(&buf[..k]);
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads exactly `remaining` bytes or fails (a file that shrank since `lstat`).
struct Exact<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(self.remaining.min(usize::MAX as u64) as usize);
        let k = self.inner.read(&mut buf[..max])?;
        if k == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being written",
            ));
        }
        self.remaining -= k as u64;
        Ok(k)
    }
}

/// Orders paths component by component (`/a/b` < `/a/b/c` < `/a/b-c`), which puts every
/// parent before its children.
pub fn path_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.split('/').cmp(b.split('/'))
}

/// The PAX extended header records (`"<len> key=value\n"` each) for `records`, encoded by
/// the tar crate's [`tar::Builder::append_pax_extensions`]. That call writes its own header
/// block (no name, mode 0, mtime 0) in front; this layer's extended headers have always been
/// named `PaxHeaders/<base>` with mode 0644 and the layer mtime, and changing that would
/// change the digest of every layer with a long path, a long link target or an xattr. So
/// only the crate's records are taken (the data after its header block), and the header
/// stays ours.
fn pax_records(records: &[(String, Vec<u8>)]) -> io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
    let block = b.into_inner()?;
    let size = match block.get(..512) {
        Some(h) => Header::from_byte_slice(h).entry_size()?,
        None => 0,
    };
    Ok(block
        .get(512..512 + usize::try_from(size).unwrap_or(0))
        .unwrap_or_default()
        .to_vec())
}

/// Stores `name` in the ustar name/prefix fields; false when it does not fit.
fn set_ustar_name(h: &mut Header, name: &[u8]) -> bool {
    let Some(u) = h.as_ustar_mut() else {
        return false;
    };
    u.name = [0; 100];
    u.prefix = [0; 155];
    if name.len() <= 100 {
        u.name[..name.len()].copy_from_slice(name);
        return true;
    }
    // Split at a '/' so that prefix ≤ 155 and name ≤ 100.
    for (i, &c) in name.iter().enumerate() {
        if c == b'/' && i <= 155 && name.len() - i - 1 <= 100 && name.len() - i - 1 > 0 {
            u.prefix[..i].copy_from_slice(&name[..i]);
            u.name[..name.len() - i - 1].copy_from_slice(&name[i + 1..]);
            return true;
        }
    }
    // Truncated: the PAX `path` record carries the real name.
    u.name.copy_from_slice(&name[..100]);
    false
}

/// A fresh, normalized ustar header.
fn header(kind: EntryType, mode: u32, uid: u64, gid: u64, mtime: u64, size: u64) -> Header {
    let mut h = Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode & 0o7777);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_mtime(mtime);
    h.set_size(size);
    h
}

/// Xattrs worth keeping in an image: file capabilities and `user.*` (not overlayfs' own).
/// Sorted by name.
fn xattrs(host: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(names) = xattr::list(host) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = names
        .filter_map(|n| n.to_str().map(str::to_string))
        .filter(|n| {
            n == "security.capability"
                || (n.starts_with("user.") && !n.starts_with("user.overlay."))
        })
        .filter_map(|n| xattr::get(host, &n).ok().flatten().map(|v| (n, v)))
        .collect();
    out.sort();
    out
}

const MAX_USTAR_SIZE: u64 = 0o77777777777;
const MAX_USTAR_ID: u64 = 0o7777777;

/// Writes the selection as one layer tar into `w` (uncompressed). Returns entry counts.
pub(crate) fn write_tar<W: Write>(
    rootfs: &Path,
    sel: &Selection,
    mtime: u64,
    w: W,
) -> Result<(W, u64, u64), WriteError> {
    let root = Rootfs::new(rootfs).map_err(|e| WriteError::Rootfs {
        path: rootfs.to_path_buf(),
        reason: pare_progress::chain(&e),
    })?;
    let mut paths: Vec<&ImagePath> = sel.entries.keys().chain(sel.created_dirs.keys()).collect();
    paths.sort_by(|a, b| path_order(a, b));
    paths.dedup();
    let mut tar = tar::Builder::new(w);
    let mut first_of_inode: HashMap<(u64, u64), String> = HashMap::new();
    let (mut entries, mut hardlinks) = (0u64, 0u64);
    let io_err = |path: &str| {
        let path = path.to_string();
        move |source: io::Error| WriteError::Io {
            path: path.clone().into(),
            source,
        }
    };
    for path in paths {
        if path.is_root() {
            continue;
        }
        // The selection may come from an edited report.json: only canonical paths, which
        // cannot leave the rootfs through `..` or a symlinked parent.
        let canonical = root
            .resolve(path, false)
            .map(|r| r.path == path.as_str())
            .unwrap_or(false);
        if !canonical {
            return Err(WriteError::NotCanonical { path: path.clone() });
        }
        let rel = path.rel();
        let host = root.host(path);
        let md = std::fs::symlink_metadata(&host);
        let generated = sel.generated.get(path);
        let mut link: Option<Vec<u8>> = None;
        let (mut h, body): (Header, Option<Box<dyn Read>>) = match (md, generated) {
            (Err(_), Some(data)) => (
                header(EntryType::Regular, 0o644, 0, 0, mtime, data.len() as u64),
                Some(Box::new(&data[..])),
            ),
            (Err(e), None) => match sel.created_dirs.get(path) {
                Some(mode) => (header(EntryType::Directory, *mode, 0, 0, mtime, 0), None),
                None => {
                    return Err(WriteError::Io {
                        path: host,
                        source: e,
                    });
                }
            },
            (Ok(md), Some(data)) => (
                header(
                    EntryType::Regular,
                    md.mode(),
                    md.uid().into(),
                    md.gid().into(),
                    mtime,
                    data.len() as u64,
                ),
                Some(Box::new(&data[..])),
            ),
            (Ok(md), None) => {
                let ft = md.file_type();
                let (uid, gid) = (u64::from(md.uid()), u64::from(md.gid()));
                if ft.is_dir() {
                    (
                        header(EntryType::Directory, md.mode(), uid, gid, mtime, 0),
                        None,
                    )
                } else if ft.is_symlink() {
                    let target = std::fs::read_link(&host).map_err(io_err(path))?;
                    link = Some(target.as_os_str().as_encoded_bytes().to_vec());
                    (
                        header(EntryType::Symlink, md.mode(), uid, gid, mtime, 0),
                        None,
                    )
                } else if ft.is_file() {
                    let key = (md.dev(), md.ino());
                    if md.nlink() > 1
                        && let Some(first) = first_of_inode.get(&key)
                    {
                        link = Some(first.as_bytes()[1..].to_vec());
                        hardlinks += 1;
                        (header(EntryType::Link, md.mode(), uid, gid, mtime, 0), None)
                    } else {
                        if md.nlink() > 1 {
                            first_of_inode.insert(key, path.to_string());
                        }
                        let f = std::fs::OpenOptions::new()
                            .read(true)
                            .custom_flags(libc::O_NOFOLLOW)
                            .open(&host)
                            .map_err(io_err(path))?;
                        let h = header(EntryType::Regular, md.mode(), uid, gid, mtime, md.len());
                        (
                            h,
                            Some(Box::new(Exact {
                                inner: f.take(md.len()),
                                remaining: md.len(),
                            }) as Box<dyn Read>),
                        )
                    }
                } else if ft.is_char_device() || ft.is_block_device() {
                    let kind = if ft.is_char_device() {
                        EntryType::Char
                    } else {
                        EntryType::Block
                    };
                    let mut h = header(kind, md.mode(), uid, gid, mtime, 0);
                    let dev = md.rdev();
                    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
                    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
                    h.set_device_major(major as u32).ok();
                    h.set_device_minor(minor as u32).ok();
                    (h, None)
                } else if ft.is_fifo() {
                    (header(EntryType::Fifo, md.mode(), uid, gid, mtime, 0), None)
                } else {
                    continue; // sockets are not image content
                }
            }
        };
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        let dir_suffix = if h.entry_type() == EntryType::Directory {
            "/"
        } else {
            ""
        };
        let name = format!("{rel}{dir_suffix}");
        if !set_ustar_name(&mut h, name.as_bytes()) {
            pax.push(("path".into(), name.into_bytes()));
        }
        if let Some(link) = &link {
            let field = &mut h.as_old_mut().linkname;
            *field = [0; 100];
            if link.len() <= 100 {
                field[..link.len()].copy_from_slice(link);
            } else {
                field.copy_from_slice(&link[..100]);
                pax.push(("linkpath".into(), link.clone()));
            }
        }
        if let Ok(size) = h.size()
            && size > MAX_USTAR_SIZE
        {
            pax.push(("size".into(), size.to_string().into_bytes()));
        }
        for (key, id) in [("uid", h.uid().unwrap_or(0)), ("gid", h.gid().unwrap_or(0))] {
            if id > MAX_USTAR_ID {
                pax.push((key.into(), id.to_string().into_bytes()));
            }
        }
        if generated.is_none() && h.entry_type() != EntryType::Symlink {
            for (k, v) in xattrs(&host) {
                pax.push((format!("SCHILY.xattr.{k}"), v));
            }
        }
        if !pax.is_empty() {
            let pax = pax_records(&pax).map_err(io_err(path))?;
            let mut ph = header(EntryType::XHeader, 0o644, 0, 0, mtime, pax.len() as u64);
            let base = path.file_name();
            let mut cut = base.len().min(80);
            while !base.is_char_boundary(cut) {
                cut -= 1;
            }
            let pname = format!("PaxHeaders/{}", &base[..cut]);
            set_ustar_name(&mut ph, pname.as_bytes());
            ph.set_cksum();
            tar.append(&ph, &pax[..]).map_err(io_err(path))?;
        }
        h.set_cksum();
        match body {
            Some(r) => tar.append(&h, r).map_err(io_err(path))?,
            None => tar.append(&h, io::empty()).map_err(io_err(path))?,
        }
        entries += 1;
    }
    tar.finish().map_err(io_err("<layer>"))?;
    let w = tar.into_inner().map_err(io_err("<layer>"))?;
    Ok((w, entries, hardlinks))
}

/// Writes the layer as a gzip blob into `out`, hashing both sides.
pub fn write_layer<W: Write>(
    rootfs: &Path,
    sel: &Selection,
    mtime: u64,
    out: W,
) -> Result<(W, LayerInfo), WriteError> {
    write_layer_threads(
        rootfs,
        sel,
        mtime,
        out,
        crate::pgzip::ParGz::<W>::default_threads(),
    )
}

/// [`write_layer`] with an explicit number of compression threads (the bytes are the same
/// for any number).
pub fn write_layer_threads<W: Write>(
    rootfs: &Path,
    sel: &Selection,
    mtime: u64,
    out: W,
    threads: usize,
) -> Result<(W, LayerInfo), WriteError> {
    let compressed = Hashing::new(out);
    let gz = crate::pgzip::ParGz::new(compressed, GZIP_LEVEL, threads);
    let uncompressed = Hashing::new(gz);
    let (uncompressed, entries, hardlinks) = write_tar(rootfs, sel, mtime, uncompressed)?;
    let diff_id = uncompressed.digest();
    let uncompressed_size = uncompressed.n;
    let compressed = uncompressed
        .inner
        .finish()
        .map_err(|source| WriteError::Io {
            path: "<gzip>".into(),
            source,
        })?;
    let info = LayerInfo {
        diff_id,
        digest: compressed.digest(),
        size: compressed.n,
        uncompressed_size,
        entries,
        hardlinks,
    };
    Ok((compressed.inner, info))
}

/// The layer as a plain tar (for `docker load`, which keeps layers uncompressed anyway):
/// `diff_id` and `uncompressed_size` as [`write_layer`] gives them, and `digest`/`size` are
/// those of the tar itself. Same tar bytes as inside [`write_layer`]'s gzip.
pub fn write_layer_uncompressed<W: Write>(
    rootfs: &Path,
    sel: &Selection,
    mtime: u64,
    out: W,
) -> Result<(W, LayerInfo), WriteError> {
    let (plain, entries, hardlinks) = write_tar(rootfs, sel, mtime, Hashing::new(out))?;
    let diff_id = plain.digest();
    let info = LayerInfo {
        digest: diff_id.clone(),
        diff_id,
        size: plain.n,
        uncompressed_size: plain.n,
        entries,
        hardlinks,
    };
    Ok((plain.inner, info))
}

/// The `sha256:` digest and size of the gzip blob [`write_layer`] would make of the plain tar
/// read from `tar` (the same bytes, whatever the thread count), without writing it anywhere.
pub fn gzip_digest<R: Read>(tar: R, threads: usize) -> io::Result<(Digest, u64)> {
    gzip_into(tar, io::sink(), threads).map(|(_, digest, size)| (digest, size))
}

/// Writes into `out` the gzip blob [`write_layer`] would make of the plain tar read from
/// `tar`; returns `out`, the blob's digest and its size.
pub(crate) fn gzip_into<R: Read, W: Write>(
    mut tar: R,
    out: W,
    threads: usize,
) -> io::Result<(W, Digest, u64)> {
    let mut gz = crate::pgzip::ParGz::new(Hashing::new(out), GZIP_LEVEL, threads);
    io::copy(&mut tar, &mut gz)?;
    let out = gz.finish()?;
    let digest = out.digest();
    Ok((out.inner, digest, out.n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_lengths_are_self_consistent() {
        for v in ["", "x", &"y".repeat(90), &"z".repeat(1000)] {
            let out = pax_records(&[("path".into(), v.as_bytes().to_vec())]).unwrap();
            let s = String::from_utf8(out.clone()).unwrap();
            let (len, _) = s.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), out.len(), "{s}");
        }
    }

    /// The PAX extended headers (header block and padded records) of a layer with a long
    /// path and a long symlink target, hashed: pins their bytes, so the layer digest of the
    /// same input never changes with how the records are encoded.
    #[test]
    fn pax_headers_are_byte_for_byte_stable() {
        let t = tempfile::tempdir().unwrap();
        let dir = format!("/{}/{}", "d".repeat(120), "e".repeat(120));
        let file = format!("{dir}/{}", "f".repeat(40));
        let link = format!("{dir}/link");
        std::fs::create_dir_all(t.path().join(&dir[1..])).unwrap();
        std::os::unix::fs::symlink("t".repeat(150), t.path().join(&link[1..])).unwrap();
        let mut sel = Selection::default();
        for p in [&file, &link] {
            sel.entries.insert(p.parse().unwrap(), Default::default());
        }
        sel.generated.insert(file.parse().unwrap(), b"x".to_vec());
        for (i, _) in dir.match_indices('/').skip(1) {
            sel.entries
                .insert(dir[..i].parse().unwrap(), Default::default());
        }
        sel.entries.insert(dir.parse().unwrap(), Default::default());
        let (tar, _, _) = write_tar(t.path(), &sel, 1_700_000_000, Vec::new()).unwrap();
        let mut pax = Sha256::new();
        let mut n = 0;
        let mut off = 0;
        while off + 512 <= tar.len() && tar[off..off + 512].iter().any(|b| *b != 0) {
            let h = Header::from_byte_slice(&tar[off..off + 512]);
            let size = h.entry_size().unwrap() as usize;
            let len = 512 + size.div_ceil(512) * 512;
            if h.entry_type() == EntryType::XHeader {
                pax.update(&tar[off..off + len]);
                n += 1;
            }
            off += len;
        }
        // The path of both directories and the file; path and linkpath of the link.
        assert_eq!(n, 4);
        assert_eq!(
            hex::encode(pax.finalize()),
            "d6196365702959dcd1016d11426ce83c7bd406eba4a862426baa8fea2dc80213"
        );
    }

    #[test]
    fn order_puts_parents_first() {
        let mut v = vec!["/a/b-c", "/a/b/c", "/a", "/a/b", "/a-b"];
        v.sort_by(|a, b| path_order(a, b));
        assert_eq!(v, vec!["/a", "/a/b", "/a/b/c", "/a/b-c", "/a-b"]);
    }

    #[test]
    fn long_names_split_or_fall_back() {
        let mut h = Header::new_ustar();
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(50));
        assert!(set_ustar_name(&mut h, long.as_bytes()));
        assert_eq!(h.path_bytes().as_ref(), long.as_bytes());
        assert!(!set_ustar_name(&mut h, "x".repeat(300).as_bytes()));
    }
}
