//! pare-lint integration tests in one binary, one module per concern: `rules` (every rule's
//! fixtures in `tests/rules/`), `pragmas`, `formats` (every output format, SARIF validated),
//! `snapshots` (insta), `robustness` (no panics on odd input) and `differential` (against
//! hadolint when installed: `cargo test -p pare-lint --test it -- differential:: --nocapture`).

mod differential;
mod formats;
mod pragmas;
mod robustness;
mod rules;
mod snapshots;
