//! `pare pack`: a zero-waste image from a prebuilt binary, no Dockerfile.

use std::path::PathBuf;

use pare_pack::PackOptions;

use crate::errors::print;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  pare pack ./server --output oci:out:1 --port 8080
  pare pack ./server --output docker-daemon:server:1 --port 8080 --http-probe 8080/
  pare pack ./server --from docker-daemon:local/debian:bookworm --output docker-archive:server.tar:server:1
  pare pack ./api --tz Europe/Paris --env RUST_LOG=info --include /etc/mime.types --output docker://reg/api:1

The image holds the binary (at /usr/local/bin/NAME), its ELF dependencies and loader, NSS
modules and nsswitch.conf when glibc is linked, CA certificates when a TLS library is, a
minimal /etc/passwd and /etc/group with a non-root user, and /tmp. Same input, same digest.
Exit codes: 0 packed (and answering, with --verify-cmd/--http-probe), 1 it did not answer, 2 error.")]
pub struct Args {
    /// The binary (an ELF executable) on the host.
    pub binary: PathBuf,
    /// Where to write: oci:DIR[:TAG], oci-archive:PATH[:TAG], docker-daemon:NAME:TAG,
    /// docker-archive:PATH[:NAME:TAG]
    /// or docker://REGISTRY/NAME[:TAG].
    #[arg(long, value_name = "REF")]
    pub output: String,
    /// Take the libraries (and --include, --tz) from this image instead of the host.
    #[arg(long, value_name = "IMAGE")]
    pub from: Option<String>,
    /// The user the image runs as, UID[:GID] (named `nonroot` in /etc/passwd).
    #[arg(long, value_name = "UID[:GID]", default_value = "65532")]
    pub user: String,
    /// A port to expose, PORT[/tcp|udp|sctp] (repeatable).
    #[arg(long, value_name = "PORT")]
    pub port: Vec<String>,
    /// An environment variable, KEY=VALUE (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// The entrypoint, as one argument split on whitespace (default the binary).
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// A path to add from the host (or the --from image): a directory whole, an ELF file with
    /// its libraries (repeatable).
    #[arg(long, value_name = "PATH")]
    pub include: Vec<String>,
    /// Add this time zone's data and make it /etc/localtime, e.g. Europe/Paris or UTC.
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// Unix time for every timestamp (default $SOURCE_DATE_EPOCH, else 0).
    #[arg(long, value_name = "SECONDS")]
    pub epoch: Option<u64>,
    #[command(flatten)]
    pub check: super::pack_verify::CheckArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Arguments for the entrypoint (the image's CMD).
    #[arg(last = true)]
    pub args: Vec<String>,
    #[command(flatten)]
    pub registry: super::registry_args::RegistryArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    args.registry.install();
    let report = pare_pack::pack(&PackOptions {
        binary: args.binary.clone(),
        output: args.output.clone(),
        from: args.from.clone(),
        user: Some(args.user.clone()),
        ports: args.port.clone(),
        env: args.env.clone(),
        entrypoint: args
            .entrypoint
            .as_ref()
            .map(|e| e.split_whitespace().map(str::to_string).collect()),
        cmd: args.args.clone(),
        includes: args.include.clone(),
        tz: args.tz.clone(),
        epoch: args.epoch,
        cancel: crate::signals::cancel(),
    })?;
    let answered = super::pack_verify::check(&args.check, &args.output, &report)?;
    if args.json {
        print(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        let files = report.files.iter().filter(|f| !f.ends_with('/')).count();
        let mut out = format!(
            "packed {} from {} into {}: {} paths, {:.1} MB of files, layer {:.1} MB gzip, user {}\n\
             image ID {}  manifest {}\n",
            report.binary,
            report.root,
            report.output,
            files,
            report.bytes as f64 / 1e6,
            report.layer_size as f64 / 1e6,
            report.user,
            report.config_digest,
            report.manifest_digest,
        );
        for w in &report.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        match &answered {
            Some((true, what)) => out.push_str(&format!("verified: {what}\n")),
            Some((false, what)) => out.push_str(&format!("NOT answering: {what}\n")),
            None => {}
        }
        print(&out)?;
    }
    Ok(match answered {
        Some((false, _)) => 1,
        _ => 0,
    })
}
