//! The rules: hadolint's DL rules (same codes, default severities and meanings) and pare's PA
//! rules. Each rule is one `const` [`RuleInfo`] declared with `rules!` beside its check, in
//! [`dl`] and [`pa`]; [`RULES`] lists them all.

pub mod dl;
pub mod pa;

use crate::parse::{Dockerfile, Instruction};
use crate::shell::{self, Script};
use crate::{Config, Context, Finding, Severity};

/// Static description of a rule. Each rule is one `const` item named by its code (e.g.
/// [`dl::run::DL3003`]), declared with `rules!` next to its check, so the code string exists once and
/// a misspelt rule does not compile.
#[derive(Debug, Clone, Copy)]
pub struct RuleInfo {
    /// The rule code (`DL3008`, `PA001`), as findings and `--ignore` spell it.
    pub code: &'static str,
    /// Severity before config overrides (hadolint's default for DL rules).
    pub severity: Severity,
    /// The finding's one-line message.
    pub message: &'static str,
}

/// Declares rules: `CODE Severity "message";` becomes `pub const CODE: RuleInfo`, the module's
/// `ALL` table (for [`RULES`]) and, under test, one test per rule (named by its code) that lints
/// the rule's fixtures `tests/rules/CODE.{bad,good,onbuild}.Dockerfile`. A rule marked
/// `[config]` is only reachable with a config; its test is in tests/rules.rs.
macro_rules! rules {
    ($($(#[$doc:meta])* $code:ident $sev:ident $msg:literal $([$config:ident])?;)*) => {
        $(
            // The finding's message documents the rule; any `///` lines given add detail.
            #[doc = concat!("`", stringify!($code), "`: ", $msg)]
            #[doc = ""]
            #[doc = concat!("Default severity: [`", stringify!($sev), "`](crate::Severity::", stringify!($sev), ").")]
            #[doc = ""]
            $(#[$doc])*
            pub const $code: $crate::rules::RuleInfo = $crate::rules::RuleInfo {
                code: stringify!($code),
                severity: $crate::Severity::$sev,
                message: $msg,
            };
        )*
        /// This module's rules, in declaration order.
        pub(crate) const ALL: &[$crate::rules::RuleInfo] = &[$($code),*];

        #[cfg(test)]
        #[allow(non_snake_case)]
        mod fixture_tests {
            $(
                #[test]
                fn $code() {
                    let needs_fixture = true $(&& stringify!($config) != "config")?;
                    $crate::rules::check_fixtures(&super::$code, needs_fixture);
                }
            )*
        }
    };
}
pub(crate) use rules;

/// The number of rules in all modules.
const N_RULES: usize = dl::N_RULES + pa::ALL.len();

/// Every rule pare knows, with its default severity and message, sorted by code.
pub const RULES: &[RuleInfo] = &sorted(dl::GROUPS, pa::ALL);

/// Concatenates the rule tables and sorts them by code (at compile time).
const fn sorted(groups: &[&[RuleInfo]], last: &[RuleInfo]) -> [RuleInfo; N_RULES] {
    let mut out = [dl::DL1000; N_RULES];
    let mut n = 0;
    let mut g = 0;
    while g <= groups.len() {
        let group = if g < groups.len() { groups[g] } else { last };
        let mut i = 0;
        while i < group.len() {
            out[n] = group[i];
            n += 1;
            i += 1;
        }
        g += 1;
    }
    // Insertion sort on the code bytes.
    let mut i = 1;
    while i < n {
        let mut j = i;
        while j > 0 && less(out[j].code.as_bytes(), out[j - 1].code.as_bytes()) {
            let t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
            j -= 1;
        }
        i += 1;
    }
    out
}

const fn less(a: &[u8], b: &[u8]) -> bool {
    let mut i = 0;
    while i < a.len() && i < b.len() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
        i += 1;
    }
    a.len() < b.len()
}

/// Looks up a rule by code.
pub fn info(code: &str) -> Option<&'static RuleInfo> {
    RULES.iter().find(|r| r.code == code)
}

/// A RUN instruction's analysed shell.
#[derive(Debug, Default)]
pub struct RunShell {
    /// The parsed commands of the script.
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

/// A finding of `rule` at `line`, with the rule's severity and message.
pub(crate) fn finding(rule: &RuleInfo, line: usize) -> Finding {
    Finding {
        code: rule.code.to_string(),
        severity: rule.severity,
        message: rule.message.to_string(),
        line,
        column: 1,
    }
}

/// A finding of `rule` with a message specific to this occurrence.
pub(crate) fn finding_msg(rule: &RuleInfo, line: usize, message: String) -> Finding {
    let mut f = finding(rule, line);
    f.message = message;
    f
}

/// The per-rule fixture test: `CODE.bad.Dockerfile` and `CODE.onbuild.Dockerfile` must raise the
/// rule, `CODE.good.Dockerfile` must not. With `needs_fixture`, a bad fixture must exist.
#[cfg(test)]
pub(crate) fn check_fixtures(rule: &RuleInfo, needs_fixture: bool) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules");
    let mut cfg = Config::default();
    cfg.overrides
        .insert(rule.code.to_string(), crate::Severity::Warning);
    let mut bad = 0;
    for kind in ["bad", "good", "onbuild"] {
        let path = dir.join(format!("{}.{kind}.Dockerfile", rule.code));
        let Ok(src) = std::fs::read_to_string(&path) else {
            continue;
        };
        let got: Vec<String> = crate::lint_source(&src, &cfg, &Context::default())
            .into_iter()
            .filter(|f| f.code == rule.code)
            .map(|f| {
                assert!(!f.message.is_empty(), "{}: empty message", rule.code);
                f.code
            })
            .collect();
        if kind == "good" {
            assert!(got.is_empty(), "{}: good fixture raised it", rule.code);
        } else {
            assert!(
                !got.is_empty(),
                "{}: {kind} fixture did not raise it",
                rule.code
            );
            bad += 1;
        }
    }
    assert!(
        bad > 0 || !needs_fixture,
        "{}: no tests/rules/{}.bad.Dockerfile",
        rule.code,
        rule.code
    );
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
    /// The image reference as written (quotes removed; may contain `$VARIABLES`).
    pub image: String,
    /// The stage name after `AS`, when given.
    pub alias: Option<String>,
}

/// Splits a `FROM` instruction's arguments into image and alias (`FROM IMAGE [AS NAME]`;
/// flags such as `--platform` are not part of `args`).
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
    fn rules_are_sorted_and_complete() {
        assert_eq!(RULES.len(), dl::N_RULES + pa::ALL.len());
        assert!(RULES.windows(2).all(|w| w[0].code < w[1].code));
        assert_eq!(RULES.first().map(|r| r.code), Some("DL1000"));
        assert_eq!(RULES.last().map(|r| r.code), Some("PA1009"));
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
