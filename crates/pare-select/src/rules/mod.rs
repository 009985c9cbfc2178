//! The static-closure rules beyond ELF: config, shells, scripts, NSS, certificates, time
//! zones, locales, gconv, Python and Node metadata.
//!
//! Each rule takes the [`KeepSet`] and only the inputs it reads; none knows the engine.

mod config;
mod global;
mod include;
mod node;
mod python;
mod script;

pub use config::image_config;
pub use global::{GlobalDone, Triggers, global};
pub use include::include_glob;
pub use python::Sites;

use crate::keep::KeepSet;

/// Whether a kept file name is a TLS library (or a runtime that embeds one).
pub fn is_tls_library(name: &str) -> bool {
    const PREFIXES: [&str; 8] = [
        "libssl.so",
        "libcrypto.so",
        "libgnutls.so",
        "libnss3.so",
        "libmbedtls.so",
        "libwolfssl.so",
        "libtls.so",
        "libboringssl",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p))
        || (name.starts_with("_ssl.") && name.ends_with(".so"))
        || name == "node"
        || name == "nodejs"
        || name == "libjava.so"
}

/// Rules for one newly kept non-ELF regular file.
pub fn per_file(set: &mut KeepSet, sites: &mut Sites, path: &str) {
    script::shebang(set, path);
    python::python(set, sites, path);
    node::node(set, path);
}
