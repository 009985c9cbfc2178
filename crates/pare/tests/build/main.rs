//! `pare build` end to end on the example images (`scripts/testbed examples`): every example
//! is built, loaded and verified equivalent (HTTP status and body digest; a job's exit code
//! and stdout), plus the promises around it: a non-root USER and a HEALTHCHECK survive,
//! `--include-shell` gives a working `sh`, a wrong `--exclude` fails verification with a hint
//! naming the missing file, `pare why` explains a kept library, the same input gives the same
//! digest (twice; daemon vs docker-archive vs OCI layout), and the daemonless path (OCI layout,
//! embedded runtime) works.
//!
//! Needs dockerd, root and the static sensor (`PARE_SENSOR`, set by scripts/test): behind the
//! `docker-tests` feature. Builds are shared between assertions: one test per example.
#![cfg(feature = "docker-tests")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pare_test_support::names::{RemoveOnDrop, image as test_image};
use serde_json::Value;

#[path = "../common/cli.rs"]
mod cli;
use cli::pare;

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI")
}

/// One `pare build` run: exit code, output and report.json.
struct Built {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    report: Value,
    artifacts: tempfile::TempDir,
    tag: Option<String>,
}

impl Built {
    fn slim_digest(&self) -> &str {
        self.report["slim_config_digest"]
            .as_str()
            .expect("slim_config_digest")
    }
    fn profile_json(&self) -> PathBuf {
        self.artifacts.path().join("profile.json")
    }
    fn probes(&self) -> &Vec<Value> {
        self.report["verification"]["probes"]
            .as_array()
            .expect("verification ran")
    }
    fn kept(&self, path: &str) -> bool {
        self.report["selection"]["entries"].get(path).is_some()
    }
    fn why(&self, path: &str) -> (Option<i32>, String) {
        let out = pare()
            .args(["why", path, "--report"])
            .arg(self.artifacts.path())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }
}

impl Drop for Built {
    fn drop(&mut self) {
        if let Some(t) = &self.tag {
            let _ = docker(&["rmi", "-f", t]);
        }
    }
}

/// `pare build IMAGE --artifacts TMP ARGS...`; with `tag`, loads the slim image under it.
fn build(image: &str, tag: Option<&str>, args: &[&str]) -> Built {
    let artifacts = tempfile::tempdir().unwrap();
    let mut cmd = pare();
    cmd.args(["build", image, "--artifacts"])
        .arg(artifacts.path())
        .args(["--timeout", "120"]);
    if let Some(t) = tag {
        cmd.args(["--tag", t]);
    }
    let out = cmd.args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = std::fs::read(artifacts.path().join("report.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| {
            panic!(
                "pare build {image} {args:?}: no report.json (exit {:?})\n{stdout}\n{stderr}",
                out.status.code()
            )
        });
    Built {
        code: out.status.code(),
        stdout,
        stderr,
        report,
        artifacts,
        tag: tag.map(str::to_string),
    }
}

/// A build that must succeed with every probe verified.
fn build_verified(image: &str, tag: Option<&str>, args: &[&str]) -> Built {
    let b = build(image, tag, args);
    assert_eq!(
        b.code,
        Some(0),
        "pare build {image} {args:?}:\n{}\n{}",
        b.stdout,
        b.stderr
    );
    assert!(b.stdout.contains("verification (passed)"), "{}", b.stdout);
    let probes = b.probes();
    assert!(!probes.is_empty(), "no probe replayed for {image}");
    for p in probes {
        assert_eq!(p["ok"], true, "{image}: {p}");
    }
    // Smaller than the original, and the report's sizes are real numbers.
    let (before, after) = (
        b.report["source"]["size"].as_u64().unwrap(),
        b.report["slim"]["size"].as_u64().unwrap(),
    );
    assert!(after > 0 && after < before, "{image}: {before} → {after}");
    b
}

fn probe_names(b: &Built) -> BTreeSet<String> {
    b.probes()
        .iter()
        .map(|p| p["probe"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn inspect(image: &str, format: &str) -> String {
    let o = docker(&["image", "inspect", "-f", format, image]);
    assert!(
        o.status.success(),
        "docker image inspect {image}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// `docker run --rm IMAGE` (a job): exit code and stdout.
fn run_job(image: &str) -> (Option<i32>, Vec<u8>) {
    let o = docker(&["run", "--rm", "--network", "none", image]);
    (o.status.code(), o.stdout)
}

/// Converts a legacy `docker save` archive into an OCI image layout with the same config
/// blob and uncompressed layers (so the image, and its config digest, are the same).
fn docker_save_to_oci(archive: &Path, layout: &Path) {
    let x = tempfile::tempdir().unwrap();
    let f = std::fs::File::open(archive).unwrap();
    tar::Archive::new(f).unpack(x.path()).unwrap();
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(x.path().join("manifest.json")).unwrap()).unwrap();
    let m = &manifest[0];
    let config_name = m["Config"].as_str().unwrap();
    let config = std::fs::read(x.path().join(config_name)).unwrap();
    let config_value: Value = serde_json::from_slice(&config).unwrap();
    let diff_ids = config_value["rootfs"]["diff_ids"].as_array().unwrap();
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let config_digest = pare_source::sha256_digest(&config);
    std::fs::write(
        blobs.join(config_digest.trim_start_matches("sha256:")),
        &config,
    )
    .unwrap();
    let mut layers = Vec::new();
    for (layer, diff_id) in m["Layers"].as_array().unwrap().iter().zip(diff_ids) {
        let src = x.path().join(layer.as_str().unwrap());
        let digest = diff_id.as_str().unwrap();
        let dst = blobs.join(digest.trim_start_matches("sha256:"));
        let size = std::fs::metadata(&src).unwrap().len();
        if !dst.exists() {
            std::fs::rename(&src, &dst).unwrap();
        }
        layers.push(serde_json::json!({ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": size }));
    }
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len() },
        "layers": layers,
    }))
    .unwrap();
    let manifest_digest = pare_source::sha256_digest(&manifest);
    std::fs::write(
        blobs.join(manifest_digest.trim_start_matches("sha256:")),
        &manifest,
    )
    .unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{ "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest.len(),
                        "annotations": { "org.opencontainers.image.ref.name": "latest" } }],
    });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
}

/// Sends SIGINT (what Ctrl-C sends) and returns the exit code.
fn ctrl_c(mut child: std::process::Child) -> Option<i32> {
    assert!(
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    child.wait().unwrap().code()
}

// ---- issue 8: four classes of real-world workload, each built and verified three times in a
// row (a build that only passes sometimes is a failing build).

/// Runs `pare build` on `image` three times; each must verify first time. `check` looks at
/// each build; returns the wall time of each run.
fn three_verified_builds(image: &str, tag: &str, check: impl Fn(&Built)) -> Vec<Duration> {
    (1..=3)
        .map(|_| {
            let t = Instant::now();
            let b = build_verified(image, Some(tag), &[]);
            let took = t.elapsed();
            check(&b);
            took
        })
        .collect()
}

/// The recorded probes of a build's profile.json.
fn profile_probes(b: &Built) -> Vec<Value> {
    let p: Value = serde_json::from_slice(&std::fs::read(b.profile_json()).unwrap()).unwrap();
    p["probes"].as_array().cloned().unwrap_or_default()
}

/// The fields of the recorded `protocol` probe on `port`, asserting there is one.
fn protocol_fields(b: &Built, port: u16, protocol: &str) -> Value {
    let probes = profile_probes(b);
    let p = probes
        .iter()
        .find(|p| p["spec"]["kind"] == "protocol" && p["spec"]["port"] == port)
        .unwrap_or_else(|| panic!("no protocol probe on :{port}: {probes:#?}"));
    assert_eq!(p["spec"]["protocol"], protocol, "{p}");
    p["outcome"]["fields"].clone()
}

mod examples;
mod interrupts;
mod reports;
mod transports;
mod workloads;
