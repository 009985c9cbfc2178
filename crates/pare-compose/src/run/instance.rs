//! One instance of a project on the daemon: its networks and fresh volumes, its services
//! started in dependency order with their conditions, and the runtime ([`Joined`]) that starts
//! a traced or verified container inside it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pare_runtime::{
    Attach, Container, DockerContainer, DockerRuntime, Health, Healthcheck, RunSpec, Runtime,
    RuntimeError,
};

use super::RunError;
use super::cleanup::{RUN_ID_LABEL, RunCleanup};
use super::deferred::{Deferred, Wave};
use super::service::image_run;
use crate::model::{Condition, MountSpec, Project, Service};
use crate::order;

/// A runtime that starts every container joined to a project instance.
pub(super) struct Joined {
    pub(super) docker: Arc<DockerRuntime>,
    pub(super) attach: Attach,
}

impl Runtime for Joined {
    fn name(&self) -> &'static str {
        "docker"
    }
    fn start(&self, spec: &RunSpec) -> Result<Box<dyn Container>, RuntimeError> {
        Ok(Box::new(self.docker.start_attached(spec, &self.attach)?))
    }
}

/// One instance of the project: its networks, volumes and running services.
pub(super) struct Instance<'a> {
    pub(super) docker: Arc<DockerRuntime>,
    project: &'a Project,
    /// The whole run: its ID (`pareHEX`, shared by its instances) and Ctrl-C clean-up.
    run: RunCleanup,
    id: String,
    networks: Vec<String>,
    volumes: BTreeSet<String>,
    /// Services running (or run) here, removed at teardown: the dependencies it started,
    /// and verified targets kept for the verifications after them.
    pub(super) running: BTreeMap<String, Arc<DockerContainer>>,
    keep: bool,
    /// Health-wait limit.
    pub(super) timeout: Duration,
    /// Where the volumes go at teardown (removed at once when `None`).
    deferred: Option<(Arc<Deferred>, Wave)>,
}

impl<'a> Instance<'a> {
    pub(super) fn new(
        docker: &Arc<DockerRuntime>,
        project: &'a Project,
        run: &RunCleanup,
        phase: &str,
        keep: bool,
        timeout: Duration,
    ) -> Result<Self, RunError> {
        run.instance_started();
        let mut me = Instance {
            docker: docker.clone(),
            project,
            run: run.clone(),
            id: format!("{}_{phase}", run.run_id()),
            networks: Vec::new(),
            volumes: BTreeSet::new(),
            running: BTreeMap::new(),
            keep,
            timeout,
            deferred: None,
        };
        let nets: BTreeSet<&str> = project
            .services
            .values()
            .flat_map(|s| s.networks.iter().map(|(n, _)| n.as_str()))
            .collect();
        for n in nets {
            let name = me.scoped(n);
            if !keep {
                run.register_leftover(true, &name);
            }
            docker.create_network(&name)?;
            me.networks.push(name);
        }
        // Fresh volumes, labelled so that a sweep finds them after a SIGKILL.
        for svc in project.services.values() {
            for (i, m) in svc.mounts.iter().enumerate() {
                if let MountSpec::Volume { name, .. } = m {
                    let vol = me.volume_name(svc, i, name.as_deref());
                    if me.volumes.contains(&vol) {
                        continue;
                    }
                    if !keep {
                        run.register_leftover(false, &vol);
                    }
                    docker.create_volume(&vol)?;
                    me.volumes.insert(vol);
                }
            }
        }
        Ok(me)
    }

    /// At teardown, hands the volumes to `deferred` instead of removing them at once.
    pub(super) fn remove_volumes_later(&mut self, deferred: &Arc<Deferred>, wave: Wave) {
        self.deferred = Some((deferred.clone(), wave));
    }

    /// The instance's volume for mount `i` of `svc`: named ones are shared by the services
    /// of the instance, anonymous ones get a name so they can be removed.
    fn volume_name(&self, svc: &Service, i: usize, name: Option<&str>) -> String {
        match name {
            Some(n) => self.scoped(n),
            None => self.scoped(&format!("{}_anon{i}", svc.name)),
        }
    }

    fn scoped(&self, name: &str) -> String {
        format!("{}_{name}", self.id)
    }

    /// How `svc` joins this instance.
    pub(super) fn attach(&self, svc: &Service, healthcheck: bool) -> Attach {
        let mut binds = Vec::new();
        let mut tmpfs = Vec::new();
        for (i, m) in svc.mounts.iter().enumerate() {
            match m {
                MountSpec::Volume {
                    name,
                    target,
                    read_only,
                } => {
                    // Every instance has fresh volumes (made in `new`): the trace's data
                    // never reaches the verification run.
                    let vol = self.volume_name(svc, i, name.as_deref());
                    binds.push(format!(
                        "{vol}:{target}{}",
                        if *read_only { ":ro" } else { "" }
                    ));
                }
                MountSpec::Bind {
                    source,
                    target,
                    read_only,
                } => binds.push(format!(
                    "{}:{target}{}",
                    source.display(),
                    if *read_only { ":ro" } else { "" }
                )),
                MountSpec::Tmpfs { target } => tmpfs.push(target.clone()),
            }
        }
        Attach {
            name: Some(self.scoped(&svc.name)),
            networks: svc
                .networks
                .iter()
                .map(|(n, aliases)| {
                    let mut a = vec![svc.name.clone()];
                    a.extend(aliases.iter().cloned());
                    (self.scoped(n), a)
                })
                .collect(),
            binds,
            tmpfs,
            healthcheck: svc
                .healthcheck
                .as_ref()
                .filter(|_| healthcheck)
                .map(|h| Healthcheck {
                    test: h.test.clone(),
                    interval: h.interval,
                    timeout: h.timeout,
                    retries: h.retries,
                    start_period: h.start_period,
                }),
            labels: vec![
                (RUN_ID_LABEL.into(), self.run.run_id().to_string()),
                ("io.pare.compose.project".into(), self.project.name.clone()),
                ("io.pare.compose.service".into(), svc.name.clone()),
            ],
        }
    }

    /// Starts `svc` untraced from `image` (not waiting for it).
    fn start(&mut self, svc: &Service, image: &str) -> Result<(), RunError> {
        if self.run.interrupted() {
            return Err(RunError::Runtime(RuntimeError::Docker {
                message: format!("{}: not started, interrupted", svc.name),
            }));
        }
        let run = image_run(image, svc)?;
        let spec = RunSpec {
            source: pare_runtime::RunSource::Daemon(image.to_string()),
            command: run.command(),
            env: run.env.clone(),
            user: run.user.clone(),
            workdir: run.workdir.clone(),
            ports: svc.ports(),
            sensor: None,
            hostname: svc.name.clone(),
        };
        let attach = self.attach(svc, true);
        let c = self.docker.start_attached(&spec, &attach)?;
        self.running.insert(svc.name.clone(), Arc::new(c));
        Ok(())
    }

    /// Waits until the running service `name` meets `cond`.
    fn wait_for(&self, name: &str, cond: Condition) -> Result<(), RunError> {
        let Some(c) = self.running.get(name) else {
            return Ok(());
        };
        let check = self.project.services[name]
            .healthcheck
            .as_ref()
            .and_then(|h| Some((h.argv()?, h.timeout.unwrap_or(CHECK_TIMEOUT))));
        wait_condition(c, cond, check, self.timeout).map_err(|what| RunError::Dependency {
            service: name.to_string(),
            what,
            logs: last_lines(c, 10),
        })
    }

    /// Starts what `target` needs (not yet running) in dependency order, each as soon as its
    /// own dependencies meet their conditions (independent ones start together, as Compose
    /// does), then waits for the conditions `target` puts on its own dependencies.
    pub(super) fn start_dependencies(
        &mut self,
        target: &str,
        order: &[String],
        images: &BTreeMap<String, String>,
    ) -> Result<(), RunError> {
        self.start_needed(target, order, images)?;
        self.wait_needed(target)
    }

    /// The first half of [`start_dependencies`](Self::start_dependencies): every dependency's
    /// container created and started, not waiting for `target`'s own conditions.
    pub(super) fn start_needed(
        &mut self,
        target: &str,
        order: &[String],
        images: &BTreeMap<String, String>,
    ) -> Result<(), RunError> {
        let deps = order::dependencies_in_order(self.project, target, order);
        self.start_each(deps, images)
    }

    /// The second half: waits for the conditions `target` puts on its own dependencies.
    pub(super) fn wait_needed(&self, target: &str) -> Result<(), RunError> {
        for (d, cond) in &self.project.services[target].depends_on {
            self.wait_for(d, *cond)?;
        }
        Ok(())
    }

    /// Starts the dependencies of `target` that need none of `pending` (services whose
    /// images are not made yet): those that neither are one nor depend on one. The rest
    /// follow with [`start_dependencies`](Self::start_dependencies) once the images exist.
    pub(super) fn start_ahead(
        &mut self,
        target: &str,
        order: &[String],
        images: &BTreeMap<String, String>,
        pending: &[String],
    ) -> Result<(), RunError> {
        let project = self.project;
        let ready: Vec<String> = order::dependencies_in_order(project, target, order)
            .into_iter()
            .filter(|d| {
                !pending.contains(d)
                    && order::dependencies(project, d, order)
                        .iter()
                        .all(|n| !pending.contains(n))
            })
            .collect();
        self.start_each(ready, images)
    }

    /// Starts each of `services` (in dependency order) not yet running, once its own
    /// dependencies meet their conditions.
    fn start_each(
        &mut self,
        services: Vec<String>,
        images: &BTreeMap<String, String>,
    ) -> Result<(), RunError> {
        let project = self.project;
        for dep in services {
            if self.running.contains_key(&dep) {
                continue;
            }
            let svc = &project.services[&dep];
            for (d, cond) in &svc.depends_on {
                self.wait_for(d, *cond)?;
            }
            self.start(svc, &images[&dep])?;
        }
        Ok(())
    }

    pub(super) fn teardown(&mut self) {
        if self.keep {
            // Leave everything; the containers are not removed on drop either.
            for (_, c) in std::mem::take(&mut self.running) {
                std::mem::forget(c);
            }
            return;
        }
        // Removed together: each removal is a round trip to the daemon (and a kill).
        let running = std::mem::take(&mut self.running);
        std::thread::scope(|s| {
            for c in running.values() {
                s.spawn(move || {
                    let _ = c.cleanup();
                });
            }
        });
        // A container verified or traced here may still be being removed in the background
        // (pare_runtime::deferred, while a build runs beside): its network goes once it is.
        // What cannot go (a container still being removed by the Ctrl-C handler) stays
        // listed for that handler.
        for n in std::mem::take(&mut self.networks) {
            if retried(
                || self.docker.remove_network(&n).is_ok(),
                || self.run.interrupted(),
            ) {
                self.run.forget_leftover(&n);
            }
        }
        for v in std::mem::take(&mut self.volumes) {
            if let Some((d, wave)) = &self.deferred {
                d.remove_later(&self.docker, &self.run, v, *wave);
            } else if self.docker.remove_volume(&v).is_ok() {
                self.run.forget_leftover(&v);
            }
        }
    }
}

impl Drop for Instance<'_> {
    fn drop(&mut self) {
        self.teardown();
        self.run.instance_gone();
    }
}

/// Runs `remove` until it succeeds (up to 30 s, while not `stop()`); whether it did.
pub(super) fn retried(remove: impl Fn() -> bool, stop: impl Fn() -> bool) -> bool {
    let t = Instant::now();
    loop {
        if remove() {
            return true;
        }
        if stop() || t.elapsed() > Duration::from_secs(30) {
            return false;
        }
        // Short: at the end of a run, a network waits for the last container's removal.
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Docker's default time one health check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// Waits until `c` meets `cond`. For `service_healthy`, the healthcheck's own command
/// (`check`: argv and the time it may take) also runs in the container between Docker's
/// reports: passing once is what makes Docker call it healthy at its next check, which comes
/// only every `interval` (30 s by default) and first one interval after the start.
fn wait_condition(
    c: &DockerContainer,
    cond: Condition,
    check: Option<(Vec<String>, Duration)>,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    match cond {
        Condition::ServiceStarted => Ok(()),
        Condition::ServiceCompletedSuccessfully => match c.wait(timeout) {
            Ok(Some(e)) if e.code == 0 => Ok(()),
            Ok(Some(e)) => Err(format!(
                "exited with {} (service_completed_successfully)",
                e.code
            )),
            Ok(None) => Err(format!("did not complete within {}s", timeout.as_secs())),
            Err(e) => Err(pare_progress::chain(&e)),
        },
        Condition::ServiceHealthy => loop {
            match c.health() {
                Ok(Health::Healthy) => return Ok(()),
                Ok(Health::Unhealthy) => return Err("became unhealthy".into()),
                Ok(Health::None) => {
                    return Err(
                        "has no healthcheck, but a service waits for it to be healthy".into(),
                    );
                }
                Ok(Health::Starting) => {}
                Err(e) => return Err(pare_progress::chain(&e)),
            }
            if let Ok(Some(e)) = c.wait(Duration::ZERO) {
                return Err(format!("exited with {} before it was healthy", e.code));
            }
            if Instant::now() >= deadline {
                return Err(format!("was not healthy within {}s", timeout.as_secs()));
            }
            let t = Instant::now();
            if let Some((argv, limit)) = &check {
                let limit = (*limit).min(deadline.saturating_duration_since(t));
                if c.exec(argv, limit).is_ok_and(|o| o.exit_code == 0) {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(200).saturating_sub(t.elapsed()));
        },
    }
}

fn last_lines(c: &DockerContainer, n: usize) -> String {
    let (out, err) = c.logs().unwrap_or_default();
    let mut all = String::from_utf8_lossy(&out).into_owned();
    all.push_str(&String::from_utf8_lossy(&err));
    let lines: Vec<&str> = all.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
