//! Progress reporting without printing. Libraries say what they do — a phase begins, what it
//! waits for now (ports, a job's exit, the probe being replayed), a detail, a phase ends —
//! to a [`Reporter`] the binary hands down; the binary decides how that shows (one line per
//! finished phase, a live spinner on a TTY, nothing with `-q`, details with `-v`).

#![deny(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

mod chain;
pub use chain::chain;

/// Receives progress. Implemented by the binary; every method may be called from any thread.
pub trait Progress: Send + Sync {
    /// A phase starts (`open`, `profile`, `verify`, …), with a short detail (the image, the
    /// runtime).
    fn begin(&self, phase: &str, detail: &str);
    /// The phase ended after `elapsed`; `outcome` is `done` or `failed`.
    fn end(&self, phase: &str, elapsed: Duration, outcome: &str);
    /// What the running phase waits for now: `port 8080 to answer`, `the job to exit`,
    /// `GET http:8080/second`.
    fn waiting(&self, _what: &str) {}
    /// A detail worth a line only when asked for (`-v`).
    fn detail(&self, _message: &str) {}
    /// Something the user must read now (an instruction to act); shown unless `-q`.
    fn notice(&self, _message: &str) {}
}

/// Progress that shows nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn begin(&self, _: &str, _: &str) {}
    fn end(&self, _: &str, _: Duration, _: &str) {}
}

/// A shared handle to a [`Progress`], cheap to clone into options structs. The default shows
/// nothing.
#[derive(Clone)]
pub struct Reporter(Arc<dyn Progress>);

impl Reporter {
    /// A reporter that hands every event to `p` (the binary's terminal display, or a test's
    /// recorder); clones share the same `p`.
    pub fn new(p: impl Progress + 'static) -> Self {
        Reporter(Arc::new(p))
    }

    /// Shows nothing.
    pub fn quiet() -> Self {
        Reporter::new(Quiet)
    }
}

impl Default for Reporter {
    fn default() -> Self {
        Reporter::quiet()
    }
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reporter")
    }
}

impl Progress for Reporter {
    fn begin(&self, phase: &str, detail: &str) {
        self.0.begin(phase, detail);
    }
    fn end(&self, phase: &str, elapsed: Duration, outcome: &str) {
        self.0.end(phase, elapsed, outcome);
    }
    fn waiting(&self, what: &str) {
        self.0.waiting(what);
    }
    fn detail(&self, message: &str) {
        self.0.detail(message);
    }
    fn notice(&self, message: &str) {
        self.0.notice(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Record(Mutex<Vec<String>>);

    impl Progress for Arc<Record> {
        fn begin(&self, phase: &str, detail: &str) {
            self.0
                .lock()
                .unwrap()
                .push(format!("begin {phase} {detail}"));
        }
        fn end(&self, phase: &str, _: Duration, outcome: &str) {
            self.0
                .lock()
                .unwrap()
                .push(format!("end {phase} {outcome}"));
        }
        fn waiting(&self, what: &str) {
            self.0.lock().unwrap().push(format!("wait {what}"));
        }
    }

    #[test]
    fn a_reporter_forwards_to_what_the_binary_gave() {
        let rec = Arc::new(Record::default());
        let r = Reporter::new(Arc::clone(&rec));
        let copy = r.clone();
        copy.begin("verify", "app.slim");
        copy.waiting("port 8080 to answer");
        copy.detail("not recorded: the default ignores details");
        r.end("verify", Duration::from_secs(1), "done");
        assert_eq!(
            *rec.0.lock().unwrap(),
            [
                "begin verify app.slim",
                "wait port 8080 to answer",
                "end verify done"
            ]
        );
        // The default shows nothing and can be cloned into Debug structs.
        assert_eq!(format!("{:?}", Reporter::default()), "Reporter");
    }
}
