//! Process-wide table of live containers, so that a cancelled run (Ctrl-C: SIGINT, SIGTERM,
//! SIGHUP) can tear every one down before the program exits.
//!
//! Every container registers itself on start and deregisters in `cleanup()`. No signal handler
//! lives here: the program owns the signals and calls [`cleanup_all`] (through
//! [`Cancel::cleanup`](crate::Cancel::cleanup)) from its own handler.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Something that can tear itself down from any thread.
pub(crate) trait Teardown: Send + Sync {
    fn teardown(&self);
}

static NEXT: AtomicU64 = AtomicU64::new(1);
static REGISTRY: Mutex<Option<HashMap<u64, Weak<dyn Teardown>>>> = Mutex::new(None);
/// Set once [`cleanup_all`] has begun: the process is about to exit, and a container started
/// now would never be torn down.
static CLOSING: AtomicBool = AtomicBool::new(false);

/// True once [`cleanup_all`] has begun.
pub(crate) fn closing() -> bool {
    CLOSING.load(Ordering::SeqCst)
}

/// Registers a live container; the returned key deregisters it.
pub(crate) fn register(item: &Arc<dyn Teardown>) -> u64 {
    let key = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    reg.get_or_insert_with(HashMap::new)
        .insert(key, Arc::downgrade(item));
    key
}

pub(crate) fn deregister(key: u64) {
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(map) = reg.as_mut() {
        map.remove(&key);
    }
}

/// Number of containers currently registered (for tests and diagnostics).
pub fn live_count() -> usize {
    let reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    reg.as_ref()
        .map_or(0, |m| m.values().filter(|w| w.strong_count() > 0).count())
}

/// Tears down every live container (processes, docker containers, temp dirs). Safe to call
/// from the program's signal-handling thread (a normal thread, not a signal context).
pub fn cleanup_all() {
    CLOSING.store(true, Ordering::SeqCst);
    let items: Vec<Arc<dyn Teardown>> = {
        let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        reg.as_mut().map_or_else(Vec::new, |m| {
            m.drain().filter_map(|(_, w)| w.upgrade()).collect()
        })
    };
    for item in items {
        item.teardown();
    }
}
