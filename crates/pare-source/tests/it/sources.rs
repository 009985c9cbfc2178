//! Opens synthetic images in every format, hostile ones included. No daemon needed.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use pare_source::{
    Compression, ImageRef, ImageSource, LayerContent, OpenOptions, Platform, SourceError, open,
};
use pare_test_support::fixture::{self, DockerArchiveFormat, Image};

fn layers() -> Vec<Vec<u8>> {
    vec![
        fixture::tar(&[
            ("etc/", b""),
            ("etc/os-release", b"ID=test\n"),
            ("bin/", b""),
            ("bin/sh", &[0x7f; 3000]),
        ]),
        fixture::tar(&[
            ("app/", b""),
            ("app/main.py", b"print('hi')\n"),
            ("etc/.wh.os-release", b""),
        ]),
        fixture::tar(&[("app/data.bin", &[7u8; 100_000])]),
    ]
}

fn image() -> Image {
    Image::new(layers()).tagged("app:1")
}

fn open_str(s: &str) -> Result<Box<dyn ImageSource>, SourceError> {
    open(&ImageRef::parse(s).unwrap(), &OpenOptions::default())
}

fn read_layer(src: &dyn ImageSource, i: usize) -> std::io::Result<Vec<u8>> {
    match src.open_layer(i).map_err(std::io::Error::other)? {
        LayerContent::Tar(mut r) => {
            let mut out = Vec::new();
            r.read_to_end(&mut out)?;
            Ok(out)
        }
        LayerContent::OverlayDir(p) => panic!("unexpected overlay dir {}", p.display()),
    }
}

/// Every layer reads back as the original uncompressed tar, and the model matches the fixture.
fn check_image(src: &dyn ImageSource, image: &Image) {
    let resolved = src.image();
    assert_eq!(resolved.layers.len(), image.layers.len());
    let diff_ids = image.diff_ids();
    for (i, layer) in resolved.layers.iter().enumerate() {
        assert_eq!(layer.diff_id.as_deref(), Some(diff_ids[i].as_str()));
        assert_eq!(
            read_layer(src, i).unwrap(),
            image.layers[i],
            "layer {i} of {}",
            src.kind()
        );
    }
    assert_eq!(
        resolved.config_digest,
        pare_source::sha256_digest(&image.config_bytes())
    );
    assert_eq!(src.raw_config().unwrap(), image.config_bytes().as_slice());
    assert_eq!(resolved.created_by(1).as_deref(), Some("fixture layer 1"));
    assert!(src.open_layer(image.layers.len()).is_err());
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn blob_file(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs/sha256")
        .join(pare_source::sha256_hex(digest).unwrap())
}

#[test]
fn oci_layout_all_compressions() {
    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let t = tmp();
        let dir = t.path().join("oci");
        let img = image();
        let w = fixture::write_oci_layout(&dir, &img, compression).unwrap();
        let src = open_str(&format!("oci:{}", dir.display())).unwrap();
        assert_eq!(src.kind(), "oci");
        check_image(&*src, &img);
        let r = src.image();
        assert_eq!(
            r.manifest_digest.as_deref(),
            Some(w.manifest_digest.as_str())
        );
        assert_eq!(r.layers[0].digest, w.layer_digests[0]);
        assert_eq!(r.layers[0].compression, compression);
        let stored = fs::metadata(blob_file(&dir, &w.layer_digests[2]))
            .unwrap()
            .len();
        assert_eq!(r.layers[2].compressed_size, Some(stored));
        // by tag as well
        let by_tag = open_str(&format!("oci:{}:app:1", dir.display())).unwrap();
        assert_eq!(by_tag.image().config_digest, w.config_digest);
    }
}

#[test]
fn compression_is_detected_from_magic_bytes_when_media_type_says_plain() {
    let t = tmp();
    let dir = t.path().join("oci");
    let img = image();
    fixture::write_oci_layout(&dir, &img, Compression::Gzip).unwrap();
    // Rewrite the manifest so it claims uncompressed layers, keeping digests valid.
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let mdigest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let text = fs::read_to_string(blob_file(&dir, &mdigest))
        .unwrap()
        .replace("tar+gzip", "tar");
    let new_digest = pare_source::sha256_digest(text.as_bytes());
    fs::write(blob_file(&dir, &new_digest), &text).unwrap();
    let index = serde_json::to_string(&index)
        .unwrap()
        .replace(&mdigest, &new_digest);
    let index = index.replace(
        &format!(
            "\"size\":{}",
            fs::metadata(blob_file(&dir, &mdigest)).unwrap().len()
        ),
        &format!("\"size\":{}", text.len()),
    );
    fs::write(dir.join("index.json"), index).unwrap();
    let src = open_str(&format!("oci:{}", dir.display())).unwrap();
    check_image(&*src, &img);
}

#[test]
fn oci_archive() {
    let t = tmp();
    let path = t.path().join("img.tar");
    let img = image();
    fixture::write_oci_archive(&path, &img, Compression::Zstd).unwrap();
    let src = open_str(&format!("oci-archive:{}", path.display())).unwrap();
    assert_eq!(src.kind(), "oci-archive");
    check_image(&*src, &img);
}

#[test]
fn docker_archives_both_formats() {
    for format in [DockerArchiveFormat::Legacy, DockerArchiveFormat::Oci] {
        let t = tmp();
        let path = t.path().join("save.tar");
        // A repeated layer: the legacy writer stores it as a symlink, as `docker save` does.
        let mut l = layers();
        l.push(l[0].clone());
        let mut img = Image::new(l).tagged("app:1");
        img.config["history"].as_array_mut().unwrap().truncate(3);
        img.config["history"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"created_by": "again"}));
        fixture::write_docker_archive(&path, &img, format).unwrap();
        for r in [
            format!("docker-archive:{}", path.display()),
            format!("docker-archive:{}:app:1", path.display()),
        ] {
            let src = open_str(&r).unwrap();
            assert_eq!(src.kind(), "docker-archive");
            check_image(&*src, &img);
            assert_eq!(
                src.image().layers[3].compressed_size,
                Some(img.layers[3].len() as u64)
            );
        }
    }
}

#[test]
fn docker_archive_with_several_images() {
    for format in [DockerArchiveFormat::Legacy, DockerArchiveFormat::Oci] {
        let t = tmp();
        let path = t.path().join("save.tar");
        let a = Image::new(layers()).tagged("a:1");
        let b = Image::new(vec![fixture::tar(&[("b", b"b")])]).tagged("docker.io/library/b:2");
        fixture::write_docker_archive_images(&path, &[&a, &b], format).unwrap();
        let p = path.display();
        assert_eq!(
            open_str(&format!("docker-archive:{p}:b:2"))
                .unwrap()
                .image()
                .layers
                .len(),
            1
        );
        assert_eq!(
            open_str(&format!("docker-archive:{p}:@0"))
                .unwrap()
                .image()
                .layers
                .len(),
            3
        );
        check_image(&*open_str(&format!("docker-archive:{p}:a:1")).unwrap(), &a);
        let err = open_str(&format!("docker-archive:{p}"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("holds 2 images") && err.contains("a:1"),
            "{err}"
        );
        let err = open_str(&format!("docker-archive:{p}:c:3")).err().unwrap();
        assert!(matches!(err, SourceError::NotFound { .. }), "{err}");
    }
}

#[test]
fn oci_layout_with_several_tags() {
    let t = tmp();
    let dir = t.path().join("oci");
    let a = Image::new(layers()).tagged("v1");
    let b = Image::new(vec![fixture::tar(&[("b", b"b")])]).tagged("v2");
    fixture::write_oci_layout_images(&dir, &[&a, &b], Compression::Gzip).unwrap();
    let d = dir.display();
    check_image(&*open_str(&format!("oci:{d}:v1")).unwrap(), &a);
    assert_eq!(
        open_str(&format!("oci:{d}:v2"))
            .unwrap()
            .image()
            .layers
            .len(),
        1
    );
    let err = open_str(&format!("oci:{d}")).err().unwrap().to_string();
    assert!(
        err.contains("pick one with :TAG") && err.contains("v1, v2"),
        "{err}"
    );
    let err = open_str(&format!("oci:{d}:v3")).err().unwrap().to_string();
    assert!(err.contains("no image tagged `v3`"), "{err}");
}

#[test]
fn multi_arch_index_picks_platform() {
    let t = tmp();
    let dir = t.path().join("oci");
    let host = Platform::host();
    let other = if host.architecture == "arm64" {
        Platform::parse("linux/amd64").unwrap()
    } else {
        Platform::parse("linux/arm64/v8").unwrap()
    };
    let on_host = Image::new(layers()).for_platform(&host).tagged("multi");
    let on_other = Image::new(vec![fixture::tar(&[("other", b"o")])]).for_platform(&other);
    let (_, written) =
        fixture::write_oci_layout_multi(&dir, &[&on_host, &on_other], Compression::Gzip).unwrap();

    let r = ImageRef::parse(&format!("oci:{}:multi", dir.display())).unwrap();
    let src = open(&r, &OpenOptions::default()).unwrap();
    assert_eq!(
        src.image().manifest_digest.as_deref(),
        Some(written[0].manifest_digest.as_str())
    );
    check_image(&*src, &on_host);

    let opts = OpenOptions {
        platform: Some(other.clone()),
        ..Default::default()
    };
    let src = open(&r, &opts).unwrap();
    assert_eq!(
        src.image().manifest_digest.as_deref(),
        Some(written[1].manifest_digest.as_str())
    );
    assert_eq!(read_layer(&*src, 0).unwrap(), on_other.layers[0]);

    let opts = OpenOptions {
        platform: Platform::parse("linux/s390x"),
        ..Default::default()
    };
    let err = open(&r, &opts).err().unwrap();
    assert!(matches!(err, SourceError::NoPlatform { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("linux/s390x")
            && msg.contains(&host.to_string())
            && msg.contains(&other.to_string()),
        "{msg}"
    );
}

#[test]
fn layers_read_in_parallel_threads() {
    let t = tmp();
    let dir = t.path().join("oci");
    let img = image();
    fixture::write_oci_layout(&dir, &img, Compression::Gzip).unwrap();
    let path = t.path().join("save.tar");
    fixture::write_docker_archive(&path, &img, DockerArchiveFormat::Legacy).unwrap();
    for r in [
        format!("oci:{}", dir.display()),
        format!("docker-archive:{}", path.display()),
    ] {
        let src = open_str(&r).unwrap();
        let src = &*src;
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..img.layers.len())
                .map(|i| s.spawn(move || read_layer(src, i).unwrap()))
                .collect();
            for (i, h) in handles.into_iter().enumerate() {
                assert_eq!(h.join().unwrap(), img.layers[i]);
            }
        });
    }
}

// ---------------------------------------------------------------- hostile input

fn source_error(e: &std::io::Error) -> &SourceError {
    e.get_ref()
        .and_then(|e| e.downcast_ref::<SourceError>())
        .unwrap_or_else(|| panic!("not a SourceError: {e}"))
}

#[test]
fn wrong_layer_digest_is_reported_at_eof() {
    for compression in [Compression::None, Compression::Gzip] {
        let t = tmp();
        let dir = t.path().join("oci");
        let w = fixture::write_oci_layout(&dir, &image(), compression).unwrap();
        let f = blob_file(&dir, &w.layer_digests[0]);
        let mut bytes = fs::read(&f).unwrap();
        // Flip a byte in the gzip trailer / in the tar's final zero padding: the content still
        // parses, only the digest check can notice.
        let n = bytes.len();
        bytes[n - 1] ^= 0xff;
        fs::write(&f, &bytes).unwrap();
        let src = open_str(&format!("oci:{}", dir.display())).unwrap();
        let err = read_layer(&*src, 0).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&w.layer_digests[0]), "{msg}");
        if compression == Compression::None {
            assert!(
                matches!(source_error(&err), SourceError::DigestMismatch { .. }),
                "{msg}"
            );
        }
        // The other layers are fine.
        assert!(read_layer(&*src, 1).is_ok());
    }
}

#[test]
fn tar_parser_stopping_early_still_gets_verified_by_drain() {
    let t = tmp();
    let dir = t.path().join("oci");
    let w = fixture::write_oci_layout(&dir, &image(), Compression::None).unwrap();
    let f = blob_file(&dir, &w.layer_digests[2]);
    let mut bytes = fs::read(&f).unwrap();
    let n = bytes.len();
    bytes[n - 1] = 1; // past the end-of-archive marker
    fs::write(&f, &bytes).unwrap();
    let src = open_str(&format!("oci:{}", dir.display())).unwrap();
    let LayerContent::Tar(r) = src.open_layer(2).unwrap() else {
        panic!()
    };
    let mut archive = tar::Archive::new(r);
    let names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["app/data.bin"]);
    let err = pare_source::drain_and_verify(&mut archive.into_inner()).unwrap_err();
    assert!(
        matches!(source_error(&err), SourceError::DigestMismatch { .. }),
        "{err}"
    );
}

#[test]
fn diff_id_mismatch() {
    let t = tmp();
    let dir = t.path().join("oci");
    let mut img = image();
    img.keep_rootfs = true;
    let mut ids = img.diff_ids();
    ids[1] = pare_source::sha256_digest(b"not this");
    img.config["rootfs"] = serde_json::json!({"type": "layers", "diff_ids": ids});
    fixture::write_oci_layout(&dir, &img, Compression::Zstd).unwrap();
    let src = open_str(&format!("oci:{}", dir.display())).unwrap();
    assert!(read_layer(&*src, 0).is_ok());
    let err = read_layer(&*src, 1).unwrap_err();
    assert!(
        matches!(source_error(&err), SourceError::DiffIdMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&ids[1]));
}

#[test]
fn truncated_blobs() {
    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let t = tmp();
        let dir = t.path().join("oci");
        let w = fixture::write_oci_layout(&dir, &image(), compression).unwrap();
        let f = blob_file(&dir, &w.layer_digests[2]);
        let bytes = fs::read(&f).unwrap();
        fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
        let src = open_str(&format!("oci:{}", dir.display())).unwrap();
        let err = read_layer(&*src, 2).unwrap_err();
        assert!(
            err.to_string().contains(&w.layer_digests[2]),
            "{compression:?}: {err}"
        );
    }
}

#[test]
fn missing_blobs() {
    let t = tmp();
    let dir = t.path().join("oci");
    let w = fixture::write_oci_layout(&dir, &image(), Compression::Gzip).unwrap();
    fs::remove_file(blob_file(&dir, &w.layer_digests[1])).unwrap();
    let err = open_str(&format!("oci:{}", dir.display())).err().unwrap();
    assert!(
        matches!(&err, SourceError::MissingBlob { digest, .. } if *digest == w.layer_digests[1]),
        "{err}"
    );
    fs::remove_file(blob_file(&dir, &w.config_digest)).unwrap();
    let err = open_str(&format!("oci:{}", dir.display())).err().unwrap();
    assert!(
        matches!(&err, SourceError::MissingBlob { digest, .. } if *digest == w.config_digest),
        "{err}"
    );
    fs::remove_file(blob_file(&dir, &w.manifest_digest)).unwrap();
    let err = open_str(&format!("oci:{}", dir.display()))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains(&w.manifest_digest) && err.contains("missing"),
        "{err}"
    );
    let err = open_str(&format!("oci:{}", t.path().join("nope").display()))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn config_and_manifest_digests_are_checked() {
    let t = tmp();
    let dir = t.path().join("oci");
    let w = fixture::write_oci_layout(&dir, &image(), Compression::Gzip).unwrap();
    let f = blob_file(&dir, &w.config_digest);
    let text = fs::read_to_string(&f)
        .unwrap()
        .replace("fixture layer 0", "fixture layer X");
    fs::write(&f, text).unwrap();
    let err = open_str(&format!("oci:{}", dir.display())).err().unwrap();
    assert!(
        matches!(&err, SourceError::DigestMismatch { digest, .. } if *digest == w.config_digest),
        "{err}"
    );
}

#[test]
fn malformed_json() {
    let t = tmp();
    let dir = t.path().join("oci");
    let w = fixture::write_oci_layout(&dir, &image(), Compression::Gzip).unwrap();
    let index = fs::read(dir.join("index.json")).unwrap();
    fs::write(
        dir.join("index.json"),
        b"{\"schemaVersion\": 2, \"manifests\": [",
    )
    .unwrap();
    let err = open_str(&format!("oci:{}", dir.display())).err().unwrap();
    assert!(
        matches!(&err, SourceError::Malformed { path, .. } if path.ends_with("index.json")),
        "{err}"
    );
    assert_eq!(err.to_string().lines().count(), 1);
    // A manifest whose JSON is broken (but whose digest is right).
    let bad = b"{\"layers\": 5}";
    let bad_digest = pare_source::sha256_digest(bad);
    fs::write(blob_file(&dir, &bad_digest), bad).unwrap();
    let index = String::from_utf8(index)
        .unwrap()
        .replace(&w.manifest_digest, &bad_digest);
    let index = regex_free_size_patch(&index, bad.len());
    fs::write(dir.join("index.json"), index).unwrap();
    let err = open_str(&format!("oci:{}", dir.display())).err().unwrap();
    assert!(
        matches!(
            &err,
            SourceError::Malformed {
                what: "image manifest",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(pare_source::sha256_hex(&bad_digest).unwrap()),
        "{err}"
    );
    // A digest that tries to escape the blob directory.
    let evil = r#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../../etc/passwd","size":5}]}"#;
    fs::write(dir.join("index.json"), evil).unwrap();
    assert!(open_str(&format!("oci:{}", dir.display())).is_err());
}

/// Replaces the first `"size":N` in a one-line index.json.
fn regex_free_size_patch(index: &str, size: usize) -> String {
    let start = index.find("\"size\":").unwrap() + "\"size\":".len();
    let end = start + index[start..].find(|c: char| !c.is_ascii_digit()).unwrap();
    format!("{}{}{}", &index[..start], size, &index[end..])
}

#[test]
fn hostile_docker_archives() {
    let t = tmp();
    let path = t.path().join("save.tar");
    let img = image();
    fixture::write_docker_archive(&path, &img, DockerArchiveFormat::Legacy).unwrap();
    let p = path.display().to_string();

    // malformed manifest.json
    fs::write(
        &path,
        fixture::tar(&[("manifest.json", b"[{\"Config\": 3}]")]),
    )
    .unwrap();
    let err = open_str(&format!("docker-archive:{p}")).err().unwrap();
    assert!(
        matches!(&err, SourceError::Malformed { path, .. } if path.to_string_lossy().ends_with("manifest.json")),
        "{err}"
    );

    // neither manifest.json nor index.json
    fs::write(&path, fixture::tar(&[("hello", b"x")])).unwrap();
    let err = open_str(&format!("docker-archive:{p}"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("docker save"), "{err}");

    // a layer.tar whose content does not match its diff ID
    fixture::write_docker_archive(&path, &img, DockerArchiveFormat::Legacy).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    let pos = bytes
        .windows(12)
        .position(|w| w == b"print('hi')\n")
        .unwrap();
    bytes[pos] = b'P';
    fs::write(&path, &bytes).unwrap();
    let src = open_str(&format!("docker-archive:{p}")).unwrap();
    let err = read_layer(&*src, 1).unwrap_err();
    // A legacy layer.tar is named by its diff ID, so the stored digest is the diff ID.
    assert!(
        matches!(source_error(&err), SourceError::DigestMismatch { digest, .. } if *digest == img.diff_ids()[1]),
        "{err}"
    );

    // truncated archive: cut in the middle of the last layer
    fixture::write_docker_archive(&path, &img, DockerArchiveFormat::Oci).unwrap();
    let bytes = fs::read(&path).unwrap();
    let pos = bytes.windows(64).position(|w| w == [7u8; 64]).unwrap();
    fs::write(&path, &bytes[..pos + 1000]).unwrap();
    let err = open_str(&format!("docker-archive:{p}"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains(&p) && err.lines().count() == 1, "{err}");

    // a missing layer file
    let legacy = Image::new(layers());
    fixture::write_docker_archive(&path, &legacy, DockerArchiveFormat::Legacy).unwrap();
    let manifest: serde_json::Value = {
        let src = open_str(&format!("docker-archive:{p}")).unwrap();
        assert_eq!(src.image().layers.len(), 3);
        serde_json::json!([{"Config": format!("{}.json", pare_source::sha256_hex(&src.image().config_digest).unwrap()),
                             "Layers": ["nope/layer.tar", "x/layer.tar", "y/layer.tar"]}])
    };
    let config = legacy.config_bytes();
    let config_name = format!(
        "{}.json",
        pare_source::sha256_hex(&pare_source::sha256_digest(&config)).unwrap()
    );
    let manifest = serde_json::to_vec(&manifest).unwrap();
    fs::write(
        &path,
        fixture::tar(&[("manifest.json", &manifest), (&config_name, &config)]),
    )
    .unwrap();
    let err = open_str(&format!("docker-archive:{p}")).err().unwrap();
    assert!(
        matches!(&err, SourceError::MissingBlob { .. })
            && err.to_string().contains("nope/layer.tar"),
        "{err}"
    );

    // not a tar at all
    fs::write(&path, b"garbage").unwrap();
    assert!(open_str(&format!("docker-archive:{p}")).is_err());
    // compressed archive
    fs::write(
        &path,
        fixture::compress(&fixture::tar(&[("a", b"a")]), Compression::Gzip).unwrap(),
    )
    .unwrap();
    let err = open_str(&format!("docker-archive:{p}"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("compressed"), "{err}");
}

#[test]
fn media_type_and_content_disagree() {
    let t = tmp();
    let dir = t.path().join("oci");
    let img = image();
    let w = fixture::write_oci_layout(&dir, &img, Compression::Gzip).unwrap();
    // Put plain tar bytes where a gzip blob is announced (fixing up digests so only the
    // compression is wrong).
    let plain = &img.layers[0];
    let new = pare_source::sha256_digest(plain);
    fs::write(blob_file(&dir, &new), plain).unwrap();
    let mtext = fs::read_to_string(blob_file(&dir, &w.manifest_digest)).unwrap();
    let old_size = fs::metadata(blob_file(&dir, &w.layer_digests[0]))
        .unwrap()
        .len();
    let mtext = mtext.replace(&w.layer_digests[0], &new).replace(
        &format!("\"size\":{old_size}"),
        &format!("\"size\":{}", plain.len()),
    );
    let mdigest = pare_source::sha256_digest(mtext.as_bytes());
    fs::write(blob_file(&dir, &mdigest), &mtext).unwrap();
    let index = fs::read_to_string(dir.join("index.json"))
        .unwrap()
        .replace(&w.manifest_digest, &mdigest);
    fs::write(
        dir.join("index.json"),
        regex_free_size_patch(&index, mtext.len()),
    )
    .unwrap();
    let src = open_str(&format!("oci:{}", dir.display())).unwrap();
    let err = src.open_layer(0).err().unwrap();
    assert!(
        matches!(&err, SourceError::Corrupt { digest, .. } if *digest == new),
        "{err}"
    );
    assert!(err.to_string().contains("gzip"), "{err}");
}

#[test]
fn inconsistent_layer_count() {
    let t = tmp();
    let dir = t.path().join("oci");
    let mut img = image();
    img.keep_rootfs = true;
    img.config["rootfs"] = serde_json::json!({"type": "layers", "diff_ids": [img.diff_ids()[0]]});
    fixture::write_oci_layout(&dir, &img, Compression::Gzip).unwrap();
    let err = open_str(&format!("oci:{}", dir.display()))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("3 layers") && err.contains("1 diff_ids"),
        "{err}"
    );
}

#[test]
fn unreachable_registry_is_an_error_naming_the_reference() {
    // Port 1 on loopback: nothing listens (tests/registry.rs covers real and faulty registries).
    let err = open_str("docker://127.0.0.1:1/app:3").err().unwrap();
    assert!(matches!(err, SourceError::Registry { .. }), "{err:?}");
    assert!(err.to_string().contains("docker://127.0.0.1:1/app:3"));
}

#[test]
fn docker_archive_without_manifest_json_is_read_as_oci_layout() {
    let t = tmp();
    let path = t.path().join("img.tar");
    let img = image();
    fixture::write_oci_archive(&path, &img, Compression::Gzip).unwrap();
    let src = open_str(&format!("docker-archive:{}", path.display())).unwrap();
    check_image(&*src, &img);
    let tagged = open_str(&format!("oci-archive:{}:app:1", path.display())).unwrap();
    check_image(&*tagged, &img);
    assert!(open_str(&format!("oci-archive:{}:other", path.display())).is_err());
}

/// An error names what failed and keeps the cause as its source, not in its own message, so
/// that printing the chain gives the cause once.
#[test]
fn a_missing_layout_keeps_its_cause_as_the_source() {
    let e = open_str("oci:/nonexistent").err().expect("no layout there");
    assert_eq!(e.to_string(), "/nonexistent");
    let cause = std::error::Error::source(&e).expect("the cause");
    assert_eq!(cause.to_string(), "not a directory");
    assert_eq!(pare_progress::chain(&e), "/nonexistent: not a directory");
}
