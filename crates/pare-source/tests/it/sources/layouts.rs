//! Reading every transport: OCI layouts, archives, tags, platforms, compressions, parallel layers.

use super::*;

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
            r.manifest_digest.as_ref().map(AsRef::as_ref),
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
        assert_eq!(by_tag.image().config_digest.to_string(), w.config_digest);
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
        src.image().manifest_digest.as_ref().map(AsRef::as_ref),
        Some(written[0].manifest_digest.as_str())
    );
    check_image(&*src, &on_host);

    let opts = OpenOptions {
        platform: Some(other.clone()),
        ..Default::default()
    };
    let src = open(&r, &opts).unwrap();
    assert_eq!(
        src.image().manifest_digest.as_ref().map(AsRef::as_ref),
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
