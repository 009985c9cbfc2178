//! Content digests: oci-spec's typed [`Digest`], and the one function that makes a
//! `sha256:<hex>` digest from a SHA-256 hash, so the form is written in one place.

use std::fmt::Write as _;

pub use oci_spec::image::{Digest, Sha256Digest};

/// The `sha256:<64 lowercase hex digits>` digest of a finished SHA-256 hash.
pub fn sha256(hash: &[u8; 32]) -> Digest {
    let mut hex = String::with_capacity(64);
    for b in hash {
        let _ = write!(hex, "{b:02x}");
    }
    sha256_from_hex(&hex).expect("64 lowercase hex digits are a sha256 digest")
}

/// The digest `sha256:<hex>` when `hex` is exactly 64 lowercase hex digits (so that it is
/// also safe as a file name), e.g. for a blob file named by its hex.
pub fn sha256_from_hex(hex: &str) -> Option<Digest> {
    let valid = hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let typed: Sha256Digest = hex.parse().ok().filter(|_| valid)?;
    Some(typed.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_sha256_as_oci_does() {
        let mut h = [0u8; 32];
        h[0] = 0xab;
        h[31] = 0x01;
        let d = sha256(&h);
        assert_eq!(d.to_string(), format!("sha256:ab{}01", "0".repeat(60)));
        assert_eq!(d.digest().len(), 64);
        assert_eq!(sha256_from_hex(d.digest()), Some(d.clone()));
        for bad in [
            "AB".repeat(32),
            "ab".repeat(31),
            "../".repeat(21) + "a",
            String::new(),
        ] {
            assert_eq!(sha256_from_hex(&bad), None, "{bad}");
        }
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            format!("\"{d}\""),
            "serializes as the plain string"
        );
    }
}
