//! Ctrl-C on every event of a build, dockerd going away, concurrent builds.

use super::*;

/// An event of a build that a Ctrl-C is delivered on: its work dir appearing in TMPDIR, or a
/// progress line (`-v`: phase ends, containers starting, waits), named without its timing.
fn event_key(line: &str) -> Option<String> {
    let rest = line.strip_prefix("pare build: ")?;
    // `profile done in 1.4s (docker)` → `profile done`: the same event in every run.
    Some(match rest.split_once(" in ") {
        Some((head, _)) if head.ends_with(" done") => head.to_string(),
        _ => rest.trim().to_string(),
    })
}

const WORK_DIR_APPEARS: &str = "(work dir appears)";

/// Sends SIGINT to `child` on `event`: when a `pare-build-*` dir appears in `tmp`, or when
/// its stderr (read by a thread that collects it) shows the progress line. Returns whether
/// the event came (the build may have ended first) and the whole stderr once it exits.
fn interrupt_on(
    child: &mut Child,
    tmp: &Path,
    event: &str,
) -> (bool, std::thread::JoinHandle<String>) {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let seen = if event == WORK_DIR_APPEARS {
        let appeared = || {
            std::fs::read_dir(tmp).is_ok_and(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with("pare-build-"))
            })
        };
        // Watch the directory until the dir shows up or the build is over.
        loop {
            if appeared() {
                break true;
            }
            if child.try_wait().unwrap().is_some() {
                break false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    } else {
        rx.iter().any(|l| event_key(&l).as_deref() == Some(event))
    };
    if seen {
        sigint(child);
    }
    (seen, reader)
}

#[test]
fn ctrl_c_on_every_event_of_every_phase_leaves_nothing_behind() {
    let _serial = serial();
    for runtime in ["docker", "embedded"] {
        let tag = test_image(&format!("faults-ctrl-c:{runtime}"));
        let build = |tmp: &Path, art: &Path| {
            let mut c = pare();
            c.args(["-v", "build", SMALL, "--runtime", runtime, "--tag", &tag])
                .arg("--artifacts")
                .arg(art)
                .env("TMPDIR", tmp)
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            c
        };
        // A whole build: its events, in order, are where the interrupts go.
        let (tmp, art) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let o = build(tmp.path(), art.path()).output().unwrap();
        let stderr = text(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{stderr}");
        let _ = docker(&["rmi", "-f", &tag]);
        let mut events = vec![WORK_DIR_APPEARS.to_string()];
        events.extend(stderr.lines().filter_map(event_key));
        assert!(
            events.iter().any(|e| e == "profile done") && events.iter().any(|e| e == "verify done"),
            "{runtime}: no phase lines in\n{stderr}"
        );
        let mut outcomes = Vec::new();
        let mut after_verify = false;
        for event in &events {
            after_verify |= event == "verify done";
            let (tmp, art) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let mut child = build(tmp.path(), art.path()).spawn().unwrap();
            let (seen, reader) = interrupt_on(&mut child, tmp.path(), event);
            let (code, _) = wait_for(&mut child, Duration::from_secs(60));
            let stderr = reader.join().unwrap();
            assert!(seen, "{runtime}: the event {event:?} never came\n{stderr}");
            outcomes.push(format!("{event}→{code:?}"));
            // The build may finish on its own before the signal lands only once it has made
            // and verified everything (analyze, gzip and the report take a moment).
            assert!(
                code == Some(130) || code == Some(0) && after_verify,
                "{runtime}, Ctrl-C on {event:?}: exit {code:?}\n{stderr}"
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
            let left = leftovers(tmp.path(), &[SMALL, &tag]);
            let _ = docker(&["rmi", "-f", &tag]);
            assert_eq!(
                left,
                nothing_left(),
                "{runtime}, Ctrl-C on {event:?}: left behind\n{stderr}"
            );
            assert!(
                temps_of(art.path(), child.id()).is_empty(),
                "temps in the artifacts dir"
            );
        }
        eprintln!("{runtime}: interrupted on {outcomes:?}");
    }
}

#[test]
fn dockerd_going_away_mid_build_gives_a_clear_error() {
    let _serial = serial();
    let proxy = DaemonProxy::start();
    let tag = &test_image("faults-dockerd-gone:slim");
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
            let tag = test_image(&format!("faults-concurrent-{name}:slim"));
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
