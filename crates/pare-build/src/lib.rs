//! `pare build`: profile → select → write → verify, with a report.
//!
//! 1. **open** the source image and **extract** its root filesystem into a temp dir (the
//!    selection reads files from there, and the embedded runtime runs from it);
//! 2. **profile** it under the sensor with the probes (`pare-profile`), unless a recorded
//!    `profile.json` is given;
//! 3. **select** the kept files: trace ∪ static closure ∪ includes − excludes (`pare-select`);
//! 4. **write** one deterministic layer and the config (`pare-write`), and load it into the
//!    daemon when the docker runtime is used;
//! 5. **verify**: run the slim image with no tracer and replay the probes (`pare-verify`); on a
//!    difference, a traced re-run names the likely missing files;
//! 6. **analyze** both images (`pare-xray`) for the sizes, file counts and attack surface in
//!    the report.

mod hint;
mod overlay;
mod report;
mod why;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pare_profile::{ProfileOptions, Target};
use pare_reference::ImageRef;
use pare_runtime::{RunSpec, Runtime, SensorSpec};
use pare_select::{ImageFacts, SelectInputs};
use pare_source::OpenOptions;
use pare_trace::Profile;
use pare_write::{ImageMeta, Output};

pub use overlay::private_mount_namespace;
pub use report::{BuildReport, ImageSummary, PhaseTiming, SurfaceItem, render_text};
pub use why::{WhyAnswer, why};

/// Errors of `pare build`. Each names the image, path or phase it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    #[error(transparent)]
    Reference(#[from] pare_reference::ReferenceError),
    #[error(transparent)]
    Source(#[from] pare_source::SourceError),
    #[error("{image}: extracting into {dest}")]
    Extract {
        image: String,
        dest: PathBuf,
        #[source]
        source: Box<pare_layerfs::LayerFsError>,
    },
    #[error("{image}: extracting into {dest}: the extraction thread panicked")]
    ExtractPanicked { image: String, dest: PathBuf },
    #[error(transparent)]
    Profile(#[from] pare_profile::ProfileError),
    #[error(transparent)]
    Select(#[from] pare_select::SelectError),
    #[error(transparent)]
    Write(#[from] pare_write::WriteError),
    #[error(transparent)]
    Runtime(#[from] pare_runtime::RuntimeError),
    #[error(transparent)]
    Verify(#[from] pare_verify::VerifyError),
    #[error("{image}: analysis")]
    Analyze {
        image: String,
        #[source]
        source: Box<pare_xray::XrayError>,
    },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error(
        "{reference}: the docker runtime needs the image in the daemon; use --runtime embedded"
    )]
    NeedsDaemon { reference: String },
    #[error("{path}: no build report here")]
    NoReport { path: PathBuf },
}

fn file_err(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |e| BuildError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// What `pare build` was asked to do.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The probe, runtime and sensor options, shared with `pare profile`. `profile.output` is
    /// the artifacts directory (profile.json, seccomp.json, apparmor.profile, report.json).
    pub profile: ProfileOptions,
    /// Use this recorded `profile.json` instead of tracing again.
    pub reuse_profile: Option<PathBuf>,
    pub include_paths: Vec<String>,
    pub include_bins: Vec<String>,
    pub include_exes: Vec<String>,
    pub include_shell: bool,
    pub excludes: Vec<String>,
    pub preserve_paths: Vec<String>,
    /// Tag for the slim image in the daemon (default `NAME.slim:TAG`).
    pub tag: Option<String>,
    /// `oci:DIR[:TAG]` or `docker-archive:PATH[:REF]`; default: load into the daemon when the
    /// docker runtime is used, else `oci:ARTIFACTS/image:TAG`.
    pub output: Option<String>,
    pub verify: bool,
    /// Timestamp for every entry (else `SOURCE_DATE_EPOCH`, else the source image's
    /// creation time, else 0).
    pub epoch: Option<u64>,
    /// Analyze both images for the report (sizes, attack surface).
    pub analyze: bool,
    /// Run on this runtime instead of detecting one (pare-compose: containers joined to a
    /// project's network).
    pub runtime: Option<GivenRuntime>,
}

/// A runtime handed to [`build`] by the caller.
#[derive(Clone)]
pub struct GivenRuntime(pub pare_runtime::SharedRuntime);

impl std::fmt::Debug for GivenRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GivenRuntime({})", self.0.name())
    }
}

impl BuildOptions {
    pub fn new(profile: ProfileOptions) -> Self {
        BuildOptions {
            profile,
            reuse_profile: None,
            include_paths: Vec::new(),
            include_bins: Vec::new(),
            include_exes: Vec::new(),
            include_shell: false,
            excludes: Vec::new(),
            preserve_paths: Vec::new(),
            tag: None,
            output: None,
            verify: true,
            epoch: None,
            analyze: true,
            runtime: None,
        }
    }
}

/// Progress goes through the reporter the binary hands down (see `pare-progress`).
pub use pare_progress::{Progress, Quiet, Reporter};

/// `NAME.slim:TAG` for a reference: the repository gets `.slim`, the tag is kept.
pub fn default_tag(reference: &ImageRef) -> String {
    let name = match reference {
        ImageRef::DockerDaemon { name } | ImageRef::Registry { name } => name.clone(),
        ImageRef::Oci { dir, tag } | ImageRef::OciArchive { path: dir, tag } => {
            let base = dir
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "image".into());
            format!(
                "{}:{}",
                base.to_ascii_lowercase(),
                tag.clone().unwrap_or_else(|| "latest".into())
            )
        }
        ImageRef::DockerArchive { path, reference } => match reference {
            Some(r) => r.clone(),
            None => {
                let stem = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "image".into());
                format!("{}:latest", stem.to_ascii_lowercase())
            }
        },
    };
    // Digest references (`name@sha256:…`) keep only the name.
    let name = name.split('@').next().unwrap_or(&name).to_string();
    // The tag is after the last ':' that follows the last '/'.
    let slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    match name[slash..].rfind(':') {
        Some(i) => format!("{}.slim{}", &name[..slash + i], &name[slash + i..]),
        None => format!("{name}.slim:latest"),
    }
}

struct Phases<'a> {
    progress: &'a dyn Progress,
    timings: Vec<PhaseTiming>,
}

impl Phases<'_> {
    fn run<T, E>(
        &mut self,
        phase: &str,
        detail: &str,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        self.progress.begin(phase, detail);
        let t = Instant::now();
        let r = f();
        self.finish(phase, t.elapsed(), r.is_ok());
        r
    }

    /// Ends a phase timed elsewhere (e.g. on another thread).
    fn finish(&mut self, phase: &str, elapsed: Duration, ok: bool) {
        self.progress
            .end(phase, elapsed, if ok { "done" } else { "failed" });
        self.timings.push(PhaseTiming {
            phase: phase.to_string(),
            seconds: elapsed.as_secs_f64(),
        });
    }
}

/// The result of a build: the report (also written as `report.json`) and whether verification
/// passed.
pub struct BuildOutcome {
    pub report: BuildReport,
    pub report_path: PathBuf,
}

/// Builds the slim image.
pub fn build(opts: &BuildOptions, progress: &dyn Progress) -> Result<BuildOutcome, BuildError> {
    let t0 = Instant::now();
    let mut phases = Phases {
        progress,
        timings: Vec::new(),
    };
    let reference = ImageRef::parse(&opts.profile.image)?;
    let artifacts = opts.profile.output.clone();
    std::fs::create_dir_all(&artifacts).map_err(file_err(&artifacts))?;

    // Runtime: a daemon image runs on docker when one answers; anything else runs embedded.
    let is_daemon = matches!(reference, ImageRef::DockerDaemon { .. });
    let choice = match (opts.profile.runtime, is_daemon) {
        (Some(r), _) => Some(r),
        (None, false) => Some(pare_runtime::RuntimeKind::Embedded),
        (None, true) => None,
    };
    let needs_runtime = opts.reuse_profile.is_none() || opts.verify;
    let runtime = if needs_runtime {
        Some(match &opts.runtime {
            Some(given) => given.0.clone(),
            None => pare_runtime::detect(choice)?,
        })
    } else {
        None
    };
    let on_docker = runtime.as_ref().is_some_and(|r| r.name() == "docker");
    if on_docker && !is_daemon {
        return Err(BuildError::NeedsDaemon {
            reference: reference.to_string(),
        });
    }

    let open_opts = OpenOptions {
        platform: opts.profile.platform.clone(),
        ..Default::default()
    };
    let source = phases.run("open", &reference.to_string(), || {
        pare_source::open(&reference, &open_opts)
    })?;
    let image = source.image().clone();
    let raw_config = source.raw_config().map(<[u8]>::to_vec);
    // The slim image names its input by content (the source config digest), not by how it
    // was reached: `docker-daemon:app`, `docker-archive:app.tar` and `oci:app` of the same
    // image must give the same slim digest.
    let meta = match &raw_config {
        Some(raw) => {
            let mut m = ImageMeta::from_config_json(raw, &reference.to_string())?;
            m.source_ref = m.source_digest.clone();
            m
        }
        None => ImageMeta {
            config: image.config.clone(),
            healthcheck: None,
            source_digest: image.config_digest.clone(),
            source_ref: image.config_digest.clone(),
        },
    };

    let work = tempfile::Builder::new()
        .prefix("pare-build-")
        .tempdir()
        .map_err(file_err(&std::env::temp_dir()))?;
    let rootfs = work.path().join("rootfs");
    std::fs::create_dir(&rootfs).map_err(file_err(&rootfs))?;
    {
        // Ctrl-C: unmount and remove the work dir (extracted files, the written archive)
        // before the containers and temp dirs go and the program exits.
        let (work_dir, mount_point) = (work.path().to_path_buf(), rootfs.clone());
        opts.profile.cancel.on_cancel(move || {
            INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
            // Half-written outputs beside an `--output` (`.pare-PID-…`).
            pare_write::remove_temp_files();
            let _ = nix::mount::umount2(&mount_point, nix::mount::MntFlags::MNT_DETACH);
            // Extraction may still be writing: move the dir away first so that new paths
            // under it fail, then remove what is there.
            let mut doomed = work_dir.clone().into_os_string();
            doomed.push(".interrupted");
            let doomed = PathBuf::from(doomed);
            let target = if std::fs::rename(&work_dir, &doomed).is_ok() {
                doomed
            } else {
                work_dir.clone()
            };
            for _ in 0..5 {
                if std::fs::remove_dir_all(&target).is_ok() || !target.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
    }
    // A local daemon's overlay2 layers are mounted as one read-only overlay instead of being
    // copied (root only; anything else is extracted). Dropped, so unmounted, before `work`.
    let t_mount = Instant::now();
    let mounted = overlay::mount_layers(source.as_ref(), &rootfs);
    if mounted.is_some() {
        phases
            .progress
            .begin("mount", "read-only overlay of the layer dirs");
        phases.finish("mount", t_mount.elapsed(), true);
    }
    // Extraction: not needed when the layers are mounted.
    let needs_extract = mounted.is_none();
    let extract = || {
        pare_layerfs::extract(source.as_ref(), &rootfs)
            .map(drop)
            .map_err(|e| BuildError::Extract {
                image: reference.to_string(),
                dest: rootfs.clone(),
                source: Box::new(e),
            })
    };
    let extract_detail = pare_xray::render::plural(image.layers.len() as u64, "layer");

    // Profile (or reuse one). A daemon image is traced by the daemon from its own storage,
    // so extraction (which only selection and writing need) runs at the same time.
    let sensor = pare_profile::locate_sensor(opts.profile.sensor.as_deref());
    // No stability run when verifying: verification re-runs the original itself, and only
    // when an answer differs, to tell a volatile answer (a start time) from a broken one.
    // That saves a whole container start and probe replay (0.6–0.9 s) on every build.
    let mut profile_opts = opts.profile.clone();
    if opts.verify {
        profile_opts.stability_run = false;
    }
    let profile: Profile = match &opts.reuse_profile {
        Some(path) => {
            if needs_extract {
                phases.run("extract", &extract_detail, extract)?;
            }
            let text = std::fs::read_to_string(path).map_err(file_err(path))?;
            serde_json::from_str(&text).map_err(|e| BuildError::File {
                path: path.clone(),
                message: e.to_string(),
            })?
        }
        None => {
            let rt = runtime.as_ref().expect("runtime chosen when profiling");
            let sensor = sensor.as_ref().map_err(|e| BuildError::File {
                path: PathBuf::from("pare-sensor"),
                message: e.to_string(),
            })?;
            let target = match &reference {
                ImageRef::DockerDaemon { name } if on_docker => Target::Daemon(name.clone()),
                _ => Target::Rootfs(rootfs.clone()),
            };
            let trace = |target| {
                pare_profile::run_profile(
                    &image,
                    &reference.to_string(),
                    target,
                    rt.as_ref(),
                    sensor,
                    &profile_opts,
                )
            };
            let result = if needs_extract && matches!(target, Target::Daemon(_)) {
                // The daemon traces from its own storage: extract at the same time.
                phases.progress.begin("extract", &extract_detail);
                let (extracted, took, result) = std::thread::scope(|scope| {
                    let handle = scope.spawn(|| {
                        let t = Instant::now();
                        (extract(), t.elapsed())
                    });
                    let result = phases.run("profile", rt.name(), || trace(target));
                    let (extracted, took) = handle.join().unwrap_or_else(|_| {
                        (
                            Err(BuildError::ExtractPanicked {
                                image: reference.to_string(),
                                dest: rootfs.clone(),
                            }),
                            Duration::ZERO,
                        )
                    });
                    (extracted, took, result)
                });
                phases.finish("extract", took, extracted.is_ok());
                extracted?;
                result
            } else {
                if needs_extract {
                    phases.run("extract", &extract_detail, extract)?;
                }
                phases.run("profile", rt.name(), || trace(target))
            };
            result?.profile
        }
    };

    // Select.
    let facts = ImageFacts::from_config(&image.config, meta.healthcheck.as_ref());
    let mut inputs = SelectInputs::from_report(&profile.sensor, facts.clone());
    inputs.include_paths = opts.include_paths.clone();
    inputs.include_bins = opts.include_bins.clone();
    inputs.include_exes = opts.include_exes.clone();
    inputs.include_shell = opts.include_shell;
    inputs.excludes = opts.excludes.clone();
    inputs.preserve_paths = opts.preserve_paths.clone();
    let selection = phases.run("select", "trace ∪ static closure", || {
        pare_select::select(&rootfs, &inputs)
    })?;

    // Write. Timestamps: --epoch, $SOURCE_DATE_EPOCH, else the source's creation time.
    let (epoch, epoch_from) = pare_write::choose_epoch(opts.epoch, &meta)?;
    let tag = opts.tag.clone().unwrap_or_else(|| default_tag(&reference));
    let load_into_daemon = on_docker && opts.output.is_none();
    let output = match &opts.output {
        Some(spec) => Output::parse(spec)?,
        None if load_into_daemon => Output::Daemon { tag: tag.clone() },
        None => Output::Oci {
            dir: artifacts.join("image"),
            tag: Some(
                tag.rsplit_once(':')
                    .map(|(_, t)| t.to_string())
                    .unwrap_or_else(|| "latest".into()),
            ),
        },
    };
    // Into the daemon, the layer goes as a plain tar (same image ID, nothing to compress or
    // inflate on the way); its gzip form is measured on a thread while verification runs.
    let slim = match &output {
        Output::Daemon { tag } => {
            let plain = phases.run("write", "one deterministic layer", || {
                pare_write::write_plain_layer(&rootfs, &selection, Some(epoch), work.path())
            })?;
            Slim::Loaded(phases.run("load", tag, || plain.load(&meta, tag))?)
        }
        _ => Slim::Written(phases.run("write", "one deterministic layer", || {
            pare_write::write_image(&rootfs, &selection, &meta, output.clone(), Some(epoch))
        })?),
    };
    let slim_ref = match &slim {
        Slim::Loaded(l) => ImageRef::DockerDaemon {
            name: l.loaded_as.clone(),
        },
        Slim::Written(w) => match &w.output {
            Output::Oci { dir, tag } => ImageRef::Oci {
                dir: dir.clone(),
                tag: tag.clone(),
            },
            Output::DockerArchive { path, tag } => ImageRef::DockerArchive {
                path: path.clone(),
                reference: tag.clone(),
            },
            Output::Daemon { tag } => ImageRef::DockerDaemon { name: tag.clone() },
            Output::Registry { name } => ImageRef::Registry {
                name: format!("{}@{}", name_without_tag(name), w.manifest_digest),
            },
        },
    };

    // Verify.
    let mut verification = None;
    if opts.verify {
        // A slim image written with --output is not in the daemon: it is verified from its
        // own files with the embedded runtime (the daemon is never changed behind the user's
        // back).
        let verify_on_docker = on_docker && matches!(slim, Slim::Loaded(_));
        let embedded;
        let rt = if on_docker && !verify_on_docker {
            embedded = pare_runtime::detect(Some(pare_runtime::RuntimeKind::Embedded))?;
            &embedded
        } else {
            runtime.as_ref().expect("runtime chosen when verifying")
        };
        let v = phases.run("verify", &slim_ref.to_string(), || {
            let original_daemon = match &reference {
                ImageRef::DockerDaemon { name } if verify_on_docker => Some(name.as_str()),
                _ => None,
            };
            verify_slim(
                &slim_ref,
                rt.as_ref(),
                verify_on_docker,
                &image,
                original_daemon,
                &rootfs,
                &profile,
                sensor.as_ref().ok(),
                work.path(),
                &opts.profile.progress,
                opts.profile.timeout,
            )
        })?;
        let mut v = v;
        if !v.ok() {
            // Files the original opened that a --exclude removed come first: a lookup the
            // slim app never makes (Python's import system lists the directory instead of
            // opening a missing module) cannot show up in the traced re-run.
            let dropped: Vec<String> = profile
                .sensor
                .files
                .iter()
                .filter(|(p, r)| r.found && selection.excluded_by(p).is_some())
                .map(|(p, _)| p.clone())
                .filter(|p| !v.likely_missing.contains(p))
                .collect();
            v.likely_missing.splice(0..0, dropped);
        }
        verification = Some(v);
    }

    // What no probe exercised: files under the app's own directories that nothing asked for.
    let unexercised =
        pare_select::unexercised::unexercised(&rootfs, &profile.sensor, &facts, &selection)?;

    // Analyze both images for the report.
    let (before, after) = if opts.analyze {
        phases.run(
            "analyze",
            "original and slim",
            || -> Result<_, BuildError> {
                let xopts = pare_xray::Options {
                    top: 10,
                    hash: false,
                    threads: 0,
                };
                let before = pare_xray::analyze(source.as_ref(), &xopts).map_err(|e| {
                    BuildError::Analyze {
                        image: reference.to_string(),
                        source: Box::new(e),
                    }
                })?;
                let slim_source = pare_source::open(&slim_ref, &OpenOptions::default())?;
                let after = pare_xray::analyze(slim_source.as_ref(), &xopts).map_err(|e| {
                    BuildError::Analyze {
                        image: slim_ref.to_string(),
                        source: Box::new(e),
                    }
                })?;
                Ok((Some(before), Some(after)))
            },
        )?
    } else {
        (None, None)
    };

    let written = match slim {
        Slim::Written(w) => w,
        Slim::Loaded(l) => phases.run("gzip", "the layer's gzip digest and size", || l.finish())?,
    };

    let report = BuildReport::new(report::Inputs {
        source: reference.to_string(),
        source_config_digest: image.config_digest.clone(),
        slim: slim_ref.to_string(),
        written: &written,
        runtime: runtime
            .as_ref()
            .map(|r| r.name().to_string())
            .unwrap_or_else(|| "none".into()),
        profile: &profile,
        selection,
        verification,
        unexercised,
        before: before.as_ref(),
        after: after.as_ref(),
        source_layers: &image.layers,
        source_is_daemon: is_daemon,
        epoch,
        epoch_from,
        timings: phases.timings,
        total_seconds: t0.elapsed().as_secs_f64(),
        artifacts: artifacts.clone(),
    });
    let report_path = artifacts.join("report.json");
    let json = serde_json::to_vec_pretty(&report).map_err(|e| BuildError::File {
        path: report_path.clone(),
        message: e.to_string(),
    })?;
    let tmp = artifacts.join(".report.json.tmp");
    std::fs::write(&tmp, json).map_err(file_err(&tmp))?;
    std::fs::rename(&tmp, &report_path).map_err(file_err(&report_path))?;
    Ok(BuildOutcome {
        report,
        report_path,
    })
}

/// The slim image: written to files, or loaded into the daemon (uncompressed) with its gzip
/// form still being measured.
enum Slim {
    Written(pare_write::WrittenImage),
    Loaded(pare_write::LoadedImage),
}

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether Ctrl-C is ending the program: the handler is cleaning up and will exit with 130.
/// A build that fails meanwhile (its files vanish under it) should wait for that instead of
/// exiting first with its own error.
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Runs the slim image and replays the recorded probes; when they differ, re-runs it traced to
/// name the likely missing files.
#[allow(clippy::too_many_arguments)]
fn verify_slim(
    slim: &ImageRef,
    runtime: &dyn Runtime,
    on_docker: bool,
    original: &pare_image::ResolvedImage,
    original_daemon: Option<&str>,
    original_rootfs: &Path,
    profile: &Profile,
    sensor: Option<&PathBuf>,
    work: &Path,
    progress: &Reporter,
    ready_timeout: Duration,
) -> Result<pare_verify::Verification, BuildError> {
    let run = pare_profile::ImageRun::from_config(&original.config);
    let ports = run.ports_for(profile.probes.iter().map(|r| &r.spec));
    // The embedded runtime runs from the slim image's own extracted files, so what is verified
    // is exactly what was written.
    let (daemon_image, rootfs) = if on_docker {
        (Some(slim.display_name()), None)
    } else {
        let dir = work.join("slim-rootfs");
        std::fs::create_dir_all(&dir).map_err(file_err(&dir))?;
        let src = pare_source::open(slim, &OpenOptions::default())?;
        pare_layerfs::extract(src.as_ref(), &dir).map_err(|e| BuildError::Extract {
            image: slim.to_string(),
            dest: dir.clone(),
            source: Box::new(e),
        })?;
        (None, Some(dir))
    };
    let spec = RunSpec {
        daemon_image,
        rootfs,
        command: run.command(),
        env: run.env.clone(),
        user: run.user.clone(),
        workdir: run.workdir.clone(),
        ports,
        sensor: None,
        hostname: "pare".into(),
    };
    // A broken slim image must not cost the whole --timeout: 30 s, or five times what the
    // original took to get ready, whichever is longer, within --timeout.
    let took = Duration::from_millis(profile.run.as_ref().map_or(0, |r| r.ready_millis));
    let vopts = pare_verify::VerifyOptions {
        run: profile.run.clone(),
        ready_timeout: ready_timeout.min(Duration::from_secs(30).max(took * 5)),
        probe: pare_profile::pare_probe::ProbeOptions {
            progress: progress.clone(),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut v = pare_verify::verify(runtime, &spec, &profile.probes, &vopts)?;
    if !v.ok() && v.early_exit.is_none() {
        // Answers can change from run to run (a page with its start time): replay against a
        // fresh run of the original and excuse only what differs there too.
        let original_spec = RunSpec {
            daemon_image: original_daemon.map(str::to_string),
            rootfs: if original_daemon.is_some() {
                None
            } else {
                Some(original_rootfs.to_path_buf())
            },
            ..spec.clone()
        };
        if let Ok(again) =
            pare_verify::rerun_original(runtime, &original_spec, &profile.probes, &vopts)
        {
            pare_verify::apply_original_rerun(&mut v, &again);
        }
    }
    if !v.ok() {
        if let Some(binary) = sensor {
            let out = work.join("verify-trace");
            std::fs::create_dir_all(&out).map_err(file_err(&out))?;
            let traced = RunSpec {
                sensor: Some(SensorSpec {
                    binary: binary.clone(),
                    output_dir: out,
                    fanotify: false,
                }),
                ..spec
            };
            match pare_verify::hint_missing(
                runtime,
                &traced,
                &profile.probes,
                &profile.sensor,
                &vopts,
            ) {
                Ok(missing) => v.likely_missing = missing,
                Err(e) => {
                    v.likely_missing = vec![format!(
                        "(traced re-run failed: {})",
                        pare_progress::chain(&e)
                    )]
                }
            }
        }
    }
    Ok(v)
}

/// `REGISTRY/NAME` of `REGISTRY/NAME[:TAG]` (a `:` after the last `/` starts the tag).
fn name_without_tag(name: &str) -> &str {
    match name.rfind(':') {
        Some(i) if i > name.rfind('/').unwrap_or(0) => &name[..i],
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tags() {
        let t = |s: &str| default_tag(&ImageRef::parse(s).unwrap());
        assert_eq!(
            t("pare-example/python-web"),
            "pare-example/python-web.slim:latest"
        );
        assert_eq!(t("nginx:1.25"), "nginx.slim:1.25");
        assert_eq!(t("localhost:5000/app:v2"), "localhost:5000/app.slim:v2");
        assert_eq!(t("localhost:5000/app"), "localhost:5000/app.slim:latest");
        assert_eq!(t("oci:/tmp/Layout:v1"), "layout.slim:v1");
        assert_eq!(t("docker-archive:/tmp/app.tar"), "app.slim:latest");
        assert_eq!(
            t(&format!("app@sha256:{}", "ab".repeat(32))),
            "app.slim:latest"
        );
    }
}
