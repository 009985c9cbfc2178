//! The content-addressed blob cache and the [`Store`] that fills it from a registry.
//!
//! A blob is downloaded by a task on the registry runtime that hashes and counts the bytes,
//! writes them to a temporary file beside the cache entry and hands them to the reader; at the
//! end of the stream the size and digest are checked and only then is the file renamed into
//! place. A reader that is dropped early does not stop the download, so the cache still gets
//! the whole blob.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;
use oci_client::client::BlobResponse;
use tokio::sync::mpsc;

use super::{RegistryError, Repo};
use crate::SourceError;
use crate::digest::Hasher;
use crate::store::{BlobStream, Opened, Store};

/// `DIR/sha256/<hex>` files, each verified before it was renamed into place.
pub(crate) struct BlobCache {
    dir: PathBuf,
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl BlobCache {
    pub(crate) fn new(dir: Option<PathBuf>) -> Result<BlobCache, SourceError> {
        let dir = match dir.or_else(super::default_cache_dir) {
            Some(d) => d,
            None => std::env::temp_dir().join("pare-blobs"),
        };
        let sub = dir.join("sha256");
        std::fs::create_dir_all(&sub).map_err(|source| SourceError::Io {
            path: sub.clone(),
            source,
        })?;
        // Temp files of downloads a Ctrl-C or kill cut short (see `sweep`).
        super::sweep::sweep_once(&sub);
        Ok(BlobCache { dir })
    }

    pub(crate) fn path(&self, hex: &str) -> PathBuf {
        self.dir.join("sha256").join(hex)
    }

    /// Puts a local file known to hash to `hex` into the cache (a hard link, else a copy
    /// through a temp file); best effort.
    pub(crate) fn insert_copy(&self, src: &Path, hex: &str) {
        let dst = self.path(hex);
        if dst.is_file() {
            return;
        }
        let tmp = self.temp(hex);
        let ok = std::fs::hard_link(src, &tmp).is_ok() || std::fs::copy(src, &tmp).is_ok();
        if !ok || std::fs::rename(&tmp, &dst).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    fn temp(&self, hex: &str) -> PathBuf {
        let n = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
        self.dir
            .join("sha256")
            .join(format!(".tmp-{hex}-{}-{n}", std::process::id()))
    }
}

/// A registry repository seen as an image layout: `blobs/sha256/<hex>` are its blobs.
pub(crate) struct RegistryStore {
    pub(crate) repo: Arc<Repo>,
    pub(crate) cache: BlobCache,
}

enum Msg {
    Data(bytes::Bytes),
    End,
    Fail(io::Error),
}

/// The bytes of a blob as the download task hands them over.
struct BlobReader {
    rx: mpsc::Receiver<Msg>,
    cur: bytes::Bytes,
    done: bool,
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Msg::Data(b)) => self.cur = b,
                Some(Msg::End) => self.done = true,
                Some(Msg::Fail(e)) => {
                    self.done = true;
                    return Err(e);
                }
                None => {
                    self.done = true;
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "blob download stopped",
                    ));
                }
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}

fn source_io(e: SourceError) -> io::Error {
    io::Error::other(e)
}

impl RegistryStore {
    fn digest_of(&self, rel: &str) -> Option<(String, String)> {
        let hex = rel.strip_prefix("blobs/sha256/")?;
        let digest = pare_image::digest::sha256_from_hex(hex)?.to_string();
        Some((digest, hex.to_string()))
    }

    fn cached(&self, hex: &str) -> Result<Option<Opened>, SourceError> {
        let path = self.cache.path(hex);
        match File::open(&path) {
            Ok(f) => {
                let len = f
                    .metadata()
                    .map_err(|source| SourceError::Io {
                        path: path.clone(),
                        source,
                    })?
                    .len();
                Ok(Some((Box::new(f), len)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SourceError::Io { path, source }),
        }
    }

    /// Starts downloading `digest` into the cache; the returned reader yields its bytes.
    fn download(&self, digest: &str, hex: &str) -> Result<BlobReader, SourceError> {
        let repo = &self.repo;
        let client = &repo.client;
        let reference = &repo.reference;
        // Asked as the range `bytes=0-`: oci-client then leaves the digest to us (the task
        // below checks it as the bytes go by) instead of hashing every blob a second time.
        let sized = repo.call(Some(digest), || async move {
            match client
                .pull_blob_stream_partial(reference, digest, 0, None)
                .await?
            {
                BlobResponse::Full(s) | BlobResponse::Partial(s) => Ok(s),
            }
        })?;
        let expected = sized.content_length;
        let final_path = self.cache.path(hex);
        let tmp = self.cache.temp(hex);
        let mut file = File::create(&tmp).map_err(|source| SourceError::Io {
            path: tmp.clone(),
            source,
        })?;
        let (tx, rx) = mpsc::channel::<Msg>(64);
        let digest = digest.to_string();
        let display = repo.display.clone();
        let mut stream = sized.stream;
        repo.runtime.spawn(async move {
            let mut hasher = Hasher::default();
            let mut reader_alive = true;
            let fail = |e: io::Error| {
                let _ = std::fs::remove_file(&tmp);
                Msg::Fail(e)
            };
            let outcome = loop {
                match stream.next().await {
                    Some(Ok(chunk)) => {
                        hasher.update(&chunk);
                        if let Err(e) = file.write_all(&chunk) {
                            break fail(io::Error::new(
                                e.kind(),
                                format!("{}: {e}", tmp.display()),
                            ));
                        }
                        if reader_alive && tx.send(Msg::Data(chunk)).await.is_err() {
                            reader_alive = false;
                        }
                    }
                    Some(Err(e)) => {
                        let message = super::root_cause(&e);
                        let message = if message.contains("VerificationError")
                            || message.to_ascii_lowercase().contains("digest")
                        {
                            // oci-client's own check; ours below names both digests.
                            message
                        } else {
                            format!(
                                "{display}: blob {digest}: {message} after {} bytes",
                                hasher.len
                            )
                        };
                        break fail(io::Error::new(e.kind(), message));
                    }
                    None => {
                        if let Some(want) = expected.filter(|&w| w != hasher.len) {
                            break fail(source_io(SourceError::SizeMismatch {
                                digest: digest.clone(),
                                expected: want,
                                actual: hasher.len,
                            }));
                        }
                        let actual = hasher.finish();
                        if actual != digest {
                            break fail(source_io(SourceError::DigestMismatch {
                                digest: digest.clone(),
                                actual,
                            }));
                        }
                        let persisted = file
                            .sync_data()
                            .and_then(|()| std::fs::rename(&tmp, &final_path));
                        if let Err(e) = persisted {
                            break fail(e);
                        }
                        break Msg::End;
                    }
                }
            };
            if reader_alive {
                let _ = tx.send(outcome).await;
            }
        });
        Ok(BlobReader {
            rx,
            cur: bytes::Bytes::new(),
            done: false,
        })
    }

    /// Downloads `digest` completely into the cache (or finds it there).
    fn fetch(&self, digest: &str, hex: &str) -> Result<Opened, SourceError> {
        if let Some(o) = self.cached(hex)? {
            return Ok(o);
        }
        let mut reader = self.download(digest, hex)?;
        io::copy(&mut reader, &mut io::sink()).map_err(|e| self.read_error(digest, e))?;
        self.cached(hex)?.ok_or_else(|| SourceError::MissingBlob {
            path: self.cache.path(hex),
            digest: digest.to_string(),
        })
    }

    fn read_error(&self, digest: &str, e: io::Error) -> SourceError {
        match e.into_inner().map(|b| b.downcast::<SourceError>()) {
            Some(Ok(se)) => *se,
            Some(Err(other)) => self.repo.err(RegistryError::Transport {
                message: format!("blob {digest}: {other}"),
                attempts: 1,
            }),
            None => self.repo.err(RegistryError::Transport {
                message: format!("blob {digest}: read failed"),
                attempts: 1,
            }),
        }
    }
}

impl Store for RegistryStore {
    fn display(&self, rel: &str) -> PathBuf {
        match self.digest_of(rel) {
            Some((digest, _)) => PathBuf::from(format!("{}@{digest}", self.repo.display)),
            None => Path::new(&self.repo.display).join(rel),
        }
    }

    fn open(&self, rel: &str) -> Result<Option<Opened>, SourceError> {
        let Some((digest, hex)) = self.digest_of(rel) else {
            return Ok(None);
        };
        self.fetch(&digest, &hex).map(Some)
    }

    fn open_stream(&self, rel: &str) -> Result<Option<BlobStream>, SourceError> {
        let Some((digest, hex)) = self.digest_of(rel) else {
            return Ok(None);
        };
        // A cached blob is hashed again as it is read; a download checks itself.
        if let Some((reader, _)) = self.cached(&hex)? {
            return Ok(Some(BlobStream {
                reader,
                verified: false,
            }));
        }
        Ok(Some(BlobStream {
            reader: Box::new(self.download(&digest, &hex)?),
            verified: true,
        }))
    }

    fn exists(&self, rel: &str) -> Result<bool, SourceError> {
        let Some((digest, hex)) = self.digest_of(rel) else {
            return Ok(false);
        };
        if self.cache.path(&hex).is_file() {
            return Ok(true);
        }
        let repo = &self.repo;
        let client = &repo.client;
        let reference = &repo.reference;
        let digest = &digest;
        repo.call(Some(digest), || async move {
            client.blob_exists(reference, digest).await
        })
    }
}
