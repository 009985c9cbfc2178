//! The rules: hadolint's DL rules (same codes, default severities and meanings) and pare's PA
//! rules. Each rule is described in [`RULES`]; the checks live in [`dl`] and [`pa`].

mod dl;
mod pa;

use crate::parse::{Dockerfile, Instruction};
use crate::shell::{self, Script};
use crate::{Config, Context, Finding, Severity};

/// Static description of a rule.
#[derive(Debug, Clone, Copy)]
pub struct RuleInfo {
    pub code: &'static str,
    pub severity: Severity,
    pub message: &'static str,
}

macro_rules! rules {
    ($($code:literal $sev:ident $msg:literal;)*) => {
        /// Every rule pare knows, with its default severity and message.
        pub const RULES: &[RuleInfo] = &[$(RuleInfo { code: $code, severity: Severity::$sev, message: $msg },)*];
    };
}

rules! {
    "DL1000" Error "Dockerfile syntax error";
    "DL1001" Ignore "Please refrain from using inline ignore pragmas  `# hadolint ignore=DLxxxx`.";
    "DL3000" Error "Use absolute WORKDIR";
    "DL3001" Info "For some bash commands it makes no sense running them in a Docker container like `ssh`, `vim`, `shutdown`, `service`, `ps`, `free`, `top`, `kill`, `mount`, `ifconfig`";
    "DL3002" Warning "Last USER should not be root";
    "DL3003" Warning "Use WORKDIR to switch to a directory";
    "DL3004" Error "Do not use sudo as it leads to unpredictable behavior. Use a tool like gosu to enforce root";
    "DL3006" Warning "Always tag the version of an image explicitly";
    "DL3007" Warning "Using latest is prone to errors if the image will ever update. Pin the version explicitly to a release tag";
    "DL3008" Warning "Pin versions in apt get install. Instead of `apt-get install <package>` use `apt-get install <package>=<version>`";
    "DL3009" Info "Delete the apt lists (/var/lib/apt/lists) after installing something";
    "DL3010" Info "Use ADD for extracting archives into an image";
    "DL3011" Error "Valid UNIX ports range from 0 to 65535";
    "DL3012" Error "Multiple `HEALTHCHECK` instructions";
    "DL3013" Warning "Pin versions in pip. Instead of `pip install <package>` use `pip install <package>==<version>` or `pip install --requirement <requirements file>`";
    "DL3014" Warning "Use the `-y` switch to avoid manual input `apt-get -y install <package>`";
    "DL3015" Info "Avoid additional packages by specifying `--no-install-recommends`";
    "DL3016" Warning "Pin versions in npm. Instead of `npm install <package>` use `npm install <package>@<version>`";
    "DL3018" Warning "Pin versions in apk add. Instead of `apk add <package>` use `apk add <package>=<version>`";
    "DL3019" Info "Use the `--no-cache` switch to avoid the need to use `--update` and remove `/var/cache/apk/*` when done installing packages";
    "DL3020" Error "Use COPY instead of ADD for files and folders";
    "DL3021" Error "COPY with more than 2 arguments requires the last argument to end with /";
    "DL3022" Warning "`COPY --from` should reference a previously defined `FROM` alias";
    "DL3023" Error "`COPY --from` cannot reference its own `FROM` alias";
    "DL3024" Error "FROM aliases (stage names) must be unique";
    "DL3025" Warning "Use arguments JSON notation for CMD and ENTRYPOINT arguments";
    "DL3026" Error "Use only an allowed registry in the FROM image";
    "DL3027" Warning "Do not use apt as it is meant to be an end-user tool, use apt-get or apt-cache instead";
    "DL3028" Warning "Pin versions in gem install. Instead of `gem install <gem>` use `gem install <gem>:<version>`";
    "DL3029" Warning "Do not use --platform flag with FROM";
    "DL3030" Warning "Use the -y switch to avoid manual input `yum install -y <package>`";
    "DL3032" Warning "`yum clean all` missing after yum command.";
    "DL3033" Warning "Specify version with `yum install -y <package>-<version>`.";
    "DL3034" Warning "Non-interactive switch missing from `zypper` command: `zypper install -y`";
    "DL3035" Warning "Do not use `zypper dist-upgrade`.";
    "DL3036" Warning "`zypper clean` missing after zypper use.";
    "DL3037" Warning "Specify version with `zypper install -y <package>=<version>`.";
    "DL3038" Warning "Use the -y switch to avoid manual input `dnf install -y <package>`";
    "DL3040" Warning "`dnf clean all` missing after dnf command.";
    "DL3041" Warning "Specify version with `dnf install -y <package>-<version>`.";
    "DL3042" Warning "Avoid use of cache directory with pip. Use `pip install --no-cache-dir <package>`";
    "DL3043" Error "`ONBUILD`, `FROM` or `MAINTAINER` triggered from within `ONBUILD` instruction.";
    "DL3044" Error "Do not refer to an environment variable within the same `ENV` statement where it is defined.";
    "DL3045" Warning "`COPY` to a relative destination without `WORKDIR` set.";
    "DL3046" Warning "`useradd` without flag `-l` and high UID will result in excessively large Image.";
    "DL3047" Info "Avoid use of wget without progress bar. Use `wget --progress=dot:giga <url>`. Or consider using `-q` or `-nv` (shorthands for `--quiet` or `--no-verbose`).";
    "DL3048" Style "Invalid label key.";
    "DL3049" Info "Label `<label>` is missing.";
    "DL3050" Info "Superfluous label(s) present.";
    "DL3051" Warning "label `<label>` is empty.";
    "DL3052" Warning "Label `<label>` is not a valid URL.";
    "DL3053" Warning "Label `<label>` is not a valid time format - must conform to RFC3339.";
    "DL3054" Warning "Label `<label>` is not a valid SPDX identifier.";
    "DL3055" Warning "Label `<label>` is not a valid git hash.";
    "DL3056" Warning "Label `<label>` does not conform to semantic versioning.";
    "DL3057" Ignore "`HEALTHCHECK` instruction missing.";
    "DL3058" Warning "Label `<label>` is not a valid email format - must conform to RFC5322.";
    "DL3059" Info "Multiple consecutive `RUN` instructions. Consider consolidation.";
    "DL3060" Info "`yarn cache clean` missing after `yarn install` was run.";
    "DL3061" Error "Invalid instruction order. Dockerfile must begin with `FROM`, `ARG` or comment.";
    "DL3062" Warning "Pin versions in go. Instead of `go install <package>` use `go install <package>@<version>`";
    "DL3063" Warning "Stage name should not be a reserved word";
    "DL3064" Warning "Potentially sensitive data should not be used in the `ARG` or `ENV` commands";
    "DL3065" Warning "Setting `FROM --platform` to predefined `$TARGETPLATFORM` in is redundant as this is the default behavior";
    "DL3066" Info "Non-numeric user-id may not be resolvable by host system";
    "DL3067" Warning "Do not copy an entire filesystem from another stage";
    "DL4000" Error "MAINTAINER is deprecated";
    "DL4001" Warning "Either use Wget or Curl but not both";
    "DL4003" Warning "Multiple `CMD` instructions found. If you list more than one `CMD` then only the last `CMD` will take effect";
    "DL4004" Error "Multiple `ENTRYPOINT` instructions found. If you list more than one `ENTRYPOINT` then only the last `ENTRYPOINT` will take effect";
    "DL4005" Warning "Use SHELL to change the default shell";
    "DL4006" Warning "Set the SHELL option -o pipefail before RUN with a pipe in it. If you are using /bin/sh in an alpine image or if your shell is symlinked to busybox then consider explicitly setting your SHELL to /bin/ash, or disable this check";
    "PA1001" Info "The final stage uses a full distro or SDK base image; a slim, alpine or distroless variant exists";
    "PA1002" Warning "Build toolchain left in the final stage; build in an earlier stage and copy only the result";
    "PA1003" Warning "Do not upgrade all packages in the image; pin a newer base image instead";
    "PA1004" Warning "ADD of a remote URL without --checksum";
    "PA1005" Error "A secret (key, certificate or credentials file) is copied into the image";
    "PA1006" Warning "The final stage has no USER instruction and runs as root";
    "PA1007" Info "Package install without a cache mount or cleanup in the same layer";
    "PA1008" Info "No .dockerignore beside the Dockerfile: the whole directory is sent as build context";
    "PA1009" Warning "The whole build context is copied before the dependency install; copy the manifest files first";
}

/// Looks up a rule by code.
pub fn info(code: &str) -> Option<&'static RuleInfo> {
    RULES.iter().find(|r| r.code == code)
}

/// A RUN instruction's analysed shell.
#[derive(Debug, Default)]
pub struct RunShell {
    pub script: Script,
    /// The text that was analysed (shell form or heredoc bodies).
    pub text: String,
}

/// Builds the shell analysis of a RUN: shell form, exec form (`["sh","-c","…"]` is parsed), and
/// heredoc bodies that are fed to a shell.
pub fn run_shell(ins: &Instruction) -> RunShell {
    if let Some(argv) = &ins.exec {
        let text = argv.join(" ");
        let mut script = Script::default();
        if let Some((name, args)) = argv.split_first() {
            let is_shell =
                ["sh", "bash", "/bin/sh", "/bin/bash", "ash", "/bin/ash"].contains(&name.as_str());
            if is_shell {
                if let Some(pos) = args
                    .iter()
                    .position(|a| a.starts_with('-') && a.contains('c'))
                {
                    if let Some(s) = args.get(pos + 1) {
                        script = shell::parse(s);
                    }
                }
            }
            script.commands.insert(
                0,
                shell::Command {
                    name: name.clone(),
                    args: args.to_vec(),
                    piped: false,
                },
            );
        }
        return RunShell { script, text };
    }
    let mut text = ins.args.clone();
    if !ins.heredocs.is_empty() {
        // `RUN <<EOF` or `RUN bash <<EOF`: the body is the script. `RUN python3 <<EOF`: it is not.
        let head = shell::parse(&ins.args);
        let feeds_shell = head.commands.is_empty()
            || head.commands.iter().any(|c| {
                ["sh", "bash", "ash", "dash", "/bin/sh", "/bin/bash"].contains(&c.name.as_str())
            });
        if feeds_shell {
            for h in &ins.heredocs {
                text.push('\n');
                text.push_str(&h.body);
            }
            let mut script = head;
            for h in &ins.heredocs {
                let body = shell::parse(&h.body);
                script.has_pipe |= body.has_pipe;
                script.commands.extend(body.commands);
            }
            return RunShell { script, text };
        }
        return RunShell { script: head, text };
    }
    RunShell {
        script: shell::parse(&text),
        text,
    }
}

/// Runs every rule over a parsed Dockerfile. Severities are the defaults; the caller applies
/// config overrides, ignores and pragmas.
pub fn check(df: &Dockerfile, cfg: &Config, ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    dl::check(df, cfg, &mut out);
    pa::check(df, ctx, &mut out);
    out
}

pub(crate) fn finding(code: &str, line: usize) -> Finding {
    let (severity, message) = match info(code) {
        Some(r) => (r.severity, r.message.to_string()),
        None => (Severity::Warning, String::new()),
    };
    Finding {
        code: code.to_string(),
        severity,
        message,
        line,
        column: 1,
    }
}

pub(crate) fn finding_msg(code: &str, line: usize, message: String) -> Finding {
    let mut f = finding(code, line);
    f.message = message;
    f
}

/// Whether a `SHELL` program (its first argv word, lowercased) is not a POSIX shell:
/// PowerShell or cmd, whose RUN lines shell rules must not judge.
pub(crate) fn non_posix_shell(first: &str) -> bool {
    ["pwsh", "powershell", "cmd"]
        .iter()
        .any(|p| first.contains(p))
}

/// Splits `KEY=VALUE KEY2="v 2"` (or legacy `KEY VALUE`) into pairs, quotes removed.
pub fn kv_pairs(args: &str) -> Vec<(String, String)> {
    let words = split_words(args);
    if let Some(first) = words.first() {
        if !first.contains('=') {
            // Legacy `ENV key value with spaces`.
            let rest = args.trim_start()[first_raw_len(args)..].trim();
            return vec![(unquote(first), unquote(rest))];
        }
    }
    words
        .iter()
        .filter_map(|w| w.split_once('=').map(|(k, v)| (unquote(k), unquote(v))))
        .collect()
}

fn first_raw_len(args: &str) -> usize {
    let t = args.trim_start();
    t.find(char::is_whitespace).unwrap_or(t.len())
}

/// Splits on whitespace outside quotes; quotes are kept (use [`unquote`]).
pub fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut q: Option<char> = None;
    let mut esc = false;
    for c in s.chars() {
        if esc {
            cur.push(c);
            esc = false;
            continue;
        }
        match q {
            Some(qc) if c == qc => {
                q = None;
                cur.push(c);
            }
            Some(_) => {
                if c == '\\' {
                    esc = true;
                }
                cur.push(c);
            }
            None if c == '"' || c == '\'' => {
                q = Some(c);
                cur.push(c);
            }
            None if c == '\\' => {
                esc = true;
                cur.push(c);
            }
            None if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            None => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Removes quotes (anywhere in the word, shell-style) and simple backslash escapes.
pub fn unquote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut q: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match q {
            Some(qc) if c == qc => q = None,
            Some('"') if c == '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            Some(_) => out.push(c),
            None if c == '"' || c == '\'' => q = Some(c),
            None if c == '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            None => out.push(c),
        }
    }
    out
}

/// Parsed `FROM` line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FromInfo {
    pub image: String,
    pub alias: Option<String>,
}

pub fn parse_from(ins: &Instruction) -> FromInfo {
    let w = split_words(&ins.args);
    let image = w.first().map(|s| unquote(s)).unwrap_or_default();
    let alias = if w.len() >= 3 && w[1].eq_ignore_ascii_case("as") {
        Some(unquote(&w[2]))
    } else {
        None
    };
    FromInfo { image, alias }
}

/// Image reference parts: (registry if explicit, name, tag, digest).
pub fn split_image(image: &str) -> (Option<&str>, &str, Option<&str>, Option<&str>) {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    let (registry, path) = match rest.split_once('/') {
        Some((first, p)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            (Some(first), p)
        }
        _ => (None, rest),
    };
    let last_slash = path.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (name, tag) = match path[last_slash..].rfind(':') {
        Some(i) => (&path[..last_slash + i], Some(&path[last_slash + i + 1..])),
        None => (path, None),
    };
    (registry, name, tag, digest)
}

/// Is a RUN mount of the given type targeting a path under `prefix`?
pub fn has_mount(ins: &Instruction, types: &[&str], prefixes: &[&str]) -> bool {
    ins.flags.iter().filter(|f| f.name == "mount").any(|f| {
        let v = f.value.as_deref().unwrap_or("");
        let mut ty = "bind";
        let mut target = "";
        for kv in v.split(',') {
            let (k, val) = kv.split_once('=').unwrap_or((kv, ""));
            match k.trim() {
                "type" => ty = val.trim(),
                "target" | "dst" | "destination" => target = val.trim(),
                _ => {}
            }
        }
        types.contains(&ty)
            && prefixes.iter().any(|p| {
                target
                    .trim_end_matches('/')
                    .starts_with(p.trim_end_matches('/'))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_split() {
        assert_eq!(split_image("ubuntu"), (None, "ubuntu", None, None));
        assert_eq!(
            split_image("gcr.io/x/y:1@sha256:ab"),
            (Some("gcr.io"), "x/y", Some("1"), Some("sha256:ab"))
        );
        assert_eq!(
            split_image("localhost:5000/a"),
            (Some("localhost:5000"), "a", None, None)
        );
    }

    #[test]
    fn pairs() {
        assert_eq!(
            kv_pairs("A=1 B=\"two words\""),
            vec![("A".into(), "1".into()), ("B".into(), "two words".into())]
        );
        assert_eq!(
            kv_pairs("A some value"),
            vec![("A".into(), "some value".into())]
        );
    }

    #[test]
    fn every_rule_is_documented_once() {
        let mut codes: Vec<_> = RULES.iter().map(|r| r.code).collect();
        codes.sort();
        let n = codes.len();
        codes.dedup();
        assert_eq!(n, codes.len());
    }
}
