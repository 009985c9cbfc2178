//! `.hadolint.yaml` configuration, `HADOLINT_*` environment variables, and their merge.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::{LintError, Severity};

/// Exit with failure only for findings at or above this level (`none` never fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threshold {
    /// Fail for findings of this severity or above (an `ignore`d finding never fails).
    Level(Severity),
    /// Never fail (`none`), whatever is found.
    None,
}

impl Threshold {
    /// Parses `none` or a severity name (case-insensitive); `None` for anything else.
    pub fn parse(s: &str) -> Option<Threshold> {
        if s.trim().eq_ignore_ascii_case("none") {
            return Some(Threshold::None);
        }
        Severity::parse(s).map(Threshold::Level)
    }
    /// Does a finding of this severity fail the run?
    pub fn fails(self, s: Severity) -> bool {
        match self {
            Threshold::None => false,
            Threshold::Level(t) => s != Severity::Ignore && s >= t,
        }
    }
}

/// Effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Rule codes whose findings are dropped (`ignored:` / `--ignore`).
    pub ignored: Vec<String>,
    /// Registries `FROM` images may come from; when non-empty, any other registry is DL3026
    /// (an image without a registry counts as `docker.io`).
    pub trusted_registries: Vec<String>,
    /// Severity per rule code, replacing the rule's default (`override:` / `--error` …).
    pub overrides: BTreeMap<String, Severity>,
    /// Findings at or above this level make the run fail (default `info`).
    pub failure_threshold: Threshold,
    /// label name → type (`text`, `url`, `semver`, `hash`, `rfc3339`, `spdx`, `email`)
    pub label_schema: BTreeMap<String, String>,
    /// Flag (DL3050) every label not listed in `label_schema`.
    pub strict_labels: bool,
    /// Report findings but always exit 0.
    pub no_fail: bool,
    /// Ignore the `# hadolint ignore=` / `# pare ignore=` pragmas in Dockerfiles.
    pub disable_ignore_pragma: bool,
    /// Output format name (`tty`, `json`, `sarif`, …) when set by the file or environment; flags win.
    pub format: Option<String>,
    /// Never color the `tty` output.
    pub no_color: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ignored: Vec::new(),
            trusted_registries: Vec::new(),
            overrides: BTreeMap::new(),
            failure_threshold: Threshold::Level(Severity::Info),
            label_schema: BTreeMap::new(),
            strict_labels: false,
            no_fail: false,
            disable_ignore_pragma: false,
            format: None,
            no_color: false,
        }
    }
}

impl Config {
    /// Whether findings of `code` are dropped by `ignored`.
    pub fn is_ignored(&self, code: &str) -> bool {
        self.ignored.iter().any(|c| c == code)
    }
    /// The severity of `code`: its override if any, else `default` (the rule's own).
    pub fn severity_of(&self, code: &str, default: Severity) -> Severity {
        self.overrides.get(code).copied().unwrap_or(default)
    }

    /// Applies a parsed config file on top of `self`.
    pub fn apply_file(&mut self, f: ConfigFile) -> Result<(), String> {
        if let Some(v) = f.ignored {
            self.ignored = v;
        }
        if let Some(v) = f.trusted_registries {
            self.trusted_registries = v.into_vec();
        }
        if let Some(o) = f.overrides {
            for (sev, codes) in [
                (Severity::Error, o.error),
                (Severity::Warning, o.warning),
                (Severity::Info, o.info),
                (Severity::Style, o.style),
            ] {
                for c in codes.unwrap_or_default() {
                    self.overrides.insert(c, sev);
                }
            }
        }
        if let Some(t) = f.failure_threshold {
            self.failure_threshold =
                Threshold::parse(&t).ok_or_else(|| format!("invalid failure-threshold {t:?}"))?;
        }
        if let Some(s) = f.label_schema {
            self.label_schema = s;
        }
        if let Some(b) = f.strict_labels {
            self.strict_labels = b;
        }
        if let Some(b) = f.no_fail {
            self.no_fail = b;
        }
        if let Some(b) = f.disable_ignore_pragma {
            self.disable_ignore_pragma = b;
        }
        if let Some(b) = f.no_color {
            self.no_color = b;
        }
        if f.format.is_some() {
            self.format = f.format;
        }
        Ok(())
    }

    /// Applies `HADOLINT_*` (and the same `PARE_LINT_*`) environment variables from `get`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), LintError> {
        let var = |name: &str| {
            get(&format!("PARE_LINT_{name}")).or_else(|| get(&format!("HADOLINT_{name}")))
        };
        let truthy = |v: &str| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on" | "y"
            )
        };
        let list = |v: &str| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        };
        if let Some(v) = var("NOFAIL") {
            self.no_fail = truthy(&v);
        }
        if let Some(v) = var("FORMAT") {
            self.format = Some(v);
        }
        if let Some(v) = var("FAILURE_THRESHOLD") {
            self.failure_threshold = Threshold::parse(&v).ok_or(LintError::Value {
                what: "HADOLINT_FAILURE_THRESHOLD".into(),
                value: v,
            })?;
        }
        for (name, sev) in [
            ("OVERRIDE_ERROR", Severity::Error),
            ("OVERRIDE_WARNING", Severity::Warning),
            ("OVERRIDE_INFO", Severity::Info),
            ("OVERRIDE_STYLE", Severity::Style),
        ] {
            if let Some(v) = var(name) {
                for c in list(&v) {
                    self.overrides.insert(c, sev);
                }
            }
        }
        if let Some(v) = var("IGNORE") {
            self.ignored.extend(list(&v));
        }
        if let Some(v) = var("STRICT_LABELS") {
            self.strict_labels = truthy(&v);
        }
        if let Some(v) = var("DISABLE_IGNORE_PRAGMA") {
            self.disable_ignore_pragma = truthy(&v);
        }
        if let Some(v) = var("TRUSTED_REGISTRIES") {
            self.trusted_registries.extend(list(&v));
        }
        if let Some(v) = var("REQUIRE_LABELS") {
            for item in list(&v) {
                let (k, t) = item.split_once(':').unwrap_or((&item, "text"));
                self.label_schema.insert(k.to_string(), t.to_string());
            }
        }
        if get("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            self.no_color = true;
        }
        Ok(())
    }
}

/// The YAML file, as hadolint reads it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `ignored`: rule codes to drop.
    pub ignored: Option<Vec<String>>,
    /// `trustedRegistries`: one registry or a list.
    #[serde(rename = "trustedRegistries")]
    pub trusted_registries: Option<OneOrMany>,
    /// `override`: rule codes by the severity they should have.
    #[serde(rename = "override")]
    pub overrides: Option<Overrides>,
    /// `failure-threshold`: a severity name or `none`.
    #[serde(rename = "failure-threshold")]
    pub failure_threshold: Option<String>,
    /// `label-schema`: label name → required type.
    #[serde(rename = "label-schema")]
    pub label_schema: Option<BTreeMap<String, String>>,
    /// `strict-labels`: flag labels missing from the schema.
    #[serde(rename = "strict-labels")]
    pub strict_labels: Option<bool>,
    /// `no-fail`: always exit 0.
    #[serde(rename = "no-fail")]
    pub no_fail: Option<bool>,
    /// `no-color`: plain `tty` output.
    #[serde(rename = "no-color")]
    pub no_color: Option<bool>,
    /// `disable-ignore-pragma`: ignore `# hadolint ignore=` comments.
    #[serde(rename = "disable-ignore-pragma")]
    pub disable_ignore_pragma: Option<bool>,
    /// `format`: output format name.
    pub format: Option<String>,
}

/// A YAML value that may be a single string or a list of strings.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single string, as a one-element list.
    One(String),
    /// A list of strings.
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// The `override:` map: rule codes to report at each severity.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Overrides {
    /// Codes reported as `error`.
    pub error: Option<Vec<String>>,
    /// Codes reported as `warning`.
    pub warning: Option<Vec<String>>,
    /// Codes reported as `info`.
    pub info: Option<Vec<String>>,
    /// Codes reported as `style`.
    pub style: Option<Vec<String>>,
}

/// Parses a config file's text. An empty file is an empty config.
pub fn parse_config(text: &str, path: &Path) -> Result<ConfigFile, LintError> {
    if text.trim().is_empty() {
        return Ok(ConfigFile::default());
    }
    serde_yaml::from_str(text).map_err(|e| LintError::Config {
        path: path.to_path_buf(),
        // The message quotes the file (an unknown key, say): keep it on one line.
        message: e.to_string().replace('\r', "\\r").replace('\n', "\\n"),
    })
}

/// hadolint's search order; the first existing file wins.
pub fn search_paths(cwd: &Path, get: impl Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for name in [".hadolint.yaml", ".hadolint.yml"] {
        v.push(cwd.join(name));
    }
    if let Some(x) = get("XDG_CONFIG_HOME").filter(|s| !s.is_empty()) {
        let x = PathBuf::from(x);
        v.push(x.join("hadolint.yaml"));
        v.push(x.join("hadolint.yml"));
    }
    if let Some(h) = get("HOME").filter(|s| !s.is_empty()) {
        let h = PathBuf::from(h);
        for rel in [
            ".config/hadolint.yaml",
            ".config/hadolint.yml",
            ".hadolint/hadolint.yaml",
            ".hadolint/hadolint.yml",
            "hadolint/config.yaml",
            "hadolint/config.yml",
            ".hadolint.yaml",
            ".hadolint.yml",
        ] {
            v.push(h.join(rel));
        }
    }
    v
}

/// Finds and reads the config: the explicit path if given, else the first file of the search order.
pub fn load(
    explicit: Option<&Path>,
    cwd: &Path,
    get: impl Fn(&str) -> Option<String>,
) -> Result<Config, LintError> {
    let mut cfg = Config::default();
    let path = match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => search_paths(cwd, &get).into_iter().find(|p| p.is_file()),
    };
    if let Some(p) = path {
        let text = std::fs::read_to_string(&p).map_err(|source| LintError::Read {
            path: p.clone(),
            source,
        })?;
        let f = parse_config(&text, &p)?;
        cfg.apply_file(f).map_err(|message| LintError::Config {
            path: p.clone(),
            message,
        })?;
    }
    cfg.apply_env(get)?;
    Ok(cfg)
}

/// Does `registry` match a trusted pattern (`docker.io`, `*.gcr.io`, `my.reg:5000`)?
pub fn registry_trusted(registry: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|p| {
        if p == "*" {
            true
        } else if let Some(suffix) = p.strip_prefix("*.") {
            registry.ends_with(&format!(".{suffix}"))
        } else if let Some(suffix) = p.strip_prefix('*') {
            registry.ends_with(suffix)
        } else {
            p == registry
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_quoting_the_file_stay_on_one_line() {
        // Found by fuzzing (fuzz/regressions/hadolint_config): an unknown key with newlines.
        let e = parse_config("\"a\\n\\nb\": 1\n", Path::new(".hadolint.yaml"))
            .unwrap_err()
            .to_string();
        assert!(!e.contains('\n'), "{e:?}");
        assert!(e.contains("unknown field `a\\n\\nb`"), "{e}");
    }

    #[test]
    fn file_keys() {
        let f = parse_config(
            "ignored: [DL3008]\ntrustedRegistries: docker.io\noverride:\n  error: [DL3015]\nfailure-threshold: warning\nlabel-schema:\n  author: text\nstrict-labels: true\nno-fail: true\ndisable-ignore-pragma: true\nformat: json\n",
            Path::new("x"),
        )
        .unwrap();
        let mut c = Config::default();
        c.apply_file(f).unwrap();
        assert_eq!(c.ignored, ["DL3008"]);
        assert_eq!(c.trusted_registries, ["docker.io"]);
        assert_eq!(c.overrides.get("DL3015"), Some(&Severity::Error));
        assert_eq!(c.failure_threshold, Threshold::Level(Severity::Warning));
        assert!(c.strict_labels && c.no_fail && c.disable_ignore_pragma);
        assert_eq!(c.format.as_deref(), Some("json"));
        assert!(parse_config("bogus-key: 1\n", Path::new("x")).is_err());
    }

    #[test]
    fn env_vars() {
        let env = |k: &str| match k {
            "HADOLINT_IGNORE" => Some("DL3006, DL3007".to_string()),
            "HADOLINT_OVERRIDE_STYLE" => Some("DL3008".to_string()),
            "HADOLINT_FAILURE_THRESHOLD" => Some("error".to_string()),
            "HADOLINT_NOFAIL" => Some("yes".to_string()),
            "HADOLINT_TRUSTED_REGISTRIES" => Some("a.io,b.io".to_string()),
            "HADOLINT_REQUIRE_LABELS" => Some("maintainer:text".to_string()),
            _ => None,
        };
        let mut c = Config::default();
        c.apply_env(env).unwrap();
        assert_eq!(c.ignored, ["DL3006", "DL3007"]);
        assert_eq!(c.overrides.get("DL3008"), Some(&Severity::Style));
        assert_eq!(c.failure_threshold, Threshold::Level(Severity::Error));
        assert!(c.no_fail);
        assert_eq!(c.trusted_registries, ["a.io", "b.io"]);
        assert_eq!(
            c.label_schema.get("maintainer").map(String::as_str),
            Some("text")
        );
    }

    #[test]
    fn threshold_and_registries() {
        assert!(Threshold::Level(Severity::Warning).fails(Severity::Error));
        assert!(!Threshold::Level(Severity::Warning).fails(Severity::Info));
        assert!(!Threshold::None.fails(Severity::Error));
        let pats = vec!["*.gcr.io".to_string(), "docker.io".to_string()];
        assert!(registry_trusted("eu.gcr.io", &pats));
        assert!(registry_trusted("docker.io", &pats));
        assert!(!registry_trusted("quay.io", &pats));
    }

    #[test]
    fn search_order() {
        let env = |k: &str| match k {
            "HOME" => Some("/h".to_string()),
            "XDG_CONFIG_HOME" => Some("/x".to_string()),
            _ => None,
        };
        let p = search_paths(Path::new("/cwd"), env);
        assert_eq!(p[0], Path::new("/cwd/.hadolint.yaml"));
        assert_eq!(p[2], Path::new("/x/hadolint.yaml"));
        assert_eq!(p.last().unwrap(), Path::new("/h/.hadolint.yml"));
    }
}
