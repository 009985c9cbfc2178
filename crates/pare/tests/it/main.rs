//! The `pare` binary's command-line tests that need no daemon (a few `#[ignore]`d ones use the
//! test registries), one module per command or concern, in one test binary: one link instead
//! of ten. Run one module with a filter: `cargo test -p pare --test it -- xray_cli::`.
//!
//! The suites that drive dockerd (`build`, `compose`, `examples`, `faults`, `musl_busybox`,
//! `profile_docker`, `verify_rules`, behind the `docker-tests` feature) stay their own binaries:
//! cargo runs binaries one after another, so they never load the daemon at the same time.

#[path = "../common/cli.rs"]
mod cli;
mod compose_cli;
mod diff_cli;
mod errors_cli;
mod install;
mod lint_cli;
mod profile_cli;
mod registry_cli;
mod registry_token_cli;
mod test_cleanup;
mod tui_tmux;
mod width_cli;
mod xray_cli;
