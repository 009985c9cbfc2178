//! Output formats: OCI layout, docker-archive, tags, docker load, tampered selections.

use super::*;

#[test]
fn layout_is_valid_and_layer_is_normalized() {
    let s = setup();
    let root = &s.root;
    let xattr_ok = xattr::set(root.join("app/run"), "user.pare.test", b"v1").is_ok();
    // File capabilities (cap_net_bind_service+ep, VFS_CAP_REVISION_2); needs CAP_SETFCAP.
    let cap: Vec<u8> = [0x0200_0001u32, 1 << 10, 0, 0, 0]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    let cap_ok = xattr::set(root.join("app/setuid"), "security.capability", &cap).is_ok();
    let dir = s.path("out");
    let epoch = 1_234_567_890;
    let w = s
        .write(oci(dir.clone(), Some("app.slim:1.0")), Some(epoch))
        .unwrap();

    // No temp leftovers next to it.
    let names: Vec<String> = fs::read_dir(s.t.path())
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
    assert_eq!(desc.digest().to_string(), w.manifest_digest.to_string());
    assert_eq!(
        desc.annotations().as_ref().unwrap()["org.opencontainers.image.ref.name"],
        "app.slim:1.0"
    );
    let mbytes = blob(&dir, w.manifest_digest.as_ref());
    assert_eq!(sha(&mbytes), w.manifest_digest.to_string());
    assert_eq!(desc.size(), mbytes.len() as u64);
    let manifest = ImageManifest::from_reader(&mbytes[..]).unwrap();
    assert_eq!(manifest.layers().len(), 1);
    let cbytes = blob(&dir, manifest.config().digest().as_ref());
    assert_eq!(sha(&cbytes), w.config_digest.to_string());
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
    let s = setup();
    let path = s.path("img.tar");
    let w = s
        .write(docker_archive(path.clone(), Some("app.slim:1.0")), None)
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
    assert_eq!(sha(&files[cfg_name]), w.config_digest.to_string());
    let layer_name = m[0]["Layers"][0].as_str().unwrap();
    assert_eq!(sha(&files[layer_name]), w.layer.digest.to_string());
    ImageIndex::from_reader(&files["index.json"][..]).unwrap();
    assert_eq!(w.epoch, 0);
}

#[test]
fn rejects_non_canonical_paths_from_a_tampered_selection() {
    let s = setup();
    // A path with `..` is no ImagePath: a selection (report.json) holding one is refused
    // when it is read, before any writing.
    for bad in ["/../../etc/shadow", "/usr/../etc/passwd"] {
        let json = format!(r#"{{"entries":{{"{bad}":{{"reasons":[]}}}}}}"#);
        let e = serde_json::from_str::<Selection>(&json).unwrap_err();
        assert!(e.to_string().contains("climbs with `..`"), "{bad}: {e}");
    }
    // A path through a symlink is refused by the writer.
    let bad = "/bin/gzip";
    let mut sel = Selection::default();
    sel.entries.insert(bad.parse().unwrap(), Kept::default());
    let r = write_image(&s.root, &sel, &meta(), oci(s.path("o"), None), None);
    assert!(
        matches!(r, Err(WriteError::NotCanonical { .. })),
        "{bad}: {r:?}"
    );
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
    let s = setup();
    let dir = s.path("layout");
    s.write(oci(dir.clone(), Some("a")), Some(1)).unwrap();
    s.write(oci(dir.clone(), Some("b")), Some(2)).unwrap();
    let w = s.write(oci(dir.clone(), Some("a")), Some(3)).unwrap();
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
    assert!(refs.contains(&("a".into(), w.manifest_digest.to_string())));
    // A non-layout directory is refused.
    let junk = s.path("junk");
    fs::create_dir_all(&junk).unwrap();
    fs::write(junk.join("file"), b"x").unwrap();
    assert!(matches!(
        s.write(oci(junk, None), None),
        Err(WriteError::NotALayout { .. })
    ));
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
    let tag = pare_test_support::names::image("write.slim:latest");
    let tag = tag.as_str();
    let _remove = pare_test_support::names::RemoveOnDrop(tag.to_string());
    let w = write_image(
        &root,
        &sel,
        &meta(),
        docker_archive(path.clone(), Some(tag)),
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
        id.starts_with(w.config_digest.as_ref()),
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
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "slim-ok",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
