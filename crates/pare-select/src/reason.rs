//! Why a path is kept.

use pare_image::ImagePath;
use serde::{Deserialize, Serialize};

/// One reason a path is in the slim image. Edge reasons name the path that brought this one in
/// (see [`Reason::from_path`]) so `pare why` can walk back to a traced file or a flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The app touched it while it was traced.
    Traced {
        /// The executables of the processes that touched it.
        processes: Vec<String>,
        /// The system calls that touched it.
        syscalls: Vec<String>,
        /// How it was touched.
        accesses: Vec<pare_trace::AccessKind>,
    },
    /// Named by the image config (`field` is `Entrypoint`, `Cmd`, `Healthcheck`, `WorkingDir`,
    /// `Volumes` or `User`).
    ImageConfig {
        /// The config field.
        field: String,
        /// What in the field named it (the command line, the volume, …).
        detail: String,
    },
    /// A file every image keeps when present (`/etc/passwd`, `/tmp`, …).
    Baseline {
        /// Which baseline it belongs to.
        what: String,
    },
    /// `DT_NEEDED` of an ELF object, found the way `ld.so` would (`via`).
    Needed {
        /// The object that needs it.
        by: ImagePath,
        /// The `DT_NEEDED` name.
        soname: String,
        /// Where it was found: `RPATH`, `RUNPATH`, `ld.so.cache`, …
        via: String,
    },
    /// `PT_INTERP` (the dynamic loader) of an ELF object.
    Interpreter {
        /// The object whose loader it is.
        by: ImagePath,
    },
    /// The `#!` interpreter of a script.
    Shebang {
        /// The script.
        script: ImagePath,
        /// Its `#!` line, without the `#!`.
        interpreter: String,
    },
    /// A symlink (file or directory) on the way from `of` to `target`.
    SymlinkChain {
        /// The path as it was opened or named.
        of: String,
        /// The canonical path it leads to.
        target: ImagePath,
    },
    /// A parent directory of a kept path.
    Parent {
        /// The first kept path below it.
        of: ImagePath,
    },
    /// An NSS module named in `nsswitch.conf`, dlopened by libc.
    Nss {
        /// The service (`files`, `dns`, …).
        service: String,
        /// The databases that name it (`passwd`, `hosts`, …).
        databases: Vec<String>,
        /// The kept libc that loads it.
        libc: ImagePath,
    },
    /// CA certificates for a TLS library.
    Certificates {
        /// The kept TLS library (or runtime) that reads them.
        library: ImagePath,
    },
    /// Time zone data: the zone that was touched plus what readers of it need.
    Zoneinfo {
        /// The zone file that was kept first.
        touched: ImagePath,
    },
    /// Locale data.
    Locale {
        /// The locale file that was kept first.
        touched: ImagePath,
    },
    /// gconv configuration for a touched gconv module.
    Gconv {
        /// The gconv module that was kept.
        touched: ImagePath,
    },
    /// The `.py` source of an accessed `.pyc`.
    PythonSource {
        /// The accessed `.pyc`.
        pyc: ImagePath,
    },
    /// The compiled `.pyc` of a kept `.py`.
    PythonBytecode {
        /// The kept `.py`.
        py: ImagePath,
    },
    /// Metadata of the distribution that owns an imported file.
    PythonDistribution {
        /// The kept file it owns.
        file: ImagePath,
        /// The `*.dist-info` / `*.egg-info` directory name.
        distribution: String,
    },
    /// `package.json` of the package (or app) a loaded file belongs to.
    NodePackage {
        /// The loaded file.
        file: ImagePath,
    },
    /// dpkg database entry of a package owning kept files (`file` is one of them).
    Dpkg {
        /// The package.
        package: String,
        /// One kept file it owns.
        file: ImagePath,
    },
    /// `--include-path GLOB`.
    IncludePath {
        /// The glob as given.
        glob: String,
    },
    /// `--include-bin PATH` (with its ELF closure).
    IncludeBin {
        /// The path as given.
        path: String,
    },
    /// `--include-exe NAME`, found in `PATH` at `path`.
    IncludeExe {
        /// The name as given.
        name: String,
        /// Where it was found.
        path: String,
    },
    /// `--include-shell`.
    IncludeShell,
    /// `--preserve-path GLOB` (never excluded).
    PreservePath {
        /// The glob as given.
        glob: String,
    },
}

impl Reason {
    /// The kept path this edge comes from, when the reason is an edge.
    pub fn from_path(&self) -> Option<&ImagePath> {
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
