//! Every rule has fixtures in tests/rules/: `CODE.bad.Dockerfile` must trigger CODE,
//! `CODE.good.Dockerfile` must not (no over-catching), and `CODE.onbuild.Dockerfile`, where
//! present, must trigger CODE from inside an ONBUILD instruction. The DL fixtures were checked
//! against hadolint 2.15.1 (it agrees on every bad/good pair; see docs/lint-differences.md for
//! the ONBUILD cases it misses).

use std::path::{Path, PathBuf};

use pare_lint::{Config, Context, Severity, lint_source};

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// Everything on, ignore-level rules raised so they show.
fn cfg() -> Config {
    let mut c = Config::default();
    for r in pare_lint::rules::RULES {
        if r.severity == Severity::Ignore {
            c.overrides.insert(r.code.to_string(), Severity::Warning);
        }
    }
    c
}

fn codes(src: &str) -> Vec<String> {
    lint_source(src, &cfg(), &Context::default())
        .into_iter()
        .map(|f| f.code)
        .collect()
}

#[test]
fn every_fixture_behaves() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in fixtures() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut parts = name.split('.');
        let (code, kind) = (parts.next().unwrap(), parts.next().unwrap());
        let src = std::fs::read_to_string(&path).unwrap();
        let got = codes(&src);
        let hit = got.iter().any(|c| c == code);
        let ok = if kind == "good" { !hit } else { hit };
        if !ok {
            failures.push(format!("{name}: {kind} case, got {got:?}"));
        }
        checked += 1;
    }
    assert!(checked > 150, "fixtures missing ({checked})");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_rule_has_bad_and_good_fixtures() {
    let names: Vec<String> = fixtures()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let special = [
        "DL1000", "DL1001", "DL3026", "DL3049", "DL3050", "DL3051", "DL3052", "DL3053", "DL3054",
        "DL3055", "DL3056", "DL3057", "DL3058", "DL3063", "PA1008",
    ];
    for r in pare_lint::rules::RULES {
        if special.contains(&r.code) {
            continue; // covered by the config-driven tests below
        }
        for kind in ["bad", "good"] {
            let f = format!("{}.{kind}.Dockerfile", r.code);
            assert!(names.contains(&f), "missing fixture {f}");
        }
    }
}

#[test]
fn dl1000_parse_errors_have_positions() {
    let f = lint_source(
        "FROM debian:12\nRUN echo\nBOGUS x\n",
        &Config::default(),
        &Context::default(),
    );
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].code.as_str(), f[0].line), ("DL1000", 3));
    let f = lint_source(
        "FROM golang:1 AS b\nRUN --mount=target=/c,type=cache \\\n    --mount=type=bind go build .\n",
        &Config::default(),
        &Context::default(),
    );
    assert_eq!(
        (f[0].code.as_str(), f[0].line, f[0].column),
        ("DL1000", 3, 22)
    );
}

#[test]
fn dl1001_and_dl3057_are_off_by_default() {
    let src = "# hadolint ignore=DL3006\nFROM debian\n";
    let dl = |v: Vec<String>| {
        v.into_iter()
            .filter(|c| c.starts_with("DL"))
            .collect::<Vec<_>>()
    };
    assert!(
        dl(lint_source(src, &Config::default(), &Context::default())
            .into_iter()
            .map(|f| f.code)
            .collect())
        .is_empty()
    );
    assert_eq!(dl(codes(src)), ["DL1001", "DL3057"]);
}

#[test]
fn dl3026_trusted_registries() {
    let c = Config {
        trusted_registries: vec!["docker.io".into(), "*.gcr.io".into()],
        ..Config::default()
    };
    let run = |src: &str| {
        lint_source(src, &c, &Context::default())
            .into_iter()
            .any(|f| f.code == "DL3026")
    };
    assert!(run("FROM quay.io/x/y:1\n"));
    assert!(!run(
        "FROM debian:12\nFROM eu.gcr.io/p/i:1\nFROM docker.io/library/debian:12\n"
    ));
    assert!(
        !lint_source(
            "FROM quay.io/x/y:1\n",
            &Config::default(),
            &Context::default()
        )
        .iter()
        .any(|f| f.code == "DL3026")
    );
}

#[test]
fn label_schema_rules() {
    let mut c = Config::default();
    for (k, t) in [
        ("version", "semver"),
        ("created", "rfc3339"),
        ("url", "url"),
        ("lic", "spdx"),
        ("h", "hash"),
        ("mail", "email"),
        ("missing", "text"),
        ("empty", "text"),
    ] {
        c.label_schema.insert(k.into(), t.into());
    }
    c.strict_labels = true;
    let bad = "FROM debian:12\nLABEL version=x created=y url=z lic=MIT2 h=zz mail=foo other=1 empty=\"\"\n";
    let got: Vec<(String, usize)> = lint_source(bad, &c, &Context::default())
        .into_iter()
        .map(|f| (f.code, f.line))
        .collect();
    for (code, line) in [
        ("DL3049", 1),
        ("DL3050", 2),
        ("DL3051", 2),
        ("DL3052", 2),
        ("DL3053", 2),
        ("DL3054", 2),
        ("DL3055", 2),
        ("DL3056", 2),
        ("DL3058", 2),
    ] {
        assert!(
            got.contains(&(code.to_string(), line)),
            "{code} missing in {got:?}"
        );
    }
    let good = "FROM debian:12\nLABEL version=1.2.3 created=2024-01-02T03:04:05Z url=https://x.io lic=MIT h=0123abc mail=a@b.io missing=x empty=y\n";
    let got: Vec<_> = lint_source(good, &c, &Context::default())
        .into_iter()
        .filter(|f| f.code.starts_with("DL"))
        .collect();
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn dl3063_reserved_stage_name() {
    assert!(codes("FROM debian:12 AS scratch\n").contains(&"DL3063".to_string()));
    assert!(!codes("FROM debian:12 AS build\n").contains(&"DL3063".to_string()));
}

#[test]
fn pa1008_dockerignore_beside_dockerfile() {
    let dir = std::env::temp_dir().join(format!("pare-lint-pa1008-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let df = dir.join("Dockerfile");
    let src = "FROM debian:12\nCOPY . /app\n";
    std::fs::write(&df, src).unwrap();
    let run = || {
        lint_source(
            src,
            &cfg(),
            &Context {
                path: Some(&df),
                ..Context::default()
            },
        )
        .into_iter()
        .any(|f| f.code == "PA1008")
    };
    assert!(run());
    std::fs::write(dir.join(".dockerignore"), ".git\n").unwrap();
    assert!(!run());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dl3009_only_for_final_and_base_stages() {
    let has = |src: &str| codes(src).contains(&"DL3009".to_string());
    // A named stage nobody builds FROM (its files are only COPY'd) does not matter.
    assert!(!has(
        "FROM debian:12 AS builder\nRUN apt-get update\nFROM debian:12 AS app\nCOPY --from=builder /x /x\n"
    ));
    // A stage used as a base does, and so does the final one.
    assert!(has(
        "FROM debian:12 AS builder\nRUN apt-get update\nFROM builder AS app\nRUN echo\n"
    ));
    assert!(has(
        "FROM debian:12 AS builder\nRUN echo\nFROM builder AS app\nRUN apt-get update\n"
    ));
}

#[test]
fn dl3025_applies_to_healthcheck_cmd() {
    assert!(
        codes("FROM debian:12\nHEALTHCHECK --interval=30s \\\n  CMD curl -f http://localhost/\n")
            .contains(&"DL3025".to_string())
    );
    assert!(!codes("FROM debian:12\nHEALTHCHECK CMD [\"curl\", \"-f\", \"http://localhost/\"]\nHEALTHCHECK NONE\n").contains(&"DL3025".to_string()));
}

#[test]
fn every_pa_rule_has_a_doc_page() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/rules");
    for r in pare_lint::rules::RULES
        .iter()
        .filter(|r| r.code.starts_with("PA"))
    {
        let page = std::fs::read_to_string(docs.join(format!("{}.md", r.code)))
            .unwrap_or_else(|e| panic!("docs/rules/{}.md: {e}", r.code));
        for section in ["## What", "## Why", "## Bad", "## Good"] {
            assert!(page.contains(section), "{} lacks {section}", r.code);
        }
        assert!(
            page.contains(&format!("Default severity: **{}**", r.severity.as_str())),
            "{}: severity differs",
            r.code
        );
    }
}

#[test]
fn pa_doc_examples_behave() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/rules");
    let block = |page: &str, section: &str| -> String {
        let start = page.find(section).unwrap();
        let rest = &page[start..];
        let code = &rest[rest.find("```dockerfile\n").unwrap() + 14..];
        code[..code.find("```").unwrap()].to_string()
    };
    for r in pare_lint::rules::RULES
        .iter()
        .filter(|r| r.code.starts_with("PA") && r.code != "PA1008")
    {
        let page = std::fs::read_to_string(docs.join(format!("{}.md", r.code))).unwrap();
        assert!(
            codes(&block(&page, "## Bad")).contains(&r.code.to_string()),
            "{}: bad example not caught",
            r.code
        );
        assert!(
            !codes(&block(&page, "## Good")).contains(&r.code.to_string()),
            "{}: good example caught",
            r.code
        );
    }
}

#[test]
fn pa_rules_see_through_arg_defaults() {
    assert!(
        codes("ARG BASE=python:3.12\nFROM ${BASE}\nUSER 1000\n").contains(&"PA1001".to_string())
    );
    assert!(
        !codes("ARG BASE=python:3.12\nFROM ${BASE}-slim\nUSER 1000\n")
            .contains(&"PA1001".to_string())
    );
    assert!(
        !codes("ARG VARIANT\nFROM python:3.12${VARIANT:--slim}\nUSER 1000\n")
            .contains(&"PA1001".to_string())
    );
}
