//! How an error reaches the user: one line, then at most one `hint:` line with a way forward
//! (asked of the domain error that caused it). A closed stdout (`pare xray IMG | head`) is not
//! an error: pare stops quietly.

use std::io::Write;
use std::process::ExitCode;

/// Prints `e` and returns the exit code: 2, or 0 for a closed pipe.
pub fn report(e: &anyhow::Error) -> ExitCode {
    if broken_pipe(e) {
        return ExitCode::SUCCESS;
    }
    eprintln!("pare: error: {}", one_line(&message(e)));
    if let Some(h) = hint(e) {
        eprintln!("hint: {}", one_line(&h));
    }
    ExitCode::from(2)
}

/// Whether the error is a write to a closed pipe.
pub fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The error and its causes joined with `: `, each cause once.
fn message(e: &anyhow::Error) -> String {
    pare_progress::chain(e.as_ref())
}

/// Newlines and runs of spaces (a daemon's multi-line message) folded into one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first hint any error in the chain offers.
fn hint(e: &anyhow::Error) -> Option<String> {
    e.chain().find_map(|c| {
        if let Some(e) = c.downcast_ref::<pare_build::BuildError>() {
            e.hint()
        } else if let Some(e) = c.downcast_ref::<pare_profile::ProfileError>() {
            e.hint()
        } else if let Some(e) = c.downcast_ref::<pare_source::SourceError>() {
            e.hint()
        } else if let Some(e) = c.downcast_ref::<pare_reference::ReferenceError>() {
            pare_source::hint::reference_hint(e)
        } else {
            None
        }
    })
}

/// Writes `text` to stdout; a closed pipe becomes an `io::Error` that [`report`] ends quietly
/// on, instead of `println!`'s panic.
pub fn print(text: &str) -> anyhow::Result<()> {
    print_with(|out| out.write_all(text.as_bytes()))
}

/// Lets `write` stream to stdout through one buffer (not a line-buffered write per line), then
/// flushes it; a closed pipe ends quietly as with [`print`].
pub fn print_with(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    write(&mut out)?;
    out.flush()?;
    Ok(())
}
