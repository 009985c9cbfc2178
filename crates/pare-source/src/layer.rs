//! The verified, decompressing layer stream behind [`crate::LayerContent::Tar`].
//!
//! Stack, bottom up: the stored blob → a hasher of the stored bytes (the blob digest) → a
//! decoder picked from the magic bytes (gzip, zstd or none; checked against the media type) →
//! a hasher of the uncompressed bytes (the diff ID). When the decoder reaches EOF the reader
//! drains what is left of the stored blob, then checks size, blob digest and diff ID, and returns
//! an `io::Error` wrapping a [`SourceError`] naming the digest instead of EOF on a mismatch.
//!
//! Both hashers run on threads of their own (256 KiB chunks through bounded channels), so the
//! thread reading this stream does nothing but decompress. The threads end when the stream is
//! dropped, read to its end or fails.

use std::io::{self, Read};

use crate::digest::{BackgroundHasher, HashedStream, counted_stream, hashed_stream};
use crate::{Compression, SourceError};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// What the stored blob must hash to.
#[derive(Debug, Clone)]
pub(crate) struct BlobSpec {
    /// Expected digest of the stored bytes (`sha256:…`, validated).
    pub digest: String,
    /// Expected stored size, when known.
    pub size: Option<u64>,
    /// Expected digest of the uncompressed tar.
    pub diff_id: Option<String>,
    /// Compression the media type announces.
    pub hint: Compression,
}

/// Compression named by a layer media type.
pub(crate) fn compression_from_media_type(media_type: &str) -> Compression {
    if media_type.ends_with("+gzip")
        || media_type.ends_with(".tar.gzip")
        || media_type.ends_with("+gz")
    {
        Compression::Gzip
    } else if media_type.ends_with("+zstd") {
        Compression::Zstd
    } else {
        Compression::None
    }
}

enum Decode {
    Plain(Box<dyn HashedStream>),
    Gzip(Box<flate2::bufread::MultiGzDecoder<Box<dyn HashedStream>>>),
    Zstd(zstd::stream::read::Decoder<'static, Box<dyn HashedStream>>),
}

impl Decode {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decode::Plain(r) => r.read(buf),
            Decode::Gzip(r) => r.read(buf),
            Decode::Zstd(r) => r.read(buf),
        }
    }

    fn stored(&mut self) -> &mut Box<dyn HashedStream> {
        match self {
            Decode::Plain(r) => r,
            Decode::Gzip(r) => r.get_mut(),
            Decode::Zstd(r) => r.get_mut(),
        }
    }
}

enum State {
    Reading,
    Done,
    Failed(String),
}

/// A verified layer stream; see the module docs.
pub(crate) struct LayerReader {
    decode: Decode,
    /// Hasher of the uncompressed bytes; `None` for uncompressed blobs (the stored hash is it)
    /// and when there is no diff ID to check.
    out: Option<BackgroundHasher>,
    spec: BlobSpec,
    /// The stored stream checks its own digest: only its length is known here.
    verified: bool,
    state: State,
}

fn detect(prefix: &[u8]) -> Compression {
    if prefix.starts_with(&GZIP_MAGIC) {
        Compression::Gzip
    } else if prefix.starts_with(&ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Wraps a stored blob in the verifying, decompressing reader.
/// The layer's tar stream, verified, as sources hand it out: a compressed layer is decoded
/// (and its digests checked) on a read-ahead thread of its own, so that decompression
/// overlaps with whatever reads the tar. An uncompressed one needs no such thread: its blob
/// is already read and hashed on one.
///
/// `verified`: `raw` checks the stored size and digest itself and fails its last read on a
/// mismatch (a blob downloaded by [`crate::registry`]), so it is only counted here, not hashed
/// a second time.
pub(crate) fn layer_stream(
    raw: Box<dyn Read + Send>,
    spec: BlobSpec,
    verified: bool,
) -> Result<Box<dyn Read + Send>, SourceError> {
    let reader = open_layer_reader(raw, spec, verified)?;
    Ok(match reader.decode {
        Decode::Plain(_) => Box::new(reader),
        Decode::Gzip(_) | Decode::Zstd(_) => crate::digest::read_ahead(Box::new(reader)),
    })
}

#[cfg(test)]
pub(crate) fn layer_reader(
    raw: Box<dyn Read + Send>,
    spec: BlobSpec,
) -> Result<LayerReader, SourceError> {
    open_layer_reader(raw, spec, false)
}

fn open_layer_reader(
    mut raw: Box<dyn Read + Send>,
    spec: BlobSpec,
    verified: bool,
) -> Result<LayerReader, SourceError> {
    let mut prefix = vec![0u8; 4];
    let mut got = 0;
    while got < prefix.len() {
        match raw.read(&mut prefix[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(SourceError::Decode {
                    digest: spec.digest.clone(),
                    source: e,
                });
            }
        }
    }
    prefix.truncate(got);
    let found = detect(&prefix);
    if spec.hint != Compression::None && found != spec.hint {
        return Err(SourceError::Corrupt {
            digest: spec.digest.clone(),
            message: format!(
                "media type says {:?} but the content is {:?}",
                spec.hint, found
            )
            .to_lowercase(),
        });
    }
    // The sniffed bytes go back in front; the stored hasher sees the whole blob.
    let raw = Box::new(io::Cursor::new(prefix).chain(raw));
    let stored = if verified {
        counted_stream(raw)
    } else {
        hashed_stream(raw)
    };
    let decode = match found {
        Compression::None => Decode::Plain(stored),
        Compression::Gzip => Decode::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(stored))),
        Compression::Zstd => Decode::Zstd(
            zstd::stream::read::Decoder::with_buffer(stored).map_err(|source| {
                SourceError::Decode {
                    digest: spec.digest.clone(),
                    source,
                }
            })?,
        ),
    };
    let out = (found != Compression::None && spec.diff_id.is_some()).then(BackgroundHasher::new);
    Ok(LayerReader {
        decode,
        out,
        spec,
        verified,
        state: State::Reading,
    })
}

impl LayerReader {
    fn fail(&mut self, err: SourceError, kind: io::ErrorKind) -> io::Error {
        self.state = State::Failed(pare_progress::chain(&err));
        io::Error::new(kind, err)
    }

    /// Called at the decoder's EOF: drain the stored blob and check everything.
    fn finish(&mut self) -> io::Result<()> {
        let digest = self.spec.digest.clone();
        let stored = match self.decode.stored().finish() {
            Ok(h) => h,
            Err(e) => {
                let kind = e.kind();
                return Err(self.fail(SourceError::Decode { digest, source: e }, kind));
            }
        };
        let stored_len = stored.len;
        let stored_digest = if self.verified {
            digest.clone()
        } else {
            stored.finish()
        };
        if let Some(size) = self.spec.size.filter(|&s| s != stored_len) {
            let err = SourceError::SizeMismatch {
                digest,
                expected: size,
                actual: stored_len,
            };
            return Err(self.fail(err, io::ErrorKind::UnexpectedEof));
        }
        if stored_digest != digest {
            let err = SourceError::DigestMismatch {
                digest,
                actual: stored_digest,
            };
            return Err(self.fail(err, io::ErrorKind::InvalidData));
        }
        if let Some(diff_id) = self.spec.diff_id.clone() {
            let actual = match self.out.as_mut().map(BackgroundHasher::finish) {
                None => stored_digest,
                Some(Ok(actual)) => actual,
                Some(Err(e)) => {
                    let kind = e.kind();
                    let err = SourceError::Decode { digest, source: e };
                    return Err(self.fail(err, kind));
                }
            };
            if actual != diff_id {
                let err = SourceError::DiffIdMismatch { diff_id, actual };
                return Err(self.fail(err, io::ErrorKind::InvalidData));
            }
        }
        self.state = State::Done;
        Ok(())
    }
}

impl Read for LayerReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.state {
            State::Done => return Ok(0),
            State::Failed(msg) => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, msg.clone()));
            }
            State::Reading => {}
        }
        if buf.is_empty() {
            return Ok(0);
        }
        match self.decode.read(buf) {
            Ok(0) => {
                self.finish()?;
                Ok(0)
            }
            Ok(n) => {
                if let Some(out) = &mut self.out {
                    out.update(&buf[..n]);
                }
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let kind = e.kind();
                let digest = self.spec.digest.clone();
                Err(self.fail(SourceError::Decode { digest, source: e }, kind))
            }
        }
    }
}

/// Reads `reader` to its end, discarding the bytes, so that a verifying layer stream checks its
/// digests. Use it after a tar parser stopped at the end-of-archive marker: the parser does not
/// read the blob's tail, and the digest is only checked at EOF.
pub fn drain_and_verify(reader: &mut dyn Read) -> io::Result<u64> {
    io::copy(reader, &mut io::sink())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256_digest;
    use pare_test_support::fixture::compress;

    fn read(stored: Vec<u8>, spec: BlobSpec) -> io::Result<Vec<u8>> {
        let mut r =
            layer_reader(Box::new(io::Cursor::new(stored)), spec).map_err(io::Error::other)?;
        let mut out = Vec::new();
        r.read_to_end(&mut out)?;
        Ok(out)
    }

    fn spec(stored: &[u8], plain: &[u8], hint: Compression) -> BlobSpec {
        BlobSpec {
            digest: sha256_digest(stored),
            size: Some(stored.len() as u64),
            diff_id: Some(sha256_digest(plain)),
            hint,
        }
    }

    #[test]
    fn concatenated_gzip_members_and_zstd_frames() {
        let (a, b) = (vec![1u8; 70_000], vec![2u8; 50_000]);
        let plain = [a.clone(), b.clone()].concat();
        for c in [Compression::Gzip, Compression::Zstd] {
            let stored = [compress(&a, c).unwrap(), compress(&b, c).unwrap()].concat();
            assert_eq!(
                read(stored.clone(), spec(&stored, &plain, c)).unwrap(),
                plain,
                "{c:?}"
            );
        }
    }

    #[test]
    fn empty_and_tiny_blobs() {
        assert_eq!(
            read(Vec::new(), spec(b"", b"", Compression::None)).unwrap(),
            b""
        );
        assert_eq!(
            read(b"x".to_vec(), spec(b"x", b"x", Compression::None)).unwrap(),
            b"x"
        );
        // An empty blob announced as gzip is refused up front.
        assert!(layer_reader(Box::new(io::empty()), spec(b"", b"", Compression::Gzip)).is_err());
    }

    #[test]
    fn size_mismatch_is_reported() {
        let mut s = spec(b"abc", b"abc", Compression::None);
        s.size = Some(10);
        let err = read(b"abc".to_vec(), s).unwrap_err();
        assert!(
            err.to_string().contains("expected 10 bytes, got 3"),
            "{err}"
        );
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn errors_stick() {
        let stored = compress(b"hello world", Compression::Gzip).unwrap();
        let mut s = spec(&stored, b"hello world", Compression::Gzip);
        s.diff_id = Some(sha256_digest(b"other"));
        let mut r = layer_reader(Box::new(io::Cursor::new(stored)), s).unwrap();
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).is_err());
        assert!(
            r.read(&mut [0u8; 16]).is_err(),
            "a failed stream must not turn into a clean EOF"
        );
    }

    /// Several MiB, so that every thread hands over many chunks; not too compressible.
    fn big_plain() -> Vec<u8> {
        let mut x = 0x1234_5678u32;
        (0..5_000_000)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                if i % 3 == 0 {
                    (x & 0xff) as u8
                } else {
                    b'a' + (i % 7) as u8
                }
            })
            .collect()
    }

    #[test]
    fn big_layers_verify_and_mismatches_name_the_digest() {
        let plain = big_plain();
        for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
            let stored = compress(&plain, c).unwrap();
            assert!(
                stored.len() > 1 << 20,
                "{c:?}: want several chunks of stored bytes"
            );
            assert_eq!(
                read(stored.clone(), spec(&stored, &plain, c)).unwrap(),
                plain,
                "{c:?}"
            );

            let mut s = spec(&stored, &plain, c);
            s.digest = sha256_digest(b"other");
            let err = read(stored.clone(), s).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            let inner = err.get_ref().and_then(|e| e.downcast_ref::<SourceError>());
            assert!(
                matches!(inner, Some(SourceError::DigestMismatch { .. })),
                "{c:?}: {err}"
            );
            assert!(err.to_string().contains(&sha256_digest(b"other")), "{err}");
            assert!(err.to_string().contains(&sha256_digest(&stored)), "{err}");

            let mut s = spec(&stored, &plain, c);
            s.diff_id = Some(sha256_digest(b"other"));
            let err = read(stored.clone(), s).unwrap_err();
            let inner = err.get_ref().and_then(|e| e.downcast_ref::<SourceError>());
            assert!(
                matches!(inner, Some(SourceError::DiffIdMismatch { .. })),
                "{c:?}: {err}"
            );
            assert!(err.to_string().contains(&sha256_digest(&plain)), "{err}");

            let mut s = spec(&stored, &plain, c);
            s.size = Some(stored.len() as u64 + 1);
            let err = read(stored.clone(), s).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{c:?}: {err}");

            // Without a diff ID the blob digest is still checked.
            let mut s = spec(&stored, &plain, c);
            s.diff_id = None;
            assert_eq!(read(stored.clone(), s).unwrap(), plain, "{c:?}");
        }
    }

    /// Hands out `data`, then fails (or, with `fail: false`, never ends); records its drop.
    struct Source {
        data: io::Cursor<Vec<u8>>,
        fail: bool,
        dropped: std::sync::Arc<std::sync::atomic::AtomicBool>,
    }

    impl Read for Source {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.data.read(buf)? {
                0 if self.fail => Err(io::Error::other("disk on fire")),
                0 => {
                    buf.fill(0);
                    Ok(buf.len())
                }
                n => Ok(n),
            }
        }
    }

    impl Drop for Source {
        fn drop(&mut self) {
            self.dropped
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn read_errors_of_the_blob_name_the_digest() {
        let plain = big_plain();
        let stored = compress(&plain, Compression::Gzip).unwrap();
        let half = stored[..stored.len() / 2].to_vec();
        let dropped = std::sync::Arc::default();
        let src = Source {
            data: io::Cursor::new(half),
            fail: true,
            dropped,
        };
        let s = spec(&stored, &plain, Compression::Gzip);
        let mut r = layer_reader(Box::new(src), s).unwrap();
        // As the user sees it: the error, then its causes.
        let err = pare_progress::chain(&r.read_to_end(&mut Vec::new()).unwrap_err());
        assert!(err.contains("disk on fire"), "{err}");
        assert!(err.contains(&sha256_digest(&stored)), "{err}");
        assert!(r.read(&mut [0u8; 16]).is_err());
    }

    #[test]
    fn dropping_the_reader_early_ends_its_threads() {
        let plain = big_plain();
        let stored = compress(&plain, Compression::Gzip).unwrap();
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // An endless blob: only the drop of the reader can stop the thread reading it.
        let src = Source {
            data: io::Cursor::new(stored.clone()),
            fail: false,
            dropped: dropped.clone(),
        };
        let mut r = layer_reader(Box::new(src), spec(&stored, &plain, Compression::Gzip)).unwrap();
        let mut buf = vec![0u8; 100_000];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(buf, plain[..100_000]);
        drop(r);
        let start = std::time::Instant::now();
        while !dropped.load(std::sync::atomic::Ordering::SeqCst) {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(20),
                "the blob thread did not end"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
