//! Data files that follow what is kept: certificates, Python, Node, the dpkg status.

use super::*;

#[test]
fn certificates_follow_tls_libraries() {
    if !has_cc() {
        return;
    }
    let t = Root::new();
    let root = t.path();
    t.tls_client();
    let src = root.join("src");
    cc(&[
        "-o",
        &root.join("usr/bin/plain").display().to_string(),
        &src.join("main.c").display().to_string(),
        &src.join("ssl.c").display().to_string(),
    ]);
    t.file(
        "/usr/share/ca-certificates/mozilla/Test_Root.crt",
        b"-----BEGIN CERTIFICATE-----\n",
    )
    .link(
        "/etc/ssl/certs/Test_Root.pem",
        "/usr/share/ca-certificates/mozilla/Test_Root.crt",
    )
    .file("/etc/ssl/certs/ca-certificates.crt", b"bundle");

    let sel = select_bin(root, "/usr/bin/tls-client");
    assert!(has(&sel, "/usr/lib/x86_64-linux-gnu/libssl.so.3"));
    for p in [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/ssl/certs/Test_Root.pem",
        "/usr/share/ca-certificates/mozilla/Test_Root.crt",
    ] {
        assert!(has(&sel, p), "missing {p}");
    }
    assert!(
        matches!(&sel.entries["/etc/ssl/certs/ca-certificates.crt"].reasons[0],
        Reason::Certificates { library } if library.ends_with("libssl.so.3"))
    );

    let sel = select_bin(root, "/usr/bin/plain");
    assert!(
        !has(&sel, "/etc/ssl/certs/ca-certificates.crt"),
        "no TLS library, no certificates"
    );

    // A Go binary (build-info magic) that links crypto/tls gets certificates too.
    let mut go = fs::read(root.join("usr/bin/plain")).unwrap();
    go.extend_from_slice(b"\xff Go buildinf:\x08\x02 ... crypto/tls.(*Conn).Handshake");
    fs::write(root.join("usr/bin/goserver"), &go).unwrap();
    let sel = select_bin(root, "/usr/bin/goserver");
    assert!(
        has(&sel, "/etc/ssl/certs/ca-certificates.crt"),
        "Go crypto/tls"
    );
    let mut go = fs::read(root.join("usr/bin/plain")).unwrap();
    go.extend_from_slice(b"\xff Go buildinf:\x08\x02 ... net/http");
    fs::write(root.join("usr/bin/gonotls"), &go).unwrap();
    let sel = select_bin(root, "/usr/bin/gonotls");
    assert!(
        !has(&sel, "/etc/ssl/certs/ca-certificates.crt"),
        "Go without crypto/tls"
    );
}

#[test]
fn python_pyc_and_py_pairs_and_dist_info() {
    let t = Root::new();
    let root = t.path();
    let site = "/usr/local/lib/python3.11/site-packages";
    write(root, &format!("{site}/flask/__init__.py"), b"");
    write(
        root,
        &format!("{site}/flask/__pycache__/__init__.cpython-311.pyc"),
        b"pyc",
    );
    write(root, &format!("{site}/flask/app.py"), b"");
    write(
        root,
        &format!("{site}/flask/__pycache__/app.cpython-311.pyc"),
        b"pyc",
    );
    write(
        root,
        &format!("{site}/flask/__pycache__/app.cpython-311.opt-1.pyc"),
        b"pyc",
    );
    write(root, &format!("{site}/flask/unused.py"), b"");
    write(
        root,
        &format!("{site}/flask-3.0.0.dist-info/METADATA"),
        b"Name: flask",
    );
    write(
        root,
        &format!("{site}/flask-3.0.0.dist-info/RECORD"),
        b"flask/__init__.py,sha256=x,1\nflask/app.py,,\n",
    );
    write(
        root,
        &format!("{site}/flask-3.0.0.dist-info/licenses/LICENSE.txt"),
        b"BSD",
    );
    write(root, &format!("{site}/six.py"), b"");
    write(
        root,
        &format!("{site}/six-1.16.0.dist-info/top_level.txt"),
        b"six\n",
    );
    write(
        root,
        &format!("{site}/six-1.16.0.dist-info/METADATA"),
        b"Name: six",
    );
    write(
        root,
        &format!("{site}/requests-2.0.dist-info/top_level.txt"),
        b"requests\n",
    );
    // RECORD only (no top_level.txt), module at top level.
    write(root, &format!("{site}/typing_extensions.py"), b"");
    write(
        root,
        &format!("{site}/typing_extensions-4.0.dist-info/RECORD"),
        b"typing_extensions.py,sha256=x,1\n",
    );

    // A C extension (any ELF will do) of a distribution known only by RECORD.
    if let Some(bw) = bookworm() {
        fs::create_dir_all(root.join(&site[1..]).join("_cffi")).unwrap();
        fs::copy(
            bw.join("usr/lib/x86_64-linux-gnu/libc.so.6"),
            root.join(&site[1..])
                .join("_cffi_backend.cpython-311-x86_64-linux-gnu.so"),
        )
        .unwrap();
        write(
            root,
            &format!("{site}/cffi-1.0.dist-info/RECORD"),
            b"_cffi_backend.cpython-311-x86_64-linux-gnu.so,,\n",
        );
    }
    let inputs = SelectInputs {
        traced: traced(&[
            &format!("{site}/_cffi_backend.cpython-311-x86_64-linux-gnu.so"),
            &format!("{site}/flask/__pycache__/__init__.cpython-311.pyc"),
            &format!("{site}/flask/app.py"),
            &format!("{site}/six.py"),
            &format!("{site}/typing_extensions.py"),
        ]),
        ..Default::default()
    };
    let sel = select(root, &inputs).unwrap();
    // .pyc → .py and .py → .pyc
    assert!(has(&sel, &format!("{site}/flask/__init__.py")));
    assert!(matches!(
        &sel.entries[format!("{site}/flask/__init__.py").as_str()].reasons[0],
        Reason::PythonSource { .. }
    ));
    assert!(has(
        &sel,
        &format!("{site}/flask/__pycache__/app.cpython-311.pyc")
    ));
    assert!(has(
        &sel,
        &format!("{site}/flask/__pycache__/app.cpython-311.opt-1.pyc")
    ));
    assert!(!has(&sel, &format!("{site}/flask/unused.py")));
    // dist-info, via RECORD and via top_level.txt, with subdirectories.
    assert!(has(&sel, &format!("{site}/flask-3.0.0.dist-info/METADATA")));
    assert!(has(
        &sel,
        &format!("{site}/flask-3.0.0.dist-info/licenses/LICENSE.txt")
    ));
    assert!(has(&sel, &format!("{site}/six-1.16.0.dist-info/METADATA")));
    assert!(!has(
        &sel,
        &format!("{site}/requests-2.0.dist-info/top_level.txt")
    ));
    assert!(has(
        &sel,
        &format!("{site}/typing_extensions-4.0.dist-info/RECORD")
    ));
    if bookworm().is_some() {
        assert!(
            has(&sel, &format!("{site}/cffi-1.0.dist-info/RECORD")),
            "dist-info of a C extension"
        );
    }
}

#[test]
fn node_package_json() {
    let t = Root::new();
    let root = t.path();
    write(root, "/app/package.json", b"{}");
    write(root, "/app/src/server.js", b"");
    write(root, "/app/node_modules/express/package.json", b"{}");
    write(root, "/app/node_modules/express/lib/router/index.js", b"");
    write(root, "/app/node_modules/@scope/pkg/package.json", b"{}");
    write(
        root,
        "/app/node_modules/@scope/pkg/dist/esm/package.json",
        b"{\"type\":\"module\"}",
    );
    write(root, "/app/node_modules/@scope/pkg/dist/esm/index.js", b"");
    write(root, "/app/node_modules/unused/package.json", b"{}");
    // Odd names must not trip the package-root logic.
    write(root, "/app/node_modules/@scope.js", b"");
    write(root, "/app/node_modules/x.json", b"{}");
    let inputs = SelectInputs {
        traced: traced(&[
            "/app/src/server.js",
            "/app/node_modules/express/lib/router/index.js",
            "/app/node_modules/@scope/pkg/dist/esm/index.js",
            "/app/node_modules/@scope.js",
            "/app/node_modules/x.json",
        ]),
        ..Default::default()
    };
    let sel = select(root, &inputs).unwrap();
    for p in [
        "/app/package.json",
        "/app/node_modules/express/package.json",
        "/app/node_modules/@scope/pkg/package.json",
        "/app/node_modules/@scope/pkg/dist/esm/package.json",
    ] {
        assert!(has(&sel, p), "missing {p}");
    }
    assert!(!has(&sel, "/app/node_modules/unused/package.json"));
    assert!(matches!(
        &sel.entries["/app/node_modules/express/package.json"].reasons[0],
        Reason::NodePackage { .. }
    ));
}

fn packages(status: &[u8]) -> BTreeSet<String> {
    String::from_utf8_lossy(status)
        .lines()
        .filter_map(|l| l.strip_prefix("Package: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn dpkg_status_is_trimmed_to_owners() {
    let Some(root) = bookworm() else { return };
    let sel = select_bin(&root, "/usr/bin/bash");
    let status = sel
        .generated
        .get("/var/lib/dpkg/status")
        .expect("a generated status");
    let pkgs = packages(status);
    for p in ["bash", "libc6", "libtinfo6"] {
        assert!(pkgs.contains(p), "{p} missing from {pkgs:?}");
    }
    for p in ["apt", "perl-base", "gpgv"] {
        assert!(
            !pkgs.contains(p),
            "{p} should be trimmed: {:?}",
            sel.entries
                .iter()
                .filter(|(k, _)| k.contains(&format!("info/{p}")))
                .collect::<Vec<_>>()
        );
    }
    let all = packages(&fs::read(root.join("var/lib/dpkg/status")).unwrap());
    assert!(
        pkgs.len() < all.len() / 3,
        "{} of {}",
        pkgs.len(),
        all.len()
    );
    // Each kept stanza is byte-identical to the original one.
    let orig =
        String::from_utf8_lossy(&fs::read(root.join("var/lib/dpkg/status")).unwrap()).to_string();
    for stanza in String::from_utf8_lossy(status)
        .split("\n\n")
        .filter(|s| !s.trim().is_empty())
    {
        assert!(
            orig.contains(stanza.trim_end()),
            "stanza not from the original"
        );
    }
    // dpkg itself reads the trimmed database.
    if Command::new("dpkg-query")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let admin = tempfile::tempdir().unwrap();
        fs::write(admin.path().join("status"), status).unwrap();
        fs::create_dir_all(admin.path().join("info")).unwrap();
        fs::create_dir_all(admin.path().join("updates")).unwrap();
        let out = Command::new("dpkg-query")
            .arg(format!("--admindir={}", admin.path().display()))
            .args(["-W", "-f", "${Package} ${Status}\n"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listed: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.ends_with("install ok installed"))
            .filter_map(|l| l.split(' ').next().map(str::to_string))
            .collect();
        assert_eq!(listed, pkgs);
        fs::write(
            admin.path().join("info/bash.list"),
            &sel.generated["/var/lib/dpkg/info/bash.list"],
        )
        .unwrap();
        let out = Command::new("dpkg-query")
            .arg(format!("--admindir={}", admin.path().display()))
            .args(["-L", "bash"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.ends_with("bin/bash"))
        );
    }
    assert!(has(&sel, "/var/lib/dpkg/status"));
    assert!(has(&sel, "/var/lib/dpkg/info/bash.list"));
    assert!(has(&sel, "/var/lib/dpkg/info/bash.md5sums"));
    // The lists are trimmed to the kept files: bash's list names /usr/bin/bash but not its
    // docs, which are not kept; libc6's list names libc.so.6 (listed under /lib) only.
    let list = String::from_utf8(sel.generated["/var/lib/dpkg/info/bash.list"].clone()).unwrap();
    assert!(
        list.lines()
            .any(|l| l == "/usr/bin/bash" || l == "/bin/bash"),
        "{list}"
    );
    assert!(!list.contains("/usr/share/doc/bash"), "{list}");
    let md5 = String::from_utf8(sel.generated["/var/lib/dpkg/info/bash.md5sums"].clone()).unwrap();
    assert!(
        md5.lines()
            .any(|l| l.ends_with("  usr/bin/bash") || l.ends_with("  bin/bash")),
        "{md5}"
    );
    assert!(!md5.contains("usr/share/doc"), "{md5}");
    let libc =
        String::from_utf8(sel.generated["/var/lib/dpkg/info/libc6:amd64.list"].clone()).unwrap();
    assert!(libc.lines().any(|l| l.ends_with("/libc.so.6")), "{libc}");
    assert!(!libc.contains("libmvec"), "{libc}");
    let orig = fs::read_to_string(root.join("var/lib/dpkg/info/libc6:amd64.list")).unwrap();
    assert!(
        libc.lines().all(|l| orig.lines().any(|o| o == l)),
        "lines come from the original"
    );
    assert!(!has(&sel, "/var/lib/dpkg/info/apt.list"));
}
