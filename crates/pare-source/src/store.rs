//! Random access to the files of an image layout, either a directory or a tar archive whose
//! entry offsets are indexed once (nothing is extracted).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::SourceError;

/// Largest JSON document (index, manifest, config) read into memory: 64 MiB. A larger one is
/// refused from its size, before any of it is read (see `docs/limits.md`).
pub const MAX_JSON: u64 = 64 * 1024 * 1024;

/// An opened file of a store and its size.
pub(crate) type Opened = (Box<dyn Read + Send>, u64);

/// A blob opened to be streamed once.
pub(crate) struct BlobStream {
    pub(crate) reader: Box<dyn Read + Send>,
    /// The reader checks the blob's size and digest itself and fails its last read on a
    /// mismatch (a download in progress); `false` when the bytes must still be hashed.
    pub(crate) verified: bool,
}

/// A read-only tree of files addressed by `/`-separated relative paths.
pub(crate) trait Store: Send + Sync {
    /// The path used in error messages for `rel`.
    fn display(&self, rel: &str) -> PathBuf;

    /// Opens `rel`; `Ok(None)` when it does not exist.
    fn open(&self, rel: &str) -> Result<Option<Opened>, SourceError>;

    /// Reads a small file (JSON) completely; a missing file is an error naming it.
    fn read_small(&self, rel: &str, what: &'static str) -> Result<Vec<u8>, SourceError> {
        let path = self.display(rel);
        let Some((reader, size)) = self.open(rel)? else {
            return Err(SourceError::Malformed {
                path,
                what,
                message: "file is missing".into(),
                source: None,
            });
        };
        if size > MAX_JSON {
            return Err(SourceError::Malformed {
                path,
                what,
                message: format!(
                    "{size} bytes, over the limit of {MAX_JSON} bytes (64 MiB) for a JSON document"
                ),
                source: None,
            });
        }
        let mut buf = Vec::with_capacity(size as usize);
        reader
            .take(MAX_JSON)
            .read_to_end(&mut buf)
            .map_err(|source| SourceError::Io { path, source })?;
        Ok(buf)
    }

    fn exists(&self, rel: &str) -> Result<bool, SourceError> {
        Ok(self.open(rel)?.is_some())
    }

    /// Opens a layer blob to stream it once; a store that fetches remotely may hand out the
    /// bytes as they arrive instead of after the whole blob is there.
    fn open_stream(&self, rel: &str) -> Result<Option<BlobStream>, SourceError> {
        Ok(self.open(rel)?.map(|(reader, _)| BlobStream {
            reader,
            verified: false,
        }))
    }
}

/// Normalizes an archive-internal path: strips `./` and leading `/`, resolves `..` (never above
/// the root; `None` if it would go there).
pub(crate) fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// An image layout on disk.
pub(crate) struct DirStore {
    pub(crate) root: PathBuf,
}

impl Store for DirStore {
    fn display(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn open(&self, rel: &str) -> Result<Option<Opened>, SourceError> {
        let Some(rel) = normalize(rel) else {
            return Ok(None);
        };
        let path = self.root.join(&rel);
        match File::open(&path) {
            Ok(f) => {
                let meta = f.metadata().map_err(|source| SourceError::Io {
                    path: path.clone(),
                    source,
                })?;
                if meta.is_dir() {
                    return Ok(None);
                }
                Ok(Some((Box::new(f), meta.len())))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SourceError::Io { path, source }),
        }
    }
}

#[derive(Debug, Clone)]
enum TarEntry {
    File { offset: u64, size: u64 },
    Link(String),
}

/// A tar archive (a `docker save` or an OCI archive) indexed by entry name.
pub(crate) struct TarStore {
    path: PathBuf,
    file: Arc<File>,
    entries: HashMap<String, TarEntry>,
}

impl TarStore {
    /// Opens and indexes an archive on disk.
    pub(crate) fn open_path(path: &Path) -> Result<Self, SourceError> {
        let file = File::open(path).map_err(|source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::index(path.to_path_buf(), file)
    }

    /// Indexes an open archive (`path` is only used in messages). One pass over the headers,
    /// seeking past the data.
    pub(crate) fn index(path: PathBuf, file: File) -> Result<Self, SourceError> {
        let malformed = |message: String| SourceError::Malformed {
            path: path.clone(),
            what: "tar archive",
            message,
            source: None,
        };
        let tar_err = |e: std::io::Error| SourceError::Malformed {
            path: path.clone(),
            what: "tar archive",
            message: String::new(),
            source: Some(e.into()),
        };
        let len = file
            .metadata()
            .map_err(|source| SourceError::Io {
                path: path.clone(),
                source,
            })?
            .len();
        let mut magic = [0u8; 4];
        let got = file
            .read_at(&mut magic, 0)
            .map_err(|source| SourceError::Io {
                path: path.clone(),
                source,
            })?;
        if got >= 2 && magic[..2] == [0x1f, 0x8b] || got >= 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
            return Err(malformed(
                "the archive is compressed; decompress it first (gunzip/unzstd)".into(),
            ));
        }
        let mut entries = HashMap::new();
        {
            (&file)
                .seek(SeekFrom::Start(0))
                .map_err(|source| SourceError::Io {
                    path: path.clone(),
                    source,
                })?;
            let mut archive = tar::Archive::new(&file);
            let iter = archive.entries_with_seek().map_err(tar_err)?;
            for entry in iter {
                let entry = entry.map_err(tar_err)?;
                let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                let Some(name) = normalize(&name) else {
                    continue;
                };
                let header = entry.header();
                let kind = header.entry_type();
                if kind.is_file() || kind == tar::EntryType::Continuous {
                    let offset = entry.raw_file_position();
                    let size = entry.size();
                    if offset.checked_add(size).is_none_or(|end| end > len) {
                        return Err(malformed(format!(
                            "truncated: entry {name} extends past the end of the archive"
                        )));
                    }
                    entries.insert(name, TarEntry::File { offset, size });
                } else if kind.is_symlink() || kind.is_hard_link() {
                    let Some(target) = entry.link_name_bytes() else {
                        continue;
                    };
                    let target = String::from_utf8_lossy(&target).into_owned();
                    // Symlinks resolve from the link's directory; hard links from the root.
                    let joined = if kind.is_symlink() && !target.starts_with('/') {
                        match name.rsplit_once('/') {
                            Some((dir, _)) => format!("{dir}/{target}"),
                            None => target,
                        }
                    } else {
                        target
                    };
                    if let Some(t) = normalize(&joined) {
                        entries.insert(name, TarEntry::Link(t));
                    }
                }
            }
        }
        Ok(TarStore {
            path,
            file: Arc::new(file),
            entries,
        })
    }

    fn lookup(&self, rel: &str) -> Option<(u64, u64)> {
        let mut name = normalize(rel)?;
        for _ in 0..16 {
            match self.entries.get(&name)? {
                TarEntry::File { offset, size } => return Some((*offset, *size)),
                TarEntry::Link(target) => name = target.clone(),
            }
        }
        None
    }

    /// Whether the archive has an entry named `rel`.
    #[cfg(test)]
    pub(crate) fn has_entry(&self, rel: &str) -> bool {
        normalize(rel).is_some_and(|n| self.entries.contains_key(&n))
    }
}

impl Store for TarStore {
    fn display(&self, rel: &str) -> PathBuf {
        PathBuf::from(format!("{}:{}", self.path.display(), rel))
    }

    fn open(&self, rel: &str) -> Result<Option<Opened>, SourceError> {
        Ok(self.lookup(rel).map(|(offset, size)| {
            let reader: Box<dyn Read + Send> = Box::new(RangeReader {
                file: self.file.clone(),
                pos: offset,
                end: offset + size,
            });
            (reader, size)
        }))
    }
}

/// Reads a byte range of a shared file with positional reads, so that many readers can work
/// on one file descriptor from several threads.
struct RangeReader {
    file: Arc<File>,
    pos: u64,
    end: u64,
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.pos;
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "unexpected end of archive",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        assert_eq!(normalize("./a//b/").as_deref(), Some("a/b"));
        assert_eq!(normalize("a/../b").as_deref(), Some("b"));
        assert_eq!(normalize("/blobs/x").as_deref(), Some("blobs/x"));
        assert_eq!(normalize("../x"), None);
    }

    #[test]
    fn tar_store_reads_ranges_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        let mut b = tar::Builder::new(File::create(&path).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "./x/layer.tar", &b"hello"[..])
            .unwrap();
        let mut l = tar::Header::new_gnu();
        l.set_entry_type(tar::EntryType::Symlink);
        l.set_size(0);
        b.append_link(&mut l, "y/layer.tar", "../x/layer.tar")
            .unwrap();
        b.finish().unwrap();
        drop(b);
        let store = TarStore::open_path(&path).unwrap();
        let read = |rel: &str| {
            let (mut r, _) = store.open(rel).unwrap().unwrap();
            let mut s = String::new();
            r.read_to_string(&mut s).unwrap();
            s
        };
        assert_eq!(read("x/layer.tar"), "hello");
        assert_eq!(read("y/layer.tar"), "hello");
        assert!(store.open("z").unwrap().is_none());
        assert!(store.has_entry("y/layer.tar"));
    }
}
