//! An error as the user reads it: the error and its causes on one line.
//!
//! pare's error types name what failed (a path, a digest, a reference) and keep the cause as
//! their `source()`, never in their own message. Wherever an error becomes text — the binary's
//! `pare: error:` line, a field of a report, the sensor's stderr — it goes through [`chain`],
//! so the cause is printed once and never lost.

use std::error::Error;

/// `e` and every cause below it, joined with `: `. A cause whose text the line already holds
/// (an error from outside pare that prints its source and also returns it) is skipped.
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::chain;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}")]
    struct Outer {
        path: String,
        #[source]
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("wrapped: {source}")]
    struct Repeats {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn joins_the_causes_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory");
        let e = Outer {
            path: "/nonexistent".into(),
            source: io,
        };
        assert_eq!(chain(&e), "/nonexistent: not a directory");
    }

    #[test]
    fn skips_a_cause_the_message_already_holds() {
        let io = std::io::Error::other("boom");
        assert_eq!(chain(&Repeats { source: io }), "wrapped: boom");
    }
}
