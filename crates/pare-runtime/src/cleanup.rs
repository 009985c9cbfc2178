//! Process-wide registry of live containers, so that Ctrl-C (SIGINT, SIGTERM, SIGHUP) tears
//! everything down before the process exits with 130.
//!
//! Every container registers itself on start and deregisters in `cleanup()`. The handler is
//! installed on the first start; when the embedding program already owns the signal handler
//! (`ctrlc` refuses a second one), it must call [`cleanup_all`] from its own handler.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};

/// Something that can tear itself down from any thread.
pub(crate) trait Teardown: Send + Sync {
    fn teardown(&self);
}

static NEXT: AtomicU64 = AtomicU64::new(1);
static REGISTRY: Mutex<Option<HashMap<u64, Weak<dyn Teardown>>>> = Mutex::new(None);
static HANDLER: Once = Once::new();
/// Set once [`cleanup_all`] has begun: the process is about to exit, and a container started
/// now would never be torn down.
static CLOSING: AtomicBool = AtomicBool::new(false);

/// True once [`cleanup_all`] has begun.
pub(crate) fn closing() -> bool {
    CLOSING.load(Ordering::SeqCst)
}

/// Registers a live container; the returned key deregisters it.
pub(crate) fn register(item: &Arc<dyn Teardown>) -> u64 {
    install_signal_handler();
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
/// from a signal-handler thread (the `ctrlc` crate runs handlers on a normal thread).
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

/// Installs the Ctrl-C/SIGTERM/SIGHUP handler (once): clean up all containers, exit 130.
/// Returns false when another handler was already installed by the program.
pub fn install_signal_handler() -> bool {
    let mut ok = true;
    HANDLER.call_once(|| {
        ok = ctrlc::set_handler(|| {
            cleanup_all();
            std::process::exit(130);
        })
        .is_ok();
    });
    ok
}
