//! Bearer token auth for real: the testbed's token registry (`scripts/testbed registry`:
//! distribution 2.8 with `auth: token` behind TLS on 127.0.0.1:5557, tokens from
//! `scripts/lib/token-server.py` on :5558, or `PARE_TEST_REGISTRY_TOKEN`). The registry answers
//! 401 with a Bearer challenge; pare asks the token server with the credentials and sends the
//! JWT it gets. User `pare` may pull and push, user `reader` only pull. Skips with a message
//! when the registry is not up.

use std::path::PathBuf;
use std::process::{Command, Output};

use super::registry_cli::{one_line_error, pare, registry};

fn creds(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| default.into())
}

/// The test CA's directory (for `--cert-dir`): it signed the registry's and the token
/// server's certificate.
fn cert_dir() -> PathBuf {
    let ca = creds("PARE_TEST_REGISTRY_CA", "/var/cache/pare/registry/ca.crt");
    PathBuf::from(ca).parent().unwrap().to_path_buf()
}

/// `pare ARGS --creds CREDS --cert-dir … --cache-dir CACHE`, with no credentials from the
/// environment (`None`: anonymous).
fn run(args: &[&str], creds: Option<&str>, cache: &std::path::Path) -> Output {
    let mut cmd = pare();
    cmd.args(args)
        .arg("--cert-dir")
        .arg(cert_dir())
        .arg("--cache-dir")
        .arg(cache)
        .env("DOCKER_CONFIG", cache)
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("PARE_REGISTRY_CREDS")
        .env("XDG_RUNTIME_DIR", cache);
    if let Some(c) = creds {
        cmd.args(["--creds", c]);
    }
    cmd.output().unwrap()
}

fn ok(o: &Output) -> String {
    crate::cli::exited(o, 0)
}

/// `pare pack /bin/true` to `dest` with `env` (to make a different image): its manifest digest.
fn pack(dest: &str, env: &str, creds: Option<&str>, cache: &std::path::Path) -> Output {
    run(
        &[
            "pack",
            "/bin/true",
            "--env",
            env,
            "--json",
            "--quiet",
            "--output",
            dest,
        ],
        creds,
        cache,
    )
}

fn manifest_digest(stdout: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(stdout).unwrap();
    v["manifest_digest"].as_str().unwrap().to_string()
}

#[test]
#[ignore = "needs the testbed token registry (scripts/testbed registry)"]
fn token_auth_read_push_and_refusals() {
    let Some(addr) = registry("PARE_TEST_REGISTRY_TOKEN", "127.0.0.1:5557", true) else {
        return;
    };
    let writer = creds("PARE_TEST_REGISTRY_CREDS", "pare:pare-test-pass");
    let reader = creds("PARE_TEST_REGISTRY_TOKEN_READER", "reader:reader-test-pass");
    let work = tempfile::tempdir().unwrap();
    let dest = format!(
        "docker://{addr}/pare-test/token-true:{}",
        std::process::id()
    );

    // Push with a token scoped pull,push.
    let pushed = manifest_digest(&ok(&pack(
        &dest,
        "V=1",
        Some(&writer),
        &work.path().join("c1"),
    )));

    // Read it back with a pull-only token, cold cache: the pushed manifest.
    let xray = ok(&run(
        &["xray", &dest, "--format", "json"],
        Some(&reader),
        &work.path().join("c2"),
    ));
    assert!(xray.contains(&pushed), "xray of {dest} shows {pushed}");

    // The reader may not push: one line naming the destination, exit 2, tag unchanged.
    let o = pack(&dest, "V=2", Some(&reader), &work.path().join("c3"));
    let e = one_line_error(&o, &dest);
    eprintln!("reader push: {e}");
    assert!(e.contains("(401)") || e.contains("(403)"), "{e}");

    // Wrong password: the token server refuses; read and push both fail in one line.
    let wrong = format!("{}:wrong-password", writer.split(':').next().unwrap());
    let o = run(
        &["xray", &dest, "--format", "json"],
        Some(&wrong),
        &work.path().join("c4"),
    );
    let e = one_line_error(&o, &dest);
    assert!(e.contains("token server refused the credentials"), "{e}");
    let o = pack(&dest, "V=3", Some(&wrong), &work.path().join("c5"));
    let e = one_line_error(&o, &dest);
    assert!(e.contains("token server refused the credentials"), "{e}");

    // Anonymous: a token with no access, so the registry refuses the pull.
    let o = run(
        &["xray", &dest, "--format", "json"],
        None,
        &work.path().join("c6"),
    );
    let e = one_line_error(&o, &dest);
    eprintln!("anonymous pull: {e}");
    assert!(e.contains("(401)") || e.contains("(403)"), "{e}");

    // None of the refused pushes moved the tag.
    let xray = ok(&run(
        &["xray", &dest, "--format", "json"],
        Some(&reader),
        &work.path().join("c7"),
    ));
    assert!(xray.contains(&pushed), "{dest} still points at {pushed}");
    // And the token server really was asked (the registry accepts no basic auth).
    let basic = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg("--cacert")
        .arg(cert_dir().join("ca.crt"))
        .args(["-u", &writer])
        .arg(format!("https://{addr}/v2/"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&basic.stdout), "401");
}
