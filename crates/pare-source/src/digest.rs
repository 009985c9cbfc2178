//! Digests: validation of `sha256:<hex>` strings and hashing readers, inline or on a thread of
//! their own (so that a decompressor reading from them does nothing but decompress).

use std::io::{self, BufRead, BufReader, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use sha2::{Digest as _, Sha256};

/// Checks that `digest` is `sha256:` followed by 64 lowercase hex digits and returns the hex
/// part. Anything else (other algorithms, path separators, `..`) is refused, so the result is
/// safe to use as a file name.
pub fn sha256_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    pare_image::digest::sha256_from_hex(hex)
        .is_some()
        .then_some(hex)
}

/// `sha256:<hex>` of a byte slice.
pub fn sha256_digest(bytes: &[u8]) -> String {
    sha256_of(bytes).to_string()
}

/// The typed `sha256:<hex>` digest of a byte slice.
pub fn sha256_of(bytes: &[u8]) -> pare_image::Digest {
    pare_image::digest::sha256(&Sha256::digest(bytes).into())
}

/// A running SHA-256 with a byte count.
#[derive(Clone, Default)]
pub(crate) struct Hasher {
    sha: Sha256,
    pub(crate) len: u64,
}

impl Hasher {
    pub(crate) fn update(&mut self, buf: &[u8]) {
        self.sha.update(buf);
        self.len += buf.len() as u64;
    }

    pub(crate) fn finish(&self) -> String {
        pare_image::digest::sha256(&self.sha.clone().finalize().into()).to_string()
    }
}

/// Hashes every byte that passes through it.
pub(crate) struct HashingReader<R> {
    pub(crate) inner: R,
    pub(crate) hasher: Hasher,
    /// `false`: only count the bytes ([`counted_stream`]).
    hash: bool,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Hasher::default(),
            hash: true,
        }
    }

    /// Reads the rest of the stream (hashing it) and returns how many bytes that was.
    pub(crate) fn drain(&mut self) -> io::Result<u64> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = self.read(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.hash {
            self.hasher.update(&buf[..n]);
        } else {
            self.hasher.len += n as u64;
        }
        Ok(n)
    }
}

/// Size of the chunks the hashing threads pass around. 256 KiB: as fast as 1 MiB (each chunk
/// is ~0.15 ms of SHA-256), and half the peak RSS (jdk docker-archive xray 33 → 16 MB).
pub(crate) const CHUNK: usize = 1 << 18;
/// Chunks in flight per channel: memory stays below `(DEPTH + 2) * CHUNK` per thread.
const DEPTH: usize = 4;

/// A buffered stream of stored bytes that knows their SHA-256 once it has been read to the end.
pub(crate) trait HashedStream: BufRead + Send {
    /// Reads (and hashes) the rest of the stream, then returns the hash of all of it.
    fn finish(&mut self) -> io::Result<Hasher>;
}

/// Opens `raw` as a hashed stream: read and hashed on a thread of its own when one can be
/// started, inline otherwise.
pub(crate) fn hashed_stream(raw: Box<dyn Read + Send>) -> Box<dyn HashedStream> {
    match ThreadedReader::spawn(raw, true, "blob reading") {
        Ok(r) => Box::new(r),
        Err(raw) => Box::new(BufReader::with_capacity(CHUNK, HashingReader::new(raw))),
    }
}

/// Opens `raw`, which verifies itself, as a stream whose [`HashedStream::finish`] only counts:
/// the hash it returns has the length of the stream but not its digest.
pub(crate) fn counted_stream(raw: Box<dyn Read + Send>) -> Box<dyn HashedStream> {
    Box::new(BufReader::with_capacity(
        CHUNK,
        HashingReader {
            inner: raw,
            hasher: Hasher::default(),
            hash: false,
        },
    ))
}

/// `raw`, read ahead on a thread of its own (so that what reads from it overlaps with what
/// produces it), or `raw` itself when no thread can be started. Errors come through in order.
pub(crate) fn read_ahead(raw: Box<dyn Read + Send>) -> Box<dyn Read + Send> {
    match ThreadedReader::spawn(raw, false, "read-ahead") {
        Ok(r) => Box::new(r),
        Err(raw) => raw,
    }
}

impl<R: Read + Send> HashedStream for BufReader<HashingReader<R>> {
    fn finish(&mut self) -> io::Result<Hasher> {
        // Bytes still in the buffer were hashed when they were read into it.
        self.get_mut().drain()?;
        Ok(self.get_ref().hasher.clone())
    }
}

enum Chunk {
    Data(Vec<u8>),
    /// The end of the stream, with its hash when the thread hashes.
    End(Option<Hasher>),
    Failed(io::Error),
}

/// Reads a stream (and hashes it, when asked) on its own thread and hands it over in chunks
/// through a bounded channel. The thread stops at EOF, on a read error (passed on in order) or
/// when this reader is dropped (its next send fails).
struct ThreadedReader {
    rx: Receiver<Chunk>,
    cur: Vec<u8>,
    pos: usize,
    end: Option<Option<Hasher>>,
    failed: bool,
    /// What the thread does, for the error when it is gone ("the {what} thread stopped").
    what: &'static str,
}

impl ThreadedReader {
    /// Starts the thread (`pare-blob-hash` when it hashes, else `pare-read-ahead`); gives
    /// `raw` back when it cannot be started.
    fn spawn(
        raw: Box<dyn Read + Send>,
        hash: bool,
        what: &'static str,
    ) -> Result<Self, Box<dyn Read + Send>> {
        let (tx, rx) = sync_channel::<Chunk>(DEPTH);
        // The stream goes through a slot so that it can be taken back if the spawn fails.
        let slot = Arc::new(Mutex::new(Some(raw)));
        let theirs = Arc::clone(&slot);
        let spawned = std::thread::Builder::new()
            .name(
                if hash {
                    "pare-blob-hash"
                } else {
                    "pare-read-ahead"
                }
                .into(),
            )
            .spawn(move || {
                let raw = theirs.lock().ok().and_then(|mut s| s.take());
                if let Some(raw) = raw {
                    produce(raw, hash, &tx);
                }
            });
        match spawned {
            Ok(_) => Ok(ThreadedReader {
                rx,
                cur: Vec::new(),
                pos: 0,
                end: None,
                failed: false,
                what,
            }),
            Err(_) => Err(slot
                .lock()
                .ok()
                .and_then(|mut s| s.take())
                .unwrap_or_else(|| Box::new(io::empty()))),
        }
    }
}

fn produce(mut raw: Box<dyn Read + Send>, hash: bool, tx: &SyncSender<Chunk>) {
    let mut hasher = hash.then(Hasher::default);
    loop {
        // Whole chunks: fewer, larger messages. `read_to_end` retries interrupted reads and
        // keeps what it read before an error.
        let mut buf = Vec::with_capacity(CHUNK);
        let res = (&mut raw).take(CHUNK as u64).read_to_end(&mut buf);
        let filled = buf.len();
        if let Some(h) = &mut hasher {
            h.update(&buf);
        }
        if filled > 0 && tx.send(Chunk::Data(buf)).is_err() {
            return;
        }
        match res {
            Err(e) => {
                let _ = tx.send(Chunk::Failed(e));
                return;
            }
            Ok(_) if filled < CHUNK => {
                let _ = tx.send(Chunk::End(hasher));
                return;
            }
            Ok(_) => {}
        }
    }
}

impl BufRead for ThreadedReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos >= self.cur.len() {
            if self.end.is_some() || self.failed {
                return Ok(&[]);
            }
            match self.rx.recv() {
                Ok(Chunk::Data(chunk)) => {
                    self.cur = chunk;
                    self.pos = 0;
                }
                Ok(Chunk::End(h)) => self.end = Some(h),
                Ok(Chunk::Failed(e)) => {
                    self.failed = true;
                    return Err(e);
                }
                Err(_) => {
                    self.failed = true;
                    return Err(io::Error::other(format!(
                        "the {} thread stopped",
                        self.what
                    )));
                }
            }
        }
        Ok(&self.cur[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.cur.len());
    }
}

impl Read for ThreadedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = buf.len().min(avail.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl HashedStream for ThreadedReader {
    fn finish(&mut self) -> io::Result<Hasher> {
        io::copy(self, &mut io::sink())?;
        match &self.end {
            Some(Some(h)) => Ok(h.clone()),
            _ => Err(io::Error::other(format!(
                "the {} thread stopped",
                self.what
            ))),
        }
    }
}

/// A SHA-256 of bytes handed over by the caller, computed inline or on a thread of its own.
pub(crate) enum BackgroundHasher {
    Inline(Hasher),
    Thread {
        tx: Option<SyncSender<Vec<u8>>>,
        pending: Vec<u8>,
        handle: Option<JoinHandle<Hasher>>,
        lost: bool,
    },
}

impl BackgroundHasher {
    /// Starts the hashing thread, or hashes inline when it cannot be started.
    pub(crate) fn new() -> Self {
        let (tx, rx) = sync_channel::<Vec<u8>>(DEPTH);
        let spawned = std::thread::Builder::new()
            .name("pare-diff-hash".into())
            .spawn(move || hash_all(&rx));
        match spawned {
            Ok(handle) => BackgroundHasher::Thread {
                tx: Some(tx),
                pending: Vec::with_capacity(CHUNK),
                handle: Some(handle),
                lost: false,
            },
            Err(_) => BackgroundHasher::Inline(Hasher::default()),
        }
    }

    pub(crate) fn update(&mut self, buf: &[u8]) {
        match self {
            BackgroundHasher::Inline(h) => h.update(buf),
            BackgroundHasher::Thread {
                tx, pending, lost, ..
            } => {
                pending.extend_from_slice(buf);
                if pending.len() >= CHUNK {
                    let full = std::mem::replace(pending, Vec::with_capacity(CHUNK));
                    if tx.as_ref().is_none_or(|tx| tx.send(full).is_err()) {
                        *lost = true;
                    }
                }
            }
        }
    }

    /// `sha256:<hex>` of everything passed to [`Self::update`]; fails if the thread died.
    pub(crate) fn finish(&mut self) -> io::Result<String> {
        match self {
            BackgroundHasher::Inline(h) => Ok(h.finish()),
            BackgroundHasher::Thread {
                tx,
                pending,
                handle,
                lost,
            } => {
                if let Some(sender) = tx.take() {
                    if !pending.is_empty() && sender.send(std::mem::take(pending)).is_err() {
                        *lost = true;
                    }
                }
                let joined = handle.take().map(|h| h.join());
                match joined {
                    Some(Ok(h)) if !*lost => Ok(h.finish()),
                    _ => Err(io::Error::other("the hashing thread stopped")),
                }
            }
        }
    }
}

fn hash_all(rx: &Receiver<Vec<u8>>) -> Hasher {
    let mut h = Hasher::default();
    while let Ok(chunk) = rx.recv() {
        h.update(&chunk);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_ahead_passes_bytes_and_errors_through() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut r = read_ahead(Box::new(io::Cursor::new(data.clone())));
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);

        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("digest mismatch for sha256:abc"));
                }
                let n = b.len().min(self.0);
                self.0 -= n;
                Ok(n)
            }
        }
        let mut r = read_ahead(Box::new(Failing(10)));
        let mut out = Vec::new();
        let e = r.read_to_end(&mut out).unwrap_err();
        assert!(e.to_string().contains("sha256:abc"));
        assert_eq!(out.len(), 10);
    }

    #[test]
    fn validates_sha256() {
        let ok = format!("sha256:{}", "a".repeat(64));
        assert_eq!(sha256_hex(&ok), Some("a".repeat(64).as_str()));
        assert!(sha256_hex("sha256:../../etc/passwd").is_none());
        assert!(sha256_hex(&format!("sha512:{}", "a".repeat(64))).is_none());
        assert!(sha256_hex(&format!("sha256:{}", "A".repeat(64))).is_none());
        assert!(sha256_hex("sha256:abc").is_none());
    }

    #[test]
    fn hashes() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut r = HashingReader::new(&b"hello"[..]);
        assert_eq!(r.drain().unwrap(), 5);
        assert_eq!(r.hasher.finish(), sha256_digest(b"hello"));
    }

    #[test]
    fn threaded_and_background_hashes_match_inline() {
        let data: Vec<u8> = (0..3_500_000u32).map(|i| (i % 251) as u8).collect();
        let mut r = hashed_stream(Box::new(io::Cursor::new(data.clone())));
        let mut head = vec![0u8; 1000];
        r.read_exact(&mut head).unwrap();
        assert_eq!(head, data[..1000]);
        let h = r.finish().unwrap();
        assert_eq!(
            (h.len, h.finish()),
            (data.len() as u64, sha256_digest(&data))
        );

        let mut b = BackgroundHasher::new();
        assert!(matches!(b, BackgroundHasher::Thread { .. }));
        for piece in data.chunks(300_001) {
            b.update(piece);
        }
        assert_eq!(b.finish().unwrap(), sha256_digest(&data));
        assert_eq!(
            BackgroundHasher::new().finish().unwrap(),
            sha256_digest(b"")
        );
    }
}
