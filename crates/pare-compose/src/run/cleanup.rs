//! What Ctrl-C removes: this run's containers (by label), networks and volumes, once the
//! instances still being torn down are gone. All of it lives in one [`RunCleanup`] value per
//! run, registered on the run's [`Cancel`] (no process-wide state).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pare_runtime::{Cancel, DockerRuntime};

/// Label naming the compose run a container belongs to.
pub(super) const RUN_ID_LABEL: &str = "io.pare.compose.run";

/// One compose run's Ctrl-C state: its ID (the [`RUN_ID_LABEL`] of its containers), the
/// networks and volumes to remove (containers are pare-runtime's), and how many instances
/// are not yet torn down. Cloning shares it.
#[derive(Clone)]
pub(super) struct RunCleanup {
    inner: Arc<Inner>,
}

struct Inner {
    docker: Arc<DockerRuntime>,
    run_id: String,
    cancel: Cancel,
    /// `(is a network, name)`: networks and volumes to remove on Ctrl-C.
    leftovers: Mutex<Vec<(bool, String)>>,
    /// Instances not yet torn down.
    live_instances: AtomicUsize,
}

impl RunCleanup {
    /// The state of run `run_id` on `docker`, removed by `cancel`'s clean-up.
    pub(super) fn register(docker: &Arc<DockerRuntime>, run_id: String, cancel: &Cancel) -> Self {
        let me = RunCleanup {
            inner: Arc::new(Inner {
                docker: docker.clone(),
                run_id,
                cancel: cancel.clone(),
                leftovers: Mutex::new(Vec::new()),
                live_instances: AtomicUsize::new(0),
            }),
        };
        let hook = me.clone();
        cancel.on_cancel(move || hook.remove_leftovers());
        me
    }

    /// The run's ID (`pareHEX`), shared by its instances and labelling their containers.
    pub(super) fn run_id(&self) -> &str {
        &self.inner.run_id
    }

    /// Whether Ctrl-C is ending the program (the clean-up removes the project and pare
    /// exits 130): a run failing meanwhile, its containers gone under it, should wait for
    /// that.
    pub(super) fn interrupted(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// Notes a network (`network`) or volume to remove on Ctrl-C.
    pub(super) fn register_leftover(&self, network: bool, name: &str) {
        lock(&self.inner.leftovers).push((network, name.to_string()));
    }

    /// Forgets a network or volume that was removed.
    pub(super) fn forget_leftover(&self, name: &str) {
        lock(&self.inner.leftovers).retain(|(_, n)| n != name);
    }

    /// An instance was created: until [`RunCleanup::instance_gone`], Ctrl-C waits for it.
    pub(super) fn instance_started(&self) {
        self.inner.live_instances.fetch_add(1, Ordering::SeqCst);
    }

    /// An instance was torn down.
    pub(super) fn instance_gone(&self) {
        self.inner.live_instances.fetch_sub(1, Ordering::SeqCst);
    }

    /// The Ctrl-C clean-up (run by the run's [`Cancel`], on which the docker runtime
    /// registers its containers).
    fn remove_leftovers(&self) {
        let Inner {
            docker,
            run_id,
            cancel,
            ..
        } = &*self.inner;
        cancel.remove_containers();
        // Networks and volumes go once their containers are gone; a container the main thread
        // was creating meanwhile (not yet registered on the Cancel) is found by its label.
        // The main thread fails as its containers vanish and tears its instances down; let it
        // finish (up to 10 s) so that nothing it creates meanwhile outlives the exit.
        let t = Instant::now();
        while self.inner.live_instances.load(Ordering::SeqCst) > 0
            && t.elapsed() < Duration::from_secs(10)
        {
            let _ = docker.remove_labelled(RUN_ID_LABEL, run_id);
            cancel.remove_containers();
            std::thread::sleep(Duration::from_millis(50));
        }
        let all = lock(&self.inner.leftovers).clone();
        for _ in 0..50 {
            let _ = docker.remove_labelled(RUN_ID_LABEL, run_id);
            let mut left = 0;
            for (network, name) in &all {
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
            cancel.remove_containers();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
