//! Ctrl-C during a build leaves nothing behind.

use super::*;

#[test]
fn ctrl_c_cleans_up() {
    // Interrupted while the app runs under the sensor (--continue-after keeps it running):
    // exit 130, no container left, and nothing left in the temp dir (work dir, mount, sensor
    // output).
    let tmp = tempfile::tempdir().unwrap();
    let artifacts = tempfile::tempdir().unwrap();
    let tag = test_image("go-server.slim:interrupted");
    let child = pare()
        .args([
            "build",
            "pare-example/go-server",
            "--continue-after",
            "60",
            "--tag",
            &tag,
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
