//! `pare build --compose` / `pare profile --compose` input errors, caught before any daemon
//! is asked (no Docker needed): exit 2 with a message naming the variable, key or cycle.

use crate::cli::pare;

fn run(sub: &str, yaml: &str, extra: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("compose.yaml");
    std::fs::write(&file, yaml).unwrap();
    let out = pare()
        .args([sub, "--compose"])
        .arg(&file)
        .args(extra)
        .env_remove("PARE_TEST_UNSET")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn compose_input_errors_exit_2_naming_the_cause() {
    for sub in ["build", "profile"] {
        let (code, err) = run(sub, "services:\n  a:\n    image: ${PARE_TEST_UNSET}\n", &[]);
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.contains("services.a.image") && err.contains("PARE_TEST_UNSET is not set"),
            "{err}"
        );
        let (code, err) = run(
            sub,
            "services:\n  a:\n    image: x\n    cap_add: [ALL]\n",
            &[],
        );
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.contains("services.a.cap_add: not supported by pare"),
            "{err}"
        );
    }
    let (code, err) = run(
        "build",
        "services:\n  a:\n    image: x\n    volumes: [\"relative:x\"]\n",
        &[],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("volume container path `x` is not absolute"),
        "{err}"
    );
}

#[test]
fn services_need_compose_and_keep_needs_compose() {
    let out = pare().args(["build", "--keep", "img"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--compose"));
    let out = pare().args(["build", "img", "more"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let (code, err) = run(
        "build",
        "services:\n  a:\n    image: x\n",
        &["--tag", "t:1"],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--tag does not go with --compose"), "{err}");
}
