//! `pare build` and `pare why`.

use std::path::PathBuf;

use pare_build::BuildOptions;

use super::profile::ProbeArgs;
use crate::errors::print;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  pare build pare-example/python-web              trace, slim, load as pare-example/python-web.slim:latest, verify
  pare build app:1 --include-shell --exec 'sh -c true'
  pare build oci:./layout:1.0 --output oci:./slim:1.0     no daemon: embedded runtime, OCI layout out
  pare build app:1 --exclude '/usr/share/doc/**' --tag app:slim
  pare build --compose compose.yaml api db       slim two services of a Compose project, verified with the project running; writes compose.slim.yaml
  pare why /usr/lib/x86_64-linux-gnu/libssl.so.3   why a file was kept (reads pare-build/report.json)

Exit codes: 0 built and verified, 1 verification failed (the image is kept), 2 error.")]
pub struct Args {
    #[command(flatten)]
    pub target: super::compose::Target,
    #[command(flatten)]
    pub probe: ProbeArgs,
    /// Keep paths matching this glob (repeatable), e.g. `/etc/myapp/**`.
    #[arg(long = "include-path", value_name = "GLOB")]
    pub include_path: Vec<String>,
    /// Keep this binary and its shared libraries (repeatable).
    #[arg(long = "include-bin", value_name = "PATH")]
    pub include_bin: Vec<String>,
    /// Keep this executable, looked up in the image's PATH, with its libraries (repeatable).
    #[arg(long = "include-exe", value_name = "NAME")]
    pub include_exe: Vec<String>,
    /// Keep a working /bin/sh.
    #[arg(long = "include-shell")]
    pub include_shell: bool,
    /// Drop paths matching this glob (repeatable), unless preserved.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Never drop paths matching this glob, whatever else says (repeatable).
    #[arg(long = "preserve-path", value_name = "GLOB")]
    pub preserve_path: Vec<String>,
    /// Tag of the slim image in the daemon (default NAME.slim:TAG).
    #[arg(long, value_name = "NAME:TAG")]
    pub tag: Option<String>,
    /// Write the slim image here instead of loading it: oci:DIR[:TAG], oci-archive:PATH[:TAG] or docker-archive:PATH[:NAME:TAG].
    #[arg(long, value_name = "TRANSPORT:PATH")]
    pub output: Option<String>,
    /// Directory for report.json, profile.json, seccomp.json and apparmor.profile.
    #[arg(long, value_name = "DIR", default_value = "pare-build")]
    pub artifacts: PathBuf,
    /// Reuse a recorded profile.json instead of tracing the image again.
    #[arg(long = "from-profile", value_name = "FILE")]
    pub from_profile: Option<PathBuf>,
    /// Skip verification (not recommended).
    #[arg(long = "no-verify")]
    pub no_verify: bool,
    /// Unix time for every timestamp in the image (default $SOURCE_DATE_EPOCH, else the
    /// source image's creation time, so the same input still gives the same digest).
    #[arg(long, value_name = "SECONDS")]
    pub epoch: Option<u64>,
    /// Print report.json to stdout instead of the text summary.
    #[arg(long)]
    pub json: bool,
    /// Also write a self-contained HTML report (original vs slim, verification, timing, why).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Example:
  pare why /usr/lib/x86_64-linux-gnu/libz.so.1 --report pare-build/report.json")]
pub struct WhyArgs {
    /// The path in the slim image.
    pub path: String,
    /// The build's report.json, or the artifacts directory holding it.
    #[arg(long, value_name = "FILE|DIR", default_value = "pare-build")]
    pub report: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    // Still single-threaded here: the overlay mount of the source layers stays private to
    // this process and disappears with it, even on Ctrl-C.
    pare_build::private_mount_namespace();
    let Some(image) = args.target.image() else {
        return super::compose::run(args);
    };
    let progress = crate::progress::reporter("pare build");
    let opts = options(&args, &image, &progress)?;
    let outcome = match pare_build::build(&opts, &progress) {
        Ok(o) => o,
        // Ctrl-C: the handler removes the work dir and containers, then exits with 130.
        Err(_) if crate::signals::cancel().is_cancelled() => loop {
            std::thread::park();
        },
        Err(e) => return Err(e.into()),
    };
    if let Some(path) = &args.html {
        super::html::build(path, &serde_json::to_value(&outcome.report)?, &image)?;
    }
    if args.json {
        print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&outcome.report)?
        ))?;
    } else {
        print(&pare_build::render_text(
            &outcome.report,
            crate::term::width(),
        ))?;
    }
    Ok(match outcome.report.verified() {
        Some(false) => 1,
        _ => 0,
    })
}

/// The build options the flags ask for, for `image`.
pub(super) fn options(
    args: &Args,
    image: &str,
    progress: &pare_build::Reporter,
) -> anyhow::Result<BuildOptions> {
    let mut profile = args.probe.to_options(image, args.artifacts.clone())?;
    profile.progress = progress.clone();
    let mut opts = BuildOptions::new(profile);
    opts.reuse_profile = args.from_profile.clone();
    opts.include_paths = args.include_path.clone();
    opts.include_bins = args.include_bin.clone();
    opts.include_exes = args.include_exe.clone();
    opts.include_shell = args.include_shell;
    opts.excludes = args.exclude.clone();
    opts.preserve_paths = args.preserve_path.clone();
    opts.tag = args.tag.clone();
    opts.output = args.output.clone();
    opts.verify = !args.no_verify;
    opts.epoch = args.epoch;
    Ok(opts)
}

pub fn why(args: WhyArgs) -> anyhow::Result<u8> {
    use std::fmt::Write;
    let a = pare_build::why(&args.report, &args.path)?;
    if args.json {
        print(&format!("{}\n", serde_json::to_string_pretty(&a)?))?;
        return Ok(if a.kept { 0 } else { 1 });
    }
    let mut out = String::new();
    if !a.kept {
        match &a.excluded_by {
            Some(glob) => writeln!(
                out,
                "{} is not in the slim image: --exclude {glob} removed it",
                a.path
            )?,
            None => writeln!(
                out,
                "{} is not in the slim image: nothing traced or needed it",
                a.path
            )?,
        }
        print(&out)?;
        return Ok(1);
    }
    writeln!(out, "{} is kept:", a.path)?;
    for (i, (path, reason)) in a.chain.iter().enumerate() {
        writeln!(out, "{}{path}: {reason}", "  ".repeat(i + 1))?;
    }
    if a.reasons.len() > 1 {
        writeln!(out, "other reasons:")?;
        for r in a.reasons.iter().skip(1) {
            writeln!(out, "  {r}")?;
        }
    }
    print(&out)?;
    Ok(0)
}
