//! Optional ShellCheck pass (`pare lint --shellcheck`): runs the `shellcheck` binary on every
//! shell-form `RUN` (and `ONBUILD RUN`) script and reports its SC codes at the RUN's line, the way
//! hadolint does. The dialect follows the stage's `SHELL` (bash if it is bash, else POSIX sh);
//! `pwsh`/`cmd` stages are skipped. As in hadolint, SC2154 ("referenced but not assigned"),
//! SC2015, SC1090 and SC1091 are left out, and SC2086 is not reported for variables the
//! Dockerfile declares with ARG/ENV (their values are known at build time).

use std::path::Path;
use std::process::{Command, Stdio};

use crate::parse::{Dockerfile, Instruction};
use crate::{Finding, Severity};

const EXCLUDED: &[u64] = &[2154, 2015, 1090, 1091];

/// ShellCheck findings for a parsed Dockerfile. Scripts shellcheck cannot process are skipped.
pub fn check(df: &Dockerfile, bin: &Path) -> Vec<Finding> {
    let mut jobs: Vec<Job> = Vec::new();
    let mut dialect: Option<&'static str> = Some("sh");
    let mut global: Vec<String> = Vec::new();
    let mut declared: Vec<String> = Vec::new();
    let mut seen_from = false;
    let mut by_stage: Vec<(String, Vec<String>)> = Vec::new();
    let mut current_alias: Option<String> = None;
    for ins in &df.instructions {
        match ins.keyword.as_str() {
            "FROM" => {
                if let Some(alias) = &current_alias {
                    by_stage.push((alias.clone(), declared.clone()));
                }
                let f = crate::rules::parse_from(ins);
                dialect = Some("sh");
                seen_from = true;
                // `FROM <stage>` inherits that stage's ARG/ENV names.
                declared = by_stage
                    .iter()
                    .rev()
                    .find(|(a, _)| a.eq_ignore_ascii_case(&f.image))
                    .map(|(_, d)| d.clone())
                    .unwrap_or_else(|| global.clone());
                current_alias = f.alias;
            }
            "ARG" | "ENV" => {
                let names: Vec<String> = if ins.keyword == "ARG" {
                    vec![ins.arg_name().to_string()]
                } else {
                    crate::rules::kv_pairs(&ins.args)
                        .into_iter()
                        .map(|(k, _)| k)
                        .collect()
                };
                if seen_from {
                    declared.extend(names)
                } else {
                    global.extend(names)
                }
            }
            "SHELL" => {
                let first = ins
                    .exec
                    .as_ref()
                    .and_then(|a| a.first())
                    .map(|s| s.to_ascii_lowercase())
                    .unwrap_or_default();
                dialect = if first.contains("bash") {
                    Some("bash")
                } else if crate::rules::non_posix_shell(&first) {
                    None
                } else {
                    Some("sh")
                };
            }
            _ => {}
        }
        let Some(d) = dialect else { continue };
        let run = match (ins.keyword.as_str(), ins.onbuild.as_deref()) {
            ("RUN", _) => ins,
            ("ONBUILD", Some(inner)) if inner.keyword == "RUN" => inner,
            _ => continue,
        };
        if run.exec.is_none() {
            jobs.push(Job {
                script: script_of(run),
                line: ins.line,
                dialect: d,
                declared: declared.clone(),
            });
        }
    }
    run_batch(&jobs, bin)
}

/// One RUN script to check.
struct Job {
    script: String,
    line: usize,
    dialect: &'static str,
    declared: Vec<String>,
}

/// Runs shellcheck once per dialect over all scripts (written to a private temp dir).
fn run_batch(jobs: &[Job], bin: &Path) -> Vec<Finding> {
    let mut out = Vec::new();
    if jobs.is_empty() {
        return out;
    }
    let Ok(dir) = tempfile::tempdir() else {
        return out;
    };
    let mut paths = Vec::with_capacity(jobs.len());
    for (i, j) in jobs.iter().enumerate() {
        let p = dir.path().join(format!("{i}.sh"));
        if std::fs::write(&p, &j.script).is_err() {
            return out;
        }
        paths.push(p);
    }
    let excluded = EXCLUDED
        .iter()
        .map(|c| format!("SC{c}"))
        .collect::<Vec<_>>()
        .join(",");
    for dialect in ["sh", "bash"] {
        let idx: Vec<usize> = (0..jobs.len())
            .filter(|&i| jobs[i].dialect == dialect)
            .collect();
        if idx.is_empty() {
            continue;
        }
        let Ok(output) = Command::new(bin)
            .args(["-s", dialect, "-f", "json", "-e", &excluded])
            .args(idx.iter().map(|&i| &paths[i]))
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
        else {
            continue;
        };
        let Ok(items) = serde_json::from_slice::<Vec<serde_json::Value>>(&output.stdout) else {
            continue;
        };
        for it in items {
            let Some(i) = it["file"]
                .as_str()
                .and_then(|f| Path::new(f).file_stem())
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<usize>().ok())
                .filter(|&i| i < jobs.len())
            else {
                continue;
            };
            let job = &jobs[i];
            if it["code"].as_u64() == Some(2086) && declared_var(&job.script, &it, &job.declared) {
                continue;
            }
            out.extend(to_finding(&it, job.line));
        }
    }
    out
}

/// Is the SC2086 finding about a variable the Dockerfile declares (ARG/ENV)?
fn declared_var(script: &str, it: &serde_json::Value, declared: &[String]) -> bool {
    let (Some(l), Some(c)) = (it["line"].as_u64(), it["column"].as_u64()) else {
        return false;
    };
    let Some(text) = script.lines().nth((l as usize).saturating_sub(1)) else {
        return false;
    };
    let at: String = text.chars().skip((c as usize).saturating_sub(1)).collect();
    let name: String = at
        .trim_start_matches('$')
        .trim_start_matches('{')
        .chars()
        .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
        .collect();
    declared.contains(&name)
}

/// The script shellcheck sees: the RUN text; heredocs fed to a shell become real shell
/// heredocs (`cmd <<EOF` … `EOF`), and a bare `RUN <<EOF` is its body.
fn script_of(run: &Instruction) -> String {
    if run.heredocs.is_empty() {
        return run.args.clone();
    }
    let head = crate::shell::parse(&run.args);
    if head.commands.is_empty() {
        return run
            .heredocs
            .iter()
            .map(|h| h.body.as_str())
            .collect::<Vec<_>>()
            .join("\n");
    }
    let mut s = run.args.clone();
    for h in &run.heredocs {
        s.push('\n');
        s.push_str(&h.body);
        s.push('\n');
        s.push_str(&h.delimiter);
    }
    s
}

/// Parses `shellcheck -f json` output into findings at `line`.
pub fn parse_output(json: &[u8], line: usize) -> Vec<Finding> {
    let Ok(items) = serde_json::from_slice::<Vec<serde_json::Value>>(json) else {
        return Vec::new();
    };
    items.iter().filter_map(|it| to_finding(it, line)).collect()
}

/// One item of `shellcheck -f json` output as a finding at `line` (`None` when excluded or
/// malformed).
fn to_finding(it: &serde_json::Value, line: usize) -> Option<Finding> {
    let code = it["code"].as_u64()?;
    if EXCLUDED.contains(&code) {
        return None;
    }
    let severity = match it["level"].as_str()? {
        "error" => Severity::Error,
        "warning" => Severity::Warning,
        "info" => Severity::Info,
        _ => Severity::Style,
    };
    Some(Finding {
        code: format!("SC{code}"),
        severity,
        message: it["message"].as_str()?.to_string(),
        line,
        column: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_shellcheck_json() {
        let j = br#"[{"file":"-","line":1,"column":15,"level":"info","code":2086,"message":"Double quote to prevent globbing and word splitting."},
                    {"file":"-","line":1,"column":15,"level":"warning","code":2154,"message":"a is referenced but not assigned."}]"#;
        let f = parse_output(j, 7);
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].code.as_str(), f[0].line, f[0].severity),
            ("SC2086", 7, Severity::Info)
        );
        assert!(parse_output(b"not json", 1).is_empty());
    }
}
