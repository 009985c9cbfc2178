//! Profile runs against the fake runtime: crawl, jobs, probes, stability, overrides, --continue-after.

use super::*;

#[test]
fn web_app_is_crawled_and_artifacts_are_written() {
    let s = setup(Behaviour::Web, WEB_FULL);
    let r = s.run("fake/app:1").unwrap();

    assert!(s.cleaned(), "the container is removed");
    let spec = s.seen()[0].clone();
    assert_eq!(spec.command, vec!["/usr/bin/app", "--serve"]);
    assert_eq!(
        (
            spec.user.as_str(),
            spec.workdir.as_str(),
            spec.ports.clone()
        ),
        ("app", "/srv", vec![8080])
    );
    assert_eq!(spec.source, Target::Daemon("fake/app:1".into()));
    assert!(spec.sensor.as_ref().unwrap().fanotify);

    let paths: Vec<String> = r
        .profile
        .probes
        .iter()
        .map(|p| match &p.spec {
            ProbeSpec::Http { path, .. } => path.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(paths, vec!["/", "/docs"]);
    assert!(
        r.profile
            .probes
            .iter()
            .all(|p| p.outcome.http_status == Some(200))
    );
    assert!(r.failed_probes().is_empty());

    // profile.json round-trips and carries the sensor report.
    let written: Profile =
        serde_json::from_slice(&std::fs::read(&r.artifacts.profile_json).unwrap()).unwrap();
    assert_eq!(written, r.profile);
    assert_eq!(written.image.exposed_ports, vec!["8080/tcp"]);
    assert!(written.sensor.files.contains_key("/etc/app.conf"));
    assert_eq!(written.runtime, "fake");
    // seccomp.json is a valid OCI seccomp profile with the observed calls.
    let sc: LinuxSeccomp =
        serde_json::from_slice(&std::fs::read(&r.artifacts.seccomp_json).unwrap()).unwrap();
    assert!(
        sc.syscalls().as_ref().unwrap()[0]
            .names()
            .contains(&"accept4".to_string())
    );
    // apparmor.profile has file rules by access kind.
    let aa = std::fs::read_to_string(&r.artifacts.apparmor_profile).unwrap();
    assert!(aa.contains("\"/usr/bin/app{,/}\" mrix,"), "{aa}");
    assert!(aa.contains("\"/etc/app.conf{,/}\" r,"));
    assert!(!aa.contains("localtime"));
    // The stability run: a second, untraced container; /docs names its container, so its
    // body is volatile, while / is the same in both.
    let seen = s.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen[1].sensor.is_none());
    assert!(r.profile.probes[0].outcome.volatile.is_empty());
    assert_eq!(
        r.profile.probes[1].outcome.volatile,
        vec!["body".to_string()]
    );
    assert!(
        r.profile
            .sensor
            .notices
            .iter()
            .any(|n| n.contains("differ between containers") && n.contains("/docs"))
    );
    let summary = r.summary();
    assert!(
        summary.contains("GET http:8080/docs") && summary.contains("profile.json"),
        "{summary}"
    );
    // The untraced run also times the start-up, set against the traced one.
    assert!(r.timings.untraced_startup.is_some());
    assert!(summary.contains("untraced (sensor "), "{summary}");
}

#[test]
fn job_without_ports_runs_to_completion() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(Behaviour::Job);
    let img = image(r#"{"Cmd":["/usr/bin/app","--once"]}"#);
    let r = run_profile(
        &img,
        "fake/job:1",
        Target::Rootfs(dir.path().into()),
        &rt,
        Path::new("/sensor"),
        &opts(&dir.path().join("o")),
    )
    .unwrap();
    assert_eq!(r.profile.probes.len(), 1);
    assert_eq!(r.profile.probes[0].spec, ProbeSpec::Job);
    assert_eq!(r.profile.probes[0].outcome.exit_code, Some(0));
    assert_eq!(
        r.profile.probes[0].outcome.body_digest.as_deref(),
        Some(pare_probe::digest(b"job done\n").as_str())
    );
    assert_eq!(r.profile.sensor.exit.as_ref().unwrap().code, 0);
    assert!(matches!(
        rt.seen.lock().unwrap()[0].source,
        Target::Rootfs(_)
    ));
}

#[test]
fn explicit_probes_replace_the_defaults() {
    let mut s = setup(Behaviour::Web, WEB);
    s.o.http_probes = vec![
        pare_probe::parse_http_flag("GET:/health").unwrap(),
        pare_probe::parse_http_flag("GET:/x:9090").unwrap(),
    ];
    s.o.exec = vec!["apptool --version".into()];
    s.o.continue_after = ContinueAfter::Seconds(0);
    let r = s.run("fake/app:1").unwrap();
    let descr: Vec<String> = r
        .profile
        .probes
        .iter()
        .map(|p| pare_probe::describe(&p.spec))
        .collect();
    assert_eq!(
        descr,
        vec![
            "GET http:8080/health",
            "GET http:9090/x",
            "exec apptool --version"
        ]
    );
    // A port named only by a probe is published too.
    assert_eq!(s.seen()[0].ports, vec![8080, 9090]);
    assert_eq!(r.profile.probes[2].outcome.exit_code, Some(0));
    // The exec probe ran under a second sensor: its files and syscalls are in the profile, and
    // the record keeps the plain command (that is what a replay runs).
    assert_eq!(
        r.profile.probes[2].spec,
        ProbeSpec::Exec {
            argv: vec!["apptool".into(), "--version".into()]
        }
    );
    assert_eq!(
        r.profile.probes[2].outcome.body_digest.as_deref(),
        Some(pare_probe::digest(b"apptool --version").as_str())
    );
    assert!(
        r.profile
            .sensor
            .files
            .get("/usr/bin/apptool")
            .is_some_and(|f| f.kinds.contains(&AccessKind::Exec))
    );
    assert!(
        r.profile.sensor.syscalls.contains("uname"),
        "merged syscalls"
    );
}

#[test]
fn exec_only_probes_still_wait_for_the_service() {
    let mut s = setup(Behaviour::Web, WEB);
    s.o.exec = vec!["app --check".into()];
    let r = s.run("fake/app:1").unwrap();
    assert!(
        r.readiness.contains("port 8080 answered"),
        "{}",
        r.readiness
    );
    assert_eq!(r.profile.probes.len(), 1);
}

#[test]
fn stability_run_can_be_skipped() {
    let mut s = setup(Behaviour::Web, WEB);
    s.o.stability_run = false;
    let r = s.run("fake/app:1").unwrap();
    assert_eq!(s.seen().len(), 1);
    assert!(
        r.profile
            .probes
            .iter()
            .all(|p| p.outcome.volatile.is_empty())
    );
    assert_eq!(r.timings.untraced_startup, None);
    assert!(!r.summary().contains("start-up"));
}

#[test]
fn a_service_override_changes_what_runs_under_the_sensor() {
    let mut s = setup(Behaviour::Web, WEB_FULL);
    s.o.run_override = Some(RunOverride {
        command: Some(vec!["--worker".into()]),
        env: vec!["A=2".into()],
        user: Some("1000".into()),
        workdir: Some("/data".into()),
        ..Default::default()
    });
    s.run("fake/app:1").unwrap();
    let spec = s.seen()[0].clone();
    assert_eq!(spec.command, vec!["/usr/bin/app", "--worker"]);
    assert_eq!(spec.env, vec!["A=2"]);
    assert_eq!(
        (spec.user.as_str(), spec.workdir.as_str()),
        ("1000", "/data")
    );
}

#[test]
fn continue_after_exit_stops_an_app_that_never_exits_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    // Profiles with `--continue-after WHEN`; returns the notices and how long it took.
    let run = |b: Behaviour, config: &str, when: &str| {
        let rt = runtime(b);
        let mut o = opts(&dir.path().join(when));
        o.continue_after = when.parse().unwrap();
        o.stability_run = false;
        let t = Instant::now();
        let r = profile_on(&rt, &image(config), "fake/app:1", &o).unwrap();
        assert!(
            rt.cleaned.load(Ordering::SeqCst),
            "the container is removed"
        );
        (r.profile.sensor.notices, t.elapsed())
    };
    let (notes, waited) = run(Behaviour::Web, WEB, "exit:1");
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    assert!(waited < Duration::from_secs(20), "{waited:?}");
    assert!(
        notes
            .iter()
            .any(|n| n.contains("--continue-after exit") && n.contains("after 1s")),
        "{notes:?}"
    );
    // A job that exits by itself before the limit ends the wait early, with no such notice.
    let (notes, waited) = run(Behaviour::Job, r#"{"Cmd":["/usr/bin/job"]}"#, "exit:300");
    assert!(waited < Duration::from_secs(60), "{waited:?}");
    assert!(
        !notes.iter().any(|n| n.contains("--continue-after")),
        "{notes:?}"
    );
}
