//! `pare profile`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use pare_profile::{ContinueAfter, ProfileOptions};

/// How to run the image and which probes to drive it with. Shared by `pare profile` and
/// `pare build` (`#[command(flatten)]`).
#[derive(clap::Args, Debug, Clone)]
pub struct ProbeArgs {
    /// Runtime: `docker` (needs a daemon) or `embedded` (no daemon). Default: docker when a
    /// daemon answers and the image is a daemon image, else embedded.
    #[arg(long, value_name = "RUNTIME", value_parser = ["docker", "embedded"])]
    pub runtime: Option<String>,
    /// An HTTP request to make, e.g. `GET:/health` or `POST:/api:8080` (repeatable). Default
    /// without any probe flag: crawl `/` on every exposed HTTP port, connect to other ports,
    /// or wait for a job to finish when nothing is exposed.
    #[arg(long = "http-probe", value_name = "METHOD:PATH[:PORT]")]
    pub http_probe: Vec<String>,
    /// A YAML or JSON file of probes (kind: http|tcp|exec|host-exec|job; see docs/profile-json.md).
    #[arg(long, value_name = "FILE")]
    pub probes: Option<PathBuf>,
    /// A command to run inside the container as a probe (repeatable).
    #[arg(long, value_name = "CMD")]
    pub exec: Vec<String>,
    /// A command to run on the host as a probe; `{host}` and `{port:N}` name the container's
    /// port N (repeatable), e.g. `curl -fsS http://{host}:{port:8080}/`.
    #[arg(long = "host-exec", value_name = "CMD")]
    pub host_exec: Vec<String>,
    /// When to stop the app: `probe` (after the probes), `exit` (when it exits by itself, at
    /// most 10 minutes; `exit:SECONDS` sets the limit), SECONDS (that much longer), or `signal`
    /// (on Ctrl-C or SIGUSR1).
    #[arg(long = "continue-after", value_name = "WHEN", default_value = "probe")]
    pub continue_after: String,
    /// Seconds to wait for the ports to answer, or for a job to finish.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,
    /// Trace with ptrace only (no fanotify, no CAP_SYS_ADMIN).
    #[arg(long = "no-fanotify")]
    pub no_fanotify: bool,
    /// Skip the second, untraced run that finds answers which change between containers
    /// (start time, hostname) so that replays do not compare them.
    #[arg(long = "no-stability-run")]
    pub no_stability_run: bool,
    /// The static pare-sensor binary (default: $PARE_SENSOR, then next to pare).
    #[arg(long, value_name = "PATH")]
    pub sensor: Option<PathBuf>,
    /// Platform to pick from a multi-arch image, as os/arch[/variant].
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub registry: super::registry_args::RegistryArgs,
    /// The image is a job that runs to completion: it may exit before its EXPOSEd ports
    /// answer (without it, that is an error, exit 2).
    #[arg(long)]
    pub job: bool,
    /// An EXPOSEd port that is not meant to answer (repeatable): not waited for, and a refused
    /// probe on it is the expected behaviour (without it, a refused probe fails).
    #[arg(long = "expect-closed", value_name = "PORT")]
    pub expect_closed: Vec<u16>,
    /// Ready when a line of the app's stdout/stderr matches REGEX (instead of its ports).
    #[arg(long = "ready-log", value_name = "REGEX", group = "ready")]
    pub ready_log: Option<String>,
    /// Ready when `GET URL` answers below 400; URL names the container port, e.g.
    /// `http://localhost:8080/health`.
    #[arg(long = "ready-url", value_name = "URL", group = "ready")]
    pub ready_url: Option<String>,
    /// Ready when CMD, run inside the container, exits 0.
    #[arg(long = "ready-cmd", value_name = "CMD", group = "ready")]
    pub ready_cmd: Option<String>,
}

impl ProbeArgs {
    /// Profile options for `image`, writing into `output`.
    pub fn to_options(&self, image: &str, output: PathBuf) -> anyhow::Result<ProfileOptions> {
        self.registry.install();
        let mut o = ProfileOptions::new(image, output);
        o.cancel = crate::signals::cancel();
        o.runtime = self.runtime.as_deref().map(str::parse).transpose()?;
        o.http_probes = self
            .http_probe
            .iter()
            .map(|f| pare_profile::pare_probe::parse_http_flag(f))
            .collect::<Result<_, _>>()?;
        o.probe_file = self.probes.clone();
        o.exec = self.exec.clone();
        o.host_exec = self.host_exec.clone();
        o.continue_after = self.continue_after.parse::<ContinueAfter>()?;
        o.timeout = Duration::from_secs(self.timeout.max(1));
        o.fanotify = !self.no_fanotify;
        o.stability_run = !self.no_stability_run;
        o.sensor = self.sensor.clone();
        o.job = self.job;
        o.expect_closed = self.expect_closed.clone();
        o.ready_log = self.ready_log.clone();
        o.ready_url = self.ready_url.clone();
        o.ready_cmd = self.ready_cmd.clone();
        o.platform = match &self.platform {
            Some(p) => Some(
                pare_source::Platform::parse(p)
                    .with_context(|| format!("--platform {p:?}: expected os/arch[/variant]"))?,
            ),
            None => None,
        };
        Ok(o)
    }
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  pare profile pare-example/python-web                 crawl the web app, write ./pare-profile/
  pare profile redis:7 --output prof/ --exec 'redis-cli ping'
  pare profile oci:./layout:1.0 --runtime embedded     no daemon needed
  pare profile app:1 --http-probe POST:/api:8080 --continue-after 30
  pare profile --compose compose.yaml api         trace the api with its dependencies running

Writes profile.json (files, execs, syscalls, probe answers), seccomp.json and apparmor.profile.
Readiness: a port is ready when its protocol answers (not when it listens); EXPOSEd ports
nothing listens on are reported (\"EXPOSE 80/tcp: nothing listens\") once the app is idle.
Exit codes: 0 ok, 1 a probe failed or did not answer, 2 error (also: the app exited or never
answered before it was ready).")]
pub struct Args {
    #[command(flatten)]
    pub target: super::compose::Target,
    /// Directory for profile.json, seccomp.json and apparmor.profile.
    #[arg(long, short, value_name = "DIR", default_value = "pare-profile")]
    pub output: PathBuf,
    #[command(flatten)]
    pub probe: ProbeArgs,
    /// Print the profile summary as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    use pare_progress::Progress;
    let Some(image) = args.target.image() else {
        return super::compose::profile(args);
    };
    let mut opts = args.probe.to_options(&image, args.output.clone())?;
    let progress = crate::progress::reporter("pare profile");
    opts.progress = progress.clone();
    progress.begin("profile", &image);
    let t = std::time::Instant::now();
    let result = pare_profile::profile(&opts);
    progress.end(
        "profile",
        t.elapsed(),
        if result.is_ok() { "done" } else { "failed" },
    );
    let result = result.with_context(|| format!("profiling {image}"))?;
    let failed = result.failed_probes().len();
    if args.json {
        let a = &result.artifacts;
        let v = serde_json::json!({
            "image": result.profile.image.reference,
            "runtime": result.profile.runtime,
            "files": result.profile.sensor.files.len(),
            "execs": result.profile.sensor.execs.len(),
            "syscalls": result.profile.sensor.syscalls.len(),
            "probes": result.profile.probes.len(),
            "failed_probes": failed,
            "readiness": result.readiness,
            "findings": result.profile.run.as_ref().map(|r| r.findings.clone()).unwrap_or_default(),
            "seconds": result.timings.total.as_secs_f64(),
            "profile_json": a.profile_json,
            "seccomp_json": a.seccomp_json,
            "apparmor_profile": a.apparmor_profile,
            "apparmor_name": a.apparmor_name,
        });
        crate::errors::print(&format!("{}\n", serde_json::to_string_pretty(&v)?))?;
    } else {
        let width = crate::term::width();
        let text: String = result
            .summary()
            .lines()
            .map(|l| pare_xray::fit::wrap(l, width))
            .collect();
        crate::errors::print(&text)?;
    }
    Ok(if failed > 0 { 1 } else { 0 })
}
