//! One libFuzzer binary for every target in `pare_fuzz::targets`; `PARE_FUZZ_TARGET` picks one
//! (`scripts/fuzz` sets it).
#![no_main]

use std::sync::OnceLock;

static TARGET: OnceLock<fn(&[u8])> = OnceLock::new();

libfuzzer_sys::fuzz_target!(
    init: {
        let name = std::env::var("PARE_FUZZ_TARGET").unwrap_or_default();
        let Some(f) = pare_fuzz::target(&name) else {
            let names: Vec<&str> = pare_fuzz::targets::TARGETS.iter().map(|(n, _)| *n).collect();
            eprintln!("PARE_FUZZ_TARGET={name:?}: not a target ({})", names.join(", "));
            std::process::exit(2);
        };
        let _ = TARGET.set(f);
    },
    |data: &[u8]| {
        if let Some(f) = TARGET.get() {
            f(data);
        }
    }
);
