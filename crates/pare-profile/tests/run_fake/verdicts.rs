//! Sound verdicts: clear errors, apps that exit early, unused EXPOSE, refused probes.

use super::*;

/// An HTTP app with port 80 exposed too (where the fake serves nothing).
const WEB_80_8080: &str = r#"{"Cmd":["/usr/bin/app"],"ExposedPorts":{"80/tcp":{},"8080/tcp":{}}}"#;

#[test]
fn missing_report_and_missing_command_are_clear_errors() {
    let s = setup(Behaviour::NoReport, WEB);
    let e = s.run("fake/app:1").unwrap_err().to_string();
    assert!(s.cleaned(), "cleaned up on error too");
    assert!(
        e.contains("sensor.json") && e.contains("fatal: no config"),
        "{e}"
    );
    let e = profile_on(&runtime(Behaviour::Web), &image("{}"), "fake/empty", &s.o)
        .unwrap_err()
        .to_string();
    assert!(e.contains("fake/empty") && e.contains("ENTRYPOINT"), "{e}");
}

#[test]
fn an_app_that_exits_before_its_ports_answer_is_an_error_with_its_log() {
    let mut s = setup(
        Behaviour::ExitEarly,
        r#"{"Cmd":["/usr/bin/app"],"ExposedPorts":{"5672/tcp":{}}}"#,
    );
    let e = s.run("fake/broker:1").unwrap_err();
    assert!(matches!(e, ProfileError::NotReady { .. }), "{e:?}");
    assert!(e.hint().is_some_and(|h| h.contains("--job")), "{e:?}");
    let e = e.to_string();
    assert!(
        e.contains("fake/broker:1")
            && e.contains("exited with code 0")
            && e.contains("port 5672 answered")
            && e.contains("| app: fatal: no config"),
        "{e}"
    );
    assert!(s.cleaned());
    assert!(
        !s.dir.path().join("o/profile.json").exists(),
        "no profile of a broken run"
    );

    // Declared a job: its run to completion is the behaviour.
    s.o.job = true;
    let r = profile_on(
        &runtime(Behaviour::ExitEarly),
        &s.img,
        "fake/broker:1",
        &s.o,
    )
    .unwrap();
    assert_eq!(r.profile.probes.len(), 1);
    assert_eq!(r.profile.probes[0].spec, ProbeSpec::Job);
    assert_eq!(r.profile.probes[0].outcome.exit_code, Some(0));
    assert!(r.failed_probes().is_empty());
    let run = r.profile.run.as_ref().unwrap();
    assert!(run.job);
    assert!(matches!(run.after_probes, Some(pare_trace::AppState::Exited(ref e)) if e.code == 0));
}

#[test]
fn an_unused_expose_is_a_finding_not_a_wait() {
    let mut s = setup(Behaviour::WebBut(80), WEB_80_8080);
    s.o.timeout = Duration::from_secs(30);
    let t = Instant::now();
    let r = s.run("fake/web:1").unwrap();
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
    let run = r.profile.run.as_ref().unwrap();
    assert_eq!(
        run.findings,
        vec!["EXPOSE 80/tcp: nothing listens".to_string()]
    );
    assert_eq!(run.unused_exposed, vec!["80/tcp".to_string()]);
    assert_eq!(run.ports.get(&8080).map(String::as_str), Some("http"));
    assert_eq!(run.after_probes, Some(pare_trace::AppState::Running));
    // Nothing probes the unused port, so nothing records a refusal as the behaviour.
    assert!(r.profile.probes.iter().all(|p| p.spec.port() == Some(8080)));
    assert!(r.failed_probes().is_empty());
    let summary = r.summary();
    assert!(
        summary.contains("finding   EXPOSE 80/tcp: nothing listens")
            && summary.contains("stopped waiting for 80/tcp")
            && summary.contains("still running"),
        "{summary}"
    );
    // The finding is in profile.json too.
    let written: Profile =
        serde_json::from_slice(&std::fs::read(&r.artifacts.profile_json).unwrap()).unwrap();
    assert_eq!(written.run, r.profile.run);
    // The untraced stability run waited for 8080 only.
    assert!(r.timings.untraced_startup.is_some());
}

#[test]
fn a_refused_probe_fails_the_profile_unless_the_port_is_declared_closed() {
    let mut s = setup(Behaviour::WebBut(80), WEB_80_8080);
    s.o.expect_closed = vec![80];
    let r = s.run("fake/web:1").unwrap();
    let tcp80 = r
        .profile
        .probes
        .iter()
        .find(|p| p.spec == ProbeSpec::Tcp { port: 80 })
        .expect("the declared port is probed");
    assert_eq!(tcp80.outcome.connected, Some(false));
    assert!(r.failed_probes().is_empty(), "{}", r.summary());
    assert!(r.profile.run.as_ref().unwrap().findings.is_empty());

    // The same record without the declaration is no evidence: the profile fails (exit 1).
    let mut undeclared = r.clone();
    undeclared
        .profile
        .run
        .as_mut()
        .unwrap()
        .expected_closed
        .clear();
    let failed = undeclared.failed_probes();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].spec, ProbeSpec::Tcp { port: 80 });
    let summary = undeclared.summary();
    assert!(
        summary.contains("✗ tcp :80") && summary.contains("--expect-closed 80"),
        "{summary}"
    );
}
