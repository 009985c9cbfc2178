//! One module per subcommand; each has `Args` (clap) and `run(Args) -> anyhow::Result<u8>`
//! returning the exit code.
pub mod build;
pub mod compose;
pub mod diff;
pub mod html;
pub mod lint;
pub mod pack;
pub mod pack_verify;
pub mod profile;
pub mod registry_args;
pub mod squash;
pub mod xray;
