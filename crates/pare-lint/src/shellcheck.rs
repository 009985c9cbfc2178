//! Optional ShellCheck pass (`pare lint --shellcheck`): runs the `shellcheck` binary on every
//! shell-form `RUN` (and `ONBUILD RUN`) script and reports its SC codes at the RUN's line, the way
//! hadolint does. The dialect follows the stage's `SHELL` (bash if it is bash, else POSIX sh);
//! `pwsh`/`cmd` stages are skipped. As in hadolint, SC2154 ("referenced but not assigned"),
//! SC2015, SC1090 and SC1091 are left out, and SC2086 is not reported for variables the
//! Dockerfile declares with ARG/ENV (their values are known at build time).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::parse::{Dockerfile, Instruction};
use crate::{Finding, Severity};

const EXCLUDED: &[u64] = &[2154, 2015, 1090, 1091];

/// ShellCheck findings for a parsed Dockerfile. Scripts shellcheck cannot process are skipped.
pub fn check(df: &Dockerfile, bin: &Path) -> Vec<Finding> {
    let mut out = Vec::new();
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
                    vec![ins.args.split('=').next().unwrap_or("").trim().to_string()]
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
                } else if ["pwsh", "powershell", "cmd"]
                    .iter()
                    .any(|p| first.contains(p))
                {
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
        out.extend(check_run(run, ins.line, d, bin, &declared));
    }
    out
}

fn check_run(
    run: &Instruction,
    line: usize,
    dialect: &str,
    bin: &Path,
    declared: &[String],
) -> Vec<Finding> {
    if run.exec.is_some() {
        return Vec::new();
    }
    let script = script_of(run);
    let Ok(mut child) = Command::new(bin)
        .args([
            "-s",
            dialect,
            "-f",
            "json",
            "-e",
            &EXCLUDED
                .iter()
                .map(|c| format!("SC{c}"))
                .collect::<Vec<_>>()
                .join(","),
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    else {
        return Vec::new();
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(script.as_bytes());
    }
    let Ok(output) = child.wait_with_output() else {
        return Vec::new();
    };
    let lines: Vec<&str> = script.lines().collect();
    let Ok(items) = serde_json::from_slice::<Vec<serde_json::Value>>(&output.stdout) else {
        return Vec::new();
    };
    // SC2086 on a variable the Dockerfile declares is not reported.
    let kept: Vec<serde_json::Value> = items
        .into_iter()
        .filter(|it| {
            if it["code"].as_u64() != Some(2086) {
                return true;
            }
            let (Some(l), Some(c)) = (it["line"].as_u64(), it["column"].as_u64()) else {
                return true;
            };
            let Some(text) = lines.get((l as usize).saturating_sub(1)) else {
                return true;
            };
            let at: String = text.chars().skip((c as usize).saturating_sub(1)).collect();
            let name: String = at
                .trim_start_matches('$')
                .trim_start_matches('{')
                .chars()
                .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
                .collect();
            !declared.contains(&name)
        })
        .collect();
    parse_output(
        serde_json::to_string(&kept).unwrap_or_default().as_bytes(),
        line,
    )
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
    items
        .iter()
        .filter_map(|it| {
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
        })
        .collect()
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
