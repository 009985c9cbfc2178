//! Digests: validation of `sha256:<hex>` strings and hashing readers.

use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

/// Checks that `digest` is `sha256:` followed by 64 lowercase hex digits and returns the hex
/// part. Anything else (other algorithms, path separators, `..`) is refused, so the result is
/// safe to use as a file name.
pub fn sha256_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))).then_some(hex)
}

/// `sha256:<hex>` of a byte slice.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
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
        format!("sha256:{}", hex::encode(self.sha.clone().finalize()))
    }
}

/// Hashes every byte that passes through it.
pub(crate) struct HashingReader<R> {
    pub(crate) inner: R,
    pub(crate) hasher: Hasher,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader { inner, hasher: Hasher::default() }
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
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
