//! The layer tar reader: raw (mutated) tar bytes, checksums repaired, read into a layer index
//! with content hashing and capture on, as `pare xray` reads a layer.

use std::io::Cursor;

use pare_layerfs::{Capture, LayerContent, ReadOptions, read_layer};

struct Head;

impl Capture for Head {
    fn want(&self, _path: &str, size: u64) -> usize {
        usize::try_from(size.min(64)).unwrap_or(64)
    }
    fn take(&self, _path: &str, data: &[u8]) -> Option<Box<[u8]>> {
        Some(data.into())
    }
}

/// The body: the input, its tar header checksums repaired, read as one layer (content hashes
/// and a 64-byte capture of every file on) and merged. A read error must be one line.
pub fn run(data: &[u8]) {
    let tar = crate::tarw::fix_checksums(data);
    let opts = ReadOptions {
        hash: true,
        capture: Some(&Head),
        threads: 1,
        ..Default::default()
    };
    let mut merged = pare_layerfs::MergedFs::new();
    match read_layer(LayerContent::Tar(Box::new(Cursor::new(tar))), "fuzz", &opts) {
        Ok(idx) => {
            merged.apply(idx);
            let _ = (merged.final_size(), merged.wasted_bytes(), merged.total_size());
        }
        Err(e) => crate::one_line(&e),
    }
}
