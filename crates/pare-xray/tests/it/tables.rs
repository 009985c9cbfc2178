//! Every xray table rendered at 80 and 120 columns (insta snapshots): long paths lose their
//! start, long instructions their end, each row stays one line, no line is wider than asked
//! and none ends in a space.

use pare_test_support::layer::{LayerBuilder as L, MemSource};
use pare_xray::{Options, analyze, ci};
use serde_json::json;

/// An image with something in every table: long instructions, deep paths, waste, duplicates,
/// surface findings, and CI rules.
fn report() -> pare_xray::Report {
    let deep = "usr/lib/python3.11/site-packages/some_rather_long_package_name/submodule";
    let layers = vec![
        L::new()
            .dir("bin")
            .file_mode("bin/dash", b"ELF", 0o755)
            .symlink("bin/sh", "dash")
            .dir("usr/bin")
            .file_mode("usr/bin/apt-get", b"ELF", 0o755)
            .file_mode("usr/bin/passwd", b"ELF", 0o4755)
            .dir(deep)
            .sized(
                &format!("{deep}/extension_module.cpython-311-x86_64-linux-gnu.so"),
                4_000_000,
                b'e',
            )
            .sized(
                &format!("{deep}/data_table_with_a_descriptive_name.json"),
                900_000,
                b'j',
            )
            .dir("srv")
            .sized("srv/big.bin", 2_000_000, b'b')
            .finish(),
        L::new()
            .dir("srv")
            .sized("srv/big.bin", 2_500_000, b'c')
            .sized(
                "srv/copy-of-the-extension-module-with-a-long-name.so",
                4_000_000,
                b'e',
            )
            .finish(),
        L::new().whiteout("usr/bin/apt-get").finish(),
    ];
    let history = [
        "/bin/sh -c #(nop) ADD file:4b1d7e5e0fc7c3b1a8c1c1f2 in / ",
        "RUN /bin/sh -c apt-get update && apt-get install -y --no-install-recommends python3 python3-pip ca-certificates curl && rm -rf /var/lib/apt/lists/* # buildkit",
        "RUN /bin/sh -c rm -f /usr/bin/apt-get # buildkit",
    ];
    let src = MemSource::with_history(layers, &history);
    let mut r = analyze(&src, &Options::default()).unwrap();
    r.ci = Some(ci::evaluate(&r, &ci::CiRules::default()));
    r
}

fn check(width: usize) -> String {
    let out = pare_xray::render::table(&report(), false, width);
    for line in out.lines() {
        assert!(line.chars().count() <= width, "{width}: {line:?}");
        assert_eq!(line, line.trim_end(), "trailing spaces");
    }
    out
}

#[test]
fn tables_at_80_columns() {
    let out = check(80);
    assert!(out.contains("…"), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn tables_at_120_columns() {
    insta::assert_snapshot!(check(120));
}

#[test]
fn json_does_not_depend_on_the_width() {
    let r = report();
    let v = json!(serde_json::from_str::<serde_json::Value>(&pare_xray::render::json(&r)).unwrap());
    assert!(
        v["layers"][1]["created_by"]
            .as_str()
            .unwrap()
            .contains("ca-certificates curl")
    );
}
