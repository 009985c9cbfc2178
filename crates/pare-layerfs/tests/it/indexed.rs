//! `extract_indexed`: one pass that extracts and indexes gives the same tree as `extract` and
//! the same merged view as `read_image`, byte for byte of its debug form (records, waste,
//! captured files, content hashes).

use std::path::Path;

use pare_layerfs::{
    Capture, LayerFsError, MergedFs, ReadOptions, extract, extract_indexed, read_image,
};
use pare_test_support::layer::{LayerBuilder as L, MemSource};

/// Keeps the first 8 bytes of every `*.conf` file.
struct Confs;

impl Capture for Confs {
    fn want(&self, path: &str, _size: u64) -> usize {
        if path.ends_with(".conf") { 8 } else { 0 }
    }
    fn take(&self, _path: &str, data: &[u8]) -> Option<Box<[u8]>> {
        Some(data.into())
    }
}

fn image() -> MemSource {
    let layers = vec![
        L::new()
            .dir("etc")
            .file("etc/a.conf", b"first version of a")
            .file("etc/b.conf", b"bb")
            .dir("d")
            .sized("d/x", 100, b'x')
            .dir("d/sub")
            .sized("d/sub/y", 20, b'y')
            .dir("opq")
            .sized("opq/old", 60, b'o')
            .sized("same1", 4096, 7)
            .sized("same2", 4096, 7)
            .hardlink("same3", "same1")
            .symlink("lnk", "etc/a.conf")
            .file("empty.conf", b"")
            .finish(),
        L::new()
            .dir("etc")
            .file("etc/a.conf", b"second version")
            .whiteout("d")
            .opaque("opq")
            .sized("opq/new", 30, b'n')
            .file_mode("bin-suid", b"ELF", 0o4755)
            .finish(),
        L::new().whiteout("etc/b.conf").sized("d", 5, b'd').finish(),
    ];
    MemSource::with_history(layers, &["ADD a /", "RUN b", "RUN c"])
}

/// Every path under `root` with its kind, mode and content (or link target).
fn tree(root: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let what = if md.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else if md.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(&p).unwrap().display())
            } else {
                format!("{:?}", std::fs::read(&p).unwrap())
            };
            out.push(format!("{rel} {:o} {what}", md.permissions().mode()));
        }
    }
    out.sort();
    out
}

/// The view's debug form with the captured files (a hash map) in path order.
fn same_form(fs: &MergedFs) -> (String, Vec<(String, Vec<u8>)>) {
    let debug = format!("{fs:?}");
    let debug = debug[..debug.rfind("captured: ").unwrap()].to_string();
    let mut captured: Vec<_> = fs
        .captured_files()
        .map(|(p, b)| (p.to_string(), b.to_vec()))
        .collect();
    captured.sort();
    (debug, captured)
}

#[test]
fn one_pass_gives_the_tree_of_extract_and_the_view_of_read_image() {
    let src = image();
    for hash in [false, true] {
        let read = ReadOptions {
            hash,
            capture: Some(&Confs),
            ..Default::default()
        };
        let both = tempfile::tempdir().unwrap();
        let (stats, view) = extract_indexed(&src, both.path(), &read).unwrap();
        let view = view.unwrap();
        let alone = tempfile::tempdir().unwrap();
        assert_eq!(stats, extract(&src, alone.path()).unwrap());
        assert_eq!(tree(both.path()), tree(alone.path()));
        let read_alone = read_image(&src, &read).unwrap();
        assert_eq!(same_form(&view), same_form(&read_alone), "hash: {hash}");
        // What the test is about is there: captured bytes, hashes, waste.
        assert_eq!(view.captured("etc/a.conf"), Some(&b"second v"[..]));
        assert_eq!(view.captured("empty.conf"), Some(&b""[..]));
        assert_eq!(view.get("same1").unwrap().hash.is_some(), hash);
        assert!(view.wasted_bytes() > 0);
    }
}

#[test]
fn an_index_over_the_entry_limit_fails_alone_and_the_extraction_completes() {
    let src = image();
    let read = ReadOptions {
        max_entries: 5,
        ..Default::default()
    };
    let both = tempfile::tempdir().unwrap();
    let (stats, view) = extract_indexed(&src, both.path(), &read).unwrap();
    assert!(
        matches!(view, Err(LayerFsError::TooManyEntries { limit: 5, .. })),
        "{view:?}"
    );
    let alone = tempfile::tempdir().unwrap();
    assert_eq!(stats, extract(&src, alone.path()).unwrap());
    assert_eq!(tree(both.path()), tree(alone.path()));
}
