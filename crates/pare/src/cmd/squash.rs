//! `pare squash`: the image's merged filesystem as one layer, config and history kept.

use pare_pack::{KeepBase, SquashOptions, SquashReport};
use pare_source::Platform;

use crate::errors::print;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  pare squash pare-example/python-web --output docker-daemon:python-web:squashed
  pare squash app:1 --output oci:./squashed:1                      no daemon needed to write
  pare squash docker://reg/app:1 --output docker://reg/app:1-squashed
  pare squash app:1 --keep-base --output docker-daemon:app:sq      keep the base image's layers (found in the history)
  pare squash app:1 --keep-base 2 --output docker-archive:app.tar:app:sq   keep the bottom 2 layers

Nothing is minified: the squashed image holds exactly the files the original shows, and
saves the bytes lower layers stored for files later layers replaced or deleted (the waste
`pare xray` reports). Same input, same digest. Exit codes: 0 squashed, 2 error.")]
pub struct Args {
    /// The image (any reference pare reads).
    pub image: String,
    /// Where to write: docker-daemon:NAME:TAG, oci:DIR[:TAG], oci-archive:PATH[:TAG],
    /// docker-archive:PATH[:NAME:TAG]
    /// or docker://REGISTRY/NAME[:TAG].
    #[arg(long, value_name = "REF")]
    pub output: String,
    /// Keep the bottom layers as they are and squash only the ones above: a number of
    /// layers, or `auto` (the default when no value is given) for the base image's layers,
    /// found in the history (docs/squash.md).
    #[arg(long = "keep-base", value_name = "N|auto", num_args = 0..=1, default_missing_value = "auto")]
    pub keep_base: Option<KeepBase>,
    /// Unix time for every timestamp (default $SOURCE_DATE_EPOCH, else the image's creation time).
    #[arg(long, value_name = "SECONDS")]
    pub epoch: Option<u64>,
    /// Platform to pick from a multi-arch image (os/arch[/variant]).
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: super::registry_args::RegistryArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    args.registry.install();
    let platform =
        match &args.platform {
            Some(p) => Some(Platform::parse(p).ok_or_else(|| {
                anyhow::anyhow!("bad --platform {p:?}: expected os/arch[/variant]")
            })?),
            None => None,
        };
    let report = pare_pack::squash(&SquashOptions {
        image: args.image.clone(),
        output: args.output.clone(),
        keep_base: args.keep_base.unwrap_or_default(),
        epoch: args.epoch,
        platform,
        cancel: crate::signals::cancel(),
    })?;
    if args.json {
        print(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        print(&render(&report))?;
    }
    Ok(0)
}

fn render(r: &SquashReport) -> String {
    let mb = |b: u64| format!("{:.1} MB", b as f64 / 1e6);
    let kept = if r.kept_base_layers > 0 {
        format!(" on {} kept base layer(s)", r.kept_base_layers)
    } else {
        String::new()
    };
    format!(
        "squashed {} layer(s) of {} into 1{kept}: {} → {}\n\
         files stored: {} → {} (saved {}; xray's wasted bytes: {})\n\
         layer blob: {}, {} whiteout(s)\n\
         image ID {}{}\n",
        r.squashed_layers,
        r.source,
        r.output,
        format_args!("{} layer(s)", r.layers_after),
        mb(r.bytes_before),
        mb(r.bytes_after),
        mb(r.saved_bytes),
        mb(r.wasted_bytes),
        if r.manifest_digest.is_some() {
            format!("{} gzip", mb(r.layer_size))
        } else {
            format!("{} plain tar", mb(r.layer_size))
        },
        r.whiteouts,
        r.config_digest,
        r.manifest_digest
            .as_ref()
            .map(|m| format!("  manifest {m}"))
            .unwrap_or_default(),
    )
}
