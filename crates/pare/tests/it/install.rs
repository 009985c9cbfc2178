//! The installed `pare` needs nothing beside it: the static sensor is embedded (build.rs), written
//! to a private cache file when a profile needs it, `pare --version` says where the sensor comes
//! from, and a dynamically linked sensor is refused with one line naming the file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// pare with its embedded sensor only (no `PARE_SENSOR`).
fn pare() -> Command {
    let mut c = crate::cli::pare();
    c.env_remove("PARE_SENSOR");
    c
}

fn text(o: &Output) -> (Option<i32>, String, String) {
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// build.rs embeds the sensor on x86_64 Linux unless PARE_EMBED_SENSOR=0 was set for the build.
fn embedded_expected() -> bool {
    cfg!(all(target_arch = "x86_64", target_os = "linux"))
        && option_env!("PARE_EMBED_SENSOR") != Some("0")
}

/// A dynamically linked executable: this test binary.
fn dynamic_elf() -> PathBuf {
    std::env::current_exe().unwrap()
}

#[test]
fn version_says_the_sensor_is_embedded() {
    if !embedded_expected() {
        eprintln!("skipping: no sensor is embedded on this target");
        return;
    }
    let (code, out, _) = text(&pare().arg("--version").output().unwrap());
    assert_eq!(code, Some(0));
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some(concat!("pare ", env!("CARGO_PKG_VERSION")))
    );
    let sensor = lines.next().unwrap_or_default();
    assert!(
        sensor.starts_with("sensor: embedded (static x86_64,") && sensor.contains("sha256 "),
        "{out}"
    );
}

#[test]
fn version_names_a_pare_sensor_override_and_refuses_a_dynamic_one() {
    let dynamic = dynamic_elf();
    let (code, out, _) = text(
        &pare()
            .arg("--version")
            .env("PARE_SENSOR", &dynamic)
            .output()
            .unwrap(),
    );
    assert_eq!(code, Some(0));
    assert!(
        out.contains(&format!(
            "sensor: PARE_SENSOR={} (REFUSED:",
            dynamic.display()
        )) && out.contains("dynamically linked"),
        "{out}"
    );
    let (_, out, _) = text(
        &pare()
            .arg("-V")
            .env("PARE_SENSOR", "/nonexistent/pare-sensor")
            .output()
            .unwrap(),
    );
    assert!(
        out.contains("sensor: PARE_SENSOR=/nonexistent/pare-sensor (missing)"),
        "{out}"
    );
}

#[test]
fn a_dynamically_linked_sensor_is_refused_in_one_line_naming_it() {
    let dynamic = dynamic_elf();
    for how in ["--sensor", "PARE_SENSOR"] {
        let mut c = pare();
        c.args(["profile", "oci:/nonexistent/layout"]);
        if how == "--sensor" {
            c.arg("--sensor").arg(&dynamic);
        } else {
            c.env("PARE_SENSOR", &dynamic);
        }
        let (code, _, err) = text(&c.output().unwrap());
        assert_eq!(code, Some(2), "{how}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{how}: {err}");
        assert!(
            err.contains(&dynamic.display().to_string()) && err.contains("dynamically linked"),
            "{how}: {err}"
        );
        assert!(!err.contains("panicked"), "{how}: {err}");
    }
}

#[test]
fn the_embedded_sensor_is_written_to_a_private_cache_as_a_static_executable() {
    use std::os::unix::fs::PermissionsExt;
    if !embedded_expected() {
        eprintln!("skipping: no sensor is embedded on this target");
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    // The sensor is located before the image is opened: the run fails on the image, after
    // writing the sensor out.
    let (code, _, err) = text(
        &pare()
            .args(["profile", "oci:/nonexistent/layout"])
            .env("XDG_CACHE_HOME", cache.path())
            .output()
            .unwrap(),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(!err.contains("sensor"), "{err}");
    let dir = cache.path().join("pare");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    let written: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");
    let sensor = &written[0];
    assert!(
        sensor
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("sensor-"),
        "{sensor:?}"
    );
    assert_eq!(mode(sensor), 0o755);
    // pare itself vouches that the written file is a static ELF for this machine.
    let (_, out, _) = text(
        &pare()
            .arg("--version")
            .env("PARE_SENSOR", sensor)
            .output()
            .unwrap(),
    );
    assert!(out.contains("(static)"), "{out}");
    // It is the sensor, and it runs: it answers --help with its usage.
    let (_, out, err) = text(&Command::new(sensor).arg("--help").output().unwrap());
    assert!(
        out.contains("usage: pare-sensor") || err.contains("usage: pare-sensor"),
        "{out}{err}"
    );
}
