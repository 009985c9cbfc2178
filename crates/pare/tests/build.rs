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

use serde_json::Value;

fn pare() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("pare"))
}

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

#[test]
fn python_web_lazy_import_why_and_a_broken_exclude() {
    let tag = "pare-test/python-web.slim:build";
    let b = build_verified("pare-example/python-web", Some(tag), &[]);
    let probes = probe_names(&b);
    assert!(
        probes.iter().any(|p| p.ends_with("/second")),
        "the crawl reaches /second: {probes:?}"
    );
    // /second imports report.py lazily: only the crawl made the trace see it.
    assert!(b.kept("/app/report.py"));
    assert_eq!(
        inspect(tag, "{{.Config.User}}"),
        inspect("pare-example/python-web", "{{.Config.User}}")
    );
    assert!(
        b.report["slim"]["size"].as_u64().unwrap() < 40_000_000,
        "{}",
        b.report["slim"]["size"]
    );
    // Shells and package managers are gone.
    let removed: Vec<String> = b.report["surface_removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap().to_string())
        .collect();
    assert!(
        removed.iter().any(|p| p.ends_with("/apt-get")),
        "{removed:?}"
    );

    // pare why: a kept shared library, explained back to a traced binary.
    let lib = b.report["selection"]["entries"]
        .as_object()
        .unwrap()
        .keys()
        .find(|p| p.contains("/libexpat.so.") || p.contains("/libz.so."))
        .cloned()
        .expect("libexpat or libz kept");
    let (code, text) = b.why(&lib);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("is kept") && text.contains("/usr/bin/python3"),
        "pare why {lib}:\n{text}"
    );
    let (code, text) = b.why("/usr/bin/apt-get");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("not in the slim image"), "{text}");

    // A wrong --exclude (the lazily imported module): verification fails, exit 1, the image is
    // kept, and the hint names the missing file and the flag that removed it.
    let broken_tag = "pare-test/python-web.broken:build";
    let bad = build(
        "pare-example/python-web",
        Some(broken_tag),
        &[
            "--from-profile",
            b.profile_json().to_str().unwrap(),
            "--exclude",
            "/app/report.py",
        ],
    );
    assert_eq!(bad.code, Some(1), "{}\n{}", bad.stdout, bad.stderr);
    assert!(
        bad.stdout.contains("verification (FAILED)"),
        "{}",
        bad.stdout
    );
    assert!(
        bad.stdout.contains("FAIL") && bad.stdout.contains("/second"),
        "{}",
        bad.stdout
    );
    let hint = bad
        .stdout
        .split("hint:")
        .nth(1)
        .unwrap_or_else(|| panic!("no hint:\n{}", bad.stdout));
    assert!(
        hint.contains("/app/report.py") && hint.contains("--exclude /app/report.py"),
        "{}",
        bad.stdout
    );
    assert!(
        bad.report["verification"]["likely_missing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "/app/report.py")
    );
    // The failed image is kept for inspection.
    assert!(docker(&["image", "inspect", broken_tag]).status.success());
}

#[test]
fn go_server_non_root_healthcheck_and_include_shell() {
    let tag = "pare-test/go-server.slim:build";
    let b = build_verified("pare-example/go-server", Some(tag), &[]);
    assert_eq!(inspect(tag, "{{.Config.User}}"), "10001");
    let hc = inspect(tag, "{{json .Config.Healthcheck}}");
    assert!(hc.contains("-healthcheck"), "Healthcheck kept: {hc}");
    assert_eq!(
        hc,
        inspect("pare-example/go-server", "{{json .Config.Healthcheck}}")
    );
    assert_eq!(
        inspect(tag, "{{json .Config.ExposedPorts}}"),
        inspect("pare-example/go-server", "{{json .Config.ExposedPorts}}")
    );
    // The HEALTHCHECK command passes against the running slim server (as the non-root user).
    let id = String::from_utf8_lossy(&docker(&["run", "-d", "--network", "none", tag]).stdout)
        .trim()
        .to_string();
    let healthy = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(200));
        docker(&["exec", &id, "/app", "-healthcheck"])
            .status
            .success()
    });
    let _ = docker(&["rm", "-f", &id]);
    assert!(healthy, "/app -healthcheck in the slim container");
    // No shell by default ...
    let o = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        tag,
        "-c",
        "echo ok",
    ]);
    assert!(
        !o.status.success(),
        "the slim image has no shell by default"
    );
    // ... and a working one with --include-shell (same recorded profile, no new trace).
    let shell_tag = "pare-test/go-server.shell:build";
    let s = build_verified(
        "pare-example/go-server",
        Some(shell_tag),
        &[
            "--include-shell",
            "--from-profile",
            b.profile_json().to_str().unwrap(),
        ],
    );
    let o = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        shell_tag,
        "-c",
        "echo ok",
    ]);
    assert!(
        o.status.success(),
        "sh in the --include-shell image: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "ok");
    assert!(s.report["slim"]["size"].as_u64() > b.report["slim"]["size"].as_u64());
}

#[test]
fn shell_script_entrypoint() {
    let tag = "pare-test/shell-entrypoint.slim:build";
    let b = build_verified("pare-example/shell-entrypoint", Some(tag), &[]);
    assert!(b.kept("/entrypoint.sh"));
    // /status.txt holds the start time to the nanosecond: it differs between any two
    // containers. `pare build` skips the profile's stability run, so verification must
    // find that out itself (a re-run of the original) and pass the probe with its body
    // marked volatile, instead of failing.
    let status = b
        .probes()
        .iter()
        .find(|p| {
            p["probe"]
                .as_str()
                .unwrap_or_default()
                .ends_with("/status.txt")
        })
        .cloned()
        .expect("the crawl reaches /status.txt from the index page");
    assert_eq!(status["ok"], true, "{status}");
    assert_eq!(status["volatile"], serde_json::json!(["body"]), "{status}");
    assert_eq!(
        inspect(tag, "{{json .Config.Entrypoint}}"),
        inspect(
            "pare-example/shell-entrypoint",
            "{{json .Config.Entrypoint}}"
        )
    );
}

#[test]
fn cli_job_reproducible_across_builds_and_transports() {
    let image = "pare-example/cli-job";
    let tag = "pare-test/cli-job.slim:build";
    let first = build_verified(image, Some(tag), &[]);
    // The job's stdout and exit code, checked outside pare too.
    assert_eq!(run_job(tag), run_job(image));
    // Building again (a new trace) gives the same image.
    let again = build_verified(image, Some("pare-test/cli-job.slim:again"), &[]);
    assert_eq!(
        first.slim_digest(),
        again.slim_digest(),
        "two builds of the same image"
    );
    assert_eq!(
        inspect(tag, "{{.Id}}"),
        first.slim_digest(),
        "the loaded image has the reported ID"
    );
    // Dated like the source (not 1970) by default, yet reproducible; an explicit epoch is
    // used as given and changes the digest.
    assert_eq!(
        first.report["epoch_from"],
        "the source image's creation time"
    );
    assert_ne!(first.report["epoch"], 0);
    let dated = build(
        image,
        None,
        &[
            "--from-profile",
            first.profile_json().to_str().unwrap(),
            "--epoch",
            "0",
            "--no-verify",
            "--output",
            &format!("oci:{}/epoch0", first.artifacts.path().display()),
        ],
    );
    assert_eq!(dated.code, Some(0), "{}", dated.stderr);
    assert_eq!(dated.report["created"], "1970-01-01T00:00:00Z");
    assert_ne!(dated.slim_digest(), first.slim_digest());

    // The same image as a docker-archive and as an OCI layout, daemonless (embedded runtime),
    // with the same recorded profile: the same digest.
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("cli-job.tar");
    let o = docker(&["save", "-o", archive.to_str().unwrap(), image]);
    assert!(
        o.status.success(),
        "docker save: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let profile = first.profile_json();
    let out1 = work.path().join("out-archive");
    let a = build_verified(
        &format!("docker-archive:{}", archive.display()),
        None,
        &[
            "--runtime",
            "embedded",
            "--from-profile",
            profile.to_str().unwrap(),
            "--output",
            &format!("oci:{}:slim", out1.display()),
        ],
    );
    assert_eq!(a.report["runtime"], "embedded");
    assert_eq!(
        a.slim_digest(),
        first.slim_digest(),
        "docker-daemon: and docker-archive: of the same image"
    );
    let layout = work.path().join("layout");
    docker_save_to_oci(&archive, &layout);
    let out2 = work.path().join("out-oci");
    let o = build_verified(
        &format!("oci:{}:latest", layout.display()),
        None,
        &[
            "--runtime",
            "embedded",
            "--from-profile",
            profile.to_str().unwrap(),
            "--output",
            &format!("oci:{}:slim", out2.display()),
        ],
    );
    assert_eq!(
        o.slim_digest(),
        first.slim_digest(),
        "docker-daemon: and oci: of the same image"
    );
    // Into the daemon the layer went as a plain tar and its gzip form was only measured; the
    // OCI layout holds the real gzip layer. Both reports name the same manifest and layer.
    assert_eq!(
        o.report["slim_manifest_digest"],
        first.report["slim_manifest_digest"]
    );
    assert_eq!(
        o.report["slim"]["compressed_size"],
        first.report["slim"]["compressed_size"]
    );
    // The written OCI layout holds that config blob.
    let blob = out2
        .join("blobs/sha256")
        .join(first.slim_digest().trim_start_matches("sha256:"));
    assert!(blob.is_file(), "{}", blob.display());

    // --output docker-archive: from a daemon image: nothing is loaded, the archive is verified
    // from its own files, and `docker load` gives the same image ID.
    let out_archive = work.path().join("slim.tar");
    let w = build_verified(
        image,
        None,
        &[
            "--from-profile",
            profile.to_str().unwrap(),
            "--output",
            &format!(
                "docker-archive:{}:pare-test/cli-job.slim:archive",
                out_archive.display()
            ),
        ],
    );
    assert_eq!(w.slim_digest(), first.slim_digest());
    assert!(
        !docker(&["image", "inspect", "pare-test/cli-job.slim:archive"])
            .status
            .success(),
        "--output must not load"
    );
    let o = docker(&["load", "-i", out_archive.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "docker load: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        inspect("pare-test/cli-job.slim:archive", "{{.Id}}"),
        first.slim_digest()
    );
    let _ = docker(&["rmi", "-f", "pare-test/cli-job.slim:archive"]);

    // A full daemonless build (trace with the embedded runtime) of the OCI layout is verified,
    // and the job's output matches.
    let out3 = work.path().join("out-embedded");
    let e = build_verified(
        &format!("oci:{}:latest", layout.display()),
        None,
        &["--output", &format!("oci:{}:slim", out3.display())],
    );
    assert_eq!(e.report["runtime"], "embedded");
    let keep = |b: &Built| -> BTreeSet<String> {
        b.report["selection"]["entries"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let (kd, ke) = (keep(&first), keep(&e));
    let only_docker: Vec<_> = kd.difference(&ke).collect();
    let only_embedded: Vec<_> = ke.difference(&kd).collect();
    // Both runtimes trace the same files for this job (same kernel, same sensor): the same
    // selection, so the same image.
    assert!(
        only_docker.is_empty() && only_embedded.is_empty(),
        "kept only with docker: {only_docker:?}; only embedded: {only_embedded:?}"
    );
    assert!(kd.contains("/usr/bin/jq"));
    assert_eq!(
        e.slim_digest(),
        first.slim_digest(),
        "a full daemonless build (embedded trace) of the same image"
    );
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

#[test]
fn numpy_batch_job() {
    let image = "pare-example/numpy-job";
    let tag = "pare-test/numpy-job.slim:build";
    let b = build_verified(image, Some(tag), &[]);
    assert!(
        probe_names(&b).iter().any(|p| p.starts_with("job")),
        "{:?}",
        probe_names(&b)
    );
    let (code, stdout) = run_job(tag);
    assert_eq!(code, Some(0));
    assert!(String::from_utf8_lossy(&stdout).contains("solution_ok=True"));
    assert_eq!((code, stdout), run_job(image));
}

#[test]
fn redis_tcp_service() {
    let tag = "pare-test/redis.slim:build";
    let b = build_verified("pare-example/redis", Some(tag), &[]);
    assert!(
        probe_names(&b).iter().any(|p| p.contains("6379")),
        "{:?}",
        probe_names(&b)
    );
    assert_eq!(inspect(tag, "{{.Config.User}}"), "redis");
    assert!(b.kept("/usr/bin/redis-server") || b.kept("/usr/bin/redis-check-rdb"));
}

#[test]
fn nginx_static_site() {
    let b = build_verified(
        "pare-example/nginx",
        Some("pare-test/nginx.slim:build"),
        &[],
    );
    let probes = probe_names(&b);
    assert!(
        probes.iter().any(|p| p.ends_with("/about.html")),
        "{probes:?}"
    );
    assert!(
        probes.iter().any(|p| p.ends_with("/css/site.css")),
        "{probes:?}"
    );
}

#[test]
fn node_express() {
    let b = build_verified(
        "pare-example/node-web",
        Some("pare-test/node-web.slim:build"),
        &[],
    );
    assert!(
        probe_names(&b).iter().any(|p| p.ends_with("/api/items")),
        "{:?}",
        probe_names(&b)
    );
    assert!(
        b.report["selection"]["entries"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.ends_with("/express/package.json"))
    );
}

#[test]
fn java_http_server() {
    let b = build_verified("pare-example/jdk", Some("pare-test/jdk.slim:build"), &[]);
    assert!(
        probe_names(&b).iter().any(|p| p.ends_with("/api/info")),
        "{:?}",
        probe_names(&b)
    );
}

#[test]
fn ctrl_c_cleans_up() {
    // Interrupted while the app runs under the sensor (--continue-after keeps it running):
    // exit 130, no container left, and nothing left in the temp dir (work dir, mount, sensor
    // output).
    let tmp = tempfile::tempdir().unwrap();
    let artifacts = tempfile::tempdir().unwrap();
    let child = pare()
        .args([
            "build",
            "pare-example/go-server",
            "--continue-after",
            "60",
            "--tag",
            "pare-test/go-server.slim:interrupted",
            "--artifacts",
        ])
        .arg(artifacts.path())
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the profile phase is running.
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(60) {
        let running = std::fs::read_dir(tmp.path())
            .map(|d| d.count())
            .unwrap_or(0)
            >= 2;
        if running {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(ctrl_c(child), Some(130));
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let ps = docker(&[
        "ps",
        "-a",
        "--filter",
        "ancestor=pare-example/go-server",
        "--format",
        "{{.Names}}",
    ]);
    assert!(
        String::from_utf8_lossy(&ps.stdout)
            .lines()
            .all(|n| !n.starts_with("pare-")),
        "{}",
        String::from_utf8_lossy(&ps.stdout)
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(tmp.path().to_str().unwrap()),
        "a mount is left"
    );
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

#[test]
fn ctrl_c_while_writing_an_output_leaves_no_temp_files() {
    // Interrupted while the gzip layer is being written beside `--output`: exit 130 and none
    // of the half-written `.pare-PID-…` temp files or dirs stay in the output's directory.
    let out_parent = tempfile::tempdir().unwrap();
    let artifacts = tempfile::tempdir().unwrap();
    let out = out_parent.path().join("slim-layout");
    let mut child = pare()
        .args(["build", "pare-example/jdk", "--no-verify", "--artifacts"])
        .arg(artifacts.path())
        .arg("--output")
        .arg(format!("oci:{}:slim", out.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let temps = || -> Vec<String> {
        std::fs::read_dir(out_parent.path())
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(".pare-"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let started = std::time::Instant::now();
    let mut seen = Vec::new();
    while started.elapsed() < std::time::Duration::from_secs(120) {
        seen = temps();
        if !seen.is_empty() || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(!seen.is_empty(), "never saw the layer being written");
    assert_eq!(ctrl_c(child), Some(130), "saw {seen:?}");
    assert!(temps().is_empty(), "left behind: {:?}", temps());
    assert!(!out.exists(), "an interrupted layout must not appear");
}

/// An app serving `/srv` whose probes only fetch `/`: `/srv/sub/page.txt` is dropped, and the
/// build says so (summary and report.json) with the flag that keeps it; with that flag it is
/// kept and no longer listed. The slim image is dated like the source, not 1970.
#[test]
fn files_no_probe_reached_are_named() {
    let image = "pare-test/firsthour-served:latest";
    let dockerfile = "FROM pare-example/python-web\n\
        USER root\n\
        RUN mkdir -p /srv/sub && echo home > /srv/index.html && echo page > /srv/sub/page.txt\n\
        USER app\n\
        CMD [\"python3\", \"-m\", \"http.server\", \"8080\", \"--directory\", \"/srv\"]\n";
    let mut child = Command::new("docker")
        .args(["build", "-q", "-t", image, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("docker build");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), dockerfile.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "docker build {image}");
    let _rmi = TagCleanup(image);

    let tag = "pare-test/firsthour-served.slim:build";
    let b = build_verified(image, Some(tag), &[]);
    let srv = b.report["unexercised"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["dir"] == "/srv")
        .unwrap_or_else(|| panic!("/srv not listed: {}", b.report["unexercised"]))
        .clone();
    assert_eq!(srv["why"], "served");
    assert_eq!(srv["files"], 1);
    assert_eq!(srv["examples"][0], "/srv/sub/page.txt");
    assert!(!b.kept("/srv/sub/page.txt"));
    assert!(
        b.stdout
            .contains("1 file under /srv dropped: nothing asked for it;")
            && b.stdout.contains("keep it with --include-path /srv"),
        "{}",
        b.stdout
    );
    // Dated like the source image (its `created`, to the second), so `docker images` does
    // not say "56 years ago".
    assert_eq!(b.report["epoch_from"], "the source image's creation time");
    let created = |i: &str| {
        inspect(i, "{{.Created}}")
            .chars()
            .take(19)
            .collect::<String>()
    };
    assert_eq!(created(tag), created(image));

    // The flag the message names keeps it.
    let profile = b.profile_json();
    let k = build_verified(
        image,
        Some(tag),
        &[
            "--from-profile",
            profile.to_str().unwrap(),
            "--include-path",
            "/srv",
        ],
    );
    assert!(k.kept("/srv/sub/page.txt"));
    assert!(
        !k.report["unexercised"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["dir"] == "/srv"),
        "{}",
        k.report["unexercised"]
    );
}

/// Progress: piped, one line per phase when it ends (no "starting" lines); `-q` prints none;
/// `-v` adds what each phase waits for (the ports, the probe being replayed).
#[test]
fn progress_is_one_line_per_phase_quiet_and_verbose() {
    let run = |flags: &[&str]| {
        let artifacts = tempfile::tempdir().unwrap();
        let out = pare()
            .args(flags)
            .args(["build", "pare-example/go-server", "--artifacts"])
            .arg(artifacts.path())
            .args(["--tag", "pare-test/firsthour-go.slim:progress"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{flags:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    };
    let _rmi = TagCleanup("pare-test/firsthour-go.slim:progress");
    let normal = run(&[]);
    let lines: Vec<&str> = normal.lines().collect();
    for phase in ["open", "profile", "select", "write", "verify", "analyze"] {
        let n = lines
            .iter()
            .filter(|l| l.starts_with(&format!("pare build: {phase} done in ")))
            .count();
        assert_eq!(n, 1, "{phase}:\n{normal}");
    }
    assert!(lines.iter().all(|l| l.contains(" done in ")), "{normal}");
    assert!(!normal.contains('\x1b'), "no terminal codes when piped");
    assert_eq!(run(&["-q"]), "");
    let verbose = run(&["-v"]);
    assert!(
        verbose.contains("waiting for port 8080 to answer"),
        "{verbose}"
    );
    assert!(
        verbose.contains("waiting for the probe GET http:8080/"),
        "{verbose}"
    );
}

struct TagCleanup(&'static str);

impl Drop for TagCleanup {
    fn drop(&mut self) {
        let _ = docker(&["rmi", "-f", self.0]);
    }
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

/// A JVM servlet container binds :8080 seconds before its webapp answers; the build must wait
/// for HTTP, crawl to the JSP and verify it.
#[test]
fn tomcat_slow_deploy_three_times() {
    three_verified_builds("pare-example/tomcat", "pare-test/tomcat.slim:build", |b| {
        let names = probe_names(b);
        assert!(
            names.iter().any(|p| p.ends_with(":8080/hello")),
            "{names:?}"
        );
        assert_eq!(
            inspect("pare-test/tomcat.slim:build", "{{.Config.User}}"),
            "tomcat"
        );
    });
}

/// An Erlang broker as a non-root USER (HOME from /etc/passwd holds its cookie), checked by
/// an AMQP handshake each time.
#[test]
fn rabbitmq_non_root_broker_three_times() {
    three_verified_builds(
        "pare-example/rabbitmq",
        "pare-test/rabbitmq.slim:build",
        |b| {
            let f = protocol_fields(b, 5672, "amqp");
            assert_eq!(f["amqp.product"], "RabbitMQ", "{f}");
            assert_eq!(f["amqp.version"], "0-9", "{f}");
            assert!(probe_names(b).iter().any(|p| p == "amqp :5672"));
        },
    );
}

/// A database that runs initdb at first start, checked by its PostgreSQL handshake.
#[test]
fn postgres_initdb_at_start_three_times() {
    three_verified_builds(
        "pare-example/postgres",
        "pare-test/postgres.slim:build",
        |b| {
            let f = protocol_fields(b, 5432, "postgres");
            assert_eq!(f["postgres.auth"], "sasl", "{f}");
            assert_eq!(f["postgres.mechanisms"], "SCRAM-SHA-256", "{f}");
            assert!(b.kept("/usr/lib/postgresql/15/bin/initdb"));
        },
    );
}

/// An EXPOSEd port nothing listens on: reported, not waited for (the build runs with
/// `--timeout 120`, so one fixed wait would show).
#[test]
fn unused_expose_three_times() {
    let times = three_verified_builds(
        "pare-example/unused-expose",
        "pare-test/unused-expose.slim:build",
        |b| {
            let names = probe_names(b);
            assert!(
                names.iter().any(|p| p.ends_with(":8000/about.html")),
                "{names:?}"
            );
            let out = format!("{}\n{}", b.stdout, b.stderr);
            assert!(out.contains("80/tcp: nothing listens"), "{out}");
        },
    );
    for t in times {
        assert!(t < Duration::from_secs(60), "a build took {t:?}");
    }
}
