//! Ctrl-C at random points, dockerd going away, concurrent builds.

use super::*;

#[test]
fn ctrl_c_at_random_points_of_every_phase_leaves_nothing_behind() {
    let _serial = serial();
    let mut next = rng();
    const RUNS: u32 = 8;
    for runtime in ["docker", "embedded"] {
        let tag = format!("pare-test/faults-ctrl-c:{runtime}");
        let build = |tmp: &Path, art: &Path| {
            let mut c = pare();
            c.args(["build", SMALL, "--runtime", runtime, "--tag", &tag])
                .arg("--artifacts")
                .arg(art)
                .env("TMPDIR", tmp)
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            c
        };
        // How long a whole build takes: the interrupts are spread over it.
        let (tmp, art) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let t = Instant::now();
        let o = build(tmp.path(), art.path()).output().unwrap();
        let full = t.elapsed();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        let _ = docker(&["rmi", "-f", &tag]);
        let mut phases_hit = Vec::new();
        for i in 0..RUNS {
            let at = full.mul_f64((f64::from(i) + next()) / f64::from(RUNS));
            let (tmp, art) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let mut child = build(tmp.path(), art.path()).spawn().unwrap();
            std::thread::sleep(at);
            sigint(&child);
            let (code, stderr) = wait_for(&mut child, Duration::from_secs(60));
            // The phase that was running: the last progress line naming one.
            let phase = stderr
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("pare build: "))
                .and_then(|l| l.split(':').next())
                .unwrap_or("start")
                .to_string();
            phases_hit.push(format!("{:.2}s→{phase}({code:?})", at.as_secs_f64()));
            assert!(
                code == Some(130) || code == Some(0),
                "{runtime} run {i} at {at:?}: exit {code:?}\n{stderr}"
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
            let left = leftovers(tmp.path(), &[SMALL, &tag]);
            let _ = docker(&["rmi", "-f", &tag]);
            assert_eq!(
                left,
                nothing_left(),
                "{runtime} run {i}, interrupted at {at:?} (in {phase}): left behind"
            );
            assert!(
                temps_of(art.path(), child.id()).is_empty(),
                "temps in the artifacts dir"
            );
        }
        eprintln!("{runtime}: full build {full:?}; interrupted {phases_hit:?}");
    }
}

#[test]
fn dockerd_going_away_mid_build_gives_a_clear_error() {
    let _serial = serial();
    let proxy = DaemonProxy::start();
    let tag = "pare-test/faults-dockerd-gone:slim";
    let art = tempfile::tempdir().unwrap();
    let before: Vec<String> = leftovers(art.path(), &[SMALL]).containers;
    let mut child = pare()
        .args(["build", SMALL, "--runtime", "docker", "--tag", tag])
        .arg("--artifacts")
        .arg(art.path())
        .env("DOCKER_HOST", proxy.host())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Cut once the profile container runs (seen through the real daemon): mid-profile.
    let t = Instant::now();
    let mut started = Vec::new();
    while t.elapsed() < Duration::from_secs(60) && started.is_empty() {
        let o = docker(&[
            "ps",
            "--filter",
            &format!("ancestor={SMALL}"),
            "--filter",
            "status=running",
            "--format",
            "{{.ID}} {{.Names}}",
        ]);
        started = text(&o.stdout)
            .lines()
            .filter(|c| !before.iter().any(|b| b == c))
            .map(str::to_string)
            .collect();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!started.is_empty(), "the profile container never started");
    proxy.cut();
    let cut_at = Instant::now();
    let (code, stderr) = wait_for(&mut child, Duration::from_secs(120));
    let took = cut_at.elapsed();
    // The container pare could no longer remove (its daemon was gone) is ours to clean up.
    for c in leftovers(art.path(), &[SMALL]).containers {
        if !before.contains(&c) {
            let id = c.split(' ').next().unwrap_or_default().to_string();
            let _ = docker(&["rm", "-f", &id]);
        }
    }
    let _ = docker(&["rmi", "-f", tag]);
    assert_eq!(code, Some(2), "{stderr}");
    let errs = error_lines(&stderr);
    assert_eq!(errs.len(), 1, "{stderr}");
    assert!(
        errs[0].to_lowercase().contains("docker") && errs[0].contains(&proxy.host()),
        "the error should name the daemon it lost: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        took < Duration::from_secs(60),
        "pare took {took:?} to notice"
    );
    eprintln!("after {took:?}: {}", errs[0]);
}

#[test]
fn four_builds_at_once_do_not_collide_and_all_verify() {
    let _serial = serial();
    let images = ["musl-busybox", "shell-entrypoint", "go-server", "cli-job"];
    // One shared TMPDIR and working directory, separate artifacts and tags.
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let runs: Vec<(&str, String, tempfile::TempDir, Child)> = images
        .iter()
        .map(|name| {
            let tag = format!("pare-test/faults-concurrent-{name}:slim");
            let art = tempfile::tempdir().unwrap();
            let child = pare()
                .args(["build", &format!("pare-example/{name}"), "--tag", &tag])
                .args(["--timeout", "180", "--artifacts"])
                .arg(art.path())
                .env("TMPDIR", tmp.path())
                .current_dir(cwd.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (*name, tag, art, child)
        })
        .collect();
    let mut digests = Vec::new();
    let mut failures = Vec::new();
    for (name, tag, art, child) in runs {
        let o = child.wait_with_output().unwrap();
        let report: serde_json::Value = std::fs::read(art.path().join("report.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let id = text(&docker(&["image", "inspect", "-f", "{{.Id}}", &tag]).stdout);
        let _ = docker(&["rmi", "-f", &tag]);
        if o.status.code() != Some(0) || !text(&o.stdout).contains("verification (passed)") {
            failures.push(format!(
                "{tag}: exit {:?}\n{}\n{}",
                o.status.code(),
                text(&o.stdout),
                text(&o.stderr)
            ));
            continue;
        }
        // The report is this build's own: it names its own source image.
        let src = report["source"]["reference"].as_str().unwrap_or_default();
        assert!(
            src.contains(&format!("pare-example/{name}")),
            "{tag}: its report is another build's ({src})"
        );
        digests.push((tag, id.trim().to_string()));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let mut ids: Vec<&String> = digests.iter().map(|(_, d)| d).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), images.len(), "slim images collided: {digests:?}");
    let left = leftovers(tmp.path(), &[]);
    assert_eq!(left, nothing_left(), "left behind in the shared TMPDIR");
    let cwd_left: Vec<_> = std::fs::read_dir(cwd.path()).unwrap().flatten().collect();
    assert!(
        cwd_left.is_empty(),
        "written into the working directory: {cwd_left:?}"
    );
}
