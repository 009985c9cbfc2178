//! Output fits the terminal: `COLUMNS` (or the TTY) sets the width, 100 when piped; help
//! wraps to it too; `--format json` does not change with it.

use pare_test_support::fixture::{self, DockerArchiveFormat, Image};
use pare_test_support::layer::LayerBuilder as L;

use crate::cli::pare_cmd as pare;

fn archive(dir: &std::path::Path) -> String {
    let deep = "usr/share/some/very/deeply/nested/directory/with/many/levels/inside/it";
    let img = Image::new(vec![
        L::new()
            .dir(deep)
            .sized(&format!("{deep}/a-file-with-a-long-descriptive-name.dat"), 5000, b'x')
            .finish(),
    ])
    .with_config(serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [{"created_by": format!("/bin/sh -c {}", "apt-get install -y something-long ".repeat(8))}]
    }));
    let p = dir.join("img.tar");
    fixture::write_docker_archive(&p, &img, DockerArchiveFormat::Legacy).unwrap();
    format!("docker-archive:{}", p.display())
}

fn lines_fit(out: &[u8], width: usize) -> String {
    let s = String::from_utf8(out.to_vec()).unwrap();
    let widest = s.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(widest <= width, "widest {widest} > {width}:\n{s}");
    for l in s.lines() {
        assert_eq!(l, l.trim_end(), "trailing spaces: {l:?}");
    }
    s
}

#[test]
fn xray_tables_take_columns_and_default_to_100_when_piped() {
    let dir = tempfile::tempdir().unwrap();
    let img = archive(dir.path());
    for width in [80, 120] {
        let out = pare()
            .env("COLUMNS", width.to_string())
            .args(["xray", &img])
            .assert()
            .success();
        let s = lines_fit(&out.get_output().stdout, width);
        assert!(s.contains("…"), "{s}");
        assert!(
            s.contains("a-file-with-a-long-descriptive-name.dat"),
            "paths keep their end: {s}"
        );
    }
    // Piped, no COLUMNS: 100, and something is as wide as that (the long path).
    let out = pare().args(["xray", &img]).assert().success();
    let s = lines_fit(&out.get_output().stdout, 100);
    assert!(s.lines().any(|l| l.chars().count() > 90), "{s}");
    // JSON is the same whatever the width.
    let json = |cols: &str| {
        pare()
            .env("COLUMNS", cols)
            .args(["xray", &img, "--format", "json"])
            .output()
            .unwrap()
            .stdout
    };
    assert_eq!(json("40"), json("200"));
}

#[test]
fn help_wraps_to_the_width() {
    for width in [60, 150] {
        let out = pare()
            .env("COLUMNS", width.to_string())
            .args(["build", "--help"])
            .assert()
            .success();
        let s = lines_fit(&out.get_output().stdout, width);
        if width == 150 {
            // Wider than clap's old fixed 100.
            assert!(s.lines().any(|l| l.chars().count() > 100), "{s}");
        }
    }
}
