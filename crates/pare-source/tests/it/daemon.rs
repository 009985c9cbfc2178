//! Daemon source tests: need dockerd with `local/debian:bookworm` loaded (see DEVELOPERS.md).
//! Run with `cargo test -p pare-source --test it -- --ignored daemon::`.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use pare_source::{ImageRef, ImageSource, LayerContent, OpenOptions, open};

/// What a layer holds, comparable across a tar and an overlay2 dir: regular files with their
/// sizes, and deleted paths.
#[derive(Debug, Default, PartialEq, Eq)]
struct Summary {
    files: BTreeSet<(String, u64)>,
    deleted: BTreeSet<String>,
}

fn summarize_tar(r: Box<dyn Read + Send>) -> Summary {
    let mut s = Summary::default();
    let mut sizes = std::collections::HashMap::new();
    let mut archive = tar::Archive::new(r);
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let path = path
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let name = path.rsplit('/').next().unwrap_or_default().to_string();
        if let Some(hidden) = name.strip_prefix(".wh.") {
            if hidden != ".wh..opq" {
                let dir = path
                    .rsplit_once('/')
                    .map(|(d, _)| format!("{d}/"))
                    .unwrap_or_default();
                s.deleted.insert(format!("{dir}{hidden}"));
            }
        } else if entry.header().entry_type().is_file() {
            sizes.insert(path.clone(), entry.size());
            s.files.insert((path, entry.size()));
        } else if entry.header().entry_type().is_hard_link() {
            // On disk a hard link is just another regular file.
            let target = entry.link_name().unwrap().unwrap().display().to_string();
            let size = sizes
                .get(target.trim_start_matches("./"))
                .copied()
                .unwrap_or(0);
            s.files.insert((path, size));
        }
    }
    pare_source::drain_and_verify(&mut archive.into_inner()).unwrap();
    s
}

fn summarize_dir(root: &Path, dir: &Path, s: &mut Summary) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let meta = fs::symlink_metadata(e.path()).unwrap();
        let rel = e.path().strip_prefix(root).unwrap().display().to_string();
        if meta.is_dir() {
            summarize_dir(root, &e.path(), s);
        } else if meta.file_type().is_char_device() && meta.rdev() == 0 {
            s.deleted.insert(rel);
        } else if meta.is_file() {
            s.files.insert((rel, meta.len()));
        }
    }
}

fn summarize(src: &dyn ImageSource, i: usize) -> Summary {
    match src.open_layer(i).unwrap() {
        LayerContent::Tar(r) => summarize_tar(r),
        LayerContent::OverlayDir(d) => {
            let mut s = Summary::default();
            summarize_dir(&d, &d, &mut s);
            s
        }
    }
}

fn check_daemon_image(name: &str) {
    let r = ImageRef::parse(&format!("docker-daemon:{name}")).unwrap();
    let fast = open(&r, &OpenOptions::default()).unwrap();
    let export = open(
        &r,
        &OpenOptions {
            no_direct_storage: true,
            ..Default::default()
        },
    )
    .unwrap();
    if std::env::var_os("DOCKER_HOST").is_none() {
        assert_eq!(
            fast.kind(),
            "overlay2",
            "a local daemon's storage should be read directly"
        );
    }
    assert_eq!(export.kind(), "export");
    let (a, b) = (fast.image(), export.image());
    let ids = |i: &pare_source::ResolvedImage| {
        i.layers
            .iter()
            .map(|l| l.diff_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(a), ids(b));
    assert_eq!(a.config_digest, b.config_digest);
    assert_eq!(a.config, b.config);
    assert_eq!(fast.raw_config(), export.raw_config());
    for i in 0..a.layers.len() {
        let (x, y) = (summarize(&*fast, i), summarize(&*export, i));
        assert!(
            !x.files.is_empty() || !x.deleted.is_empty(),
            "layer {i} is empty"
        );
        let only = |a: &Summary, b: &Summary| {
            let f: Vec<_> = a.files.difference(&b.files).take(10).collect();
            let d: Vec<_> = a.deleted.difference(&b.deleted).take(10).collect();
            format!("{f:?} {d:?}")
        };
        assert!(
            x == y,
            "layer {i} of {name}: only in overlay2: {}; only in export: {}",
            only(&x, &y),
            only(&y, &x)
        );
    }
}

#[test]
#[ignore = "needs docker"]
fn debian_via_overlay2_and_export_agree() {
    check_daemon_image("local/debian:bookworm");
}

#[test]
#[ignore = "needs docker"]
fn multi_layer_image_maps_lower_dirs_in_order() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("Dockerfile"),
        "FROM local/debian:bookworm\nRUN echo a > /a && rm -f /etc/issue\nENV X=1\n\
         RUN mkdir /d && echo b > /d/b && rm -rf /usr/share/doc\nHEALTHCHECK CMD true\n",
    )
    .unwrap();
    let name = pare_test_support::names::image("source-multi:latest");
    let _rmi = pare_test_support::names::RemoveOnDrop(name.clone());
    let status = Command::new("docker")
        .args(["build", "-q", "--network", "host", "-t", &name])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    check_daemon_image(&name);
    let src = open(&ImageRef::parse(&name).unwrap(), &OpenOptions::default()).unwrap();
    assert_eq!(src.image().layers.len(), 3);
    let top = summarize(&*src, 2);
    assert!(top.files.contains(&("d/b".to_string(), 2)));
    assert!(top.deleted.contains("usr/share/doc"));
    assert!(summarize(&*src, 1).deleted.contains("etc/issue"));
    assert!(String::from_utf8_lossy(src.raw_config().unwrap()).contains("Healthcheck"));
}

#[test]
#[ignore = "needs docker"]
fn missing_image_is_not_found() {
    let err = open(
        &ImageRef::parse("docker-daemon:pare-no-such-image:0").unwrap(),
        &OpenOptions::default(),
    )
    .err()
    .unwrap();
    assert!(
        matches!(err, pare_source::SourceError::NotFound { .. }),
        "{err}"
    );
}
