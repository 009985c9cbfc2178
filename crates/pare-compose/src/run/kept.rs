//! A verified target that stays up for the verifications after it in the same instance
//! (`db`, verified by its own probes, then serving `api`'s): pare-verify stops and removes
//! the container it verified once its probes are replayed; [`Keeping`] hands it a
//! [`Kept`] handle whose stop and removal are left to the instance, which gets the container
//! itself to run, wait for and remove like any dependency it started.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pare_runtime::{
    Container, CreatedContainer, DockerContainer, ExecOutput, RunSpec, Runtime, RuntimeError,
};
use pare_trace::ExitInfo;

use super::instance::Joined;

/// Starts containers joined to an instance like [`Joined`] (the first one from a container
/// created ahead for the same spec, when given one); with `keep`, the started container is
/// kept for [`Keeping::take`], and the caller's stop and removal do nothing.
pub(super) struct Keeping {
    joined: Joined,
    keep: bool,
    kept: Mutex<Option<Arc<DockerContainer>>>,
    /// A container created ahead for the spec this runtime is given: started instead of a
    /// new one.
    created: Mutex<Option<CreatedContainer>>,
}

impl Keeping {
    pub(super) fn new(joined: Joined, keep: bool, created: Option<CreatedContainer>) -> Self {
        Keeping {
            joined,
            keep,
            kept: Mutex::new(None),
            created: Mutex::new(created),
        }
    }

    /// The container started with `keep`, still running unless its app exited.
    pub(super) fn take(&self) -> Option<Arc<DockerContainer>> {
        self.kept.lock().ok()?.take()
    }
}

impl Runtime for Keeping {
    fn name(&self) -> &'static str {
        "docker"
    }
    fn start(&self, spec: &RunSpec) -> Result<Box<dyn Container>, RuntimeError> {
        let ahead = self.created.lock().ok().and_then(|mut c| c.take());
        let c = match ahead {
            Some(created) => created.start()?,
            None => self
                .joined
                .docker
                .start_attached(spec, &self.joined.attach)?,
        };
        if !self.keep {
            return Ok(Box::new(c));
        }
        let c = Arc::new(c);
        if let Ok(mut slot) = self.kept.lock() {
            *slot = Some(c.clone());
        }
        Ok(Box::new(Kept(c)))
    }
}

/// A kept container: stopping and removing it are left to whoever [took](Keeping::take) it
/// (the instance, which removes it at teardown); the rest goes to the container.
struct Kept(Arc<DockerContainer>);

impl Container for Kept {
    fn endpoint(&self, port: u16) -> Option<SocketAddr> {
        self.0.endpoint(port)
    }
    fn listening(&self, port: u16) -> Option<bool> {
        self.0.listening(port)
    }
    fn exec(&self, argv: &[String], timeout: Duration) -> Result<ExecOutput, RuntimeError> {
        self.0.exec(argv, timeout)
    }
    fn wait(&self, timeout: Duration) -> Result<Option<ExitInfo>, RuntimeError> {
        self.0.wait(timeout)
    }
    fn stop(&self, _grace: Duration) -> Result<ExitInfo, RuntimeError> {
        Err(RuntimeError::Docker {
            message: "not stopped: kept running for the services verified after it".into(),
        })
    }
    fn logs(&self) -> Result<(Vec<u8>, Vec<u8>), RuntimeError> {
        self.0.logs()
    }
    fn cleanup(&self) -> Result<(), RuntimeError> {
        Ok(())
    }
}
