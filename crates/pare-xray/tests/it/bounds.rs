//! Resource bounds: a layer with a million entries, generated as a tar stream while it is
//! read (nothing on disk), is analyzed with memory proportional to the entries' metadata only.
//! Alone in its test binary so that the peak RSS it reads is its own.

use std::io::{self, Read};

use pare_image::{Compression, ImageConfiguration, LayerDescriptor, ResolvedImage};
use pare_source::{ImageSource, LayerContent, SourceError};

const ENTRIES: u64 = 1_000_000;
const PER_DIR: u64 = 1000;

/// A tar stream of `ENTRIES` entries made on the fly: a directory per thousand files, every
/// file 100 bytes.
struct GenTar {
    next: u64,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl GenTar {
    fn refill(&mut self) {
        self.buf.clear();
        self.pos = 0;
        if self.next >= ENTRIES {
            if !self.done {
                self.buf.resize(1024, 0);
                self.done = true;
            }
            return;
        }
        let i = self.next;
        self.next += 1;
        let (dir, file) = (i / PER_DIR, i % PER_DIR);
        let mut h = tar::Header::new_gnu();
        if file == 0 {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_path(format!("usr/share/d{dir:04}/")).unwrap();
            h.set_mode(0o755);
            h.set_size(0);
            h.set_cksum();
            self.buf.extend_from_slice(h.as_bytes());
            h = tar::Header::new_gnu();
        }
        h.set_entry_type(tar::EntryType::Regular);
        h.set_path(format!("usr/share/d{dir:04}/file-{file:04}.txt"))
            .unwrap();
        h.set_mode(0o644);
        h.set_size(100);
        h.set_cksum();
        self.buf.extend_from_slice(h.as_bytes());
        self.buf.extend_from_slice(&[b'x'; 100]);
        self.buf.resize(self.buf.len() + 412, 0);
    }
}

impl Read for GenTar {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.buf.len() {
            self.refill();
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

struct Generated(ResolvedImage);

impl ImageSource for Generated {
    fn image(&self) -> &ResolvedImage {
        &self.0
    }
    fn open_layer(&self, _index: usize) -> Result<LayerContent, SourceError> {
        Ok(LayerContent::Tar(Box::new(GenTar {
            next: 0,
            buf: Vec::new(),
            pos: 0,
            done: false,
        })))
    }
    fn kind(&self) -> &'static str {
        "generated"
    }
}

/// Peak resident memory of this process (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_layer_with_a_million_entries_is_analyzed_in_bounded_memory() {
    let config: ImageConfiguration = serde_json::from_str(
        r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:1"]},
            "history":[{"created_by":"COPY many /usr/share"}]}"#,
    )
    .unwrap();
    let src = Generated(ResolvedImage {
        name: "generated:million".into(),
        manifest_digest: None,
        config_digest: pare_image::digest::sha256(&[0xc; 32]),
        config,
        layers: vec![LayerDescriptor {
            digest: format!("sha256:{:064x}", 1),
            diff_id: None,
            compressed_size: None,
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            compression: Compression::None,
        }],
    });
    let before = peak_rss_kib();
    let t = std::time::Instant::now();
    let report = pare_xray::analyze(&src, &pare_xray::Options::default()).unwrap();
    let took = t.elapsed();
    let peak = peak_rss_kib();
    let dirs = ENTRIES / PER_DIR;
    assert_eq!(report.layers[0].entries, ENTRIES + dirs);
    assert_eq!(report.total_size, ENTRIES * 100);
    // Every file has the same content: one duplicate group of a million copies.
    eprintln!(
        "million entries: {took:?}, peak RSS {} MiB (before {} MiB), {} bytes per entry",
        peak / 1024,
        before / 1024,
        (peak - before) * 1024 / (ENTRIES + dirs)
    );
    // The million copies are one group, listed by its first paths only.
    assert_eq!(report.duplicates[0].copies(), ENTRIES);
    assert_eq!(
        report.duplicates[0].paths.len(),
        pare_xray::MAX_DUPLICATE_PATHS
    );
    // Metadata only (about 180 bytes an entry: 175 MiB in scripts/bench-entries; 273 MiB while
    // the duplicate group held a million paths, 311 MiB before the merged view kept its nodes
    // out of the B-tree); the 100 MB of content is streamed.
    assert!(peak < 200 * 1024, "peak RSS {} MiB", peak / 1024);
}
