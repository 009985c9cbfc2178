//! What a build tells: files no probe reached, progress lines.

use super::*;

/// An app serving `/srv` whose probes only fetch `/`: `/srv/sub/page.txt` is dropped, and the
/// build says so (summary and report.json) with the flag that keeps it; with that flag it is
/// kept and no longer listed. The slim image is dated like the source, not 1970.
#[test]
fn files_no_probe_reached_are_named() {
    let image = &test_image("firsthour-served:latest");
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
    let _rmi = RemoveOnDrop(image.clone());

    let tag = &test_image("firsthour-served.slim:build");
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
    let tag = test_image("firsthour-go.slim:progress");
    let run = |flags: &[&str]| {
        let artifacts = tempfile::tempdir().unwrap();
        let out = pare()
            .args(flags)
            .args(["build", "pare-example/go-server", "--artifacts"])
            .arg(artifacts.path())
            .args(["--tag", tag.as_str()])
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
    let _rmi = RemoveOnDrop(tag.clone());
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
