//! The image config and the inputs: symlinks, excludes, entrypoints, scripts, traced paths,
//! package databases of other distributions, run-time paths.

use super::*;

#[test]
fn hostile_symlinks_stay_inside() {
    let t = tempfile::tempdir().unwrap();
    let outer = t.path();
    // A secret next to (outside) the rootfs.
    write(outer, "/etc/passwd", b"HOST");
    let root = outer.join("rootfs");
    write(&root, "/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n");
    link(&root, "/app/evil", "/../../etc/passwd");
    link(&root, "/app/evil2", "../../../../../../../etc/passwd");
    link(&root, "/app/outside", "../../secret");
    link(&root, "/app/loop", "loop");
    let inputs = SelectInputs {
        traced: traced(&[
            "/app/evil",
            "/app/evil2",
            "/app/outside",
            "/app/loop",
            "/../../etc/passwd",
        ]),
        ..Default::default()
    };
    let sel = select(&root, &inputs).unwrap();
    assert!(has(&sel, "/app/evil") && has(&sel, "/app/evil2") && has(&sel, "/app/outside"));
    assert!(
        sel.entries["/etc/passwd"]
            .reasons
            .iter()
            .any(|r| matches!(r, Reason::Traced { .. }))
    );
    assert!(!has(&sel, "/secret"));
    for p in sel.entries.keys() {
        assert!(p.starts_with('/') && !p.contains(".."), "{p}");
    }
    assert!(
        sel.warnings.iter().any(|w| w.contains("symbolic links")),
        "{:?}",
        sel.warnings
    );
}

#[test]
fn excludes_remove_and_preserve_wins() {
    let Some(root) = bookworm() else { return };
    let base = SelectInputs {
        include_bins: vec!["/usr/bin/bash".into()],
        include_paths: vec!["/usr/share/doc/bash".into(), "/etc/*.conf".into()],
        ..Default::default()
    };
    let sel = select(&root, &base).unwrap();
    assert!(has(&sel, "/usr/share/doc/bash/copyright"));
    assert!(has(&sel, "/etc/adduser.conf") || has(&sel, "/etc/debconf.conf"));

    let sel = select(
        &root,
        &SelectInputs {
            excludes: vec![
                "/usr/share/doc".into(),
                "/usr/lib/x86_64-linux-gnu/libtinfo*".into(),
            ],
            ..base.clone()
        },
    )
    .unwrap();
    assert!(!sel.entries.keys().any(|p| p.starts_with("/usr/share/doc/")));
    assert!(!has(&sel, "/usr/lib/x86_64-linux-gnu/libtinfo.so.6.4"));
    assert_eq!(
        sel.excluded
            .get("/usr/lib/x86_64-linux-gnu/libtinfo.so.6.4")
            .map(String::as_str),
        Some("/usr/lib/x86_64-linux-gnu/libtinfo*")
    );
    assert!(has(&sel, "/usr/bin/bash"));

    let sel = select(
        &root,
        &SelectInputs {
            excludes: vec!["/usr/share/doc".into()],
            preserve_paths: vec!["/usr/share/doc/bash".into()],
            ..base.clone()
        },
    )
    .unwrap();
    assert!(
        has(&sel, "/usr/share/doc/bash/copyright"),
        "preserve beats exclude"
    );
    assert!(
        select(
            &root,
            &SelectInputs {
                excludes: vec!["[".into()],
                ..Default::default()
            }
        )
        .is_err()
    );
}

#[test]
fn config_entrypoint_script_healthcheck_and_user() {
    let Some(root) = bookworm() else { return };
    // A synthetic layer on top of bookworm: copy nothing, use a scratch root with symlinks
    // would hide the point; instead use bookworm's own script `/usr/bin/which` (#!/bin/sh).
    let facts = ImageFacts {
        user: Some("nobody".into()),
        workdir: Some("/var/tmp".into()),
        volumes: vec!["/var/cache".into()],
        entrypoint: vec!["which".into()],
        cmd: vec!["ls".into()],
        healthcheck: Some(vec![
            "CMD-SHELL".into(),
            "cat /etc/hostname || exit 1".into(),
        ]),
        env: vec!["PATH=/usr/local/bin:/usr/bin:/bin".into()],
    };
    let sel = select(
        &root,
        &SelectInputs {
            facts,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(has(&sel, "/usr/bin/which.debianutils") || has(&sel, "/usr/bin/which"));
    // which is a #!/bin/sh script → the shell and its libraries.
    assert!(has(&sel, "/usr/bin/dash"), "shebang interpreter");
    assert!(has(&sel, "/usr/bin/cat"), "healthcheck command");
    assert!(has(&sel, "/usr/lib/x86_64-linux-gnu/libc.so.6"));
    assert!(has(&sel, "/var/tmp") && has(&sel, "/var/cache"));
    assert!(
        has(&sel, "/nonexistent") || !root.join("nonexistent").exists(),
        "nobody's home"
    );
    assert!(has(&sel, "/tmp"));
    assert!(
        matches!(&sel.entries["/usr/bin/cat"].reasons[0], Reason::ImageConfig { field, .. } if field == "Healthcheck")
    );
}

#[test]
fn env_shebang_and_zoneinfo() {
    let Some(root) = bookworm() else { return };
    // Traced: a zone file read through /etc/localtime; a script with `#!/usr/bin/env bash`
    // is simulated with bookworm's own files by tracing /usr/bin/env-script absent → use
    // a synthetic overlay dir next to it.
    let t = Root::new();
    let r = t.path();
    t.dirs(&["/usr/bin", "/usr/lib", "/usr/share/zoneinfo/Europe", "/etc"])
        .link("/bin", "usr/bin")
        .link("/lib", "usr/lib")
        .copy_from(&root, &["/usr/bin/env", "/usr/bin/bash"])
        .file_mode(
            "/usr/bin/run.sh",
            b"#!/usr/bin/env -S bash -e\necho hi\n",
            0o755,
        )
        .file("/usr/share/zoneinfo/Europe/Berlin", b"TZif")
        .file("/usr/share/zoneinfo/UTC", b"TZif")
        .file("/usr/share/zoneinfo/zone1970.tab", b"tab")
        .file("/usr/share/zoneinfo/Europe/Paris", b"TZif")
        .link("/etc/localtime", "/usr/share/zoneinfo/Europe/Berlin");
    let inputs = SelectInputs {
        traced: traced(&["/bin/run.sh", "/etc/localtime"]),
        ..Default::default()
    };
    let sel = select(r, &inputs).unwrap();
    assert!(
        has(&sel, "/usr/bin/env") && has(&sel, "/usr/bin/bash"),
        "{:?}",
        sel.entries.keys()
    );
    assert!(matches!(
        &sel.entries["/usr/bin/bash"].reasons[0],
        Reason::Shebang { .. }
    ));
    assert!(has(&sel, "/etc/localtime") && has(&sel, "/usr/share/zoneinfo/Europe/Berlin"));
    assert!(has(&sel, "/usr/share/zoneinfo/UTC") && has(&sel, "/usr/share/zoneinfo/zone1970.tab"));
    assert!(!has(&sel, "/usr/share/zoneinfo/Europe/Paris"));
}

#[test]
fn traced_inputs_skip_missing_and_pseudo() {
    let Some(root) = bookworm() else { return };
    let mut t = traced(&["/bin/ls", "/proc/self/maps", "/dev/null", "/etc/hostname"]);
    t.insert(
        "/etc/nope".into(),
        FileRecord {
            found: false,
            missing: true,
            ..Default::default()
        },
    );
    let sel = select(
        &root,
        &SelectInputs {
            traced: t,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(has(&sel, "/bin") && has(&sel, "/usr/bin/ls"));
    assert!(
        has(&sel, "/usr/lib/x86_64-linux-gnu/libselinux.so.1"),
        "ls's DT_NEEDED"
    );
    assert!(
        !sel.entries
            .keys()
            .any(|p| p.starts_with("/proc") || p.starts_with("/dev"))
    );
    // Not even by --include-path: the runtime provides them.
    let dev = select(
        &root,
        &SelectInputs {
            include_paths: vec!["/dev".into(), "/d*/null".into()],
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        !dev.entries.keys().any(|p| p.starts_with("/dev/")),
        "{:?}",
        dev.entries
            .keys()
            .filter(|p| p.starts_with("/dev"))
            .collect::<Vec<_>>()
    );
    assert!(!has(&sel, "/etc/nope"));
    let Reason::Traced {
        processes,
        syscalls,
        ..
    } = &sel.entries["/usr/bin/ls"].reasons[0]
    else {
        panic!()
    };
    assert_eq!(processes, &vec!["/usr/bin/app".to_string()]);
    assert_eq!(syscalls, &vec!["openat".to_string()]);
}

#[test]
fn distroless_status_d() {
    let t = Root::new();
    let root = t.path();
    write(root, "/usr/lib/x86_64-linux-gnu/libssl.so.3", b"not elf");
    write(root, "/usr/bin/other", b"x");
    write(
        root,
        "/var/lib/dpkg/status.d/libssl3",
        b"Package: libssl3\nVersion: 3.0\n",
    );
    write(
        root,
        "/var/lib/dpkg/status.d/libssl3.md5sums",
        b"0123  usr/lib/x86_64-linux-gnu/libssl.so.3\n",
    );
    write(root, "/var/lib/dpkg/status.d/other", b"Package: other\n");
    write(
        root,
        "/var/lib/dpkg/status.d/other.md5sums",
        b"0123  usr/bin/other\n",
    );
    let sel = select(
        root,
        &SelectInputs {
            traced: traced(&["/usr/lib/x86_64-linux-gnu/libssl.so.3"]),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(has(&sel, "/var/lib/dpkg/status.d/libssl3"));
    assert!(has(&sel, "/var/lib/dpkg/status.d/libssl3.md5sums"));
    assert!(!has(&sel, "/var/lib/dpkg/status.d/other"));
    assert!(
        matches!(&sel.entries["/var/lib/dpkg/status.d/libssl3"].reasons[0], Reason::Dpkg { package, .. } if package == "libssl3")
    );
}

#[test]
fn entrypoint_script_commands_in_unexercised_branches() {
    let Some(bw) = bookworm() else { return };
    let t = Root::new();
    let r = t.path();
    t.dirs(&["/usr/bin"])
        .link("/bin", "usr/bin")
        .copy_from(
            &bw,
            &[
                "/usr/bin/dash",
                "/usr/bin/sed",
                "/usr/bin/chown",
                "/usr/bin/grep",
                "/usr/bin/perl",
            ],
        )
        .link("/usr/bin/sh", "dash")
        .file_mode(
            "/docker-entrypoint.sh",
            b"#!/bin/sh\nset -e\n# perl is only mentioned in a comment\nif [ \"$1\" = init ]; then\n  chown -R app /data && sed -i s/a/b/ /etc/x\nfi\nFOO=1 grep -q x /etc/y || echo none\nexec \"$@\"\n",
            0o755,
        );
    let facts = ImageFacts {
        entrypoint: vec!["/docker-entrypoint.sh".into()],
        cmd: vec!["serve".into()],
        ..Default::default()
    };
    let sel = select(
        r,
        &SelectInputs {
            facts,
            ..Default::default()
        },
    )
    .unwrap();
    for p in [
        "/docker-entrypoint.sh",
        "/usr/bin/dash",
        "/usr/bin/chown",
        "/usr/bin/sed",
        "/usr/bin/grep",
    ] {
        assert!(has(&sel, p), "missing {p}");
    }
    assert!(!has(&sel, "/usr/bin/perl"), "comments are not commands");
    assert!(
        matches!(&sel.entries["/usr/bin/sed"].reasons[0], Reason::ImageConfig { detail, .. } if detail.contains("docker-entrypoint.sh"))
    );
}

#[test]
fn alpine_apk_installed_is_trimmed() {
    let t = Root::new();
    let root = t.path();
    write(root, "/lib/ld-musl-x86_64.so.1", b"x");
    write(root, "/usr/bin/curl", b"x");
    write(root, "/bin/busybox", b"x");
    write(
        root,
        "/lib/apk/db/installed",
        b"C:Q1abc=\nP:musl\nV:1.2.4\nF:lib\nR:ld-musl-x86_64.so.1\nZ:Q1x=\n\nC:Q1def=\nP:busybox\nV:1.36\nF:bin\nR:busybox\n\nC:Q1ghi=\nP:curl\nV:8.0\nF:usr/bin\nR:curl\n\n",
    );
    let sel = select(
        root,
        &SelectInputs {
            traced: traced(&["/lib/ld-musl-x86_64.so.1", "/usr/bin/curl"]),
            ..Default::default()
        },
    )
    .unwrap();
    let db = String::from_utf8(sel.generated["/lib/apk/db/installed"].clone()).unwrap();
    assert!(db.contains("P:musl") && db.contains("P:curl"), "{db}");
    assert!(!db.contains("P:busybox"), "{db}");
    assert!(db.contains("Z:Q1x="), "stanzas are kept whole");
    assert!(
        matches!(&sel.entries["/lib/apk/db/installed"].reasons[0], Reason::Dpkg { package, .. } if package == "musl")
    );
}

#[test]
fn a_path_created_at_run_time_keeps_its_nearest_existing_parent() {
    // nginx mkdirs /var/lib/nginx/body at start: the trace sees it (found, created), the image
    // does not have it, and the mkdir only works again when /var/lib/nginx is kept.
    let t = Root::new();
    let root = t.path();
    fs::create_dir_all(root.join("var/lib/nginx")).unwrap();
    fs::create_dir_all(root.join("var/lib/other")).unwrap();
    let mut traced = pare_select::TracedFiles::new();
    let mut r = FileRecord {
        found: true,
        ..Default::default()
    };
    r.kinds.insert(AccessKind::Create);
    traced.insert("/var/lib/nginx/body".into(), r.clone());
    traced.insert("/var/lib/nginx/body/sub".into(), r);
    let mut read_only = FileRecord {
        found: true,
        ..Default::default()
    };
    read_only.kinds.insert(AccessKind::Open);
    traced.insert("/var/lib/other/gone".into(), read_only);
    let sel = select(
        root,
        &SelectInputs {
            traced,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        has(&sel, "/var/lib/nginx"),
        "{:?}",
        sel.entries.keys().collect::<Vec<_>>()
    );
    assert!(
        matches!(&sel.entries["/var/lib/nginx"].reasons[0], Reason::Parent { of } if of.starts_with("/var/lib/nginx/body"))
    );
    assert!(!has(&sel, "/var/lib/nginx/body"));
    // A path that was only read (and is gone) does not pull in its parent.
    assert!(!has(&sel, "/var/lib/other"));
}

#[test]
fn certificates_do_not_pull_in_openssl_perl_scripts() {
    if !has_cc() {
        return;
    }
    let t = Root::new();
    let root = t.path();
    t.tls_client()
        .file("/etc/ssl/certs/ca-certificates.crt", b"bundle")
        .file("/etc/ssl/openssl.cnf", b"# cnf")
        .link("/usr/lib/ssl/certs", "/etc/ssl/certs")
        .link("/usr/lib/ssl/openssl.cnf", "/etc/ssl/openssl.cnf")
        .file("/usr/lib/ssl/misc/CA.pl", b"#!/usr/bin/perl\n");
    fs::copy(root.join("usr/bin/tls-client"), root.join("usr/bin/perl")).unwrap();
    let sel = select_bin(root, "/usr/bin/tls-client");
    for p in [
        "/etc/ssl/certs/ca-certificates.crt",
        "/usr/lib/ssl/certs",
        "/usr/lib/ssl/openssl.cnf",
        "/etc/ssl/openssl.cnf",
    ] {
        assert!(has(&sel, p), "missing {p}");
    }
    assert!(
        !has(&sel, "/usr/lib/ssl/misc/CA.pl") && !has(&sel, "/usr/bin/perl"),
        "openssl's misc scripts and perl"
    );
}
