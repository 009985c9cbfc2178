//! Report contents from synthetic images: waste, surface, packages, history.

use pare_test_support::layer::{LayerBuilder as L, MemSource};
use pare_xray::{Options, Report, analyze, ci};
use serde_json::json;

fn report(src: &MemSource) -> Report {
    analyze(src, &Options::default()).unwrap()
}

fn config(history: &[&str], extra: serde_json::Value) -> serde_json::Value {
    let h: Vec<_> = history.iter().map(|c| json!({"created_by": c})).collect();
    let mut cfg = json!({"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": []}, "history": h});
    if let Some(o) = extra.as_object() {
        for (k, v) in o {
            cfg["config"][k] = v.clone();
        }
    }
    cfg
}

#[test]
fn waste_efficiency_and_user_percent_are_exact() {
    // base: 1000 bytes; L1 overwrites a 300-byte base file with 100 bytes; L2 deletes a 200-byte file.
    let src = MemSource::with_history(
        vec![
            L::new()
                .dir("a")
                .sized("a/big", 500, b'b')
                .sized("a/over", 300, b'o')
                .sized("a/del", 200, b'd')
                .finish(),
            L::new().dir("a").sized("a/over", 100, b'n').finish(),
            L::new().whiteout("a/del").finish(),
        ],
        &[
            "/bin/sh -c #(nop) ADD file:abc in / ",
            "/bin/sh -c echo > /a/over",
            "RUN /bin/sh -c rm /a/del # buildkit",
        ],
    );
    let r = report(&src);
    assert_eq!(r.total_size, 1100);
    assert_eq!(r.wasted_bytes, 500);
    assert_eq!(r.final_size, 600);
    assert_eq!(r.user_size, 100);
    assert!((r.efficiency - (1.0 - 500.0 / 1100.0)).abs() < 1e-12);
    assert!((r.user_wasted_percent - 5.0).abs() < 1e-12);
    assert_eq!(r.layers[0].wasted_bytes, 500);
    assert_eq!((r.layers[1].modified, r.layers[1].modified_bytes), (1, 100));
    assert_eq!((r.layers[2].deleted, r.layers[2].deleted_bytes), (1, 200));
    assert_eq!(
        r.layers[0].created_by,
        "/bin/sh -c #(nop) ADD file:abc in / "
    );
    assert_eq!(
        r.dockerfile,
        vec!["ADD file:abc /", "RUN echo > /a/over", "RUN rm /a/del"]
    );
    let w: Vec<_> = r
        .wasted_files
        .iter()
        .map(|w| (w.path.as_str(), w.wasted_bytes, w.visible))
        .collect();
    assert_eq!(w, vec![("/a/over", 300, true), ("/a/del", 200, false)]);
    assert_eq!(r.largest_files[0].path, "/a/big");
    assert_eq!(r.largest_dirs[0].path, "/a");
    assert_eq!(r.largest_dirs[0].size, 600);

    let rules = ci::CiRules::default();
    let out = ci::evaluate(&r, &rules);
    assert!(!ci::passed(&out));
    let relaxed = ci::CiRules {
        lowest_efficiency: Some(0.5),
        highest_wasted_bytes: Some(500),
        highest_user_wasted_percent: None,
    };
    assert!(ci::passed(&ci::evaluate(&r, &relaxed)));
    let strict = ci::CiRules {
        highest_wasted_bytes: Some(499),
        ..relaxed
    };
    assert!(!ci::passed(&ci::evaluate(&r, &strict)));
}

#[test]
fn attack_surface_is_detected() {
    let layer = L::new()
        .dir("bin")
        .file_mode("bin/dash", b"ELF", 0o755)
        .symlink("bin/sh", "dash")
        .dir("usr/bin")
        .file_mode("usr/bin/apt-get", b"ELF", 0o755)
        .file_mode("usr/bin/gcc-12", b"ELF", 0o755)
        .file_mode("usr/bin/curl", b"ELF", 0o755)
        .file_mode("usr/bin/passwd", b"ELF", 0o4755)
        .file_mode("usr/bin/wall", b"ELF", 0o2755)
        .file_mode("usr/bin/ls", b"ELF", 0o755)
        .file_xattr(
            "usr/bin/ping",
            b"ELF",
            "security.capability",
            b"\x01\x00\x00\x02",
        )
        .dir_mode("tmp", 0o1777)
        .dir_mode("data", 0o777)
        .file_mode("data/open", b"x", 0o666)
        .dir("root/.ssh")
        .file(
            "root/.ssh/id_rsa",
            b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
        )
        .file("app/.env", b"DB_PASSWORD=hunter2\n")
        .file("app/cert.pem", b"-----BEGIN CERTIFICATE-----\nMIIB\n")
        .file(
            "app/lib/server.key",
            b"-----BEGIN RSA PRIVATE KEY-----\nMII\n",
        )
        .file(
            "app/misc/blob",
            b"junk\n-----BEGIN EC PRIVATE KEY-----\nMHc\n",
        )
        .file(
            "home/u/.npmrc",
            b"//registry.npmjs.org/:_authToken=npm_abcdef\n",
        )
        .file(
            "home/u/.aws/credentials",
            b"[default]\naws_access_key_id=AKIA\naws_secret_access_key=xyz\n",
        )
        .file(
            "home/u/.docker/config.json",
            br#"{"auths":{"r.example":{"auth":"dTpw"}}}"#,
        )
        .finish();
    let cfg = config(
        &["ADD rootfs /"],
        json!({"Env": ["PATH=/usr/bin", "API_TOKEN=s3cr3t-value", "GH=ghp_abcdefghijklmnopqrstuvwxyz0123456789"],
               "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
               "Healthcheck": {"Test": ["CMD-SHELL", "curl -f http://localhost/"]}}),
    );
    let r = report(&MemSource::new(vec![layer], cfg));
    let s = &r.surface;
    let names = |v: &[pare_xray::ToolFinding]| v.iter().map(|t| t.path.clone()).collect::<Vec<_>>();
    assert_eq!(names(&s.shells), vec!["/bin/dash", "/bin/sh"]);
    assert_eq!(s.shells[1].link.as_deref(), Some("dash"));
    assert_eq!(names(&s.package_managers), vec!["/usr/bin/apt-get"]);
    assert_eq!(names(&s.build_tools), vec!["/usr/bin/gcc-12"]);
    assert_eq!(names(&s.network_tools), vec!["/usr/bin/curl"]);
    assert_eq!(
        s.setuid
            .iter()
            .map(|m| (m.path.as_str(), m.mode.as_str()))
            .collect::<Vec<_>>(),
        vec![("/usr/bin/passwd", "4755")]
    );
    assert_eq!(s.setgid[0].path, "/usr/bin/wall");
    let ww: Vec<_> = s.world_writable.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(ww, vec!["/data", "/data/open"]);
    assert_eq!(s.capabilities, vec!["/usr/bin/ping"]);
    let secrets: Vec<_> = s
        .secret_files
        .iter()
        .map(|p| (p.path.as_str(), p.reason.as_str()))
        .collect();
    assert_eq!(
        secrets,
        vec![
            ("/app/.env", "dotenv file"),
            ("/app/lib/server.key", "private key"),
            ("/app/misc/blob", "private key"),
            ("/home/u/.aws/credentials", "AWS credentials"),
            ("/home/u/.docker/config.json", "docker registry auth"),
            ("/home/u/.npmrc", "npm registry token"),
            ("/root/.ssh/id_rsa", "private key"),
        ]
    );
    let env: Vec<_> = s.secret_env.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(env, vec!["API_TOKEN", "GH"]);
    assert!(s.runs_as_root);
    assert_eq!(s.exposed_ports, vec!["53/udp", "8080/tcp"]);
    assert_eq!(s.healthcheck, Some(true));
    // Secret values never reach the output.
    let json = pare_xray::render::json(&r);
    for v in [
        "s3cr3t-value",
        "ghp_abc",
        "hunter2",
        "npm_abcdef",
        "dTpw",
        "OPENSSH PRIVATE KEY-----\nAAAA",
    ] {
        assert!(!json.contains(v), "{v} leaked");
    }
    let table = pare_xray::render::table(&r, false, 1000);
    assert!(
        table.contains("/usr/bin/passwd") && !table.contains("s3cr3t") && !table.contains('\x1b')
    );
}

#[test]
fn secrets_and_tools_deleted_later_are_not_reported() {
    let src = MemSource::with_history(
        vec![
            L::new()
                .dir("bin")
                .file("bin/bash", b"x")
                .file("root/.npmrc", b"_authToken=x")
                .finish(),
            L::new()
                .whiteout("bin/bash")
                .whiteout("root/.npmrc")
                .finish(),
        ],
        &["ADD x /", "RUN rm"],
    );
    let r = report(&src);
    assert!(r.surface.shells.is_empty());
    assert!(r.surface.secret_files.is_empty());
}

#[test]
fn non_root_user_and_no_healthcheck() {
    let cfg = config(&["ADD x /"], json!({"User": "1000:1000"}));
    let r = report(&MemSource::new(
        vec![L::new().file("x", b"1").finish()],
        cfg,
    ));
    assert!(!r.surface.runs_as_root);
    assert_eq!(r.surface.user.as_deref(), Some("1000:1000"));
    assert_eq!(r.surface.healthcheck, Some(false));
}

#[test]
fn os_and_packages() {
    let status = "Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b2\n\nPackage: libc6\nStatus: install ok installed\nVersion: 2.36-9\n";
    let layers = vec![
        L::new()
            .file(
                "usr/lib/os-release",
                b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
            )
            .symlink("etc/os-release", "../usr/lib/os-release")
            .file("var/lib/dpkg/status", status.as_bytes())
            .finish(),
        L::new()
            .file(
                "usr/lib/python3/dist-packages/flask-3.0.0.dist-info/METADATA",
                b"Metadata-Version: 2.1\nName: Flask\nVersion: 3.0.0\n\nbody",
            )
            .file(
                "app/node_modules/express/package.json",
                br#"{"name":"express","version":"4.19.2"}"#,
            )
            .file(
                "app/node_modules/@types/node/package.json",
                br#"{"name":"@types/node","version":"20.1.0"}"#,
            )
            .file(
                "app/node_modules/express/lib/package.json",
                br#"{"name":"not-a-package","version":"0"}"#,
            )
            .file("app/package.json", br#"{"name":"app","version":"1.0.0"}"#)
            .finish(),
    ];
    let r = report(&MemSource::with_history(
        layers,
        &["ADD x /", "COPY . /app"],
    ));
    let os = r.os.as_ref().unwrap();
    assert_eq!(
        (os.id.as_str(), os.version_id.as_deref()),
        ("debian", Some("12"))
    );
    let dpkg: Vec<_> = r
        .packages
        .dpkg
        .iter()
        .map(|p| format!("{}={}", p.name, p.version))
        .collect();
    assert_eq!(dpkg, vec!["bash=5.2.15-2+b2", "libc6=2.36-9"]);
    assert_eq!(
        r.packages
            .python
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect::<Vec<_>>(),
        vec![("Flask", "3.0.0")]
    );
    let node: Vec<_> = r.packages.node.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(node, vec!["@types/node", "express"]);
}

#[test]
fn duplicates_by_content() {
    let same = vec![7u8; 4096];
    let layers = vec![
        L::new()
            .file("a/one", &same)
            .file("b/two", &same)
            .file("c/three", &same)
            .file("d/other", &[8u8; 4096])
            .hardlink("d/link", "d/other")
            .finish(),
    ];
    let r = report(&MemSource::with_history(layers, &["ADD x /"]));
    assert_eq!(r.duplicates.len(), 1);
    assert_eq!(r.duplicates[0].paths, vec!["/a/one", "/b/two", "/c/three"]);
    assert_eq!(r.duplicates[0].wasted_bytes, 8192);
    assert_eq!(r.duplicate_bytes, 8192);
}

#[test]
fn a_huge_duplicate_group_lists_its_first_paths_and_counts_the_rest() {
    let max = pare_xray::MAX_DUPLICATE_PATHS;
    let n = max + 5;
    let mut l = L::new();
    for i in 0..n {
        l = l.file(&format!("f/{i:05}"), b"same");
    }
    // Two smaller groups tying on wasted bytes: the first path orders them.
    l = l.file("z/b1", b"other").file("z/b2", b"other");
    l = l.file("y/a1", b"third").file("y/a2", b"third");
    let r = report(&MemSource::with_history(vec![l.finish()], &["ADD x /"]));
    let big = &r.duplicates[0];
    assert_eq!(big.paths.len(), max);
    assert_eq!(big.paths_omitted, 5);
    assert_eq!(big.copies(), n as u64);
    assert_eq!(big.paths[0], "/f/00000");
    assert_eq!(big.paths[max - 1].as_str(), format!("/f/{:05}", max - 1));
    assert_eq!(big.wasted_bytes, 4 * (n as u64 - 1));
    let rest: Vec<_> = r.duplicates[1..]
        .iter()
        .map(|d| d.paths[0].as_str())
        .collect();
    assert_eq!(rest, vec!["/y/a1", "/z/b1"]);
    assert_eq!(r.duplicate_bytes, 4 * (n as u64 - 1) + 5 + 5);
    let v: serde_json::Value = serde_json::from_str(&pare_xray::render::json(&r)).unwrap();
    assert_eq!(v["duplicates"][0]["paths_omitted"], 5);
    // Listed in full: no `paths_omitted` field, as before the cap.
    assert!(v["duplicates"][1].get("paths_omitted").is_none());
    let table = pare_xray::render::table(&r, false, 120);
    assert!(table.contains(&format!("({} more)", n - 3)), "{table}");
}

#[test]
fn the_top_setting_bounds_duplicates_with_ties_ordered_by_path() {
    let layers = vec![
        L::new()
            .file("c/1", b"cc")
            .file("c/2", b"cc")
            .file("a/1", b"aa")
            .file("a/2", b"aa")
            .file("b/1", b"bb")
            .file("b/2", b"bb")
            .finish(),
    ];
    let src = MemSource::with_history(layers, &["ADD x /"]);
    let opts = pare_xray::Options {
        top: 2,
        ..Default::default()
    };
    let r = pare_xray::analyze(&src, &opts).unwrap();
    let firsts: Vec<_> = r.duplicates.iter().map(|d| d.paths[0].as_str()).collect();
    assert_eq!(firsts, vec!["/a/1", "/b/1"]);
    assert_eq!(r.duplicate_bytes, 6);
}

#[test]
fn json_has_the_documented_top_level_fields() {
    let r = report(&MemSource::with_history(
        vec![L::new().file("x", b"12345").finish()],
        &["ADD x /"],
    ));
    let v: serde_json::Value = serde_json::from_str(&pare_xray::render::json(&r)).unwrap();
    for k in [
        "layers",
        "total_size",
        "wasted_bytes",
        "efficiency",
        "surface",
        "user_wasted_percent",
        "packages",
        "dockerfile",
    ] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    for k in ["digest", "size", "compressed_size", "created_by"] {
        assert!(v["layers"][0].get(k).is_some(), "layer missing {k}");
    }
    assert_eq!(v["layers"][0]["size"], 5);
}

/// `--format json` is streamed: `write_json` writes `json()`'s bytes in pieces, and a pipe
/// closed part-way stops it with `BrokenPipe`.
#[test]
fn json_streams_to_the_writer() {
    let r = report(&MemSource::with_history(
        vec![
            L::new()
                .dir("d")
                .file("d/x", b"12345")
                .file("y", b"y")
                .finish(),
        ],
        &["ADD x /"],
    ));
    let whole = pare_xray::render::json(&r);
    pare_test_support::io::assert_streams(whole.as_bytes(), |out| {
        pare_xray::render::write_json(&r, out)
    });
}
