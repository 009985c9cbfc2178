//! A parser for glibc's `/etc/ld.so.cache`.
//!
//! No maintained crate parses this file (goblin reads ELF objects, not the loader's cache), and
//! the format is small, so pare reads it itself. Two layouts exist:
//!
//! * new (`glibc-ld.so.cache1.1`, the only one glibc ≥ 2.32 writes): a 48-byte header
//!   (`magic[17]` "glibc-ld.so.cache", `version[3]` "1.1", nlibs u32, len_strings u32, flags u8,
//!   `pad[3]`, extension_offset u32, `unused[3]` u32), then `nlibs` 24-byte entries (flags i32,
//!   key u32, value u32, osversion u32, hwcap u64). `key`/`value` are offsets of NUL-terminated
//!   strings counted from the start of the new header.
//! * old (`ld.so-1.7.0`, 11 bytes + pad to 12, nlibs u32, 12-byte entries), optionally followed
//!   (8-byte aligned) by a complete new-format cache. Only the embedded new cache is read; a
//!   file with only the old format is rejected as unsupported.
//!
//! The byte order is the host's of the machine that wrote it; pare detects it from `nlibs`
//! plausibility (little-endian first).

use crate::SelectError;
use std::path::Path;

const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const NEW_HEADER: usize = 48;
const NEW_ENTRY: usize = 24;
const OLD_ENTRY: usize = 12;

/// `flags & FLAG_TYPE_MASK` for ELF libc6 libraries.
pub const FLAG_ELF_LIBC6: i32 = 0x0003;
/// The bits of `flags` that give the library type.
pub const FLAG_TYPE_MASK: i32 = 0x00ff;
/// The bits of `flags` that give the architecture variant.
pub const FLAG_REQUIRED_MASK: i32 = 0xff00;
/// x86-64 libraries.
pub const FLAG_X8664_LIB64: i32 = 0x0300;
/// AArch64 libraries.
pub const FLAG_AARCH64_LIB64: i32 = 0x0a00;

/// One cache entry: a soname and the path the loader would use for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// Type and architecture bits (`FLAG_*`).
    pub flags: i32,
    /// The soname.
    pub name: String,
    /// The path the loader opens.
    pub path: String,
    /// Hardware capabilities it needs (new format only, else 0).
    pub hwcap: u64,
}

#[derive(Clone, Copy)]
enum Endian {
    Little,
    Big,
}

fn u32_at(b: &[u8], off: usize, e: Endian) -> Option<u32> {
    let s: [u8; 4] = b.get(off..off + 4)?.try_into().ok()?;
    Some(match e {
        Endian::Little => u32::from_le_bytes(s),
        Endian::Big => u32::from_be_bytes(s),
    })
}

fn u64_at(b: &[u8], off: usize, e: Endian) -> Option<u64> {
    let s: [u8; 8] = b.get(off..off + 8)?.try_into().ok()?;
    Some(match e {
        Endian::Little => u64::from_le_bytes(s),
        Endian::Big => u64::from_be_bytes(s),
    })
}

fn cstr_at(b: &[u8], off: usize) -> Option<String> {
    let rest = b.get(off..)?;
    let end = rest.iter().position(|&c| c == 0)?;
    String::from_utf8(rest[..end].to_vec()).ok()
}

/// Parses the bytes of an `ld.so.cache`. `path` is only used in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Vec<CacheEntry>, SelectError> {
    let bad = |why: &str| SelectError::LdCache {
        path: path.to_path_buf(),
        reason: why.to_string(),
    };
    let new = if bytes.starts_with(NEW_MAGIC) {
        bytes
    } else if bytes.starts_with(OLD_MAGIC) {
        // Skip the old table to find an embedded new cache.
        let nlibs_le =
            u32_at(bytes, 12, Endian::Little).ok_or_else(|| bad("truncated old header"))?;
        let nlibs_be = u32_at(bytes, 12, Endian::Big).ok_or_else(|| bad("truncated old header"))?;
        let nlibs = nlibs_le.min(nlibs_be) as usize;
        let end = 16usize
            .checked_add(
                nlibs
                    .checked_mul(OLD_ENTRY)
                    .ok_or_else(|| bad("old table overflows"))?,
            )
            .ok_or_else(|| bad("old table overflows"))?;
        let aligned = (end + 7) & !7;
        match bytes.get(aligned..) {
            Some(rest) if rest.starts_with(NEW_MAGIC) => rest,
            _ => {
                return Err(bad(
                    "only the old ld.so-1.7.0 format, which pare does not read",
                ));
            }
        }
    } else {
        return Err(bad("unknown magic"));
    };
    if new.len() < NEW_HEADER {
        return Err(bad("truncated header"));
    }
    // Pick the byte order under which the entry table fits in the file.
    let fits = |e: Endian| {
        u32_at(new, 20, e)
            .and_then(|n| (n as usize).checked_mul(NEW_ENTRY))
            .and_then(|t| t.checked_add(NEW_HEADER))
            .is_some_and(|end| end <= new.len())
    };
    let endian = if fits(Endian::Little) {
        Endian::Little
    } else if fits(Endian::Big) {
        Endian::Big
    } else {
        return Err(bad("entry table larger than the file"));
    };
    let nlibs = u32_at(new, 20, endian).unwrap_or(0) as usize;
    let mut out = Vec::with_capacity(nlibs);
    for i in 0..nlibs {
        let off = NEW_HEADER + i * NEW_ENTRY;
        let (Some(flags), Some(key), Some(value), Some(hwcap)) = (
            u32_at(new, off, endian),
            u32_at(new, off + 4, endian),
            u32_at(new, off + 8, endian),
            u64_at(new, off + 16, endian),
        ) else {
            return Err(bad("truncated entry"));
        };
        let name = cstr_at(new, key as usize).ok_or_else(|| bad("entry name out of bounds"))?;
        let lib = cstr_at(new, value as usize).ok_or_else(|| bad("entry path out of bounds"))?;
        out.push(CacheEntry {
            flags: flags as i32,
            name,
            path: lib,
            hwcap,
        });
    }
    Ok(out)
}

/// The cache flag glibc requires for 64-bit libraries of `e_machine` (0 when none is needed).
pub fn required_flag(e_machine: u16, is_64: bool) -> i32 {
    match (e_machine, is_64) {
        (goblin::elf::header::EM_X86_64, true) => FLAG_X8664_LIB64,
        (goblin::elf::header::EM_X86_64, false) => 0x0800, // x32
        (goblin::elf::header::EM_AARCH64, true) => FLAG_AARCH64_LIB64,
        (goblin::elf::header::EM_S390, true) => 0x0400,
        (goblin::elf::header::EM_PPC64, true) => 0x0500,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a little-endian new-format cache by hand.
    fn build(entries: &[(i32, &str, &str)]) -> Vec<u8> {
        let mut strings = Vec::new();
        let base = NEW_HEADER + entries.len() * NEW_ENTRY;
        let mut offs = Vec::new();
        for (_, k, v) in entries {
            let ko = base + strings.len();
            strings.extend_from_slice(k.as_bytes());
            strings.push(0);
            let vo = base + strings.len();
            strings.extend_from_slice(v.as_bytes());
            strings.push(0);
            offs.push((ko as u32, vo as u32));
        }
        let mut b = NEW_MAGIC.to_vec();
        b.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        b.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        b.extend_from_slice(&[2, 0, 0, 0]);
        b.extend_from_slice(&[0; 16]);
        for ((f, _, _), (ko, vo)) in entries.iter().zip(offs) {
            b.extend_from_slice(&f.to_le_bytes());
            b.extend_from_slice(&ko.to_le_bytes());
            b.extend_from_slice(&vo.to_le_bytes());
            b.extend_from_slice(&0u32.to_le_bytes());
            b.extend_from_slice(&0u64.to_le_bytes());
        }
        b.extend_from_slice(&strings);
        b
    }

    #[test]
    fn parses_synthetic_cache() {
        let b = build(&[
            (0x303, "libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1"),
            (3, "libq.so", "/usr/lib/libq.so"),
        ]);
        let e = parse(&b, Path::new("x")).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].name, "libz.so.1");
        assert_eq!(e[0].path, "/lib/x86_64-linux-gnu/libz.so.1");
        assert_eq!(e[0].flags, 0x303);
        assert_eq!(e[1].flags & FLAG_REQUIRED_MASK, 0);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..400), n in 0u32..50) {
            let mut b = NEW_MAGIC.to_vec();
            b.extend_from_slice(&n.to_le_bytes());
            b.extend_from_slice(&tail);
            let _ = parse(&b, Path::new("x"));
            let mut o = OLD_MAGIC.to_vec();
            o.push(0);
            o.extend_from_slice(&n.to_le_bytes());
            o.extend_from_slice(&tail);
            let _ = parse(&o, Path::new("x"));
        }
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert!(parse(b"nope", Path::new("x")).is_err());
        let mut b = build(&[(0x303, "a", "b")]);
        b.truncate(60);
        assert!(parse(&b, Path::new("x")).is_err());
        let mut b = build(&[(0x303, "a", "b")]);
        b[20] = 0xff; // absurd count
        b[21] = 0xff;
        assert!(parse(&b, Path::new("x")).is_err());
        let mut b = build(&[(0x303, "a", "b")]);
        let l = b.len();
        b[NEW_HEADER + 4..NEW_HEADER + 8].copy_from_slice(&(l as u32 + 10).to_le_bytes());
        assert!(parse(&b, Path::new("x")).is_err());
    }
}
