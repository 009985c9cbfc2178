//! `pare diff A B`: what changed between two images. Exit 0 same, 1 different, 2 error.

use std::io::IsTerminal;

use anyhow::Context;
use pare_diff::Only;
use pare_reference::ImageRef;
use pare_source::{OpenOptions, Platform};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    /// The self-contained HTML report on stdout.
    Html,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Files,
    Packages,
    Config,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  pare diff myapp:1.0 myapp.slim:1.0                   files, packages, config, layers, surface
  pare diff oci:./a docker-archive:b.tar --format json as JSON (docs/diff-json.md)
  pare diff app:1 app:2 --only packages                only the package changes
  pare diff app:1 app:2 --path '/usr/lib/**'           only files under /usr/lib
  pare diff docker://reg/app:1 docker://reg/app:2     from a registry (--creds, --cache-dir…)

Lines start with + (only in B), - (only in A) or ~ (changed).
Exit codes as diff(1): 0 the images are the same, 1 they differ, 2 error.")]
pub struct Args {
    /// The first image (any reference pare reads).
    pub a: String,
    /// The second image.
    pub b: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Compare only this part.
    #[arg(long, value_enum)]
    pub only: Option<Section>,
    /// Compare only files whose absolute path matches this glob (e.g. '/usr/lib/**').
    #[arg(long, value_name = "GLOB")]
    pub path: Option<String>,
    /// Platform to pick from multi-arch images (os/arch[/variant]); default: the host's.
    #[arg(long)]
    pub platform: Option<String>,
    /// Never read the daemon's overlay2 storage directly; always export.
    #[arg(long)]
    pub no_direct_storage: bool,
    #[command(flatten)]
    pub registry: super::registry_args::RegistryArgs,
    /// Also write a self-contained HTML report (tables, treemap of the changed subtrees).
    #[arg(long, value_name = "FILE")]
    pub html: Option<std::path::PathBuf>,
}

pub(crate) fn open_options(
    platform: Option<&str>,
    no_direct_storage: bool,
) -> anyhow::Result<OpenOptions> {
    let platform = match platform {
        Some(p) => Some(
            Platform::parse(p)
                .with_context(|| format!("--platform `{p}`: expected os/arch[/variant]"))?,
        ),
        None => None,
    };
    Ok(OpenOptions {
        platform,
        no_direct_storage,
    })
}

pub(crate) fn open(
    reference: &str,
    options: &OpenOptions,
) -> anyhow::Result<Box<dyn pare_source::ImageSource>> {
    let r = ImageRef::parse(reference).with_context(|| format!("image `{reference}`"))?;
    pare_source::open(&r, options).with_context(|| format!("image `{reference}`"))
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let options = open_options(args.platform.as_deref(), args.no_direct_storage)?;
    args.registry.install();
    let a = open(&args.a, &options)?;
    let b = open(&args.b, &options)?;
    let opts = pare_diff::Options {
        only: args.only.map(|s| match s {
            Section::Files => Only::Files,
            Section::Packages => Only::Packages,
            Section::Config => Only::Config,
        }),
        path: args.path.clone(),
        threads: 0,
    };
    let diff = pare_diff::diff(a.as_ref(), b.as_ref(), &opts)?;
    let stdout = std::io::stdout();
    let color = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
    if let Some(path) = &args.html {
        super::html::write(path, &pare_report::diff(&diff)?)?;
    }
    let text = match args.format {
        Format::Json => {
            crate::errors::print_with(|out| {
                pare_diff::render::write_json(&diff, &mut *out)?;
                out.write_all(b"\n")
            })?;
            None
        }
        Format::Table => Some(pare_diff::render::table(&diff, color)),
        Format::Html => Some(pare_report::diff(&diff)?),
    };
    if let Some(text) = text {
        crate::errors::print(&format!("{}\n", text.trim_end()))?;
    }
    Ok(if diff.same { 0 } else { 1 })
}
