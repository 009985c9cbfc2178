//! An Alpine-like image (musl libc, busybox, no glibc: `examples/musl-busybox`) profiled and
//! built with both runtimes, using only the sensor embedded in `pare` (no `PARE_SENSOR`, a fresh
//! cache dir), as a user who ran `cargo install --path crates/pare` would. A dynamically linked
//! sensor cannot start in this image (`exec /.pare/sensor: no such file or directory`), and
//! pare refuses one before it tries.
//!
//! Needs dockerd, root and `pare-example/musl-busybox` (`scripts/testbed examples`): behind the
//! `docker-tests` feature.
#![cfg(feature = "docker-tests")]

use std::process::{Command, Output};

use serde_json::Value;

const IMAGE: &str = "pare-example/musl-busybox";

/// `pare` as installed: the embedded sensor only, written to `cache`.
#[path = "common/cli.rs"]
mod cli;

/// pare with its embedded sensor only (no `PARE_SENSOR`), cached under `cache`.
fn pare(cache: &std::path::Path) -> Command {
    let mut c = cli::pare();
    c.env_remove("PARE_SENSOR").env("XDG_CACHE_HOME", cache);
    c
}

fn ok(o: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{what}:\n{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().unwrap()
}

fn profile(runtime: &str) {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = pare(cache.path())
        .args([
            "profile",
            IMAGE,
            "--runtime",
            runtime,
            "--timeout",
            "120",
            "--output",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    ok(&o, &format!("pare profile {IMAGE} --runtime {runtime}"));
    let p = pare_profile::read_profile(&out.path().join("profile.json")).unwrap();
    assert_eq!(p.runtime, runtime);
    let execs: Vec<&str> = p.sensor.execs.iter().map(|e| e.path.as_str()).collect();
    assert!(
        execs.contains(&"/bin/busybox") || execs.contains(&"/bin/sh"),
        "{execs:?}"
    );
    assert!(execs.contains(&"/usr/bin/hello-server"), "{execs:?}");
    assert_eq!(p.sensor.uid, 65534);
    // The musl loader was used, and no glibc file exists to be touched.
    assert!(
        p.sensor
            .files
            .get("/lib/ld-musl-x86_64.so.1")
            .is_some_and(|f| f.found),
        "{:?}",
        p.sensor.files.keys().collect::<Vec<_>>()
    );
    assert!(
        !p.sensor
            .files
            .iter()
            .any(|(k, f)| f.found && k.contains("ld-linux")),
        "a glibc loader in a musl image?"
    );
    assert!(
        p.probes.iter().any(|r| r.outcome.http_status == Some(200)),
        "{:?}",
        p.probes
    );
    // The sensor came from pare itself.
    assert!(
        std::fs::read_dir(cache.path().join("pare"))
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("sensor-")),
        "the embedded sensor was not written to the cache"
    );
}

#[test]
fn profile_with_docker_runtime_and_the_embedded_sensor() {
    profile("docker");
}

#[test]
fn profile_with_embedded_runtime_and_the_embedded_sensor() {
    profile("embedded");
}

fn check_built(report: &Value, stdout: &str) {
    assert!(stdout.contains("verification (passed)"), "{stdout}");
    let probes = report["verification"]["probes"].as_array().unwrap();
    assert!(!probes.is_empty());
    assert!(probes.iter().all(|p| p["ok"] == true), "{probes:?}");
    let kept = |p: &str| report["selection"]["entries"].get(p).is_some();
    for p in [
        "/lib/ld-musl-x86_64.so.1",
        "/bin/busybox",
        "/usr/bin/hello-server",
        "/entrypoint.sh",
        "/srv/www/index.html",
    ] {
        assert!(kept(p), "{p} was not kept");
    }
    // The build leftovers the app never touched are gone.
    assert!(!kept("/usr/lib/libc.a"));
    assert!(!kept("/usr/include/stdio.h"));
    let (before, after) = (
        report["source"]["size"].as_u64().unwrap(),
        report["slim"]["size"].as_u64().unwrap(),
    );
    assert!(after < before, "{before} → {after}");
}

/// `pare build IMAGE-OR-REF ARGS... --artifacts DIR` with the embedded sensor; must pass and
/// verify. Returns the report.
fn build(reference: &str, args: &[&str], artifacts: &std::path::Path) -> Value {
    let cache = tempfile::tempdir().unwrap();
    let o = pare(cache.path())
        .args(["build", reference, "--timeout", "120"])
        .args(args)
        .arg("--artifacts")
        .arg(artifacts)
        .output()
        .unwrap();
    let stdout = ok(&o, &format!("pare build {reference} {args:?}"));
    let report: Value =
        serde_json::from_slice(&std::fs::read(artifacts.join("report.json")).unwrap()).unwrap();
    check_built(&report, &stdout);
    report
}

#[test]
fn build_with_docker_runtime_verifies() {
    let artifacts = tempfile::tempdir().unwrap();
    let tag = &pare_test_support::names::image("musl-busybox.slim:install");
    build(
        IMAGE,
        &["--runtime", "docker", "--tag", tag],
        artifacts.path(),
    );
    // The slim image runs under the docker CLI, its busybox shell intact.
    let run = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        tag,
        "-c",
        "echo $((6*7))",
    ]);
    let _ = docker(&["rmi", "-f", tag]);
    assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), "42");
}

#[test]
fn build_daemonless_with_embedded_runtime_verifies() {
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("musl-busybox.tar");
    let save = docker(&["save", "-o", archive.to_str().unwrap(), IMAGE]);
    assert!(save.status.success(), "{save:?}");
    let layout = work.path().join("slim");
    build(
        &format!("docker-archive:{}", archive.display()),
        &[
            "--runtime",
            "embedded",
            "--output",
            &format!("oci:{}:slim", layout.display()),
        ],
        &work.path().join("artifacts"),
    );
    assert!(layout.join("index.json").is_file());
}
