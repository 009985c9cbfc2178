//! The cancellation token and cleanup registry a program passes down to the libraries.
//!
//! Libraries never install signal handlers nor exit the process. The program (the `pare`
//! binary) owns the signals: it makes one [`Cancel`], hands clones of it down (in
//! `ProfileOptions`), and on SIGINT/SIGTERM/SIGHUP calls [`Cancel::interrupt`]; when that
//! cancels the run, it calls [`Cancel::cleanup`] (and [`Cancel::final_cleanup`] just before
//! it exits with 130). Libraries register what must not outlive a cancelled run:
//!
//! * [`Cancel::on_cancel`]: a hook run first (a work dir and its mount, a Compose project's
//!   networks and volumes);
//! * every live container: a runtime is made with the token (`DockerRuntime::connect`,
//!   `EmbeddedRuntime::new`, [`detect`](crate::detect)) and registers each container it starts
//!   on it (see [`Cancel::remove_containers`]);
//! * [`Cancel::temp_dir`]: temp dirs, removed last, once no container uses them.
//!
//! A run can also be told to go on: `--continue-after signal` waits for the user's SIGUSR1
//! (or a first Ctrl-C) with [`Cancel::proceed_wait`]; the program calls [`Cancel::proceed`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A hook run when the program is cancelled (on the program's signal-handling thread).
pub type CancelHook = Arc<dyn Fn() + Send + Sync>;

/// Cancellation token and cleanup registry. Cloning shares it; `Default` is a fresh one that
/// nothing cancels (tests, library use without a program behind it).
#[derive(Clone, Default)]
pub struct Cancel {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    state: Mutex<Waits>,
    changed: Condvar,
    hooks: Mutex<Vec<CancelHook>>,
    /// The live containers of the runtimes made with this token.
    containers: crate::cleanup::Registry,
    temp_dirs: Mutex<Vec<PathBuf>>,
}

/// The `--continue-after signal` wait.
#[derive(Default)]
struct Waits {
    /// Someone waits in a [`Cancel::proceed_wait`]: a Ctrl-C ends that wait instead.
    waiting: bool,
    /// SIGUSR1 (or that Ctrl-C) arrived and was not consumed by a wait yet.
    proceed: bool,
}

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancel")
            .field("cancelled", &self.is_cancelled())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Cancel {
    /// A fresh token: not cancelled, no hooks, no temp dirs (the same as `Default`).
    pub fn new() -> Self {
        Self::default()
    }

    /// True once the run was cancelled: its resources are being (or were) torn down under it,
    /// so a failure now is a consequence, not the news.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Cancels the run (idempotent) and wakes every waiter. Does not clean up: see
    /// [`Cancel::cleanup`].
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        let _state = lock(&self.inner.state);
        self.inner.changed.notify_all();
    }

    /// What a Ctrl-C (SIGINT, SIGTERM, SIGHUP) means now: while a [`Cancel::proceed_wait`]
    /// waits and was not told to go on yet, it ends that wait and returns false; otherwise it
    /// cancels the run and returns true (the program then cleans up and exits).
    pub fn interrupt(&self) -> bool {
        {
            let mut s = lock(&self.inner.state);
            if s.waiting && !s.proceed {
                s.proceed = true;
                self.inner.changed.notify_all();
                return false;
            }
        }
        self.cancel();
        true
    }

    /// The user's go-ahead (SIGUSR1): ends a [`Cancel::proceed_wait`] or a
    /// [`Cancel::sleep`], now or, when none runs, the next one.
    pub fn proceed(&self) {
        let mut s = lock(&self.inner.state);
        s.proceed = true;
        self.inner.changed.notify_all();
    }

    /// Starts a wait for the user's go-ahead: from now on, until the returned wait is dropped,
    /// a first Ctrl-C ([`Cancel::interrupt`]) ends it instead of cancelling the run. Start it
    /// before telling the user to press Ctrl-C, so that no early one is taken for a cancel.
    pub fn proceed_wait(&self) -> ProceedWait<'_> {
        lock(&self.inner.state).waiting = true;
        ProceedWait { cancel: self }
    }

    /// Sleeps `d`, or less when told to go on ([`Cancel::proceed`]) or cancelled.
    pub fn sleep(&self, d: Duration) {
        let end = Instant::now() + d;
        let mut s = lock(&self.inner.state);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() || s.proceed || self.is_cancelled() {
                return;
            }
            s = self
                .inner
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Runs `hook` when the run is cancelled, before the containers and temp dirs go: for
    /// what a caller holds around a run (a work dir and its mount, a project's networks).
    /// Kept for the life of the token; a hook must be harmless once its things are gone.
    pub fn on_cancel(&self, hook: impl Fn() + Send + Sync + 'static) {
        lock(&self.inner.hooks).push(Arc::new(hook));
    }

    /// Makes a temp dir (`prefix…` in the system temp dir) that is removed on drop and by
    /// [`Cancel::cleanup`]. Made and noted in one step, so a cleanup never misses one.
    pub fn temp_dir(&self, prefix: &str) -> std::io::Result<TempDir> {
        let base = std::env::temp_dir();
        let mut dirs = lock(&self.inner.temp_dirs);
        let dir = tempfile::Builder::new().prefix(prefix).tempdir_in(&base)?;
        dirs.push(dir.path().to_path_buf());
        Ok(TempDir {
            dir,
            cancel: self.clone(),
        })
    }

    pub(crate) fn registry(&self) -> &crate::cleanup::Registry {
        &self.inner.containers
    }

    fn run_hooks(&self) {
        let hooks: Vec<CancelHook> = lock(&self.inner.hooks).clone();
        for hook in hooks {
            hook();
        }
    }

    /// Returns the lock: while held, no temp dir can be made.
    fn remove_temp_dirs(&self) -> MutexGuard<'_, Vec<PathBuf>> {
        let dirs = lock(&self.inner.temp_dirs);
        for p in dirs.iter() {
            let _ = std::fs::remove_dir_all(p);
        }
        dirs
    }

    /// Cancels the run and tears down what it registered: the [`Cancel::on_cancel`] hooks (in
    /// the order they were added), every live container of the runtimes made with it, then the temp
    /// dirs. Safe to call from any thread while the run goes on.
    pub fn cleanup(&self) {
        self.cancel();
        self.run_hooks();
        self.remove_containers();
        drop(self.remove_temp_dirs());
    }

    /// A second pass just before the program exits (the run kept going meanwhile and may
    /// have made a directory again, or a daemon request in flight may have: dockerd makes a
    /// missing bind source): the hooks, then the temp dirs. The returned guard keeps any new
    /// temp dir from being made: hold it until the process exits.
    pub fn final_cleanup(&self) -> impl Sized + '_ {
        self.run_hooks();
        self.remove_temp_dirs()
    }
}

/// A wait for the user's go-ahead, see [`Cancel::proceed_wait`]. Dropping it ends the wait and
/// consumes the go-ahead.
pub struct ProceedWait<'a> {
    cancel: &'a Cancel,
}

impl ProceedWait<'_> {
    /// Waits until [`Cancel::proceed`] (or a first [`Cancel::interrupt`]), a cancel, or until
    /// `done` returns true; `done` is asked about every `poll` (it may block that long itself,
    /// like a container's `wait`). Returns what `done` failed with.
    pub fn until<E>(
        &self,
        poll: Duration,
        mut done: impl FnMut(Duration) -> Result<bool, E>,
    ) -> Result<(), E> {
        loop {
            if lock(&self.cancel.inner.state).proceed || self.cancel.is_cancelled() {
                return Ok(());
            }
            if done(poll)? {
                return Ok(());
            }
        }
    }
}

impl Drop for ProceedWait<'_> {
    fn drop(&mut self) {
        let mut s = lock(&self.cancel.inner.state);
        s.waiting = false;
        s.proceed = false;
    }
}

/// A temp dir made by [`Cancel::temp_dir`]: removed on drop, or by the cleanup of a
/// cancelled run.
pub struct TempDir {
    dir: tempfile::TempDir,
    cancel: Cancel,
}

impl TempDir {
    /// The directory; it exists until this value drops or the run is cancelled.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl std::fmt::Debug for TempDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TempDir").field(&self.path()).finish()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        lock(&self.cancel.inner.temp_dirs).retain(|p| p != self.dir.path());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn cleanup_runs_hooks_and_removes_temp_dirs_and_clones_share_it() {
        let cancel = Cancel::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        cancel.clone().on_cancel(move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
        let kept = cancel.temp_dir("pare-cancel-test-").unwrap();
        let gone = cancel.temp_dir("pare-cancel-test-").unwrap();
        let gone_path = gone.path().to_path_buf();
        drop(gone);
        assert!(!gone_path.exists(), "removed on drop");
        assert!(!cancel.is_cancelled());
        let other = cancel.clone();
        other.cleanup();
        assert!(cancel.is_cancelled());
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(!kept.path().exists(), "removed by the cleanup");
        drop(cancel.final_cleanup());
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_first_interrupt_ends_a_proceed_wait_and_a_second_cancels() {
        let cancel = Cancel::new();
        assert!(cancel.interrupt(), "no wait: it cancels");
        let cancel = Cancel::new();
        let c = cancel.clone();
        let t = std::thread::spawn(move || {
            // Once the wait is on, interrupt it.
            while !lock(&c.inner.state).waiting {
                std::thread::sleep(Duration::from_millis(5));
            }
            assert!(!c.interrupt(), "ends the wait");
        });
        let mut polls = 0;
        cancel
            .proceed_wait()
            .until(Duration::from_millis(10), |d| {
                polls += 1;
                std::thread::sleep(d);
                Ok::<_, ()>(false)
            })
            .unwrap();
        t.join().unwrap();
        assert!(polls > 0 && !cancel.is_cancelled());
        // The wait consumed the go-ahead: the next interrupt cancels.
        assert!(cancel.interrupt());
        assert!(cancel.is_cancelled());
    }

    #[test]
    fn proceed_cuts_a_sleep_short_and_done_ends_a_wait() {
        let cancel = Cancel::new();
        let c = cancel.clone();
        let t0 = Instant::now();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            c.proceed();
        });
        cancel.sleep(Duration::from_secs(30));
        t.join().unwrap();
        assert!(t0.elapsed() < Duration::from_secs(10));
        // Still set (a sleep does not consume it): a wait ends at once and consumes it.
        cancel
            .proceed_wait()
            .until(Duration::from_millis(1), |_| Ok::<_, ()>(false))
            .unwrap();
        assert_eq!(
            cancel
                .proceed_wait()
                .until(Duration::from_millis(1), |_| Err::<bool, _>("exited")),
            Err("exited")
        );
        cancel
            .proceed_wait()
            .until(Duration::from_millis(1), |_| Ok::<_, ()>(true))
            .unwrap();
    }
}
