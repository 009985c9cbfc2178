//! Fuzz target bodies, one file each under `src/targets/` (registered by `build.rs`).
//!
//! The libFuzzer harness in `fuzz/` (built on the stable toolchain by `scripts/fuzz`) calls
//! [`targets::TARGETS`]; `tests/replay.rs` runs every seed in `fuzz/corpus/TARGET/` and every
//! crash input in `fuzz/regressions/TARGET/` through the same bodies in a normal `cargo test`.
//! A body returns normally on any input; a panic, an abort or a hang is a bug in the library.

pub mod tarw;

/// A target's body: takes any bytes, returns normally.
pub type Body = fn(&[u8]);

pub mod targets {
    include!(concat!(env!("OUT_DIR"), "/targets.rs"));
}

/// Errors must be one line (the CLI prints them as `error: …`): a multi-line message from
/// untrusted input is a finding too.
pub fn one_line(e: &dyn std::fmt::Display) {
    let m = e.to_string();
    assert!(!m.contains('\n'), "error message spans lines: {m:?}");
}

/// The body of the target called `name`.
pub fn target(name: &str) -> Option<Body> {
    targets::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
}
