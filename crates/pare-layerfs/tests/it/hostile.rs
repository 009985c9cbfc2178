//! Hostile layers: nothing may land outside the destination, bad names give one-line errors.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use pare_layerfs::{LayerFsError, ReadOptions, extract, read_image};
use pare_test_support::layer::{LayerBuilder as L, MemSource};

fn src(layers: Vec<Vec<u8>>) -> MemSource {
    let n = layers.len();
    MemSource::with_history(layers, &vec!["RUN x"; n])
}

/// A sandbox: `outside/` is a sibling of `root/`; nothing may appear in it.
struct Sandbox {
    _t: tempfile::TempDir,
    root: std::path::PathBuf,
    outside: std::path::PathBuf,
}

fn sandbox() -> Sandbox {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let outside = t.path().join("outside");
    std::fs::create_dir(&root).unwrap();
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("victim"), b"original").unwrap();
    Sandbox {
        _t: t,
        root,
        outside,
    }
}

fn untouched(outside: &Path) {
    let names: Vec<_> = std::fs::read_dir(outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("victim")],
        "something landed outside dest"
    );
    assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"original");
}

fn one_line(e: &LayerFsError) -> String {
    let s = e.to_string();
    assert!(!s.contains('\n'), "multi-line error: {s}");
    s
}

#[test]
fn dotdot_entry_is_rejected_with_layer_and_entry() {
    let s = sandbox();
    let layer = L::new()
        .raw(tar::EntryType::Regular, b"../outside/x", b"", b"pwn")
        .finish();
    let e = extract(&src(vec![layer.clone()]), &s.root).unwrap_err();
    let msg = one_line(&e);
    assert!(
        msg.contains("sha256:0000") && msg.contains("../outside/x") && msg.contains(".."),
        "{msg}"
    );
    untouched(&s.outside);
    let e = read_image(&src(vec![layer]), &ReadOptions::default()).unwrap_err();
    assert!(matches!(e, LayerFsError::UnsafePath { .. }), "{e}");
}

#[test]
fn absolute_entry_is_rejected() {
    let s = sandbox();
    let layer = L::new()
        .raw(tar::EntryType::Regular, b"/etc/x", b"", b"pwn")
        .finish();
    let e = extract(&src(vec![layer.clone()]), &s.root).unwrap_err();
    let msg = one_line(&e);
    assert!(msg.contains("/etc/x") && msg.contains("absolute"), "{msg}");
    assert!(read_image(&src(vec![layer]), &ReadOptions::default()).is_err());
    untouched(&s.outside);
}

#[test]
fn symlinked_parent_pointing_outside_is_rerooted() {
    let s = sandbox();
    let out = s.outside.display().to_string();
    // Absolute symlink to the real outside dir, relative one climbing out, then files through them.
    let layer = L::new()
        .symlink("abs", &out)
        .symlink("rel", "../../../../../../../../outside")
        .file("abs/victim", b"pwned")
        .file("abs/new", b"pwned")
        .file("rel/new2", b"pwned")
        .finish();
    let stats = extract(&src(vec![layer]), &s.root).unwrap();
    untouched(&s.outside);
    // The writes went to the re-rooted paths inside dest.
    assert_eq!(
        std::fs::read(s.root.join(out.trim_start_matches('/')).join("victim")).unwrap(),
        b"pwned"
    );
    assert!(s.root.join("outside/new2").is_file());
    assert_eq!(stats.files, 3);
    // The symlinks themselves are kept as they were.
    assert_eq!(
        std::fs::read_link(s.root.join("abs")).unwrap(),
        Path::new(&out)
    );
}

#[test]
fn symlink_in_a_later_layer_over_an_existing_dir_does_not_redirect_writes() {
    let s = sandbox();
    let out = s.outside.display().to_string();
    let l1 = L::new().dir("etc").file("etc/a", b"1").finish();
    let l2 = L::new().whiteout("etc").symlink("etc", &out).finish();
    let l3 = L::new().file("etc/victim", b"pwned").finish();
    extract(&src(vec![l1, l2, l3]), &s.root).unwrap();
    untouched(&s.outside);
}

#[test]
fn hardlink_to_outside_is_rejected() {
    let s = sandbox();
    let victim = s.outside.join("victim").display().to_string();
    let layer = L::new()
        .raw(tar::EntryType::Link, b"link", victim.as_bytes(), b"")
        .finish();
    let e = extract(&src(vec![layer]), &s.root).unwrap_err();
    one_line(&e);
    let layer = L::new()
        .raw(tar::EntryType::Link, b"link", b"../outside/victim", b"")
        .finish();
    let e = extract(&src(vec![layer]), &s.root).unwrap_err();
    one_line(&e);
    // Through a symlink to the outside: the link target resolves inside dest, where nothing is.
    let out = s.outside.display().to_string();
    let layer = L::new()
        .symlink("o", &out)
        .hardlink("link", "o/victim")
        .finish();
    let e = extract(&src(vec![layer]), &s.root).unwrap_err();
    assert!(one_line(&e).contains("o/victim"));
    untouched(&s.outside);
    assert_eq!(
        std::fs::metadata(s.outside.join("victim")).unwrap().nlink(),
        1
    );
}

#[test]
fn huge_sparse_file_is_written_sparse() {
    let s = sandbox();
    let ten_gib = 10u64 << 30;
    let layer = L::new().sparse("big", b"hello", ten_gib).finish();
    assert!(layer.len() < 64 * 1024);
    let stats = extract(&src(vec![layer.clone()]), &s.root).unwrap();
    let md = std::fs::metadata(s.root.join("big")).unwrap();
    assert_eq!(md.len(), ten_gib);
    assert!(
        md.blocks() * 512 < 1 << 20,
        "sparse file took {} blocks",
        md.blocks()
    );
    assert_eq!(stats.files, 1);
    // Analysis does not read the holes either.
    let fs = read_image(
        &src(vec![layer]),
        &ReadOptions {
            hash: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(fs.get("big").unwrap().size, ten_gib);
    untouched(&s.outside);
}

#[test]
fn truncated_tar_is_an_error_naming_the_layer() {
    let layer = L::new()
        .sized("a", 4096, b'a')
        .sized("b", 4096, b'b')
        .finish();
    let cut = layer[..512 + 2000].to_vec();
    let e = read_image(
        &src(vec![cut.clone()]),
        &ReadOptions {
            hash: true,
            ..Default::default()
        },
    )
    .unwrap_err();
    let msg = one_line(&e);
    assert!(msg.contains("sha256:0000"), "{msg}");
    let s = sandbox();
    assert!(extract(&src(vec![cut]), &s.root).is_err());
}

#[test]
fn whiteouts_opaque_modes_links_are_applied() {
    let s = sandbox();
    let l1 = L::new()
        .dir("etc")
        .file("etc/gone", b"x")
        .dir("opq")
        .file("opq/old", b"x")
        .file_mode("bin/su", b"#!", 0o4755)
        .finish();
    let l2 = L::new()
        .whiteout("etc/gone")
        .dir("opq")
        .opaque("opq")
        .file("opq/new", b"n")
        .symlink("bin/sh", "/bin/dash")
        .hardlink("bin/su2", "bin/su")
        .dir_mode("tmp", 0o1777)
        .finish();
    let st = extract(&src(vec![l1, l2]), &s.root).unwrap();
    let r = &s.root;
    assert!(!r.join("etc/gone").exists() && r.join("etc").is_dir());
    assert!(!r.join("opq/old").exists() && r.join("opq/new").is_file());
    assert_eq!(
        std::fs::metadata(r.join("bin/su")).unwrap().mode() & 0o7777,
        0o4755
    );
    assert_eq!(
        std::fs::read_link(r.join("bin/sh")).unwrap(),
        Path::new("/bin/dash")
    );
    assert_eq!(
        std::fs::metadata(r.join("bin/su2")).unwrap().ino(),
        std::fs::metadata(r.join("bin/su")).unwrap().ino()
    );
    assert_eq!(
        std::fs::metadata(r.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
    assert_eq!(
        std::fs::metadata(r.join("etc")).unwrap().mtime(),
        1_700_000_000
    );
    assert_eq!(st.hardlinks, 1);
    assert_eq!(st.whiteouts, 2);
}

#[test]
fn file_over_a_symlink_replaces_the_link_instead_of_writing_through_it() {
    let s = sandbox();
    let victim = s.outside.join("victim").display().to_string();
    let l1 = L::new()
        .symlink("victim", &victim)
        .symlink("dirlink", &s.outside.display().to_string())
        .finish();
    let l2 = L::new()
        .file("victim", b"pwned")
        .dir("dirlink")
        .file("dirlink/x", b"pwned")
        .finish();
    extract(&src(vec![l1, l2]), &s.root).unwrap();
    untouched(&s.outside);
    assert_eq!(std::fs::read(s.root.join("victim")).unwrap(), b"pwned");
    assert!(s.root.join("dirlink").is_dir() && !s.root.join("dirlink").is_symlink());
}

#[test]
fn symlink_loops_in_parents_are_an_error_not_a_hang() {
    let s = sandbox();
    let layer = L::new()
        .symlink("a", "b")
        .symlink("b", "a")
        .file("a/x", b"1")
        .finish();
    let e = extract(&src(vec![layer]), &s.root).unwrap_err();
    assert!(one_line(&e).contains("a/x"));
    untouched(&s.outside);
}
