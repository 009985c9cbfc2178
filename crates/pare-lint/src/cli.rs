//! The `pare lint` command line: hadolint's flags, config merge (file → env → flags), parallel
//! linting, rendering and exit codes. Lives in the library so the thin `pare` binary and the
//! standalone example share it.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use crate::output::{FileReport, Format};
use crate::{Config, LintError, Severity, Threshold};

/// The `pare lint` flags, hadolint's names and meanings; [`run`] merges them over the config
/// file and `HADOLINT_*` variables.
// `about = None`: clap would otherwise print this doc comment in `--help` (the caller's own
// `about`, such as the `pare lint` subcommand's, is what users see).
#[derive(clap::Args, Debug)]
#[command(about = None, long_about = None)]
#[command(after_help = "Examples:
  pare lint                                lint ./Dockerfile
  pare lint -f json services/              every Dockerfile* and *.dockerfile below services/
  cat Dockerfile | pare lint -             read stdin
  pare lint --ignore DL3008 -t warning Dockerfile

Config: -c FILE, else ./.hadolint.yaml, $XDG_CONFIG_HOME/hadolint.yaml, ~/.config/hadolint.yaml,
~/.hadolint/hadolint.yaml, ~/hadolint/config.yaml, ~/.hadolint.yaml. HADOLINT_* env vars apply.
Exit codes: 0 ok, 1 findings at or above the failure threshold, 2 error.")]
pub struct Args {
    /// Dockerfiles or directories (searched recursively); `-` for stdin. Default: ./Dockerfile.
    pub files: Vec<PathBuf>,
    /// Path to the configuration file.
    #[arg(short = 'c', long)]
    pub config: Option<PathBuf>,
    /// Output format: tty, json, sarif, checkstyle, gnu, codeclimate, gitlab_codeclimate, junit,
    /// sonarqube, codacy.
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Write the report to this file instead of stdout.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Exit 0 even when rules are violated.
    #[arg(long)]
    pub no_fail: bool,
    /// Never colour the tty output.
    #[arg(long)]
    pub no_color: bool,
    /// Give RULECODE the level error (repeatable).
    #[arg(long, value_name = "RULECODE")]
    pub error: Vec<String>,
    /// Give RULECODE the level warning (repeatable).
    #[arg(long, value_name = "RULECODE")]
    pub warning: Vec<String>,
    /// Give RULECODE the level info (repeatable).
    #[arg(long, value_name = "RULECODE")]
    pub info: Vec<String>,
    /// Give RULECODE the level style (repeatable).
    #[arg(long, value_name = "RULECODE")]
    pub style: Vec<String>,
    /// Ignore RULECODE (repeatable; replaces the config file's `ignored` list).
    #[arg(long, value_name = "RULECODE")]
    pub ignore: Vec<String>,
    /// Allow this registry in FROM (repeatable; enables DL3026).
    #[arg(long, value_name = "REGISTRY")]
    pub trusted_registry: Vec<String>,
    /// Require label LABEL:TYPE (repeatable), e.g. maintainer:text, version:semver.
    #[arg(long, value_name = "LABELSCHEMA")]
    pub require_label: Vec<String>,
    /// Do not permit labels other than those of the label schema.
    #[arg(long)]
    pub strict_labels: bool,
    /// Disable inline `# hadolint ignore=` / `# pare ignore=` pragmas.
    #[arg(long)]
    pub disable_ignore_pragma: bool,
    /// Fail only for findings at or above: error, warning, info, style, ignore, none.
    #[arg(short = 't', long, value_name = "THRESHOLD")]
    pub failure_threshold: Option<String>,
    /// File path shown in reports (useful for stdin or containers).
    #[arg(long, value_name = "PATH")]
    pub file_path_in_report: Option<String>,
    /// List every rule with its default severity and exit.
    #[arg(long)]
    pub list_rules: bool,
    /// Also run ShellCheck on RUN scripts (SC codes, like hadolint); needs `shellcheck` in PATH
    /// or the path given here.
    #[arg(long, value_name = "BIN", num_args = 0..=1, default_missing_value = "shellcheck")]
    pub shellcheck: Option<PathBuf>,
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

fn build_config(a: &Args) -> Result<Config, LintError> {
    let cwd = std::env::current_dir().map_err(|source| LintError::Read {
        path: ".".into(),
        source,
    })?;
    let mut cfg = crate::config::load(a.config.as_deref(), &cwd, env)?;
    if !a.ignore.is_empty() {
        cfg.ignored = a.ignore.clone();
    }
    for (list, sev) in [
        (&a.error, Severity::Error),
        (&a.warning, Severity::Warning),
        (&a.info, Severity::Info),
        (&a.style, Severity::Style),
    ] {
        for c in list {
            cfg.overrides.insert(c.clone(), sev);
        }
    }
    cfg.trusted_registries
        .extend(a.trusted_registry.iter().cloned());
    for item in &a.require_label {
        let (k, t) = item.split_once(':').unwrap_or((item, "text"));
        cfg.label_schema.insert(k.to_string(), t.to_string());
    }
    cfg.strict_labels |= a.strict_labels;
    cfg.disable_ignore_pragma |= a.disable_ignore_pragma;
    cfg.no_fail |= a.no_fail;
    cfg.no_color |= a.no_color;
    if let Some(t) = &a.failure_threshold {
        cfg.failure_threshold = Threshold::parse(t).ok_or_else(|| LintError::Value {
            what: "--failure-threshold".into(),
            value: t.clone(),
        })?;
    }
    if let Some(f) = &a.format {
        cfg.format = Some(f.clone());
    }
    Ok(cfg)
}

/// Runs `pare lint`; returns the exit code (0 ok, 1 findings at/above the threshold, 2 input errors).
pub fn run(a: Args) -> Result<u8, LintError> {
    if a.list_rules {
        let mut out = std::io::stdout().lock();
        for r in crate::rules::RULES {
            writeln!(out, "{}\t{}\t{}", r.code, r.severity.as_str(), r.message)?;
        }
        return Ok(0);
    }
    let cfg = build_config(&a)?;
    let format_name = cfg.format.clone().unwrap_or_else(|| "tty".into());
    let format = Format::parse(&format_name).ok_or(LintError::Value {
        what: "format".into(),
        value: format_name.clone(),
    })?;
    let inputs = if a.files.is_empty() {
        vec![PathBuf::from("Dockerfile")]
    } else {
        a.files.clone()
    };
    let files = crate::discover(&inputs)?;

    // Read inputs (stdin once), then lint in parallel.
    let mut sources: Vec<Source> = Vec::with_capacity(files.len());
    for p in &files {
        if p.as_os_str() == "-" {
            let mut s = String::new();
            let r = std::io::stdin()
                .read_to_string(&mut s)
                .map(|_| s)
                .map_err(|e| format!("cannot read stdin: {e}"));
            sources.push(("-".into(), None, r));
        } else {
            let r = std::fs::read(p)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .map_err(|e| format!("cannot read {}: {e}", p.display()));
            sources.push((p.display().to_string(), Some(p.clone()), r));
        }
    }
    let shellcheck = match &a.shellcheck {
        Some(bin) => Some(find_binary(bin).ok_or_else(|| LintError::Value {
            what: "--shellcheck (binary not found; install shellcheck)".into(),
            value: bin.display().to_string(),
        })?),
        None => None,
    };
    let results = lint_parallel(&sources, &cfg, shellcheck.as_deref());

    let mut reports = Vec::new();
    let mut had_error = false;
    for ((name, _, src), findings) in sources.into_iter().zip(results) {
        match src {
            Ok(source) => {
                let file = a.file_path_in_report.clone().unwrap_or(name);
                reports.push(FileReport {
                    file,
                    source,
                    findings,
                });
            }
            Err(e) => {
                had_error = true;
                eprintln!("pare lint: {e}");
            }
        }
    }

    let color = format == Format::Tty
        && !cfg.no_color
        && a.output.is_none()
        && std::io::stdout().is_terminal();
    match &a.output {
        Some(path) => {
            let mut f = std::fs::File::create(path).map_err(|source| LintError::Read {
                path: path.clone(),
                source,
            })?;
            crate::output::render(&mut f, &reports, format, false)?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut lock = std::io::BufWriter::new(stdout.lock());
            crate::output::render(&mut lock, &reports, format, color)?;
            lock.flush()?;
        }
    }
    if had_error {
        return Ok(2);
    }
    let failing = reports
        .iter()
        .flat_map(|r| &r.findings)
        .any(|f| cfg.failure_threshold.fails(f.severity));
    Ok(if failing && !cfg.no_fail { 1 } else { 0 })
}

type Source = (String, Option<PathBuf>, Result<String, String>);

/// Lints all sources on all cores; the order of results is the order of `sources`.
fn lint_parallel(
    sources: &[Source],
    cfg: &Config,
    shellcheck: Option<&std::path::Path>,
) -> Vec<Vec<crate::Finding>> {
    let one = |(_, path, src): &Source| match src {
        Ok(text) => crate::lint_source(
            text,
            cfg,
            &crate::Context {
                path: path.as_deref(),
                shellcheck,
            },
        ),
        Err(_) => Vec::new(),
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(sources.len().max(1));
    if threads <= 1 || sources.len() < 8 {
        return sources.iter().map(one).collect();
    }
    let chunk = sources.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = sources
            .chunks(chunk)
            .map(|c| s.spawn(move || c.iter().map(one).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// `bin` if it is a path to a file, else the first match in `PATH`.
fn find_binary(bin: &std::path::Path) -> Option<PathBuf> {
    if bin.components().count() > 1 {
        return bin.is_file().then(|| bin.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}
