//! Benchmark helper: opens an image and reads (decompresses + verifies) every layer, one
//! thread per layer, then prints timings.
//!
//! `cargo run --release -p pare-source --example read_layers -- REF [--no-direct] [--serial] [--contents]`
//! `--contents` also reads every file of overlay2 layer directories (default: walk + stat).

use std::io::Read;
use std::path::Path;
use std::time::Instant;

use pare_source::{ImageRef, LayerContent, OpenOptions, drain_and_verify, open};

fn walk(dir: &Path, contents: bool, buf: &mut [u8]) -> std::io::Result<(u64, u64)> {
    let (mut files, mut bytes) = (0, 0);
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let meta = std::fs::symlink_metadata(e.path())?;
        if meta.is_dir() {
            let (f, b) = walk(&e.path(), contents, buf)?;
            files += f;
            bytes += b;
        } else {
            files += 1;
            if meta.is_file() {
                bytes += meta.len();
                if contents {
                    let mut f = std::fs::File::open(e.path())?;
                    while f.read(buf)? > 0 {}
                }
            }
        }
    }
    Ok((files, bytes))
}

fn read_layer(src: &dyn pare_source::ImageSource, i: usize, contents: bool) -> Result<u64, String> {
    match src.open_layer(i).map_err(|e| e.to_string())? {
        LayerContent::Tar(mut r) => drain_and_verify(&mut r).map_err(|e| e.to_string()),
        LayerContent::OverlayDir(d) => {
            let mut buf = vec![0u8; 256 * 1024];
            walk(&d, contents, &mut buf)
                .map(|(_, b)| b)
                .map_err(|e| format!("{}: {e}", d.display()))
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(reference) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: read_layers REF [--no-direct] [--serial] [--contents]");
        std::process::exit(2);
    };
    let flag = |f: &str| args.iter().any(|a| a == f);
    let r = match ImageRef::parse(reference) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let options = OpenOptions {
        no_direct_storage: flag("--no-direct"),
        ..Default::default()
    };
    let t0 = Instant::now();
    let src = match open(&r, &options) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let opened = t0.elapsed();
    let n = src.image().layers.len();
    let contents = flag("--contents");
    let t1 = Instant::now();
    let results: Vec<Result<u64, String>> = if flag("--serial") {
        (0..n).map(|i| read_layer(&*src, i, contents)).collect()
    } else {
        let src = &*src;
        std::thread::scope(|s| {
            let hs: Vec<_> = (0..n)
                .map(|i| s.spawn(move || read_layer(src, i, contents)))
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into())))
                .collect()
        })
    };
    let read = t1.elapsed();
    let mut total = 0;
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(b) => total += b,
            Err(e) => {
                eprintln!("error: layer {i}: {e}");
                std::process::exit(2);
            }
        }
    }
    println!(
        "{reference}: kind={} layers={n} open={:.3}s read={:.3}s bytes={} ({:.0} MB/s)",
        src.kind(),
        opened.as_secs_f64(),
        read.as_secs_f64(),
        total,
        total as f64 / 1e6 / read.as_secs_f64().max(1e-9)
    );
}
