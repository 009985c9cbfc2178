//! The docker runtime: jobs, services, ports, sensor, clean-up, async callers.

use super::*;

#[test]
#[ignore = "needs docker"]
fn docker_concurrent_starts() {
    concurrent(&docker());
}

#[test]
#[ignore = "needs docker"]
fn docker_batch_job() {
    batch_job(&docker());
}

#[test]
#[ignore = "needs docker"]
fn docker_service_exec_stop() {
    service(&docker());
}

#[test]
#[ignore = "needs docker"]
fn docker_port_forwarding() {
    port(&docker());
}

#[test]
#[ignore = "needs docker"]
fn docker_with_sensor() {
    with_sensor(&docker(), false);
    with_sensor(&docker(), true);
}

#[test]
#[ignore = "needs docker"]
fn docker_cleanup_leaves_nothing() {
    let d = docker();
    let c = d
        .start_container(&spec(&d, &["/bin/sleep", "300"]))
        .unwrap();
    let id = c.id().to_string();
    assert!(
        d.list_labelled().unwrap().contains(&id),
        "labelled io.pare.run=1"
    );
    c.cleanup().unwrap();
    assert!(
        !d.list_labelled().unwrap().contains(&id),
        "removed by cleanup"
    );
    c.cleanup().unwrap();
    let c = d
        .start_container(&spec(&d, &["/bin/sleep", "300"]))
        .unwrap();
    let id = c.id().to_string();
    drop(c);
    assert!(!d.list_labelled().unwrap().contains(&id), "removed on drop");
    // A failing start names the image.
    let mut s = spec(&d, &["/bin/true"]);
    s.source = RunSource::Daemon("pare-test/does-not-exist:never".into());
    let err = d.start(&s).err().expect("no such image").to_string();
    assert!(err.contains("pare-test/does-not-exist:never"), "{err}");
    // A root filesystem is the embedded runtime's kind of source: refused, typed.
    s.source = RunSource::Rootfs("/some/rootfs".into());
    let err = d.start(&s).err().expect("not a daemon image");
    assert!(
        matches!(
            &err,
            RuntimeError::UnsupportedSource { runtime: "docker", given } if *given == s.source
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the docker runtime cannot run a root filesystem /some/rootfs"
    );
}

/// The sync API works (and drops cleanly) when called from inside a caller's tokio runtime.
#[test]
#[ignore = "needs docker"]
fn docker_from_async_context() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let d = docker();
        let c = d
            .start(&spec(&d, &["/bin/sh", "-c", "echo async"]))
            .unwrap();
        assert_eq!(c.wait(Duration::from_secs(30)).unwrap().unwrap().code, 0);
        assert_eq!(c.logs().unwrap().0, b"async\n");
        drop(c);
        drop(d);
    });
}
