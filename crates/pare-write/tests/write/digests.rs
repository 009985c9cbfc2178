//! Reproducible digests: timestamps, the default epoch, docker-load layers.

use super::*;

#[test]
fn same_input_same_digest_whatever_the_timestamps() {
    let s = setup();
    let a = s
        .write(oci(s.path("a"), Some("x.slim:1")), Some(1_700_000_000))
        .unwrap();
    let b = s
        .write(oci(s.path("b"), Some("x.slim:1")), Some(1_700_000_000))
        .unwrap();
    assert_eq!(a.manifest_digest, b.manifest_digest);
    assert_eq!(a.layer, b.layer);
    assert_eq!(
        fs::read(s.path("a/index.json")).unwrap(),
        fs::read(s.path("b/index.json")).unwrap()
    );

    // Touch every file's atime/mtime and copy the tree elsewhere (new inodes): same digest.
    for p in walk(&s.root) {
        let host = s.root.join(p.trim_start_matches('/'));
        if fs::symlink_metadata(&host)
            .unwrap()
            .file_type()
            .is_symlink()
        {
            continue;
        }
        let f = fs::File::open(&host).unwrap();
        let when = SystemTime::now() - Duration::from_secs(86_400 * 400);
        f.set_times(fs::FileTimes::new().set_accessed(when).set_modified(when))
            .unwrap();
    }
    let c = s
        .write(oci(s.path("c"), Some("x.slim:1")), Some(1_700_000_000))
        .unwrap();
    assert_eq!(
        a.manifest_digest, c.manifest_digest,
        "timestamps leaked into the image"
    );
    let copy = s.path("copy");
    let out = std::process::Command::new("cp")
        .arg("-a")
        .arg(&s.root)
        .arg(&copy)
        .output()
        .unwrap();
    assert!(out.status.success());
    let d = write_image(
        &copy,
        &s.sel,
        &meta(),
        oci(s.path("d"), Some("x.slim:1")),
        Some(1_700_000_000),
    )
    .unwrap();
    assert_eq!(
        a.manifest_digest, d.manifest_digest,
        "inode numbers or paths leaked into the image"
    );

    // A different epoch is a different image.
    let e = s.write(oci(s.path("e"), None), Some(1)).unwrap();
    assert_ne!(a.layer.diff_id, e.layer.diff_id);
    // The docker archive carries the same image (same config digest = image ID).
    let f = s
        .write(
            docker_archive(s.path("x.tar"), Some("x.slim:1")),
            Some(1_700_000_000),
        )
        .unwrap();
    assert_eq!(a.config_digest, f.config_digest);
    assert_eq!(a.manifest_digest, f.manifest_digest);
    let g = s
        .write(
            docker_archive(s.path("y.tar"), Some("x.slim:1")),
            Some(1_700_000_000),
        )
        .unwrap();
    assert_eq!(f.config_digest, g.config_digest);
    assert_eq!(
        fs::read(s.path("x.tar")).unwrap(),
        fs::read(s.path("y.tar")).unwrap(),
        "archive bytes differ"
    );
}

#[test]
fn plain_layer_for_docker_load_is_the_tar_inside_the_gzip_layer() {
    // The `docker load` path writes the layer uncompressed and measures its gzip form on the
    // side; both must describe exactly the layer the OCI path writes.
    let s = setup();
    let oci = s.write(oci(s.path("oci"), None), Some(7)).unwrap();
    let plain = pare_write::write_plain_layer(&s.root, &s.sel, Some(7), s.t.path()).unwrap();
    let info = plain.info().clone();
    assert_eq!(info.diff_id, oci.layer.diff_id);
    assert_eq!(
        info.digest, info.diff_id,
        "a plain layer's blob digest is its diff_id"
    );
    assert_eq!(info.size, oci.layer.uncompressed_size);
    assert_eq!(
        (info.entries, info.hardlinks),
        (oci.layer.entries, oci.layer.hardlinks)
    );
    // The gzip blob, read back from the layout and inflated, is the same tar; re-measuring
    // that tar gives the layout's gzip digest and size, for any thread count.
    let gz = blob(&s.path("oci"), oci.layer.digest.as_ref());
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut tar)
        .unwrap();
    assert_eq!(sha(&tar), info.diff_id.to_string());
    for threads in [1, 3] {
        let (d, n) = pare_write::layer::gzip_digest(&tar[..], threads).unwrap();
        assert_eq!((d, n), (oci.layer.digest.clone(), oci.layer.size));
    }
}

#[test]
fn the_default_epoch_is_the_source_images_creation_time() {
    use pare_write::{EpochFrom, ImageMeta, choose_epoch};
    // Tests share the environment: this one only runs the paths SOURCE_DATE_EPOCH does not
    // decide (CI does not set it).
    if std::env::var_os("SOURCE_DATE_EPOCH").is_some() {
        return;
    }
    let cfg = |created: &str| {
        let raw = format!(
            r#"{{"architecture":"amd64","os":"linux",{created}"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
        );
        ImageMeta::from_config_json(raw.as_bytes(), "app:1").unwrap()
    };
    let dated = cfg(r#""created":"2024-05-01T10:00:00Z","#);
    assert_eq!(
        choose_epoch(None, &dated).unwrap(),
        (1_714_557_600, EpochFrom::SourceCreated)
    );
    assert_eq!(choose_epoch(Some(7), &dated).unwrap(), (7, EpochFrom::Flag));
    assert_eq!(choose_epoch(None, &cfg("")).unwrap(), (0, EpochFrom::Zero));
    assert_eq!(pare_write::rfc3339(1_714_557_600), "2024-05-01T10:00:00Z");
}
