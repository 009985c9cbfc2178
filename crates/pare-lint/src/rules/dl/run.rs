//! RUN rules. Each is one unit: its code, severity and message, and its check, a predicate on
//! the RUN's analysed shell (`Run`). DL3059 (consecutive RUNs) and DL3009 (apt lists, decided
//! when the file ends) need the walk's state: they are declared in [`super::stages`] and raised
//! by `check` in `dl/mod.rs`.

use super::{Stage, State};
use crate::parse::Instruction;
use crate::rules::{RuleInfo, finding, has_mount, rules, run_shell};
use crate::shell::{Command, Script};

/// What a RUN check sees.
pub(crate) struct Run<'a> {
    pub ins: &'a Instruction,
    pub s: &'a Script,
    /// The current stage (inherited pipefail, PIP_NO_CACHE_DIR, COPY'd archives).
    pub stage: Option<&'a Stage>,
    /// wget / curl seen in an earlier RUN of this stage.
    pub used_wget: bool,
    pub used_curl: bool,
}

/// Declares RUN rules: `CODE Severity "message" => check;` declares the rule with `rules!`
/// and adds `(rule, check)` to [`CHECKS`].
macro_rules! run_rules {
    ($($(#[$doc:meta])* $code:ident $sev:ident $msg:literal => $check:expr;)*) => {
        rules! { $($(#[$doc])* $code $sev $msg;)* }
        /// The RUN rules with their checks, in declaration order.
        const CHECKS: &[(&RuleInfo, fn(&Run<'_>) -> bool)] = &[$((&$code, $check)),*];
    };
}

const DL3001_COMMANDS: &[&str] = &[
    "ssh", "vim", "shutdown", "service", "ps", "free", "top", "kill", "mount", "nano",
];

run_rules! {
    DL3001 Info "For some bash commands it makes no sense running them in a Docker container like `ssh`, `vim`, `shutdown`, `service`, `ps`, `free`, `top`, `kill`, `mount`, `ifconfig`"
        => |r| r.s.commands.iter().any(|c| DL3001_COMMANDS.contains(&c.name.as_str()));
    DL3003 Warning "Use WORKDIR to switch to a directory" => |r| r.s.any("cd");
    DL3004 Error "Do not use sudo as it leads to unpredictable behavior. Use a tool like gosu to enforce root"
        => |r| r.s.any("sudo");
    DL3027 Warning "Do not use apt as it is meant to be an end-user tool, use apt-get or apt-cache instead"
        => |r| r.s.any("apt");
    DL3008 Warning "Pin versions in apt get install. Instead of `apt-get install <package>` use `apt-get install <package>=<version>`"
        => |r| apt_installs(r.s).any(|c| {
            apt_packages(c).iter().any(|p| {
                !p.contains('=') && !p.contains('/') && !p.ends_with(".deb") && !p.starts_with('$')
            })
        });
    DL3014 Warning "Use the `-y` switch to avoid manual input `apt-get -y install <package>`"
        => |r| apt_installs(r.s)
            .any(|c| !c.has_any_flag(&["-y", "--yes", "--assume-yes"]) && !quiet2(c));
    DL3015 Info "Avoid additional packages by specifying `--no-install-recommends`"
        => |r| apt_installs(r.s).any(|c| {
            !c.has_flag("--no-install-recommends")
                && !c.args.iter().any(|a| {
                    a.contains("APT::Install-Recommends=false")
                        || a.contains("APT::Install-Recommends=0")
                })
        });
    DL3013 Warning "Pin versions in pip. Instead of `pip install <package>` use `pip install <package>==<version>` or `pip install --requirement <requirements file>`"
        => |r| pip_installs(r.s)
            .iter()
            .any(|c| pip_packages(c).iter().any(|p| !pip_pinned(p)));
    DL3042 Warning "Avoid use of cache directory with pip. Use `pip install --no-cache-dir <package>`"
        => |r| !r.stage.is_some_and(|st| st.pip_no_cache_env)
            && !has_mount(
                r.ins,
                &["cache", "tmpfs"],
                &["/root/.cache/pip", "/root/.cache", "~/.cache/pip"],
            )
            && pip_installs(r.s).iter().filter(|c| c.name != "pipx").any(|c| {
                !c.has_flag("--no-cache-dir")
                    && !c
                        .args
                        .iter()
                        .any(|a| a == "--cache-dir" || a.starts_with("--cache-dir="))
            });
    DL3016 Warning "Pin versions in npm. Instead of `npm install <package>` use `npm install <package>@<version>`"
        => |r| r.s.find("npm").any(|c| {
            matches!(c.subcommand(), Some("install" | "i" | "add"))
                && npm_packages(c).iter().any(|p| !npm_pinned(p))
        });
    DL3018 Warning "Pin versions in apk add. Instead of `apk add <package>` use `apk add <package>=<version>`"
        => |r| apk_adds(r.s).any(|c| {
            apk_packages(c)
                .iter()
                .any(|p| !p.contains('=') && !p.ends_with(".apk"))
        });
    DL3019 Info "Use the `--no-cache` switch to avoid the need to use `--update` and remove `/var/cache/apk/*` when done installing packages"
        => |r| apk_adds(r.s).any(|c| !c.has_flag("--no-cache"))
            && !has_mount(r.ins, &["cache"], &["/var/cache/apk", "/etc/apk/cache"]);
    DL3028 Warning "Pin versions in gem install. Instead of `gem install <gem>` use `gem install <gem>:<version>`"
        => |r| r.s.find("gem").any(|c| {
            c.subcommand() == Some("install")
                // Like hadolint: `-v X`, `--version X` or `--version=X` (not `-v=X`).
                && !c.args.iter().any(|a| a == "-v" || a == "--version" || a.starts_with("--version="))
                && c.positional().skip(1).any(|p| !p.contains(':'))
        });
    DL3030 Warning "Use the -y switch to avoid manual input `yum install -y <package>`"
        => |r| installs(r.s.find("yum")).any(|c| !c.has_any_flag(&["-y", "--assumeyes"]));
    DL3032 Warning "`yum clean all` missing after yum command."
        => |r| installs(r.s.find("yum")).next().is_some()
            && !r.s
                .find("yum")
                .any(|c| c.positional().collect::<Vec<_>>() == ["clean", "all"])
            && !removes(r.s, "/var/cache/yum")
            && !has_mount(r.ins, &["cache"], &["/var/cache/yum"]);
    DL3033 Warning "Specify version with `yum install -y <package>-<version>`."
        => |r| installs(r.s.find("yum")).any(|c| rpm_packages(c).iter().any(|p| !rpm_pinned(p)));
    DL3038 Warning "Use the -y switch to avoid manual input `dnf install -y <package>`"
        => |r| installs(dnf(r.s)).any(|c| !c.has_any_flag(&["-y", "--assumeyes"]));
    DL3040 Warning "`dnf clean all` missing after dnf command."
        => |r| installs(dnf(r.s)).next().is_some()
            && !dnf(r.s).any(|c| c.positional().collect::<Vec<_>>() == ["clean", "all"])
            && !removes(r.s, "/var/cache/dnf")
            && !removes(r.s, "/var/cache/yum")
            && !has_mount(r.ins, &["cache"], &["/var/cache/dnf"]);
    DL3041 Warning "Specify version with `dnf install -y <package>-<version>`."
        => |r| installs(dnf(r.s)).any(|c| rpm_packages(c).iter().any(|p| !rpm_pinned(p)));
    DL3034 Warning "Non-interactive switch missing from `zypper` command: `zypper install -y`"
        => |r| r.s.find("zypper").any(|c| {
            matches!(
                c.subcommand(),
                Some("install" | "in" | "remove" | "rm" | "source-install" | "si" | "patch")
            ) && !c.has_any_flag(&["-n", "--non-interactive", "-y", "--no-confirm"])
        });
    DL3035 Warning "Do not use `zypper dist-upgrade`."
        => |r| r.s
            .find("zypper")
            .any(|c| matches!(c.subcommand(), Some("dist-upgrade" | "dup")));
    DL3036 Warning "`zypper clean` missing after zypper use."
        => |r| zypper_installs(r.s).next().is_some()
            && !r.s
                .find("zypper")
                .any(|c| matches!(c.subcommand(), Some("clean" | "cc")));
    DL3037 Warning "Specify version with `zypper install -y <package>=<version>`."
        => |r| zypper_installs(r.s).any(|c| {
            c.positional().skip(1).any(|p| {
                !p.contains('=') && !p.contains('>') && !p.contains('<') && !p.ends_with(".rpm")
            })
        });
    DL3046 Warning "`useradd` without flag `-l` and high UID will result in excessively large Image."
        => |r| r.s.find("useradd").any(|c| {
            !c.has_any_flag(&["-l", "--no-log-init"])
                && uid_arg(c)
                    .is_some_and(|u| u.len() > 5 && u.chars().all(|ch| ch.is_ascii_digit()))
        });
    DL3047 Info "Avoid use of wget without progress bar. Use `wget --progress=dot:giga <url>`. Or consider using `-q` or `-nv` (shorthands for `--quiet` or `--no-verbose`)."
        => |r| r.s.find("wget").any(|c| {
            !c.has_any_flag(&[
                "--progress",
                "-q",
                "--quiet",
                "-nv",
                "--no-verbose",
                "-o",
                "--output-file",
                "-a",
                "--append-output",
            ]) && !c.args.iter().any(|a| a == "-nv")
        });
    DL3060 Info "`yarn cache clean` missing after `yarn install` was run."
        => |r| r.s.find("yarn").any(|c| c.args.iter().any(|a| a == "install"))
            && !r.s.find("yarn").any(|c| {
                let p: Vec<&str> = c.args.iter().map(String::as_str).collect();
                p.windows(2).any(|w| w == ["cache", "clean"])
            });
    DL3062 Warning "Pin versions in go. Instead of `go install <package>` use `go install <package>@<version>`"
        => |r| r.s.find("go").any(|c| {
            matches!(c.subcommand(), Some("install" | "get"))
                && c.positional().skip(1).any(|p| {
                    let local = p.starts_with('.') || p.starts_with('/') || p.starts_with('$');
                    !local && (!p.contains('@') || p.ends_with("@latest"))
                })
        });
    DL4005 Warning "Use SHELL to change the default shell"
        => |r| r.s.find("ln").any(|c| c.args.iter().any(|a| a == "/bin/sh"));
    // Like hadolint, `set -o pipefail` inside the RUN does not count: /bin/sh may not have it.
    DL4006 Warning "Set the SHELL option -o pipefail before RUN with a pipe in it. If you are using /bin/sh in an alpine image or if your shell is symlinked to busybox then consider explicitly setting your SHELL to /bin/ash, or disable this check"
        => |r| {
            let (pipefail, non_posix) = r
                .stage
                .map(|st| (st.pipefail, st.non_posix_shell))
                .unwrap_or((false, false));
            r.s.has_pipe && !pipefail && !non_posix
        };
    // Both wget and curl in this stage (this RUN uses one, and the other was seen).
    DL4001 Warning "Either use Wget or Curl but not both"
        => |r| {
            let (wget, curl) = (r.s.any("wget"), r.s.any("curl"));
            (wget && (curl || r.used_curl)) || (curl && r.used_wget)
        };
    // Extracting an archive that was COPY'd.
    DL3010 Info "Use ADD for extracting archives into an image"
        => |r| r.stage.is_some_and(|st| {
            !st.archives.is_empty()
                && r.s.find("tar").any(|c| {
                    c.args.iter().any(|a| {
                        (a.starts_with('-') && !a.starts_with("--") && a.contains('x'))
                            || a == "--extract"
                            || (!a.starts_with('-') && a.starts_with('x') && a.len() <= 6)
                    }) && c
                        .args
                        .iter()
                        .any(|a| st.archives.iter().any(|b| a.ends_with(b.as_str())))
                })
        });
}

/// DL3009's check: the RUN updates the apt lists and leaves them in the layer. Whether that
/// matters is known when the file ends (the stage must be final or a base of another).
fn leaves_apt_lists(ins: &Instruction, s: &Script) -> bool {
    !removes(s, "/var/lib/apt/lists")
        && !has_mount(
            ins,
            &["cache", "tmpfs"],
            &["/var/lib/apt/lists", "/var/lib/apt"],
        )
        && s.commands
            .iter()
            .any(|c| (c.name == "apt-get" || c.name == "apt") && c.subcommand() == Some("update"))
}

impl State<'_> {
    /// Runs every RUN rule on one RUN.
    pub(super) fn run(&mut self, ins: &Instruction) {
        let sh = run_shell(ins);
        let s = &sh.script;
        let r = Run {
            ins,
            s,
            stage: self.stages.last(),
            used_wget: self.used_wget,
            used_curl: self.used_curl,
        };
        for (rule, check) in CHECKS {
            if check(&r) {
                self.out.push(finding(rule, ins.line));
            }
        }
        if leaves_apt_lists(ins, s) {
            if let Some(st) = self.stages.last_mut() {
                st.apt_lists_lines.push(ins.line);
            }
        }
        self.used_wget |= s.any("wget");
        self.used_curl |= s.any("curl");
    }
}

fn apt_installs(s: &Script) -> impl Iterator<Item = &Command> {
    s.find("apt-get")
        .filter(|c| c.subcommand() == Some("install"))
}

fn apk_adds(s: &Script) -> impl Iterator<Item = &Command> {
    s.find("apk").filter(|c| c.subcommand() == Some("add"))
}

fn dnf(s: &Script) -> impl Iterator<Item = &Command> {
    s.commands
        .iter()
        .filter(|c| c.name == "dnf" || c.name == "microdnf")
}

fn installs<'a>(cmds: impl Iterator<Item = &'a Command>) -> impl Iterator<Item = &'a Command> {
    cmds.filter(|c| c.subcommand() == Some("install"))
}

fn zypper_installs(s: &Script) -> impl Iterator<Item = &Command> {
    s.find("zypper")
        .filter(|c| matches!(c.subcommand(), Some("install" | "in")))
}

/// Does the script delete something under `path` (`rm -rf /var/lib/apt/lists/*`)?
fn removes(s: &Script, path: &str) -> bool {
    s.find("rm")
        .any(|c| c.args.iter().any(|a| a.starts_with(path)))
}

fn quiet2(c: &Command) -> bool {
    c.args.iter().any(|a| {
        a == "-qq"
            || a == "-q=2"
            || a == "--quiet=2"
            || (a.starts_with('-') && !a.starts_with("--") && a.matches('q').count() >= 2)
    })
}

/// Positional args after `install`, skipping values of options that take one.
fn args_after_sub<'a>(c: &'a Command, sub: &[&str], takes_value: &[&str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut seen_sub = false;
    let mut skip = false;
    for a in &c.args {
        if skip {
            skip = false;
            continue;
        }
        if a.starts_with('-') {
            if takes_value.contains(&a.as_str()) {
                skip = true;
            }
            continue;
        }
        if !seen_sub {
            if sub.contains(&a.as_str()) {
                seen_sub = true;
            }
            continue;
        }
        out.push(a.as_str());
    }
    out
}

fn apt_packages(c: &Command) -> Vec<&str> {
    args_after_sub(
        c,
        &["install"],
        &["-o", "-t", "--target-release", "-c", "--config-file"],
    )
}

fn apk_packages(c: &Command) -> Vec<&str> {
    args_after_sub(
        c,
        &["add"],
        &[
            "-t",
            "--virtual",
            "-X",
            "--repository",
            "--arch",
            "--root",
            "-p",
            "--keys-dir",
        ],
    )
}

fn rpm_packages(c: &Command) -> Vec<&str> {
    args_after_sub(
        c,
        &["install"],
        &[
            "--enablerepo",
            "--disablerepo",
            "--setopt",
            "--installroot",
            "--releasever",
            "-c",
            "--config",
        ],
    )
}

fn rpm_pinned(p: &str) -> bool {
    p.ends_with(".rpm") || p.contains("://") || {
        let b = p.as_bytes();
        b.windows(2).any(|w| w[0] == b'-' && w[1].is_ascii_digit())
    }
}

fn npm_packages(c: &Command) -> Vec<&str> {
    args_after_sub(
        c,
        &["install", "i", "add"],
        &["--prefix", "--registry", "--cache", "-C", "--tag", "--only"],
    )
}

fn npm_pinned(p: &str) -> bool {
    if p.contains("://") {
        // git/http URLs are pinned by a `#commit-ish`; tarball URLs by their name.
        return p.contains('#') || p.ends_with(".tgz") || p.ends_with(".tar.gz");
    }
    let body = p.strip_prefix('@').unwrap_or(p);
    body.contains('@')
        || p.starts_with('.')
        || p.starts_with('/')
        || p.starts_with('~')
        || p.starts_with("file:")
        || p.ends_with(".tgz")
        || p.ends_with(".tar.gz")
        || p.contains('#')
        || (p.contains('/') && !p.starts_with('@'))
}

fn pip_installs(s: &Script) -> Vec<Command> {
    let mut out = Vec::new();
    for c in &s.commands {
        let name = c.name.rsplit('/').next().unwrap_or(&c.name);
        let is_pip = name == "pipx"
            || (name.starts_with("pip")
                && name[3..].chars().all(|ch| ch.is_ascii_digit() || ch == '.'));
        if is_pip {
            if c.subcommand() == Some("install") {
                out.push(c.clone());
            }
            continue;
        }
        let is_python = name.starts_with("python")
            && name[6..].chars().all(|ch| ch.is_ascii_digit() || ch == '.');
        if is_python {
            if let Some(pos) = c
                .args
                .windows(2)
                .position(|w| w[0] == "-m" && (w[1] == "pip" || w[1] == "pip3"))
            {
                let rest = c.args[pos + 2..].to_vec();
                let sub = Command {
                    name: "pip".into(),
                    args: rest,
                    piped: c.piped,
                };
                if sub.subcommand() == Some("install") {
                    out.push(sub);
                }
            }
        }
    }
    out
}

fn pip_packages(c: &Command) -> Vec<&str> {
    let mut v = args_after_sub(
        c,
        &["install"],
        &[
            "-r",
            "--requirement",
            "-c",
            "--constraint",
            "-e",
            "--editable",
            "-i",
            "--index-url",
            "--extra-index-url",
            "-f",
            "--find-links",
            "-t",
            "--target",
            "--prefix",
            "--root",
            "--trusted-host",
            "--platform",
            "--python-version",
            "--implementation",
            "--abi",
            "--upgrade-strategy",
            "--progress-bar",
            "--cache-dir",
            "--src",
            "--no-binary",
            "--only-binary",
            "--log",
            "--proxy",
            "--retries",
            "--timeout",
            "--exists-action",
            "--global-option",
            "--install-option",
            "--config-settings",
            "-C",
        ],
    );
    v.retain(|p| !p.is_empty());
    v
}

fn pip_pinned(p: &str) -> bool {
    ["==", ">=", "<=", "~=", "!=", "===", "<", ">", "@"]
        .iter()
        .any(|op| p.contains(op))
        || p.starts_with('.')
        || p.starts_with('/')
        || p.starts_with('$')
        || p.ends_with(".whl")
        || p.ends_with(".tar.gz")
        || p.ends_with(".zip")
}

fn uid_arg(c: &Command) -> Option<&str> {
    let mut it = c.args.iter();
    while let Some(a) = it.next() {
        if a == "-u" || a == "--uid" {
            return it.next().map(String::as_str);
        }
        if let Some(v) = a.strip_prefix("--uid=") {
            return Some(v);
        }
        if let Some(v) = a.strip_prefix("-u") {
            if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) {
                return Some(v);
            }
        }
    }
    None
}
