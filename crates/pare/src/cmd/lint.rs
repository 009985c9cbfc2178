//! `pare lint`: hadolint-compatible Dockerfile lint (same flags, config, pragmas and JSON).
//! The command line lives in `pare_lint::cli`; this module only adapts it.

pub use pare_lint::cli::Args;

pub fn run(args: Args) -> anyhow::Result<u8> {
    Ok(pare_lint::cli::run(args)?)
}
