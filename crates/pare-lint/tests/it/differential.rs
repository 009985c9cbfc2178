//! Differential test against real hadolint on the shared corpus of real-world Dockerfiles
//! (`../shared/dockerfiles` relative to the repository root). Agreement is measured on DL codes
//! per (file, line, code) as |hadolint ∩ pare| / |hadolint ∪ pare|. Files that only hadolint
//! fails to parse (its heredoc bug, see docs/lint-differences.md) are reported and excluded.
//! Skips with a notice when hadolint or the corpus is absent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use pare_lint::{Config, Context, lint_source};

type Key = (String, usize, String);

fn corpus() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join("../shared/dockerfiles");
    dir.is_dir().then_some(dir)
}

/// The Dockerfiles in `dir` (its README aside), sorted.
fn dockerfiles(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    files.sort();
    files
}

/// An empty HOME (and cwd) for hadolint, so no user config applies.
fn scratch_home(tag: &str) -> PathBuf {
    let home = std::env::temp_dir().join(format!("pare-lint-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    home
}

#[test]
fn agreement_with_hadolint_on_shared_corpus() {
    let Some(dir) = corpus() else {
        eprintln!("NOTICE: ../shared/dockerfiles not found; differential test skipped");
        return;
    };
    let files = dockerfiles(&dir);
    let home = scratch_home("diff");
    let Some(mut hadolint) = run_hadolint(&files, &home) else {
        eprintln!("NOTICE: hadolint not runnable; differential test skipped");
        return;
    };
    let cfg = Config::default();
    let mut pare: BTreeSet<Key> = BTreeSet::new();
    for f in &files {
        let src = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
        for x in lint_source(
            &src,
            &cfg,
            &Context {
                path: Some(f),
                ..Context::default()
            },
        ) {
            if x.code.starts_with("DL") {
                pare.insert((f.display().to_string(), x.line, x.code));
            }
        }
    }
    let parse_fail = |s: &BTreeSet<Key>| {
        s.iter()
            .filter(|k| k.2 == "DL1000")
            .map(|k| k.0.clone())
            .collect::<BTreeSet<_>>()
    };
    let hadolint_only_fail: BTreeSet<String> = parse_fail(&hadolint)
        .difference(&parse_fail(&pare))
        .cloned()
        .collect();
    let score = |h: &BTreeSet<Key>, p: &BTreeSet<Key>| {
        let both = h.intersection(p).count();
        let union = h.union(p).count();
        (
            both,
            union,
            if union == 0 {
                1.0
            } else {
                both as f64 / union as f64
            },
        )
    };
    let (b_all, u_all, a_all) = score(&hadolint, &pare);
    let keep = |s: &BTreeSet<Key>| {
        s.iter()
            .filter(|k| !hadolint_only_fail.contains(&k.0))
            .cloned()
            .collect::<BTreeSet<_>>()
    };
    let (h2, p2) = (keep(&hadolint), keep(&pare));
    // Second view: work around hadolint's heredoc bug (a blank line after each heredoc
    // terminator, lines mapped back) so those files are compared too.
    let patched_dir = home.join("patched");
    std::fs::create_dir_all(&patched_dir).unwrap();
    let mut maps: BTreeMap<String, (String, Vec<usize>)> = BTreeMap::new();
    let mut patched_files = Vec::new();
    for f in &hadolint_only_fail {
        let src = std::fs::read_to_string(f).unwrap_or_default();
        let Ok(df) = pare_lint::parse::parse(&src) else {
            continue;
        };
        let ends: BTreeSet<usize> = df
            .instructions
            .iter()
            .filter(|i| {
                !i.heredocs.is_empty() || i.onbuild.as_ref().is_some_and(|o| !o.heredocs.is_empty())
            })
            .map(|i| i.end_line)
            .collect();
        let mut text = String::new();
        let mut map = vec![0usize];
        for (n, line) in src.lines().enumerate() {
            text.push_str(line);
            text.push('\n');
            map.push(n + 1);
            if ends.contains(&(n + 1)) {
                text.push('\n');
                map.push(n + 1);
            }
        }
        let name = Path::new(f)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let pf = patched_dir.join(&name);
        std::fs::write(&pf, text).unwrap();
        maps.insert(pf.display().to_string(), (f.clone(), map));
        patched_files.push(pf);
    }
    if !patched_files.is_empty() {
        if let Some(hp) = run_hadolint(&patched_files, &home) {
            hadolint.retain(|k| !hadolint_only_fail.contains(&k.0));
            for (file, line, code) in hp {
                if let Some((orig, map)) = maps.get(&file) {
                    hadolint.insert((orig.clone(), map.get(line).copied().unwrap_or(line), code));
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&home);
    let still_failing = parse_fail(&hadolint).difference(&parse_fail(&pare)).count();
    let (b_fix, u_fix, a_fix) = score(&hadolint, &pare);
    let (both, union, agreement) = score(&h2, &p2);
    eprintln!(
        "differential: {} files; hadolint-only parse failures excluded: {}; agreement {:.1}% ({both}/{union}); \
         all files with hadolint's heredoc bug worked around: {:.1}% ({b_fix}/{u_fix}, {still_failing} still unparsed by hadolint); \
         all files as-is: {:.1}% ({b_all}/{u_all})",
        files.len(),
        hadolint_only_fail.len(),
        agreement * 100.0,
        a_fix * 100.0,
        a_all * 100.0
    );
    let mut diff: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let verbose = std::env::var_os("PARE_DIFF_VERBOSE").is_some();
    for k in hadolint.difference(&pare) {
        diff.entry(k.2.clone()).or_default().0 += 1;
        if verbose {
            eprintln!("  only hadolint: {} {} {}", k.0, k.1, k.2);
        }
    }
    for k in pare.difference(&hadolint) {
        diff.entry(k.2.clone()).or_default().1 += 1;
        if verbose {
            eprintln!("  only pare: {} {} {}", k.0, k.1, k.2);
        }
    }
    for (code, (missing, extra)) in &diff {
        eprintln!("  {code}: only hadolint {missing}, only pare {extra}");
    }
    assert!(agreement >= 0.95, "agreement {agreement:.3} < 0.95");
    assert!(
        a_fix >= 0.95,
        "agreement with the heredoc workaround {a_fix:.3} < 0.95"
    );
}

/// Runs hadolint with an empty config (private HOME and cwd, no HADOLINT_* variables); DL
/// findings as (file, line, code).
fn run_hadolint(files: &[PathBuf], home: &Path) -> Option<BTreeSet<Key>> {
    run_hadolint_codes(files, home, "DL")
}

fn run_hadolint_codes(files: &[PathBuf], home: &Path, prefix: &str) -> Option<BTreeSet<Key>> {
    let mut cmd = Command::new("hadolint");
    cmd.args(["-f", "json", "--no-fail"])
        .args(files)
        .current_dir(home)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME");
    for (k, _) in std::env::vars() {
        if k.starts_with("HADOLINT_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().ok()?;
    let h: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).ok()?;
    let mut set = BTreeSet::new();
    for x in &h {
        let code = x["code"].as_str().unwrap_or_default();
        if code.starts_with(prefix) {
            set.insert((
                x["file"].as_str().unwrap_or_default().to_string(),
                x["line"].as_u64().unwrap_or(0) as usize,
                code.to_string(),
            ));
        }
    }
    Some(set)
}

/// Where pare deliberately differs from hadolint on tests/edge (see docs/lint-differences.md):
/// (file, line, code, which side reports it).
const EDGE_KNOWN: &[(&str, usize, &str, &str)] = &[
    ("e007.Dockerfile", 2, "DL3009", "hadolint"), // `rm -r /var/lib/apt/lists` is a cleanup
    ("e111.Dockerfile", 3, "DL3022", "hadolint"), // stage names are case-insensitive
    ("e023.Dockerfile", 2, "DL3016", "pare"),     // `npm i` is `npm install`
    ("e067.Dockerfile", 1, "DL3006", "pare"),     // `localhost:5000/debian` has no tag
    ("e073.Dockerfile", 2, "DL3003", "pare"),     // commands inside `bash -c "…"`
    ("e074.Dockerfile", 2, "DL3003", "pare"),     // commands inside exec-form `sh -c`
    ("e078.Dockerfile", 3, "DL4006", "pare"),     // SHELL is reset by FROM
    ("e092.Dockerfile", 2, "DL3046", "pare"),     // `--uid=N`
    ("e093.Dockerfile", 2, "DL3046", "pare"),     // `-uN`
    ("e110.Dockerfile", 2, "DL3024", "pare"),     // `AS a` / `AS A` are the same stage
    ("f039.Dockerfile", 2, "DL3028", "pare"),     // `gem install -N bundler` is unpinned
    ("g000.Dockerfile", 3, "DL3067", "pare"),     // rules apply inside ONBUILD
    ("g000.Dockerfile", 4, "DL3020", "pare"),     // rules apply inside ONBUILD
    ("g000.Dockerfile", 7, "DL3066", "pare"),     // rules apply inside ONBUILD
    ("h017.Dockerfile", 2, "DL1000", "pare"), // `# escape=\\` is invalid (BuildKit rejects it too)
    ("h017.Dockerfile", 3, "DL3006", "hadolint"), // … so the file is not linted further
    ("h020.Dockerfile", 7, "DL1000", "hadolint"), // hadolint cannot parse `<<-` heredocs
    ("h020.Dockerfile", 2, "DL3003", "pare"), // … so it reports nothing else there
    ("h020.Dockerfile", 6, "DL3003", "pare"),
    ("h020.Dockerfile", 6, "DL3059", "pare"),
    ("h028.Dockerfile", 2, "DL3003", "pare"), // rules apply inside ONBUILD
];

/// Hand-written edge cases (tests/edge): pare must agree with hadolint exactly, except for the
/// documented deliberate differences above.
#[test]
fn edge_cases_match_hadolint_except_known_differences() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/edge");
    let files = dockerfiles(&dir);
    let home = scratch_home("edge");
    let Some(hadolint) = run_hadolint(&files, &home) else {
        eprintln!("NOTICE: hadolint not runnable; edge-case differential skipped");
        return;
    };
    let _ = std::fs::remove_dir_all(&home);
    let name = |p: &str| {
        Path::new(p)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let h: BTreeSet<(String, usize, String)> = hadolint
        .into_iter()
        .map(|(f, l, c)| (name(&f), l, c))
        .collect();
    let mut p: BTreeSet<(String, usize, String)> = BTreeSet::new();
    for f in &files {
        let src = std::fs::read_to_string(f).unwrap();
        for x in lint_source(&src, &Config::default(), &Context::default()) {
            if x.code.starts_with("DL") {
                p.insert((name(&f.display().to_string()), x.line, x.code));
            }
        }
    }
    let mut unexpected = Vec::new();
    for (side, a, b) in [("hadolint", &h, &p), ("pare", &p, &h)] {
        for k in a.difference(b) {
            if !EDGE_KNOWN
                .iter()
                .any(|e| e.0 == k.0 && e.1 == k.1 && e.2 == k.2 && e.3 == side)
            {
                unexpected.push(format!("only {side}: {} {} {}", k.0, k.1, k.2));
            }
        }
    }
    eprintln!(
        "edge cases: {} files, {} findings agree",
        files.len(),
        h.intersection(&p).count()
    );
    assert!(unexpected.is_empty(), "{}", unexpected.join("\n"));
}

/// The optional ShellCheck pass (`--shellcheck`) against hadolint's SC findings on the corpus
/// files hadolint can parse. Skipped when shellcheck, hadolint or the corpus is absent.
#[test]
fn shellcheck_pass_matches_hadolint_sc_codes() {
    let Some(dir) = corpus() else {
        eprintln!("NOTICE: ../shared/dockerfiles not found; skipped");
        return;
    };
    let Some(sc) = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("shellcheck"))
        .find(|p| p.is_file())
    else {
        eprintln!("NOTICE: shellcheck not installed; skipped");
        return;
    };
    let files = dockerfiles(&dir);
    let home = scratch_home("sc");
    // One hadolint run: its SC findings, and the files it cannot parse (DL1000).
    let Some(all) = run_hadolint_codes(&files, &home, "") else {
        eprintln!("NOTICE: hadolint not runnable; skipped");
        return;
    };
    let _ = std::fs::remove_dir_all(&home);
    let broken: BTreeSet<String> = all
        .iter()
        .filter(|k| k.2 == "DL1000")
        .map(|k| k.0.clone())
        .collect();
    let h: BTreeSet<Key> = all.into_iter().filter(|k| k.2.starts_with("SC")).collect();
    let ctx_cfg = Config::default();
    let mut p: BTreeSet<Key> = BTreeSet::new();
    for f in files
        .iter()
        .filter(|f| !broken.contains(&f.display().to_string()))
    {
        let src = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
        for x in lint_source(
            &src,
            &ctx_cfg,
            &Context {
                shellcheck: Some(&sc),
                ..Context::default()
            },
        ) {
            if x.code.starts_with("SC") {
                p.insert((f.display().to_string(), x.line, x.code));
            }
        }
    }
    let both = h.intersection(&p).count();
    let union = h.union(&p).count();
    eprintln!(
        "shellcheck pass: hadolint {} SC findings, pare {}, both {both}",
        h.len(),
        p.len()
    );
    for k in h.symmetric_difference(&p) {
        eprintln!("  differs: {} {} {}", k.0, k.1, k.2);
    }
    assert!(
        union == 0 || both as f64 / union as f64 >= 0.9,
        "SC agreement {both}/{union}"
    );
}
