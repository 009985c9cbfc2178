//! Resource bounds on hostile layers: names nested 10,000 deep or longer than PATH_MAX are
//! refused with one line naming the layer; the deepest accepted nesting reads, merges and
//! extracts quickly.

use std::io::Cursor;
use std::time::{Duration, Instant};

use pare_layerfs::{
    Kind, LayerContent, MAX_DEPTH, MAX_PATH, ReadOptions, extract, read_image, read_layer,
};
use pare_test_support::layer::{LayerBuilder, MemSource};

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

/// A layer whose entry `big` carries one PAX record of `value_len` bytes, then a small file.
fn with_pax_record(value_len: usize) -> Vec<u8> {
    let value = vec![b'v'; value_len];
    let key = b"SCHILY.xattr.user.big";
    // "LEN key=value\n", where LEN counts itself.
    let body = key.len() + value.len() + 3;
    let mut len = body + body.to_string().len();
    if len.to_string().len() + body != len {
        len += 1;
    }
    let mut record = format!("{len} ").into_bytes();
    record.extend_from_slice(key);
    record.push(b'=');
    record.extend_from_slice(&value);
    record.push(b'\n');
    assert_eq!(record.len(), len);
    let mut b = tar::Builder::new(Vec::new());
    let mut x = tar::Header::new_ustar();
    x.set_entry_type(tar::EntryType::XHeader);
    x.set_path("PaxHeaders/big").unwrap();
    x.set_size(record.len() as u64);
    x.set_mode(0o644);
    x.set_cksum();
    b.append(&x, &record[..]).unwrap();
    for name in ["big", "after"] {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn pax_and_long_name_records_are_bounded() {
    use pare_layerfs::MAX_ENTRY_HEADERS;
    // A large but plausible xattr record (64 KiB, the kernel's limit for a value) reads.
    let idx = read_layer(
        tar_of(with_pax_record(64 * 1024)),
        "sha256:pax",
        &ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(idx.records.len(), 2);
    // One over the limit is refused in one line before the tar reader holds it in memory.
    // As the user sees it: the error, then its cause.
    let err = pare_progress::chain(
        &read_layer(
            tar_of(with_pax_record(MAX_ENTRY_HEADERS as usize + 1)),
            "sha256:pax",
            &ReadOptions::default(),
        )
        .unwrap_err(),
    );
    assert!(err.starts_with("layer sha256:pax: bad tar"), "{err}");
    assert!(
        err.contains(&format!("over {MAX_ENTRY_HEADERS} bytes")),
        "{err}"
    );
    assert!(!err.contains('\n'), "{err}");
    // A GNU long name as long as the tar reader allows is refused the same way (it is over
    // PATH_MAX too, but the name is never read whole).
    let long = "n/".repeat(600_000) + "f";
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    b.append_data(&mut h, &long, &b"x"[..]).unwrap();
    let err = pare_progress::chain(
        &read_layer(
            tar_of(b.into_inner().unwrap()),
            "sha256:long",
            &ReadOptions::default(),
        )
        .unwrap_err(),
    );
    assert!(err.contains("long-name/PAX records over"), "{err}");
}

#[test]
fn entries_over_the_limit_are_refused_in_one_line() {
    use pare_layerfs::LayerFsError;
    assert_eq!(ReadOptions::default().max_entries, 0, "0 means MAX_ENTRIES");
    let layer = |prefix: &str| {
        let mut b = LayerBuilder::new().dir(prefix);
        for i in 0..3 {
            b = b.file(&format!("{prefix}/f{i}"), b"x");
        }
        b.finish()
    };
    let opts = ReadOptions {
        max_entries: 5,
        ..Default::default()
    };
    // One layer of 4 entries is within 5; two are not, counted over the whole image.
    read_layer(tar_of(layer("a")), "sha256:a", &opts).unwrap();
    let src = MemSource::with_history(vec![layer("a"), layer("b")], &["ADD a", "ADD b"]);
    let e = read_image(&src, &opts).unwrap_err();
    assert!(
        matches!(e, LayerFsError::TooManyEntries { limit: 5, .. }),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("more than 5 entries") && msg.contains("docs/limits.md"),
        "{msg}"
    );
    assert!(!msg.contains('\n'), "{msg}");
    // Whiteouts count too.
    let wh = LayerBuilder::new()
        .whiteout("x1")
        .whiteout("x2")
        .whiteout("x3")
        .finish();
    let tight = ReadOptions {
        max_entries: 2,
        ..Default::default()
    };
    assert!(read_layer(tar_of(wh), "sha256:wh", &tight).is_err());
}
