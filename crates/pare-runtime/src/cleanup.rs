//! The table of live containers a cancelled run (Ctrl-C: SIGINT, SIGTERM, SIGHUP) tears down
//! before the program exits. It is not process-wide: each [`Cancel`] holds its own, and a
//! runtime registers its containers on the [`Cancel`] it was made with.
//!
//! Every container registers itself on start and deregisters in `cleanup()`. No signal handler
//! lives here: the program owns the signals and calls [`Cancel::cleanup`] (which calls
//! [`Cancel::remove_containers`]) from its own handler.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::Cancel;

/// Something that can tear itself down from any thread.
pub(crate) trait Teardown: Send + Sync {
    fn teardown(&self);
}

/// The live containers of one [`Cancel`] (see there).
#[derive(Default)]
pub(crate) struct Registry {
    next: AtomicU64,
    items: Mutex<HashMap<u64, Weak<dyn Teardown>>>,
}

impl Registry {
    fn items(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Weak<dyn Teardown>>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A container's entry in a [`Cancel`]'s table: dropping it deregisters the container.
pub(crate) struct Registration {
    cancel: Cancel,
    key: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.cancel.registry().items().remove(&self.key);
    }
}

impl Cancel {
    /// Registers a live container until the returned entry drops.
    pub(crate) fn register(&self, item: &Arc<dyn Teardown>) -> Registration {
        let reg = self.registry();
        let key = reg.next.fetch_add(1, Ordering::Relaxed);
        reg.items().insert(key, Arc::downgrade(item));
        Registration {
            cancel: self.clone(),
            key,
        }
    }

    /// Number of containers currently registered (for tests and diagnostics).
    pub fn live_count(&self) -> usize {
        self.registry()
            .items()
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }

    /// Cancels the run and tears down every live container registered on this token
    /// (processes, docker containers, their temp dirs); a container started after this
    /// refuses to start (the runtimes check [`Cancel::is_cancelled`] once registered). Safe
    /// to call from the program's signal-handling thread (a normal thread, not a signal
    /// context), and again.
    pub fn remove_containers(&self) {
        self.cancel();
        let items: Vec<Arc<dyn Teardown>> = self
            .registry()
            .items()
            .drain()
            .filter_map(|(_, w)| w.upgrade())
            .collect();
        for item in items {
            item.teardown();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Counted(AtomicUsize);

    impl Teardown for Counted {
        fn teardown(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn each_token_tears_down_only_its_own_containers() {
        let (mine, other) = (Cancel::new(), Cancel::new());
        let a = Arc::new(Counted(AtomicUsize::new(0)));
        let b = Arc::new(Counted(AtomicUsize::new(0)));
        let (a_td, b_td): (Arc<dyn Teardown>, Arc<dyn Teardown>) = (a.clone(), b.clone());
        let _a_reg = mine.clone().register(&a_td);
        let b_reg = other.register(&b_td);
        assert_eq!((mine.live_count(), other.live_count()), (1, 1));
        mine.cleanup();
        assert!(mine.is_cancelled() && !other.is_cancelled());
        assert_eq!(a.0.load(Ordering::SeqCst), 1, "torn down by its token");
        assert_eq!(
            b.0.load(Ordering::SeqCst),
            0,
            "another token's is left alone"
        );
        assert_eq!(mine.live_count(), 0);
        drop(b_reg);
        assert_eq!(other.live_count(), 0, "deregistered when its entry drops");
    }
}
