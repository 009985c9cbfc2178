//! Output formats end to end: SARIF validated against the official 2.1.0 schema, JSON in
//! hadolint's shape, checkstyle/gnu/codeclimate well-formed.

use pare_lint::output::{FileReport, Format, render};
use pare_lint::{Config, Context, lint_source};

fn reports() -> Vec<FileReport> {
    let src = "FROM debian\nRUN cd /x && apt-get install curl\nADD https://example.com/x.tgz /x\nCOPY id_rsa \"/root/<&>\"\n";
    vec![
        FileReport {
            file: "Dockerfile".into(),
            source: src.into(),
            findings: lint_source(src, &Config::default(), &Context::default()),
        },
        FileReport {
            file: "bad.Dockerfile".into(),
            source: "FROM a\nBOGUS\n".into(),
            findings: lint_source("FROM a\nBOGUS\n", &Config::default(), &Context::default()),
        },
    ]
}

fn render_str(f: Format) -> String {
    let mut v = Vec::new();
    render(&mut v, &reports(), f, false).unwrap();
    String::from_utf8(v).unwrap()
}

#[test]
fn sarif_is_valid_sarif_2_1_0() {
    let mut schema: serde_json::Value =
        serde_json::from_str(include_str!("../data/sarif-schema-2.1.0.json")).unwrap();
    // Erratum in the published 2.1.0 schema: `run.language`'s pattern has a stray `]` that strict
    // regex engines reject. Use the corrected pattern (two-letter language, optional region).
    assert!(fix_language_pattern(&mut schema) >= 2);
    let validator = jsonschema::draft7::new(&schema).expect("schema compiles");
    let out: serde_json::Value = serde_json::from_str(&render_str(Format::Sarif)).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&out)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let results = out["runs"][0]["results"].as_array().unwrap();
    assert!(results.len() >= 5);
    assert!(results.iter().any(|r| r["ruleId"] == "DL1000"));
    // The validator does catch a broken document.
    let mut broken = out.clone();
    broken["runs"][0]["results"][0]["level"] = "fatal".into();
    assert!(!validator.is_valid(&broken));
}

#[test]
fn json_has_hadolint_keys() {
    let v: serde_json::Value = serde_json::from_str(&render_str(Format::Json)).unwrap();
    for item in v.as_array().unwrap() {
        let keys: Vec<&String> = item.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["code", "column", "file", "level", "line", "message"]);
    }
}

#[test]
fn checkstyle_escapes_and_gnu_lines() {
    let cs = render_str(Format::Checkstyle);
    assert!(
        cs.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><checkstyle version=\"4.3\">")
    );
    assert!(cs.contains("<file name=\"bad.Dockerfile\"><error column=\"1\" line=\"2\""));
    assert!(!cs.contains("<&>"));
    let gnu = render_str(Format::Gnu);
    assert!(gnu.lines().all(|l| l.starts_with("pare:")));
    let cc: serde_json::Value = serde_json::from_str(&render_str(Format::Codeclimate)).unwrap();
    assert!(
        cc.as_array()
            .unwrap()
            .iter()
            .all(|i| i["type"] == "issue" && i["location"]["path"].is_string())
    );
}

/// Replaces the erroneous language pattern everywhere; returns how many were fixed.
fn fix_language_pattern(v: &mut serde_json::Value) -> usize {
    match v {
        serde_json::Value::Object(m) => {
            let mut n = 0;
            if m.get("pattern").and_then(|p| p.as_str())
                == Some("^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$")
            {
                m.insert("pattern".into(), "^[a-zA-Z]{2}(-[a-zA-Z]{2})?$".into());
                n += 1;
            }
            n + m.values_mut().map(fix_language_pattern).sum::<usize>()
        }
        serde_json::Value::Array(a) => a.iter_mut().map(fix_language_pattern).sum(),
        _ => 0,
    }
}
