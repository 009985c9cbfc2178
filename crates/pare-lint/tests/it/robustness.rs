//! Untrusted input: the linter must never panic, whatever the bytes.

use std::path::Path;

use pare_lint::{Config, Context, lint_source};
use proptest::prelude::*;

fn lint(s: &str) {
    let _ = lint_source(s, &Config::default(), &Context::default());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
        lint(&s);
        let _ = pare_lint::parse::expand(&s, &|n: &str| (n.len() % 2 == 0).then(|| n.to_string()));
    }

    #[test]
    fn dockerfile_like_text_never_panics(
        lines in proptest::collection::vec(
            "(FROM|RUN|COPY|ADD|ENV|LABEL|USER|WORKDIR|ONBUILD|HEALTHCHECK|SHELL|EXPOSE|ARG|CMD|#|# escape=`)? ?[-a-z0-9 =$\\{\\}\"'`\\\\|&;<>()\\[\\],:/.@é]{0,40}",
            0..12,
        )
    ) {
        lint(&lines.join("\n"));
    }
}

#[test]
fn every_prefix_of_the_fixtures_and_corpus_is_handled() {
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules");
    files.extend(
        std::fs::read_dir(&fixtures)
            .unwrap()
            .map(|e| e.unwrap().path()),
    );
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/dockerfiles");
    if let Ok(rd) = std::fs::read_dir(&corpus) {
        files.extend(rd.map(|e| e.unwrap().path()));
    } else {
        eprintln!("NOTICE: ../shared/dockerfiles not found; only fixtures are used");
    }
    for f in files {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        // Cut at every line start and in the middle of every line.
        let mut cuts: Vec<usize> = vec![text.len()];
        let mut start = 0;
        for line in text.split_inclusive('\n') {
            cuts.push(start);
            let mid = start + line.len() / 2;
            if text.is_char_boundary(mid) {
                cuts.push(mid);
            }
            start += line.len();
        }
        for c in cuts {
            lint(&text[..c]);
        }
    }
}

#[test]
fn multibyte_text_in_rule_inputs() {
    lint("FROM debian:12\nHEALTHCHECK CMé\nHEALTHCHECK Cé\n");
    let mut c = Config::default();
    c.label_schema.insert("created".into(), "rfc3339".into());
    c.label_schema.insert("v".into(), "semver".into());
    let _ = lint_source(
        "FROM debian:12\nLABEL created=\"2024-01-02T03:04:05ééé\" v=é.1.2\n",
        &c,
        &Context::default(),
    );
}
