//! pare diff on synthetic in-memory images.

use pare_diff::{Change, Diff, Only, Options, diff, render};
use pare_test_support::layer::{LayerBuilder, MemSource};
use serde_json::json;

fn base() -> Vec<u8> {
    LayerBuilder::new()
        .dir("etc")
        .file("etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n")
        .dir("var/lib/dpkg")
        .file(
            "var/lib/dpkg/status",
            b"Package: bash\nStatus: install ok installed\nVersion: 5.2-1\n\nPackage: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13\n",
        )
        .dir("usr/bin")
        .file_mode("usr/bin/passwd", b"ELF", 0o4755)
        .file("etc/hosts", b"127.0.0.1 localhost\n")
        .symlink("etc/alt", "/usr/bin/one")
        .finish()
}

fn config(env: &[&str], cmd: &[&str], extra: serde_json::Value) -> serde_json::Value {
    let mut c = json!({
        "Env": env, "Cmd": cmd, "User": "app",
        "Labels": {"org.opencontainers.image.version": "1"},
    });
    if let (Some(o), Some(e)) = (c.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    json!({
        "architecture": "amd64", "os": "linux", "config": c,
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [{"created_by": "ADD rootfs /"}, {"created_by": "COPY app /app"}],
    })
}

fn image_a() -> MemSource {
    let app = LayerBuilder::new()
        .dir("app")
        .file("app/main.py", b"print('a')\n")
        .file("app/keep.txt", b"same\n")
        .file("app/gone.txt", b"bye\n")
        .dir("app/lib/python3.11/site-packages/flask-2.0.dist-info")
        .file(
            "app/lib/python3.11/site-packages/flask-2.0.dist-info/METADATA",
            b"Metadata-Version: 2.1\nName: flask\nVersion: 2.0\n",
        )
        .finish();
    MemSource::new(
        vec![base(), app],
        config(
            &["PATH=/usr/bin", "MODE=a", "DB_PASSWORD=hunter2"],
            &["python", "/app/main.py"],
            json!({}),
        ),
    )
}

fn image_b() -> MemSource {
    let app = LayerBuilder::new()
        .dir("app")
        .file("app/main.py", b"print('b')\n")
        .file("app/keep.txt", b"same\n")
        .file_mode("app/new.sh", b"#!/bin/sh\n", 0o755)
        .dir("app/lib/python3.11/site-packages/flask-3.0.dist-info")
        .file(
            "app/lib/python3.11/site-packages/flask-3.0.dist-info/METADATA",
            b"Metadata-Version: 2.1\nName: flask\nVersion: 3.0\n",
        )
        .dir("app/node_modules/left-pad")
        .file(
            "app/node_modules/left-pad/package.json",
            br#"{"name":"left-pad","version":"1.3.0"}"#,
        )
        .file_mode("etc/hosts", b"127.0.0.1 localhost\n", 0o600)
        .symlink("etc/alt", "/usr/bin/two")
        .file("bin/bash", b"ELF")
        .finish();
    let third = LayerBuilder::new().whiteout("usr/bin/passwd").finish();
    MemSource::new(
        vec![base(), app, third],
        config(
            &["PATH=/usr/bin", "MODE=b", "DB_PASSWORD=hunter3"],
            &["python", "/app/main.py", "--fast"],
            json!({"Healthcheck": {"Test": ["CMD", "true"]}, "StopSignal": "SIGINT", "ExposedPorts": {"8080/tcp": {}}}),
        ),
    )
}

fn run(opts: &Options) -> Diff {
    diff(&image_a(), &image_b(), opts).unwrap()
}

#[test]
fn files_added_removed_changed_with_fields() {
    let d = run(&Options::default());
    assert!(!d.same);
    let f = d.files.as_ref().unwrap();
    let find = |p: &str| f.entries.iter().find(|e| e.path == p);
    assert_eq!(find("/app/gone.txt").unwrap().change, Change::Removed);
    assert_eq!(find("/app/new.sh").unwrap().change, Change::Added);
    assert_eq!(
        find("/app/new.sh").unwrap().b.as_ref().unwrap().mode,
        "0755"
    );
    // Same size, different bytes: only the content digest differs.
    assert_eq!(find("/app/main.py").unwrap().fields, vec!["digest"]);
    assert_eq!(find("/etc/hosts").unwrap().fields, vec!["mode"]);
    assert_eq!(find("/etc/alt").unwrap().fields, vec!["link"]);
    // Deleted by a whiteout in B's last layer.
    assert_eq!(find("/usr/bin/passwd").unwrap().change, Change::Removed);
    assert!(
        find("/app/keep.txt").is_none(),
        "unchanged files are not listed"
    );
    assert_eq!(
        f.removed_bytes,
        4 + 3 + 47,
        "gone.txt, passwd, flask METADATA"
    );
    // Sorted by path.
    let paths: Vec<_> = f.entries.iter().map(|e| e.path.clone()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
}

#[test]
fn packages_config_layers_and_surface() {
    let d = run(&Options::default());
    let p = d.packages.as_ref().unwrap();
    let flask = p.iter().find(|c| c.name == "flask").unwrap();
    assert_eq!((flask.ecosystem, flask.change), ("python", Change::Changed));
    assert_eq!(flask.a_version.as_deref(), Some("2.0"));
    assert_eq!(flask.b_version.as_deref(), Some("3.0"));
    let lp = p.iter().find(|c| c.name == "left-pad").unwrap();
    assert_eq!((lp.ecosystem, lp.change), ("node", Change::Added));
    assert!(
        p.iter().all(|c| c.ecosystem != "dpkg"),
        "dpkg unchanged: {p:?}"
    );

    let c = d.config.as_ref().unwrap();
    let keys: Vec<_> = c.iter().map(|x| (x.key.as_str(), x.change)).collect();
    assert_eq!(
        keys,
        vec![
            ("Cmd", Change::Changed),
            ("StopSignal", Change::Added),
            ("Healthcheck", Change::Added),
            ("Env.DB_PASSWORD", Change::Changed),
            ("Env.MODE", Change::Changed),
            ("ExposedPorts.8080/tcp", Change::Added),
        ]
    );
    let secret = serde_json::to_string(&c[3]).unwrap();
    assert!(
        !secret.contains("hunter"),
        "secret env values are redacted: {secret}"
    );

    // MemSource numbers its layers instead of hashing them: the layer comparison by diff ID
    // is tested on real layouts in crates/pare/tests/diff_cli.rs.
    let l = d.layers.as_ref().unwrap();
    assert_eq!(l.b_only.len(), 1, "B has one more layer");
    assert_eq!(l.b_only[0].instruction, "");

    let s = d.surface.as_ref().unwrap();
    let g: Vec<_> = s
        .gained
        .iter()
        .map(|f| (f.category, f.subject.as_str()))
        .collect();
    let l: Vec<_> = s
        .lost
        .iter()
        .map(|f| (f.category, f.subject.as_str()))
        .collect();
    assert!(g.contains(&("shell", "/bin/bash")), "{g:?}");
    assert!(g.contains(&("exposed_port", "8080/tcp")), "{g:?}");
    assert!(l.contains(&("setuid", "/usr/bin/passwd")), "{l:?}");
    assert!(l.contains(&("no_healthcheck", "")), "{l:?}");
}

#[test]
fn same_image_is_same() {
    let d = diff(&image_a(), &image_a(), &Options::default()).unwrap();
    assert!(d.same, "{}", render::table(&d, false));
    assert!(d.files.unwrap().entries.is_empty());
    assert!(
        render::table(
            &diff(&image_b(), &image_b(), &Options::default()).unwrap(),
            false
        )
        .contains("No differences.")
    );
}

#[test]
fn only_and_path_filters() {
    let d = run(&Options {
        only: Some(Only::Config),
        ..Options::default()
    });
    assert!(d.files.is_none() && d.packages.is_none() && d.layers.is_none() && d.surface.is_none());
    assert!(!d.config.unwrap().is_empty());

    let d = run(&Options {
        only: Some(Only::Files),
        path: Some("/etc/**".into()),
        ..Options::default()
    });
    let paths: Vec<_> = d
        .files
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(paths, vec!["/etc/alt", "/etc/hosts"]);
    assert!(d.config.is_none());

    // Only packages: a diff that has file changes but no package changes is "same".
    let base_only = |v: &[u8]| {
        MemSource::with_history(
            vec![base(), LayerBuilder::new().file("x", v).finish()],
            &["a", "b"],
        )
    };
    let d = diff(
        &base_only(b"1"),
        &base_only(b"2"),
        &Options {
            only: Some(Only::Packages),
            ..Options::default()
        },
    )
    .unwrap();
    assert!(d.same);
    let d = diff(&base_only(b"1"), &base_only(b"2"), &Options::default()).unwrap();
    assert!(!d.same);

    let err = diff(
        &image_a(),
        &image_b(),
        &Options {
            path: Some("[".into()),
            ..Options::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("--path `[`"), "{err}");
}

#[test]
fn table_escapes_names_and_marks_lines() {
    let a = MemSource::with_history(vec![LayerBuilder::new().file("ok", b"1").finish()], &["a"]);
    let b = MemSource::with_history(
        vec![
            LayerBuilder::new()
                .file("ok", b"1")
                .file("evil\x1b[31mred", b"x")
                .finish(),
        ],
        &["a"],
    );
    let d = diff(&a, &b, &Options::default()).unwrap();
    let t = render::table(&d, false);
    assert!(t.contains("+ /evil\\x1b[31mred"), "{t}");
    assert!(!t.contains('\x1b'), "no raw escape reaches the terminal");
    let j: serde_json::Value = serde_json::from_str(&render::json(&d)).unwrap();
    assert_eq!(j["files"]["added"], 1);
    assert_eq!(j["same"], false);
}

/// `--format json` is streamed: `write_json` writes `json()`'s bytes in pieces, and a pipe
/// closed part-way stops it with `BrokenPipe`.
#[test]
fn json_streams_to_the_writer() {
    let d = diff(&image_a(), &image_b(), &Options::default()).unwrap();
    let whole = render::json(&d);
    pare_test_support::io::assert_streams(whole.as_bytes(), |out| render::write_json(&d, out));
}

#[test]
fn unreadable_layer_names_the_side() {
    let a = image_a();
    let broken = MemSource::with_history(vec![b"not a tar at all, just bytes".repeat(40)], &["x"]);
    let err = diff(&a, &broken, &Options::default()).unwrap_err();
    assert!(err.to_string().starts_with("B (mem:test)"), "{err}");
}
