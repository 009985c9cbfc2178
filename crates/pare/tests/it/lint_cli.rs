//! `pare lint` end to end: inputs, config search, env vars, formats, exit codes.

use std::path::Path;

use assert_cmd::Command;

/// `pare lint` isolated from the user's config: private HOME and cwd, no HADOLINT_* variables.
fn pare(cwd: &Path) -> Command {
    let mut c = crate::cli::pare_cmd();
    c.arg("lint")
        .current_dir(cwd)
        .env("HOME", cwd)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("NO_COLOR");
    for (k, _) in std::env::vars() {
        if k.starts_with("HADOLINT_") || k.starts_with("PARE_LINT_") {
            c.env_remove(k);
        }
    }
    c
}

fn json(out: &[u8]) -> Vec<serde_json::Value> {
    serde_json::from_slice::<serde_json::Value>(out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn codes(out: &[u8]) -> Vec<String> {
    json(out)
        .iter()
        .map(|v| v["code"].as_str().unwrap().to_string())
        .filter(|c| c.starts_with("DL"))
        .collect()
}

const BAD: &str = "FROM debian\nRUN cd /tmp && apt-get install -y --no-install-recommends curl=1\n";

/// A temp dir (the runs' cwd and HOME) holding `files`, as (path, content), parents made.
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let p = d.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    d
}

/// Runs `c`, asserting it exits with `code` (with any code when `None`); its stdout.
fn stdout(c: &mut Command, code: Option<i32>) -> Vec<u8> {
    let a = c.assert();
    match code {
        Some(n) => a.code(n),
        None => a,
    }
    .get_output()
    .stdout
    .clone()
}

#[test]
fn exit_codes_follow_findings_and_threshold() {
    let d = dir_with(&[("Dockerfile", BAD)]);
    pare(d.path()).assert().code(1);
    pare(d.path()).arg("--no-fail").assert().code(0);
    // DL3006 and DL3003 are warnings: an error threshold passes.
    pare(d.path())
        .args([
            "-t", "error", "--ignore", "PA1001", "--ignore", "PA1006", "--ignore", "PA1007",
        ])
        .assert()
        .code(0);
    pare(d.path()).args(["-t", "warning"]).assert().code(1);
    pare(d.path()).args(["-t", "bogus"]).assert().code(2);
    std::fs::write(
        d.path().join("ok.Dockerfile"),
        "FROM debian:12-slim\nUSER 1000\nCMD [\"true\"]\n",
    )
    .unwrap();
    pare(d.path())
        .arg("ok.Dockerfile")
        .assert()
        .code(0)
        .stdout("");
}

#[test]
fn missing_file_is_an_error_but_others_are_linted() {
    let d = dir_with(&[("Dockerfile", BAD)]);
    let out = pare(d.path())
        .args(["-f", "json", "nope.Dockerfile", "Dockerfile"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.Dockerfile"));
    assert!(codes(&out.stdout).contains(&"DL3003".to_string()));
}

#[test]
fn directories_stdin_and_json_shape() {
    let d = dir_with(&[
        ("svc/a/Dockerfile", BAD),
        ("svc/api.dockerfile", "FROM debian:latest\n"),
        ("svc/Dockerfile.dev", "FROM debian:12\nMAINTAINER me\n"),
        ("svc/README.md", "FROM debian\n"),
    ]);
    let out = stdout(
        pare(d.path()).args(["-f", "json", "--no-fail", "svc"]),
        Some(0),
    );
    let items = json(&out);
    let files: std::collections::BTreeSet<String> = items
        .iter()
        .map(|v| v["file"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(!files.iter().any(|f| f.ends_with("README.md")));
    let c = codes(&out);
    assert!(
        c.contains(&"DL3007".into())
            && c.contains(&"DL4000".into())
            && c.contains(&"DL3003".into())
    );

    let out = stdout(
        pare(d.path()).args(["-f", "json", "-"]).write_stdin(BAD),
        Some(1),
    );
    let items = json(&out);
    assert!(items.iter().all(|v| v["file"] == "-"));
    assert_eq!(
        items[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["code", "column", "file", "level", "line", "message"]
    );
}

#[test]
fn config_file_search_and_precedence() {
    let d = dir_with(&[("Dockerfile", BAD)]);
    // ./.hadolint.yaml is found.
    std::fs::write(
        d.path().join(".hadolint.yaml"),
        "ignored: [DL3006]\nfailure-threshold: error\n",
    )
    .unwrap();
    let out = stdout(pare(d.path()).args(["-f", "json"]), Some(0));
    assert_eq!(codes(&out), ["DL3003"]);
    // --ignore replaces the config's list.
    let out = stdout(
        pare(d.path()).args(["-f", "json", "--ignore", "DL3003"]),
        None,
    );
    assert_eq!(codes(&out), ["DL3006"]);
    // HADOLINT_* variables add to it.
    let out = stdout(
        pare(d.path())
            .args(["-f", "json"])
            .env("HADOLINT_IGNORE", "DL3003"),
        None,
    );
    assert!(codes(&out).is_empty());
    // An override to error makes the error threshold fail.
    pare(d.path())
        .env("HADOLINT_OVERRIDE_ERROR", "DL3003")
        .assert()
        .code(1);
    // An explicit -c wins over the search.
    std::fs::write(d.path().join("other.yaml"), "ignored: [DL3003]\n").unwrap();
    let out = stdout(
        pare(d.path()).args(["-f", "json", "-c", "other.yaml", "--no-fail"]),
        None,
    );
    assert_eq!(codes(&out), ["DL3006"]);
    // ~/.config/hadolint.yaml is used when there is none in the cwd.
    std::fs::remove_file(d.path().join(".hadolint.yaml")).unwrap();
    std::fs::create_dir_all(d.path().join(".config")).unwrap();
    std::fs::write(
        d.path().join(".config/hadolint.yaml"),
        "ignored: [DL3003, DL3006]\n",
    )
    .unwrap();
    let out = stdout(pare(d.path()).args(["-f", "json", "--no-fail"]), None);
    assert!(codes(&out).is_empty());
    // A broken config is an error naming the file.
    std::fs::write(d.path().join("bad.yaml"), "ignored: 3\nwhat: x\n").unwrap();
    let out = pare(d.path())
        .args(["-c", "bad.yaml"])
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    assert!(String::from_utf8_lossy(&out).contains("bad.yaml"));
}

#[test]
fn formats_output_file_and_tty() {
    let d = dir_with(&[("Dockerfile", BAD)]);
    pare(d.path())
        .args(["-f", "sarif", "-o", "r.sarif", "--no-fail"])
        .assert()
        .code(0)
        .stdout("");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("r.sarif")).unwrap()).unwrap();
    assert_eq!(s["version"], "2.1.0");
    let out = stdout(pare(d.path()).arg("--no-fail"), None);
    let tty = String::from_utf8(out).unwrap();
    assert!(tty.contains("Dockerfile:2 DL3003 warning: Use WORKDIR to switch to a directory"));
    assert!(tty.contains("2 | RUN cd /tmp"), "{tty}");
    assert!(
        !tty.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    for f in [
        "checkstyle",
        "gnu",
        "codeclimate",
        "gitlab_codeclimate",
        "junit",
        "sonarqube",
        "codacy",
    ] {
        pare(d.path()).args(["-f", f, "--no-fail"]).assert().code(0);
    }
    pare(d.path()).args(["-f", "yaml"]).assert().code(2);
    // HADOLINT_FORMAT selects the format too.
    let out = stdout(
        pare(d.path())
            .arg("--no-fail")
            .env("HADOLINT_FORMAT", "json"),
        None,
    );
    assert!(!codes(&out).is_empty());
}

#[test]
fn a_broken_file_does_not_stop_the_others() {
    let d = dir_with(&[
        ("a.Dockerfile", "FROM debian:12\nINVALID woops\n"),
        ("b.Dockerfile", BAD),
    ]);
    let out = stdout(
        pare(d.path()).args(["-f", "json", "a.Dockerfile", "b.Dockerfile"]),
        Some(1),
    );
    let items = json(&out);
    let dl1000 = items
        .iter()
        .find(|v| v["code"] == "DL1000")
        .expect("DL1000 for the broken file");
    assert_eq!(
        (dl1000["file"].as_str(), dl1000["line"].as_u64()),
        (Some("a.Dockerfile"), Some(2))
    );
    assert!(
        items
            .iter()
            .any(|v| v["file"] == "b.Dockerfile" && v["code"] == "DL3003")
    );
}

#[test]
fn list_rules() {
    let d = dir_with(&[]);
    let out = stdout(pare(d.path()).arg("--list-rules"), Some(0));
    let s = String::from_utf8(out).unwrap();
    assert!(s.contains("DL3008\twarning\tPin versions in apt get install"));
    assert!(s.contains("PA1009\twarning"));
    assert!(
        !s.contains("DL3005")
            && !s.contains("DL3017")
            && !s.contains("DL3031")
            && !s.contains("DL3039")
    );
}

#[test]
fn shellcheck_option() {
    let d = dir_with(&[(
        "Dockerfile",
        "FROM debian:12\nARG X\nRUN echo $X && echo $Y\n",
    )]);
    pare(d.path())
        .args(["--shellcheck=/nonexistent/shellcheck"])
        .assert()
        .code(2);
    if !std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|p| p.join("shellcheck").is_file())
    {
        eprintln!("NOTICE: shellcheck not installed; SC part skipped");
        return;
    }
    let out = stdout(
        pare(d.path()).args(["-f", "json", "--no-fail", "--shellcheck"]),
        Some(0),
    );
    let sc: Vec<(u64, String)> = json(&out)
        .iter()
        .filter(|v| v["code"].as_str().unwrap().starts_with("SC"))
        .map(|v| {
            (
                v["line"].as_u64().unwrap(),
                v["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // $Y is unquoted and undeclared; $X is an ARG, so only one SC2086.
    assert_eq!(sc, [(3, "SC2086".to_string())]);
    let out = stdout(pare(d.path()).args(["-f", "json", "--no-fail"]), None);
    assert!(
        !json(&out)
            .iter()
            .any(|v| v["code"].as_str().unwrap().starts_with("SC"))
    );
}
