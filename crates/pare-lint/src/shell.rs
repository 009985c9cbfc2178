//! Shell analysis for `RUN`: which commands run, with which arguments.
//!
//! Why a small tokenizer and not a crate? We looked at the maintained POSIX/bash parsers on
//! crates.io: `brush-parser` (full bash grammar, pulls in a PEG generator and many deps, and
//! rejects scripts that are only valid after Docker's `${VAR}` substitution or contain BuildKit
//! heredoc markers), `yash-syntax` (async, POSIX-strict, heavyweight API) and the unmaintained
//! `conch-parser`. Lint rules only need *commands and their words* across `&&`, `||`, `;`, `|`,
//! `&`, subshells, `$(…)`/backticks, `sh -c '…'` and embedded heredocs, and must never fail on
//! odd input (templates with `{{ }}`, half-written scripts). A strict parser would turn those into
//! errors and lose every finding of the file; this tokenizer degrades gracefully and is a few
//! hundred nanoseconds per RUN. ShellCheck-level analysis (SC codes) is not done here: it is the
//! optional external pass in [`crate::shellcheck`].

/// One simple command: its name and arguments (quotes removed, expansions kept verbatim).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Command {
    /// The command word as written (`apt-get`, `/usr/bin/env`), after leading `VAR=value` assignments.
    pub name: String,
    /// The words after the name, quotes removed, `$VAR` and `$(…)` kept as written.
    pub args: Vec<String>,
    /// Part of a pipeline (`a | b`).
    pub piped: bool,
}

impl Command {
    /// Arguments that do not start with `-`.
    pub fn positional(&self) -> impl Iterator<Item = &str> {
        self.args
            .iter()
            .map(String::as_str)
            .filter(|a| !a.starts_with('-'))
    }
    /// Has flag `-x`, `--long`, or a short flag grouped like `-qy`.
    pub fn has_flag(&self, f: &str) -> bool {
        if let Some(long) = f.strip_prefix("--") {
            return self.args.iter().any(|a| {
                a.strip_prefix("--")
                    .is_some_and(|x| x == long || x.starts_with(&format!("{long}=")))
            });
        }
        let Some(short) = f.strip_prefix('-') else {
            return false;
        };
        self.args.iter().any(|a| {
            a == f
                || (a.starts_with('-')
                    && !a.starts_with("--")
                    && a.len() > 2
                    && short.len() == 1
                    && a[1..].contains(short))
        })
    }
    /// Has any of the flags `fs` (each matched as by [`Command::has_flag`]).
    pub fn has_any_flag(&self, fs: &[&str]) -> bool {
        fs.iter().any(|f| self.has_flag(f))
    }
    /// First positional argument (sub-command such as `install`).
    pub fn subcommand(&self) -> Option<&str> {
        self.positional().next()
    }
    /// Has the exact argument `a` (whole word, flag or not).
    pub fn has_arg(&self, a: &str) -> bool {
        self.args.iter().any(|x| x == a)
    }
}

/// A parsed shell script.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    /// Every simple command found, in source order, including those inside subshells, `$(…)`,
    /// backticks and `sh -c '…'`.
    pub commands: Vec<Command>,
    /// A pipe `|` appears outside quotes.
    pub has_pipe: bool,
}

impl Script {
    /// The commands named exactly `name`.
    pub fn find<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Command> + 'a {
        self.commands.iter().filter(move |c| c.name == name)
    }
    /// Whether any command is named exactly `name`.
    pub fn any(&self, name: &str) -> bool {
        self.commands.iter().any(|c| c.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Op(&'static str),
}

const SHELLS: &[&str] = &[
    "sh",
    "bash",
    "dash",
    "ash",
    "zsh",
    "ksh",
    "/bin/sh",
    "/bin/bash",
    "/bin/ash",
    "/usr/bin/env",
];
const RESERVED: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "time",
    "exec",
];

/// Parses a shell script into its commands. Never fails.
pub fn parse(src: &str) -> Script {
    let mut script = Script::default();
    parse_into(src, &mut script, 0);
    script
}

fn parse_into(src: &str, script: &mut Script, depth: usize) {
    if depth > 8 {
        return;
    }
    let mut subs = Vec::new();
    let toks = tokenize(src, &mut subs);
    let mut cur: Vec<String> = Vec::new();
    let mut piped_next = false;
    let flush = |cur: &mut Vec<String>, piped: bool, script: &mut Script| {
        let words = std::mem::take(cur);
        let mut it = words.into_iter().peekable();
        // Drop assignments and reserved words.
        while let Some(w) = it.peek() {
            if RESERVED.contains(&w.as_str()) || is_assignment(w) {
                it.next();
            } else {
                break;
            }
        }
        let Some(name) = it.next() else { return };
        if matches!(
            name.as_str(),
            "for" | "case" | "select" | "function" | "in" | "esac" | ";;"
        ) {
            return;
        }
        let args: Vec<String> = it.collect();
        let cmd = Command { name, args, piped };
        let inner = sh_c_script(&cmd);
        script.commands.push(cmd);
        if let Some(s) = inner {
            parse_into(&s, script, depth + 1);
        }
    };
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Word(w) => cur.push(w.clone()),
            Tok::Op(op) => {
                let is_pipe = *op == "|" || *op == "|&";
                if is_pipe {
                    script.has_pipe = true;
                }
                flush(&mut cur, is_pipe || piped_next, script);
                piped_next = is_pipe;
            }
        }
        i += 1;
    }
    flush(&mut cur, piped_next, script);
    for s in subs {
        parse_into(&s, script, depth + 1);
    }
}

fn is_assignment(w: &str) -> bool {
    match w.split_once('=') {
        Some((k, _)) => {
            !k.is_empty()
                && k.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '+')
        }
        None => false,
    }
}

/// `sh -c 'script'`, `bash -ec "…"`, `env sh -c …`: the inner script.
fn sh_c_script(cmd: &Command) -> Option<String> {
    if !SHELLS.contains(&cmd.name.as_str()) {
        return None;
    }
    let mut it = cmd.args.iter();
    while let Some(a) = it.next() {
        if a.starts_with('-') && !a.starts_with("--") && a.contains('c') {
            return it.find(|x| !x.starts_with('-')).cloned();
        }
        if !a.starts_with('-') && cmd.name != "/usr/bin/env" {
            return None;
        }
    }
    None
}

// `end_word!` resets `in_word` also where it is not read again.
#[allow(unused_assignments)]
fn tokenize(src: &str, subs: &mut Vec<String>) -> Vec<Tok> {
    let b: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut pending_heredocs: Vec<(String, bool)> = Vec::new();
    let mut i = 0;
    let n = b.len();
    macro_rules! end_word {
        () => {
            if in_word {
                toks.push(Tok::Word(std::mem::take(&mut word)));
                in_word = false;
            }
        };
    }
    while i < n {
        let c = b[i];
        match c {
            '\\' => {
                if i + 1 < n && b[i + 1] == '\n' {
                    i += 2;
                    continue;
                }
                if i + 1 < n {
                    word.push(b[i + 1]);
                    in_word = true;
                    i += 2;
                } else {
                    i += 1;
                }
            }
            '\'' => {
                in_word = true;
                i += 1;
                while i < n && b[i] != '\'' {
                    word.push(b[i]);
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                in_word = true;
                i += 1;
                while i < n && b[i] != '"' {
                    if b[i] == '\\' && i + 1 < n {
                        if !matches!(b[i + 1], '"' | '\\' | '$' | '`' | '\n') {
                            word.push('\\');
                        }
                        if b[i + 1] != '\n' {
                            word.push(b[i + 1]);
                        }
                        i += 2;
                        continue;
                    }
                    if b[i] == '$' && i + 1 < n && b[i + 1] == '(' {
                        let (inner, end) = balanced(&b, i + 1, '(', ')');
                        if !inner.starts_with('(') {
                            subs.push(inner.clone());
                        }
                        word.push_str("$(");
                        word.push_str(&inner);
                        word.push(')');
                        i = end;
                        continue;
                    }
                    if b[i] == '`' {
                        let (inner, end) = until(&b, i + 1, '`');
                        subs.push(inner.clone());
                        word.push('`');
                        word.push_str(&inner);
                        word.push('`');
                        i = end;
                        continue;
                    }
                    word.push(b[i]);
                    i += 1;
                }
                i += 1;
            }
            '`' => {
                let (inner, end) = until(&b, i + 1, '`');
                subs.push(inner.clone());
                word.push('`');
                word.push_str(&inner);
                word.push('`');
                in_word = true;
                i = end;
            }
            '$' if i + 1 < n && (b[i + 1] == '(' || b[i + 1] == '{') => {
                let (open, close) = if b[i + 1] == '(' {
                    ('(', ')')
                } else {
                    ('{', '}')
                };
                let (inner, end) = balanced(&b, i + 1, open, close);
                if open == '(' && !inner.starts_with('(') {
                    subs.push(inner.clone());
                }
                word.push('$');
                word.push(open);
                word.push_str(&inner);
                word.push(close);
                in_word = true;
                i = end;
            }
            '#' if !in_word => {
                while i < n && b[i] != '\n' {
                    i += 1;
                }
            }
            ' ' | '\t' | '\r' => {
                end_word!();
                i += 1;
            }
            '\n' => {
                end_word!();
                toks.push(Tok::Op("\n"));
                i += 1;
                // Skip bodies of heredocs started on this line.
                for (delim, strip) in pending_heredocs.drain(..) {
                    while i < n {
                        let start = i;
                        while i < n && b[i] != '\n' {
                            i += 1;
                        }
                        let line: String = b[start..i].iter().collect();
                        i += 1;
                        let l = if strip {
                            line.trim_start_matches('\t')
                        } else {
                            line.as_str()
                        };
                        if l.trim_end() == delim {
                            break;
                        }
                    }
                }
            }
            '&' | '|' | ';' | '(' | ')' => {
                end_word!();
                let two = if i + 1 < n { Some(b[i + 1]) } else { None };
                let op: &'static str = match (c, two) {
                    ('&', Some('&')) => "&&",
                    ('|', Some('|')) => "||",
                    ('|', Some('&')) => "|&",
                    (';', Some(';')) => ";;",
                    ('&', _) => "&",
                    ('|', _) => "|",
                    (';', _) => ";",
                    ('(', _) => "(",
                    _ => ")",
                };
                i += op.len();
                toks.push(Tok::Op(op));
            }
            '<' | '>' => {
                // A word made only of digits right before a redirect is an fd number.
                let fd_number = in_word && word.chars().all(|c| c.is_ascii_digit());
                if fd_number {
                    word.clear();
                }
                if !fd_number {
                    end_word!();
                }
                in_word = false;
                let mut j = i;
                while j < n && matches!(b[j], '<' | '>' | '&' | '|') && j - i < 3 {
                    j += 1;
                }
                let op: String = b[i..j].iter().collect();
                i = j;
                if op == "<<<" {
                    // here-string: skip the word
                } else if op.starts_with("<<") {
                    let strip = i < n && b[i] == '-';
                    if strip {
                        i += 1;
                    }
                    while i < n && (b[i] == ' ' || b[i] == '\t') {
                        i += 1;
                    }
                    let start = i;
                    while i < n
                        && !b[i].is_whitespace()
                        && !matches!(b[i], ';' | '&' | '|' | ')' | '<' | '>')
                    {
                        i += 1;
                    }
                    let d: String = b[start..i]
                        .iter()
                        .filter(|c| **c != '\'' && **c != '"')
                        .collect();
                    if !d.is_empty() {
                        pending_heredocs.push((d, strip));
                    }
                    continue;
                }
                // `>&2`, `2>&1`: the fd target
                while i < n && (b[i] == ' ' || b[i] == '\t') {
                    i += 1;
                }
                // skip the target word (simple scan honoring quotes)
                let mut q: Option<char> = None;
                while i < n {
                    let ch = b[i];
                    match q {
                        Some(qc) if ch == qc => q = None,
                        Some(_) => {}
                        None if ch == '"' || ch == '\'' => q = Some(ch),
                        None if ch.is_whitespace()
                            || matches!(ch, ';' | '&' | '|' | ')' | '(' | '<' | '>') =>
                        {
                            break;
                        }
                        None => {}
                    }
                    i += 1;
                }
            }
            _ => {
                word.push(c);
                in_word = true;
                i += 1;
            }
        }
    }
    end_word!();
    toks
}

/// From `b[open_at] == open`, returns the text inside the balanced pair and the index after it.
fn balanced(b: &[char], open_at: usize, open: char, close: char) -> (String, usize) {
    let mut depth = 0;
    let mut i = open_at;
    let mut q: Option<char> = None;
    while i < b.len() {
        let c = b[i];
        if let Some(qc) = q {
            if c == qc {
                q = None;
            } else if c == '\\' && qc == '"' {
                i += 1;
            }
        } else if c == '\\' {
            i += 1;
        } else if c == '\'' || c == '"' {
            q = Some(c);
        } else if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return (b[open_at + 1..i].iter().collect(), i + 1);
            }
        }
        i += 1;
    }
    (b[(open_at + 1).min(b.len())..].iter().collect(), b.len())
}

fn until(b: &[char], start: usize, end: char) -> (String, usize) {
    let mut i = start;
    while i < b.len() && b[i] != end {
        if b[i] == '\\' {
            i += 1;
        }
        i += 1;
    }
    (
        b[start.min(b.len())..i.min(b.len())].iter().collect(),
        (i + 1).min(b.len().max(i + 1)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &str) -> Vec<String> {
        parse(s).commands.into_iter().map(|c| c.name).collect()
    }

    #[test]
    fn splits_on_operators() {
        assert_eq!(
            names("a x && b y || c; d | e & f"),
            ["a", "b", "c", "d", "e", "f"]
        );
        assert!(parse("a | b").has_pipe);
        assert!(!parse("a || b").has_pipe);
        assert!(!parse("echo 'a | b'").has_pipe);
    }

    #[test]
    fn subshells_substitutions_and_sh_c() {
        assert_eq!(names("(cd /x && make)"), ["cd", "make"]);
        assert_eq!(names("X=$(curl -s u) wget q"), ["wget", "curl"]);
        assert_eq!(
            names("sh -c 'apt-get update && apt-get install -y x'"),
            ["sh", "apt-get", "apt-get"]
        );
        assert_eq!(names("bash -ec \"cd /tmp\""), ["bash", "cd"]);
        assert_eq!(names("if [ -f x ]; then sudo rm x; fi"), ["[", "sudo"]);
        assert_eq!(names("FOO=1 BAR=2 make install"), ["make"]);
    }

    #[test]
    fn flags_and_redirects() {
        let s = parse("apt-get install -qy --no-install-recommends curl=1 > /dev/null 2>&1");
        let c = &s.commands[0];
        assert!(c.has_flag("-y") && c.has_flag("-q") && c.has_flag("--no-install-recommends"));
        assert_eq!(c.positional().collect::<Vec<_>>(), ["install", "curl=1"]);
    }

    #[test]
    fn embedded_heredoc_and_comments() {
        let s = parse("cat <<EOF > /x\nsudo not a command\nEOF\n# comment sudo\necho ok\n");
        assert_eq!(
            s.commands
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["cat", "echo"]
        );
    }
}
