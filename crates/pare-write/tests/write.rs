//! Writer tests: determinism, layout validity (read back with oci-spec), archive format, and
//! `docker load` (ignored without a daemon).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};
use pare_select::{Kept, Reason, SelectInputs, Selection, select};
use pare_write::{ImageMeta, Output, WriteError, write_image};
use sha2::{Digest, Sha256};

const SOURCE_CONFIG: &str = r#"{
  "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
  "config": {
    "User": "1000:1000", "Env": ["PATH=/usr/bin:/bin", "A=1"], "Entrypoint": ["/app/run"], "Cmd": ["--serve"],
    "WorkingDir": "/app", "ExposedPorts": {"8080/tcp": {}, "80/tcp": {}}, "Volumes": {"/data": {}},
    "Labels": {"z": "last", "a": "first", "maintainer": "me"}, "StopSignal": "SIGTERM",
    "Healthcheck": {"Test": ["CMD-SHELL", "wget -q -O- localhost:8080 || exit 1"], "Interval": 30000000000, "Retries": 3},
    "OnBuild": ["RUN echo dropped"]
  },
  "rootfs": {"type": "layers", "diff_ids": ["sha256:1111111111111111111111111111111111111111111111111111111111111111"]},
  "history": [{"created_by": "a"}, {"created_by": "b"}]
}"#;

fn meta() -> ImageMeta {
    ImageMeta::from_config_json(SOURCE_CONFIG.as_bytes(), "example/app:1.0").unwrap()
}

fn write(root: &Path, p: &str, content: &[u8], mode: u32) {
    let host = root.join(p.trim_start_matches('/'));
    fs::create_dir_all(host.parent().unwrap()).unwrap();
    fs::write(&host, content).unwrap();
    fs::set_permissions(&host, fs::Permissions::from_mode(mode)).unwrap();
}

/// A small rootfs with every entry kind the writer handles.
fn fixture(root: &Path) {
    write(root, "/app/run", b"#!/bin/sh\necho hi\n", 0o755);
    write(root, "/app/setuid", b"s", 0o4755);
    write(root, "/usr/bin/gzip", b"gzip-binary", 0o755);
    fs::hard_link(root.join("usr/bin/gzip"), root.join("usr/bin/gunzip")).unwrap();
    fs::hard_link(root.join("usr/bin/gzip"), root.join("usr/bin/uncompress")).unwrap();
    symlink("usr/bin", root.join("bin")).unwrap();
    symlink("gzip", root.join("usr/bin/zcat")).unwrap();
    let long_dir = format!("/usr/share/{}", "d".repeat(120));
    write(
        root,
        &format!("{long_dir}/{}", "f".repeat(90)),
        b"long",
        0o644,
    );
    write(
        root,
        &format!("/opt/{}", "x".repeat(230)),
        b"very long",
        0o600,
    );
    // Multi-byte names longer than a header field (PAX path, char-safe truncation).
    write(root, &format!("/opt/a{}", "é".repeat(60)), b"utf8", 0o644);
    symlink(
        format!("/opt/{}", "x".repeat(230)),
        root.join("opt/longlink"),
    )
    .unwrap();
    fs::create_dir_all(root.join("tmp")).unwrap();
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    write(
        root,
        "/var/lib/dpkg/status",
        b"Package: original\n\n",
        0o644,
    );
    write(root, "/etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644);
    fs::create_dir_all(root.join("data")).unwrap();
}

fn selection_all(root: &Path) -> Selection {
    let mut sel = Selection::default();
    for e in walk(root) {
        sel.entries.insert(
            e,
            Kept {
                reasons: vec![Reason::IncludeShell],
            },
        );
    }
    sel.generated.insert(
        "/var/lib/dpkg/status".into(),
        b"Package: trimmed\n\n".to_vec(),
    );
    sel.generated
        .insert("/etc/synthetic".into(), b"new\n".to_vec());
    sel.entries.insert("/etc/synthetic".into(), Kept::default());
    sel.created_dirs.insert("/run/made".into(), 0o700);
    sel.created_dirs.insert("/run".into(), 0o755);
    sel
}

fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            out.push(format!("/{}", p.strip_prefix(root).unwrap().display()));
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    fs::read(
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap()
}

#[test]
fn same_input_same_digest_whatever_the_timestamps() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("rootfs");
    fixture(&root);
    let sel = selection_all(&root);
    let a = write_image(
        &root,
        &sel,
        &meta(),
        Output::Oci {
            dir: t.path().join("a"),
            tag: Some("x.slim:1".into()),
        },
        Some(1_700_000_000),
    )
    .unwrap();
    let b = write_image(
        &root,
        &sel,
        &meta(),
        Output::Oci {
            dir: t.path().join("b"),
            tag: Some("x.slim:1".into()),
        },
        Some(1_700_000_000),
    )
    .unwrap();
    assert_eq!(a.manifest_digest, b.manifest_digest);
    assert_eq!(a.layer, b.layer);
    assert_eq!(
        fs::read(t.path().join("a/index.json")).unwrap(),
        fs::read(t.path().join("b/index.json")).unwrap()
    );

    // Touch every file's atime/mtime and copy the tree elsewhere (new inodes): same digest.
    for p in walk(&root) {
        let host = root.join(p.trim_start_matches('/'));
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
    let c = write_image(
        &root,
        &sel,
        &meta(),
        Output::Oci {
            dir: t.path().join("c"),
            tag: Some("x.slim:1".into()),
        },
        Some(1_700_000_000),
    )
    .unwrap();
    assert_eq!(
        a.manifest_digest, c.manifest_digest,
        "timestamps leaked into the image"
    );
    let copy = t.path().join("copy");
    let out = std::process::Command::new("cp")
        .arg("-a")
        .arg(&root)
        .arg(&copy)
        .output()
        .unwrap();
    assert!(out.status.success());
    let d = write_image(
        &copy,
        &sel,
        &meta(),
        Output::Oci {
            dir: t.path().join("d"),
            tag: Some("x.slim:1".into()),
        },
        Some(1_700_000_000),
    )
    .unwrap();
    assert_eq!(
        a.manifest_digest, d.manifest_digest,
        "inode numbers or paths leaked into the image"
    );

    // A different epoch is a different image.
    let e = write_image(
        &root,
        &sel,
        &meta(),
        Output::Oci {
            dir: t.path().join("e"),
            tag: None,
        },
        Some(1),
    )
    .unwrap();
    assert_ne!(a.layer.diff_id, e.layer.diff_id);
    // The docker archive carries the same image (same config digest = image ID).
    let f = write_image(
        &root,
        &sel,
        &meta(),
        Output::DockerArchive {
            path: t.path().join("x.tar"),
            tag: Some("x.slim:1".into()),
        },
        Some(1_700_000_000),
    )
    .unwrap();
    assert_eq!(a.config_digest, f.config_digest);
    assert_eq!(a.manifest_digest, f.manifest_digest);
    let g = write_image(
        &root,
        &sel,
        &meta(),
        Output::DockerArchive {
            path: t.path().join("y.tar"),
            tag: Some("x.slim:1".into()),
        },
        Some(1_700_000_000),
    )
    .unwrap();
    assert_eq!(f.config_digest, g.config_digest);
    assert_eq!(
        fs::read(t.path().join("x.tar")).unwrap(),
        fs::read(t.path().join("y.tar")).unwrap(),
        "archive bytes differ"
    );
}

#[test]
fn plain_layer_for_docker_load_is_the_tar_inside_the_gzip_layer() {
    // The `docker load` path writes the layer uncompressed and measures its gzip form on the
    // side; both must describe exactly the layer the OCI path writes.
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("rootfs");
    fixture(&root);
    let sel = selection_all(&root);
    let oci = write_image(
        &root,
        &sel,
        &meta(),
        Output::Oci {
            dir: t.path().join("oci"),
            tag: None,
        },
        Some(7),
    )
    .unwrap();
    let plain = pare_write::write_plain_layer(&root, &sel, Some(7), t.path()).unwrap();
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
    let gz = blob(&t.path().join("oci"), oci.layer.digest.as_ref());
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
fn layout_is_valid_and_layer_is_normalized() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("rootfs");
    fixture(&root);
    let xattr_ok = xattr::set(root.join("app/run"), "user.pare.test", b"v1").is_ok();
    // File capabilities (cap_net_bind_service+ep, VFS_CAP_REVISION_2); needs CAP_SETFCAP.
    let cap: Vec<u8> = [0x0200_0001u32, 1 << 10, 0, 0, 0]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    let cap_ok = xattr::set(root.join("app/setuid"), "security.capability", &cap).is_ok();
    let sel = selection_all(&root);
    let dir = t.path().join("out");
    let epoch = 1_234_567_890;
    let w = write_image(
        &root,
        &sel,
        &meta(),
        Output::Oci {
            dir: dir.clone(),
            tag: Some("app.slim:1.0".into()),
        },
        Some(epoch),
    )
    .unwrap();

    // No temp leftovers next to it.
    let names: Vec<String> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with(".pare")), "{names:?}");

    assert_eq!(
        fs::read_to_string(dir.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let index = ImageIndex::from_file(dir.join("index.json")).unwrap();
    assert_eq!(index.manifests().len(), 1);
    let desc = &index.manifests()[0];
    assert_eq!(desc.digest().to_string(), w.manifest_digest);
    assert_eq!(
        desc.annotations().as_ref().unwrap()["org.opencontainers.image.ref.name"],
        "app.slim:1.0"
    );
    let mbytes = blob(&dir, &w.manifest_digest);
    assert_eq!(sha(&mbytes), w.manifest_digest);
    assert_eq!(desc.size(), mbytes.len() as u64);
    let manifest = ImageManifest::from_reader(&mbytes[..]).unwrap();
    assert_eq!(manifest.layers().len(), 1);
    let cbytes = blob(&dir, manifest.config().digest().as_ref());
    assert_eq!(sha(&cbytes), w.config_digest);
    let config = ImageConfiguration::from_reader(&cbytes[..]).unwrap();
    let lbytes = blob(&dir, manifest.layers()[0].digest().as_ref());
    assert_eq!(sha(&lbytes), w.layer.digest.to_string());
    assert_eq!(lbytes.len() as u64, manifest.layers()[0].size());
    // gzip header: no name, mtime 0.
    assert_eq!(&lbytes[..4], &[0x1f, 0x8b, 8, 0]);
    assert_eq!(&lbytes[4..8], &[0, 0, 0, 0]);
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(&lbytes[..])
        .read_to_end(&mut tar_bytes)
        .unwrap();
    assert_eq!(sha(&tar_bytes), w.layer.diff_id.to_string());
    assert_eq!(
        config.rootfs().diff_ids(),
        &vec![w.layer.diff_id.to_string()]
    );

    // Config: kept fields, labels, one history entry, created = epoch, Healthcheck.
    let c = config.config().as_ref().unwrap();
    assert_eq!(c.user().as_deref(), Some("1000:1000"));
    assert_eq!(
        c.entrypoint().as_ref().unwrap(),
        &vec!["/app/run".to_string()]
    );
    assert_eq!(c.cmd().as_ref().unwrap(), &vec!["--serve".to_string()]);
    assert_eq!(c.working_dir().as_deref(), Some("/app"));
    assert_eq!(c.stop_signal().as_deref(), Some("SIGTERM"));
    assert_eq!(c.exposed_ports().as_ref().unwrap().len(), 2);
    assert_eq!(c.volumes().as_ref().unwrap(), &vec!["/data".to_string()]);
    assert_eq!(c.env().as_ref().unwrap().len(), 2);
    let labels = c.labels().as_ref().unwrap();
    assert_eq!(labels["io.pare.source.ref"], "example/app:1.0");
    assert_eq!(
        labels["io.pare.source.digest"],
        sha(SOURCE_CONFIG.as_bytes())
    );
    assert_eq!(labels["maintainer"], "me");
    assert_eq!(config.created().as_deref(), Some("2009-02-13T23:31:30Z"));
    let hist = config.history().as_ref().unwrap();
    assert_eq!(hist.len(), 1);
    assert_eq!(hist[0].created_by().as_deref(), Some("pare build"));
    let raw: serde_json::Value = serde_json::from_slice(&cbytes).unwrap();
    assert_eq!(raw["config"]["Healthcheck"]["Test"][0], "CMD-SHELL");
    assert_eq!(raw["config"]["Healthcheck"]["Retries"], 3);
    assert!(raw["config"].get("OnBuild").is_none());

    // Layer entries.
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut seen: Vec<String> = Vec::new();
    let mut by_name = BTreeMap::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let h = e.header().clone();
        assert_eq!(h.mtime().unwrap(), epoch, "{name}");
        assert!(h.username_bytes().is_none_or(|u| u.is_empty()), "{name}");
        assert!(h.groupname_bytes().is_none_or(|u| u.is_empty()), "{name}");
        let kind = h.entry_type();
        let link = e.link_name().unwrap().map(|l| l.display().to_string());
        let pax: Vec<(String, Vec<u8>)> = e
            .pax_extensions()
            .unwrap()
            .into_iter()
            .flatten()
            .map(|x| x.unwrap())
            .map(|x| (x.key().unwrap().to_string(), x.value_bytes().to_vec()))
            .collect();
        let mut body = Vec::new();
        e.read_to_end(&mut body).unwrap();
        seen.push(name.trim_end_matches('/').to_string());
        by_name.insert(
            name.trim_end_matches('/').to_string(),
            (h, kind, link, body, pax),
        );
    }
    // Parents before children and sorted.
    for (i, n) in seen.iter().enumerate() {
        let mut p = Path::new(n).parent();
        while let Some(pp) = p.filter(|x| !x.as_os_str().is_empty()) {
            let pi = seen
                .iter()
                .position(|s| Path::new(s) == pp)
                .unwrap_or_else(|| panic!("no parent {pp:?} of {n}"));
            assert!(pi < i, "{n} before its parent");
            p = pp.parent();
        }
    }
    let md = |p: &str| fs::symlink_metadata(root.join(p)).unwrap();
    let (h, kind, ..) = &by_name["tmp"];
    assert!(kind.is_dir());
    assert_eq!(h.mode().unwrap(), 0o1777);
    let (h, ..) = &by_name["app/setuid"];
    assert_eq!(h.mode().unwrap(), 0o4755);
    assert_eq!(h.uid().unwrap(), u64::from(md("app/setuid").uid()));
    // Hardlinks: the first path in order holds the data, the others link to it.
    let (_, k, _, body, _) = &by_name["usr/bin/gunzip"];
    assert!(k.is_file());
    assert_eq!(body, b"gzip-binary");
    for n in ["usr/bin/gzip", "usr/bin/uncompress"] {
        let (_, k, link, ..) = &by_name[n];
        assert!(k.is_hard_link(), "{n}");
        assert_eq!(link.as_deref(), Some("usr/bin/gunzip"));
    }
    let (_, k, link, ..) = &by_name["bin"];
    assert!(k.is_symlink());
    assert_eq!(link.as_deref(), Some("usr/bin"));
    let long = format!("opt/{}", "x".repeat(230));
    assert_eq!(by_name[&long].3, b"very long");
    assert_eq!(
        by_name["opt/longlink"].2.as_deref(),
        Some(format!("/{long}").as_str())
    );
    assert_eq!(by_name[&format!("opt/a{}", "é".repeat(60))].3, b"utf8");
    let long2 = format!("usr/share/{}/{}", "d".repeat(120), "f".repeat(90));
    assert_eq!(by_name[&long2].3, b"long");
    // Generated content replaces the file; created dirs appear.
    assert_eq!(by_name["var/lib/dpkg/status"].3, b"Package: trimmed\n\n");
    assert_eq!(by_name["etc/synthetic"].3, b"new\n");
    assert_eq!(by_name["run/made"].0.mode().unwrap(), 0o700);
    if xattr_ok {
        let pax = &by_name["app/run"].4;
        assert!(
            pax.iter()
                .any(|(k, v)| k == "SCHILY.xattr.user.pare.test" && v == b"v1"),
            "{pax:?}"
        );
    } else {
        eprintln!("note: user xattrs unsupported on this filesystem; xattr check skipped");
    }
    if cap_ok {
        let pax = &by_name["app/setuid"].4;
        assert!(
            pax.iter()
                .any(|(k, v)| k == "SCHILY.xattr.security.capability" && *v == cap),
            "{pax:?}"
        );
    } else {
        eprintln!("note: cannot set security.capability here (not root); capability check skipped");
    }
    assert_eq!(w.layer.hardlinks, 2);
}

#[test]
fn docker_archive_format() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("rootfs");
    fixture(&root);
    let sel = selection_all(&root);
    let path = t.path().join("img.tar");
    let w = write_image(
        &root,
        &sel,
        &meta(),
        Output::DockerArchive {
            path: path.clone(),
            tag: Some("app.slim:1.0".into()),
        },
        None,
    )
    .unwrap();
    let mut files = BTreeMap::new();
    let mut a = tar::Archive::new(fs::File::open(&path).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        files.insert(e.path().unwrap().display().to_string(), b);
    }
    let m: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(m[0]["RepoTags"][0], "app.slim:1.0");
    let cfg_name = m[0]["Config"].as_str().unwrap();
    assert_eq!(sha(&files[cfg_name]), w.config_digest);
    let layer_name = m[0]["Layers"][0].as_str().unwrap();
    assert_eq!(sha(&files[layer_name]), w.layer.digest.to_string());
    ImageIndex::from_reader(&files["index.json"][..]).unwrap();
    assert_eq!(w.epoch, 0);
}

#[test]
fn rejects_non_canonical_paths_from_a_tampered_selection() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("rootfs");
    fixture(&root);
    for bad in ["/bin/gzip", "/../../etc/shadow", "/usr/../etc/passwd"] {
        let mut sel = Selection::default();
        sel.entries.insert(bad.into(), Kept::default());
        let r = write_image(
            &root,
            &sel,
            &meta(),
            Output::Oci {
                dir: t.path().join("o"),
                tag: None,
            },
            None,
        );
        assert!(
            matches!(r, Err(WriteError::NotCanonical { .. })),
            "{bad}: {r:?}"
        );
    }
    assert!(Output::parse("nope:x").is_err());
    assert_eq!(
        Output::parse("oci:/tmp/x:v1").unwrap(),
        Output::Oci {
            dir: "/tmp/x".into(),
            tag: Some("v1".into())
        }
    );
    assert_eq!(
        Output::parse("docker-archive:/tmp/a.tar:app.slim:1").unwrap(),
        Output::DockerArchive {
            path: "/tmp/a.tar".into(),
            tag: Some("app.slim:1".into())
        }
    );
}

#[test]
fn oci_layout_accumulates_tags() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("rootfs");
    fixture(&root);
    let sel = selection_all(&root);
    let dir = t.path().join("layout");
    write_image(
        &root,
        &sel,
        &meta(),
        Output::Oci {
            dir: dir.clone(),
            tag: Some("a".into()),
        },
        Some(1),
    )
    .unwrap();
    write_image(
        &root,
        &sel,
        &meta(),
        Output::Oci {
            dir: dir.clone(),
            tag: Some("b".into()),
        },
        Some(2),
    )
    .unwrap();
    let w = write_image(
        &root,
        &sel,
        &meta(),
        Output::Oci {
            dir: dir.clone(),
            tag: Some("a".into()),
        },
        Some(3),
    )
    .unwrap();
    let index = ImageIndex::from_file(dir.join("index.json")).unwrap();
    let refs: Vec<(String, String)> = index
        .manifests()
        .iter()
        .map(|m| {
            (
                m.annotations().as_ref().unwrap()["org.opencontainers.image.ref.name"].clone(),
                m.digest().to_string(),
            )
        })
        .collect();
    assert_eq!(refs.len(), 2);
    assert!(refs.contains(&("a".into(), w.manifest_digest.clone())));
    // A non-layout directory is refused.
    let junk = t.path().join("junk");
    fs::create_dir_all(&junk).unwrap();
    fs::write(junk.join("file"), b"x").unwrap();
    assert!(matches!(
        write_image(
            &root,
            &sel,
            &meta(),
            Output::Oci {
                dir: junk,
                tag: None
            },
            None
        ),
        Err(WriteError::NotALayout { .. })
    ));
}

fn bookworm() -> Option<PathBuf> {
    let p = PathBuf::from(
        std::env::var("PARE_BOOKWORM_ROOTFS").unwrap_or_else(|_| "/var/cache/pare/bookworm".into()),
    );
    p.join("usr/bin/bash").exists().then_some(p)
}

#[test]
#[ignore = "needs docker"]
fn docker_load_runs_the_slim_image() {
    let root = bookworm().expect("bookworm rootfs");
    let inputs = SelectInputs {
        include_shell: true,
        include_exes: vec!["cat".into()],
        ..Default::default()
    };
    let sel = select(&root, &inputs).unwrap();
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("slim.tar");
    let tag = "pare-write-test.slim:latest";
    let w = write_image(
        &root,
        &sel,
        &meta(),
        Output::DockerArchive {
            path: path.clone(),
            tag: Some(tag.into()),
        },
        None,
    )
    .unwrap();
    let loaded = pare_write::docker_load(&path).unwrap();
    assert_eq!(loaded, tag);
    // The daemon path (plain layer streamed into `docker load`, gzip measured on the side)
    // gives the same image ID, and reports the same gzip layer and manifest digests.
    let again = pare_write::load_into_docker(&root, &sel, &meta(), tag, None).unwrap();
    assert_eq!(again.config_digest, w.config_digest);
    assert_eq!(again.manifest_digest, w.manifest_digest);
    assert_eq!(again.layer, w.layer);
    assert_eq!(
        again.output,
        Output::Daemon {
            tag: tag.to_string()
        }
    );
    let id = std::process::Command::new("docker")
        .args([
            "image",
            "inspect",
            "-f",
            "{{.Id}} {{json .Config.Healthcheck}}",
            tag,
        ])
        .output()
        .unwrap();
    let id = String::from_utf8_lossy(&id.stdout).to_string();
    assert!(
        id.starts_with(&w.config_digest),
        "{id} vs {}",
        w.config_digest
    );
    assert!(id.contains("CMD-SHELL"), "{id}");
    let out = std::process::Command::new("docker")
        .args([
            "run",
            "--rm",
            "--user",
            "0",
            "--entrypoint",
            "/bin/sh",
            tag,
            "-c",
            "cat /etc/passwd >/dev/null && echo slim-ok",
        ])
        .output()
        .unwrap();
    let _ = std::process::Command::new("docker")
        .args(["rmi", "-f", tag])
        .output();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "slim-ok",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
