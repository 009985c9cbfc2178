//! The `pare` command for every integration-test binary of the `pare` crate, included with
//! `#[path = "common/cli.rs"] mod cli;` (`../common/cli.rs` from a folder binary). Each binary
//! uses part of it.
#![allow(dead_code)]

use std::process::{Command, Output};

/// The variables removed from pare's environment, so that a test sees the same output wherever
/// it runs: `CI` (turns on xray's CI mode), `SOURCE_DATE_EPOCH` (image timestamps), `COLUMNS`
/// (the output width). A test that wants one sets it on the command.
const VARYING: [&str; 3] = ["CI", "SOURCE_DATE_EPOCH", "COLUMNS"];

/// The built `pare` binary, with [`VARYING`] removed from its environment.
pub fn pare() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pare"));
    for v in VARYING {
        c.env_remove(v);
    }
    c
}

/// [`pare`] as an `assert_cmd` command, for `.assert()`.
pub fn pare_cmd() -> assert_cmd::Command {
    assert_cmd::Command::from_std(pare())
}

/// Asserts the finished command `o` exited with `code`, its stderr the message when not;
/// returns its stdout as text.
pub fn exited(o: &Output, code: i32) -> String {
    assert_eq!(
        o.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `pare ARGS`, asserting it fails (exit 2) without a panic, its first line
/// `pare: error: …` containing `want`; returns that line.
pub fn fails_with(args: &[&str], want: &str) -> String {
    let o = run(args, 2);
    let err = String::from_utf8_lossy(&o.stderr);
    let first = err.lines().next().unwrap_or("");
    assert!(
        first.starts_with("pare: error:") && first.contains(want),
        "{args:?}: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    first.to_string()
}

/// Runs `pare ARGS`, asserting it exits with `code`; stdout and stderr are shown when not.
pub fn run(args: &[&str], code: i32) -> Output {
    let out = pare().args(args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "pare {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
