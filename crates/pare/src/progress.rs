//! How progress shows: one line per phase when it ends (`pare build: verify done in 3.6s
//! (…)`); on a terminal, a spinner for every phase that runs longer than a second, naming
//! what it waits for (ports, a job's exit, the probe being replayed) with the elapsed time;
//! nothing with `-q`; the details libraries report with `-v`. Libraries never print: they
//! talk to the [`Reporter`] made here.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pare_progress::{Progress, Reporter};

/// How much progress to show (`-q`, default, `-v`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Quiet,
    Normal,
    Verbose,
}

static LEVEL: OnceLock<Level> = OnceLock::new();

/// Set once from the global flags.
pub fn set_level(level: Level) {
    let _ = LEVEL.set(level);
}

fn level() -> Level {
    LEVEL.get().copied().unwrap_or(Level::Normal)
}

/// A reporter for `command` (`pare build`) on stderr.
pub fn reporter(command: &'static str) -> Reporter {
    Reporter::new(Term::new(command, level(), std::io::stderr().is_terminal()))
}

struct Phase {
    name: String,
    detail: String,
    wait: String,
    start: Instant,
    bar: Option<ProgressBar>,
}

impl Phase {
    fn message(&self) -> String {
        match (self.detail.is_empty(), self.wait.is_empty()) {
            (_, true) => self.detail.clone(),
            (true, false) => format!("waiting for {}", self.wait),
            (false, false) => format!("{}: waiting for {}", self.detail, self.wait),
        }
    }
}

struct Term {
    command: &'static str,
    level: Level,
    /// Live spinners (a terminal, not `-q`).
    multi: Option<MultiProgress>,
    running: Arc<Mutex<Vec<Phase>>>,
}

/// Phases shorter than this get no spinner, only their line at the end.
const SPINNER_AFTER: Duration = Duration::from_secs(1);

impl Term {
    fn new(command: &'static str, level: Level, tty: bool) -> Self {
        let running: Arc<Mutex<Vec<Phase>>> = Arc::default();
        let multi = (tty && level > Level::Quiet)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        if let Some(m) = &multi {
            let (m, r) = (m.clone(), Arc::clone(&running));
            std::thread::spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_millis(100));
                    let Ok(mut r) = r.lock() else { return };
                    for p in r.iter_mut() {
                        if p.bar.is_none() && p.start.elapsed() >= SPINNER_AFTER {
                            p.bar = Some(spinner(&m, p));
                        }
                    }
                }
            });
        }
        Term {
            command,
            level,
            multi,
            running,
        }
    }

    fn line(&self, text: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => eprintln!("{text}"),
        }
    }
}

fn spinner(m: &MultiProgress, p: &Phase) -> ProgressBar {
    let bar = m.add(ProgressBar::new_spinner().with_elapsed(p.start.elapsed()));
    if let Ok(style) = ProgressStyle::with_template("{spinner} {prefix:<8} {elapsed:>4} {wide_msg}")
    {
        bar.set_style(style);
    }
    bar.set_prefix(p.name.clone());
    bar.set_message(p.message());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

impl Progress for Term {
    fn begin(&self, phase: &str, detail: &str) {
        if let Ok(mut r) = self.running.lock() {
            r.push(Phase {
                name: phase.to_string(),
                detail: detail.to_string(),
                wait: String::new(),
                start: Instant::now(),
                bar: None,
            });
        }
    }

    fn end(&self, phase: &str, elapsed: Duration, outcome: &str) {
        let mut detail = String::new();
        if let Ok(mut r) = self.running.lock() {
            if let Some(i) = r.iter().position(|p| p.name == phase) {
                let p = r.remove(i);
                if let Some(b) = p.bar {
                    b.finish_and_clear();
                }
                detail = p.detail;
            }
        }
        // A failed phase is followed by the error itself: no line of its own.
        if self.level > Level::Quiet && outcome != "failed" {
            self.line(&end_line(self.command, phase, elapsed, outcome, &detail));
        }
    }

    fn waiting(&self, what: &str) {
        if let Ok(mut r) = self.running.lock() {
            // The latest phase still running is the one waiting.
            if let Some(p) = r.last_mut() {
                p.wait = what.to_string();
                if let Some(b) = &p.bar {
                    b.set_message(p.message());
                }
            }
        }
        if self.level == Level::Verbose {
            self.line(&format!("{}:   waiting for {what}", self.command));
        }
    }

    fn detail(&self, message: &str) {
        if self.level == Level::Verbose {
            self.line(&format!("{}:   {message}", self.command));
        }
    }

    fn notice(&self, message: &str) {
        if self.level > Level::Quiet {
            self.line(&format!("{}: {message}", self.command));
        }
    }
}

/// `pare build: verify done in 3.6s (docker-daemon:app.slim:1)`.
fn end_line(command: &str, phase: &str, elapsed: Duration, outcome: &str, detail: &str) -> String {
    let mut s = format!(
        "{command}: {phase} {outcome} in {:.1}s",
        elapsed.as_secs_f64()
    );
    if !detail.is_empty() {
        s.push_str(&format!(" ({detail})"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_phase_when_it_ends() {
        assert_eq!(
            end_line(
                "pare build",
                "verify",
                Duration::from_millis(3600),
                "done",
                "app.slim"
            ),
            "pare build: verify done in 3.6s (app.slim)"
        );
        let p = Phase {
            name: "profile".into(),
            detail: "docker".into(),
            wait: "port 8080 to answer".into(),
            start: Instant::now(),
            bar: None,
        };
        assert_eq!(p.message(), "docker: waiting for port 8080 to answer");
    }
}
