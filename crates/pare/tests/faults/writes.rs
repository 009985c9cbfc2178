//! Interrupted and failed writes: kill -9 keeps the previous output, a full disk leaves nothing.

use super::*;

#[test]
fn kill_9_during_an_output_write_keeps_the_previous_output() {
    let _serial = serial();
    let work = tempfile::tempdir().unwrap();
    for (kind, name) in [("docker-archive", "slim.tar"), ("oci", "slim-layout")] {
        let target = work.path().join(name);
        let spec = format!("{kind}:{}:slim", target.display());
        let art = tempfile::tempdir().unwrap();
        // The previous output: the small image's slim build.
        small_build_into(&spec, art.path());
        let before = snapshot(&target);
        assert!(!before.is_empty());

        // A big build into the same output, killed while it writes the layer.
        let art2 = tempfile::tempdir().unwrap();
        let mut child = pare()
            .args([
                "build",
                "pare-example/jdk",
                "--no-verify",
                "--output",
                &spec,
            ])
            .arg("--artifacts")
            .arg(art2.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let t = Instant::now();
        let mut seen = Vec::new();
        while t.elapsed() < Duration::from_secs(300) {
            seen = temps_of(work.path(), pid);
            if !seen.is_empty() || child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            !seen.is_empty(),
            "{kind}: never saw the output being written"
        );
        std::thread::sleep(Duration::from_millis(100));
        child.kill().unwrap();
        child.wait().unwrap();
        // SIGKILL runs no clean-up: the build's work dir stays, naming its dead owner.
        assert!(
            !work_dirs_of(pid).is_empty(),
            "{kind}: the killed build's work dir does not name its owner"
        );

        // Every file of the previous output is still there, byte for byte; anything new is
        // a complete content-addressed blob (never a partial file under a final name).
        let after = snapshot(&target);
        for (p, bytes) in &before {
            assert!(
                after.get(p) == Some(bytes),
                "{kind}: {} changed or vanished after SIGKILL",
                p.display()
            );
        }
        for (p, bytes) in &after {
            if before.contains_key(p) {
                continue;
            }
            assert!(
                p.starts_with("blobs/sha256")
                    && p.file_name().unwrap().to_string_lossy() == hex_sha256(bytes),
                "{kind}: new file {} is not a complete blob",
                p.display()
            );
        }
        let o = pare()
            .args(["xray", "--format", "json", &spec])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{kind}: {}", text(&o.stderr));

        // The next pare writing there sweeps the dead one's temps (once they sat idle).
        assert!(!temps_of(work.path(), pid).is_empty());
        std::thread::sleep(Duration::from_secs(6));
        small_build_into(&spec, art.path());
        assert!(
            temps_of(work.path(), pid).is_empty(),
            "{kind}: the killed pare's temps were not swept: {:?}",
            temps_of(work.path(), pid)
        );
        assert!(
            work_dirs_of(pid).is_empty(),
            "{kind}: the killed build's work dir was not swept: {:?}",
            work_dirs_of(pid)
        );
    }
}

#[test]
#[ignore = "needs root (mounts a tmpfs)"]
fn a_full_disk_gives_a_clear_error_and_no_partial_image() {
    let _serial = serial();
    let image = "pare-example/python-web";
    // The output on a full filesystem.
    let out = Tmpfs::new("2m");
    let art = tempfile::tempdir().unwrap();
    for spec in [
        format!("docker-archive:{}/slim.tar", out.path().display()),
        format!("oci:{}/layout:slim", out.path().display()),
    ] {
        let o = pare()
            .args([
                "build",
                image,
                "--no-verify",
                "--output",
                &spec,
                "--artifacts",
            ])
            .arg(art.path())
            .output()
            .unwrap();
        assert_no_space(&o, out.path());
        assert!(out.entries().is_empty(), "{spec}: left {:?}", out.entries());
    }
    // TMPDIR (the work dir: extracted files, the layer for `docker load`) on a full filesystem.
    let tmp = Tmpfs::new("2m");
    let tag = &test_image("faults-full-disk:slim");
    let o = pare()
        .args(["build", image, "--no-verify", "--tag", tag, "--artifacts"])
        .arg(art.path())
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    assert_no_space(&o, tmp.path());
    assert!(tmp.entries().is_empty(), "TMPDIR: left {:?}", tmp.entries());
    let inspect = docker(&["image", "inspect", tag]);
    assert!(
        !inspect.status.success(),
        "a partial image was loaded as {tag}"
    );
}
