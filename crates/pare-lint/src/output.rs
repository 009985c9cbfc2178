//! Renderers: tty, json (hadolint's shape), sarif 2.1.0, checkstyle, gnu, codeclimate and
//! gitlab_codeclimate.

use std::io::Write;

use serde_json::json;

use crate::{Finding, LintError, Severity};

/// Findings of one file, with its text for snippets.
#[derive(Debug, Clone)]
pub struct FileReport {
    /// Name shown in reports (`-` for stdin).
    pub file: String,
    /// The file's full text, for the source lines the `tty` format shows under findings.
    pub source: String,
    /// Findings after ignores, pragmas and overrides, sorted by line.
    pub findings: Vec<Finding>,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable, optionally colored, with the offending source line.
    Tty,
    /// hadolint's JSON: one array of `{code, column, file, level, line, message}` objects.
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
    /// Checkstyle XML.
    Checkstyle,
    /// GNU one-line format, `pare:FILE:LINE:COLUMN: CODE SEVERITY: MESSAGE`.
    Gnu,
    /// Code Climate issues (JSON array).
    Codeclimate,
    /// GitLab's Code Quality flavor of Code Climate (`--format gitlab` also selects it).
    GitlabCodeclimate,
    /// JUnit XML, one test case per finding.
    Junit,
    /// SonarQube generic issue import JSON.
    Sonarqube,
    /// Codacy: one JSON object per line per finding.
    Codacy,
}

impl Format {
    /// Parses a format name as hadolint spells it (case-insensitive; `gitlab` is an alias); `None`
    /// for an unknown name.
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "tty" => Format::Tty,
            "json" => Format::Json,
            "sarif" => Format::Sarif,
            "checkstyle" => Format::Checkstyle,
            "gnu" => Format::Gnu,
            "codeclimate" => Format::Codeclimate,
            "gitlab_codeclimate" | "gitlab" => Format::GitlabCodeclimate,
            "junit" => Format::Junit,
            "sonarqube" => Format::Sonarqube,
            "codacy" => Format::Codacy,
            _ => return None,
        })
    }
}

/// Writes all reports in `format` to `w`; `color` applies to `tty` only. Fails with
/// [`LintError::Write`] when `w` does.
pub fn render(
    w: &mut dyn Write,
    reports: &[FileReport],
    format: Format,
    color: bool,
) -> Result<(), LintError> {
    match format {
        Format::Tty => tty(w, reports, color)?,
        Format::Json => {
            let v: Vec<_> = reports
                .iter()
                .flat_map(|r| {
                    r.findings.iter().map(move |f| {
                        json!({"code": f.code, "column": f.column, "file": r.file, "level": f.severity.as_str(), "line": f.line, "message": f.message})
                    })
                })
                .collect();
            serde_json::to_writer(&mut *w, &v).map_err(std::io::Error::other)?;
            writeln!(w)?;
        }
        Format::Sarif => {
            serde_json::to_writer(&mut *w, &sarif(reports)).map_err(std::io::Error::other)?;
            writeln!(w)?;
        }
        Format::Checkstyle => checkstyle(w, reports)?,
        Format::Gnu => {
            for r in reports {
                for f in &r.findings {
                    writeln!(
                        w,
                        "pare:{}:{}:{}: {} {}: {}",
                        r.file,
                        f.line,
                        f.column,
                        f.code,
                        f.severity.as_str(),
                        f.message
                    )?;
                }
            }
        }
        Format::Junit => junit(w, reports)?,
        Format::Sonarqube => {
            let issues: Vec<_> = reports
                .iter()
                .flat_map(|r| {
                    r.findings.iter().map(move |f| {
                        let (severity, kind) = match f.severity {
                            Severity::Error => ("CRITICAL", "BUG"),
                            Severity::Warning => ("MAJOR", "CODE_SMELL"),
                            Severity::Info => ("MINOR", "CODE_SMELL"),
                            Severity::Style | Severity::Ignore => ("INFO", "CODE_SMELL"),
                        };
                        json!({
                            "engineId": "pare",
                            "primaryLocation": {
                                "filePath": r.file,
                                "message": f.message,
                                "textRange": {"startLine": f.line, "endLine": f.line, "startColumn": f.column.saturating_sub(1), "endColumn": f.column},
                            },
                            "ruleId": f.code,
                            "severity": severity,
                            "type": kind,
                        })
                    })
                })
                .collect();
            serde_json::to_writer(&mut *w, &json!({ "issues": issues }))
                .map_err(std::io::Error::other)?;
            writeln!(w)?;
        }
        Format::Codacy => {
            for r in reports {
                for f in &r.findings {
                    let v = json!({"filename": r.file, "line": f.line, "message": f.message, "patternId": f.code});
                    serde_json::to_writer(&mut *w, &v).map_err(std::io::Error::other)?;
                    writeln!(w)?;
                }
            }
        }
        Format::Codeclimate | Format::GitlabCodeclimate => {
            let v: Vec<_> = reports
                .iter()
                .flat_map(|r| {
                    r.findings
                        .iter()
                        .map(move |f| codeclimate_issue(&r.file, f))
                })
                .collect();
            serde_json::to_writer(&mut *w, &v).map_err(std::io::Error::other)?;
            writeln!(w)?;
        }
    }
    Ok(())
}

fn tty(w: &mut dyn Write, reports: &[FileReport], color: bool) -> std::io::Result<()> {
    for r in reports {
        let lines: Vec<&str> = r.source.lines().collect();
        for f in &r.findings {
            let (c0, c1) = if color {
                match f.severity {
                    Severity::Error => ("\x1b[1;31m", "\x1b[0m"),
                    Severity::Warning => ("\x1b[1;33m", "\x1b[0m"),
                    Severity::Info => ("\x1b[32m", "\x1b[0m"),
                    _ => ("\x1b[36m", "\x1b[0m"),
                }
            } else {
                ("", "")
            };
            writeln!(
                w,
                "{}:{} {} {c0}{}{c1}: {}",
                r.file,
                f.line,
                f.code,
                f.severity.as_str(),
                f.message
            )?;
            if let Some(src) = f.line.checked_sub(1).and_then(|i| lines.get(i)) {
                let num = f.line.to_string();
                let pad = " ".repeat(num.len());
                let (d0, d1) = if color {
                    ("\x1b[2m", "\x1b[0m")
                } else {
                    ("", "")
                };
                writeln!(w, "{d0}{num} |{d1} {src}")?;
                let caret_at = f.column.max(1) - 1;
                writeln!(w, "{d0}{pad} |{d1} {}{c0}^{c1}", " ".repeat(caret_at))?;
            }
        }
    }
    Ok(())
}

fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\n' => o.push_str("&#10;"),
            c if (c as u32) < 0x20 && c != '\t' => {}
            c => o.push(c),
        }
    }
    o
}

fn checkstyle(w: &mut dyn Write, reports: &[FileReport]) -> std::io::Result<()> {
    write!(
        w,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><checkstyle version=\"4.3\">"
    )?;
    for r in reports {
        write!(w, "<file name=\"{}\">", xml_escape(&r.file))?;
        for f in &r.findings {
            write!(
                w,
                "<error column=\"{}\" line=\"{}\" message=\"{}\" severity=\"{}\" source=\"{}\"/>",
                f.column,
                f.line,
                xml_escape(&f.message),
                f.severity.as_str(),
                xml_escape(&f.code)
            )?;
        }
        write!(w, "</file>")?;
    }
    writeln!(w, "</checkstyle>")
}

fn junit(w: &mut dyn Write, reports: &[FileReport]) -> std::io::Result<()> {
    let total: usize = reports.iter().map(|r| r.findings.len()).sum();
    write!(
        w,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><testsuites name=\"pare lint\"><testsuite errors=\"0\" failures=\"{total}\" id=\"pare\" name=\"pare lint\" tests=\"{total}\">"
    )?;
    for r in reports {
        for f in &r.findings {
            write!(
                w,
                "<testcase id=\"pare.rule.{code}\" name=\"{file}:{line} {code}\"><failure id=\"{code}\" message=\"{msg}\" type=\"{sev}\">File: {file}\nLine: {line}\n{sev}: {msg}\n</failure></testcase>",
                code = xml_escape(&f.code),
                file = xml_escape(&r.file),
                line = f.line,
                msg = xml_escape(&f.message),
                sev = f.severity.as_str(),
            )?;
        }
    }
    writeln!(w, "</testsuite></testsuites>")
}

fn codeclimate_issue(file: &str, f: &Finding) -> serde_json::Value {
    let severity = match f.severity {
        Severity::Error => "critical",
        Severity::Warning => "major",
        Severity::Info => "minor",
        Severity::Style | Severity::Ignore => "info",
    };
    json!({
        "categories": ["Bug Risk"],
        "check_name": f.code,
        "description": f.message,
        "fingerprint": fingerprint(&[file, &f.code, &f.line.to_string(), &f.message]),
        "location": {"lines": {"begin": f.line, "end": f.line}, "path": file},
        "severity": severity,
        "type": "issue",
    })
}

/// Stable 128-bit FNV-1a fingerprint (hex) for GitLab's de-duplication.
fn fingerprint(parts: &[&str]) -> String {
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0u8)) {
            h ^= u128::from(b);
            h = h.wrapping_mul(0x0000000001000000000000000000013B);
        }
    }
    format!("{h:032x}")
}

fn sarif(reports: &[FileReport]) -> serde_json::Value {
    let mut used: Vec<&str> = reports
        .iter()
        .flat_map(|r| r.findings.iter().map(|f| f.code.as_str()))
        .collect();
    used.sort_unstable();
    used.dedup();
    let rules: Vec<_> = used
        .iter()
        .map(|code| {
            let info = crate::rules::info(code);
            let level = match info.map(|i| i.severity) {
                Some(Severity::Error) => "error",
                Some(Severity::Warning) => "warning",
                _ => "note",
            };
            let doc = if code.starts_with("PA") {
                format!("https://example.invalid/pare/docs/rules/{code}.md")
            } else {
                format!("https://github.com/hadolint/hadolint/wiki/{code}")
            };
            json!({
                "id": code,
                "shortDescription": {"text": info.map(|i| i.message).unwrap_or(code)},
                "helpUri": doc,
                "defaultConfiguration": {"level": level},
            })
        })
        .collect();
    let used = &used;
    let results: Vec<_> = reports
        .iter()
        .flat_map(|r| {
            r.findings.iter().map(move |f| {
                let level = match f.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                    Severity::Info | Severity::Style => "note",
                    Severity::Ignore => "none",
                };
                json!({
                    "ruleId": f.code,
                    "ruleIndex": used.iter().position(|c| *c == f.code).unwrap_or(0),
                    "level": level,
                    "message": {"text": f.message},
                    "locations": [{
                        "physicalLocation": {
                            "artifactLocation": {"uri": r.file},
                            "region": {"startLine": f.line.max(1), "startColumn": f.column.max(1), "endLine": f.line.max(1), "sourceLanguage": "dockerfile"}
                        }
                    }]
                })
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "pare-lint",
                "fullName": "pare lint (hadolint-compatible Dockerfile linter)",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://example.invalid/pare",
                "rules": rules,
            }},
            "defaultSourceLanguage": "dockerfile",
            "results": results,
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<FileReport> {
        vec![FileReport {
            file: "Dockerfile".into(),
            source: "FROM debian\nRUN cd /x\n".into(),
            findings: vec![
                crate::rules::finding(&crate::rules::dl::stages::DL3006, 1),
                crate::rules::finding(&crate::rules::dl::run::DL3003, 2),
            ],
        }]
    }

    fn render_str(f: Format, color: bool) -> String {
        let mut v = Vec::new();
        render(&mut v, &sample(), f, color).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn json_shape_matches_hadolint() {
        let s = render_str(Format::Json, false);
        assert_eq!(
            s.lines().next().unwrap(),
            r#"[{"code":"DL3006","column":1,"file":"Dockerfile","level":"warning","line":1,"message":"Always tag the version of an image explicitly"},{"code":"DL3003","column":1,"file":"Dockerfile","level":"warning","line":2,"message":"Use WORKDIR to switch to a directory"}]"#
        );
    }

    #[test]
    fn tty_snippet_and_color() {
        let plain = render_str(Format::Tty, false);
        assert!(plain.contains("Dockerfile:2 DL3003 warning: Use WORKDIR"));
        assert!(plain.contains("2 | RUN cd /x\n  | ^"));
        assert!(!plain.contains('\x1b'));
        assert!(render_str(Format::Tty, true).contains("\x1b[1;33mwarning"));
    }

    #[test]
    fn other_formats() {
        assert!(render_str(Format::Gnu, false).contains("pare:Dockerfile:2:1: DL3003 warning:"));
        let cs = render_str(Format::Checkstyle, false);
        assert!(cs.contains("<error column=\"1\" line=\"2\" message=\"Use WORKDIR to switch to a directory\" severity=\"warning\" source=\"DL3003\"/>"));
        let ju = render_str(Format::Junit, false);
        assert!(ju.contains("failures=\"2\""));
        assert!(ju.contains("<failure id=\"DL3003\" message=\"Use WORKDIR to switch to a directory\" type=\"warning\">"));
        let sq: serde_json::Value =
            serde_json::from_str(&render_str(Format::Sonarqube, false)).unwrap();
        assert_eq!(
            sq["issues"][1]["primaryLocation"]["textRange"]["startLine"],
            2
        );
        let codacy = render_str(Format::Codacy, false);
        let lines: Vec<serde_json::Value> = codacy
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["patternId"], "DL3006");
        let cc: serde_json::Value =
            serde_json::from_str(&render_str(Format::GitlabCodeclimate, false)).unwrap();
        assert_eq!(cc[1]["location"]["lines"]["begin"], 2);
        assert_ne!(cc[0]["fingerprint"], cc[1]["fingerprint"]);
    }
}
