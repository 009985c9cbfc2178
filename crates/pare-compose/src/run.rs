//! Running a project on the Docker daemon (through pare-runtime's one bollard client):
//! per-run networks where service names resolve, fresh volumes, dependencies started in order
//! with their conditions, the targets traced and slimmed by pare-build, then verified with the
//! whole project up again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pare_build::{BuildOptions, BuildReport, GivenRuntime, Progress};
use pare_profile::{ContinueAfter, ImageRun, ProfileOptions, RunOverride, Target};
use pare_reference::ImageRef;
use pare_runtime::{
    Attach, Container, DockerContainer, DockerRuntime, Health, Healthcheck, RunSpec, Runtime,
    RuntimeError,
};
use pare_trace::{ProbeSpec, Profile};
use serde::Serialize;

use crate::model::{Condition, MountSpec, Project, Service};
use crate::{ComposeError, order};

/// What `pare build --compose` / `pare profile --compose` was asked to do.
#[derive(Debug, Clone)]
pub struct ComposeOptions {
    /// Services to slim (or profile); all when empty.
    pub services: Vec<String>,
    /// Probe, sensor and timeout settings shared by every target (`image` is ignored).
    pub profile: ProfileOptions,
    /// Include/exclude flags from the command line, added to each service's `x-pare` ones.
    pub build: BuildOptions,
    /// `ARTIFACTS/SERVICE/…`, `ARTIFACTS/compose.slim.yaml`, `ARTIFACTS/summary.json`.
    pub artifacts: PathBuf,
    /// Keep containers, networks and volumes at the end (debugging).
    pub keep: bool,
    /// Only profile (`pare profile --compose`): no slim image, no verification.
    pub profile_only: bool,
    pub verify: bool,
}

/// Per-service outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceOutcome {
    pub service: String,
    pub image: String,
    /// The slim image's tag (build only).
    pub slim: Option<String>,
    pub report: PathBuf,
    pub source_size: Option<u64>,
    pub slim_size: Option<u64>,
    /// `None` when not verified.
    pub verified: Option<bool>,
    /// Problems found while verifying (probe differences, unhealthy services).
    pub problems: Vec<String>,
    pub seconds: f64,
}

/// The project summary (`summary.json`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub project: String,
    pub file: PathBuf,
    pub services: Vec<ServiceOutcome>,
    /// Dependencies that ran untraced.
    pub dependencies: Vec<String>,
    pub override_file: Option<PathBuf>,
    pub notices: Vec<String>,
    pub trace_seconds: f64,
    pub verify_seconds: f64,
    pub total_seconds: f64,
}

impl Summary {
    /// Whether every verified service passed.
    pub fn ok(&self) -> bool {
        self.services.iter().all(|s| s.verified != Some(false))
    }

    pub fn render(&self) -> String {
        let mut out = format!("project   {} ({})\n", self.project, self.file.display());
        for n in &self.notices {
            out.push_str(&format!("notice    {n}\n"));
        }
        for s in &self.services {
            let size =
                |b: Option<u64>| b.map_or("?".into(), |b| format!("{:.1} MB", b as f64 / 1e6));
            out.push_str(&format!(
                "{} {:<10} {} -> {} ({} -> {}) {:.1}s\n",
                match s.verified {
                    Some(true) => "✓",
                    Some(false) => "✗",
                    None => "·",
                },
                s.service,
                s.image,
                s.slim.as_deref().unwrap_or("(profile only)"),
                size(s.source_size),
                size(s.slim_size),
                s.seconds
            ));
            for p in &s.problems {
                out.push_str(&format!("    {p}\n"));
            }
            out.push_str(&format!("    report {}\n", s.report.display()));
        }
        if !self.dependencies.is_empty() {
            out.push_str(&format!("untraced  {}\n", self.dependencies.join(", ")));
        }
        if let Some(f) = &self.override_file {
            out.push_str(&format!(
                "override  {}  (docker-compose -f {} -f {} up)\n",
                f.display(),
                self.file.display(),
                f.display()
            ));
        }
        out.push_str(&format!(
            "time      {:.1}s (trace+slim {:.1}s, verify {:.1}s)\n",
            self.total_seconds, self.trace_seconds, self.verify_seconds
        ));
        out
    }
}

/// Errors that need the daemon.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    #[error(transparent)]
    Compose(#[from] ComposeError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Build(#[from] pare_build::BuildError),
    #[error(transparent)]
    Profile(#[from] pare_profile::ProfileError),
    #[error(transparent)]
    Source(#[from] pare_source::SourceError),
    #[error(transparent)]
    Reference(#[from] pare_reference::ReferenceError),
    #[error("service {service}: image {image} not found in the daemon (build or load it first)")]
    ImageNotFound { service: String, image: String },
    #[error("service {service}: host port {address} is already taken")]
    PortTaken {
        service: String,
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("dependency {service} {what}; its last log lines:\n{logs}")]
    Dependency {
        service: String,
        what: String,
        logs: String,
    },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{image}")]
    Verify {
        image: String,
        #[source]
        source: Box<pare_verify::VerifyError>,
    },
}

fn file_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |e| RunError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Networks and volumes to remove on Ctrl-C (containers are pare-runtime's).
static LEFTOVERS: Mutex<Vec<(Arc<DockerRuntime>, bool, String)>> = Mutex::new(Vec::new());
/// This run's ID (the `RUN_ID_LABEL` of its containers), for Ctrl-C.
static RUN: Mutex<Option<(Arc<DockerRuntime>, String)>> = Mutex::new(None);
/// Instances not yet torn down.
static LIVE_INSTANCES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// Label naming the compose run a container belongs to.
const RUN_ID_LABEL: &str = "io.pare.compose.run";

fn register_leftover(docker: &Arc<DockerRuntime>, network: bool, name: &str) {
    if let Ok(mut l) = LEFTOVERS.lock() {
        l.push((docker.clone(), network, name.to_string()));
    }
}

fn forget_leftover(name: &str) {
    if let Ok(mut l) = LEFTOVERS.lock() {
        l.retain(|(_, _, n)| n != name);
    }
}

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether Ctrl-C is ending the program (the handler removes the project and exits 130): a
/// run failing meanwhile, its containers gone under it, should wait for that.
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) || pare_build::interrupted()
}

fn remove_leftovers() {
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

/// A runtime that starts every container joined to a project instance.
struct Joined {
    docker: Arc<DockerRuntime>,
    attach: Attach,
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
struct Instance<'a> {
    docker: Arc<DockerRuntime>,
    project: &'a Project,
    /// The whole run's ID (`pareHEX`), shared by its instances.
    run_id: String,
    id: String,
    networks: Vec<String>,
    volumes: BTreeSet<String>,
    running: BTreeMap<String, DockerContainer>,
    keep: bool,
    /// Health-wait limit.
    timeout: Duration,
}

impl<'a> Instance<'a> {
    fn new(
        docker: &Arc<DockerRuntime>,
        project: &'a Project,
        run_id: &str,
        phase: &str,
        keep: bool,
        timeout: Duration,
    ) -> Result<Self, RunError> {
        LIVE_INSTANCES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut me = Instance {
            docker: docker.clone(),
            project,
            run_id: run_id.to_string(),
            id: format!("{run_id}_{phase}"),
            networks: Vec::new(),
            volumes: BTreeSet::new(),
            running: BTreeMap::new(),
            keep,
            timeout,
        };
        let nets: BTreeSet<&str> = project
            .services
            .values()
            .flat_map(|s| s.networks.iter().map(|(n, _)| n.as_str()))
            .collect();
        for n in nets {
            let name = me.scoped(n);
            if !keep {
                register_leftover(docker, true, &name);
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
                        register_leftover(docker, false, &vol);
                    }
                    docker.create_volume(&vol)?;
                    me.volumes.insert(vol);
                }
            }
        }
        Ok(me)
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
    fn attach(&self, svc: &Service, healthcheck: bool) -> Attach {
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
                (RUN_ID_LABEL.into(), self.run_id.clone()),
                ("io.pare.compose.project".into(), self.project.name.clone()),
                ("io.pare.compose.service".into(), svc.name.clone()),
            ],
        }
    }

    /// Starts `svc` untraced from `image` (not waiting for it).
    fn start(&mut self, svc: &Service, image: &str) -> Result<(), RunError> {
        if interrupted() {
            return Err(RunError::Runtime(RuntimeError::Docker {
                message: format!("{}: not started, interrupted", svc.name),
            }));
        }
        let run = image_run(image, svc)?;
        let spec = RunSpec {
            daemon_image: Some(image.to_string()),
            rootfs: None,
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
        self.running.insert(svc.name.clone(), c);
        Ok(())
    }

    /// Waits until the running service `name` meets `cond`.
    fn wait_for(&self, name: &str, cond: Condition) -> Result<(), RunError> {
        let Some(c) = self.running.get(name) else {
            return Ok(());
        };
        wait_condition(c, cond, self.timeout).map_err(|what| RunError::Dependency {
            service: name.to_string(),
            what,
            logs: last_lines(c, 10),
        })
    }

    /// Starts what `target` needs (not yet running) in dependency order, each as soon as its
    /// own dependencies meet their conditions (independent ones start together, as Compose
    /// does), then waits for the conditions `target` puts on its own dependencies.
    fn start_dependencies(
        &mut self,
        target: &str,
        order: &[String],
        images: &BTreeMap<String, String>,
    ) -> Result<(), RunError> {
        let project = self.project;
        for dep in order::dependencies_in_order(project, target, order) {
            if self.running.contains_key(&dep) {
                continue;
            }
            let svc = &project.services[&dep];
            for (d, cond) in &svc.depends_on {
                self.wait_for(d, *cond)?;
            }
            self.start(svc, &images[&dep])?;
        }
        for (d, cond) in &project.services[target].depends_on {
            self.wait_for(d, *cond)?;
        }
        Ok(())
    }

    fn teardown(&mut self) {
        if self.keep {
            // Leave everything; the containers are not removed on drop either.
            for (_, c) in std::mem::take(&mut self.running) {
                std::mem::forget(c);
            }
            return;
        }
        for (_, c) in std::mem::take(&mut self.running) {
            let _ = c.cleanup();
        }
        // What cannot go yet (a container still being removed by the Ctrl-C handler) stays
        // listed for that handler.
        for n in std::mem::take(&mut self.networks) {
            if self.docker.remove_network(&n).is_ok() {
                forget_leftover(&n);
            }
        }
        for v in std::mem::take(&mut self.volumes) {
            if self.docker.remove_volume(&v).is_ok() {
                forget_leftover(&v);
            }
        }
    }
}

impl Drop for Instance<'_> {
    fn drop(&mut self) {
        self.teardown();
        LIVE_INSTANCES.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

fn wait_condition(c: &DockerContainer, cond: Condition, timeout: Duration) -> Result<(), String> {
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
            std::thread::sleep(Duration::from_millis(200));
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

/// What the service changes over its image.
pub fn run_override(svc: &Service) -> RunOverride {
    RunOverride {
        entrypoint: svc.entrypoint.clone(),
        command: svc.command.clone(),
        env: svc.env.clone(),
        user: svc.user.clone(),
        workdir: svc.working_dir.clone(),
        ports: svc.ports(),
    }
}

/// How `image` runs as `svc`.
fn image_run(image: &str, svc: &Service) -> Result<ImageRun, RunError> {
    let src = pare_source::open(
        &ImageRef::DockerDaemon {
            name: image.to_string(),
        },
        &pare_source::OpenOptions::default(),
    )?;
    let mut run = ImageRun::from_config(&src.image().config);
    run_override(svc).apply(&mut run);
    Ok(run)
}

/// The probes for a target: its `x-pare` probes (else a TCP connect per port, or waiting for
/// a job), then its healthcheck as an exec probe. As probe-file YAML.
pub fn probe_file_text(svc: &Service) -> Result<String, ComposeError> {
    use serde_yaml::{Mapping, Value};
    let mut list: Vec<Value> = match &svc.x_pare.probes {
        Some(Value::Sequence(s)) => s.clone(),
        Some(Value::Mapping(m)) => match m.get("probes") {
            Some(Value::Sequence(s)) => s.clone(),
            _ => Vec::new(),
        },
        Some(_) | None => Vec::new(),
    };
    if list.is_empty() {
        for p in svc.ports() {
            let mut m = Mapping::new();
            m.insert("kind".into(), "tcp".into());
            m.insert("port".into(), Value::Number(p.into()));
            list.push(Value::Mapping(m));
        }
    }
    if let Some(argv) = svc.healthcheck.as_ref().and_then(|h| h.argv()) {
        let mut m = Mapping::new();
        m.insert("kind".into(), "exec".into());
        m.insert(
            "argv".into(),
            Value::Sequence(argv.into_iter().map(Value::String).collect()),
        );
        list.push(Value::Mapping(m));
    }
    if list.is_empty() {
        let mut m = Mapping::new();
        m.insert("kind".into(), "job".into());
        list.push(Value::Mapping(m));
    }
    serde_yaml::to_string(&Value::Sequence(list)).map_err(|e| ComposeError::Invalid {
        file: PathBuf::from(format!("services.{}.x-pare.probes", svc.name)),
        message: e.to_string(),
    })
}

/// Every published host port must be free (the project could not come up otherwise).
fn check_host_ports(project: &Project, services: &BTreeSet<String>) -> Result<(), RunError> {
    for name in services {
        for p in &project.services[name].published {
            let Some(port) = p.host_port else { continue };
            let ip = p.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into());
            let address = if ip.contains(':') {
                format!("[{ip}]:{port}")
            } else {
                format!("{ip}:{port}")
            };
            if let Err(source) = std::net::TcpListener::bind(address.as_str()) {
                return Err(RunError::PortTaken {
                    service: name.clone(),
                    address,
                    source,
                });
            }
        }
    }
    Ok(())
}

/// `pare build --compose` (and `pare profile --compose` with `profile_only`).
pub fn run(
    project: &Project,
    opts: &ComposeOptions,
    progress: &(dyn Progress + Sync),
) -> Result<Summary, RunError> {
    let t0 = Instant::now();
    let order = order::start_order(project)?;
    let targets = order::targets(project, &opts.services)?;
    // Targets in start order, so that a slimmed dependency is verified before its users.
    let targets: Vec<String> = order
        .iter()
        .filter(|s| targets.contains(s))
        .cloned()
        .collect();
    let mut involved: BTreeSet<String> = targets.iter().cloned().collect();
    for t in &targets {
        involved.extend(order::dependencies(project, t, &order));
    }
    let docker = Arc::new(DockerRuntime::connect(Duration::from_millis(1500))?);
    docker.remove_stale_networks_and_volumes();
    for name in &involved {
        let image = &project.services[name].image;
        if !docker.image_exists(image)? {
            return Err(RunError::ImageNotFound {
                service: name.clone(),
                image: image.clone(),
            });
        }
    }
    check_host_ports(project, &involved)?;
    let run_id = format!("pare{}", &hex_id());
    if let Ok(mut r) = RUN.lock() {
        *r = Some((docker.clone(), run_id.clone()));
    }
    opts.profile.cancel.on_cancel(remove_leftovers);
    std::fs::create_dir_all(&opts.artifacts).map_err(file_err(&opts.artifacts))?;
    let sensor = pare_profile::locate_sensor(opts.profile.sensor.as_deref())?;
    let originals: BTreeMap<String, String> = project
        .services
        .iter()
        .map(|(n, s)| (n.clone(), s.image.clone()))
        .collect();

    // Trace (and slim) each target in a fresh instance with its dependencies running; the
    // targets at the same time (their instances share nothing; much of a trace is waiting).
    let mut outcomes = Vec::new();
    let mut slim_images = originals.clone();
    let mut reports: BTreeMap<String, (BuildReport, PathBuf)> = BTreeMap::new();
    let ctx = TraceContext {
        docker: &docker,
        project,
        opts,
        order: &order,
        originals: &originals,
        sensor: &sensor,
        run_id: &run_id,
        progress,
    };
    let results: Vec<Result<Traced, RunError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = targets
            .iter()
            .map(|t| {
                let ctx = &ctx;
                scope.spawn(move || ctx.trace(t))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(RunError::File {
                        path: PathBuf::from("trace"),
                        message: "a trace thread panicked".into(),
                    })
                })
            })
            .collect()
    });
    for r in results {
        let traced = r?;
        if let Some(slim) = &traced.outcome.slim {
            slim_images.insert(traced.outcome.service.clone(), slim.clone());
        }
        if let Some(rep) = traced.report {
            reports.insert(traced.outcome.service.clone(), rep);
        }
        outcomes.push(traced.outcome);
    }
    let trace_seconds = t0.elapsed().as_secs_f64();

    // Verify: the project up again with every slim image in place; each target started with
    // its dependencies running, the probes replayed, every started healthcheck passing.
    let t_verify = Instant::now();
    if opts.verify && !opts.profile_only && !targets.is_empty() {
        let mut inst = Instance::new(
            &docker,
            project,
            &run_id,
            "verify",
            opts.keep,
            opts.profile.timeout.max(Duration::from_secs(60)),
        )?;
        for t in &targets {
            let svc = &project.services[t];
            progress.begin(
                "verify",
                &format!("{t} with {}", deps_text(project, t, &order)),
            );
            let tv = Instant::now();
            let result = verify_one(&mut inst, svc, t, &order, &slim_images, &opts.artifacts);
            let (verification, mut problems) = match result {
                Ok(v) => v,
                Err(e) => (None, vec![pare_progress::chain(&e)]),
            };
            let ok = problems.is_empty() && verification.as_ref().is_some_and(|v| v.ok());
            progress.end("verify", tv.elapsed(), if ok { "passed" } else { "failed" });
            if let Some(v) = &verification {
                for p in v.probes.iter().filter(|p| !p.ok) {
                    problems.push(format!(
                        "{}: expected {}, got {}",
                        p.probe, p.expected, p.actual
                    ));
                }
            }
            if let Some((report, path)) = reports.get_mut(t) {
                report.verification = verification;
                let json = serde_json::to_vec_pretty(&*report).map_err(|e| RunError::File {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                std::fs::write(&*path, json).map_err(file_err(path))?;
            }
            if let Some(o) = outcomes.iter_mut().find(|o| &o.service == t) {
                o.verified = Some(ok);
                o.problems = problems;
            }
        }
        // Every service that ran has to be healthy at the end.
        let unhealthy: Vec<String> = inst
            .running
            .iter()
            .filter(|(_, c)| matches!(c.health(), Ok(Health::Unhealthy)))
            .map(|(n, _)| n.clone())
            .collect();
        for n in unhealthy {
            if let Some(o) = outcomes.iter_mut().find(|o| o.service == n) {
                o.verified = Some(false);
                o.problems
                    .push("unhealthy with the slim images running".into());
            }
        }
    }
    let verify_seconds = t_verify.elapsed().as_secs_f64();

    let override_file = if opts.profile_only {
        None
    } else {
        let path = opts.artifacts.join("compose.slim.yaml");
        let text = override_yaml(&outcomes, &opts.artifacts);
        std::fs::write(&path, text).map_err(file_err(&path))?;
        Some(std::fs::canonicalize(&path).unwrap_or(path))
    };
    let dependencies: Vec<String> = involved
        .iter()
        .filter(|n| !targets.contains(n))
        .cloned()
        .collect();
    let summary = Summary {
        project: project.name.clone(),
        file: project.file.clone(),
        services: outcomes,
        dependencies,
        override_file,
        notices: project.notices.clone(),
        trace_seconds,
        verify_seconds,
        total_seconds: t0.elapsed().as_secs_f64(),
    };
    let path = opts.artifacts.join("summary.json");
    let json = serde_json::to_vec_pretty(&summary).map_err(|e| RunError::File {
        path: path.clone(),
        message: e.to_string(),
    })?;
    std::fs::write(&path, json).map_err(file_err(&path))?;
    Ok(summary)
}

/// What every trace thread shares.
struct TraceContext<'a> {
    docker: &'a Arc<DockerRuntime>,
    project: &'a Project,
    opts: &'a ComposeOptions,
    order: &'a [String],
    originals: &'a BTreeMap<String, String>,
    sensor: &'a Path,
    run_id: &'a str,
    progress: &'a (dyn Progress + Sync),
}

/// One traced target: its outcome so far, and its build report with where it is.
struct Traced {
    outcome: ServiceOutcome,
    report: Option<(BuildReport, PathBuf)>,
}

impl TraceContext<'_> {
    /// Traces (and slims, unless only profiling) target `t` in its own instance.
    fn trace(&self, t: &String) -> Result<Traced, RunError> {
        let t_start = Instant::now();
        let svc = &self.project.services[t];
        let dir = self.opts.artifacts.join(t);
        std::fs::create_dir_all(&dir).map_err(file_err(&dir))?;
        let probes = dir.join("probes.yaml");
        std::fs::write(&probes, probe_file_text(svc)?).map_err(file_err(&probes))?;
        let mut inst = Instance::new(
            self.docker,
            self.project,
            self.run_id,
            &format!("trace_{t}"),
            self.opts.keep,
            self.opts.profile.timeout.max(Duration::from_secs(60)),
        )?;
        self.progress.begin(
            "deps",
            &format!("{t}: starting {}", deps_text(self.project, t, self.order)),
        );
        let td = Instant::now();
        inst.start_dependencies(t, self.order, self.originals)?;
        self.progress.end("deps", td.elapsed(), "running");
        let mut popts = self.opts.profile.clone();
        popts.image = svc.image.clone();
        popts.output = dir.clone();
        popts.probe_file = Some(probes);
        popts.run_override = Some(run_override(svc));
        popts.stability_run = false;
        if let Some(c) = &svc.x_pare.continue_after {
            popts.continue_after = c.parse::<ContinueAfter>()?;
        }
        let attach = inst.attach(svc, false);
        let joined = Joined {
            docker: self.docker.clone(),
            attach,
        };
        if self.opts.profile_only {
            let src = pare_source::open(
                &ImageRef::DockerDaemon {
                    name: svc.image.clone(),
                },
                &pare_source::OpenOptions::default(),
            )?;
            let image = src.image().clone();
            drop(src);
            self.progress.begin("profile", t);
            let tp = Instant::now();
            let r = pare_profile::run_profile(
                &image,
                &svc.image,
                Target::Daemon(svc.image.clone()),
                &joined,
                self.sensor,
                &popts,
            );
            self.progress.end(
                "profile",
                tp.elapsed(),
                if r.is_ok() { "done" } else { "failed" },
            );
            let r = r?;
            let failed = r.failed_probes().len();
            let outcome = ServiceOutcome {
                service: t.clone(),
                image: svc.image.clone(),
                slim: None,
                report: r.artifacts.profile_json.clone(),
                source_size: None,
                slim_size: None,
                verified: None,
                problems: if failed > 0 {
                    vec![format!("{failed} probe(s) failed")]
                } else {
                    Vec::new()
                },
                seconds: t_start.elapsed().as_secs_f64(),
            };
            return Ok(Traced {
                outcome,
                report: None,
            });
        }
        let mut bopts = self.opts.build.clone();
        bopts.profile = popts;
        bopts.verify = false;
        bopts.runtime = Some(GivenRuntime(Arc::new(joined)));
        bopts
            .include_paths
            .extend(svc.x_pare.includes.iter().cloned());
        bopts.excludes.extend(svc.x_pare.excludes.iter().cloned());
        // A volume's data cannot reach the slim image: selection reads the image's own
        // files only (the container's mounts are never read).
        bopts.tag = None;
        let built = pare_build::build(&bopts, self.progress)?;
        inst.teardown();
        let slim = built
            .report
            .slim
            .reference
            .strip_prefix("docker-daemon:")
            .unwrap_or(&built.report.slim.reference)
            .to_string();
        let outcome = ServiceOutcome {
            service: t.clone(),
            image: svc.image.clone(),
            slim: Some(slim),
            report: built.report_path.clone(),
            source_size: built.report.source.size,
            slim_size: built.report.slim.size,
            verified: None,
            problems: Vec::new(),
            seconds: t_start.elapsed().as_secs_f64(),
        };
        Ok(Traced {
            outcome,
            report: Some((built.report, built.report_path)),
        })
    }
}

fn deps_text(project: &Project, t: &str, order: &[String]) -> String {
    let d = order::dependencies_in_order(project, t, order);
    if d.is_empty() {
        "no dependencies".into()
    } else {
        d.join(", ")
    }
}

fn verify_one(
    inst: &mut Instance<'_>,
    svc: &Service,
    t: &str,
    order: &[String],
    images: &BTreeMap<String, String>,
    artifacts: &Path,
) -> Result<(Option<pare_verify::Verification>, Vec<String>), RunError> {
    inst.start_dependencies(t, order, images)?;
    let profile_path = artifacts.join(t).join("profile.json");
    let text = std::fs::read_to_string(&profile_path).map_err(file_err(&profile_path))?;
    let profile: Profile = serde_json::from_str(&text).map_err(|e| RunError::File {
        path: profile_path.clone(),
        message: e.to_string(),
    })?;
    let image = &images[t];
    let run = image_run(image, svc)?;
    let mut ports = svc.ports();
    for p in profile
        .probes
        .iter()
        .filter_map(|r| ProbeSpec::port(&r.spec))
    {
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    let spec = RunSpec {
        daemon_image: Some(image.clone()),
        rootfs: None,
        command: run.command(),
        env: run.env.clone(),
        user: run.user.clone(),
        workdir: run.workdir.clone(),
        ports,
        sensor: None,
        hostname: svc.name.clone(),
    };
    let joined = Joined {
        docker: inst.docker.clone(),
        attach: inst.attach(svc, true),
    };
    let vopts = pare_verify::VerifyOptions {
        ready_timeout: inst.timeout,
        ..Default::default()
    };
    let v = pare_verify::verify(&joined, &spec, &profile.probes, &vopts).map_err(|e| {
        RunError::Verify {
            image: t.to_string(),
            source: Box::new(e),
        }
    })?;
    Ok((Some(v), Vec::new()))
}

/// `compose.slim.yaml`: per slimmed service its slim image and the seccomp profile of its
/// trace. Paths are absolute, so the file works from anywhere next to the original.
pub fn override_yaml(outcomes: &[ServiceOutcome], artifacts: &Path) -> String {
    let mut out = String::from(
        "# Written by pare build --compose: the slim images, each with the seccomp profile of\n# its trace. Use: docker-compose -f compose.yaml -f compose.slim.yaml up\nservices:\n",
    );
    let abs = std::fs::canonicalize(artifacts).unwrap_or_else(|_| artifacts.to_path_buf());
    for o in outcomes {
        let Some(slim) = &o.slim else { continue };
        let seccomp = abs.join(&o.service).join("seccomp.json");
        out.push_str(&format!(
            "  {}:\n    image: {}\n    security_opt:\n      - seccomp:{}\n",
            yaml_str(&o.service),
            yaml_str(slim),
            seccomp.display()
        ));
    }
    out
}

fn yaml_str(s: &str) -> String {
    serde_yaml::to_string(s)
        .map(|t| t.trim_end().to_string())
        .unwrap_or_else(|_| format!("{s:?}"))
}

fn hex_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    format!("{:08x}", h.finish() as u32)
}
