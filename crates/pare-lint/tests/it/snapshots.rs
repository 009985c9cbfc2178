//! Whole-pipeline snapshots (insta): a realistic multi-stage Dockerfile rendered as tty and JSON.

use pare_lint::output::{FileReport, Format, render};
use pare_lint::{Config, Context, lint_source};

fn report() -> Vec<FileReport> {
    let src = include_str!("../fixtures/sample.Dockerfile");
    vec![FileReport {
        file: "sample.Dockerfile".into(),
        source: src.into(),
        findings: lint_source(src, &Config::default(), &Context::default()),
    }]
}

fn rendered(f: Format) -> String {
    let mut v = Vec::new();
    render(&mut v, &report(), f, false).unwrap();
    String::from_utf8(v).unwrap()
}

#[test]
fn sample_tty() {
    insta::assert_snapshot!(rendered(Format::Tty));
}

#[test]
fn sample_json() {
    let v: serde_json::Value = serde_json::from_str(&rendered(Format::Json)).unwrap();
    insta::assert_json_snapshot!(v);
}
