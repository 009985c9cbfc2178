//! Who goes first on the daemon. A run starts several containers at once (each target's
//! traced container, the dependencies of every trace instance, those a verification starts
//! ahead), and the daemon starts them side by side: each waits for the others (a second or
//! more on a loaded machine). The critical path is the trace of a target that other targets
//! depend on (`db`): its slim image, then its verification, come before its users'. So the
//! work with slack (the users' traces, whose verification waits for `db`'s anyway, and the
//! verifications' early starts) waits at the [`Gate`] until each such trace has started its
//! traced container (or ended).

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use pare_runtime::{Container, RunSpec, Runtime, RuntimeError};

/// Open once every one of the first traces has started its container.
pub(super) struct Gate {
    /// First traces that have not started their container yet.
    left: Mutex<usize>,
    changed: Condvar,
}

impl Gate {
    /// A gate waiting for `first` traces.
    pub(super) fn new(first: usize) -> Arc<Self> {
        Arc::new(Gate {
            left: Mutex::new(first),
            changed: Condvar::new(),
        })
    }

    fn open_one(&self) {
        if let Ok(mut left) = self.left.lock() {
            *left = left.saturating_sub(1);
        }
        self.changed.notify_all();
    }

    /// Waits until the gate is open, or `stop()` (Ctrl-C).
    pub(super) fn wait(&self, stop: &dyn Fn() -> bool) {
        let Ok(mut left) = self.left.lock() else {
            return;
        };
        while *left > 0 && !stop() {
            left = match self.changed.wait_timeout(left, Duration::from_millis(200)) {
                Ok((l, _)) => l,
                Err(_) => return,
            };
        }
    }
}

/// One first trace's part of the gate: opened when its container started, or when dropped
/// (the trace failed or ended before).
pub(super) struct Opener {
    gate: Arc<Gate>,
    done: AtomicBool,
}

impl Opener {
    pub(super) fn new(gate: &Arc<Gate>) -> Arc<Self> {
        Arc::new(Opener {
            gate: gate.clone(),
            done: AtomicBool::new(false),
        })
    }

    /// Opens its part (once).
    pub(super) fn open(&self) {
        if !self.done.swap(true, Ordering::SeqCst) {
            self.gate.open_one();
        }
    }
}

impl Drop for Opener {
    fn drop(&mut self) {
        self.open();
    }
}

/// A runtime that calls `then` each time a container it starts is started (or failed to
/// start): opening an [`Opener`], giving a verification's [`Started`](super::deferred::Started).
pub(super) struct Then<R, F> {
    pub(super) inner: R,
    pub(super) then: F,
}

impl<R, F> Runtime for Then<R, F>
where
    R: Deref + Send + Sync,
    R::Target: Runtime,
    F: Fn() + Send + Sync,
{
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn start(&self, spec: &RunSpec) -> Result<Box<dyn Container>, RuntimeError> {
        let c = self.inner.start(spec);
        (self.then)();
        c
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{Gate, Opener};

    #[test]
    fn the_gate_opens_once_every_first_trace_started_or_ended() {
        let gate = Gate::new(2);
        let (a, b) = (Opener::new(&gate), Opener::new(&gate));
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                gate.wait(&|| false);
                Instant::now()
            });
            std::thread::sleep(Duration::from_millis(50));
            a.open();
            a.open();
            std::thread::sleep(Duration::from_millis(50));
            assert!(!waiter.is_finished(), "opened by one of two (twice)");
            let dropped = Instant::now();
            drop(b);
            assert!(waiter.join().unwrap() >= dropped);
        });
        // Ctrl-C does not wait for it.
        let shut = Gate::new(1);
        shut.wait(&|| true);
    }
}
