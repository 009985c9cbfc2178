//! `analyze_merged` over the view an extraction built (`extract_indexed` with
//! `read_options`) gives exactly the report `analyze` gives reading the image itself: what
//! `pare build` relies on to analyze the original from its extraction pass.

use pare_layerfs::extract_indexed;
use pare_test_support::layer::{LayerBuilder as L, MemSource};
use pare_xray::{Options, analyze, analyze_merged, read_options};
use serde_json::json;

fn image() -> MemSource {
    let layers = vec![
        L::new()
            .file("etc/os-release", b"ID=alpine\nVERSION_ID=3.19.1\n")
            .file("lib/apk/db/installed", b"P:musl\nV:1.2.4-r2\n\n")
            .dir("bin")
            .file_mode("bin/dash", b"ELF", 0o755)
            .symlink("bin/sh", "dash")
            .file_mode("usr/bin/passwd", b"ELF", 0o4755)
            .file("app/.env", b"DB_PASSWORD=hunter2\n")
            .file(
                "app/lib/server.key",
                b"-----BEGIN RSA PRIVATE KEY-----\nMII\n",
            )
            .sized("app/big", 5000, b'b')
            .sized("app/copy", 5000, b'b')
            .finish(),
        L::new()
            .file(
                "usr/lib/python3/site-packages/requests-2.31.0.dist-info/METADATA",
                b"Name: requests\nVersion: 2.31.0\n",
            )
            .file(
                "srv/node_modules/left-pad/package.json",
                br#"{"name":"left-pad","version":"1.3.0"}"#,
            )
            .whiteout("app/big")
            .sized("app/copy", 7000, b'c')
            .finish(),
    ];
    MemSource::new(
        layers,
        json!({"architecture": "amd64", "os": "linux",
               "config": {"Env": ["API_TOKEN=s3cr3t-value"], "User": "1000"},
               "rootfs": {"type": "layers", "diff_ids": []},
               "history": [{"created_by": "ADD x /"}, {"created_by": "COPY . /app"}]}),
    )
}

#[test]
fn the_report_from_an_extraction_pass_is_the_report_of_a_read() {
    let src = image();
    for hash in [false, true] {
        let opts = Options {
            top: 10,
            hash,
            threads: 0,
        };
        let dest = tempfile::tempdir().unwrap();
        let (_, view) = extract_indexed(&src, dest.path(), &read_options(&opts)).unwrap();
        let merged = serde_json::to_value(analyze_merged(&src, &view.unwrap(), &opts)).unwrap();
        let read = serde_json::to_value(analyze(&src, &opts).unwrap()).unwrap();
        assert_eq!(merged, read, "hash: {hash}");
        // The captured files made it: OS, packages, secrets.
        assert_eq!(merged["os"]["id"], "alpine");
        assert_eq!(merged["packages"]["apk"][0]["name"], "musl");
        assert_eq!(merged["packages"]["python"][0]["name"], "requests");
        assert_eq!(merged["packages"]["node"][0]["name"], "left-pad");
        assert!(merged["surface"].to_string().contains("server.key"));
    }
}
