//! Walking one layer into normalized events.

use std::collections::HashMap;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::path::{file_name, join, normalize, parent};
use crate::{Kind, LayerContent, LayerFsError};

/// One filesystem entry of a layer, with a normalized root-relative path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Normalized root-relative path (no leading `/`, no `.`/`..`).
    pub path: String,
    /// What kind of entry this is.
    pub kind: Kind,
    /// File size in bytes (0 for everything but regular files).
    pub size: u64,
    /// Permission bits including setuid/setgid/sticky (`mode & 0o7777`).
    pub mode: u32,
    /// Owner user id as stored (tar headers may carry ids above `u32::MAX`).
    pub uid: u64,
    /// Owner group id as stored.
    pub gid: u64,
    /// Modification time in whole seconds since the Unix epoch (0 when the header has none).
    pub mtime: u64,
    /// Symlink target as stored, or the normalized path a hard link points to.
    pub link: Option<String>,
    /// Carries a `security.capability` xattr.
    pub capability: bool,
    /// A GNU sparse tar entry (its data is mostly holes).
    pub sparse: bool,
}

/// What a layer says about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A regular file, directory or link (anything that is not a whiteout marker).
    Entry(Entry),
    /// `.wh.NAME`: the path (and everything beneath it) from lower layers is deleted.
    Whiteout(String),
    /// `.wh..wh..opq` in a directory (or the overlay opaque xattr): everything the lower layers
    /// had beneath this directory is hidden. The directory itself stays.
    Opaque(String),
}

/// Access to a regular file's data (or a device node's number) while walking.
pub enum Data<'a, 'b> {
    /// No data: not a regular file nor a device, or the content was already consumed.
    None,
    /// The file's bytes in the layer's tar stream, read in place.
    Tar(&'a mut tar::Entry<'b, Box<dyn Read + Send>>),
    /// The file's host path, inside an overlay2 `diff` directory.
    Path(&'a Path),
    /// A character or block device's number (`st_rdev`, as `makedev(major, minor)`), 0 for a
    /// FIFO; it has no bytes to read.
    Device(u64),
}

impl Data<'_, '_> {
    /// A reader over the file's bytes, if this entry has data.
    pub fn reader(&mut self) -> io::Result<Option<Box<dyn Read + '_>>> {
        Ok(match self {
            Data::None | Data::Device(_) => None,
            Data::Tar(e) => Some(Box::new(&mut **e)),
            Data::Path(p) => Some(Box::new(std::fs::File::open(p)?)),
        })
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// An entry name for an error message: at most 200 bytes of it, so that the line stays short.
fn shown(b: &[u8]) -> String {
    const SHOWN: usize = 200;
    if b.len() <= SHOWN {
        return lossy(b);
    }
    format!("{}…", String::from_utf8_lossy(&b[..SHOWN]))
}

/// Classifies a normalized name: whiteouts and opaque markers become events, aufs metadata
/// (`.wh..wh.plnk` …) is skipped (`None`), anything else is an entry path.
fn classify(path: &str) -> Option<Result<Event, ()>> {
    let name = file_name(path);
    let Some(rest) = name.strip_prefix(".wh.") else {
        return Some(Err(()));
    };
    if rest == ".wh..opq" {
        return Some(Ok(Event::Opaque(parent(path).to_string())));
    }
    if rest.starts_with(".wh.") || rest.is_empty() {
        return None;
    }
    Some(Ok(Event::Whiteout(join(parent(path), rest))))
}

/// Walks one layer, calling `f` for every event in stream order. Regular files come with
/// [`Data`] to read them; unread data is skipped. A tar stream is drained to its end afterwards so
/// that the source's digest check runs.
pub fn walk_layer(
    content: LayerContent,
    layer: &str,
    f: &mut dyn FnMut(Event, Data<'_, '_>) -> Result<(), LayerFsError>,
) -> Result<(), LayerFsError> {
    match content {
        LayerContent::Tar(r) => walk_tar(r, layer, f),
        LayerContent::OverlayDir(dir) => walk_overlay(&dir, layer, f),
    }
}

/// Most bytes of tar records read in front of one entry (its header, GNU long name and long
/// link records, PAX extended headers, and the padding before them). The tar reader holds these
/// records in memory whole, so a hostile size field would otherwise make it allocate as much
/// as the stream holds. Real ones are a few KiB: names are at most [`crate::MAX_PATH`] bytes,
/// xattr values at most 64 KiB. See `docs/limits.md`.
pub const MAX_ENTRY_HEADERS: u64 = 1024 * 1024;

/// The layer stream, refusing to read past a position the walk moves entry by entry: the end
/// of the current entry's data plus [`MAX_ENTRY_HEADERS`].
struct Bounded {
    inner: Box<dyn Read + Send>,
    pos: u64,
    limit: Arc<AtomicU64>,
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.limit.load(Ordering::Relaxed).saturating_sub(self.pos);
        if left == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "long-name/PAX records over {MAX_ENTRY_HEADERS} bytes in front of one entry"
                ),
            ));
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

fn walk_tar(
    r: Box<dyn Read + Send>,
    layer: &str,
    f: &mut dyn FnMut(Event, Data<'_, '_>) -> Result<(), LayerFsError>,
) -> Result<(), LayerFsError> {
    let limit = Arc::new(AtomicU64::new(MAX_ENTRY_HEADERS));
    let bounded: Box<dyn Read + Send> = Box::new(Bounded {
        inner: r,
        pos: 0,
        limit: limit.clone(),
    });
    let mut ar = tar::Archive::new(bounded);
    {
        let entries = ar
            .entries()
            .map_err(|e| LayerFsError::tar(layer, None, e))?;
        let mut last: Option<String> = None;
        for e in entries {
            let mut e = e.map_err(|source| LayerFsError::Tar {
                layer: layer.to_string(),
                entry: None,
                after: last.clone(),
                source,
            })?;
            let et = e.header().entry_type();
            // This entry's data (as stored: a sparse file's holes are not in the stream) may
            // be read or skipped; then the next entry's records get their allowance.
            let stored = if et == tar::EntryType::GNUSparse {
                e.header().entry_size().unwrap_or(0)
            } else {
                e.size()
            };
            let end = e
                .raw_file_position()
                .saturating_add(stored.saturating_add(511) & !511)
                .saturating_add(MAX_ENTRY_HEADERS);
            limit.store(end, Ordering::Relaxed);
            let raw = e.path_bytes().into_owned();
            if et.is_pax_global_extensions()
                || et.is_pax_local_extensions()
                || et.is_gnu_longname()
                || et.is_gnu_longlink()
            {
                continue;
            }
            let path = normalize(&raw).map_err(|issue| LayerFsError::UnsafePath {
                layer: layer.to_string(),
                entry: shown(&raw),
                issue,
            })?;
            last = Some(path.clone());
            if path.is_empty() {
                continue; // the root directory itself
            }
            match classify(&path) {
                None => continue,
                Some(Ok(ev)) => {
                    f(ev, Data::None)?;
                    continue;
                }
                Some(Err(())) => {}
            }
            let kind = match et {
                tar::EntryType::Regular
                | tar::EntryType::Continuous
                | tar::EntryType::GNUSparse => Kind::File,
                tar::EntryType::Directory => Kind::Dir,
                tar::EntryType::Symlink => Kind::Symlink,
                tar::EntryType::Link => Kind::Hardlink,
                tar::EntryType::Char => Kind::CharDevice,
                tar::EntryType::Block => Kind::BlockDevice,
                tar::EntryType::Fifo => Kind::Fifo,
                _ => Kind::Other,
            };
            let link = match kind {
                Kind::Symlink => Some(e.link_name_bytes().map(|b| lossy(&b)).unwrap_or_default()),
                Kind::Hardlink => {
                    let raw_link = e
                        .link_name_bytes()
                        .map(|b| b.into_owned())
                        .unwrap_or_default();
                    let target =
                        normalize(&raw_link).map_err(|issue| LayerFsError::UnsafePath {
                            layer: layer.to_string(),
                            entry: format!("{} -> {}", shown(path.as_bytes()), shown(&raw_link)),
                            issue,
                        })?;
                    if target.is_empty() {
                        return Err(LayerFsError::Unsafe {
                            layer: layer.to_string(),
                            entry: path,
                            message: "hard link to the root directory".into(),
                            source: None,
                        });
                    }
                    Some(target)
                }
                _ => None,
            };
            let mut capability = false;
            if let Ok(Some(exts)) = e.pax_extensions() {
                for ext in exts.flatten() {
                    if ext.key_bytes() == b"SCHILY.xattr.security.capability" {
                        capability = true;
                    }
                }
            }
            let h = e.header();
            let entry = Entry {
                size: if kind == Kind::File { e.size() } else { 0 },
                mode: h.mode().unwrap_or(0o644) & 0o7777,
                uid: h.uid().unwrap_or(0),
                gid: h.gid().unwrap_or(0),
                mtime: h.mtime().unwrap_or(0),
                sparse: et == tar::EntryType::GNUSparse,
                path,
                kind,
                link,
                capability,
            };
            let device = h
                .device_major()
                .ok()
                .flatten()
                .zip(h.device_minor().ok().flatten());
            let data = if kind == Kind::File {
                Data::Tar(&mut e)
            } else if matches!(kind, Kind::CharDevice | Kind::BlockDevice | Kind::Fifo) {
                let (major, minor) = device.unwrap_or((0, 0));
                Data::Device(nix::sys::stat::makedev(major.into(), minor.into()))
            } else {
                Data::None
            };
            f(Event::Entry(entry), data)?;
        }
    }
    // Drain the rest (padding after the end-of-archive marker) so the digest check runs.
    limit.store(u64::MAX, Ordering::Relaxed);
    let mut r = ar.into_inner();
    io::copy(&mut r, &mut io::sink()).map_err(|e| LayerFsError::tar(layer, None, e))?;
    Ok(())
}

fn is_opaque(p: &Path) -> bool {
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|k| matches!(xattr::get(p, k), Ok(Some(v)) if v.as_slice() == b"y"))
}

fn walk_overlay(
    dir: &Path,
    layer: &str,
    f: &mut dyn FnMut(Event, Data<'_, '_>) -> Result<(), LayerFsError>,
) -> Result<(), LayerFsError> {
    let io_err = |path: &Path, e: io::Error| LayerFsError::Io {
        layer: layer.to_string(),
        path: path.to_path_buf(),
        source: e,
    };
    let mut inodes: HashMap<(u64, u64), String> = HashMap::new();
    for de in walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
    {
        let de = de.map_err(|e| {
            let p = e.path().unwrap_or(dir).to_path_buf();
            io_err(&p, e.into())
        })?;
        if de.depth() == 0 {
            if is_opaque(de.path()) {
                // An opaque root hides every lower layer.
                f(Event::Opaque(String::new()), Data::None)?;
            }
            continue;
        }
        let rel = de.path().strip_prefix(dir).unwrap_or(de.path());
        let path =
            normalize(rel.as_os_str().as_bytes()).map_err(|issue| LayerFsError::UnsafePath {
                layer: layer.to_string(),
                entry: rel.display().to_string(),
                issue,
            })?;
        let md = de
            .path()
            .symlink_metadata()
            .map_err(|e| io_err(de.path(), e))?;
        let ft = md.file_type();
        if ft.is_char_device() && md.rdev() == 0 {
            f(Event::Whiteout(path), Data::None)?;
            continue;
        }
        let mut kind = if ft.is_file() {
            Kind::File
        } else if ft.is_dir() {
            Kind::Dir
        } else if ft.is_symlink() {
            Kind::Symlink
        } else if ft.is_char_device() {
            Kind::CharDevice
        } else if ft.is_block_device() {
            Kind::BlockDevice
        } else if ft.is_fifo() {
            Kind::Fifo
        } else {
            Kind::Other
        };
        let mut link = None;
        if kind == Kind::Symlink {
            let t = std::fs::read_link(de.path()).map_err(|e| io_err(de.path(), e))?;
            link = Some(lossy(t.as_os_str().as_bytes()));
        }
        if kind == Kind::File && md.nlink() > 1 {
            match inodes.get(&(md.dev(), md.ino())) {
                Some(first) => {
                    kind = Kind::Hardlink;
                    link = Some(first.clone());
                }
                None => {
                    inodes.insert((md.dev(), md.ino()), path.clone());
                }
            }
        }
        let capability = kind == Kind::File
            && matches!(xattr::get(de.path(), "security.capability"), Ok(Some(_)));
        let entry = Entry {
            path: path.clone(),
            kind,
            size: if kind == Kind::File { md.len() } else { 0 },
            mode: md.mode() & 0o7777,
            uid: u64::from(md.uid()),
            gid: u64::from(md.gid()),
            mtime: u64::try_from(md.mtime()).unwrap_or(0),
            link,
            capability,
            sparse: false,
        };
        let data = if kind == Kind::File {
            Data::Path(de.path())
        } else if matches!(kind, Kind::CharDevice | Kind::BlockDevice | Kind::Fifo) {
            Data::Device(md.rdev())
        } else {
            Data::None
        };
        f(Event::Entry(entry), data)?;
        if kind == Kind::Dir && is_opaque(de.path()) {
            f(Event::Opaque(path), Data::None)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_whiteouts() {
        assert_eq!(classify("a/.wh.b"), Some(Ok(Event::Whiteout("a/b".into()))));
        assert_eq!(classify(".wh.b"), Some(Ok(Event::Whiteout("b".into()))));
        assert_eq!(
            classify("a/.wh..wh..opq"),
            Some(Ok(Event::Opaque("a".into())))
        );
        assert_eq!(classify("a/.wh..wh.plnk"), None);
        assert_eq!(classify("a/b"), Some(Err(())));
    }
}
