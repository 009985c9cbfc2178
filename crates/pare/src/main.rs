//! The `pare` command: a thin layer over the domain crates. Exit codes: 0 ok, 1 findings or
//! policy failure, 2 error.
// The doc comments of the command-line structs are clap's help texts, where `NAME[:TAG]` is
// syntax, not a rustdoc link.
#![allow(rustdoc::broken_intra_doc_links)]

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod cmd;
mod errors;
mod progress;
mod signals;
mod term;

#[derive(Parser, Debug)]
#[command(
    name = "pare",
    version,
    about = "Make container images production-ready: lint Dockerfiles, xray images, build slim verified images",
    after_help = "Examples:
  pare lint Dockerfile                     lint with hadolint-compatible rules
  pare xray myapp:1.0                      layers, waste and attack surface of a daemon image
  pare xray oci:./layout --format json     the same for an OCI layout, as JSON
  pare profile myapp:1.0 --output prof/    trace the app while probing it
  pare build myapp:1.0                     slim image myapp.slim:1.0, verified against the original
  pare diff myapp:1.0 myapp.slim:1.0       what changed between two images
  pare squash myapp:1.0 --output oci:sq:1  one layer, history kept
  pare pack ./server --output oci:out:1    an image from a binary and its libraries
  pare completions bash > /etc/bash_completion.d/pare

Exit codes: 0 ok, 1 findings or policy failure, 2 error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print no progress, only results and errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Also print what each phase does and waits for.
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    verbose: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Lint Dockerfiles (hadolint-compatible rules, config and pragmas, plus pare's own PA rules).
    Lint(cmd::lint::Args),
    /// Show an image's layers, sizes, wasted bytes, efficiency and attack surface.
    Xray(cmd::xray::Args),
    /// Run an image under the tracer, probe it, and record everything it touches.
    Profile(cmd::profile::Args),
    /// Build a slim image with only what the app uses, and verify it behaves the same.
    Build(Box<cmd::build::Args>),
    /// Explain why a file was kept in a slim image.
    Why(cmd::build::WhyArgs),
    /// Compare two images: files, packages, config, layers and attack surface.
    Diff(cmd::diff::Args),
    /// Squash an image into one layer (or one above its base), config and history kept.
    Squash(cmd::squash::Args),
    /// Build a minimal image from a prebuilt binary and its libraries, no Dockerfile.
    Pack(cmd::pack::Args),
    /// Print shell completions.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// The static sensor that build.rs compiled and embedded (absent when it could not, e.g. on
/// another target, or with PARE_EMBED_SENSOR=0).
#[cfg(pare_embedded_sensor)]
fn register_embedded_sensor() {
    pare_profile::sensor::set_embedded_sensor(pare_profile::sensor::EmbeddedSensor {
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/pare-sensor")),
        sha256: env!("PARE_EMBEDDED_SENSOR_SHA256"),
    });
}
#[cfg(not(pare_embedded_sensor))]
fn register_embedded_sensor() {}

/// Parses the command line; `--version` also says how the sensor is found (computed only
/// when asked, so start-up stays as quick as before).
fn parse_cli() -> Cli {
    // Help wraps to the terminal (or COLUMNS, or 100 when piped), not clap's fixed 100.
    let mut command = Cli::command().term_width(term::width());
    if std::env::args_os().any(|a| a == "--version" || a == "-V") {
        let version = format!(
            "{}\nsensor: {}",
            env!("CARGO_PKG_VERSION"),
            pare_profile::sensor::describe_sensor()
        );
        command = command.version(&*Box::leak(version.into_boxed_str()));
    }
    let matches = command.get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn main() -> ExitCode {
    register_embedded_sensor();
    let cli = parse_cli();
    progress::set_level(match (cli.quiet, cli.verbose) {
        (true, _) => progress::Level::Quiet,
        (_, true) => progress::Level::Verbose,
        _ => progress::Level::Normal,
    });
    // Commands that run containers clean up on Ctrl-C; the others keep the default signals.
    if matches!(
        cli.command,
        Command::Profile(_) | Command::Build(_) | Command::Squash(_) | Command::Pack(_)
    ) {
        signals::install();
    }
    let result = match cli.command {
        Command::Lint(a) => cmd::lint::run(a),
        Command::Xray(a) => cmd::xray::run(a),
        Command::Profile(a) => cmd::profile::run(a),
        Command::Build(a) => cmd::build::run(*a),
        Command::Why(a) => cmd::build::why(a),
        Command::Diff(a) => cmd::diff::run(a),
        Command::Squash(a) => cmd::squash::run(a),
        Command::Pack(a) => cmd::pack::run(a),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "pare", &mut out);
            errors::print(&String::from_utf8_lossy(&out)).map(|()| 0)
        }
    };
    // A Ctrl-C that arrived as the command finished: let its clean-up end the process.
    signals::barrier();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => errors::report(&e),
    }
}
