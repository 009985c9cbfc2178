//! Container removal off the critical path.
//!
//! Stopping a finished container and removing it with its anonymous volumes takes the daemon
//! 1–3 s (a database's data volume, a JVM's shutdown). Nothing a build does next needs that
//! done, so while a [`DeferRemovals`] guard lives, [`remove`] hands the container to a
//! background thread; dropping the guard waits for every removal handed off meanwhile. Without
//! a guard, [`remove`] removes at once, as dropping the container would.
//!
//! A container being removed stays in the Ctrl-C registry until its removal has returned, so
//! an interrupt still removes it (or waits for the removal under way).
//!
//! The guard is the calling thread's, not the process's: builds running side by side (one
//! thread per Compose target) each defer and wait for their own removals only, and a removal
//! on a thread without a guard happens at once. A build removes its containers on its own
//! thread (the traced run, the verification run).

use std::cell::RefCell;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::Container;

#[derive(Default)]
struct State {
    /// Live guards of this thread.
    depth: usize,
    pending: Vec<JoinHandle<()>>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// While it lives, [`remove`] works in the background; dropping it (or [`DeferRemovals::wait`])
/// waits until every container handed to [`remove`] so far is gone.
#[must_use = "removals are deferred only while the guard lives"]
pub struct DeferRemovals {
    _private: (),
}

impl DeferRemovals {
    /// Starts deferring this thread's removals (guards nest).
    pub fn begin() -> DeferRemovals {
        STATE.with_borrow_mut(|s| s.depth += 1);
        DeferRemovals { _private: () }
    }

    /// Waits for the removals handed off so far and stops deferring.
    pub fn wait(self) {}
}

impl Drop for DeferRemovals {
    fn drop(&mut self) {
        join_pending();
        STATE.with_borrow_mut(|s| s.depth = s.depth.saturating_sub(1));
    }
}

/// Waits for every removal this thread handed off so far (the state is not borrowed while
/// waiting).
fn join_pending() {
    for h in STATE.with_borrow_mut(|s| std::mem::take(&mut s.pending)) {
        let _ = h.join();
    }
}

/// Stops `container` (SIGTERM, then SIGKILL after `grace`; `None`: no stop, the removal kills
/// it) and removes it — in the background while this thread holds a [`DeferRemovals`] guard,
/// else now. Errors are ignored, as when a container is dropped.
pub fn remove(container: Box<dyn Container>, grace: Option<Duration>) {
    let work = move || {
        if let Some(grace) = grace {
            let _ = container.stop(grace);
        }
        let _ = container.cleanup();
    };
    if STATE.with_borrow(|s| s.depth) == 0 {
        work();
        return;
    }
    // No thread: the closure (and the container) went with the error, and the container's
    // own Drop removed it.
    if let Ok(h) = std::thread::Builder::new()
        .name("pare-remove".into())
        .spawn(work)
    {
        STATE.with_borrow_mut(|s| s.pending.push(h));
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use pare_trace::ExitInfo;

    use super::*;
    use crate::{ExecOutput, RuntimeError};

    /// A container whose removal takes `slow` and counts itself.
    struct Slow {
        slow: Duration,
        removed: Arc<AtomicUsize>,
    }

    impl Container for Slow {
        fn endpoint(&self, _: u16) -> Option<SocketAddr> {
            None
        }
        fn listening(&self, _: u16) -> Option<bool> {
            None
        }
        fn exec(&self, _: &[String], _: Duration) -> Result<ExecOutput, RuntimeError> {
            Ok(ExecOutput::default())
        }
        fn wait(&self, _: Duration) -> Result<Option<ExitInfo>, RuntimeError> {
            Ok(None)
        }
        fn stop(&self, _: Duration) -> Result<ExitInfo, RuntimeError> {
            Ok(ExitInfo {
                code: 0,
                signal: None,
            })
        }
        fn logs(&self) -> Result<(Vec<u8>, Vec<u8>), RuntimeError> {
            Ok((Vec::new(), Vec::new()))
        }
        fn cleanup(&self) -> Result<(), RuntimeError> {
            std::thread::sleep(self.slow);
            self.removed.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[test]
    fn removals_wait_for_the_guard_and_happen_at_once_without_one() {
        let removed = Arc::new(AtomicUsize::new(0));
        let slow = |ms| {
            Box::new(Slow {
                slow: Duration::from_millis(ms),
                removed: removed.clone(),
            })
        };
        // Without a guard: removed before `remove` returns.
        remove(slow(1), Some(Duration::ZERO));
        assert_eq!(removed.load(Ordering::SeqCst), 1);

        let guard = DeferRemovals::begin();
        let t = Instant::now();
        remove(slow(300), Some(Duration::ZERO));
        remove(slow(300), None);
        assert!(
            t.elapsed() < Duration::from_millis(250),
            "handed off, not waited for"
        );
        guard.wait();
        assert_eq!(
            removed.load(Ordering::SeqCst),
            3,
            "every removal is done once the guard is gone"
        );
    }

    #[test]
    fn a_guard_defers_only_its_own_threads_removals() {
        let removed = Arc::new(AtomicUsize::new(0));
        let _guard = DeferRemovals::begin();
        let other = removed.clone();
        std::thread::spawn(move || {
            remove(
                Box::new(Slow {
                    slow: Duration::from_millis(50),
                    removed: other.clone(),
                }),
                None,
            );
            assert_eq!(
                other.load(Ordering::SeqCst),
                1,
                "another thread's removal happens at once"
            );
        })
        .join()
        .unwrap();
        assert_eq!(removed.load(Ordering::SeqCst), 1);
    }
}
