//! The Dockerfile parser, the shell tokenizer behind RUN and every lint rule, with all output
//! formats rendered.

use pare_lint::output::{FileReport, Format, render};
use pare_lint::{Config, Context, lint_source};

const FORMATS: &[&str] = &[
    "tty", "json", "sarif", "checkstyle", "gnu", "codeclimate", "gitlab", "junit", "sonarqube",
    "codacy",
];

/// The body: the input (lossy UTF-8) parsed as a Dockerfile and linted with the default
/// config, and the findings rendered in the output format the first byte picks.
pub fn run(data: &[u8]) {
    let src = String::from_utf8_lossy(data);
    let _ = pare_lint::parse::parse(&src);
    let findings = lint_source(&src, &Config::default(), &Context::default());
    let reports = [FileReport {
        file: "Dockerfile".into(),
        source: src.into_owned(),
        findings,
    }];
    let format = FORMATS[data.first().map_or(0, |b| usize::from(*b) % FORMATS.len())];
    if let Some(f) = Format::parse(format) {
        let _ = render(&mut std::io::sink(), &reports, f, true);
    }
}
