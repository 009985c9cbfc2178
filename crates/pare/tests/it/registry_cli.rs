//! `docker://` from the command line against the testbed registries (`scripts/testbed
//! registry`: plain HTTP on 127.0.0.1:5555, htpasswd + TLS on 127.0.0.1:5556, or
//! `PARE_TEST_REGISTRY` / `PARE_TEST_REGISTRY_TLS` / `PARE_TEST_REGISTRY_CREDS`). Each test
//! skips with a message when its registry is not up, and fails when the variable names one that
//! does not answer.

use std::process::{Command, Output};

#[cfg(feature = "docker-tests")]
use crate::cli::exited;
pub(crate) use crate::cli::pare;

pub(crate) fn answers(url: &str, extra: &[&str]) -> bool {
    Command::new("curl")
        .args(["-fsS", "--max-time", "2", "-o", "/dev/null"])
        .args(extra)
        .arg(url)
        .status()
        .is_ok_and(|s| s.success())
}

pub(crate) fn registry(var: &str, default: &str, tls: bool) -> Option<String> {
    let explicit = std::env::var(var).ok().filter(|s| !s.is_empty());
    let addr = explicit.clone().unwrap_or_else(|| default.into());
    let ok = if tls {
        // Any answer (401 included) means it is up.
        Command::new("curl")
            .args(["-ksS", "--max-time", "2", "-o", "/dev/null"])
            .arg(format!("https://{addr}/v2/"))
            .status()
            .is_ok_and(|s| s.success())
    } else {
        answers(&format!("http://{addr}/v2/"), &[])
    };
    if ok {
        return Some(addr);
    }
    assert!(explicit.is_none(), "{var}={addr} does not answer");
    eprintln!("skipping: no registry at {addr} (run `scripts/testbed registry`)");
    None
}

pub(crate) fn one_line_error(o: &Output, reference: &str) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "exit 2: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(reference), "names {reference}: {stderr}");
    stderr
}

#[test]
#[ignore = "needs the testbed registries (scripts/testbed registry)"]
fn missing_image_and_wrong_credentials_exit_2_with_one_line() {
    let cache = tempfile::tempdir().unwrap();
    if let Some(addr) = registry("PARE_TEST_REGISTRY", "127.0.0.1:5555", false) {
        let reference = format!("docker://{addr}/pare-test/does-not-exist:1");
        let o = pare()
            .args(["xray", &reference, "--cache-dir"])
            .arg(cache.path())
            .output()
            .unwrap();
        let e = one_line_error(&o, &reference);
        assert!(e.contains("not found (404)"), "{e}");
    }
    if let Some(addr) = registry("PARE_TEST_REGISTRY_TLS", "127.0.0.1:5556", true) {
        let reference = format!("docker://{addr}/pare-test/anything:1");
        let o = pare()
            .args([
                "xray",
                &reference,
                "--creds",
                "pare:wrong-password",
                "--cache-dir",
            ])
            .arg(cache.path())
            .output()
            .unwrap();
        let e = one_line_error(&o, &reference);
        assert!(e.contains("401"), "{e}");
        // Anonymous on an authenticated registry: the same.
        let o = pare()
            .args(["xray", &reference, "--cache-dir"])
            .arg(cache.path())
            .env("DOCKER_CONFIG", cache.path())
            .env_remove("REGISTRY_AUTH_FILE")
            .output()
            .unwrap();
        one_line_error(&o, &reference);
    }
}

/// A download that a Ctrl-C or `kill -9` cut short leaves `sha256/.tmp-<hex>-<pid>-<n>` in
/// the blob cache; the next run that opens the cache removes it (its owner is gone and it
/// has not been written to for minutes), even when that run then fails. Live owners' and
/// fresh temp files, and cache entries, stay. No registry needed.
#[test]
fn stale_cache_temp_files_are_swept_on_open() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("sha256");
    std::fs::create_dir_all(&dir).unwrap();
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let at = |name: String, minutes: u64| {
        let p = dir.join(name);
        let f = std::fs::File::create(&p).unwrap();
        f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(60 * minutes))
            .unwrap();
        p
    };
    let stale = at(format!(".tmp-{}-{dead_pid}-0", "ab".repeat(32)), 10);
    let fresh = at(format!(".tmp-{}-{dead_pid}-1", "cd".repeat(32)), 0);
    let entry = at("ef".repeat(32), 60 * 48);
    // Port 9 (discard) on loopback: nothing answers, the open fails after the sweep.
    let reference = "docker://127.0.0.1:9/pare-test/nothing:1";
    let o = pare()
        .args(["xray", reference, "--registry-timeout", "2", "--cache-dir"])
        .arg(cache.path())
        .output()
        .unwrap();
    one_line_error(&o, reference);
    assert!(!stale.exists(), "the dead download's temp file is removed");
    assert!(fresh.exists(), "a temp file written a moment ago stays");
    assert!(entry.exists(), "cache entries stay");
}

/// An example image copied into the registry with skopeo; the reference without `docker://`.
/// One copy at a time: two copies of the same blobs into one repository at once can fail
/// ("manifest blob unknown"), as the tests that seed go-server under two tags did.
#[cfg(feature = "docker-tests")]
fn seed(addr: &str, example: &str, tag: &str) -> String {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dest = format!(
        "{addr}/{}",
        pare_test_support::names::image(&format!("{example}:{tag}"))
    );
    let st = Command::new("skopeo")
        .args([
            "copy",
            "-q",
            "--dest-tls-verify=false",
            &format!("docker-daemon:pare-example/{example}:latest"),
            &format!("docker://{dest}"),
        ])
        .status()
        .expect("skopeo (scripts/testbed registry installs it)");
    assert!(st.success(), "skopeo copy into {dest}");
    dest
}

/// `pare build docker://SRC --runtime embedded --artifacts ARTIFACTS --cache-dir CACHE`; the
/// test adds the rest.
#[cfg(feature = "docker-tests")]
fn embedded_build(src: &str, artifacts: &std::path::Path, cache: &std::path::Path) -> Command {
    let mut c = pare();
    c.args(["build", &format!("docker://{src}"), "--runtime", "embedded"])
        .arg("--artifacts")
        .arg(artifacts)
        .arg("--cache-dir")
        .arg(cache);
    c
}

/// `skopeo inspect` of `dest` (a plain-HTTP registry reference without `docker://`).
#[cfg(feature = "docker-tests")]
fn skopeo_inspect(dest: &str) -> Output {
    Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &format!("docker://{dest}")])
        .output()
        .unwrap()
}

/// `summary` (a report.json image summary) with the figures `pare xray` finds in `reference`
/// (read from the registry into the empty cache `cache`) in place of its own.
#[cfg(feature = "docker-tests")]
fn summary_of_xray(
    reference: &str,
    cache: &std::path::Path,
    summary: &serde_json::Value,
) -> serde_json::Value {
    let o = pare()
        .args(["xray", reference, "--format", "json", "--cache-dir"])
        .arg(cache)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let x: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let s = &x["surface"];
    let lists = [
        "shells",
        "package_managers",
        "build_tools",
        "network_tools",
        "setuid",
        "setgid",
        "world_writable",
        "capabilities",
        "secret_files",
        "secret_env",
    ];
    let findings = lists
        .iter()
        .map(|k| s[k].as_array().map_or(0, Vec::len))
        .sum::<usize>()
        + usize::from(s["runs_as_root"].as_bool().unwrap_or(false));
    let mut expected = summary.clone();
    expected["size"] = x["total_size"].clone();
    expected["visible_size"] = x["final_size"].clone();
    expected["entries"] = x["entries"].clone();
    expected["layers"] = x["layers"].as_array().map(Vec::len).into();
    expected["surface_findings"] = findings.into();
    expected
}

/// The daemonless pipeline: `docker://` in, embedded runtime, `docker://` out; then the slim
/// image is pulled by docker and skopeo and it serves, and its digest is the one an `oci:`
/// output of the same build gets. Also: credentials from `$REGISTRY_AUTH_FILE` on the TLS
/// registry.
#[test]
#[cfg(feature = "docker-tests")]
#[ignore = "needs root, the sensor, dockerd and the testbed registries"]
fn build_from_registry_to_registry_embedded() {
    let Some(addr) = registry("PARE_TEST_REGISTRY", "127.0.0.1:5555", false) else {
        return;
    };
    let src = seed(&addr, "go-server", "reg-src");
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let dest = format!("{addr}/pare-test/go-server-slim:{}", std::process::id());
    let o = embedded_build(&src, &work.path().join("a1"), &cache)
        .arg("--json")
        .args(["--output", &format!("docker://{dest}")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let text = report.to_string();
    // The build analyzes the original from its extraction pass and the slim image from the
    // layout it pushed: the figures are those of an xray of the registry's copies.
    for (side, reference) in [("source", &src), ("slim", &dest)] {
        let fresh = work.path().join(format!("cache-xray-{side}"));
        assert_eq!(
            report[side],
            summary_of_xray(&format!("docker://{reference}"), &fresh, &report[side]),
            "{side}"
        );
    }
    // The same build into an OCI layout (same profile): the same manifest digest.
    let layout = work.path().join("oci");
    let o2 = embedded_build(&src, &work.path().join("a2"), &cache)
        .args(["--json", "--no-verify", "--from-profile"])
        .arg(work.path().join("a1/profile.json"))
        .args(["--output", &format!("oci:{}:slim", layout.display())])
        .output()
        .unwrap();
    exited(&o2, 0);
    let index = std::fs::read_to_string(layout.join("index.json")).unwrap();
    let oci_digest =
        serde_json::from_str::<serde_json::Value>(&index).unwrap()["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string();
    assert!(
        text.contains(&oci_digest),
        "registry and oci: outputs agree on {oci_digest}"
    );
    // A push that fails while verification runs beside it is still the build's error: one
    // line naming the destination, exit 2, no report.
    let nowhere = "docker://127.0.0.1:1/pare-test/nowhere:x";
    let o3 = embedded_build(&src, &work.path().join("a4"), &cache)
        .args(["--quiet", "--from-profile"])
        .arg(work.path().join("a1/profile.json"))
        .args(["--output", nowhere])
        .output()
        .unwrap();
    let e = one_line_error(&o3, nowhere);
    assert!(e.contains("pushing the image"), "{e}");
    assert!(!work.path().join("a4/report.json").exists());
    // skopeo sees that digest under the tag.
    let inspect = skopeo_inspect(&dest);
    let inspect: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(inspect["Digest"], oci_digest.as_str());
    // docker pulls it and it serves.
    let pulled = Command::new("docker")
        .args(["pull", "-q", &dest])
        .output()
        .unwrap();
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    let run = Command::new("docker")
        .args(["run", "-d", "-p", "127.0.0.1::8080", &dest])
        .output()
        .unwrap();
    let cid = String::from_utf8_lossy(&run.stdout).trim().to_string();
    let port = Command::new("docker")
        .args(["port", &cid, "8080/tcp"])
        .output()
        .unwrap();
    let port = String::from_utf8_lossy(&port.stdout);
    let port = port
        .lines()
        .next()
        .unwrap_or("")
        .rsplit(':')
        .next()
        .unwrap_or("")
        .to_string();
    let mut served = false;
    for _ in 0..40 {
        if answers(&format!("http://127.0.0.1:{port}/"), &[]) {
            served = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let _ = Command::new("docker").args(["rm", "-f", &cid]).output();
    let _ = Command::new("docker").args(["rmi", &dest]).output();
    assert!(served, "the pulled slim image serves on 8080");

    // The TLS registry with credentials from a podman-style auth file.
    if let Some(tls) = registry("PARE_TEST_REGISTRY_TLS", "127.0.0.1:5556", true) {
        let creds = std::env::var("PARE_TEST_REGISTRY_CREDS")
            .unwrap_or_else(|_| "pare:pare-test-pass".into());
        let auth = work.path().join("auth.json");
        let b64 = {
            // base64 by hand: the test has no base64 crate.
            const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let b = creds.as_bytes();
            let mut s = String::new();
            for c in b.chunks(3) {
                let n = (c[0] as u32) << 16
                    | (*c.get(1).unwrap_or(&0) as u32) << 8
                    | *c.get(2).unwrap_or(&0) as u32;
                for i in 0..4 {
                    if i <= c.len() {
                        s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
                    } else {
                        s.push('=');
                    }
                }
            }
            s
        };
        std::fs::write(
            &auth,
            format!(r#"{{"auths":{{"{tls}":{{"auth":"{b64}"}}}}}}"#),
        )
        .unwrap();
        let tls_dest = format!("{tls}/pare-test/go-server-slim:{}", std::process::id());
        let o = embedded_build(&src, &work.path().join("a3"), &cache)
            .args(["--no-verify", "--from-profile"])
            .arg(work.path().join("a1/profile.json"))
            .args(["--output", &format!("docker://{tls_dest}")])
            .env("REGISTRY_AUTH_FILE", &auth)
            .output()
            .unwrap();
        exited(&o, 0);
        let o = pare()
            .args(["xray", &format!("docker://{tls_dest}"), "--format", "json"])
            .arg("--cache-dir")
            .arg(work.path().join("cache-tls"))
            .env("REGISTRY_AUTH_FILE", &auth)
            .output()
            .unwrap();
        exited(&o, 0);
        assert!(String::from_utf8_lossy(&o.stdout).contains(&oci_digest));
    }
}

/// The capabilities docs/ci.md documents as the least privilege for tracing in a container.
#[cfg(feature = "docker-tests")]
const LEAST_CAPS: &[&str] = &[
    "SYS_ADMIN",
    "SYS_PTRACE",
    "NET_ADMIN",
    "SETPCAP",
    "CHOWN",
    "DAC_OVERRIDE",
    "SETUID",
    "SETGID",
    "KILL",
];

/// pare inside a container with exactly [`LEAST_CAPS`], seccomp unconfined, no Docker socket:
/// `docker://` in, embedded runtime, `docker://` out. Without SYS_ADMIN the same run fails.
#[test]
#[cfg(feature = "docker-tests")]
#[ignore = "needs root, the sensor, dockerd and the testbed registry"]
fn least_privilege_container_build() {
    let Some(addr) = registry("PARE_TEST_REGISTRY", "127.0.0.1:5555", false) else {
        return;
    };
    let src = seed(&addr, "go-server", "lp-src");
    let sensor = std::env::var("PARE_SENSOR").expect("PARE_SENSOR (scripts/test sets it)");
    let pare_bin = assert_cmd::cargo::cargo_bin("pare");
    let dest = format!("{addr}/pare-test/go-server-lp:{}", std::process::id());
    let run = |caps: &[&str]| {
        let mut c = Command::new("docker");
        c.args(["run", "--rm", "--network", "host", "--cap-drop", "ALL"]);
        for cap in caps {
            c.args(["--cap-add", cap]);
        }
        c.args(["--security-opt", "seccomp=unconfined"])
            .args(["-v", "/etc/ssl/certs:/etc/ssl/certs:ro"])
            .arg("-v")
            .arg(format!("{}:/usr/local/bin/pare:ro", pare_bin.display()))
            .arg("-v")
            .arg(format!("{sensor}:/usr/local/bin/pare-sensor:ro"))
            .args([
                "-e",
                "PARE_SENSOR=/usr/local/bin/pare-sensor",
                "local/debian:bookworm",
            ])
            .args([
                "pare",
                "build",
                &format!("docker://{src}"),
                "--runtime",
                "embedded",
            ])
            .args([
                "--output",
                &format!("docker://{dest}"),
                "--artifacts",
                "/tmp/a",
            ]);
        c.output().unwrap()
    };
    let o = run(LEAST_CAPS);
    exited(&o, 0);
    let inspect = skopeo_inspect(&dest);
    assert!(inspect.status.success(), "the slim image was pushed");
    let fewer: Vec<&str> = LEAST_CAPS
        .iter()
        .copied()
        .filter(|c| *c != "SYS_ADMIN")
        .collect();
    let o = run(&fewer);
    assert_eq!(
        o.status.code(),
        Some(2),
        "without SYS_ADMIN: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Every flag the CI recipes in docs/ci.md pass to `pare build|xray|lint` exists in that
/// command's `--help`, so a renamed flag breaks this test before it breaks a pipeline.
#[test]
fn ci_recipes_use_existing_flags() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/ci.md")).unwrap();
    let mut checked = 0;
    let mut current: Option<String> = None;
    let mut helps = std::collections::HashMap::new();
    for line in doc.lines() {
        let t = line
            .trim()
            .trim_start_matches("- ")
            .trim_start_matches("run: ")
            .trim_start_matches("run: >");
        // A command starts at `pare CMD`; continuation lines (YAML folded) start with `--`.
        let words: Vec<&str> = t.split_whitespace().collect();
        let mut from = 0;
        if let Some(i) = words.iter().position(|w| *w == "pare") {
            if let Some(cmd) = words
                .get(i + 1)
                .filter(|c| ["build", "xray", "lint"].contains(c))
            {
                current = Some(cmd.to_string());
                from = i + 2;
            }
        } else if !t.starts_with("--") {
            current = None;
        }
        // The Kubernetes Job passes flags as `- --flag=value` args of `build`.
        if line.trim() == "- build" {
            current = Some("build".into());
        }
        let Some(cmd) = &current else { continue };
        let help = helps.entry(cmd.clone()).or_insert_with(|| {
            let o = pare().args([cmd.as_str(), "--help"]).output().unwrap();
            String::from_utf8_lossy(&o.stdout).to_string()
        });
        for w in words[from.min(words.len())..]
            .iter()
            .filter(|w| w.starts_with("--") && w.len() > 2)
        {
            let flag = w.split('=').next().unwrap().trim_end_matches(['"', '\'']);
            assert!(
                help.contains(&format!("{flag} "))
                    || help.contains(&format!("{flag}\n"))
                    || help.contains(&format!("{flag}="))
                    || help.contains(&format!("{flag} <")),
                "docs/ci.md: `pare {cmd} {flag}` is not a flag of `pare {cmd}`"
            );
            checked += 1;
        }
    }
    assert!(checked >= 12, "found the recipes' flags ({checked})");
}
