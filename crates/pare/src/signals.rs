//! The one place pare handles signals. Libraries install no handler and never exit: they get
//! the [`Cancel`] token from here (in `ProfileOptions`), register what must not outlive a
//! cancelled run (work dirs and mounts, Compose networks and volumes, temp dirs; the runtimes
//! keep their live containers), and wait on it for `--continue-after signal`.
//!
//! * SIGINT, SIGTERM, SIGHUP: [`Cancel::interrupt`]: during a `--continue-after signal` wait
//!   the first one only ends the wait; otherwise the run is cancelled, everything registered
//!   is torn down, and pare exits with 130.
//! * SIGUSR1: [`Cancel::proceed`]: ends that wait (or a `--continue-after SECONDS`).
//!
//! The handlers run on a normal thread (signal-hook's self-pipe), not in a signal context.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use pare_profile::pare_runtime::Cancel;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};

static CANCEL: OnceLock<Cancel> = OnceLock::new();

/// Held from the moment a cancelled run starts cleaning up until the process exits.
static EXITING: Mutex<()> = Mutex::new(());

/// The program's one cancellation token and cleanup registry.
pub fn cancel() -> Cancel {
    CANCEL.get_or_init(Cancel::new).clone()
}

/// Starts handling the signals (for the commands that run containers; the others keep the
/// default dispositions). Without a handler thread (it could not be made) the defaults stay.
pub fn install() {
    let cancel = cancel();
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1])
    else {
        return;
    };
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if signal == SIGUSR1 {
                    cancel.proceed();
                } else if cancel.interrupt() {
                    exit_cancelled(&cancel);
                }
            }
        });
    drop(spawned);
}

/// Tears down what the cancelled run registered and exits with 130.
fn exit_cancelled(cancel: &Cancel) -> ! {
    // Held until exit: see `barrier`.
    let _exiting = EXITING.lock();
    cancel.cleanup();
    // The run kept going meanwhile and may have made a directory (again), or a daemon
    // request in flight may have (dockerd makes a missing bind source): a second pass after
    // those settle, just before exiting. No temp dir can be made after it.
    std::thread::sleep(Duration::from_millis(150));
    let _frozen = cancel.final_cleanup();
    std::process::exit(130);
}

/// Waits while a cancelled run is being cleaned up (that then exits with 130, so this never
/// returns in that case). Called before pare exits normally: a command that finishes just as
/// Ctrl-C arrives must not exit while its work dir is halfway removed.
pub fn barrier() {
    drop(EXITING.lock());
}
