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
//! opened image and any [`Runtime`]; [`profile`] adds opening the reference, choosing the
//! runtime and extracting the root filesystem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use pare_image::{ImageConfiguration, Platform, ResolvedImage};
use pare_probe::{HttpFlag, PortKind, ProbeOptions, Readiness, ReadyPlan};
use pare_reference::ImageRef;
use pare_runtime::{Container, RunSpec, Runtime, SensorSpec};
use pare_trace::{
    AccessKind, AppState, ImageInfo, ProbeRecord, ProbeSpec, Profile, RunRecord, SCHEMA_VERSION,
    SensorReport,
};

pub mod apparmor;
mod hint;
mod ready;
mod run_override;
pub mod seccomp;
pub mod sensor;

use ready::{not_ready, ready_sign};
pub use ready::{replay_ready, unanswered};
pub use run_override::RunOverride;

pub use pare_probe;
pub use pare_runtime;
pub use pare_trace;

/// Errors of `pare profile`. Each names the image, file or port involved.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(transparent)]
    Reference(#[from] pare_reference::ReferenceError),
    #[error(transparent)]
    Source(#[from] pare_source::SourceError),
    #[error("{image}: extracting the root filesystem into {dest}: {message}")]
    Extract {
        image: String,
        dest: PathBuf,
        message: String,
    },
    #[error(transparent)]
    Runtime(#[from] pare_runtime::RuntimeError),
    #[error(transparent)]
    Probe(#[from] pare_probe::ProbeError),
    #[error("{image}: the image has no ENTRYPOINT or CMD, so there is nothing to run")]
    NoCommand { image: String },
    #[error(
        "the docker runtime runs images from the daemon, but {reference} is not a docker-daemon image; use --runtime embedded (or `docker load` it first)"
    )]
    NeedsDaemonImage { reference: String },
    #[error(
        "pare-sensor not found ({looked}); build it with `scripts/build-sensor` and pass --sensor PATH or set PARE_SENSOR"
    )]
    SensorNotFound { looked: String },
    #[error(
        "{path}: the sensor is dynamically linked (it names an ELF interpreter), so it cannot start in images without that libc; use a static build (the one embedded by `cargo install --path crates/pare`, or `scripts/build-sensor`)"
    )]
    SensorNotStatic { path: PathBuf },
    #[error("{path}: not a pare-sensor executable (not a readable ELF file)")]
    SensorNotElf {
        path: PathBuf,
        #[source]
        source: goblin::error::Error,
    },
    #[error("{path}: the sensor is built for {machine}, not for this machine")]
    SensorWrongMachine { path: PathBuf, machine: String },
    #[error(
        "{path}: the sensor cache directory is not a directory of ours; set XDG_CACHE_HOME to a private directory"
    )]
    SensorCacheUnsafe { path: PathBuf },
    #[error("{path}: the sensor wrote no usable report: {message}")]
    SensorReport { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "--continue-after {value:?}: expected probe, exit, exit:SECONDS, signal or a number of seconds"
    )]
    ContinueAfter { value: String },
    #[error("{flag} {value:?}: {message}")]
    ReadyFlag {
        flag: &'static str,
        value: String,
        message: String,
    },
    /// The app exited or never answered before it was ready; `hint` (what to try) is given
    /// by [`ProfileError::hint`].
    #[error("{image}: {how}{log}")]
    NotReady {
        image: String,
        how: String,
        /// The app's last log lines, already formatted.
        log: String,
        hint: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ProfileError + '_ {
    move |source| ProfileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// When to stop the app after the probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContinueAfter {
    /// As soon as the probes are done (default).
    #[default]
    Probe,
    /// When the app exits by itself, but no longer than this (then it is stopped, and the
    /// profile notes it). `exit` alone waits [`EXIT_LIMIT`]; `exit:SECONDS` sets the limit.
    Exit(Duration),
    /// After this many more seconds.
    Seconds(u64),
    /// On Ctrl-C or SIGUSR1 (drive the app by hand meanwhile).
    Signal,
}

/// How long `--continue-after exit` waits for the app by default: 10 minutes.
pub const EXIT_LIMIT: Duration = Duration::from_secs(600);

fn seconds(s: &str) -> Option<u64> {
    s.strip_suffix('s').unwrap_or(s).parse::<u64>().ok()
}

impl FromStr for ContinueAfter {
    type Err = ProfileError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "probe" | "probes" => Ok(ContinueAfter::Probe),
            "exit" => Ok(ContinueAfter::Exit(EXIT_LIMIT)),
            "signal" | "enter" => Ok(ContinueAfter::Signal),
            n => match n.strip_prefix("exit:") {
                Some(limit) => seconds(limit)
                    .filter(|&l| l > 0)
                    .map(|l| ContinueAfter::Exit(Duration::from_secs(l))),
                None => seconds(n).map(ContinueAfter::Seconds),
            }
            .ok_or_else(|| ProfileError::ContinueAfter { value: s.into() }),
        }
    }
}

/// What `pare profile` was asked to do.
#[derive(Debug, Clone)]
pub struct ProfileOptions {
    /// The image reference as typed.
    pub image: String,
    /// Where `profile.json`, `seccomp.json` and `apparmor.profile` go.
    pub output: PathBuf,
    /// `docker`, `embedded`, or `None` to detect.
    pub runtime: Option<String>,
    pub http_probes: Vec<HttpFlag>,
    pub probe_file: Option<PathBuf>,
    /// `--exec` commands (run inside the container).
    pub exec: Vec<String>,
    /// `--host-exec` commands.
    pub host_exec: Vec<String>,
    pub continue_after: ContinueAfter,
    /// Readiness wait and job run limit.
    pub timeout: Duration,
    pub fanotify: bool,
    pub sensor: Option<PathBuf>,
    pub platform: Option<Platform>,
    /// Where progress goes (phases, what is awaited, details); the binary's reporter.
    pub progress: pare_progress::Reporter,
    /// After profiling, run the image once more without the sensor and replay the probes, to
    /// mark answers that change between containers (start time, hostname) as volatile.
    pub stability_run: bool,
    /// A service definition's own command, environment, user, working dir and ports over
    /// the image's config (pare-compose).
    pub run_override: Option<RunOverride>,
    /// The image is a job (`--job`): it may exit before any port answers; it runs to the end.
    pub job: bool,
    /// EXPOSEd ports the user declares not to answer (`--expect-closed`): not waited for, and
    /// a refused probe on them is the expected behaviour.
    pub expect_closed: Vec<u16>,
    /// Ready when a line of the app's output matches (`--ready-log REGEX`).
    pub ready_log: Option<String>,
    /// Ready when `GET URL` answers below 400 (`--ready-url`).
    pub ready_url: Option<String>,
    /// Ready when this command, run inside the container, exits 0 (`--ready-cmd`).
    pub ready_cmd: Option<String>,
    /// The program's cancellation token and cleanup registry: temp dirs are registered in
    /// it, and `--continue-after signal` waits on it. The program cancels it on Ctrl-C.
    pub cancel: pare_runtime::Cancel,
}

impl ProfileOptions {
    pub fn new(image: impl Into<String>, output: impl Into<PathBuf>) -> Self {
        ProfileOptions {
            image: image.into(),
            output: output.into(),
            runtime: None,
            http_probes: Vec::new(),
            probe_file: None,
            exec: Vec::new(),
            host_exec: Vec::new(),
            continue_after: ContinueAfter::Probe,
            timeout: Duration::from_secs(60),
            fanotify: true,
            sensor: None,
            platform: None,
            progress: pare_progress::Reporter::default(),
            stability_run: true,
            run_override: None,
            job: false,
            expect_closed: Vec::new(),
            ready_log: None,
            ready_url: None,
            ready_cmd: None,
            cancel: pare_runtime::Cancel::default(),
        }
    }

    /// A detail (shown with `-v`).
    fn say(&self, msg: &str) {
        pare_progress::Progress::detail(&self.progress, msg);
    }

    /// What the run waits for now (shown live on a terminal).
    fn wait_for(&self, what: &str) {
        pare_progress::Progress::waiting(&self.progress, what);
    }
}

/// Where the artifacts were written.
#[derive(Debug, Clone)]
pub struct Artifacts {
    pub profile_json: PathBuf,
    pub seccomp_json: PathBuf,
    pub apparmor_profile: PathBuf,
    /// The AppArmor profile's name.
    pub apparmor_name: String,
}

/// Phase durations.
#[derive(Debug, Clone, Default)]
pub struct Timings {
    pub prepare: Duration,
    pub start: Duration,
    pub ready: Duration,
    pub probes: Duration,
    pub stop: Duration,
    /// Removing the container and the extracted root filesystem.
    pub cleanup: Duration,
    /// The untraced second run (see `ProfileOptions::stability_run`).
    pub stability: Duration,
    /// Start + readiness of that untraced run, when it waited for ports: set against
    /// `start + ready` of the traced run, the sensor's cost on the app's start-up.
    pub untraced_startup: Option<Duration>,
    pub total: Duration,
}

impl Timings {
    /// Container start until the ports answer, under the sensor.
    pub fn traced_startup(&self) -> Duration {
        self.start + self.ready
    }
}

/// The outcome of a profiling run.
#[derive(Debug, Clone)]
pub struct ProfileResult {
    pub profile: Profile,
    pub artifacts: Artifacts,
    pub timings: Timings,
    /// How the readiness wait ended, for the summary.
    pub readiness: String,
}

impl ProfileResult {
    /// Probes whose own expectation (`expect_status`) failed or that could not run.
    pub fn failed_probes(&self) -> Vec<&ProbeRecord> {
        self.profile
            .probes
            .iter()
            .filter(|r| self.probe_problem(r).is_some())
            .collect()
    }

    /// Why a probe failed: it could not run, its own expectation failed, or it got no answer
    /// on a port not declared closed (see [`unanswered`]).
    pub fn probe_problem(&self, r: &ProbeRecord) -> Option<String> {
        let closed = self
            .profile
            .run
            .as_ref()
            .map(|x| x.expected_closed.as_slice())
            .unwrap_or_default();
        if let Some(why) = unanswered(r, closed) {
            return Some(why);
        }
        // On a port declared closed, a refusal or an error is the expected answer.
        let declared = r.spec.port().is_some_and(|p| closed.contains(&p));
        if let (Some(e), false) = (&r.outcome.error, declared) {
            return Some(e.clone());
        }
        pare_probe::check_expectation(&r.spec, &r.outcome)
            .err()
            .map(|d| d.to_string())
    }

    /// A human summary: counts, executables, probes and artifact paths.
    pub fn summary(&self) -> String {
        let p = &self.profile;
        let s = &p.sensor;
        let count = |k: AccessKind| s.files.values().filter(|f| f.kinds.contains(&k)).count();
        let stat_only = s
            .files
            .values()
            .filter(|f| {
                !f.kinds.is_empty()
                    && f.kinds
                        .iter()
                        .all(|k| matches!(k, AccessKind::Stat | AccessKind::Readlink))
            })
            .count();
        let found = s.files.values().filter(|f| f.found).count();
        let mut out = String::new();
        out.push_str(&format!(
            "image     {} ({})\n",
            p.image.reference,
            short_digest(&p.image.config_digest)
        ));
        out.push_str(&format!(
            "runtime   {}, tracing: ptrace{}, ran `{}` as uid {}\n",
            p.runtime,
            if s.fanotify { " + fanotify" } else { " only" },
            s.command.join(" "),
            s.uid
        ));
        out.push_str(&format!("readiness {}\n", self.readiness));
        if let Some(e) = &s.exit {
            out.push_str(&format!(
                "exit      {}{}\n",
                e.code,
                e.signal
                    .as_deref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default()
            ));
        }
        out.push_str(&format!(
            "files     {} paths ({} present, {} missing): {} opened, {} written, {} created, {} executed, {} stat-only\n",
            s.files.len(),
            found,
            s.files.values().filter(|f| f.missing && !f.found).count(),
            count(AccessKind::Open),
            count(AccessKind::Write),
            count(AccessKind::Create),
            count(AccessKind::Exec),
            stat_only
        ));
        let mut execs: Vec<&str> = s.execs.iter().map(|e| e.path.as_str()).collect();
        execs.sort_unstable();
        execs.dedup();
        out.push_str(&format!(
            "execs     {} ({})\n",
            s.execs.len(),
            execs.join(", ")
        ));
        out.push_str(&format!("syscalls  {} distinct\n", s.syscalls.len()));
        for n in &s.notices {
            out.push_str(&format!("notice    {n}\n"));
        }
        out.push_str(&format!("probes    {}\n", p.probes.len()));
        for r in &p.probes {
            let problem = self.probe_problem(r);
            let bad = problem.is_some();
            out.push_str(&format!(
                "  {} {:<40} {}\n",
                if bad { "✗" } else { "✓" },
                pare_probe::describe(&r.spec),
                if r.outcome.volatile.is_empty() {
                    pare_probe::describe_outcome(&r.outcome)
                } else {
                    format!(
                        "{} (varies: {})",
                        pare_probe::describe_outcome(&r.outcome),
                        r.outcome.volatile.join(", ")
                    )
                }
            ));
            if let Some(why) = problem {
                out.push_str(&format!("      {why}\n"));
            }
        }
        if let Some(run) = &p.run {
            for f in &run.findings {
                out.push_str(&format!("finding   {f}\n"));
            }
            if let Some(state) = &run.after_probes {
                out.push_str(&format!(
                    "after     the probes, the app {}\n",
                    match state {
                        AppState::Running => "was still running".to_string(),
                        AppState::Exited(e) => pare_probe::describe_exit(e),
                    }
                ));
            }
        }
        let t = &self.timings;
        if let Some(plain) = t.untraced_startup {
            let traced = t.traced_startup();
            out.push_str(&format!(
                "start-up  {:.2}s traced, {:.2}s untraced (sensor {:+.2}s)\n",
                traced.as_secs_f64(),
                plain.as_secs_f64(),
                traced.as_secs_f64() - plain.as_secs_f64()
            ));
        }
        out.push_str(&format!(
            "time      {:.1}s (prepare {:.1}s, start {:.1}s, ready {:.1}s, probes {:.1}s, stop {:.1}s, cleanup {:.1}s, stability run {:.1}s)\n",
            t.total.as_secs_f64(),
            t.prepare.as_secs_f64(),
            t.start.as_secs_f64(),
            t.ready.as_secs_f64(),
            t.probes.as_secs_f64(),
            t.stop.as_secs_f64(),
            t.cleanup.as_secs_f64(),
            t.stability.as_secs_f64()
        ));
        let a = &self.artifacts;
        out.push_str(&format!("wrote     {}\n", a.profile_json.display()));
        out.push_str(&format!(
            "          {}  (docker run --security-opt seccomp={})\n",
            a.seccomp_json.display(),
            a.seccomp_json.display()
        ));
        out.push_str(&format!(
            "          {}  (apparmor_parser -r {}; docker run --security-opt apparmor={})\n",
            a.apparmor_profile.display(),
            a.apparmor_profile.display(),
            a.apparmor_name
        ));
        out
    }
}

fn short_digest(d: &str) -> &str {
    let end = d.char_indices().nth(19).map(|(i, _)| i).unwrap_or(d.len());
    &d[..end]
}

/// Finds the static sensor: see [`sensor::find_sensor`].
pub fn locate_sensor(explicit: Option<&Path>) -> Result<PathBuf, ProfileError> {
    sensor::find_sensor(explicit).map(|s| s.path)
}

/// How the image runs, from its config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageRun {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub workdir: String,
    /// As written in the config (`8080/tcp`).
    pub exposed: Vec<String>,
    /// TCP ports, sorted.
    pub tcp_ports: Vec<u16>,
}

impl ImageRun {
    pub fn from_config(cfg: &ImageConfiguration) -> Self {
        let Some(c) = cfg.config() else {
            return ImageRun::default();
        };
        let mut exposed: Vec<String> = c.exposed_ports().clone().unwrap_or_default();
        exposed.sort();
        let mut tcp_ports: Vec<u16> = exposed
            .iter()
            .filter_map(|p| {
                let (n, proto) = p.split_once('/').unwrap_or((p.as_str(), "tcp"));
                if proto.eq_ignore_ascii_case("tcp") {
                    n.trim().parse().ok()
                } else {
                    None
                }
            })
            .collect();
        tcp_ports.sort_unstable();
        tcp_ports.dedup();
        ImageRun {
            entrypoint: c.entrypoint().clone().unwrap_or_default(),
            cmd: c.cmd().clone().unwrap_or_default(),
            env: c.env().clone().unwrap_or_default(),
            user: c.user().clone().unwrap_or_default(),
            workdir: c.working_dir().clone().unwrap_or_default(),
            exposed,
            tcp_ports,
        }
    }

    /// The ports a run must publish: the exposed TCP ports, then any other port a probe uses.
    pub fn ports_for<'a>(&self, probes: impl IntoIterator<Item = &'a ProbeSpec>) -> Vec<u16> {
        let mut ports = self.tcp_ports.clone();
        for port in probes.into_iter().filter_map(ProbeSpec::port) {
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
        ports
    }

    /// ENTRYPOINT + CMD.
    pub fn command(&self) -> Vec<String> {
        self.entrypoint
            .iter()
            .chain(self.cmd.iter())
            .cloned()
            .collect()
    }
}

/// What the runtime starts from.
#[derive(Debug, Clone)]
pub enum Target {
    /// An image the Docker daemon has (name or ID).
    Daemon(String),
    /// An extracted root filesystem.
    Rootfs(PathBuf),
}

/// The probes to run, from the options; `None` when the user gave none (use the defaults).
fn explicit_probes(
    opts: &ProfileOptions,
    run: &ImageRun,
) -> Result<Option<Vec<ProbeSpec>>, ProfileError> {
    let default_port = run.tcp_ports.first().copied();
    let mut specs = Vec::new();
    for f in &opts.http_probes {
        specs.push(f.to_spec(default_port)?);
    }
    if let Some(file) = &opts.probe_file {
        let text = std::fs::read_to_string(file).map_err(io_err(file))?;
        specs.extend(pare_probe::parse_probes(&text, file, default_port)?);
    }
    for c in &opts.exec {
        specs.push(ProbeSpec::Exec {
            argv: pare_probe::exec_argv(c),
        });
    }
    for c in &opts.host_exec {
        specs.push(ProbeSpec::HostExec { command: c.clone() });
    }
    Ok(if specs.is_empty() { None } else { Some(specs) })
}

/// Profiles an image end to end: open, choose the runtime, extract (embedded), run, probe,
/// write the artifacts.
pub fn profile(opts: &ProfileOptions) -> Result<ProfileResult, ProfileError> {
    let t0 = Instant::now();
    let reference = ImageRef::parse(&opts.image)?;
    let sensor = locate_sensor(opts.sensor.as_deref())?;
    if let Some(file) = &opts.probe_file {
        // Fail on a bad probe file before anything is started (ports are checked later,
        // against the image's exposed ports).
        let text = std::fs::read_to_string(file).map_err(io_err(file))?;
        pare_probe::parse_probes(&text, file, Some(0))?;
    }
    let is_daemon = matches!(reference, ImageRef::DockerDaemon { .. });
    // A daemonless reference runs without the daemon unless the user insists.
    let choice = match (&opts.runtime, is_daemon) {
        (Some(r), _) => Some(r.as_str()),
        (None, false) => Some("embedded"),
        (None, true) => None,
    };
    let runtime = pare_runtime::detect(choice)?;
    opts.say(&format!("opening {reference}"));
    let source = pare_source::open(
        &reference,
        &pare_source::OpenOptions {
            platform: opts.platform.clone(),
            ..Default::default()
        },
    )?;
    let image = source.image().clone();
    let mut _rootfs_dir = None;
    let target = match (runtime.name(), &reference) {
        ("docker", ImageRef::DockerDaemon { name }) => Target::Daemon(name.clone()),
        ("docker", _) => {
            return Err(ProfileError::NeedsDaemonImage {
                reference: reference.to_string(),
            });
        }
        _ => {
            let dir = temp_dir(opts, "pare-rootfs-")?;
            let dest = dir.path().join("rootfs");
            std::fs::create_dir(&dest).map_err(io_err(&dest))?;
            opts.say(&format!(
                "extracting {} layers into {}",
                image.layers.len(),
                dest.display()
            ));
            pare_layerfs::extract(source.as_ref(), &dest).map_err(|e| ProfileError::Extract {
                image: reference.to_string(),
                dest: dest.clone(),
                message: e.to_string(),
            })?;
            _rootfs_dir = Some(dir);
            Target::Rootfs(dest)
        }
    };
    drop(source);
    let prepare = t0.elapsed();
    let result = run_profile(
        &image,
        &reference.to_string(),
        target,
        runtime.as_ref(),
        &sensor,
        opts,
    );
    let t_clean = Instant::now();
    drop(_rootfs_dir);
    let mut result = result?;
    result.timings.cleanup += t_clean.elapsed();
    result.timings.prepare = prepare;
    result.timings.total = t0.elapsed();
    Ok(result)
}

/// Removes the container whatever happens.
struct Guard(Box<dyn Container>);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.cleanup();
    }
}

/// A temp dir removed on drop and when the run is cancelled (Ctrl-C).
fn temp_dir(opts: &ProfileOptions, prefix: &str) -> Result<pare_runtime::TempDir, ProfileError> {
    opts.cancel
        .temp_dir(prefix)
        .map_err(io_err(&std::env::temp_dir()))
}

/// Runs an opened image under the sensor with `runtime`, probes it, and writes the artifacts
/// into `opts.output`.
pub fn run_profile(
    image: &ResolvedImage,
    reference: &str,
    target: Target,
    runtime: &dyn Runtime,
    sensor: &Path,
    opts: &ProfileOptions,
) -> Result<ProfileResult, ProfileError> {
    let t0 = Instant::now();
    let mut run = ImageRun::from_config(&image.config);
    if let Some(o) = &opts.run_override {
        o.apply(&mut run);
    }
    let command = run.command();
    if command.is_empty() {
        return Err(ProfileError::NoCommand {
            image: reference.to_string(),
        });
    }
    let explicit = explicit_probes(opts, &run)?;
    let out_dir = temp_dir(opts, "pare-sensor-out-")?;
    let (daemon_image, rootfs) = match target {
        Target::Daemon(n) => (Some(n), None),
        Target::Rootfs(p) => (None, Some(p)),
    };
    let ports = run.ports_for(explicit.iter().flatten());
    let spec = RunSpec {
        daemon_image,
        rootfs,
        command: command.clone(),
        env: run.env.clone(),
        user: run.user.clone(),
        workdir: run.workdir.clone(),
        ports: ports.clone(),
        sensor: Some(SensorSpec {
            binary: sensor.to_path_buf(),
            output_dir: out_dir.path().to_path_buf(),
            fanotify: opts.fanotify,
        }),
        hostname: "pare".into(),
    };
    opts.say(&format!(
        "starting `{}` with the {} runtime",
        command.join(" "),
        runtime.name()
    ));
    // A bad --ready-* flag fails before anything starts.
    let sign = ready_sign(opts)?;
    let container = Guard(runtime.start(&spec)?);
    let c: &dyn Container = container.0.as_ref();
    let mut timings = Timings {
        start: t0.elapsed(),
        ..Default::default()
    };

    // Readiness: the ports the probes need (all exposed ones by default), or the user's sign.
    let t_ready = Instant::now();
    let probe_opts = ProbeOptions {
        job_timeout: opts.timeout,
        progress: opts.progress.clone(),
        ..ProbeOptions::default()
    };
    let job = opts.job
        || explicit
            .iter()
            .flatten()
            .any(|s| matches!(s, ProbeSpec::Job));
    let named: Vec<u16> = explicit
        .iter()
        .flatten()
        .filter_map(ProbeSpec::port)
        .collect();
    let mut wait_ports: Vec<u16> = if named.is_empty() {
        // No port probes (or only exec/host-exec ones): still let a service come up first.
        run.tcp_ports.clone()
    } else {
        named.clone()
    };
    wait_ports.sort_unstable();
    wait_ports.dedup();
    wait_ports.retain(|p| !opts.expect_closed.contains(p));
    if job {
        wait_ports.clear();
    }
    // EXPOSEd ports no probe names may turn out unused; a port a probe names must answer.
    let droppable = run
        .tcp_ports
        .iter()
        .copied()
        .filter(|p| !named.contains(p))
        .collect();
    if !wait_ports.is_empty() || sign.is_some() {
        opts.wait_for(&match &sign {
            Some(_) => "the readiness sign".to_string(),
            None => format!("port {} to answer", pare_probe::port_list(&wait_ports)),
        });
    }
    let activity_file = out_dir.path().join(pare_trace::ACTIVITY_FILE);
    let activity = || {
        let text = std::fs::read_to_string(&activity_file).ok()?;
        let a = pare_trace::SensorActivity::parse(&text)?;
        Some(pare_probe::Activity {
            novelty: a.novelty,
            listens: a.listens,
        })
    };
    let ready = if job && sign.is_none() {
        None
    } else {
        Some(pare_probe::wait_until_ready(
            c,
            &ReadyPlan {
                ports: wait_ports.clone(),
                droppable,
                sign: sign.clone(),
                timeout: opts.timeout,
                activity: Some(&activity),
                probe: probe_opts.clone(),
            },
        )?)
    };
    timings.ready = t_ready.elapsed();
    let mut record = RunRecord {
        readiness: match (&ready, job) {
            (Some(r), _) => r.how.clone(),
            (None, _) => "a job (--job): not waiting for ports".to_string(),
        },
        ready_millis: timings.ready.as_millis() as u64,
        expected_closed: opts.expect_closed.clone(),
        job,
        ready_log: opts.ready_log.clone(),
        ready_url: opts.ready_url.clone(),
        ready_cmd: opts.ready_cmd.clone(),
        ..Default::default()
    };
    if let Some(r) = &ready {
        record.ports = r
            .ports
            .iter()
            .map(|(p, k)| (*p, k.name().to_string()))
            .collect();
        for p in &r.unused {
            record.unused_exposed.push(format!("{p}/tcp"));
            record
                .findings
                .push(format!("EXPOSE {p}/tcp: nothing listens"));
        }
        match &r.outcome {
            Readiness::Exited(e) if !job => {
                return Err(not_ready(c, reference, &r.how, Some(e)));
            }
            Readiness::TimedOut { .. } if r.ports.is_empty() => {
                return Err(not_ready(c, reference, &r.how, None));
            }
            _ => {}
        }
    }

    // Probes.
    let t_probes = Instant::now();
    let mut records = Vec::new();
    let mut exec_traces: Vec<Option<PathBuf>> = Vec::new();
    match explicit {
        Some(specs) => {
            for s in &specs {
                opts.say(&format!("probe {}", pare_probe::describe(s)));
                match s {
                    ProbeSpec::Exec { argv } => {
                        let n = exec_traces.len();
                        let (rec, traced) =
                            traced_exec(c, argv, &run, out_dir.path(), n, &probe_opts);
                        exec_traces.push(traced);
                        records.push(rec);
                    }
                    _ => records.push(pare_probe::run_probe(c, s, &probe_opts)),
                }
            }
        }
        None if run.tcp_ports.is_empty() || job => {
            opts.say(&format!(
                "{}: waiting up to {}s for the job to finish",
                if job { "a job" } else { "no exposed ports" },
                opts.timeout.as_secs()
            ));
            records.push(pare_probe::run_probe(c, &ProbeSpec::Job, &probe_opts));
        }
        None => {
            let known = ready.as_ref().map(|r| &r.ports);
            let unused = ready.as_ref().map(|r| r.unused.clone()).unwrap_or_default();
            for &port in run.tcp_ports.iter().filter(|p| !unused.contains(p)) {
                let kind = known
                    .and_then(|k| k.get(&port).copied())
                    .unwrap_or_else(|| pare_probe::classify_port(c, port, &probe_opts));
                match kind {
                    kind @ (PortKind::Http | PortKind::Https) => {
                        opts.wait_for(&format!("a crawl of port {port}"));
                        records.extend(pare_probe::crawl(
                            c,
                            port,
                            kind == PortKind::Https,
                            &probe_opts,
                        ));
                    }
                    PortKind::Protocol(protocol) => {
                        opts.say(&format!("port {port} speaks {}", protocol.name()));
                        records.push(pare_probe::run_probe(
                            c,
                            &ProbeSpec::Protocol { port, protocol },
                            &probe_opts,
                        ));
                    }
                    PortKind::Tcp | PortKind::Silent | PortKind::Closed => {
                        records.push(pare_probe::run_probe(
                            c,
                            &ProbeSpec::Tcp { port },
                            &probe_opts,
                        ));
                    }
                }
            }
        }
    }
    pare_probe::mark_volatile(c, &mut records, &probe_opts);
    timings.probes = t_probes.elapsed();
    // Whether the app still runs is part of its behaviour: verification compares it.
    // An exit shows a moment after it happened: when a probe got no answer, give it time.
    let settle = if records.iter().any(|r| r.outcome.error.is_some()) {
        Duration::from_secs(2)
    } else {
        Duration::ZERO
    };
    record.after_probes = Some(match c.wait(settle)? {
        Some(e) => AppState::Exited(e),
        None => AppState::Running,
    });

    // Keep running as asked, then stop.
    let mut exit_notes: Vec<String> = Vec::new();
    match opts.continue_after {
        ContinueAfter::Probe => {}
        ContinueAfter::Seconds(n) => {
            opts.wait_for(&format!("{n}s more (--continue-after)"));
            opts.cancel.sleep(Duration::from_secs(n));
        }
        ContinueAfter::Exit(limit) => {
            opts.wait_for(&format!(
                "the app to exit, at most {}s (Ctrl-C aborts)",
                limit.as_secs()
            ));
            let deadline = Instant::now() + limit;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let note = format!(
                        "--continue-after exit: the app was still running after {}s; stopped it",
                        limit.as_secs()
                    );
                    pare_progress::Progress::notice(&opts.progress, &note);
                    exit_notes.push(note);
                    break;
                }
                if c.wait(left.min(Duration::from_secs(1)))?.is_some() {
                    break;
                }
            }
        }
        ContinueAfter::Signal => {
            pare_progress::Progress::notice(
                &opts.progress,
                &format!(
                    "the app is running; drive it now, then press Ctrl-C (or send SIGUSR1 to {}) to stop",
                    std::process::id()
                ),
            );
            opts.wait_for("you to press Ctrl-C or send SIGUSR1");
            opts.cancel
                .wait_proceed(Duration::from_millis(200), |d| Ok(c.wait(d)?.is_some()))
                .map_err(ProfileError::Runtime)?;
        }
    }
    let t_stop = Instant::now();
    let exit = match c.wait(Duration::ZERO)? {
        Some(e) => e,
        None => c.stop(Duration::from_secs(10))?,
    };
    timings.stop = t_stop.elapsed();
    let (_, stderr) = c.logs().unwrap_or_default();
    let t_clean = Instant::now();
    drop(container);
    timings.cleanup = t_clean.elapsed();

    let report_path = out_dir.path().join("sensor.json");
    let mut report = read_report(&report_path, &stderr)?;
    report.notices.append(&mut exit_notes);
    if report.exit.is_none() {
        report.exit = Some(exit);
    }
    for (i, t) in exec_traces.iter().enumerate() {
        match t.as_deref().map(|p| read_report(p, &[])) {
            Some(Ok(r)) => merge_report(&mut report, r, &format!("exec probe {}", i + 1)),
            Some(Err(e)) => report.notices.push(format!("exec probe {}: trace unreadable: {e}", i + 1)),
            None => report.notices.push(format!(
                "exec probe {}: could not run under the sensor; its files are only known to fanotify",
                i + 1
            )),
        }
    }

    if opts.stability_run && !records.is_empty() {
        let t_stab = Instant::now();
        opts.wait_for("a second, untraced run (answers that change between containers)");
        timings.untraced_startup = stability_run(
            runtime,
            &spec,
            &record,
            &mut records,
            &mut report,
            &probe_opts,
            opts.timeout,
        );
        timings.stability = t_stab.elapsed();
    }

    let profile = Profile {
        version: SCHEMA_VERSION,
        image: ImageInfo {
            reference: reference.to_string(),
            config_digest: image.config_digest.clone(),
            entrypoint: run.entrypoint.clone(),
            cmd: run.cmd.clone(),
            user: run.user.clone(),
            workdir: run.workdir.clone(),
            exposed_ports: run.exposed.clone(),
        },
        runtime: runtime.name().to_string(),
        sensor: report,
        probes: records,
        run: Some(record),
    };
    let readiness = profile
        .run
        .as_ref()
        .map(|r| r.readiness.clone())
        .unwrap_or_default();
    let artifacts = write_artifacts(&profile, &run.tcp_ports, &opts.output)?;
    timings.total = t0.elapsed();
    Ok(ProfileResult {
        profile,
        artifacts,
        timings,
        readiness,
    })
}

/// Runs an `--exec` probe under a second sensor (not PID 1: it becomes a subreaper), so that
/// the files the command uses are recorded even without fanotify. Docker's `exec` runs as the
/// image's USER in WORKDIR, so the traced command does too. Returns the record (with the
/// original argv as its spec) and where that sensor's report is, or `None` when the sensor
/// could not run the command (then it ran untraced).
fn traced_exec(
    c: &dyn Container,
    argv: &[String],
    run: &ImageRun,
    host_out: &Path,
    n: usize,
    opts: &ProbeOptions,
) -> (ProbeRecord, Option<PathBuf>) {
    let sub = format!("exec-{n}");
    let wrapped = pare_runtime::sensor_command(
        &format!("{}/{sub}", pare_runtime::OUTPUT_DIR),
        &run.user,
        &run.workdir,
        false,
        &run.env,
        argv,
    );
    let original = ProbeSpec::Exec {
        argv: argv.to_vec(),
    };
    let mut rec = pare_probe::run_probe(c, &ProbeSpec::Exec { argv: wrapped }, opts);
    rec.spec = original.clone();
    let report = host_out.join(&sub).join("sensor.json");
    if report.is_file() {
        (rec, Some(report))
    } else {
        (pare_probe::run_probe(c, &original, opts), None)
    }
}

/// Starts the image again without the sensor, replays the probes and marks what differs
/// (bodies, kept headers) as volatile. Problems only add a notice: the profile stands.
/// Returns how long that container took from start until its ports answered (when it
/// waited for ports).
fn stability_run(
    runtime: &dyn Runtime,
    spec: &RunSpec,
    record: &RunRecord,
    records: &mut [ProbeRecord],
    report: &mut SensorReport,
    opts: &ProbeOptions,
    timeout: Duration,
) -> Option<Duration> {
    let plain = RunSpec {
        sensor: None,
        ..spec.clone()
    };
    let t_start = Instant::now();
    let container = match runtime.start(&plain) {
        Ok(c) => Guard(c),
        Err(e) => {
            report.notices.push(format!("stability run skipped: {e}"));
            return None;
        }
    };
    let c: &dyn Container = container.0.as_ref();
    let mut startup = None;
    match replay_ready(c, Some(record), &[], timeout, opts) {
        Ok(r) if r.outcome == Readiness::Ready => {
            if !r.ports.is_empty() {
                startup = Some(t_start.elapsed());
            }
        }
        other => {
            report.notices.push(format!(
                "stability run skipped: the second, untraced container did not get ready ({})",
                match other {
                    Ok(r) => r.how,
                    Err(e) => e.to_string(),
                }
            ));
            return None;
        }
    }
    let again: Vec<_> = records
        .iter()
        .map(|r| pare_probe::run_probe(c, &r.spec, opts).outcome)
        .collect();
    let before: Vec<usize> = records.iter().map(|r| r.outcome.volatile.len()).collect();
    pare_probe::mark_volatile_across(records, &again);
    let changed: Vec<String> = records
        .iter()
        .zip(before)
        .filter(|(r, n)| r.outcome.volatile.len() > *n)
        .map(|(r, _)| pare_probe::describe(&r.spec))
        .collect();
    if !changed.is_empty() {
        report.notices.push(format!(
            "answers that differ between containers (not compared on replay): {}",
            changed.join(", ")
        ));
    }
    // No graceful stop: nothing is recorded from this container; cleanup kills it.
    drop(container);
    startup
}

/// Adds another sensor report (of an exec probe) to the main one.
fn merge_report(into: &mut SensorReport, from: SensorReport, what: &str) {
    for (path, f) in from.files {
        let e = into.files.entry(path).or_default();
        e.kinds.extend(f.kinds);
        e.processes.extend(f.processes);
        e.syscalls.extend(f.syscalls);
        e.found |= f.found;
        e.missing |= f.missing;
        if e.symlink.is_none() {
            e.symlink = f.symlink;
        }
    }
    into.execs.extend(from.execs);
    into.syscalls.extend(from.syscalls);
    into.notices
        .extend(from.notices.into_iter().map(|n| format!("{what}: {n}")));
}

fn read_report(path: &Path, stderr: &[u8]) -> Result<SensorReport, ProfileError> {
    let tail = || {
        let text = String::from_utf8_lossy(stderr);
        let lines: Vec<&str> = text.lines().rev().take(8).collect();
        if lines.is_empty() {
            String::new()
        } else {
            format!(
                "; container stderr ends with:\n  {}",
                lines.into_iter().rev().collect::<Vec<_>>().join("\n  ")
            )
        }
    };
    let text = std::fs::read(path).map_err(|e| ProfileError::SensorReport {
        path: path.into(),
        message: format!("{e}{}", tail()),
    })?;
    serde_json::from_slice(&text).map_err(|e| ProfileError::SensorReport {
        path: path.into(),
        message: format!("{e}{}", tail()),
    })
}

/// Writes `profile.json`, `seccomp.json` and `apparmor.profile` into `dir` (created if needed).
pub fn write_artifacts(
    profile: &Profile,
    ports: &[u16],
    dir: &Path,
) -> Result<Artifacts, ProfileError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let write = |name: &str, data: &[u8]| -> Result<PathBuf, ProfileError> {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, data).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
        Ok(path)
    };
    let mut json = serde_json::to_vec_pretty(profile).expect("profile serializes");
    json.push(b'\n');
    let profile_json = write("profile.json", &json)?;
    let mut sj = seccomp::seccomp_json(&profile.sensor.syscalls).into_bytes();
    sj.push(b'\n');
    let seccomp_json = write("seccomp.json", &sj)?;
    let apparmor_name = apparmor::profile_name(&profile.image.reference);
    let aa = apparmor::apparmor_profile(
        &apparmor_name,
        &profile.image.reference,
        &profile.sensor,
        ports,
    );
    let apparmor_profile = write("apparmor.profile", aa.as_bytes())?;
    Ok(Artifacts {
        profile_json,
        seccomp_json,
        apparmor_profile,
        apparmor_name,
    })
}

/// Reads a `profile.json`.
pub fn read_profile(path: &Path) -> Result<Profile, ProfileError> {
    let text = std::fs::read(path).map_err(io_err(path))?;
    serde_json::from_slice(&text).map_err(|e| ProfileError::SensorReport {
        path: path.into(),
        message: e.to_string(),
    })
}

/// Files per access kind, for reports.
pub fn kind_counts(report: &SensorReport) -> BTreeMap<AccessKind, usize> {
    let mut m = BTreeMap::new();
    for f in report.files.values() {
        for k in &f.kinds {
            *m.entry(*k).or_insert(0) += 1;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_after_values() {
        assert_eq!(
            "probe".parse::<ContinueAfter>().unwrap(),
            ContinueAfter::Probe
        );
        assert_eq!(
            "exit".parse::<ContinueAfter>().unwrap(),
            ContinueAfter::Exit(EXIT_LIMIT)
        );
        assert_eq!(
            "exit:90".parse::<ContinueAfter>().unwrap(),
            ContinueAfter::Exit(Duration::from_secs(90))
        );
        assert_eq!(
            "Exit:5s".parse::<ContinueAfter>().unwrap(),
            ContinueAfter::Exit(Duration::from_secs(5))
        );
        assert!("exit:0".parse::<ContinueAfter>().is_err());
        assert!("exit:soon".parse::<ContinueAfter>().is_err());
        assert_eq!(
            "SIGNAL".parse::<ContinueAfter>().unwrap(),
            ContinueAfter::Signal
        );
        assert_eq!(
            "30".parse::<ContinueAfter>().unwrap(),
            ContinueAfter::Seconds(30)
        );
        assert_eq!(
            "5s".parse::<ContinueAfter>().unwrap(),
            ContinueAfter::Seconds(5)
        );
        assert!("later".parse::<ContinueAfter>().is_err());
    }

    #[test]
    fn image_run_from_config() {
        let cfg: ImageConfiguration = serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},
            "config":{"Entrypoint":["/bin/sh","-c"],"Cmd":["exec app"],"Env":["A=1"],"User":"app","WorkingDir":"/srv",
            "ExposedPorts":{"8080/tcp":{},"53/udp":{},"443/tcp":{}}}}"#,
        )
        .unwrap();
        let r = ImageRun::from_config(&cfg);
        assert_eq!(r.command(), vec!["/bin/sh", "-c", "exec app"]);
        assert_eq!(r.tcp_ports, vec![443, 8080]);
        assert_eq!((r.user.as_str(), r.workdir.as_str()), ("app", "/srv"));
        assert_eq!(r.exposed.len(), 3);
        let probes = [
            ProbeSpec::Tcp { port: 8080 },
            ProbeSpec::Tcp { port: 9000 },
            ProbeSpec::Job,
        ];
        assert_eq!(r.ports_for(&probes), vec![443, 8080, 9000]);
    }

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
