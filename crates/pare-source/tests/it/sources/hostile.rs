//! Bad input: wrong digests, truncated or missing blobs, malformed or hostile files, one-line errors.

use super::*;

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
        serde_json::json!([{"Config": format!("{}.json", pare_source::sha256_hex(src.image().config_digest.as_ref()).unwrap()),
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
