//! `.hadolint.yaml`: parsed, applied, and used to lint a Dockerfile.

use std::path::Path;

use pare_lint::config::parse_config;
use pare_lint::{Config, Context, lint_source};

const DOCKERFILE: &str = "FROM debian:bookworm\nLABEL maintainer=x version=1\n\
    RUN apt-get update && apt-get install curl\nUSER root\nADD . /app\n";

/// The body: the input (lossy UTF-8) parsed as `.hadolint.yaml` and applied; when it applies,
/// a fixed Dockerfile is linted with it and the failure threshold checked. Errors must be one
/// line.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let file = match parse_config(&text, Path::new(".hadolint.yaml")) {
        Ok(f) => f,
        Err(e) => return crate::one_line(&e),
    };
    let mut cfg = Config::default();
    match cfg.apply_file(file) {
        Ok(()) => {
            let findings = lint_source(DOCKERFILE, &cfg, &Context::default());
            let _ = findings.iter().any(|f| cfg.failure_threshold.fails(f.severity));
        }
        Err(e) => crate::one_line(&e),
    }
}
