//! Hadolint-compatible Dockerfile linter behind `pare lint`.
//!
//! Pipeline: [`parse::parse`] (Dockerfile → instructions with positions, comments, heredocs) →
//! [`shell::parse`] for every RUN → [`rules`] (hadolint DL rules and pare PA rules) →
//! pragma/config filtering in [`lint_source`] → renderers in [`output`].

#![deny(missing_docs)]

pub mod cli;
pub mod config;
pub mod error;
pub mod output;
pub mod parse;
pub mod rules;
pub mod shell;
pub mod shellcheck;

use std::path::Path;

pub use config::{Config, Threshold};
pub use error::{LintError, ParseError};

/// Severity of a finding, as hadolint names them. Ordered: `Error` is the most severe.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Never reported; an override to `ignore` drops the rule's findings.
    Ignore,
    /// Stylistic advice (hadolint `style`).
    Style,
    /// Informational (hadolint `info`): the default failure threshold.
    Info,
    /// A likely problem (hadolint `warning`).
    Warning,
    /// A definite problem (hadolint `error`), such as a Dockerfile syntax error (DL1000).
    Error,
}

impl Severity {
    /// The lowercase name hadolint uses (`error`, `warning`, `info`, `style`, `ignore`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
            Severity::Style => "style",
            Severity::Ignore => "ignore",
        }
    }
    /// Parses a severity name, case-insensitively and ignoring surrounding whitespace; `None` for
    /// anything else.
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "error" => Severity::Error,
            "warning" => Severity::Warning,
            "info" => Severity::Info,
            "style" => Severity::Style,
            "ignore" => Severity::Ignore,
            _ => return None,
        })
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// Rule code (`DL3008`, `SC2086`, `PA001`).
    pub code: String,
    /// The rule's default severity, or its config override in findings [`lint_source`] returns.
    pub severity: Severity,
    /// One-line explanation, as hadolint words it for DL rules.
    pub message: String,
    /// 1-based line of the instruction the finding is about.
    pub line: usize,
    /// 1-based column (1 for whole-instruction findings).
    pub column: usize,
}

/// Everything the rules may need to know besides the text.
#[derive(Debug, Clone, Default)]
pub struct Context<'a> {
    /// Path of the Dockerfile, if it is a file (for PA rules that look beside it, e.g. `.dockerignore`).
    pub path: Option<&'a Path>,
    /// Run this `shellcheck` binary on RUN scripts (optional SC codes, like hadolint).
    pub shellcheck: Option<&'a Path>,
}

/// Lints one Dockerfile's text with a config. Parse errors become a single DL1000 finding (like
/// hadolint, the rest of that file is not linted). Findings are sorted by line, then code.
pub fn lint_source(src: &str, cfg: &Config, ctx: &Context<'_>) -> Vec<Finding> {
    let df = match parse::parse(src) {
        Ok(d) => d,
        Err(e) => {
            let rule = &rules::dl::DL1000;
            let f = Finding {
                code: rule.code.into(),
                severity: cfg.severity_of(rule.code, rule.severity),
                message: e.message().to_string(),
                line: e.line(),
                column: e.column(),
            };
            return if cfg.is_ignored(rule.code) || f.severity == Severity::Ignore {
                vec![]
            } else {
                vec![f]
            };
        }
    };
    let mut raw = rules::check(&df, cfg, ctx);
    if let Some(bin) = ctx.shellcheck {
        raw.extend(shellcheck::check(&df, bin));
    }
    let pragmas = Pragmas::collect(&df, cfg);
    let mut out: Vec<Finding> = raw
        .into_iter()
        .filter(|f| !cfg.is_ignored(&f.code))
        .filter(|f| !pragmas.suppresses(&f.code, f.line))
        .map(|mut f| {
            f.severity = cfg.severity_of(&f.code, f.severity);
            f
        })
        .filter(|f| f.severity != Severity::Ignore)
        .collect();
    out.sort_by(|a, b| a.line.cmp(&b.line).then_with(|| a.code.cmp(&b.code)));
    out.dedup();
    out
}

/// Inline and global ignore pragmas: `# hadolint ignore=DL3008,DL3009`, `# hadolint global
/// ignore=…`, and the same with `pare` instead of `hadolint`.
#[derive(Debug, Default)]
pub struct Pragmas {
    global: Vec<String>,
    /// (line of the instruction the pragma applies to, codes)
    inline: Vec<(usize, Vec<String>)>,
}

impl Pragmas {
    /// Collects the pragmas from the Dockerfile's comments; none when the config disables pragmas
    /// (`disable-ignore-pragma`).
    pub fn collect(df: &parse::Dockerfile, cfg: &Config) -> Pragmas {
        let mut p = Pragmas::default();
        if cfg.disable_ignore_pragma {
            return p;
        }
        for c in &df.comments {
            let Some((global, codes)) = parse_pragma(&c.text) else {
                continue;
            };
            if global {
                p.global.extend(codes);
            } else {
                // Like hadolint: the pragma applies to the instruction on the very next line only.
                p.inline.push((c.line + 1, codes));
            }
        }
        p
    }
    /// Whether `code` is ignored globally, or by an inline pragma on the line just above `line`.
    pub fn suppresses(&self, code: &str, line: usize) -> bool {
        self.global.iter().any(|c| c == code)
            || self
                .inline
                .iter()
                .any(|(l, cs)| *l == line && cs.iter().any(|c| c == code))
    }
}

/// `hadolint ignore=A,B # reason` → (false, [A, B]); `pare global ignore=…` → (true, …).
pub fn parse_pragma(text: &str) -> Option<(bool, Vec<String>)> {
    let t = text.trim();
    let rest = t
        .strip_prefix("hadolint")
        .or_else(|| t.strip_prefix("pare"))?;
    let rest = rest.trim_start();
    let (global, rest) = match rest.strip_prefix("global") {
        Some(r) => (true, r.trim_start()),
        None => (false, rest),
    };
    let list = rest
        .strip_prefix("ignore")?
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let list = list.split('#').next().unwrap_or("");
    let list = list.split_whitespace().next().unwrap_or("");
    let codes: Vec<String> = list
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if codes.is_empty() {
        None
    } else {
        Some((global, codes))
    }
}

/// Lints a file on disk.
pub fn lint_file(path: &Path, cfg: &Config) -> Result<Vec<Finding>, LintError> {
    let bytes = std::fs::read(path).map_err(|source| LintError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let src = String::from_utf8_lossy(&bytes);
    Ok(lint_source(
        &src,
        cfg,
        &Context {
            path: Some(path),
            shellcheck: None,
        },
    ))
}

/// Collects Dockerfiles from inputs: files as given, directories searched recursively for
/// `Dockerfile*`, `*.dockerfile` and `Containerfile*`. `-` is passed through (stdin).
pub fn discover(inputs: &[std::path::PathBuf]) -> Result<Vec<std::path::PathBuf>, LintError> {
    let mut out = Vec::new();
    for p in inputs {
        if p.as_os_str() == "-" || !p.is_dir() {
            out.push(p.clone());
            continue;
        }
        let mut found = Vec::new();
        walk(p, &mut found, 0)?;
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>, depth: usize) -> Result<(), LintError> {
    if depth > 64 {
        return Ok(());
    }
    let rd = std::fs::read_dir(dir).map_err(|source| LintError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    for e in rd {
        let e = e.map_err(|source| LintError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        let ft = e.file_type().map_err(|source| LintError::Read {
            path: e.path(),
            source,
        })?;
        if ft.is_dir() {
            if name.starts_with('.') || name == "node_modules" || name == "target" {
                continue;
            }
            walk(&e.path(), out, depth + 1)?;
        } else if is_dockerfile_name(&name) {
            out.push(e.path());
        }
    }
    Ok(())
}

/// `Dockerfile`, `Dockerfile.dev`, `prod.Dockerfile`, `x.dockerfile`, `Containerfile`.
pub fn is_dockerfile_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with("Dockerfile")
        || name.starts_with("Containerfile")
        || lower.ends_with(".dockerfile")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pragma_parsing() {
        assert_eq!(
            parse_pragma("hadolint ignore=DL3008,DL3009 # why"),
            Some((false, vec!["DL3008".into(), "DL3009".into()]))
        );
        assert_eq!(
            parse_pragma("pare global ignore=PA1001"),
            Some((true, vec!["PA1001".into()]))
        );
        assert_eq!(parse_pragma("just a comment"), None);
    }

    #[test]
    fn names() {
        for n in [
            "Dockerfile",
            "Dockerfile.dev",
            "api.dockerfile",
            "Containerfile",
        ] {
            assert!(is_dockerfile_name(n), "{n}");
        }
        assert!(!is_dockerfile_name("README.md"));
    }
}
