//! `pare squash` end to end: fixture images in OCI layouts and docker archives (no daemon),
//! and (docker-tests) a pare-example image squashed into the daemon and run.

use std::collections::BTreeMap;

use pare_layerfs::ReadOptions;
use pare_source::{Compression, ImageRef, OpenOptions};
use pare_test_support::fixture::{self, DockerArchiveFormat, Image};
use pare_test_support::layer::LayerBuilder as L;
use serde_json::{Value, json};

#[path = "common/cli.rs"]
mod cli;
use cli::{fails_with, run};

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Every visible path with its kind, mode, owner (as root), size, link and content hash.
fn tree(reference: &str) -> BTreeMap<String, String> {
    let r = ImageRef::parse(reference).unwrap();
    let src = pare_source::open(&r, &OpenOptions::default()).unwrap();
    let fs = pare_layerfs::read_image(
        src.as_ref(),
        &ReadOptions {
            hash: true,
            ..Default::default()
        },
    )
    .unwrap();
    let root = is_root();
    fs.iter()
        .filter(|(p, _)| !p.is_empty())
        .map(|(p, n)| {
            let owner = if root {
                format!("{}:{}", n.uid, n.gid)
            } else {
                String::new()
            };
            let v = format!(
                "{:?} {:o} {owner} {} {:?} {:?}",
                n.kind, n.mode, n.size, n.link, n.hash
            );
            (p.to_string(), v)
        })
        .collect()
}

/// The two images show the same tree; the differences are listed when not.
fn assert_same_tree(a: &str, b: &str) {
    let (ta, tb) = (tree(a), tree(b));
    let diff: Vec<String> = ta
        .iter()
        .filter(|(k, v)| tb.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: {v} vs {:?}", tb.get(k)))
        .chain(
            tb.keys()
                .filter(|k| !ta.contains_key(*k))
                .map(|k| format!("{k}: only in {b}")),
        )
        .take(20)
        .collect();
    assert!(diff.is_empty(), "{a} vs {b}:\n{}", diff.join("\n"));
    assert!(ta.len() > 3);
}

/// `(layer count, config)` of an image.
fn shape(reference: &str) -> (usize, Value) {
    let r = ImageRef::parse(reference).unwrap();
    let src = pare_source::open(&r, &OpenOptions::default()).unwrap();
    let cfg: Value = serde_json::from_slice(src.raw_config().unwrap()).unwrap();
    (src.image().layers.len(), cfg)
}

/// Three layers: a base, one that overwrites, deletes and adds, one with an opaque dir.
fn image() -> Image {
    let base = L::new()
        .dir("etc")
        .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
        .dir("data")
        .sized("data/big", 100_000, b'a')
        .file("data/gone", b"deleted later")
        .dir("keep")
        .file("keep/old", b"hidden by the opaque dir")
        .finish();
    let change = L::new()
        .dir("data")
        .sized("data/big", 200_000, b'b')
        .whiteout("data/gone")
        .dir("app")
        .file_mode("app/run", b"#!/bin/sh\necho hi\n", 0o755)
        .finish();
    let opaque = L::new()
        .dir("keep")
        .opaque("keep")
        .file("keep/new", b"new")
        .symlink("app/link", "run")
        .finish();
    let mut img = Image::new(vec![base, change, opaque]);
    img.config["config"]["Cmd"] = json!(["/app/run"]);
    img.config["config"]["User"] = json!("1000");
    img.config["config"]["ExposedPorts"] = json!({"8080/tcp": {}});
    img
}

#[test]
fn squash_keeps_the_merged_tree_config_and_history_in_one_layer() {
    let t = tempfile::tempdir().unwrap();
    let img = image();
    let layout = t.path().join("in");
    fixture::write_oci_layout(&layout, &img, Compression::Gzip).unwrap();
    let archive = t.path().join("in.tar");
    fixture::write_docker_archive(&archive, &img, DockerArchiveFormat::Legacy).unwrap();
    let src = format!("oci:{}", layout.display());
    let out1 = format!("oci:{}:sq", t.path().join("out1").display());
    let o = run(&["squash", &src, "--output", &out1, "--json"], 0);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();

    assert_same_tree(&src, &out1);
    let (layers, cfg) = shape(&out1);
    assert_eq!(layers, 1);
    assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
    let (_, orig) = shape(&src);
    for k in ["Cmd", "User", "ExposedPorts", "Env"] {
        assert_eq!(cfg["config"][k], orig["config"][k], "{k}");
    }
    let h = cfg["history"].as_array().unwrap();
    assert_eq!(h.len(), 4, "{h:?}");
    assert_eq!(h[0]["created_by"], "fixture layer 0");
    assert!(h[..3].iter().all(|s| s["empty_layer"] == true));
    assert_eq!(h[3]["created_by"], "pare squash");
    // Bytes saved: the 100 kB copy of data/big and data/gone, hidden keep/old — xray's waste.
    let xray = run(&["xray", &src, "--format", "json"], 0);
    let x: Value = serde_json::from_slice(&xray.stdout).unwrap();
    assert_eq!(report["wasted_bytes"], x["wasted_bytes"]);
    assert_eq!(
        report["saved_bytes"].as_u64().unwrap(),
        100_000 + 13 + 24,
        "{report}"
    );
    assert_eq!(
        report["bytes_before"].as_u64().unwrap() - report["bytes_after"].as_u64().unwrap(),
        report["saved_bytes"].as_u64().unwrap()
    );

    // Reproducible, and the same from another transport of the same image.
    let out2 = format!("oci:{}:sq", t.path().join("out2").display());
    let from_archive = format!("docker-archive:{}", archive.display());
    let o2 = run(&["squash", &from_archive, "--output", &out2, "--json"], 0);
    let r2: Value = serde_json::from_slice(&o2.stdout).unwrap();
    assert_eq!(r2["manifest_digest"], report["manifest_digest"]);
    let o3 = run(&["squash", &src, "--output", &out2, "--json"], 0);
    let r3: Value = serde_json::from_slice(&o3.stdout).unwrap();
    assert_eq!(r3["manifest_digest"], report["manifest_digest"]);
    // The squashed image has no waste left.
    let xray = run(&["xray", &out1, "--format", "json"], 0);
    let x: Value = serde_json::from_slice(&xray.stdout).unwrap();
    assert_eq!(x["wasted_bytes"], 0);
}

#[test]
fn keep_base_keeps_the_bottom_layers_byte_for_byte() {
    let t = tempfile::tempdir().unwrap();
    let img = image();
    let archive = t.path().join("in.tar");
    fixture::write_docker_archive(&archive, &img, DockerArchiveFormat::Oci).unwrap();
    let src = format!("docker-archive:{}", archive.display());
    let out = t.path().join("out.tar");
    let out_ref = format!("docker-archive:{}:squash-test/kb:1", out.display());
    let o = run(
        &[
            "squash",
            &src,
            "--keep-base",
            "1",
            "--output",
            &out_ref,
            "--json",
        ],
        0,
    );
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["kept_base_layers"], 1);
    assert_eq!(report["whiteouts"], 2, "data/gone and keep/old: {report}");
    let read_back = format!("docker-archive:{}", out.display());
    assert_same_tree(&src, &read_back);
    let (layers, cfg) = shape(&read_back);
    assert_eq!(layers, 2);
    let ids = cfg["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(
        ids[0],
        json!(img.diff_ids()[0]),
        "the base layer is kept as is"
    );
    let h = cfg["history"].as_array().unwrap();
    assert_eq!(h.iter().filter(|s| s["empty_layer"] != true).count(), 2);
    // The squashed layer stores the 200 kB data/big once; the base keeps its 100 kB copy.
    assert_eq!(report["saved_bytes"], 0);
}

/// `--output oci-archive:PATH:TAG`: the same image as the `oci:` output (same digest), as a
/// tar of the layout alone (no Docker `manifest.json`), tagged, and read back whole; with
/// `--keep-base` the kept layer goes into the archive too.
#[test]
fn squash_to_an_oci_archive() {
    let t = tempfile::tempdir().unwrap();
    let img = image();
    let layout = t.path().join("in");
    fixture::write_oci_layout(&layout, &img, Compression::Gzip).unwrap();
    let src = format!("oci:{}", layout.display());
    let dir_out = format!("oci:{}:sq", t.path().join("dir").display());
    let r1: Value =
        serde_json::from_slice(&run(&["squash", &src, "--output", &dir_out, "--json"], 0).stdout)
            .unwrap();
    for keep_base in ["0", "1"] {
        let tar = t.path().join(format!("out-{keep_base}.tar"));
        let out = format!("oci-archive:{}:sq", tar.display());
        let o = run(
            &[
                "squash",
                &src,
                "--keep-base",
                keep_base,
                "--output",
                &out,
                "--json",
            ],
            0,
        );
        let r2: Value = serde_json::from_slice(&o.stdout).unwrap();
        let mut names: Vec<String> = tar::Archive::new(std::fs::File::open(&tar).unwrap())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert!(names.contains(&"oci-layout".to_string()), "{names:?}");
        assert!(names.contains(&"index.json".to_string()), "{names:?}");
        assert!(!names.contains(&"manifest.json".to_string()), "{names:?}");
        let blobs = names
            .iter()
            .filter(|n| n.starts_with("blobs/sha256/") && n.len() > 13);
        // manifest, config and one layer, plus the kept base layer.
        assert_eq!(
            blobs.count(),
            if keep_base == "0" { 3 } else { 4 },
            "{names:?}"
        );
        assert_same_tree(&src, &out);
        let (layers, _) = shape(&out);
        assert_eq!(layers, if keep_base == "0" { 1 } else { 2 });
        if keep_base == "0" {
            assert_eq!(r2["manifest_digest"], r1["manifest_digest"]);
        }
        // skopeo (the testbed installs it) reads it under the tag, with that digest.
        if let Ok(o) = std::process::Command::new("skopeo")
            .args(["inspect", &out])
            .output()
        {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(v["Digest"], r2["manifest_digest"]);
        }
    }
    // A tag that is not in the archive is refused.
    let out = format!("oci-archive:{}:other", t.path().join("out-0.tar").display());
    let o = run(&["xray", &out], 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("other"));
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("in");
    fixture::write_oci_layout(&layout, &image(), Compression::Gzip).unwrap();
    let src = format!("oci:{}", layout.display());
    let out = format!("oci:{}", t.path().join("o").display());
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                format!("oci:{}", t.path().join("nope").display()),
                "--output".into(),
                out.clone(),
            ],
            "nope",
        ),
        (
            vec![
                src.clone(),
                "--keep-base".into(),
                "3".into(),
                "--output".into(),
                out.clone(),
            ],
            "nothing to squash",
        ),
        (
            vec![
                src.clone(),
                "--keep-base".into(),
                "--output".into(),
                out.clone(),
            ],
            "--keep-base N",
        ),
        (
            vec![src.clone(), "--output".into(), "ftp:x".into()],
            "ftp:x",
        ),
    ];
    for (args, want) in cases {
        let mut all = vec!["squash".to_string()];
        all.extend(args);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        fails_with(&all, want);
    }
    assert!(!t.path().join("o").exists(), "no partial output");
}

/// `docker run IMAGE python3 -c "import flask; print('ok')"`'s output.
#[cfg(feature = "docker-tests")]
fn docker_python(image: &str) -> String {
    let ran = std::process::Command::new("docker")
        .args([
            "run",
            "--rm",
            image,
            "python3",
            "-c",
            "import flask; print('ok')",
        ])
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    String::from_utf8_lossy(&ran.stdout).trim().to_string()
}

/// A pare-example image squashed into the daemon: same tree, config kept, it runs, and the
/// bytes saved match xray's waste. `--keep-base` (auto) keeps the imported base layer.
#[cfg(feature = "docker-tests")]
#[test]
#[ignore = "needs dockerd and the pare-example images (scripts/testbed)"]
fn example_image_squashed_into_the_daemon_runs() {
    let src = "docker-daemon:pare-example/python-web:latest";
    let out = "docker-daemon:squash-test/python-web:sq";
    let o = run(&["squash", src, "--output", out, "--json"], 0);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_same_tree(src, out);
    let (layers, cfg) = shape(out);
    assert_eq!(layers, 1);
    let (n, orig) = shape(src);
    assert!(n > 1);
    for k in ["Cmd", "User", "ExposedPorts", "Env", "WorkingDir"] {
        assert_eq!(cfg["config"][k], orig["config"][k], "{k}");
    }
    let xray = run(&["xray", src, "--format", "json"], 0);
    let x: Value = serde_json::from_slice(&xray.stdout).unwrap();
    assert_eq!(report["wasted_bytes"], x["wasted_bytes"]);
    assert!(report["saved_bytes"].as_u64().unwrap() > 0);
    assert_eq!(docker_python("squash-test/python-web:sq"), "ok");

    let kb = "docker-daemon:squash-test/python-web:kb";
    let o = run(&["squash", src, "--keep-base", "--output", kb, "--json"], 0);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["kept_base_layers"], 1);
    assert_same_tree(src, kb);
    let (layers, cfg) = shape(kb);
    assert_eq!(layers, 2);
    assert_eq!(cfg["rootfs"]["diff_ids"][0], orig["rootfs"]["diff_ids"][0]);
    assert_eq!(docker_python("squash-test/python-web:kb"), "ok");
    for tag in ["squash-test/python-web:sq", "squash-test/python-web:kb"] {
        let _ = std::process::Command::new("docker")
            .args(["rmi", tag])
            .output();
    }
}

/// `docker://` out and in, against the testbed's plain registry (127.0.0.1:5555, or
/// `$PARE_TEST_REGISTRY`): the pushed image is the one written locally (same digest), and
/// squashed back from the registry it shows the original's files.
#[test]
#[ignore = "needs the testbed registry (scripts/testbed registry)"]
fn squash_to_and_from_a_registry() {
    let explicit = std::env::var("PARE_TEST_REGISTRY")
        .ok()
        .filter(|s| !s.is_empty());
    let addr = explicit.clone().unwrap_or_else(|| "127.0.0.1:5555".into());
    let up = std::process::Command::new("curl")
        .args(["-fsS", "--max-time", "2", "-o", "/dev/null"])
        .arg(format!("http://{addr}/v2/"))
        .status()
        .is_ok_and(|s| s.success());
    if !up {
        assert!(
            explicit.is_none(),
            "PARE_TEST_REGISTRY={addr} does not answer"
        );
        eprintln!("skipping: no registry at {addr} (scripts/testbed registry)");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("in");
    fixture::write_oci_layout(&layout, &image(), Compression::Gzip).unwrap();
    let src = format!("oci:{}", layout.display());
    let remote = format!("docker://{addr}/squash-test/sq:{}", std::process::id());
    let o = run(
        &[
            "squash",
            &src,
            "--output",
            &remote,
            "--tls-verify=false",
            "--json",
        ],
        0,
    );
    let pushed: Value = serde_json::from_slice(&o.stdout).unwrap();
    let local = format!("oci:{}:sq", t.path().join("local").display());
    let o = run(&["squash", &src, "--output", &local, "--json"], 0);
    let written: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        pushed["manifest_digest"], written["manifest_digest"],
        "same image pushed"
    );
    let back = format!("oci:{}:back", t.path().join("back").display());
    run(
        &["squash", &remote, "--output", &back, "--tls-verify=false"],
        0,
    );
    assert_same_tree(&src, &back);
}

/// Device nodes and FIFOs survive a squash (as root, which may create device nodes; a FIFO
/// needs no privilege).
#[test]
fn squash_keeps_device_nodes_and_fifos() {
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, major, minor) in [
        ("dev/", tar::EntryType::Directory, 0, 0),
        ("dev/null", tar::EntryType::Char, 1, 3),
        ("run/", tar::EntryType::Directory, 0, 0),
        ("run/ctl", tar::EntryType::Fifo, 0, 0),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o666
        });
        h.set_size(0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        b.append_data(&mut h, path, std::io::empty()).unwrap();
    }
    let devices = b.into_inner().unwrap();
    let files = L::new().dir("etc").file("etc/hostname", b"box\n").finish();
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("in");
    fixture::write_oci_layout(
        &layout,
        &Image::new(vec![files, devices]),
        Compression::Gzip,
    )
    .unwrap();
    let src = format!("oci:{}", layout.display());
    let out = format!("oci:{}:sq", t.path().join("out").display());
    run(&["squash", &src, "--output", &out], 0);
    let squashed = tree(&out);
    assert!(squashed["run/ctl"].starts_with("Fifo "), "{squashed:?}");
    if is_root() {
        assert_same_tree(&src, &out);
        assert!(
            squashed["dev/null"].starts_with("CharDevice "),
            "{squashed:?}"
        );
    }
}
