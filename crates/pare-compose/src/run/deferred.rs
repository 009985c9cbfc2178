//! Volume removal out of the way of container starts. Docker's local volume driver holds one
//! lock while it deletes a volume's files (seconds for a database's data dir on a busy disk),
//! and creating any container that mounts a volume waits for that lock. So the volumes of the
//! run's finished instances are removed on a thread of their own, a trace's once every
//! verification has created its dependencies' containers, a verification's once every one has
//! started its target (or when the run is over); until then they stay registered for Ctrl-C.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use pare_runtime::DockerRuntime;

use super::cleanup::RunCleanup;
use super::instance::retried;

/// Volumes waiting to be removed, and how many verifications have yet to create their
/// containers.
pub(super) struct Deferred {
    state: Mutex<State>,
    changed: Condvar,
}

/// Which instances a volume comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wave {
    /// A trace's: removed once every verification has created its dependencies.
    Trace,
    /// A verification's: removed once every verification has started its target.
    Verify,
}

struct State {
    volumes: Vec<(Arc<DockerRuntime>, RunCleanup, String, Wave)>,
    /// Verifications that have not created their dependencies' containers yet.
    deps_to_create: usize,
    /// Verifications that have not started their target yet.
    to_start: usize,
    /// Verify groups that have not started their first target yet (see
    /// [`Deferred::wait_firsts`]).
    firsts_to_start: usize,
    /// The run is over: remove what is left, then stop.
    over: bool,
}

impl Deferred {
    /// A queue that waits for `verifications` targets, the first of `groups` verify groups
    /// among them, to start.
    pub(super) fn new(verifications: usize, groups: usize) -> Self {
        Deferred {
            state: Mutex::new(State {
                volumes: Vec::new(),
                deps_to_create: verifications,
                to_start: verifications,
                firsts_to_start: groups,
                over: false,
            }),
            changed: Condvar::new(),
        }
    }

    /// Queues volume `name` for removal.
    pub(super) fn remove_later(
        &self,
        docker: &Arc<DockerRuntime>,
        run: &RunCleanup,
        name: String,
        wave: Wave,
    ) {
        if let Ok(mut s) = self.state.lock() {
            s.volumes.push((docker.clone(), run.clone(), name, wave));
        }
        self.changed.notify_all();
    }

    fn count_down(&self, wave: Wave, first: bool) {
        if let Ok(mut s) = self.state.lock() {
            let n = match wave {
                Wave::Trace => &mut s.deps_to_create,
                Wave::Verify => &mut s.to_start,
            };
            *n = n.saturating_sub(1);
            if first && wave == Wave::Verify {
                s.firsts_to_start = s.firsts_to_start.saturating_sub(1);
            }
        }
        self.changed.notify_all();
    }

    /// Waits until every verify group has started its first target (or never will), or the
    /// run is over, or `stop()` (Ctrl-C). A trace instance is torn down only then: its
    /// removals (containers, networks) would otherwise hold up the daemon's start of those
    /// targets, each on the critical path (creating and starting a container waits for the
    /// network and volume work beside it); after, they overlap the targets' own start-up.
    pub(super) fn wait_firsts(&self, stop: &dyn Fn() -> bool) {
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        while s.firsts_to_start > 0 && !s.over && !stop() {
            s = match self.changed.wait_timeout(s, Duration::from_millis(200)) {
                Ok((s, _)) => s,
                Err(_) => return,
            };
        }
    }

    /// The run is over: [`remove_all`](Self::remove_all) removes what is left and returns.
    pub(super) fn finish(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.over = true;
        }
        self.changed.notify_all();
    }

    /// Removes each queued volume once its [`Wave`] is free to go, until
    /// [`finish`](Self::finish) and the queue is empty.
    pub(super) fn remove_all(&self) {
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        loop {
            let (trace_free, verify_free) =
                (s.over || s.deps_to_create == 0, s.over || s.to_start == 0);
            let next = s.volumes.iter().position(|v| match v.3 {
                Wave::Trace => trace_free,
                Wave::Verify => verify_free,
            });
            if let Some(i) = next {
                let (docker, run, name, _) = s.volumes.swap_remove(i);
                drop(s);
                // Its container may still be being removed in the background.
                if retried(|| docker.remove_volume(&name).is_ok(), || run.interrupted()) {
                    run.forget_leftover(&name);
                }
                s = match self.state.lock() {
                    Ok(s) => s,
                    Err(_) => return,
                };
                continue;
            }
            if s.over {
                return;
            }
            s = match self.changed.wait(s) {
                Ok(s) => s,
                Err(_) => return,
            };
        }
    }
}

/// One verification's word that its dependencies' containers are created, and that its target
/// started (or never will): each given once, when it happens or when the verification ends.
pub(super) struct Started {
    deferred: Arc<Deferred>,
    deps: AtomicBool,
    target: AtomicBool,
    /// The target is the first of its verify group.
    first: bool,
}

impl Started {
    pub(super) fn new(deferred: &Arc<Deferred>, first: bool) -> Self {
        Started {
            deferred: deferred.clone(),
            deps: AtomicBool::new(false),
            target: AtomicBool::new(false),
            first,
        }
    }

    /// The dependencies' containers are created (or never will be).
    pub(super) fn deps_created(&self) {
        if !self.deps.swap(true, Ordering::SeqCst) {
            self.deferred.count_down(Wave::Trace, false);
        }
    }

    /// The target started (or never will): given once, with the dependencies' word.
    pub(super) fn give(&self) {
        self.deps_created();
        if !self.target.swap(true, Ordering::SeqCst) {
            self.deferred.count_down(Wave::Verify, self.first);
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        self.give();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{Deferred, Started};

    #[test]
    fn removal_waits_for_every_verification_to_start_or_the_run_to_end() {
        let d = Arc::new(Deferred::new(2, 1));
        let (a, b) = (Started::new(&d, false), Started::new(&d, true));
        a.give();
        a.give();
        assert_eq!(d.state.lock().unwrap().to_start, 1, "given once");
        assert_eq!(d.state.lock().unwrap().firsts_to_start, 1, "not a first");
        std::thread::scope(|s| {
            let waiter = s.spawn(|| d.wait_firsts(&|| false));
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!waiter.is_finished(), "the group's first has not started");
            b.deps_created();
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!waiter.is_finished(), "its dependencies are not its start");
            b.give();
            waiter.join().unwrap();
        });
        drop(b);
        assert_eq!(
            d.state.lock().unwrap().to_start,
            0,
            "a verification that ended"
        );
        // A run without verify groups, or over, does not wait.
        Deferred::new(0, 0).wait_firsts(&|| false);
        let over = Deferred::new(1, 1);
        over.finish();
        over.wait_firsts(&|| false);
        d.finish();
        // Nothing queued and the run over: returns at once.
        d.remove_all();
    }
}
