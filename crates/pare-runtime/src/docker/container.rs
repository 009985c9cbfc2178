//! A container started by the docker runtime: its removal (also from the Ctrl-C registry),
//! exit status, signals, `exec`, logs, and whether a port listens on its own address.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use pare_docker::bollard::container::LogOutput;
use pare_docker::bollard::exec::{CreateExecOptions, StartExecResults};
use pare_docker::bollard::query_parameters::{KillContainerOptionsBuilder, LogsOptionsBuilder};
use pare_docker::{Client, bollard};
use pare_trace::ExitInfo;

use super::{derr, remove_container};
use crate::cleanup::{Registration, Teardown};
use crate::{Container, ExecOutput, RuntimeError};

pub(super) struct DockerInner {
    pub(super) client: Client,
    pub(super) id: String,
    pub(super) name: String,
    pub(super) done: AtomicBool,
    /// Set when the removal request has returned.
    pub(super) removed: AtomicBool,
    /// Its entry in the runtime's `Cancel`, dropped (deregistered) once it is removed.
    pub(super) registration: Mutex<Option<Registration>>,
    pub(super) exit: Mutex<Option<ExitInfo>>,
    /// Signals sent by `stop` (number, name): an exit code of 128+number is reported as that
    /// signal, as the embedded runtime does.
    pub(super) sent: Mutex<Vec<(i32, &'static str)>>,
}

impl DockerInner {
    fn remove(&self) -> Result<(), RuntimeError> {
        if self.done.swap(true, Ordering::SeqCst) {
            // Another thread is removing it: wait (bounded) for that to finish, so that a
            // Ctrl-C exit does not cut an in-flight removal short and leave the container.
            let t = Instant::now();
            while !self.removed.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(10));
            }
            return Ok(());
        }
        let c = &self.client;
        let r = c
            .block_on(remove_container(c, &self.id))
            .map(drop)
            .map_err(|e| derr(c, &format!("remove container {}", self.name), e));
        self.removed.store(true, Ordering::SeqCst);
        // Deregistered only now: a Ctrl-C during the request still finds it, and waits above.
        drop(
            self.registration
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
        r
    }

    /// The exit status when the container is no longer running.
    fn poll_exit(&self) -> Result<Option<ExitInfo>, RuntimeError> {
        if let Some(e) = self.exit.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(Some(e));
        }
        let c = &self.client;
        let info = c
            .block_on(c.call(c.api().inspect_container(&self.id, None)))
            .map_err(|e| derr(c, &format!("inspect container {}", self.name), e))?;
        let state = info.state.unwrap_or_default();
        if state.running.unwrap_or(false) || state.restarting.unwrap_or(false) {
            return Ok(None);
        }
        let code = state.exit_code.unwrap_or(-1) as i32;
        let sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        let signal = sent
            .iter()
            .find(|(n, _)| code == 128 + n)
            .map(|(_, name)| name.to_string());
        let exit = ExitInfo { code, signal };
        *self.exit.lock().unwrap_or_else(|e| e.into_inner()) = Some(exit.clone());
        Ok(Some(exit))
    }

    fn wait(&self, timeout: Duration) -> Result<Option<ExitInfo>, RuntimeError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.poll_exit()? {
                return Ok(Some(e));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(25)));
        }
    }

    fn kill(&self, signal: &'static str, number: i32) -> Result<(), RuntimeError> {
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((number, signal));
        let c = &self.client;
        c.block_on(async {
            let opts = KillContainerOptionsBuilder::new().signal(signal).build();
            match c.call(c.api().kill_container(&self.id, Some(opts))).await {
                Ok(()) => Ok(()),
                // 409: not running any more.
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 409 | 404,
                    ..
                }) => Ok(()),
                Err(e) => Err(derr(
                    c,
                    &format!("kill {signal} container {}", self.name),
                    e,
                )),
            }
        })
    }
}

/// A container whose create request is in flight (see `start_container`).
pub(super) struct PendingCreate {
    pub(super) client: Client,
    pub(super) name: String,
    pub(super) in_flight: AtomicBool,
}

impl Teardown for PendingCreate {
    fn teardown(&self) {
        // Wait (bounded) for the daemon's answer, then remove whatever it made under the name.
        let t = Instant::now();
        while self.in_flight.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let c = &self.client;
        let _ = c.block_on(remove_container(c, &self.name));
    }
}

impl Teardown for DockerInner {
    fn teardown(&self) {
        let _ = self.remove();
    }
}

/// The container's own address on its first network with one (a local daemon's bridge is
/// routable from the host, no proxy in between).
pub(super) fn container_ip(net: &bollard::models::NetworkSettings) -> Option<IpAddr> {
    net.networks
        .iter()
        .flat_map(|m| m.values())
        .filter_map(|n| n.ip_address.as_deref())
        .find_map(|ip| ip.parse::<IpAddr>().ok())
}

pub(super) const DIRECT_UNKNOWN: u8 = 0;
const DIRECT_YES: u8 = 1;
const DIRECT_NO: u8 = 2;

/// A container started by [`DockerRuntime`](super::DockerRuntime).
pub struct DockerContainer {
    pub(super) inner: std::sync::Arc<DockerInner>,
    pub(super) endpoints: HashMap<u16, SocketAddr>,
    /// The container's own IP (local daemon only), for [`Container::listening`].
    pub(super) direct: Option<IpAddr>,
    /// Whether that IP answered from here: unknown until the first try; an address that
    /// neither accepts nor refuses (rootless docker, another netns) is not tried again.
    pub(super) direct_works: AtomicU8,
}

impl DockerContainer {
    /// The daemon's container ID.
    pub fn id(&self) -> &str {
        &self.inner.id
    }
}

impl Container for DockerContainer {
    fn endpoint(&self, port: u16) -> Option<SocketAddr> {
        self.endpoints.get(&port).copied()
    }

    fn listening(&self, port: u16) -> Option<bool> {
        let ip = self.direct?;
        let state = self.direct_works.load(Ordering::Relaxed);
        if state == DIRECT_NO {
            return None;
        }
        // A routable container answers a connect at once: accepted or refused (RST). A connect
        // that times out is tried again before it counts: right after a container starts, or
        // while the host still holds a stale neighbour entry for a reused address, the first
        // SYNs can be lost, and the fallback (a connect through docker's proxy) cannot tell a
        // closed port from a slow proxy. Only an address that never answered is given up on.
        let (tries, timeout) = if state == DIRECT_YES {
            (3, Duration::from_millis(1000))
        } else {
            (6, Duration::from_millis(400))
        };
        let addr = SocketAddr::new(ip, port);
        let answer = (0..tries).find_map(|_| {
            match std::net::TcpStream::connect_timeout(&addr, timeout) {
                Ok(_) => Some(Some(true)),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Some(Some(false)),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => None,
                // Unreachable network or host: not routable from here, no use retrying.
                Err(_) => Some(None),
            }
        });
        let answer = answer.flatten();
        if answer.is_some() {
            self.direct_works.store(DIRECT_YES, Ordering::Relaxed);
        } else if state != DIRECT_YES {
            self.direct_works.store(DIRECT_NO, Ordering::Relaxed);
        }
        answer
    }

    fn exec(&self, argv: &[String], timeout: Duration) -> Result<ExecOutput, RuntimeError> {
        let inner = &self.inner;
        let c = &inner.client;
        let name = &inner.name;
        c.block_on(async {
            let opts = CreateExecOptions::<String> {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(argv.to_vec()),
                ..Default::default()
            };
            let created = c
                .call(c.api().create_exec(&inner.id, opts))
                .await
                .map_err(|e| derr(c, &format!("exec in {name}"), e))?;
            let collect = async {
                let mut out = ExecOutput::default();
                match c
                    .call(c.api().start_exec(&created.id, None))
                    .await
                    .map_err(|e| derr(c, &format!("exec in {name}"), e))?
                {
                    StartExecResults::Attached { mut output, .. } => {
                        while let Some(chunk) = c.next(&mut output).await {
                            match chunk
                                .map_err(|e| derr(c, &format!("exec output in {name}"), e))?
                            {
                                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                                    out.stdout.extend_from_slice(&message)
                                }
                                LogOutput::StdErr { message } => {
                                    out.stderr.extend_from_slice(&message)
                                }
                                LogOutput::StdIn { .. } => {}
                            }
                        }
                    }
                    StartExecResults::Detached => {}
                }
                // The stream ends when the process exits; the exit code may lag a moment.
                for _ in 0..200 {
                    let i = c
                        .call(c.api().inspect_exec(&created.id))
                        .await
                        .map_err(|e| derr(c, &format!("exec in {name}"), e))?;
                    if !i.running.unwrap_or(false) {
                        out.exit_code = i.exit_code.unwrap_or(-1) as i32;
                        return Ok(out);
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(RuntimeError::Docker {
                    message: format!("exec in {name}: no exit code after output ended"),
                })
            };
            match tokio::time::timeout(timeout, collect).await {
                Ok(r) => r,
                Err(_) => {
                    // Docker has no "kill exec": with a local daemon the exec's host pid is ours
                    // to kill; otherwise it runs on until the container is removed.
                    if c.is_local() {
                        if let Ok(i) = c.call(c.api().inspect_exec(&created.id)).await {
                            if let Some(pid) =
                                i.pid.filter(|&p| p > 1).and_then(|p| i32::try_from(p).ok())
                            {
                                let _ = nix::sys::signal::kill(
                                    nix::unistd::Pid::from_raw(pid),
                                    nix::sys::signal::Signal::SIGKILL,
                                );
                            }
                        }
                    }
                    Err(RuntimeError::Docker {
                        message: format!(
                            "exec {:?} in {name}: timed out after {timeout:?}",
                            argv.join(" ")
                        ),
                    })
                }
            }
        })
    }

    fn wait(&self, timeout: Duration) -> Result<Option<ExitInfo>, RuntimeError> {
        self.inner.wait(timeout)
    }

    fn stop(&self, grace: Duration) -> Result<ExitInfo, RuntimeError> {
        if let Some(e) = self.inner.poll_exit()? {
            return Ok(e);
        }
        self.inner.kill("SIGTERM", 15)?;
        if let Some(e) = self.inner.wait(grace)? {
            return Ok(e);
        }
        self.inner.kill("SIGKILL", 9)?;
        self.inner
            .wait(Duration::from_secs(30))?
            .ok_or_else(|| RuntimeError::Docker {
                message: format!(
                    "container {} still running 30s after SIGKILL",
                    self.inner.name
                ),
            })
    }

    fn logs(&self) -> Result<(Vec<u8>, Vec<u8>), RuntimeError> {
        let inner = &self.inner;
        let c = &inner.client;
        c.block_on(async {
            let opts = LogsOptionsBuilder::new()
                .stdout(true)
                .stderr(true)
                .follow(false)
                .build();
            let mut stream = c.api().logs(&inner.id, Some(opts));
            let (mut out, mut err) = (Vec::new(), Vec::new());
            while let Some(chunk) = c.next(&mut stream).await {
                match chunk.map_err(|e| derr(c, &format!("logs of {}", inner.name), e))? {
                    LogOutput::StdOut { message } | LogOutput::Console { message } => {
                        out.extend_from_slice(&message)
                    }
                    LogOutput::StdErr { message } => err.extend_from_slice(&message),
                    LogOutput::StdIn { .. } => {}
                }
            }
            Ok((out, err))
        })
    }

    fn cleanup(&self) -> Result<(), RuntimeError> {
        self.inner.remove()
    }
}

impl Drop for DockerContainer {
    fn drop(&mut self) {
        let _ = self.inner.remove();
    }
}
