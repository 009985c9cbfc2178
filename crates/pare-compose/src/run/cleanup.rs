//! What Ctrl-C removes: this run's containers (by label), networks and volumes, once the
//! instances still being torn down are gone.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pare_runtime::DockerRuntime;

/// Networks and volumes to remove on Ctrl-C (containers are pare-runtime's).
pub(super) static LEFTOVERS: Mutex<Vec<(Arc<DockerRuntime>, bool, String)>> =
    Mutex::new(Vec::new());
/// This run's ID (the `RUN_ID_LABEL` of its containers), for Ctrl-C.
pub(super) static RUN: Mutex<Option<(Arc<DockerRuntime>, String)>> = Mutex::new(None);
/// Instances not yet torn down.
pub(super) static LIVE_INSTANCES: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);
/// Label naming the compose run a container belongs to.
pub(super) const RUN_ID_LABEL: &str = "io.pare.compose.run";

pub(super) fn register_leftover(docker: &Arc<DockerRuntime>, network: bool, name: &str) {
    if let Ok(mut l) = LEFTOVERS.lock() {
        l.push((docker.clone(), network, name.to_string()));
    }
}

pub(super) fn forget_leftover(name: &str) {
    if let Ok(mut l) = LEFTOVERS.lock() {
        l.retain(|(_, _, n)| n != name);
    }
}

pub(super) static INTERRUPTED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Whether Ctrl-C is ending the program (the handler removes the project and exits 130): a
/// run failing meanwhile, its containers gone under it, should wait for that.
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) || pare_build::interrupted()
}

pub(super) fn remove_leftovers() {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
    pare_runtime::cleanup_all();
    // Networks and volumes go once their containers are gone; a container the main thread
    // was creating meanwhile (not yet in pare-runtime's registry) is found by its label.
    let run = RUN.lock().ok().and_then(|r| r.clone());
    // The main thread fails as its containers vanish and tears its instances down; let it
    // finish (up to 10 s) so that nothing it creates meanwhile outlives the exit.
    let t = Instant::now();
    while LIVE_INSTANCES.load(std::sync::atomic::Ordering::SeqCst) > 0
        && t.elapsed() < Duration::from_secs(10)
    {
        if let Some((docker, id)) = &run {
            let _ = docker.remove_labelled(RUN_ID_LABEL, id);
        }
        pare_runtime::cleanup_all();
        std::thread::sleep(Duration::from_millis(50));
    }
    let all = LEFTOVERS.lock().map(|l| l.clone()).unwrap_or_default();
    for _ in 0..50 {
        if let Some((docker, id)) = &run {
            let _ = docker.remove_labelled(RUN_ID_LABEL, id);
        }
        let mut left = 0;
        for (docker, network, name) in &all {
            let removed = if *network {
                docker.remove_network(name)
            } else {
                docker.remove_volume(name)
            };
            left += usize::from(removed.is_err());
        }
        if left == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        pare_runtime::cleanup_all();
    }
}
