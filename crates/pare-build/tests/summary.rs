//! The build summary at 80 and 120 columns (insta snapshots): sizes labelled as `docker
//! images` labels them, the compressed size measured or explained, the remaining surface
//! named, one count of entries, plurals, the creation time, and what no probe exercised.

use pare_build::{BuildReport, render_text};
use serde_json::json;

fn report(verified: bool) -> BuildReport {
    serde_json::from_value(json!({
        "schema_version": 1,
        "source": {
            "reference": "docker-daemon:pare-example/static-site-with-a-rather-long-repository-name:1.0",
            "size": 300_100_000u64, "visible_size": 248_800_000u64, "compressed_size": null,
            "compressed_note": "the docker daemon keeps layers uncompressed",
            "entries": 8123, "layers": 5, "surface_findings": 12
        },
        "slim": {
            "reference": "docker-daemon:pare-example/static-site-with-a-rather-long-repository-name.slim:1.0",
            "size": 12_300_000u64, "visible_size": 12_300_000u64, "compressed_size": 4_500_000u64,
            "entries": 281, "layers": 1, "surface_findings": 1
        },
        "source_config_digest": format!("sha256:{}", "a".repeat(64)),
        "slim_config_digest": format!("sha256:{}", "b".repeat(64)),
        "slim_manifest_digest": format!("sha256:{}", "c".repeat(64)),
        "runtime": "docker",
        "traced_files": 1,
        "kept_paths": 281,
        "reduction": 24.4,
        "epoch": 1_714_557_600u64,
        "created": "2024-05-01T10:00:00Z",
        "epoch_from": "the source image's creation time",
        "surface_removed": [
            {"category": "shell", "path": "/bin/bash"},
            {"category": "shell", "path": "/bin/dash"},
            {"category": "package_manager", "path": "/usr/bin/apt-get"},
            {"category": "package_manager", "path": "/usr/bin/dpkg"}
        ],
        "surface_kept": [{"category": "setuid", "path": "/usr/lib/dbus-1.0/dbus-daemon-launch-helper"}],
        "verification": {
            "probes": [
                {"probe": "GET http:8080/", "expected": "200 text/html 1.2 kB", "actual": "200 text/html 1.2 kB", "ok": true},
                {"probe": "GET http:8080/a/page/with/a/very/long/path/that/goes/on/and/on/index.html",
                 "expected": "200 text/html 5 kB", "actual": if verified { "200 text/html 5 kB" } else { "404 text/html 120 B" },
                 "ok": verified,
                 "difference": if verified { serde_json::Value::Null } else { json!("status: expected 200, got 404; body: expected sha256:1234 (5 kB), got sha256:5678 (120 B)") }}
            ],
            "likely_missing": if verified { json!([]) } else { json!(["/srv/a/page/with/a/very/long/path/that/goes/on/and/on/index.html"]) }
        },
        "unexercised": [
            {"dir": "/srv", "why": "served", "files": 12, "bytes": 48_000u64,
             "examples": ["/srv/sub/page.txt", "/srv/sub/other-page-with-a-long-name.txt"]},
            {"dir": "/data", "why": "VOLUME", "files": 1, "bytes": 10u64, "examples": ["/data/seed.db"]}
        ],
        "timings": [{"phase": "open", "seconds": 0.1}, {"phase": "profile", "seconds": 13.2}, {"phase": "verify", "seconds": 30.4}],
        "total_seconds": 44.0,
        "artifacts": "pare-build",
        "selection": {"entries": {}}
    }))
    .unwrap()
}

fn check(r: &BuildReport, width: usize) -> String {
    let out = render_text(r, width);
    for line in out.lines() {
        assert!(line.chars().count() <= width, "{width}: {line:?}");
        assert_eq!(line, line.trim_end(), "trailing spaces: {line:?}");
    }
    out
}

#[test]
fn summary_at_80_columns() {
    let out = check(&report(true), 80);
    // Labelled sizes, the reason for the unknown compressed size, the surface that is left,
    // one file and 12 files, the creation time, and the way to keep what nothing asked for.
    for want in [
        "size (docker images)",
        "visible files",
        "the docker daemon keeps layers uncompressed",
        "attack surface left",
        "traced 1 file the app opened; kept 281 entries",
        "created 2024-05-01T10:00:00Z",
        "12 files under /srv dropped: nothing asked for them;\n    keep them with --include-path /srv",
        "1 file under /data dropped: nothing asked for it;\n    keep it with --include-path /data",
    ] {
        assert!(out.contains(want), "{want}\n{out}");
    }
    assert!(
        !out.contains("1 files") && !out.contains("kept paths"),
        "{out}"
    );
    insta::assert_snapshot!(out);
}

#[test]
fn summary_at_120_columns() {
    insta::assert_snapshot!(check(&report(true), 120));
}

#[test]
fn failed_summary_at_80_and_120_columns() {
    insta::assert_snapshot!("failed_80", check(&report(false), 80));
    insta::assert_snapshot!("failed_120", check(&report(false), 120));
}
