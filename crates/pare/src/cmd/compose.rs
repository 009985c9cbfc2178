//! `pare build --compose` and `pare profile --compose`: the services of a Compose project,
//! traced with their dependencies running (pare-compose).

use std::path::PathBuf;

use anyhow::Context;
use pare_compose::{ComposeOptions, LoadOptions, Project};

/// What `pare build` and `pare profile` run: an image, or services of a Compose project.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// The image: NAME[:TAG] or docker-daemon:, docker-archive:, oci:, oci-archive: references.
    /// With --compose: the first service (default: every service).
    #[arg(required_unless_present = "compose")]
    pub image: Option<String>,
    /// With --compose: more services.
    #[arg(requires = "compose")]
    pub services: Vec<String>,
    #[command(flatten)]
    pub compose: Box<ComposeArgs>,
}

impl Target {
    /// The image to run, unless this is a Compose run.
    pub fn image(&self) -> Option<String> {
        self.image
            .clone()
            .filter(|_| self.compose.compose.is_none())
    }

    fn services(&self) -> Vec<String> {
        self.image.iter().chain(&self.services).cloned().collect()
    }
}

/// Flags for a Compose project.
#[derive(clap::Args, Debug, Clone)]
pub struct ComposeArgs {
    /// A Compose file: slim (or profile) its services, each traced with its dependencies
    /// running; the positional arguments name the services (default: all of them).
    #[arg(long, value_name = "FILE")]
    pub compose: Option<PathBuf>,
    /// Activate a Compose profile (repeatable; COMPOSE_PROFILES works too).
    #[arg(long = "compose-profile", value_name = "NAME", requires = "compose")]
    pub compose_profiles: Vec<String>,
    /// Keep the project's containers, networks and volumes at the end (for debugging).
    #[arg(long, requires = "compose")]
    pub keep: bool,
}

fn load(c: &ComposeArgs) -> anyhow::Result<Project> {
    let file = c.compose.as_ref().context("--compose FILE is required")?;
    let project = Project::load(
        file,
        &LoadOptions {
            profiles: c.compose_profiles.clone(),
            env: None,
        },
    )?;
    for n in &project.notices {
        eprintln!("pare: notice: {n}");
    }
    Ok(project)
}

/// `pare build --compose FILE [SERVICE…]`.
pub fn run(args: super::build::Args) -> anyhow::Result<u8> {
    // One value for several services would clash: each gets NAME.slim:TAG in the daemon.
    for (set, flag) in [
        (args.tag.is_some(), "--tag"),
        (args.output.is_some(), "--output"),
        (args.from_profile.is_some(), "--from-profile"),
    ] {
        anyhow::ensure!(
            !set,
            "{flag} does not go with --compose (each service's slim image is NAME.slim:TAG)"
        );
    }
    let project = load(&args.target.compose)?;
    let progress = crate::progress::reporter("pare build");
    let build = super::build::options(&args, "compose", &progress)?;
    let opts = ComposeOptions {
        services: args.target.services(),
        profile: build.profile.clone(),
        build,
        artifacts: args.artifacts.clone(),
        keep: args.target.compose.keep,
        profile_only: false,
        verify: !args.no_verify,
    };
    let summary = run_and_show(&project, &opts, &progress, args.json)?;
    Ok(if summary.ok() { 0 } else { 1 })
}

/// `pare profile --compose FILE [SERVICE…]`.
pub fn profile(args: super::profile::Args) -> anyhow::Result<u8> {
    let project = load(&args.target.compose)?;
    let mut profile = args.probe.to_options("compose", args.output.clone())?;
    let progress = crate::progress::reporter("pare profile");
    profile.progress = progress.clone();
    let opts = ComposeOptions {
        services: args.target.services(),
        build: pare_build::BuildOptions::new(profile.clone()),
        profile,
        artifacts: args.output.clone(),
        keep: args.target.compose.keep,
        profile_only: true,
        verify: false,
    };
    let summary = run_and_show(&project, &opts, &progress, args.json)?;
    Ok(if summary.services.iter().all(|s| s.problems.is_empty()) {
        0
    } else {
        1
    })
}

/// Runs the project and prints the summary (JSON or text). On Ctrl-C the handler removes the
/// project and exits 130: a run failing meanwhile waits for that.
fn run_and_show(
    project: &Project,
    opts: &ComposeOptions,
    progress: &pare_build::Reporter,
    json: bool,
) -> anyhow::Result<pare_compose::Summary> {
    let summary = match pare_compose::run::run(project, opts, progress) {
        Ok(s) => s,
        Err(_) if crate::signals::cancel().is_cancelled() => loop {
            std::thread::park();
        },
        Err(e) => return Err(e.into()),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary.render());
    }
    Ok(summary)
}
