//! The embedded runtime: jobs, services, ports, isolation, clean-up, setup errors, overlay, sensor.

use super::*;

#[test]
#[ignore = "needs root"]
fn embedded_concurrent_starts() {
    if !have_rootfs() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    concurrent(&embedded(tmp.path()));
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
#[ignore = "needs root"]
fn embedded_batch_job() {
    if !have_rootfs() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    batch_job(&embedded(tmp.path()));
}

#[test]
#[ignore = "needs root"]
fn embedded_service_exec_stop() {
    if !have_rootfs() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    service(&embedded(tmp.path()));
}

#[test]
#[ignore = "needs root"]
fn embedded_port_forwarding() {
    if !have_rootfs() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    port(&embedded(tmp.path()));
}

#[test]
#[ignore = "needs root"]
fn embedded_never_writes_into_rootfs_and_isolates() {
    if !have_rootfs() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let rt = embedded(tmp.path());
    let marker = format!("pare-test-{}", std::process::id());
    let c = rt
        .start(&spec(&rt, &[
            "/bin/sh",
            "-c",
            &format!(
                "echo x > /{marker}; echo y > /etc/{marker}; rm -f /etc/debian_version; \
                 cat /proc/1/cmdline | tr '\\0' ' '; echo; cat /sys/class/net/lo/operstate; ls /dev; \
                 grep -c . /proc/net/dev; grep CapBnd /proc/self/status"
            ),
        ]))
        .unwrap();
    let exit = c.wait(Duration::from_secs(30)).unwrap().unwrap();
    let (out, err) = c.logs().unwrap();
    let out = String::from_utf8_lossy(&out);
    assert_eq!(exit.code, 0, "{out} {}", String::from_utf8_lossy(&err));
    // PID 1 is our command, lo is up, /dev is minimal, only lo exists, caps are Docker's.
    assert!(out.starts_with("/bin/sh -c"), "{out}");
    assert!(
        out.contains("\nunknown\n") || out.contains("\nup\n"),
        "{out}"
    );
    assert!(
        out.contains("null")
            && out.contains("urandom")
            && out.contains("pts")
            && !out.contains("sda"),
        "{out}"
    );
    assert!(
        out.contains("\n3\n"),
        "only header lines + lo in /proc/net/dev: {out}"
    );
    assert!(out.contains("CapBnd:\t00000000a80425fb"), "{out}");
    c.cleanup().unwrap();
    let rootfs = rootfs();
    assert!(!rootfs.join(&marker).exists());
    assert!(!rootfs.join("etc").join(&marker).exists());
    assert!(rootfs.join("etc/debian_version").exists());
}

#[test]
#[ignore = "needs root"]
fn embedded_cleanup_leaves_nothing() {
    if !have_rootfs() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let rt = embedded(tmp.path());
    let c = rt.start(&spec(&rt, &["/bin/sleep", "303"])).unwrap();
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "one run dir while running"
    );
    let dir = std::fs::read_dir(tmp.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(
        mounts_mentioning(&dir),
        0,
        "mounts live only in the container's mount ns"
    );
    assert_eq!(sleepers(b"/bin/sleep\x00303\x00"), 1);
    c.cleanup().unwrap();
    let err = c
        .exec(&sv(&["true"]), Duration::from_secs(5))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cleaned up") || err.contains("exited"),
        "{err}"
    );
    drop(c);
    assert!(!dir.exists(), "temp dir removed");
    assert_eq!(mounts_mentioning(tmp.path()), 0);
    assert_eq!(
        sleepers(b"/bin/sleep\x00303\x00"),
        0,
        "namespace processes gone"
    );
}

#[test]
#[ignore = "needs root"]
fn embedded_setup_errors_are_reported() {
    if !have_rootfs() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let rt = embedded(tmp.path());
    let err = rt
        .start(&spec(&rt, &["/no/such/binary"]))
        .err()
        .expect("start fails")
        .to_string();
    assert!(err.contains("/no/such/binary"), "{err}");
    let mut s = spec(&rt, &["/bin/true"]);
    s.source = RunSource::Daemon(IMAGE.into());
    let err = rt.start(&s).err().expect("a daemon image is docker's");
    assert!(
        matches!(
            err,
            RuntimeError::UnsupportedSource {
                runtime: "embedded",
                ..
            }
        ),
        "{err:?}"
    );
    s = spec(&rt, &["/bin/true"]);
    s.user = "no-such-user".into();
    let err = rt.start(&s).err().expect("start fails").to_string();
    assert!(err.contains("no-such-user"), "{err}");
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "temp dirs removed after failures"
    );
}

/// pare build's overlay of a local daemon's layers: the top layer wins, a whiteout hides a
/// lower file, nothing is writable, and the mount is gone after drop.
#[test]
#[ignore = "needs root"]
fn read_only_overlay_of_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let (top, low, mnt) = (
        tmp.path().join("top"),
        tmp.path().join("low"),
        tmp.path().join("m"),
    );
    for d in [&top, &low, &mnt] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::write(low.join("a"), "low").unwrap();
    std::fs::write(low.join("gone"), "x").unwrap();
    std::fs::write(top.join("a"), "top").unwrap();
    nix::sys::stat::mknod(
        &top.join("gone"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .unwrap();
    let m = pare_runtime::embedded::ReadOnlyOverlay::mount(&[top, low], &mnt).unwrap();
    assert_eq!(std::fs::read_to_string(mnt.join("a")).unwrap(), "top");
    assert!(!mnt.join("gone").exists());
    assert!(std::fs::write(mnt.join("new"), "x").is_err(), "read-only");
    assert_eq!(mounts_mentioning(&mnt), 1);
    drop(m);
    assert_eq!(mounts_mentioning(&mnt), 0);
}

#[test]
#[ignore = "needs root"]
fn embedded_with_sensor() {
    if !have_rootfs() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    with_sensor(&embedded(tmp.path()), false);
    with_sensor(&embedded(tmp.path()), true);
}
