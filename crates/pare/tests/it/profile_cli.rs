//! `pare profile` command-line handling that needs no daemon and no sensor.

use crate::cli::pare;

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let o = pare()
        .args(args)
        .env_remove("PARE_SENSOR")
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn help_lists_probe_flags() {
    let (code, out, _) = run(&["profile", "--help"]);
    assert_eq!(code, Some(0));
    for f in [
        "--http-probe",
        "--probes",
        "--exec",
        "--host-exec",
        "--continue-after",
        "--timeout",
        "--no-fanotify",
        "--sensor",
        "--runtime",
        "--platform",
    ] {
        assert!(out.contains(f), "{f} missing from help:\n{out}");
    }
}

#[test]
fn bad_flags_are_errors_with_exit_2() {
    let (code, _, err) = run(&["profile", "img", "--http-probe", "GET:nopath"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--http-probe") && err.contains("GET:nopath"),
        "{err}"
    );
    let (code, _, err) = run(&["profile", "img", "--continue-after", "later"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--continue-after") && err.contains("later"),
        "{err}"
    );
    let (code, _, err) = run(&["profile", "img", "--platform", "linux"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--platform"), "{err}");
    let (code, _, _) = run(&["profile", "img", "--runtime", "podman"]);
    assert_eq!(code, Some(2));
}

#[test]
fn missing_sensor_names_the_path_and_the_fix() {
    let (code, _, err) = run(&[
        "profile",
        "oci:/nonexistent/layout",
        "--sensor",
        "/nonexistent/pare-sensor",
    ]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("/nonexistent/pare-sensor") && err.contains("build-sensor"),
        "{err}"
    );
}

#[test]
fn bad_probe_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let probes = dir.path().join("probes.yaml");
    std::fs::write(&probes, "- {kind: smtp, port: 25}\n").unwrap();
    // The sensor embedded in pare is written to this test's own cache dir.
    let o = pare()
        .args(["profile", "oci:/nonexistent/layout", "--probes"])
        .arg(&probes)
        .env_remove("PARE_SENSOR")
        .env("XDG_CACHE_HOME", dir.path())
        .output()
        .unwrap();
    let (code, err) = (o.status.code(), String::from_utf8_lossy(&o.stderr));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("probes.yaml") && err.contains("unknown kind"),
        "{err}"
    );
}
