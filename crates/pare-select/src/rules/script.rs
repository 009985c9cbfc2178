//! Shell scripts: the `#!` interpreter of any kept script, and the commands an entrypoint
//! script may run.

use std::io::Read;

use pare_image::ImagePath;

use crate::Reason;
use crate::keep::KeepSet;
use crate::root;

/// Shell keywords and builtins that are not programs to look up.
const SHELL_WORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for", "in", "case",
    "esac", "function", "exec", "command", "time", "!", "{", "}", "[[", "]]", "[", "test", "echo",
    "printf", "set", "unset", "export", "local", "return", "exit", "shift", "cd", "eval", "trap",
    "wait", "read", "true", "false", ":", ".", "source", "break", "continue", "readonly", "umask",
    "ulimit", "alias", "type", "hash", "getopts", "let", "declare",
];

/// For a shell script named by the image config (an entrypoint script), keeps the programs
/// it may run in branches the profile did not exercise: the first word of each simple
/// command that is found in `PATH`. Conservative: plain words only, no expansion.
pub(super) fn script_commands(set: &mut KeepSet, field: &str, script: &str) {
    let Some(meta) = set.root().lstat(script) else {
        return;
    };
    if !meta.is_file() || meta.len() > 256 * 1024 {
        return;
    }
    let Ok(text) = std::fs::read(set.root().host(script)) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(&text) else {
        return;
    };
    let first = text.lines().next().unwrap_or("");
    let shells = ["sh", "bash", "dash", "ash", "ksh", "zsh", "busybox"];
    let is_shell = first.strip_prefix("#!").is_some_and(|l| {
        let mut w = l.split_whitespace();
        let interp = w.next().map(root::file_name).unwrap_or("");
        shells.contains(&interp)
            || (interp == "env" && w.next().is_some_and(|p| shells.contains(&p)))
    });
    if !is_shell {
        return;
    }
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.split(" #").next().unwrap_or("");
        if line.trim_start().starts_with('#') {
            continue;
        }
        for segment in line.split([';', '|', '&', '(', ')', '`']) {
            let mut words = segment.split_whitespace();
            let cmd = loop {
                match words.next() {
                    Some(w) if w.contains('=') && !w.starts_with('=') => continue,
                    Some(w) if SHELL_WORDS.contains(&w) => continue,
                    other => break other,
                }
            };
            let Some(cmd) = cmd else { continue };
            if cmd.is_empty()
                || !cmd
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._+-/".contains(c))
                || cmd.starts_with('-')
                || found.iter().any(|f: &String| f == cmd)
            {
                continue;
            }
            found.push(cmd.to_string());
        }
    }
    for cmd in found {
        if (cmd.starts_with('/') || !cmd.contains('/'))
            && let Some(p) = set.which(&cmd)
            && set.root().resolve(&p, true).is_ok_and(|r| r.exists)
        {
            set.keep(
                &p,
                Reason::ImageConfig {
                    field: field.into(),
                    detail: format!("command {cmd} in {script}"),
                },
            );
        }
    }
}

pub(super) fn shebang(set: &mut KeepSet, path: &str) {
    let Ok(mut f) = crate::elf::open_nofollow(set.root(), path) else {
        return;
    };
    let mut buf = [0u8; 256];
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let head = &buf[..n];
    if !head.starts_with(b"#!") {
        return;
    }
    let line = head[2..].split(|&b| b == b'\n').next().unwrap_or(&[]);
    let Ok(line) = std::str::from_utf8(line) else {
        return;
    };
    let mut words = line.split_whitespace();
    let Some(interp) = words.next() else { return };
    let reason = Reason::Shebang {
        script: ImagePath::clamped(path),
        interpreter: line.trim().to_string(),
    };
    set.keep(interp, reason.clone());
    if root::file_name(interp) == "env" {
        // `#!/usr/bin/env [-S] [VAR=x] prog args`
        if let Some(prog) = words.find(|w| !w.starts_with('-') && !w.contains('='))
            && let Some(p) = set.which(prog)
        {
            set.keep(&p, reason);
        }
    }
}
