//! `pare xray`: layers, waste, efficiency and attack surface of an image. Never writes to disk.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use pare_reference::ImageRef;
use pare_source::{OpenOptions, Platform};
use pare_xray::ci::{self, CiRules};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  pare xray myapp:1.0                               daemon image, human tables
  pare xray docker-archive:app.tar --format json    a `docker save` archive, as JSON
  pare xray oci:./layout:1.0 --platform linux/arm64 one platform of an OCI layout
  pare xray docker://registry.example/app:1.0       straight from a registry (blobs cached)
  pare xray myapp:1.0 --ci --lowest-efficiency 0.95 gate on dive-compatible rules (exit 1 on failure)

CI mode is also on when CI=true. Rules come from --ci-config (default .dive-ci, dive's format),
then flags; a rule set to `disabled` is skipped. Defaults as dive: lowestEfficiency 0.9,
highestWastedBytes disabled, highestUserWastedPercent 0.1.")]
pub struct Args {
    /// Image reference: NAME[:TAG], docker-daemon:, docker-archive:PATH, oci:DIR[:TAG], oci-archive:PATH, docker://REGISTRY/NAME[:TAG].
    pub image: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Platform to pick from a multi-arch image (os/arch[/variant]); default: the host's.
    #[arg(long)]
    pub platform: Option<String>,
    /// Check dive-compatible CI rules and exit 1 if one fails (also on when CI=true).
    #[arg(long)]
    pub ci: bool,
    /// dive-style rules file (`rules:` with lowestEfficiency, highestWastedBytes, highestUserWastedPercent).
    #[arg(long, value_name = "FILE")]
    pub ci_config: Option<PathBuf>,
    /// Fail when efficiency is below this ratio (0-1), or `disabled`.
    #[arg(long, value_name = "RATIO")]
    pub lowest_efficiency: Option<String>,
    /// Fail when wasted bytes exceed this (e.g. 20MB, 1GiB), or `disabled`.
    #[arg(long, value_name = "SIZE")]
    pub highest_wasted_bytes: Option<String>,
    /// Fail when wasted bytes / non-base-layer bytes exceeds this ratio (0-1), or `disabled`.
    #[arg(long, value_name = "RATIO")]
    pub highest_user_wasted_percent: Option<String>,
    /// Entries in the largest/wasted/duplicate lists.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// Skip content hashing (no duplicate detection; a bit faster).
    #[arg(long)]
    pub no_hash: bool,
    /// Never read the daemon's overlay2 storage directly; always export.
    #[arg(long)]
    pub no_direct_storage: bool,
    #[command(flatten)]
    pub registry: super::registry_args::RegistryArgs,
    /// Also write a self-contained HTML report (treemap, layers, largest files, surface).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Explore the layers and files interactively (needs a terminal; ? shows the keys).
    #[arg(long, conflicts_with_all = ["html", "ci", "format"])]
    pub tui: bool,
    /// With --tui: quit after the first screen (benchmarks).
    #[arg(long, hide = true, requires = "tui")]
    pub tui_exit_after_draw: bool,
}

fn rules(args: &Args) -> anyhow::Result<CiRules> {
    let (path, explicit) = match &args.ci_config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(".dive-ci"), false),
    };
    let mut rules = match std::fs::read_to_string(&path) {
        Ok(text) => CiRules::from_dive_ci(&text, &path.display().to_string())?,
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => CiRules::default(),
        Err(e) => return Err(e).with_context(|| format!("{}", path.display())),
    };
    for (key, value) in [
        ("lowestEfficiency", &args.lowest_efficiency),
        ("highestWastedBytes", &args.highest_wasted_bytes),
        (
            "highestUserWastedPercent",
            &args.highest_user_wasted_percent,
        ),
    ] {
        if let Some(v) = value {
            rules
                .set(key, v)
                .map_err(|m| anyhow::anyhow!("--{}: {m}", flag_name(key)))?;
        }
    }
    Ok(rules)
}

fn flag_name(key: &str) -> &'static str {
    match key {
        "lowestEfficiency" => "lowest-efficiency",
        "highestWastedBytes" => "highest-wasted-bytes",
        _ => "highest-user-wasted-percent",
    }
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let ci_mode = args.ci || std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    // Read the rules first: a bad rules file is an error before any work.
    let rules = if ci_mode { Some(rules(&args)?) } else { None };
    let reference = ImageRef::parse(&args.image)?;
    args.registry.install();
    let platform = match &args.platform {
        Some(p) => Some(
            Platform::parse(p)
                .with_context(|| format!("--platform `{p}`: expected os/arch[/variant]"))?,
        ),
        None => None,
    };
    let options = OpenOptions {
        platform,
        no_direct_storage: args.no_direct_storage,
    };
    let source = pare_source::open(&reference, &options)?;
    if args.tui {
        let opts = pare_tui::Options {
            threads: 0,
            exit_after_first_draw: args.tui_exit_after_draw,
        };
        pare_tui::run(source.as_ref(), &opts)?;
        return Ok(0);
    }
    let opts = pare_xray::Options {
        top: args.top,
        hash: !args.no_hash,
        threads: 0,
    };
    let mut report = match &args.html {
        None => pare_xray::analyze(source.as_ref(), &opts)?,
        Some(path) => {
            let (report, fs) = pare_xray::analyze_with_fs(source.as_ref(), &opts)?;
            let tree = pare_report::TreeBuilder::from_fs(&fs).finish();
            drop(fs);
            super::html::write(path, &pare_report::xray(&report, &tree)?)?;
            report
        }
    };
    let mut code = 0;
    if let Some(rules) = &rules {
        let outcomes = ci::evaluate(&report, rules);
        if !ci::passed(&outcomes) {
            code = 1;
        }
        report.ci = Some(outcomes);
    }
    let stdout = std::io::stdout();
    let color = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
    match args.format {
        Format::Json => crate::errors::print_with(|out| {
            pare_xray::render::write_json(&report, &mut *out)?;
            out.write_all(b"\n")
        })?,
        Format::Table => {
            let text = pare_xray::render::table(&report, color, crate::term::width());
            crate::errors::print(&format!("{text}\n"))?;
        }
    }
    Ok(code)
}
