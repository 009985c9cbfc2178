//! Builds the static `pare-sensor` and embeds it in `pare`, so that `cargo install --path
//! crates/pare` gives a `pare` that needs nothing beside it.
//!
//! The sensor runs as PID 1 inside images that may have no glibc at all (musl/busybox, distroless,
//! `FROM scratch`), so it must be statically linked: it is built with `-C
//! target-feature=+crt-static` for `x86_64-unknown-linux-gnu` by a nested `cargo build` in its
//! own target directory (a sibling of the outer one, `<target>/pare-sensor-embed`, so that the
//! debug, test and release builds of `pare` share one sensor build; the outer cargo's lock on
//! its own build directory is never waited for). The nested build is of `pare-sensor` alone,
//! which does not depend on `pare`, and `PARE_SENSOR_EMBED_NESTED` stops any recursion.
//!
//! Environment:
//! - `PARE_EMBED_SENSOR=0` skips the embedding (pare then looks for `$PARE_SENSOR` or a
//!   `pare-sensor` beside itself at run time);
//! - `PARE_SENSOR_EMBED=PATH` embeds that (already built, static) sensor instead of building one.
//!
//! On other targets than x86_64 Linux nothing is embedded (see docs/install.md).

use std::path::{Path, PathBuf};
use std::process::Command;

const SENSOR_TARGET: &str = "x86_64-unknown-linux-gnu";

fn main() {
    println!("cargo:rustc-check-cfg=cfg(pare_embedded_sensor)");
    println!("cargo:rerun-if-env-changed=PARE_EMBED_SENSOR");
    println!("cargo:rerun-if-env-changed=PARE_SENSOR_EMBED");
    let manifest = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let workspace = manifest
        .parent()
        .and_then(Path::parent)
        .expect("crates/pare sits two levels under the workspace root")
        .to_path_buf();
    let out_dir = PathBuf::from(env("OUT_DIR"));
    let target = env("TARGET");

    if std::env::var_os("PARE_SENSOR_EMBED_NESTED").is_some()
        || std::env::var("PARE_EMBED_SENSOR").is_ok_and(|v| v == "0")
    {
        return;
    }
    if target != SENSOR_TARGET {
        println!(
            "cargo:warning=no sensor embedded: the static sensor is built for {SENSOR_TARGET} only, not {target} (see docs/install.md)"
        );
        return;
    }
    let sensor = match std::env::var_os("PARE_SENSOR_EMBED").filter(|v| !v.is_empty()) {
        Some(p) => {
            let p = PathBuf::from(p);
            println!("cargo:rerun-if-changed={}", p.display());
            p
        }
        None => build_sensor(&workspace, &out_dir),
    };
    let bytes = std::fs::read(&sensor)
        .unwrap_or_else(|e| panic!("reading the sensor {}: {e}", sensor.display()));
    assert_static(&sensor, &bytes);
    let embedded = out_dir.join("pare-sensor");
    std::fs::write(&embedded, &bytes)
        .unwrap_or_else(|e| panic!("writing {}: {e}", embedded.display()));
    let digest = sha256_hex(&bytes);
    println!("cargo:rustc-env=PARE_EMBEDDED_SENSOR_SHA256={digest}");
    println!("cargo:rustc-cfg=pare_embedded_sensor");
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}

/// `cargo build --release -p pare-sensor --target x86_64-unknown-linux-gnu` with crt-static,
/// in `<outer target dir>/pare-sensor-embed`; returns the binary's path.
fn build_sensor(workspace: &Path, out_dir: &Path) -> PathBuf {
    for dir in ["pare-sensor", "pare-trace", "pare-user"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join("crates").join(dir).display()
        );
    }
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );
    let target_dir = outer_target_dir(out_dir)
        .unwrap_or_else(|| out_dir.to_path_buf())
        .join("pare-sensor-embed");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "--release", "-p", "pare-sensor", "--target"])
        .arg(SENSOR_TARGET)
        .arg("--target-dir")
        .arg(&target_dir);
    if Path::new(&workspace.join("Cargo.lock")).is_file() {
        cmd.arg("--locked");
    }
    // The outer build's flags and profile settings are not the sensor's: it gets exactly
    // crt-static. CARGO_MAKEFLAGS stays, so the nested cargo shares the outer jobserver.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k == "RUSTFLAGS"
            || k == "CARGO_ENCODED_RUSTFLAGS"
            || k == "CARGO_BUILD_RUSTFLAGS"
            || k == "CARGO_TARGET_DIR"
            || k == "CARGO_BUILD_TARGET"
            || k == "RUSTC_WORKSPACE_WRAPPER"
            || k.starts_with("CARGO_PROFILE_")
            || k.starts_with("CARGO_FEATURE_")
            || k.starts_with("CARGO_CFG_")
            || k.starts_with("CARGO_TARGET_")
        {
            cmd.env_remove(&k);
        }
    }
    cmd.env(
        "CARGO_ENCODED_RUSTFLAGS",
        "-C\x1ftarget-feature=+crt-static",
    )
    .env("PARE_SENSOR_EMBED_NESTED", "1");
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("running cargo to build the static pare-sensor: {e}"));
    assert!(
        status.success(),
        "building the static pare-sensor failed ({status}); set PARE_EMBED_SENSOR=0 to build pare without it"
    );
    target_dir
        .join(SENSOR_TARGET)
        .join("release")
        .join("pare-sensor")
}

/// OUT_DIR is `<target>[/<triple>]/<profile>/build/pare-<hash>/out`: the dir above the
/// `<profile>` (and `<triple>`) component.
fn outer_target_dir(out_dir: &Path) -> Option<PathBuf> {
    let build = out_dir.ancestors().find(|a| a.ends_with("build"))?;
    let profile_dir = build.parent()?;
    let mut t = profile_dir.parent()?;
    if t.ends_with(SENSOR_TARGET) {
        t = t.parent()?;
    }
    Some(t.to_path_buf())
}

/// The embedded sensor must be static: an ELF with a PT_INTERP (a dynamic loader) cannot start
/// in an image without that loader.
fn assert_static(path: &Path, bytes: &[u8]) {
    let elf = goblin::elf::Elf::parse(bytes)
        .unwrap_or_else(|e| panic!("{}: not an ELF executable: {e}", path.display()));
    assert!(
        elf.interpreter.is_none(),
        "{}: the sensor to embed is dynamically linked (interpreter {:?}); it must be built with -C target-feature=+crt-static",
        path.display(),
        elf.interpreter
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
