//! The `pare` command for the squash and pack test binaries: no `CI` (terminal-independent
//! output) and no `SOURCE_DATE_EPOCH` (the tests choose timestamps), and `run`, which checks
//! the exit code and shows stdout and stderr when it differs.

use assert_cmd::Command;

/// The built `pare` binary with `CI` and `SOURCE_DATE_EPOCH` removed from its environment.
fn pare() -> Command {
    let mut c = Command::cargo_bin("pare").unwrap();
    c.env_remove("CI").env_remove("SOURCE_DATE_EPOCH");
    c
}

/// Runs `pare ARGS`, asserting it exits with `code`.
pub fn run(args: &[&str], code: i32) -> std::process::Output {
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
