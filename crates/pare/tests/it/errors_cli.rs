//! Errors give a way forward: one `pare: error:` line, at most one `hint:` line, no Debug
//! values, and a closed stdout ends pare quietly.

use std::io::Read;
use std::path::Path;
use std::process::Stdio;

use assert_cmd::Command;
use pare_source::Compression;
use pare_test_support::fixture::{self, DockerArchiveFormat, Image};
use pare_test_support::layer::LayerBuilder as L;

fn pare(cwd: &Path) -> Command {
    let mut c = crate::cli::pare_cmd();
    c.current_dir(cwd);
    // No daemon answers here: anything that reaches it fails differently from the local checks.
    c.env("DOCKER_HOST", "unix:///nonexistent/pare-test.sock");
    c
}

fn image() -> Image {
    Image::new(vec![
        L::new()
            .dir("bin")
            .file_mode("bin/sh", b"#!", 0o755)
            .finish(),
    ])
}

/// Runs and returns (exit code, stderr lines), checking the one-line-plus-hint shape.
fn fails(cmd: &mut Command) -> (i32, Vec<String>) {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<String> = stderr.lines().map(str::to_string).collect();
    assert!(!lines.is_empty() && lines.len() <= 2, "{stderr}");
    assert!(lines[0].starts_with("pare: error: "), "{stderr}");
    if let Some(h) = lines.get(1) {
        assert!(h.starts_with("hint: "), "{stderr}");
    }
    for bad in ["{ ", "Some(", "Ok(", "Err(", "panicked", "Docker responded"] {
        assert!(!stderr.contains(bad), "{bad} in {stderr}");
    }
    (out.status.code().unwrap(), lines)
}

#[test]
fn a_layout_directory_given_as_an_image_suggests_oci() {
    let dir = tempfile::tempdir().unwrap();
    fixture::write_oci_layout(&dir.path().join("layout"), &image(), Compression::Gzip).unwrap();
    let (code, lines) = fails(pare(dir.path()).args(["xray", "./layout"]));
    assert_eq!(code, 2);
    assert!(lines[0].contains("./layout` is a path"), "{lines:?}");
    assert_eq!(lines[1], "hint: use oci:./layout");
    // And the hint works.
    pare(dir.path())
        .args(["xray", "oci:./layout"])
        .assert()
        .success();
}

/// The error names the path and gives its cause once: the library error keeps the cause as its
/// source, and the binary joins the chain on one line.
#[test]
fn a_missing_layout_names_the_path_and_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let (code, lines) = fails(pare(dir.path()).args(["xray", "oci:/nonexistent"]));
    assert_eq!(code, 2);
    assert_eq!(lines, ["pare: error: /nonexistent: not a directory"]);
}

#[test]
fn a_saved_archive_given_as_an_image_suggests_docker_archive() {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("app.tar");
    fixture::write_docker_archive(&tar, &image(), DockerArchiveFormat::Legacy).unwrap();
    let (_, lines) = fails(pare(dir.path()).args(["xray", "./app.tar"]));
    assert_eq!(lines[1], "hint: use docker-archive:./app.tar");
    let (_, lines) = fails(pare(dir.path()).args(["build", &tar.display().to_string()]));
    assert_eq!(
        lines[1],
        format!("hint: use docker-archive:{}", tar.display())
    );
    // A path that does not exist says so and lists the transports.
    let (_, lines) = fails(pare(dir.path()).args(["xray", "./nothing"]));
    assert!(lines[1].contains("does not exist") && lines[1].contains("oci:DIR"));
}

#[test]
fn a_bad_reference_is_a_local_error_not_a_daemon_400() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        ["xray", "NoSuch:Bad:ref"],
        ["profile", "NoSuch:Bad:ref"],
        ["build", "NoSuch:Bad:ref"],
    ] {
        let (code, lines) = fails(pare(dir.path()).args(args));
        assert_eq!(code, 2);
        assert!(
            lines[0].contains("image reference `NoSuch:Bad:ref`") && lines[0].contains("lowercase"),
            "{lines:?}"
        );
        assert!(!lines[0].contains("daemon"), "{lines:?}");
        assert!(lines[1].contains("NAME[:TAG]"), "{lines:?}");
    }
}

#[test]
fn why_without_a_build_says_to_build_first() {
    let dir = tempfile::tempdir().unwrap();
    let (code, lines) = fails(pare(dir.path()).args(["why", "/bin/sh"]));
    assert_eq!(code, 2);
    assert!(lines[0].contains("no build report"), "{lines:?}");
    assert!(lines[1].starts_with("hint: run `pare build"), "{lines:?}");
}

/// A recorded profile of a schema version this pare does not read is refused, naming the
/// file, rather than read in a shape it was not written in.
#[test]
fn a_profile_of_a_newer_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fixture::write_oci_layout(&dir.path().join("layout"), &image(), Compression::Gzip).unwrap();
    std::fs::write(
        dir.path().join("newer.json"),
        "{\"version\": 99, \"image\": {}}",
    )
    .unwrap();
    let (code, lines) = fails(pare(dir.path()).args([
        "--quiet",
        "build",
        "oci:./layout",
        "--from-profile",
        "newer.json",
        "--no-verify",
    ]));
    assert_eq!(code, 2);
    assert!(
        lines[0].starts_with(
            "pare: error: newer.json: profile.json schema version 99, but this pare reads version "
        ),
        "{lines:?}"
    );
}

/// Runs pare with its stdout a pipe whose reading end is already closed.
fn into_closed_pipe(args: &[&str], cwd: &Path) -> (Option<i32>, String) {
    let mut child = crate::cli::pare()
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (child.wait().unwrap().code(), stderr)
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("app.tar");
    fixture::write_docker_archive(&tar, &image(), DockerArchiveFormat::Legacy).unwrap();
    let img = format!("docker-archive:{}", tar.display());
    for args in [
        vec!["xray", img.as_str()],
        vec!["xray", img.as_str(), "--format", "json"],
        vec!["diff", img.as_str(), img.as_str(), "--format", "json"],
        vec!["completions", "bash"],
        vec!["lint", "--list-rules"],
    ] {
        let (code, stderr) = into_closed_pipe(&args, dir.path());
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
}
