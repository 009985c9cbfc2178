//! Safe extraction of layers into a directory.
//!
//! Every entry path is resolved component by component under the destination root
//! ([`crate::inroot`]). Symlinks met on the way are followed *inside* the root only: an
//! absolute target is re-rooted at the destination, `..` stops at the root. The final component is never followed: an existing
//! entry there is removed before the new one is created. Hard links must point at an entry that
//! was already extracted inside the root.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

use crate::index::{Indexer, Indexing, ReadOptions};
use crate::inroot;
use crate::merge::MergedFs;
use crate::path::{file_name, parent};
use crate::walk::{Data, Event, walk_layer};
use crate::{ImageSource, Kind, LayerContent, LayerFsError};

/// What an extraction wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExtractStats {
    /// Layers applied.
    pub layers: usize,
    /// Regular files created (hard links not counted).
    pub files: u64,
    /// Directories created or whose metadata was applied.
    pub dirs: u64,
    /// Symbolic links created.
    pub symlinks: u64,
    /// Hard links created.
    pub hardlinks: u64,
    /// Regular file bytes written (apparent size; sparse holes are not written).
    pub bytes: u64,
    /// Whiteouts and opaque-directory markers applied (each removes lower-layer paths).
    pub whiteouts: u64,
    /// Device nodes, FIFOs and unknown entry types that were not created: all of them
    /// unless [`ExtractOptions::devices`], else those the kernel refuses (`mknod` needs root).
    pub skipped: u64,
}

/// How [`extract_with`] extracts.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ExtractOptions {
    /// Also create character and block device nodes and FIFOs, with the numbers, mode and
    /// (as root) owner their layer stores. Off by default: only a faithful copy of the image
    /// (`pare squash`) wants device nodes of an untrusted image on the host.
    pub devices: bool,
}

impl ExtractOptions {
    /// Options that also create device nodes and FIFOs.
    pub fn with_devices() -> Self {
        ExtractOptions { devices: true }
    }
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Resolves the directory `rel` (normalized, root-relative) under `root`, following symlinks
/// only inside the root ([`crate::inroot`]). Missing directories are created when `create` is
/// set; anything else that is missing or not a directory is an error.
fn resolve_dir(root: &Path, rel: &str, create: bool) -> io::Result<PathBuf> {
    let opts = inroot::Options {
        follow_last: true,
        create_dirs: create,
        utf8: false,
    };
    let res = inroot::resolve(root, rel.as_bytes(), opts).map_err(|e| match e {
        inroot::InRootError::Io { source, .. } => source,
        e @ (inroot::InRootError::Loop { .. } | inroot::InRootError::NonUtf8 { .. }) => {
            io::Error::other(e)
        }
    })?;
    let out = inroot::host(root, &res.components);
    match res.end {
        inroot::End::Exists(ft) if ft.is_dir() => Ok(out),
        inroot::End::Missing { cause, .. } => Err(cause),
        inroot::End::Exists(_) | inroot::End::NotADirectory { .. } => Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("{} is not a directory", out.display()),
        )),
    }
}

/// Removes whatever is at `p` without following a symlink there.
fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(md) if md.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[derive(Clone, Copy)]
struct DirMeta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

struct Extractor<'a> {
    root: &'a Path,
    root_user: bool,
    devices: bool,
    stats: ExtractStats,
    dirs: HashMap<PathBuf, DirMeta>,
}

impl<'a> Extractor<'a> {
    fn new(root: &'a Path, devices: bool) -> Self {
        Extractor {
            root,
            root_user: is_root(),
            devices,
            stats: ExtractStats::default(),
            dirs: HashMap::new(),
        }
    }

    fn layer(
        &mut self,
        content: LayerContent,
        layer: &str,
        mut index: Option<&mut Indexing<'_>>,
    ) -> Result<(), LayerFsError> {
        let mut this_layer: HashSet<String> = HashSet::new();
        let root = self.root;
        walk_layer(content, layer, &mut |ev, data| {
            if let (Some(ix), Event::Whiteout(_) | Event::Opaque(_)) = (index.as_mut(), &ev) {
                ix.event(ev.clone(), None, layer);
            }
            let entry_name = match &ev {
                Event::Entry(e) => e.path.clone(),
                Event::Whiteout(p) | Event::Opaque(p) => p.clone(),
            };
            let io_err = |e: io::Error| LayerFsError::Io {
                layer: layer.to_string(),
                path: PathBuf::from(&entry_name),
                source: e,
            };
            match ev {
                Event::Whiteout(p) => {
                    if this_layer.contains(&p) {
                        return Ok(());
                    }
                    match resolve_dir(root, parent(&p), false) {
                        Ok(dir) => {
                            remove_any(&dir.join(file_name(&p))).map_err(io_err)?;
                            self.stats.whiteouts += 1;
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                            ) => {}
                        Err(e) => return Err(io_err(e)),
                    }
                }
                Event::Opaque(p) => {
                    let dir = match resolve_dir(root, &p, false) {
                        Ok(d) => d,
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                            ) =>
                        {
                            return Ok(());
                        }
                        Err(e) => return Err(io_err(e)),
                    };
                    clear_lower(&dir, &p, &this_layer).map_err(io_err)?;
                    self.stats.whiteouts += 1;
                }
                Event::Entry(e) => {
                    let has_bytes = matches!(data, Data::Tar(_) | Data::Path(_));
                    let file = self.entry(&e, data, layer, &this_layer)?;
                    this_layer.insert(e.path.clone());
                    if let Some(ix) = index.as_mut() {
                        let file = file.filter(|_| has_bytes);
                        ix.event(Event::Entry(e), file.as_deref(), layer);
                    }
                }
            }
            Ok(())
        })
    }

    fn entry(
        &mut self,
        e: &crate::Entry,
        data: Data<'_, '_>,
        layer: &str,
        _this_layer: &HashSet<String>,
    ) -> Result<Option<PathBuf>, LayerFsError> {
        let io_err = |err: io::Error| LayerFsError::Io {
            layer: layer.to_string(),
            path: PathBuf::from(&e.path),
            source: err,
        };
        let dir = resolve_dir(self.root, parent(&e.path), true).map_err(io_err)?;
        let full = dir.join(OsStr::from_bytes(file_name(&e.path).as_bytes()));
        match e.kind {
            Kind::Dir => {
                match fs::symlink_metadata(&full) {
                    Ok(md) if md.is_dir() => {}
                    Ok(_) => {
                        fs::remove_file(&full).map_err(io_err)?;
                        fs::create_dir(&full).map_err(io_err)?;
                    }
                    Err(_) => fs::create_dir(&full).map_err(io_err)?,
                }
                self.dirs.insert(
                    full,
                    DirMeta {
                        mode: e.mode,
                        uid: e.uid,
                        gid: e.gid,
                        mtime: e.mtime,
                    },
                );
                self.stats.dirs += 1;
            }
            Kind::File => {
                if fs::symlink_metadata(&full)
                    .map(|m| m.is_dir())
                    .unwrap_or(false)
                {
                    fs::remove_dir_all(&full).map_err(io_err)?;
                }
                let mut xattrs: Vec<(OsString, Vec<u8>)> = Vec::new();
                match data {
                    Data::Tar(t) => {
                        if let Ok(Some(exts)) = t.pax_extensions() {
                            for x in exts.flatten() {
                                if let Some(k) = x.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                                    xattrs.push((
                                        OsStr::from_bytes(k).to_os_string(),
                                        x.value_bytes().to_vec(),
                                    ));
                                }
                            }
                        }
                        t.set_preserve_permissions(false);
                        t.set_preserve_mtime(true);
                        t.set_unpack_xattrs(false);
                        t.unpack(&full)
                            .map_err(|err| LayerFsError::tar(layer, Some(&e.path), err))?;
                    }
                    Data::Path(src) => {
                        remove_any(&full).map_err(io_err)?;
                        fs::copy(src, &full).map_err(io_err)?;
                        if let Ok(names) = xattr::list(src) {
                            for n in names {
                                if n.as_bytes().starts_with(b"trusted.overlay.")
                                    || n.as_bytes().starts_with(b"user.overlay.")
                                {
                                    continue;
                                }
                                if let Ok(Some(v)) = xattr::get(src, &n) {
                                    xattrs.push((n, v));
                                }
                            }
                        }
                        let t = filetime::FileTime::from_unix_time(
                            i64::try_from(e.mtime).unwrap_or(0),
                            0,
                        );
                        filetime::set_file_mtime(&full, t).map_err(io_err)?;
                    }
                    Data::None | Data::Device(_) => {
                        remove_any(&full).map_err(io_err)?;
                        fs::File::create(&full).map_err(io_err)?;
                    }
                }
                if self.root_user {
                    std::os::unix::fs::lchown(&full, Some(clamp(e.uid)), Some(clamp(e.gid)))
                        .map_err(io_err)?;
                }
                fs::set_permissions(&full, fs::Permissions::from_mode(e.mode)).map_err(io_err)?;
                for (k, v) in xattrs {
                    // Best effort: some filesystems or unprivileged runs refuse some namespaces.
                    let _ = xattr::set(&full, &k, &v);
                }
                self.stats.files += 1;
                self.stats.bytes += e.size;
                return Ok(Some(full));
            }
            Kind::Symlink => {
                remove_any(&full).map_err(io_err)?;
                let target = e.link.as_deref().unwrap_or("");
                std::os::unix::fs::symlink(OsStr::from_bytes(target.as_bytes()), &full)
                    .map_err(io_err)?;
                if self.root_user {
                    std::os::unix::fs::lchown(&full, Some(clamp(e.uid)), Some(clamp(e.gid)))
                        .map_err(io_err)?;
                }
                let t = filetime::FileTime::from_unix_time(i64::try_from(e.mtime).unwrap_or(0), 0);
                let _ = filetime::set_symlink_file_times(&full, t, t);
                self.stats.symlinks += 1;
            }
            Kind::Hardlink => {
                let target = e.link.as_deref().unwrap_or("");
                let unsafe_link = |message: String, source| LayerFsError::Unsafe {
                    layer: layer.to_string(),
                    entry: e.path.clone(),
                    message,
                    source,
                };
                let tdir = resolve_dir(self.root, parent(target), false).map_err(|err| {
                    unsafe_link(
                        format!("hard link target `{target}` is not inside the extracted tree"),
                        Some(err),
                    )
                })?;
                let tpath = tdir.join(OsStr::from_bytes(file_name(target).as_bytes()));
                match fs::symlink_metadata(&tpath) {
                    Ok(md) if !md.is_dir() => {}
                    _ => {
                        return Err(unsafe_link(
                            format!("hard link target `{target}` is not an extracted file"),
                            None,
                        ));
                    }
                }
                if tpath == full {
                    return Ok(None);
                }
                remove_any(&full).map_err(io_err)?;
                fs::hard_link(&tpath, &full).map_err(io_err)?;
                self.stats.hardlinks += 1;
            }
            Kind::CharDevice | Kind::BlockDevice | Kind::Fifo if self.devices => {
                if self.device(e, data, &full).map_err(io_err)? {
                    if self.root_user {
                        std::os::unix::fs::lchown(&full, Some(clamp(e.uid)), Some(clamp(e.gid)))
                            .map_err(io_err)?;
                    }
                } else {
                    self.stats.skipped += 1
                }
            }
            Kind::CharDevice | Kind::BlockDevice | Kind::Fifo | Kind::Other => {
                self.stats.skipped += 1
            }
        }
        Ok(None)
    }

    /// Creates device node or FIFO `e` at `full` with the number its layer stores and its
    /// mode. False when the walk gave no number or the kernel refuses (`mknod` needs root for
    /// devices).
    fn device(&mut self, e: &crate::Entry, data: Data<'_, '_>, full: &Path) -> io::Result<bool> {
        use nix::sys::stat::{Mode, SFlag, mknod};
        let Data::Device(rdev) = data else {
            return Ok(false);
        };
        let kind = match e.kind {
            Kind::CharDevice => SFlag::S_IFCHR,
            Kind::BlockDevice => SFlag::S_IFBLK,
            _ => SFlag::S_IFIFO,
        };
        remove_any(full)?;
        if mknod(full, kind, Mode::from_bits_truncate(e.mode), rdev).is_err() {
            return Ok(false);
        }
        // mknod applies the umask; the mode is the layer's.
        fs::set_permissions(full, fs::Permissions::from_mode(e.mode))?;
        Ok(true)
    }

    fn finish(mut self) -> ExtractStats {
        let mut dirs: Vec<(PathBuf, DirMeta)> = self.dirs.drain().collect();
        // Deepest first, so setting a parent's mtime comes after its children are done.
        dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        for (p, m) in dirs {
            if !fs::symlink_metadata(&p)
                .map(|md| md.is_dir())
                .unwrap_or(false)
            {
                continue;
            }
            if self.root_user {
                let _ = std::os::unix::fs::lchown(&p, Some(clamp(m.uid)), Some(clamp(m.gid)));
            }
            let _ = fs::set_permissions(&p, fs::Permissions::from_mode(m.mode));
            let t = filetime::FileTime::from_unix_time(i64::try_from(m.mtime).unwrap_or(0), 0);
            let _ = filetime::set_file_mtime(&p, t);
        }
        self.stats
    }
}

fn clamp(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Removes everything beneath `dir` that the current layer did not create.
fn clear_lower(dir: &Path, rel: &str, this_layer: &HashSet<String>) -> io::Result<()> {
    for de in fs::read_dir(dir)? {
        let de = de?;
        let name = de.file_name();
        let child_rel = crate::path::join(rel, &String::from_utf8_lossy(name.as_bytes()));
        let p = de.path();
        if this_layer.contains(&child_rel) {
            if fs::symlink_metadata(&p)?.is_dir() {
                clear_lower(&p, &child_rel, this_layer)?;
            }
        } else {
            remove_any(&p)?;
        }
    }
    Ok(())
}

fn check_dest(dest: &Path) -> Result<PathBuf, LayerFsError> {
    let root = dest.canonicalize().map_err(|source| LayerFsError::Dest {
        path: dest.to_path_buf(),
        source,
    })?;
    if !root.is_dir() {
        return Err(LayerFsError::Dest {
            path: dest.to_path_buf(),
            source: io::ErrorKind::NotADirectory.into(),
        });
    }
    Ok(root)
}

/// Applies one layer into `dest` (which holds the layers below it, or is empty).
pub fn extract_layer(
    content: LayerContent,
    layer: &str,
    dest: &Path,
) -> Result<ExtractStats, LayerFsError> {
    let root = check_dest(dest)?;
    let mut x = Extractor::new(&root, false);
    x.layer(content, layer, None)?;
    x.stats.layers = 1;
    Ok(x.finish())
}

/// Applies all layers of `source` in order into `dest` (an empty directory): whiteouts and
/// opaque directories applied, modes, owners (when running as root), symlinks, hard links,
/// xattrs (best effort) and mtimes preserved. Never writes outside `dest`.
pub fn extract(source: &dyn ImageSource, dest: &Path) -> Result<ExtractStats, LayerFsError> {
    extract_with(source, dest, &ExtractOptions::default())
}

/// [`extract`] with options: with [`ExtractOptions::devices`], device nodes and FIFOs too.
pub fn extract_with(
    source: &dyn ImageSource,
    dest: &Path,
    opts: &ExtractOptions,
) -> Result<ExtractStats, LayerFsError> {
    let root = check_dest(dest)?;
    let mut x = Extractor::new(&root, opts.devices);
    apply_layers(source, &mut x, None)?;
    Ok(x.finish())
}

/// [`extract`], also reading every layer with `read` into the merged view that
/// [`crate::read_image`] gives, in the same pass: each layer is decompressed and walked once,
/// and the bytes an index hashes or captures are read back from the file just written.
/// The view is an error when indexing alone failed ([`ReadOptions::max_entries`] crossed, a
/// written file unreadable): the extraction is complete all the same, and a caller that
/// still wants the view reads the image again with [`crate::read_image`].
pub fn extract_indexed(
    source: &dyn ImageSource,
    dest: &Path,
    read: &ReadOptions<'_>,
) -> Result<(ExtractStats, Result<MergedFs, LayerFsError>), LayerFsError> {
    let root = check_dest(dest)?;
    let mut x = Extractor::new(&root, false);
    let mut merged = MergedFs::new();
    let mut index = Indexing {
        indexer: None,
        seen: AtomicU64::new(0),
        failed: None,
    };
    apply_layers(source, &mut x, Some((&mut index, &mut merged, read)))?;
    let merged = match index.failed {
        Some(e) => Err(e),
        None => Ok(merged),
    };
    Ok((x.finish(), merged))
}

/// Applies the layers of `source` in order, each indexed and merged into the view when one
/// is being built.
fn apply_layers<'o>(
    source: &dyn ImageSource,
    x: &mut Extractor<'_>,
    mut view: Option<(&mut Indexing<'o>, &mut MergedFs, &'o ReadOptions<'o>)>,
) -> Result<(), LayerFsError> {
    for (i, l) in source.image().layers.iter().enumerate() {
        let c = source.open_layer(i).map_err(|e| LayerFsError::Source {
            layer: l.digest.clone(),
            source: e,
        })?;
        let index = match view.as_mut() {
            Some((ix, _, read)) if ix.failed.is_none() => {
                ix.indexer = Some(Indexer::new(read));
                Some(&mut **ix)
            }
            _ => None,
        };
        x.layer(c, &l.digest, index)?;
        x.stats.layers += 1;
        if let Some((ix, merged, _)) = view.as_mut() {
            if let Some(done) = ix.indexer.take() {
                merged.apply(done.finish());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented handling of names that are not UTF-8 (docs/limits.md): entry names and
    /// symlink targets are decoded lossily, each invalid byte sequence becoming U+FFFD, and
    /// extracted under that name.
    #[test]
    fn names_that_are_not_utf8_are_extracted_lossily() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(2);
        h.set_path(OsStr::from_bytes(b"caf\xe9.txt")).unwrap();
        h.set_cksum();
        b.append(&h, &b"hi"[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_path("link").unwrap();
        h.set_link_name(OsStr::from_bytes(b"caf\xe9.txt")).unwrap();
        h.set_cksum();
        b.append(&h, io::empty()).unwrap();
        let tar = b.into_inner().unwrap();
        let dest = tempfile::tempdir().unwrap();
        let content = LayerContent::Tar(Box::new(io::Cursor::new(tar)));
        extract_layer(content, "sha256:test", dest.path()).unwrap();
        let names: Vec<OsString> = fs::read_dir(dest.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            names.contains(&OsString::from("caf\u{FFFD}.txt")),
            "{names:?}"
        );
        assert!(!names.iter().any(|n| n.as_bytes() == b"caf\xe9.txt"));
        assert_eq!(
            fs::read_link(dest.path().join("link")).unwrap(),
            PathBuf::from("caf\u{FFFD}.txt")
        );
        assert_eq!(fs::read(dest.path().join("link")).unwrap(), b"hi");
    }
}
