//! Closure and write throughput on a real rootfs.
//!
//! `CARGO_TARGET_DIR=… cargo run --release -p pare-write --example bench -- /var/cache/pare/bookworm`

use std::path::PathBuf;
use std::time::Instant;

use pare_select::{SelectInputs, select};
use pare_write::{ImageMeta, Output, write_image};

fn main() {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "/var/cache/pare/bookworm".into()));
    let runs = 5;

    let bash = SelectInputs { include_bins: vec!["/usr/bin/bash".into()], ..Default::default() };
    let t = Instant::now();
    let mut n = 0;
    for _ in 0..runs {
        n = select(&root, &bash).expect("select").entries.len();
    }
    println!("closure /usr/bin/bash: {n} entries, {:.1} ms", t.elapsed().as_secs_f64() * 1e3 / runs as f64);

    let all_bins = SelectInputs { include_paths: vec!["/usr/bin/*".into(), "/usr/sbin/*".into()], ..Default::default() };
    let t = Instant::now();
    for _ in 0..runs {
        n = select(&root, &all_bins).expect("select").entries.len();
    }
    println!("closure of every /usr/bin + /usr/sbin program: {n} entries, {:.1} ms", t.elapsed().as_secs_f64() * 1e3 / runs as f64);

    let everything = SelectInputs { include_paths: vec!["/".into()], ..Default::default() };
    let t = Instant::now();
    let sel = select(&root, &everything).expect("select");
    println!("select whole rootfs: {} entries, {:.1} ms", sel.entries.len(), t.elapsed().as_secs_f64() * 1e3);

    let meta = ImageMeta::from_config_json(br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#, "bench")
        .expect("meta");
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..3 {
        let t = Instant::now();
        let w = write_image(&root, &sel, &meta, Output::Oci { dir: dir.path().join(format!("o{i}")), tag: None }, Some(0)).expect("write");
        let s = t.elapsed().as_secs_f64();
        println!(
            "write whole rootfs: {} entries, {:.1} MB tar → {:.1} MB gzip in {:.2} s = {:.0} MB/s (uncompressed) {}",
            w.layer.entries,
            w.layer.uncompressed_size as f64 / 1e6,
            w.layer.size as f64 / 1e6,
            s,
            w.layer.uncompressed_size as f64 / 1e6 / s,
            w.manifest_digest
        );
    }
}
