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

use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::Container;

struct State {
    /// Live guards.
    depth: usize,
    pending: Vec<JoinHandle<()>>,
}

static STATE: Mutex<State> = Mutex::new(State {
    depth: 0,
    pending: Vec::new(),
});

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// While it lives, [`remove`] works in the background; dropping it (or [`DeferRemovals::wait`])
/// waits until every container handed to [`remove`] so far is gone.
#[must_use = "removals are deferred only while the guard lives"]
pub struct DeferRemovals {
    _private: (),
}

impl DeferRemovals {
    /// Starts deferring removals (guards nest).
    pub fn begin() -> DeferRemovals {
        state().depth += 1;
        DeferRemovals { _private: () }
    }

    /// Waits for the removals handed off so far and stops deferring.
    pub fn wait(self) {}
}

impl Drop for DeferRemovals {
    fn drop(&mut self) {
        join_pending();
        let mut s = state();
        s.depth = s.depth.saturating_sub(1);
    }
}

/// Waits for every removal handed off so far (the lock is not held while waiting).
fn join_pending() {
    loop {
        let pending = std::mem::take(&mut state().pending);
        if pending.is_empty() {
            return;
        }
        for h in pending {
            let _ = h.join();
        }
    }
}

/// Stops `container` (SIGTERM, then SIGKILL after `grace`; `None`: no stop, the removal kills
/// it) and removes it — in the background while a [`DeferRemovals`] guard lives, else now.
/// Errors are ignored, as when a container is dropped.
pub fn remove(container: Box<dyn Container>, grace: Option<Duration>) {
    let work = move || {
        if let Some(grace) = grace {
            let _ = container.stop(grace);
        }
        let _ = container.cleanup();
    };
    let mut s = state();
    if s.depth == 0 {
        drop(s);
        work();
        return;
    }
    // No thread: the closure (and the container) went with the error, and the container's
    // own Drop removed it.
    if let Ok(h) = std::thread::Builder::new()
        .name("pare-remove".into())
        .spawn(work)
    {
        s.pending.push(h);
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
}
