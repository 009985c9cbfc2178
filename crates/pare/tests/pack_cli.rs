//! `pare pack` end to end: a host binary packed into OCI layouts (no daemon), bad input, and
//! (docker-tests) a C server built with gcc, packed, run by docker and asked over HTTP, and a
//! binary packed with its libraries from an image.

use std::collections::BTreeMap;

use pare_layerfs::{Kind, ReadOptions};
use pare_source::{Compression, ImageRef, OpenOptions};
use pare_test_support::fixture::{self, Image};
use serde_json::Value;

#[path = "common/cli.rs"]
mod cli;
use cli::{fails_with, run};

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Path → (kind, mode) of an image's merged tree, and its config.
fn contents(reference: &str) -> (BTreeMap<String, (Kind, u32)>, Value) {
    let r = ImageRef::parse(reference).unwrap();
    let src = pare_source::open(&r, &OpenOptions::default()).unwrap();
    let fs = pare_layerfs::read_image(src.as_ref(), &ReadOptions::default()).unwrap();
    let cfg = serde_json::from_slice(src.raw_config().unwrap()).unwrap();
    let tree = fs
        .iter()
        .map(|(p, n)| (format!("/{p}"), (n.kind, n.mode)))
        .collect();
    (tree, cfg)
}

/// A dynamically linked ELF binary of the host (pare tests run on glibc Linux).
const HOST_BIN: &str = "/bin/ls";

#[test]
fn a_host_binary_packs_reproducibly_with_its_closure_and_a_non_root_user() {
    let t = tempfile::tempdir().unwrap();
    let a = format!("oci:{}:1", t.path().join("a").display());
    let b = format!("oci:{}:1", t.path().join("b").display());
    let args = |out: &str| {
        vec![
            "pack".to_string(),
            HOST_BIN.into(),
            "--output".into(),
            out.into(),
            "--port".into(),
            "8080".into(),
            "--env".into(),
            "MODE=prod".into(),
            "--json".into(),
        ]
    };
    let ra = json(&run(
        &args(&a).iter().map(String::as_str).collect::<Vec<_>>(),
        0,
    ));
    let rb = json(&run(
        &args(&b).iter().map(String::as_str).collect::<Vec<_>>(),
        0,
    ));
    assert_eq!(
        ra["manifest_digest"], rb["manifest_digest"],
        "same input, same digest"
    );
    let (tree, cfg) = contents(&a);
    assert_eq!(tree["/usr/local/bin/ls"], (Kind::File, 0o755));
    assert_eq!(tree["/tmp"], (Kind::Dir, 0o1777));
    assert!(tree.keys().any(|p| p.contains("/libc.so.6")), "{tree:?}");
    assert!(tree.keys().any(|p| p.contains("ld-linux")), "the loader");
    assert!(
        tree.keys().any(|p| p.contains("libnss_files")),
        "NSS for glibc"
    );
    assert!(tree.contains_key("/etc/nsswitch.conf"));
    for host_only in [
        "/etc/hosts",
        "/etc/resolv.conf",
        "/etc/shadow",
        "/bin/sh",
        "/usr/bin/ls",
    ] {
        assert!(
            !tree.contains_key(host_only),
            "{host_only} must not be packed"
        );
    }
    let c = &cfg["config"];
    assert_eq!(c["User"], "65532:65532");
    assert_eq!(c["Entrypoint"][0], "/usr/local/bin/ls");
    assert!(c["ExposedPorts"]["8080/tcp"].is_object());
    assert!(
        c["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "MODE=prod")
    );
    assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
    assert_eq!(cfg["history"][0]["created_by"], "pare pack ls");
    // The generated accounts.
    let dir = t.path().join("x");
    std::fs::create_dir(&dir).unwrap();
    let src = pare_source::open(&ImageRef::parse(&a).unwrap(), &OpenOptions::default()).unwrap();
    pare_layerfs::extract(src.as_ref(), &dir).unwrap();
    let passwd = std::fs::read_to_string(dir.join("etc/passwd")).unwrap();
    assert!(passwd.contains("nonroot:x:65532:65532:"), "{passwd}");
    assert!(
        std::fs::read_to_string(dir.join("etc/group"))
            .unwrap()
            .contains("nonroot:x:65532:")
    );
    // A different user changes the image.
    let c2 = format!("oci:{}:1", t.path().join("c").display());
    let rc = json(&run(
        &[
            "pack",
            HOST_BIN,
            "--output",
            &c2,
            "--user",
            "1000:1000",
            "--json",
        ],
        0,
    ));
    assert_ne!(rc["manifest_digest"], ra["manifest_digest"]);
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let t = tempfile::tempdir().unwrap();
    let script = t.path().join("run.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    // An image without libc: the binary's libraries are not found there.
    let bare = t.path().join("bare");
    let img = Image::new(vec![fixture::tar(&[
        ("etc/", b""),
        ("etc/os-release", b"ID=test\n"),
    ])]);
    fixture::write_oci_layout(&bare, &img, Compression::Gzip).unwrap();
    let out = format!("oci:{}", t.path().join("out").display());
    let bare_ref = format!("oci:{}", bare.display());
    let missing = t.path().join("missing").display().to_string();
    let script = script.display().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![&script], "not an ELF"),
        (vec![&missing], "missing"),
        (vec![HOST_BIN, "--from", &bare_ref], "not found"),
        (vec![HOST_BIN, "--port", "http"], "--port"),
        (vec![HOST_BIN, "--user", "app"], "--user"),
        (vec![HOST_BIN, "--tz", "Nowhere/City"], "Nowhere/City"),
        (
            vec![HOST_BIN, "--include", "/no/such/file"],
            "/no/such/file",
        ),
        (vec![HOST_BIN, "--env", "NOEQUALS"], "--env"),
    ];
    for (args, want) in cases {
        let mut all = vec!["pack"];
        all.extend(args);
        all.extend(["--output", &out]);
        let first = fails_with(&all, want);
        if want == "not found" {
            assert!(first.contains("library lib"), "names the library: {first}");
        }
    }
    assert!(!t.path().join("out").exists(), "no partial output");
}

/// Builds tests/fixtures/pack-server.c with gcc into `dir`.
#[cfg(feature = "docker-tests")]
fn build_server(dir: &std::path::Path) -> std::path::PathBuf {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pack-server.c");
    let bin = dir.join("server");
    let st = std::process::Command::new("gcc")
        .args(["-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .expect("gcc (apt-get install gcc)");
    assert!(st.success());
    bin
}

#[cfg(feature = "docker-tests")]
fn docker(args: &[&str]) -> std::process::Output {
    std::process::Command::new("docker")
        .args(args)
        .output()
        .unwrap()
}

/// A C server packed into the daemon answers over HTTP as `nonroot` — checked by
/// `--http-probe` (docker runtime, and the embedded runtime for an OCI layout) and by a
/// plain `docker run` + HTTP request.
#[cfg(feature = "docker-tests")]
#[test]
#[ignore = "needs dockerd and gcc"]
fn a_packed_c_server_answers_under_docker() {
    use std::io::{Read, Write};
    let t = tempfile::tempdir().unwrap();
    let bin = build_server(t.path());
    let bin = bin.to_str().unwrap();
    let tag = "squash-test/pack-server:1";
    let out = format!("docker-daemon:{tag}");
    let r = json(&run(
        &[
            "pack",
            bin,
            "--output",
            &out,
            "--port",
            "8080",
            "--http-probe",
            "8080/",
            "--json",
        ],
        0,
    ));
    let oci = format!("oci:{}:1", t.path().join("layout").display());
    let r2 = json(&run(
        &[
            "pack",
            bin,
            "--output",
            &oci,
            "--port",
            "8080",
            "--http-probe",
            "8080/x",
            "--json",
        ],
        0,
    ));
    assert_eq!(
        r["manifest_digest"], r2["manifest_digest"],
        "same image either way"
    );

    let name = format!("squash-test-pack-{}", std::process::id());
    let started = docker(&["run", "-d", "--name", &name, tag]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let ip = docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        &name,
    ]);
    let ip = String::from_utf8_lossy(&ip.stdout).trim().to_string();
    let mut answer = String::new();
    for _ in 0..50 {
        if let Ok(mut s) = std::net::TcpStream::connect((ip.as_str(), 8080)) {
            s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
            s.read_to_string(&mut answer).unwrap();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = docker(&["rm", "-f", &name]);
    let _ = docker(&["rmi", tag]);
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer:?}");
    assert!(
        answer.ends_with("hello from nonroot\n"),
        "NSS found the user: {answer:?}"
    );
}

/// The libraries come from an image (`--from`); the packed ls runs under docker.
#[cfg(feature = "docker-tests")]
#[test]
#[ignore = "needs dockerd and local/debian:bookworm (scripts/testbed)"]
fn a_binary_packed_from_an_image_runs() {
    let tag = "squash-test/pack-ls:1";
    let out = format!("docker-daemon:{tag}");
    let r = json(&run(
        &[
            "pack",
            HOST_BIN,
            "--from",
            "docker-daemon:local/debian:bookworm",
            "--output",
            &out,
            "--tz",
            "Europe/Paris",
            "--verify-cmd",
            "/usr/local/bin/ls /etc",
            "--json",
        ],
        0,
    ));
    assert_eq!(r["root"], "docker-daemon:local/debian:bookworm");
    let ran = docker(&["run", "--rm", tag, "-l", "/etc/localtime", "/tmp"]);
    let _ = docker(&["rmi", tag]);
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let text = String::from_utf8_lossy(&ran.stdout);
    assert!(text.contains("/usr/share/zoneinfo/Europe/Paris"), "{text}");
}
