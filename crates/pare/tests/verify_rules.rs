//! Issue 8 end to end, on small synthetic images built here (FROM `local/debian:bookworm` and
//! `pare-example/python-web`): a broken run never ends in "verification (passed)".
//!
//! - an original that exits before its EXPOSEd port answers: `pare build` and `pare profile`
//!   exit 2 with its last log line and a hint; with `--job` it builds and verifies;
//! - a non-root app that writes `$HOME` (the broker of the issue): works, because the traced
//!   run gives it its own HOME, as `docker run` does;
//! - an unused EXPOSE is a finding and costs no timeout;
//! - a slim app that dies while the original kept running fails verification.
//!
//! Needs dockerd, root and `PARE_SENSOR`: behind the `docker-tests` feature.
#![cfg(feature = "docker-tests")]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

#[path = "common/cli.rs"]
mod cli;
use cli::pare;

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI")
}

/// Builds `tag` from a Dockerfile and extra files; removed (with its slim twin) on drop.
struct Image(String);

impl Image {
    fn build(tag: &str, dockerfile: &str, files: &[(&str, &str)]) -> Image {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let o = docker(&["build", "-q", "-t", tag, dir.path().to_str().unwrap()]);
        assert!(o.status.success(), "docker build {tag}: {o:?}");
        Image(tag.to_string())
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        // NAME:TAG → NAME.slim:TAG, pare build's default tag.
        let slim = match self.0.rsplit_once(':') {
            Some((name, tag)) => format!("{name}.slim:{tag}"),
            None => format!("{}.slim:latest", self.0),
        };
        let _ = docker(&["rmi", "-f", &self.0, &slim]);
    }
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

fn run(args: &[&str], artifacts: &Path) -> Run {
    let t = Instant::now();
    let o = pare().args(args).arg(artifacts).output().unwrap();
    Run {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        took: t.elapsed(),
    }
}

#[test]
fn an_original_that_exits_before_its_port_answers_is_an_error_unless_it_is_a_job() {
    let img = Image::build(
        "pare-verify-test/exits:latest",
        "FROM local/debian:bookworm\nEXPOSE 5672\nCMD [\"sh\", \"-c\", \"echo 'boot failed: cannot create cookie file' >&2; exit 0\"]\n",
        &[],
    );
    let dir = tempfile::tempdir().unwrap();
    let b = run(
        &["build", &img.0, "--timeout", "60", "--artifacts"],
        dir.path(),
    );
    assert_eq!(b.code, Some(2), "{}\n{}", b.stdout, b.stderr);
    assert!(
        b.stderr.contains("exited with code 0")
            && b.stderr.contains("boot failed: cannot create cookie file")
            && b.stderr.contains("--job"),
        "{}",
        b.stderr
    );
    assert!(!b.stdout.contains("verification (passed)"), "{}", b.stdout);
    let p = run(
        &["profile", &img.0, "--timeout", "60", "--output"],
        dir.path(),
    );
    assert_eq!(p.code, Some(2), "{}\n{}", p.stdout, p.stderr);

    // Declared a job: its exit code and output are the behaviour, and the slim one matches.
    let b = run(
        &["build", &img.0, "--job", "--timeout", "60", "--artifacts"],
        dir.path(),
    );
    assert_eq!(b.code, Some(0), "{}\n{}", b.stdout, b.stderr);
    assert!(b.stdout.contains("verification (passed)"), "{}", b.stdout);
}

#[test]
fn a_non_root_app_that_writes_its_home_works_under_the_trace() {
    // The broker of issue 8 in small: it needs $HOME (its passwd home) to be its own.
    let img = Image::build(
        "pare-verify-test/home:latest",
        "FROM pare-example/python-web\nUSER root\nRUN useradd -m -d /home/cookie -u 4243 cookie\nUSER cookie\nWORKDIR /home/cookie\nCMD [\"sh\", \"-c\", \"touch \\\"$HOME/.erlang.cookie\\\" || exit 1; exec python3 -m http.server 8080\"]\n",
        &[],
    );
    let dir = tempfile::tempdir().unwrap();
    let b = run(
        &["build", &img.0, "--timeout", "60", "--artifacts"],
        dir.path(),
    );
    assert_eq!(b.code, Some(0), "{}\n{}", b.stdout, b.stderr);
    assert!(b.stdout.contains("verification (passed)"), "{}", b.stdout);
    assert!(b.stdout.contains("state after the probes"), "{}", b.stdout);
}

#[test]
fn an_unused_expose_is_a_finding_and_costs_no_timeout() {
    let img = Image::build(
        "pare-verify-test/python-web-expose80:latest",
        "FROM pare-example/python-web\nEXPOSE 80\n",
        &[],
    );
    let dir = tempfile::tempdir().unwrap();
    // The old wait: 120 s for port 80 in the profile and 30 s more in verification.
    let b = run(
        &["build", &img.0, "--timeout", "120", "--artifacts"],
        dir.path(),
    );
    assert_eq!(b.code, Some(0), "{}\n{}", b.stdout, b.stderr);
    assert!(
        b.stdout.contains("finding: EXPOSE 80/tcp: nothing listens")
            && b.stdout.contains("verification (passed)"),
        "{}",
        b.stdout
    );
    assert!(b.took < Duration::from_secs(60), "took {:?}", b.took);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["findings"][0], "EXPOSE 80/tcp: nothing listens");
    let profile: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("profile.json")).unwrap()).unwrap();
    assert_eq!(profile["run"]["unused_exposed"][0], "80/tcp");
    assert!(
        profile["probes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["spec"]["port"] == 8080),
        "nothing probes port 80: {profile}"
    );
}

const SERVER: &str = r#"import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"hello")
        self.wfile.flush()
        if not os.path.exists("/srv/alive"):
            os._exit(3)
http.server.HTTPServer(("", 8080), H).serve_forever()
"#;

#[test]
fn a_slim_app_that_dies_while_the_original_kept_running_fails() {
    let img = Image::build(
        "pare-verify-test/dies:latest",
        "FROM pare-example/python-web\nUSER root\nRUN mkdir -p /srv && touch /srv/alive\nCOPY server.py /srv/server.py\nUSER app\nCMD [\"python3\", \"/srv/server.py\"]\n",
        &[("server.py", SERVER)],
    );
    let dir = tempfile::tempdir().unwrap();
    // Excluding the file the app checks after each answer: the slim app answers once, then dies.
    let b = run(
        &[
            "build",
            &img.0,
            "--exclude",
            "/srv/alive",
            "--timeout",
            "60",
            "--artifacts",
        ],
        dir.path(),
    );
    assert_eq!(b.code, Some(1), "{}\n{}", b.stdout, b.stderr);
    assert!(b.stdout.contains("verification (FAILED)"), "{}", b.stdout);
    assert!(
        b.stdout.contains("FAIL state after the probes") && b.stdout.contains("exited with code 3"),
        "{}",
        b.stdout
    );
}

#[test]
fn readiness_signs_decide_and_are_replayed_by_verification() {
    let dir = tempfile::tempdir().unwrap();
    // Flask says " * Running on http://…" once it serves.
    let b = run(
        &[
            "build",
            "pare-example/python-web",
            "--tag",
            "pare-verify-test/python-web-ready.slim:latest",
            "--ready-log",
            "Running on",
            "--timeout",
            "60",
            "--artifacts",
        ],
        dir.path(),
    );
    let _ = docker(&["rmi", "-f", "pare-verify-test/python-web-ready.slim:latest"]);
    assert_eq!(b.code, Some(0), "{}\n{}", b.stdout, b.stderr);
    assert!(
        b.stdout
            .contains("readiness: a log line matched /Running on/")
            && b.stdout.contains("verification (passed)"),
        "{}",
        b.stdout
    );
    let profile: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("profile.json")).unwrap()).unwrap();
    assert_eq!(profile["run"]["ready_log"], "Running on");

    let p = run(
        &[
            "profile",
            "pare-example/python-web",
            "--ready-url",
            "http://localhost:8080/",
            "--no-stability-run",
            "--output",
        ],
        dir.path(),
    );
    assert_eq!(p.code, Some(0), "{}\n{}", p.stdout, p.stderr);
    assert!(
        p.stdout.contains("readiness GET http:8080/ answered"),
        "{}",
        p.stdout
    );
    // Only one sign at a time.
    let p = run(
        &[
            "profile",
            "pare-example/python-web",
            "--ready-url",
            "http://localhost:8080/",
            "--ready-log",
            "x",
            "--output",
        ],
        dir.path(),
    );
    assert_eq!(p.code, Some(2), "{}", p.stderr);
}
