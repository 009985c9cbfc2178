//! `pare diff` end to end: OCI layouts and docker archives written by the fixture helpers, and
//! (docker-tests) a pare-example image against its slim build.

use assert_cmd::Command;
use pare_source::Compression;
use pare_test_support::fixture::{self, DockerArchiveFormat, Image};
use pare_test_support::layer::LayerBuilder as L;
use serde_json::Value;

use crate::cli::{pare_cmd as pare, run};

fn base() -> Vec<u8> {
    L::new()
        .dir("bin")
        .file("bin/sh", b"ELF sh")
        .dir("etc")
        .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
        .finish()
}

struct Pair {
    _t: tempfile::TempDir,
    a: String,
    b: String,
    a2: String,
}

/// A and B share the base layer; B changes the app layer.
fn images() -> (Image, Image) {
    let a = Image::new(vec![
        base(),
        L::new()
            .dir("app")
            .file("app/run", b"v1")
            .file("app/old", b"x")
            .finish(),
    ]);
    let b = Image::new(vec![
        base(),
        L::new()
            .dir("app")
            .file("app/run", b"v2")
            .file("app/new", b"yy")
            .finish(),
    ]);
    (a, b)
}

/// A (OCI layout, gzip) and B (docker archive).
fn pair() -> Pair {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = images();
    let la = t.path().join("a");
    fixture::write_oci_layout(&la, &a, Compression::Gzip).unwrap();
    let tb = t.path().join("b.tar");
    fixture::write_docker_archive(&tb, &b, DockerArchiveFormat::Oci).unwrap();
    let ta = t.path().join("a.tar");
    fixture::write_docker_archive(&ta, &a, DockerArchiveFormat::Legacy).unwrap();
    Pair {
        a: format!("oci:{}", la.display()),
        b: format!("docker-archive:{}", tb.display()),
        a2: format!("docker-archive:{}", ta.display()),
        _t: t,
    }
}

#[test]
fn exit_codes_follow_diff() {
    let p = pair();
    // The same image through two transports: no difference.
    let out = run(&["diff", &p.a, &p.a2], 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("No differences."));

    let out = run(&["diff", &p.a, &p.b], 1);
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("- /app/old"), "{s}");
    assert!(s.contains("+ /app/new"), "{s}");
    assert!(s.contains("~ /app/run  digest"), "{s}");
    assert!(
        s.contains("Layers: 1 shared, 1 only in A, 1 only in B"),
        "{s}"
    );

    let missing = "oci:/nonexistent/see-layout";
    let out = run(&["diff", &p.a, missing], 2);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains(missing), "the failing reference is named: {e}");
}

#[test]
fn json_schema_and_filters() {
    let p = pair();
    let out = run(&["diff", &p.a, &p.b, "--format", "json"], 1);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["same"], false);
    assert_eq!(v["files"]["added"], 1);
    assert_eq!(v["files"]["removed"], 1);
    assert_eq!(v["files"]["changed"], 1);
    assert_eq!(v["layers"]["shared"], 1);
    let entries = v["files"]["entries"].as_array().unwrap();
    let app_run = entries.iter().find(|e| e["path"] == "/app/run").unwrap();
    assert_eq!(app_run["fields"], serde_json::json!(["digest"]));
    assert!(
        app_run["a"]["digest"]
            .as_str()
            .unwrap()
            .starts_with("xxh3:")
    );
    assert_ne!(app_run["a"]["digest"], app_run["b"]["digest"]);

    let args = [
        "diff", &p.a, &p.b, "--format", "json", "--only", "files", "--path", "/app/n*",
    ];
    let v: Value = serde_json::from_slice(&run(&args, 1).stdout).unwrap();
    assert_eq!(v["files"]["entries"].as_array().unwrap().len(), 1);
    assert!(v.get("layers").is_none() && v.get("config").is_none());

    // Only the config: identical configs → exit 0 even though the files differ.
    run(&["diff", &p.a, &p.b, "--only", "config"], 0);
}

#[test]
fn html_reports_from_the_cli() {
    let p = pair();
    let t = tempfile::tempdir().unwrap();
    let page = t.path().join("d.html");
    let html_arg = page.display().to_string();
    run(&["diff", &p.a, &p.b, "--html", &html_arg], 1);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("/app/new"));
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "nothing external"
    );
    let out = run(&["diff", &p.a, &p.b, "--format", "html"], 1);
    assert!(String::from_utf8_lossy(&out.stdout).contains("id=\"treemap-changes\""));

    let page = t.path().join("x.html");
    let html_arg = page.display().to_string();
    run(&["xray", &p.b, "--html", &html_arg], 0);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("id=\"treemap-image\""));
    assert!(
        html.contains(r#""n":"app""#),
        "the tree is in the page's data"
    );
    let bad = t.path().join("no/such/dir/x.html").display().to_string();
    let out = run(&["xray", &p.b, "--html", &bad], 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/dir/x.html"));
}

/// A pare-example image against its slim build: the slim image drops packages' files and the
/// shell, keeps the entrypoint. Builds the slim image first when it is missing.
#[cfg(feature = "docker-tests")]
#[test]
#[ignore = "needs dockerd and the pare-example images (scripts/testbed)"]
fn example_image_vs_its_slim_build() {
    let slim = "see-diff-test/python-web.slim:latest";
    let have = std::process::Command::new("docker")
        .args(["image", "inspect", slim])
        .output()
        .unwrap()
        .status
        .success();
    if !have {
        let t = tempfile::tempdir().unwrap();
        let artifacts = t.path().display().to_string();
        let args = [
            "build",
            "pare-example/python-web",
            "--tag",
            slim,
            "--artifacts",
            &artifacts,
        ];
        run(&args, 0);
    }
    let out = run(
        &["diff", "pare-example/python-web", slim, "--format", "json"],
        1,
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = &v["files"];
    assert!(f["removed"].as_u64().unwrap() > 1000, "{f}");
    assert!(f["removed_bytes"].as_u64().unwrap() > 50_000_000);
    let lost: Vec<&str> = v["surface"]["lost"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x["category"].as_str())
        .collect();
    assert!(lost.contains(&"shell"), "{lost:?}");
    assert!(
        v["config"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["key"] != "Entrypoint"),
        "entrypoint kept"
    );
    assert!(
        v["layers"]["b_only"].as_array().unwrap().len() == 1,
        "the slim image has one layer"
    );
}

/// `pare diff` takes the registry flags every image-reading command shares: it authenticates
/// with `--creds` alone (no auth file, no Docker config) and caches blobs in `--cache-dir`.
#[test]
#[ignore = "needs the testbed registries (scripts/testbed registry)"]
fn registry_flags_reach_both_images() {
    let tls = std::env::var("PARE_TEST_REGISTRY_TLS").unwrap_or_else(|_| "127.0.0.1:5556".into());
    let creds =
        std::env::var("PARE_TEST_REGISTRY_CREDS").unwrap_or_else(|_| "pare:pare-test-pass".into());
    let up = std::process::Command::new("curl")
        .args(["-ksS", "--max-time", "2", "-o", "/dev/null"])
        .arg(format!("https://{tls}/v2/"))
        .status()
        .is_ok_and(|s| s.success());
    if !up {
        eprintln!("skipping: no registry at {tls} (run `scripts/testbed registry`)");
        return;
    }
    // Push A and B (the OCI layouts of `pair`) with the same credentials, in-process.
    let t = tempfile::tempdir().unwrap();
    pare_source::registry::set_registry_options(pare_source::registry::RegistryOptions {
        creds: Some(creds.clone()),
        cache_dir: Some(t.path().join("push-cache")),
        ..Default::default()
    });
    let (a, b) = images();
    let tag = std::process::id();
    let mut refs = Vec::new();
    for (name, img) in [("a", a), ("b", b)] {
        let layout = t.path().join(name);
        fixture::write_oci_layout(&layout, &img, Compression::Gzip).unwrap();
        let dest = format!("{tls}/pare-test/speed-diff-{name}:{tag}");
        pare_source::registry::push_layout(
            &layout,
            None,
            &dest,
            &pare_source::registry::PushOptions::default(),
        )
        .unwrap();
        refs.push(format!("docker://{dest}"));
    }
    let cache = t.path().join("cache");
    let isolated = |c: &mut Command| {
        c.env("DOCKER_CONFIG", t.path())
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("PARE_REGISTRY_CREDS")
            .env_remove("XDG_RUNTIME_DIR");
    };
    let mut c = pare();
    isolated(&mut c);
    let out = c
        .args(["diff", &refs[0], &refs[1], "--creds", &creds, "--cache-dir"])
        .arg(&cache)
        .args(["--registry-timeout", "30", "--platform", "linux/amd64"])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{s}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(s.contains("+ /app/new") && s.contains("- /app/old"), "{s}");
    let cached = std::fs::read_dir(cache.join("sha256")).unwrap().count();
    assert!(
        cached >= 4,
        "both configs and app layers in --cache-dir: {cached}"
    );
    // Without --creds the same command is refused by the registry, in one line.
    let mut c = pare();
    isolated(&mut c);
    let out = c
        .args(["diff", &refs[0], &refs[1], "--cache-dir"])
        .arg(&cache)
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(
        e.contains("401") && e.trim_end().lines().count() == 1,
        "{e}"
    );
}
