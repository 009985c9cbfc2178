//! `scripts/test` removes the images of its own run only: `remove_run_images RUN`
//! (scripts/lib/common.sh) against a fake `docker` that lists the images of several runs and
//! records what it is asked to remove.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const LISTED: &[&str] = &[
    "pare-test/r1-1/tomcat.slim:build",
    "pare-test/r1-1/faults-ctrl-c:docker",
    "pare-test/r1-10/tomcat.slim:build",
    "pare-test/r2-2/tomcat.slim:build",
    "pare-test/tomcat.slim:build",
    "pare-example/tomcat:latest",
    "local/pare-test/r1-1/x:y",
];

/// Runs `remove_run_images RUN` with the fake docker first on PATH; returns the arguments
/// `docker rmi` got, one a line (empty when it was not called).
fn removed(run: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("rmi.log");
    let docker = dir.path().join("docker");
    std::fs::write(
        &docker,
        format!(
            "#!/bin/sh\ncase \"$1\" in\n  images) printf '%s\\n' {} ;;\n  rmi) shift; printf '%s\\n' \"$@\" >>'{}' ;;\nesac\n",
            LISTED.join(" "),
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).unwrap();
    let common = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/lib/common.sh");
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-c", "source \"$1\" && remove_run_images \"$2\"", "bash"])
        .arg(&common)
        .arg(run)
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success() || run.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&log).unwrap_or_default()
}

#[test]
fn only_the_runs_own_images_are_removed() {
    assert_eq!(
        removed("r1-1"),
        "-f\npare-test/r1-1/tomcat.slim:build\npare-test/r1-1/faults-ctrl-c:docker\n"
    );
    assert_eq!(removed("r2-2"), "-f\npare-test/r2-2/tomcat.slim:build\n");
    assert_eq!(
        removed("r3-3"),
        "",
        "no image of that run: docker rmi is not called"
    );
    assert_eq!(removed(""), "", "no run named: nothing is removed");
}
