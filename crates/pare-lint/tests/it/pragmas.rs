//! Inline and global ignore pragmas (`# hadolint …` and `# pare …`) and config effects,
//! with the semantics hadolint 2.15.1 shows.

use pare_lint::{Config, Context, Severity, Threshold, lint_source};

fn dl(src: &str, cfg: &Config) -> Vec<(String, usize)> {
    lint_source(src, cfg, &Context::default())
        .into_iter()
        .filter(|f| f.code.starts_with("DL"))
        .map(|f| (f.code, f.line))
        .collect()
}

fn codes(src: &str) -> Vec<String> {
    dl(src, &Config::default())
        .into_iter()
        .map(|x| x.0)
        .collect()
}

#[test]
fn inline_pragma_applies_to_the_next_line_only() {
    assert!(codes("# hadolint ignore=DL3006\nFROM debian\n").is_empty());
    assert!(codes("#hadolint ignore = DL3006 # we know\nFROM debian\n").is_empty());
    assert!(codes("# pare ignore=DL3006\nFROM debian\n").is_empty());
    // A blank line or another comment in between: hadolint does not apply it, nor do we.
    assert_eq!(
        codes("# hadolint ignore=DL3006\n\nFROM debian\n"),
        ["DL3006"]
    );
    assert_eq!(
        codes("# hadolint ignore=DL3006\n# other\nFROM debian\n"),
        ["DL3006"]
    );
    // Only the listed codes.
    assert_eq!(
        codes("FROM debian:12\n# hadolint ignore=DL3003\nRUN cd /x && sudo ls\n"),
        ["DL3004"]
    );
    // A multi-line instruction is covered as a whole.
    assert!(
        codes("FROM debian:12\n# hadolint ignore=DL3003\nRUN echo && \\\n  cd /x\n").is_empty()
    );
    // Only the next instruction.
    assert_eq!(
        codes("FROM debian:12\n# hadolint ignore=DL3003\nRUN cd /x\nRUN cd /y\n"),
        ["DL3003", "DL3059"]
    );
}

#[test]
fn global_pragma_applies_everywhere() {
    assert!(
        codes("FROM debian:12\nRUN cd /x\nRUN cd /y\n# hadolint global ignore=DL3003,DL3059\n")
            .is_empty()
    );
    assert!(codes("# pare global ignore=DL3006\nFROM debian\n").is_empty());
}

#[test]
fn pragmas_can_be_disabled() {
    let c = Config {
        disable_ignore_pragma: true,
        ..Config::default()
    };
    assert_eq!(
        dl("# hadolint ignore=DL3006\nFROM debian\n", &c),
        [("DL3006".to_string(), 2)]
    );
    assert_eq!(
        dl("# hadolint global ignore=DL3006\nFROM debian\n", &c),
        [("DL3006".to_string(), 2)]
    );
}

#[test]
fn pragmas_work_for_pa_rules() {
    let src = "FROM debian:12-slim\n# pare ignore=PA1003\nRUN apt-get upgrade -y\n";
    let all: Vec<String> = lint_source(src, &Config::default(), &Context::default())
        .into_iter()
        .map(|f| f.code)
        .collect();
    assert!(!all.contains(&"PA1003".to_string()), "{all:?}");
    let src = "FROM debian:12-slim\nRUN apt-get upgrade -y\n";
    let all: Vec<String> = lint_source(src, &Config::default(), &Context::default())
        .into_iter()
        .map(|f| f.code)
        .collect();
    assert!(all.contains(&"PA1003".to_string()), "{all:?}");
}

#[test]
fn config_ignore_and_override() {
    let c = Config {
        ignored: vec!["DL3006".into()],
        ..Config::default()
    };
    assert!(dl("FROM debian\n", &c).is_empty());
    let mut c = Config::default();
    c.overrides.insert("DL3006".into(), Severity::Error);
    let f = lint_source("FROM debian\n", &c, &Context::default());
    assert_eq!(
        f.iter().find(|f| f.code == "DL3006").map(|f| f.severity),
        Some(Severity::Error)
    );
    // Overriding to ignore drops the finding.
    c.overrides.insert("DL3006".into(), Severity::Ignore);
    assert!(dl("FROM debian\n", &c).is_empty());
}

#[test]
fn failure_threshold_semantics() {
    let t = Threshold::parse("warning").unwrap();
    assert!(t.fails(Severity::Warning) && t.fails(Severity::Error));
    assert!(!t.fails(Severity::Info) && !t.fails(Severity::Style));
    assert!(!Threshold::parse("none").unwrap().fails(Severity::Error));
    assert!(Threshold::parse("bogus").is_none());
}
