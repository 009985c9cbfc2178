//! `pare why PATH`: why a file is in the slim image.

use std::path::Path;

use pare_image::ImagePath;
use pare_select::Reason;
use serde::Serialize;

use crate::{BuildError, BuildReport};

/// The answer for one path.
#[derive(Debug, Clone, Serialize)]
pub struct WhyAnswer {
    /// The path asked about, normalized ([`ImagePath::clamped`]).
    pub path: ImagePath,
    /// Whether the slim image has it.
    pub kept: bool,
    /// From the path itself back to a root cause (traced access, config, flag).
    pub chain: Vec<(ImagePath, String)>,
    /// Every recorded reason of the path itself.
    pub reasons: Vec<String>,
    /// The `--exclude` glob that removed it, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excluded_by: Option<String>,
}

/// One line for a reason.
pub fn describe(r: &Reason) -> String {
    match r {
        Reason::Traced {
            processes,
            syscalls,
            accesses,
        } => format!(
            "traced: {} by {} ({})",
            accesses
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join("/"),
            if processes.is_empty() {
                "the app".to_string()
            } else {
                processes.join(", ")
            },
            syscalls.join(", ")
        ),
        Reason::ImageConfig { field, detail } => format!("image config {field}: {detail}"),
        Reason::Baseline { what } => format!("baseline: {what}"),
        Reason::Needed { by, soname, via } => {
            format!("DT_NEEDED {soname} of {by} (found via {via})")
        }
        Reason::Interpreter { by } => format!("ELF interpreter (PT_INTERP) of {by}"),
        Reason::Shebang {
            script,
            interpreter,
        } => format!("#! interpreter {interpreter} of {script}"),
        Reason::SymlinkChain { of, target } => format!("symlink on the way from {of} to {target}"),
        Reason::Parent { of } => format!("parent directory of {of}"),
        Reason::Nss {
            service,
            databases,
            libc,
        } => {
            format!(
                "NSS module '{service}' for {} (nsswitch.conf), dlopened by {libc}",
                databases.join(", ")
            )
        }
        Reason::Certificates { library } => format!("CA certificates for TLS library {library}"),
        Reason::Zoneinfo { touched } => format!("time zone data needed with {touched}"),
        Reason::Locale { touched } => format!("locale data needed with {touched}"),
        Reason::Gconv { touched } => format!("gconv configuration for {touched}"),
        Reason::PythonSource { pyc } => format!("Python source of {pyc}"),
        Reason::PythonBytecode { py } => format!("compiled bytecode of {py}"),
        Reason::PythonDistribution { file, distribution } => {
            format!("metadata of Python distribution {distribution} (owns {file})")
        }
        Reason::NodePackage { file } => format!("package.json of the Node package of {file}"),
        Reason::Dpkg { package, file } => format!("dpkg status of package {package} (owns {file})"),
        Reason::IncludePath { glob } => format!("--include-path {glob}"),
        Reason::IncludeBin { path } => format!("--include-bin {path}"),
        Reason::IncludeExe { name, path } => format!("--include-exe {name} ({path})"),
        Reason::IncludeShell => "--include-shell".into(),
        Reason::PreservePath { glob } => format!("--preserve-path {glob}"),
    }
}

/// Reads `report.json` (a file, or a directory holding one) and explains `path`.
pub fn why(report: &Path, path: &str) -> Result<WhyAnswer, BuildError> {
    let file = if report.is_dir() {
        report.join("report.json")
    } else {
        report.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => BuildError::NoReport { path: file.clone() },
        _ => BuildError::File {
            path: file.clone(),
            source: e,
        },
    })?;
    let report: BuildReport = serde_json::from_str(&text).map_err(|source| BuildError::Json {
        path: file.clone(),
        source,
    })?;
    Ok(answer(&report.selection, path))
}

pub(crate) fn answer(selection: &pare_select::Selection, path: &str) -> WhyAnswer {
    let kept = selection.get(path);
    let chain = selection
        .explain(path)
        .into_iter()
        .map(|(p, r)| (p, describe(&r)))
        .collect();
    let normalized = ImagePath::clamped(path);
    WhyAnswer {
        path: normalized.clone(),
        kept: kept.is_some(),
        chain,
        reasons: kept
            .map(|k| k.reasons.iter().map(describe).collect())
            .unwrap_or_default(),
        excluded_by: selection.excluded.get(&normalized).cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pare_select::{Kept, Selection};

    #[test]
    fn chain_walks_back_to_the_traced_binary() {
        let mut sel = Selection::default();
        sel.entries.insert(
            "/usr/bin/jq".parse().unwrap(),
            Kept {
                reasons: vec![Reason::Traced {
                    processes: vec!["/usr/bin/bash".into()],
                    syscalls: vec!["execve".into()],
                    accesses: vec![pare_trace::AccessKind::Exec],
                }],
            },
        );
        sel.entries.insert(
            "/usr/lib/x86_64-linux-gnu/libjq.so.1".parse().unwrap(),
            Kept {
                reasons: vec![Reason::Needed {
                    by: "/usr/bin/jq".parse().unwrap(),
                    soname: "libjq.so.1".into(),
                    via: "ld.so.cache".into(),
                }],
            },
        );
        let a = answer(&sel, "/usr/lib/x86_64-linux-gnu//libjq.so.1");
        assert!(a.kept);
        assert_eq!(a.chain.len(), 2, "{:?}", a.chain);
        assert!(a.chain[0].1.contains("DT_NEEDED libjq.so.1 of /usr/bin/jq"));
        assert!(a.chain[1].1.contains("execve"));
        let missing = answer(&sel, "/bin/sh");
        assert!(!missing.kept && missing.chain.is_empty());
    }
}
