//! Resource bounds on hostile layers: names nested 10,000 deep or longer than PATH_MAX are
//! refused with one line naming the layer; the deepest accepted nesting reads, merges and
//! extracts quickly.

use std::io::Cursor;
use std::time::{Duration, Instant};

use pare_layerfs::testing::{LayerBuilder, MemSource};
use pare_layerfs::{
    Kind, LayerContent, MAX_DEPTH, MAX_PATH, ReadOptions, extract, read_image, read_layer,
};

fn tar_of(layer: Vec<u8>) -> LayerContent {
    LayerContent::Tar(Box::new(Cursor::new(layer)))
}

fn nested(depth: usize) -> String {
    "d/".repeat(depth) + "f"
}

#[test]
fn a_path_nested_10000_deep_is_refused_in_one_line() {
    let deep = nested(10_000);
    let layer = LayerBuilder::new()
        .file("ok", b"1")
        .file(&deep, b"x")
        .finish();
    let err = read_layer(
        tar_of(layer.clone()),
        "sha256:deep",
        &ReadOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("layer sha256:deep: entry `d/d/"), "{err}");
    assert!(
        err.contains(&format!("over the {MAX_PATH}-byte limit")),
        "{err}"
    );
    assert!(
        !err.contains('\n') && err.len() < 600,
        "{} bytes: {err}",
        err.len()
    );

    // Extraction refuses it the same way and writes nothing for it.
    let dir = tempfile::tempdir().unwrap();
    let src = MemSource::with_history(vec![layer], &["ADD deep /"]);
    let err = extract(&src, dir.path()).unwrap_err().to_string();
    assert!(err.contains("4096-byte limit"), "{err}");
    assert!(!dir.path().join("d").exists());
}

#[test]
fn too_many_short_components_are_refused_too() {
    // 600 levels of one-letter names fit in PATH_MAX but are over the depth limit.
    let layer = LayerBuilder::new().file(&nested(600), b"x").finish();
    let err = read_layer(tar_of(layer), "sha256:d600", &ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("nested 601 directories deep"), "{err}");
    assert!(err.contains(&format!("limit of {MAX_DEPTH}")), "{err}");
}

#[test]
fn the_deepest_accepted_tree_merges_and_extracts_quickly() {
    // Every level listed as a directory, a file at each level, then a file over an implied
    // directory in the next layer (it replaces the tree beneath it).
    let mut b = LayerBuilder::new();
    let mut p = String::new();
    for _ in 0..MAX_DEPTH - 1 {
        p.push_str("d/");
        b = b.dir(&p).file(&format!("{p}f"), b"abc");
    }
    let lower = b.finish();
    let upper = LayerBuilder::new().file("d/d", b"flat").finish();
    let src = MemSource::with_history(vec![lower, upper], &["ADD deep /", "ADD flat /"]);
    let t = Instant::now();
    let fs = read_image(&src, &ReadOptions::default()).unwrap();
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert_eq!(fs.get("d/d").unwrap().kind, Kind::File);
    assert!(fs.get("d/d/d").is_none() && fs.get("d/d/f").is_none());
    assert_eq!(fs.len(), 3, "d, d/f, d/d");
    assert_eq!(fs.layers[1].deleted, 2 * (MAX_DEPTH as u64 - 2) - 1);

    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let lower_only = MemSource::with_history(
        vec![{
            let mut b = LayerBuilder::new();
            let mut p = String::new();
            for _ in 0..MAX_DEPTH - 1 {
                p.push_str("d/");
                b = b.dir(&p);
            }
            b.file(&format!("{p}f"), b"bottom").finish()
        }],
        &["ADD deep /"],
    );
    let stats = extract(&lower_only, dir.path()).unwrap();
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
    assert_eq!(stats.dirs, MAX_DEPTH as u64 - 1);
    let bottom = dir.path().join(nested(MAX_DEPTH - 1));
    assert_eq!(std::fs::read(bottom).unwrap(), b"bottom");
}

#[test]
fn a_file_over_an_implied_directory_replaces_the_tree_beneath() {
    // The lower layer lists only `x/y/z` (its directories are implied); the upper layer puts a
    // file at `x`. As extraction does, the file wins and the tree under it is gone.
    let lower = LayerBuilder::new().file("x/y/z", b"12345").finish();
    let upper = LayerBuilder::new().file("x", b"f").finish();
    let src = MemSource::with_history(vec![lower, upper], &["ADD x /", "ADD f /x"]);
    let fs = read_image(&src, &ReadOptions::default()).unwrap();
    assert_eq!(fs.get("x").unwrap().kind, Kind::File);
    assert!(fs.get("x/y/z").is_none());
    assert_eq!(fs.len(), 1);
    assert_eq!((fs.layers[1].deleted, fs.layers[1].deleted_bytes), (1, 5));
    assert_eq!(fs.wasted_bytes(), 5);

    let dir = tempfile::tempdir().unwrap();
    extract(&src, dir.path()).unwrap();
    assert_eq!(std::fs::read(dir.path().join("x")).unwrap(), b"f");
}
