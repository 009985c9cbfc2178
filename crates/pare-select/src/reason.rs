//! Why a path is kept.

use serde::{Deserialize, Serialize};

/// One reason a path is in the slim image. Edge reasons name the path that brought this one in
/// (see [`Reason::from_path`]) so `pare why` can walk back to a traced file or a flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The app touched it while it was traced.
    Traced {
        processes: Vec<String>,
        syscalls: Vec<String>,
        accesses: Vec<pare_trace::AccessKind>,
    },
    /// Named by the image config (`field` is `Entrypoint`, `Cmd`, `Healthcheck`, `WorkingDir`,
    /// `Volumes` or `User`).
    ImageConfig { field: String, detail: String },
    /// A file every image keeps when present (`/etc/passwd`, `/tmp`, …).
    Baseline { what: String },
    /// `DT_NEEDED` of an ELF object, found the way `ld.so` would (`via`).
    Needed {
        by: String,
        soname: String,
        via: String,
    },
    /// `PT_INTERP` (the dynamic loader) of an ELF object.
    Interpreter { by: String },
    /// The `#!` interpreter of a script.
    Shebang { script: String, interpreter: String },
    /// A symlink (file or directory) on the way from `of` to `target`.
    SymlinkChain { of: String, target: String },
    /// A parent directory of a kept path.
    Parent { of: String },
    /// An NSS module named in `nsswitch.conf`, dlopened by libc.
    Nss {
        service: String,
        databases: Vec<String>,
        libc: String,
    },
    /// CA certificates for a TLS library.
    Certificates { library: String },
    /// Time zone data: the zone that was touched plus what readers of it need.
    Zoneinfo { touched: String },
    /// Locale data.
    Locale { touched: String },
    /// gconv configuration for a touched gconv module.
    Gconv { touched: String },
    /// The `.py` source of an accessed `.pyc`.
    PythonSource { pyc: String },
    /// The compiled `.pyc` of a kept `.py`.
    PythonBytecode { py: String },
    /// Metadata of the distribution that owns an imported file.
    PythonDistribution { file: String, distribution: String },
    /// `package.json` of the package (or app) a loaded file belongs to.
    NodePackage { file: String },
    /// dpkg database entry of a package owning kept files (`file` is one of them).
    Dpkg { package: String, file: String },
    /// `--include-path GLOB`.
    IncludePath { glob: String },
    /// `--include-bin PATH` (with its ELF closure).
    IncludeBin { path: String },
    /// `--include-exe NAME`, found in `PATH` at `path`.
    IncludeExe { name: String, path: String },
    /// `--include-shell`.
    IncludeShell,
    /// `--preserve-path GLOB` (never excluded).
    PreservePath { glob: String },
}

impl Reason {
    /// The kept path this edge comes from, when the reason is an edge.
    pub fn from_path(&self) -> Option<&str> {
        Some(match self {
            Reason::Needed { by, .. } | Reason::Interpreter { by } => by,
            Reason::Shebang { script, .. } => script,
            Reason::SymlinkChain { target, .. } => target,
            Reason::Parent { of } => of,
            Reason::Nss { libc, .. } => libc,
            Reason::Certificates { library } => library,
            Reason::Zoneinfo { touched }
            | Reason::Locale { touched }
            | Reason::Gconv { touched } => touched,
            Reason::PythonSource { pyc } => pyc,
            Reason::PythonBytecode { py } => py,
            Reason::PythonDistribution { file, .. }
            | Reason::NodePackage { file }
            | Reason::Dpkg { file, .. } => file,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Traced {
                processes,
                syscalls,
                accesses,
            } => write!(
                f,
                "traced: {} by {}",
                if syscalls.is_empty() {
                    accesses
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                } else {
                    syscalls.join(",")
                },
                if processes.is_empty() {
                    "the app".to_string()
                } else {
                    processes.join(", ")
                }
            ),
            Reason::ImageConfig { field, detail } => write!(f, "image config {field}: {detail}"),
            Reason::Baseline { what } => write!(f, "baseline: {what}"),
            Reason::Needed { by, soname, via } => {
                write!(f, "ELF DT_NEEDED {soname} of {by} (found via {via})")
            }
            Reason::Interpreter { by } => write!(f, "ELF PT_INTERP (dynamic loader) of {by}"),
            Reason::Shebang {
                script,
                interpreter,
            } => write!(f, "#! interpreter {interpreter} of {script}"),
            Reason::SymlinkChain { of, target } => {
                write!(f, "symlink in the chain of {of} → {target}")
            }
            Reason::Parent { of } => write!(f, "parent directory of {of}"),
            Reason::Nss {
                service,
                databases,
                libc,
            } => {
                write!(
                    f,
                    "NSS module for {} ({service}) in nsswitch.conf, dlopened by {libc}",
                    databases.join(",")
                )
            }
            Reason::Certificates { library } => {
                write!(f, "CA certificates for TLS library {library}")
            }
            Reason::Zoneinfo { touched } => write!(f, "time zone data needed with {touched}"),
            Reason::Locale { touched } => write!(f, "locale data needed with {touched}"),
            Reason::Gconv { touched } => write!(f, "gconv configuration for {touched}"),
            Reason::PythonSource { pyc } => write!(f, "Python source of {pyc}"),
            Reason::PythonBytecode { py } => write!(f, "Python bytecode of {py}"),
            Reason::PythonDistribution { file, distribution } => {
                write!(
                    f,
                    "metadata of Python distribution {distribution} that owns {file}"
                )
            }
            Reason::NodePackage { file } => write!(f, "package.json of the Node package of {file}"),
            Reason::Dpkg { package, file } => {
                write!(f, "dpkg database of package {package} (owns {file})")
            }
            Reason::IncludePath { glob } => write!(f, "--include-path {glob}"),
            Reason::IncludeBin { path } => write!(f, "--include-bin {path}"),
            Reason::IncludeExe { name, path } => write!(f, "--include-exe {name} ({path})"),
            Reason::IncludeShell => write!(f, "--include-shell"),
            Reason::PreservePath { glob } => write!(f, "--preserve-path {glob}"),
        }
    }
}
