//! Tar bytes for the harnesses: headers written field by field so that any name (absolute,
//! `..`, very long, not UTF-8) reaches the reader, and a checksum fix-up so that mutated raw
//! archives get past the header checksum.

use tar::{EntryType, Header};

/// Appends one entry. Names longer than 100 bytes go in a GNU long-name record first.
pub fn entry(out: &mut Vec<u8>, kind: EntryType, name: &[u8], link: &[u8], mode: u32, data: &[u8]) {
    if name.len() > 100 {
        long(out, EntryType::GNULongName, name);
    }
    if link.len() > 100 {
        long(out, EntryType::GNULongLink, link);
    }
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(data.len() as u64);
    h.set_mtime(1_700_000_000);
    {
        let old = h.as_old_mut();
        let n = name.len().min(100);
        old.name[..n].copy_from_slice(&name[..n]);
        let l = link.len().min(100);
        old.linkname[..l].copy_from_slice(&link[..l]);
    }
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    pad(out);
}

/// A GNU sparse entry claiming `real_size` bytes with `data` stored at offset 0.
pub fn sparse(out: &mut Vec<u8>, name: &[u8], data: &[u8], real_size: u64) {
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::GNUSparse);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    {
        let n = name.len().min(100);
        h.as_old_mut().name[..n].copy_from_slice(&name[..n]);
    }
    pare_test_support::layer::set_sparse_map(&mut h, data.len() as u64, real_size);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    pad(out);
}

/// A PAX extended header record set for the next entry.
pub fn pax(out: &mut Vec<u8>, records: &[(&str, &[u8])]) {
    let mut data = Vec::new();
    for (k, v) in records {
        // "LEN KEY=VALUE\n" where LEN counts itself.
        let rest = k.len() + v.len() + 3;
        let mut len = rest + 1;
        while len.to_string().len() + rest != len {
            len += 1;
        }
        data.extend_from_slice(format!("{len} {k}=").as_bytes());
        data.extend_from_slice(v);
        data.push(b'\n');
    }
    entry(out, EntryType::XHeader, b"pax", b"", 0o644, &data);
}

fn long(out: &mut Vec<u8>, kind: EntryType, name: &[u8]) {
    let mut data = name.to_vec();
    data.push(0);
    entry(out, kind, b"././@LongLink", b"", 0o644, &data);
}

fn pad(out: &mut Vec<u8>) {
    let rem = out.len() % 512;
    if rem != 0 {
        out.resize(out.len() + 512 - rem, 0);
    }
}

/// The end-of-archive marker.
pub fn finish(out: &mut Vec<u8>) {
    out.resize(out.len() + 1024, 0);
}

/// Rewrites the checksum of every header reachable by following header sizes, so that random
/// mutations of a tar exercise the parser beyond its checksum test.
pub fn fix_checksums(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut off = 0usize;
    while off + 512 <= out.len() {
        let block = &mut out[off..off + 512];
        if block.iter().all(|&b| b == 0) {
            off += 512;
            continue;
        }
        block[148..156].fill(b' ');
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        let s = format!("{sum:07o}\0");
        block[148..156].copy_from_slice(&s.as_bytes()[s.len() - 8..]);
        let size = octal(&block[124..136]).unwrap_or(0);
        let blocks = size.div_ceil(512);
        off = usize::try_from(blocks)
            .ok()
            .and_then(|b| b.checked_mul(512))
            .and_then(|b| b.checked_add(off + 512))
            .unwrap_or(usize::MAX);
    }
    out
}

fn octal(field: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(field).ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c == ' ');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_entries_read_back_and_fixup_keeps_valid_archives() {
        let mut t = Vec::new();
        entry(&mut t, EntryType::Regular, b"a/b", b"", 0o644, b"hello");
        let long_name = vec![b'x'; 150];
        entry(&mut t, EntryType::Symlink, &long_name, b"../up", 0o777, b"");
        pax(&mut t, &[("SCHILY.xattr.security.capability", b"\x01")]);
        entry(&mut t, EntryType::Regular, b"cap", b"", 0o755, b"");
        finish(&mut t);
        // Checksums rewritten in another valid spelling read back the same.
        let t = fix_checksums(&t);
        let mut ar = tar::Archive::new(&t[..]);
        let names: Vec<Vec<u8>> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path_bytes().into_owned())
            .collect();
        assert_eq!(names, vec![b"a/b".to_vec(), long_name, b"cap".to_vec()]);
        // A broken checksum is repaired.
        let mut bad = t.clone();
        bad[0] = b'z';
        let fixed = fix_checksums(&bad);
        assert!(
            tar::Archive::new(&fixed[..])
                .entries()
                .unwrap()
                .next()
                .unwrap()
                .is_ok()
        );
    }
}
