//! `pare profile`: run an image under the pare sensor through a runtime, drive it with probes,
//! and write what it touched.
//!
//! ```text
//! open image (pare-source) ─► runtime (docker: daemon image │ embedded: extracted rootfs)
//!   ─► start with the sensor ─► wait until the exposed ports answer (or the app exits)
//!   ─► probes (user's, or by default: crawl HTTP ports, connect to TCP ports, or wait for a job)
//!   ─► --continue-after ─► stop (SIGTERM) ─► sensor.json
//!   ─► OUTPUT/profile.json, OUTPUT/seccomp.json, OUTPUT/apparmor.profile
//! ```
//!
//! The work is split so that it can be tested without Docker: [`run_profile`] takes an already
//! opened image and any [`Runtime`](pare_runtime::Runtime); [`profile`] adds opening the
//! reference, choosing the runtime and extracting the root filesystem.

#![deny(missing_docs)]

use std::path::{Path, PathBuf};

pub mod apparmor;
mod artifacts;
mod drive;
mod error;
mod hint;
mod image_run;
mod options;
mod ready;
mod replay;
mod report;
mod result;
mod run;
mod run_override;
pub mod seccomp;
pub mod sensor;
mod stability;

pub use artifacts::{kind_counts, read_profile, write_artifacts};
pub use error::ProfileError;
use error::io_err;
pub use image_run::{ImageRun, Target};
pub use options::{ContinueAfter, EXIT_LIMIT, ProfileOptions};
pub use ready::{replay_ready, unanswered};
pub use replay::{ReplayError, ReplayPlan, Replayed, start_and_replay};
pub use result::{Artifacts, ProfileResult, Timings};
pub use run::{profile, run_profile};
pub use run_override::RunOverride;

pub use pare_probe;
pub use pare_runtime;
pub use pare_trace;

/// Finds the static sensor: see [`sensor::find_sensor`].
pub fn locate_sensor(explicit: Option<&Path>) -> Result<PathBuf, ProfileError> {
    sensor::find_sensor(explicit).map(|s| s.path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensor_lookup_prefers_explicit_path_and_fails_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().join("sensor");
        std::fs::write(&s, b"x").unwrap();
        // Not an ELF: refused, naming the file, rather than mounted into a container.
        let e = locate_sensor(Some(&s)).unwrap_err().to_string();
        assert!(
            e.contains(&s.display().to_string()) && e.contains("ELF"),
            "{e}"
        );
        let e = locate_sensor(Some(&dir.path().join("none")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--sensor") && e.contains("build-sensor"), "{e}");
    }
}
