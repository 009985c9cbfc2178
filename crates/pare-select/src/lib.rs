//! File selection: traced files ∪ static closure ∪ `--include-*` − `--exclude`, with the
//! reason each path is kept.
//!
//! Everything is resolved inside an extracted rootfs ([`root::Rootfs`]): absolute symlinks are
//! re-rooted and `..` never leaves it. The ELF closure is computed by pare itself (goblin,
//! `ld.so.cache`, `ld.so.conf`, RPATH/RUNPATH), so images without `ldd` work the same.
//!
//! ```no_run
//! # use pare_select::*;
//! let inputs = SelectInputs { include_shell: true, ..Default::default() };
//! let sel = select(std::path::Path::new("/rootfs"), &inputs).unwrap();
//! for (path, kept) in &sel.entries { println!("{path}: {}", kept.reasons[0]); }
//! ```

#![deny(missing_docs)]

mod dpkg;
pub mod elf;
mod engine;
mod keep;
pub mod ldcache;
mod reason;
pub mod root;
mod rules;
pub mod unexercised;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use pare_image::ImagePath;
use serde::{Deserialize, Serialize};

pub use engine::select;
pub use reason::Reason;

/// Most reasons recorded per path (libc is needed by everything).
pub const MAX_REASONS: usize = 8;

/// Why [`select`] failed. Problems with single files of the image are warnings in
/// [`Selection::warnings`], not errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SelectError {
    /// Reading the rootfs at `path` failed.
    #[error("{path}")]
    Io {
        /// The host path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The rootfs given is not a directory.
    #[error("{path}: rootfs is not a directory")]
    NotADirectory {
        /// The rootfs as given.
        path: PathBuf,
    },
    /// Resolving `path` followed more than 40 symlinks.
    #[error("{path}: too many levels of symbolic links")]
    SymlinkLoop {
        /// The in-image path being resolved.
        path: String,
    },
    /// A symlink met while resolving has a target that is not UTF-8.
    #[error("{path}: symlink target is not UTF-8")]
    NonUtf8 {
        /// The host path of the symlink.
        path: PathBuf,
    },
    /// The `ld.so.cache` at `path` could not be parsed.
    #[error("{path}: bad ld.so.cache: {reason}")]
    LdCache {
        /// The host path of the cache.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A glob given to `flag` does not parse.
    #[error("bad glob {pattern:?} in {flag}")]
    Glob {
        /// The flag (`--exclude`, `--include-path`, `--preserve-path`).
        flag: &'static str,
        /// The pattern as given.
        pattern: String,
        /// The parse error.
        source: globset::Error,
    },
}

/// What the image config says, as far as selection cares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageFacts {
    /// `USER` (`name`, `uid`, `name:group`, `uid:gid`).
    pub user: Option<String>,
    /// `WorkingDir`.
    pub workdir: Option<String>,
    /// `Volumes` (their paths).
    pub volumes: Vec<String>,
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// Docker's `Healthcheck.Test` (`["CMD", …]`, `["CMD-SHELL", "…"]`, `["NONE"]`).
    pub healthcheck: Option<Vec<String>>,
    /// `KEY=VALUE` environment (for `PATH` and `LD_LIBRARY_PATH`).
    pub env: Vec<String>,
}

impl ImageFacts {
    /// Reads the facts from an OCI image config plus Docker's `Healthcheck` object (which
    /// oci-spec does not model), e.g. `raw_config["config"]["Healthcheck"]`.
    pub fn from_config(
        config: &pare_image::ImageConfiguration,
        healthcheck: Option<&serde_json::Value>,
    ) -> Self {
        let c = config.config().as_ref();
        let nonempty = |s: Option<&String>| s.filter(|s| !s.is_empty()).cloned();
        ImageFacts {
            user: c.and_then(|c| nonempty(c.user().as_ref())),
            workdir: c.and_then(|c| nonempty(c.working_dir().as_ref())),
            volumes: c.and_then(|c| c.volumes().clone()).unwrap_or_default(),
            entrypoint: c.and_then(|c| c.entrypoint().clone()).unwrap_or_default(),
            cmd: c.and_then(|c| c.cmd().clone()).unwrap_or_default(),
            healthcheck: healthcheck
                .and_then(|h| h.get("Test"))
                .and_then(|t| serde_json::from_value(t.clone()).ok()),
            env: c.and_then(|c| c.env().clone()).unwrap_or_default(),
        }
    }

    /// The value of an environment variable.
    pub fn env_var(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    }
}

/// One traced path with what the sensor saw.
pub type TracedFiles = BTreeMap<String, pare_trace::FileRecord>;

/// Everything [`select`] takes.
#[derive(Debug, Clone, Default)]
pub struct SelectInputs {
    /// Paths the sensor saw (only `found` ones are used).
    pub traced: TracedFiles,
    /// The image config's facts.
    pub facts: ImageFacts,
    /// `--include-path` globs (a directory match keeps its whole subtree).
    pub include_paths: Vec<String>,
    /// `--include-bin` paths (kept with their ELF closure).
    pub include_bins: Vec<String>,
    /// `--include-exe` names (looked up in the image's `PATH`).
    pub include_exes: Vec<String>,
    /// `--include-shell`: a working `/bin/sh`.
    pub include_shell: bool,
    /// `--exclude` globs (a match also drops everything below it).
    pub excludes: Vec<String>,
    /// `--preserve-path` globs: kept whole, and never excluded.
    pub preserve_paths: Vec<String>,
}

impl SelectInputs {
    /// Inputs from a sensor report (found paths and exec targets) and the image facts.
    pub fn from_report(report: &pare_trace::SensorReport, facts: ImageFacts) -> Self {
        let mut traced: TracedFiles = report
            .files
            .iter()
            .filter(|(_, r)| r.found)
            .map(|(p, r)| (p.clone(), r.clone()))
            .collect();
        for e in &report.execs {
            let rec = traced.entry(e.path.clone()).or_default();
            rec.found = true;
            rec.kinds.insert(pare_trace::AccessKind::Exec);
        }
        SelectInputs {
            traced,
            facts,
            ..Default::default()
        }
    }
}

/// One kept path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    /// At most [`MAX_REASONS`], the first one being the one that brought it in.
    pub reasons: Vec<Reason>,
}

/// The selected file set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// Canonical absolute in-image paths (no symlinks in their parents) → why they are kept.
    /// Every parent directory of an entry is itself an entry.
    pub entries: BTreeMap<ImagePath, Kept>,
    /// Files whose content the writer must take from here instead of the rootfs (e.g. the
    /// trimmed `/var/lib/dpkg/status`); each is also in `entries`.
    /// In JSON a UTF-8 content is a string, anything else an array of bytes.
    #[serde(default, with = "generated_serde")]
    pub generated: BTreeMap<ImagePath, Vec<u8>>,
    /// Directories to create although the rootfs lacks them (path → mode), e.g. `/tmp` 1777.
    #[serde(default)]
    pub created_dirs: BTreeMap<ImagePath, u32>,
    /// Paths that would have been kept but an `--exclude` glob removed: path → the glob.
    #[serde(default)]
    pub excluded: BTreeMap<ImagePath, String>,
    /// Things pare could not resolve (a missing `DT_NEEDED`, an unparsable ELF, …).
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl Selection {
    /// Looks up a path as typed. A path the app opened through symlinks (e.g.
    /// `/lib/x86_64-linux-gnu/libc.so.6` on merged-usr) gives the entry of the file it leads
    /// to, found through the recorded symlink chains.
    pub fn get(&self, path: &str) -> Option<&Kept> {
        self.entries.get(&self.canonical_of(path))
    }

    /// The `--exclude` glob that removed `path` or one of its parent directories (`/` aside).
    pub fn excluded_by(&self, path: &str) -> Option<&str> {
        std::iter::successors(Some(path), |p| root::parent(p).filter(|q| *q != "/"))
            .find_map(|p| self.excluded.get(p))
            .map(String::as_str)
    }

    /// The kept canonical path for `path` as typed: itself when kept, else the target of a
    /// recorded symlink chain that started at it, else `path` normalized
    /// ([`ImagePath::clamped`]).
    pub fn canonical_of(&self, path: &str) -> ImagePath {
        let cur = ImagePath::clamped(path);
        if self.entries.contains_key(&cur) {
            return cur;
        }
        self.entries
            .values()
            .flat_map(|k| &k.reasons)
            .find_map(|r| match r {
                Reason::SymlinkChain { of, target } if cur == of.as_str() => Some(target.clone()),
                _ => None,
            })
            .unwrap_or(cur)
    }

    /// Why `path` is kept, as a chain: `path`'s first reason, then the first reason of the path
    /// that reason came from, … until a root reason (traced, config, flag). Empty when the path
    /// is not kept.
    pub fn explain(&self, path: &str) -> Vec<(ImagePath, Reason)> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let mut cur = self.canonical_of(path);
        while let Some(kept) = self.entries.get(&cur) {
            if !seen.insert(cur.clone()) {
                break;
            }
            // Prefer a reason whose source has not been visited (avoids going in circles).
            let Some(r) = kept
                .reasons
                .iter()
                .find(|r| r.from_path().is_none_or(|p| !seen.contains(p)))
                .or(kept.reasons.first())
            else {
                break;
            };
            out.push((cur.clone(), r.clone()));
            match r.from_path() {
                Some(p) => cur = p.clone(),
                None => break,
            }
        }
        out
    }
}

/// `generated` contents as readable text in report.json when they are UTF-8.
mod generated_serde {
    use std::collections::BTreeMap;

    use pare_image::ImagePath;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Content {
        Text(String),
        Bytes(Vec<u8>),
    }

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<ImagePath, Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let m: BTreeMap<&ImagePath, Content> = map
            .iter()
            .map(|(k, v)| {
                let c = match std::str::from_utf8(v) {
                    Ok(t) => Content::Text(t.to_string()),
                    Err(_) => Content::Bytes(v.clone()),
                };
                (k, c)
            })
            .collect();
        m.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<ImagePath, Vec<u8>>, D::Error> {
        let m = BTreeMap::<ImagePath, Content>::deserialize(d)?;
        Ok(m.into_iter()
            .map(|(k, c)| {
                let v = match c {
                    Content::Text(t) => t.into_bytes(),
                    Content::Bytes(b) => b,
                };
                (k, v)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excluded_by_finds_the_glob_of_the_path_or_a_parent() {
        let mut sel = Selection::default();
        sel.excluded
            .insert("/app/report.py".parse().unwrap(), "/app/report.py".into());
        sel.excluded.insert(
            "/usr/lib/python3.11/json".parse().unwrap(),
            "/usr/lib/python3.11/json/**".into(),
        );
        assert_eq!(sel.excluded_by("/app/report.py"), Some("/app/report.py"));
        assert_eq!(
            sel.excluded_by("/usr/lib/python3.11/json/decoder.py"),
            Some("/usr/lib/python3.11/json/**")
        );
        assert_eq!(sel.excluded_by("/app/app.py"), None);
        assert_eq!(sel.excluded_by("/usr/lib/python3.11/jsonx"), None);
    }

    /// report.json's `selection`: paths are plain absolute strings, maps in path order, as
    /// they were when the keys were `String`s.
    #[test]
    fn selection_json_keeps_its_shape() {
        let p = |s: &str| s.parse::<ImagePath>().unwrap();
        let mut sel = Selection::default();
        sel.entries.insert(
            p("/usr/lib/libjq.so.1"),
            Kept {
                reasons: vec![Reason::Needed {
                    by: p("/usr/bin/jq"),
                    soname: "libjq.so.1".into(),
                    via: "ld.so.cache".into(),
                }],
            },
        );
        sel.entries.insert(p("/"), Kept::default());
        sel.generated
            .insert(p("/var/lib/dpkg/status"), b"Package: jq\n".to_vec());
        sel.created_dirs.insert(p("/tmp"), 0o1777);
        sel.excluded
            .insert(p("/usr/share/doc/jq"), "/usr/share/doc/**".into());
        let json = serde_json::to_string(&sel).unwrap();
        assert_eq!(
            json,
            r#"{"entries":{"/":{"reasons":[]},"/usr/lib/libjq.so.1":{"reasons":[{"kind":"needed","by":"/usr/bin/jq","soname":"libjq.so.1","via":"ld.so.cache"}]}},"generated":{"/var/lib/dpkg/status":"Package: jq\n"},"created_dirs":{"/tmp":1023},"excluded":{"/usr/share/doc/jq":"/usr/share/doc/**"},"warnings":[]}"#
        );
        let back: Selection = serde_json::from_str(&json).unwrap();
        assert_eq!(back, sel);
    }
}
