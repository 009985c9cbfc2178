//! The `docker` runtime: the daemon through pare-docker's one client (`DOCKER_HOST`
//! honoured, API version negotiated, every call bounded in time).
//!
//! Analysis runs (sensor present) get exactly what ptrace and fanotify need: user root so the
//! sensor can trace and then drop to the image user, `SYS_PTRACE` (+ `SYS_ADMIN` for fanotify),
//! seccomp and AppArmor unconfined — never `--privileged`. Verification runs (no sensor) run
//! the image's own command, USER, WORKDIR and ENV with Docker's default security.
//!
//! The trait is synchronous; pare-docker's one tokio runtime drives the calls (from inside
//! another tokio runtime too). Here: the runtime and its start; `body` builds the container
//! configuration (pure), `container` is a started container, `project` the multi-container
//! calls pare-compose needs.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use pare_docker::bollard::models::ContainerSummary;
use pare_docker::bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use pare_docker::{Client, bollard};

use crate::cleanup::Teardown;
use crate::{Container, RunSource, RunSpec, Runtime, RuntimeError};

mod body;
mod container;
mod project;
pub(crate) use body::{create_body, sensor_argv};
pub use container::DockerContainer;
use container::{DIRECT_UNKNOWN, DockerInner, PendingCreate, container_ip};
pub use project::{Attach, Health, Healthcheck};

/// Label put on every container pare creates, so stale ones can be found and removed.
pub const RUN_LABEL: &str = "io.pare.run";
/// Label naming the process that created the container (`HOST:PID:STARTTIME`).
pub const OWNER_LABEL: &str = "io.pare.owner";

/// A bollard error as a runtime error: a daemon that went away or stopped answering is
/// [`RuntimeError::DaemonLost`] naming the daemon, anything else names what was being done.
fn derr(client: &Client, context: &str, e: bollard::errors::Error) -> RuntimeError {
    if pare_docker::is_lost(&e) {
        // Say so, and which daemon, rather than a transport error's own words.
        return RuntimeError::DaemonLost {
            host: client.host().to_string(),
            context: context.to_string(),
            cause: pare_docker::root_cause(&e),
        };
    }
    RuntimeError::DockerApi {
        context: context.to_string(),
        source: e,
    }
}

/// The Docker daemon runtime.
pub struct DockerRuntime {
    client: Client,
    /// Where its containers are registered for a Ctrl-C.
    cancel: crate::Cancel,
}

impl std::fmt::Debug for DockerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerRuntime").finish_non_exhaustive()
    }
}

impl DockerRuntime {
    /// Connects (`DOCKER_HOST` or the default socket), negotiates the API version and pings,
    /// all within `timeout`; then removes containers left by dead pare processes
    /// ([`remove_stale`](Self::remove_stale)). Its containers are registered on `cancel`.
    pub fn connect(timeout: Duration, cancel: &crate::Cancel) -> Result<Self, RuntimeError> {
        Self::connect_with_host("", timeout, cancel)
    }

    /// Like [`connect`](Self::connect) with an explicit host (`unix://…`, `tcp://…`; empty =
    /// `DOCKER_HOST` or the default socket).
    pub fn connect_with_host(
        host: &str,
        timeout: Duration,
        cancel: &crate::Cancel,
    ) -> Result<Self, RuntimeError> {
        let client =
            Client::connect_with_host(host, timeout).map_err(|e| RuntimeError::Unavailable {
                runtime: "docker",
                reason: pare_progress::chain(&e),
            })?;
        let this = Self {
            client,
            cancel: cancel.clone(),
        };
        // Best effort: containers that SIGKILLed pare processes on this host left behind.
        let _ = this.remove_stale(false);
        Ok(this)
    }

    /// Removes containers with the `io.pare.run` label whose creating process (on this host)
    /// is gone, e.g. after a SIGKILL. Containers of live pare processes are kept; with
    /// `all`, every labelled container goes. Returns how many were removed.
    pub fn remove_stale(&self, all: bool) -> Result<usize, RuntimeError> {
        let mut n = 0;
        for listed in self.labelled(RUN_LABEL, "1")? {
            let Some(id) = listed.id else { continue };
            let owner = listed
                .labels
                .as_ref()
                .and_then(|l| l.get(OWNER_LABEL))
                .map_or("", String::as_str);
            if !all && crate::owner_alive(owner) != Some(false) {
                continue;
            }
            self.force_remove(&id)?;
            n += 1;
        }
        Ok(n)
    }

    /// IDs of all containers (running or not) with the `io.pare.run` label.
    pub fn list_labelled(&self) -> Result<Vec<String>, RuntimeError> {
        let list = self.labelled(RUN_LABEL, "1")?;
        Ok(list.into_iter().filter_map(|c| c.id).collect())
    }

    /// Every container (running or not) labelled `label=value`.
    fn labelled(&self, label: &str, value: &str) -> Result<Vec<ContainerSummary>, RuntimeError> {
        let c = &self.client;
        let mut filters = HashMap::new();
        filters.insert("label".to_string(), vec![format!("{label}={value}")]);
        let opts = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        c.block_on(c.call(c.api().list_containers(Some(opts))))
            .map_err(|e| derr(c, "list containers", e))
    }

    /// Force-removes a container (ID or name) with its anonymous volumes; `false` when it
    /// was already gone.
    fn force_remove(&self, id: &str) -> Result<bool, RuntimeError> {
        let c = &self.client;
        c.block_on(remove_container(c, id))
            .map_err(|e| derr(c, &format!("remove container {id}"), e))
    }
}

/// Force-removes a container (ID or name) with its anonymous volumes: `Ok(false)` when the
/// daemon has no such container.
async fn remove_container(c: &Client, id: &str) -> Result<bool, bollard::errors::Error> {
    let opts = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match c.call(c.api().remove_container(id, Some(opts))).await {
        Ok(()) => Ok(true),
        Err(e) if pare_docker::is_not_found(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

impl Runtime for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn start(&self, spec: &RunSpec) -> Result<Box<dyn Container>, RuntimeError> {
        Ok(Box::new(self.start_container(spec)?))
    }
}

impl DockerRuntime {
    /// [`Runtime::start`] returning the concrete container (for its [`DockerContainer::id`]).
    pub fn start_container(&self, spec: &RunSpec) -> Result<DockerContainer, RuntimeError> {
        self.start_attached(spec, &Attach::default())
    }

    /// [`start_container`](Self::start_container) joined to a project: networks with DNS
    /// aliases, mounts, healthcheck, name (see [`Attach`]).
    pub fn start_attached(
        &self,
        spec: &RunSpec,
        attach: &Attach,
    ) -> Result<DockerContainer, RuntimeError> {
        self.create_attached(spec, attach)?.start()
    }

    /// The first half of [`start_attached`](Self::start_attached): the container created
    /// and joined to its networks, nothing running in it yet (pare-compose makes the next
    /// service's container while the one it depends on is still being verified). Dropping
    /// it unstarted removes it; Ctrl-C does too.
    pub fn create_attached(
        &self,
        spec: &RunSpec,
        attach: &Attach,
    ) -> Result<CreatedContainer, RuntimeError> {
        let RunSource::Daemon(image) = &spec.source else {
            return Err(RuntimeError::UnsupportedSource {
                runtime: "docker",
                given: spec.source.clone(),
            });
        };
        let mut body = create_body(spec, image)?;
        project::apply(&mut body, attach);
        let name = attach
            .name
            .clone()
            .unwrap_or_else(|| format!("pare-{}", crate::random_hex(12)));
        let c = &self.client;
        // A Ctrl-C while the create request is in flight must not leak the container the
        // daemon is about to make: until it is registered below, a pending entry removes it
        // by name once the request has returned.
        let pending = Arc::new(PendingCreate {
            client: c.clone(),
            name: name.clone(),
            in_flight: AtomicBool::new(true),
        });
        let pending_td: Arc<dyn Teardown> = pending.clone();
        let pending_reg = self.cancel.register(&pending_td);
        // Registered before this check: a clean-up that begins later sees the pending entry.
        if self.cancel.is_cancelled() {
            drop(pending_reg);
            return Err(RuntimeError::Docker {
                message: format!("interrupted: not creating container {name}"),
            });
        }
        let created = c.block_on(async {
            let opts = CreateContainerOptionsBuilder::new().name(&name).build();
            let created = c
                .call(c.api().create_container(Some(opts), body))
                .await
                .map_err(|e| derr(c, &format!("create container {name} from {image}"), e))?;
            Ok::<_, RuntimeError>(created.id)
        });
        pending.in_flight.store(false, Ordering::SeqCst);
        let id = match created {
            Ok(id) => id,
            Err(e) => {
                drop(pending_reg);
                return Err(e);
            }
        };
        let inner = Arc::new(DockerInner {
            client: c.clone(),
            id: id.clone(),
            name: name.clone(),
            done: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            registration: Mutex::new(None),
            exit: Mutex::new(None),
            sent: Mutex::new(Vec::new()),
        });
        let td: Arc<dyn Teardown> = inner.clone();
        *inner.registration.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(self.cancel.register(&td));
        drop(pending_reg);
        let container = DockerContainer {
            inner,
            endpoints: HashMap::new(),
            direct: None,
            direct_works: AtomicU8::new(DIRECT_UNKNOWN),
        };
        for (net, aliases) in attach.networks.iter().skip(1) {
            self.connect_network(&id, net, aliases)?;
        }
        Ok(CreatedContainer {
            container,
            ports: spec.ports.clone(),
        })
    }
}

/// A container created by [`DockerRuntime::create_attached`], not started yet.
pub struct CreatedContainer {
    container: DockerContainer,
    /// The container ports whose host endpoints [`CreatedContainer::start`] looks up.
    ports: Vec<u16>,
}

impl CreatedContainer {
    /// Starts it (the second half of [`DockerRuntime::start_attached`]).
    pub fn start(self) -> Result<DockerContainer, RuntimeError> {
        let CreatedContainer {
            mut container,
            ports,
        } = self;
        let inner = container.inner.clone();
        let (c, id, name) = (&inner.client, &inner.id, &inner.name);
        let started = c.block_on(async {
            c.call(c.api().start_container(id, None))
                .await
                .map_err(|e| derr(c, &format!("start container {name}"), e))?;
            c.call(c.api().inspect_container(id, None))
                .await
                .map_err(|e| derr(c, &format!("inspect container {name}"), e))
        });
        // On error `container` drops here and removes what was created.
        let info = started?;
        if let Some(net) = info.network_settings {
            if c.is_local() {
                container.direct = container_ip(&net);
            }
            if let Some(bound) = net.ports {
                for p in &ports {
                    if let Some(addr) = body::parse_port_binding(&bound, *p) {
                        container.endpoints.insert(*p, addr);
                    }
                }
            }
        }
        Ok(container)
    }
}
