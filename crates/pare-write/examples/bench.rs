//! Closure and write throughput on a real rootfs.
//!
//! `CARGO_TARGET_DIR=… cargo run --release -p pare-write --example bench -- /var/cache/pare/bookworm`

use std::path::PathBuf;
use std::time::Instant;

use pare_select::{SelectInputs, select};
use pare_write::{ImageMeta, Output, write_image};

fn main() {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "/var/cache/pare/bookworm".into()),
    );
    let runs = 5;

    let bash = SelectInputs {
        include_bins: vec!["/usr/bin/bash".into()],
        ..Default::default()
    };
    let t = Instant::now();
    let mut n = 0;
    for _ in 0..runs {
        n = select(&root, &bash).expect("select").entries.len();
    }
    println!(
        "closure /usr/bin/bash: {n} entries, {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3 / runs as f64
    );

    let all_bins = SelectInputs {
        include_paths: vec!["/usr/bin/*".into(), "/usr/sbin/*".into()],
        ..Default::default()
    };
    let t = Instant::now();
    for _ in 0..runs {
        n = select(&root, &all_bins).expect("select").entries.len();
    }
    println!(
        "closure of every /usr/bin + /usr/sbin program: {n} entries, {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3 / runs as f64
    );

    let everything = SelectInputs {
        include_paths: vec!["/".into()],
        ..Default::default()
    };
    let t = Instant::now();
    let sel = select(&root, &everything).expect("select");
    println!(
        "select whole rootfs: {} entries, {:.1} ms",
        sel.entries.len(),
        t.elapsed().as_secs_f64() * 1e3
    );

    // CPU seconds (user+sys) of this process from /proc: the machine may be shared.
    let cpu = || -> f64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let after = stat.rsplit(')').next().unwrap_or("");
        let f: Vec<f64> = after
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        // fields after ')' start at state (index 0 is state, not numeric → filtered); utime/stime
        // are the 14th/15th of the whole line = positions 11/12 among numeric fields after ')'.
        (f.get(10).copied().unwrap_or(0.0) + f.get(11).copied().unwrap_or(0.0)) / 100.0
    };
    for threads in [
        1,
        pare_write::pgzip::ParGz::<std::io::Sink>::default_threads(),
    ] {
        let (t, c) = (Instant::now(), cpu());
        let (_, info) = pare_write::write_layer_threads(&root, &sel, 0, std::io::sink(), threads)
            .expect("layer");
        let (wall, cpus) = (t.elapsed().as_secs_f64(), cpu() - c);
        let mb = info.uncompressed_size as f64 / 1e6;
        println!(
            "layer only, {threads} thread(s): {mb:.1} MB in {wall:.2} s wall ({:.0} MB/s), {cpus:.2} s CPU ({:.0} MB/s per CPU-second) {}",
            mb / wall,
            mb / cpus.max(1e-9),
            info.digest
        );
    }

    let meta = ImageMeta::from_config_json(br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#, "bench")
        .expect("meta");
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..3 {
        let t = Instant::now();
        let w = write_image(
            &root,
            &sel,
            &meta,
            Output::Oci {
                dir: dir.path().join(format!("o{i}")),
                tag: None,
            },
            Some(0),
        )
        .expect("write");
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
