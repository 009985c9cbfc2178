//! One test per example image: built, loaded and verified, with its own promises.

use super::*;

#[test]
fn python_web_lazy_import_why_and_a_broken_exclude() {
    let tag = &test_image("python-web.slim:build");
    let b = build_verified("pare-example/python-web", Some(tag), &[]);
    let probes = probe_names(&b);
    assert!(
        probes.iter().any(|p| p.ends_with("/second")),
        "the crawl reaches /second: {probes:?}"
    );
    // /second imports report.py lazily: only the crawl made the trace see it.
    assert!(b.kept("/app/report.py"));
    assert_eq!(
        inspect(tag, "{{.Config.User}}"),
        inspect("pare-example/python-web", "{{.Config.User}}")
    );
    assert!(
        b.report["slim"]["size"].as_u64().unwrap() < 40_000_000,
        "{}",
        b.report["slim"]["size"]
    );
    // Shells and package managers are gone.
    let removed: Vec<String> = b.report["surface_removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap().to_string())
        .collect();
    assert!(
        removed.iter().any(|p| p.ends_with("/apt-get")),
        "{removed:?}"
    );

    // pare why: a kept shared library, explained back to a traced binary.
    let lib = b.report["selection"]["entries"]
        .as_object()
        .unwrap()
        .keys()
        .find(|p| p.contains("/libexpat.so.") || p.contains("/libz.so."))
        .cloned()
        .expect("libexpat or libz kept");
    let (code, text) = b.why(&lib);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("is kept") && text.contains("/usr/bin/python3"),
        "pare why {lib}:\n{text}"
    );
    let (code, text) = b.why("/usr/bin/apt-get");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("not in the slim image"), "{text}");

    // A wrong --exclude (the lazily imported module): verification fails, exit 1, the image is
    // kept, and the hint names the missing file and the flag that removed it.
    let broken_tag = &test_image("python-web.broken:build");
    let bad = build(
        "pare-example/python-web",
        Some(broken_tag),
        &[
            "--from-profile",
            b.profile_json().to_str().unwrap(),
            "--exclude",
            "/app/report.py",
        ],
    );
    assert_eq!(bad.code, Some(1), "{}\n{}", bad.stdout, bad.stderr);
    assert!(
        bad.stdout.contains("verification (FAILED)"),
        "{}",
        bad.stdout
    );
    assert!(
        bad.stdout.contains("FAIL") && bad.stdout.contains("/second"),
        "{}",
        bad.stdout
    );
    let hint = bad
        .stdout
        .split("hint:")
        .nth(1)
        .unwrap_or_else(|| panic!("no hint:\n{}", bad.stdout));
    assert!(
        hint.contains("/app/report.py") && hint.contains("--exclude /app/report.py"),
        "{}",
        bad.stdout
    );
    assert!(
        bad.report["verification"]["likely_missing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "/app/report.py")
    );
    // The failed image is kept for inspection.
    assert!(docker(&["image", "inspect", broken_tag]).status.success());
}

#[test]
fn go_server_non_root_healthcheck_and_include_shell() {
    let tag = &test_image("go-server.slim:build");
    let b = build_verified("pare-example/go-server", Some(tag), &[]);
    assert_eq!(inspect(tag, "{{.Config.User}}"), "10001");
    let hc = inspect(tag, "{{json .Config.Healthcheck}}");
    assert!(hc.contains("-healthcheck"), "Healthcheck kept: {hc}");
    assert_eq!(
        hc,
        inspect("pare-example/go-server", "{{json .Config.Healthcheck}}")
    );
    assert_eq!(
        inspect(tag, "{{json .Config.ExposedPorts}}"),
        inspect("pare-example/go-server", "{{json .Config.ExposedPorts}}")
    );
    // The HEALTHCHECK command passes against the running slim server (as the non-root user).
    let id = String::from_utf8_lossy(&docker(&["run", "-d", "--network", "none", tag]).stdout)
        .trim()
        .to_string();
    let healthy = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(200));
        docker(&["exec", &id, "/app", "-healthcheck"])
            .status
            .success()
    });
    let _ = docker(&["rm", "-f", &id]);
    assert!(healthy, "/app -healthcheck in the slim container");
    // No shell by default ...
    let o = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        tag,
        "-c",
        "echo ok",
    ]);
    assert!(
        !o.status.success(),
        "the slim image has no shell by default"
    );
    // ... and a working one with --include-shell (same recorded profile, no new trace).
    let shell_tag = &test_image("go-server.shell:build");
    let s = build_verified(
        "pare-example/go-server",
        Some(shell_tag),
        &[
            "--include-shell",
            "--from-profile",
            b.profile_json().to_str().unwrap(),
        ],
    );
    let o = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        shell_tag,
        "-c",
        "echo ok",
    ]);
    assert!(
        o.status.success(),
        "sh in the --include-shell image: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "ok");
    assert!(s.report["slim"]["size"].as_u64() > b.report["slim"]["size"].as_u64());
}

#[test]
fn shell_script_entrypoint() {
    let tag = &test_image("shell-entrypoint.slim:build");
    let b = build_verified("pare-example/shell-entrypoint", Some(tag), &[]);
    assert!(b.kept("/entrypoint.sh"));
    // /status.txt holds the start time to the nanosecond: it differs between any two
    // containers. `pare build` skips the profile's stability run, so verification must
    // find that out itself (a re-run of the original) and pass the probe with its body
    // marked volatile, instead of failing.
    let status = b
        .probes()
        .iter()
        .find(|p| {
            p["probe"]
                .as_str()
                .unwrap_or_default()
                .ends_with("/status.txt")
        })
        .cloned()
        .expect("the crawl reaches /status.txt from the index page");
    assert_eq!(status["ok"], true, "{status}");
    assert_eq!(status["volatile"], serde_json::json!(["body"]), "{status}");
    assert_eq!(
        inspect(tag, "{{json .Config.Entrypoint}}"),
        inspect(
            "pare-example/shell-entrypoint",
            "{{json .Config.Entrypoint}}"
        )
    );
}

#[test]
fn numpy_batch_job() {
    let image = "pare-example/numpy-job";
    let tag = &test_image("numpy-job.slim:build");
    let b = build_verified(image, Some(tag), &[]);
    assert!(
        probe_names(&b).iter().any(|p| p.starts_with("job")),
        "{:?}",
        probe_names(&b)
    );
    let (code, stdout) = run_job(tag);
    assert_eq!(code, Some(0));
    assert!(String::from_utf8_lossy(&stdout).contains("solution_ok=True"));
    assert_eq!((code, stdout), run_job(image));
}

#[test]
fn redis_tcp_service() {
    let tag = &test_image("redis.slim:build");
    let b = build_verified("pare-example/redis", Some(tag), &[]);
    assert!(
        probe_names(&b).iter().any(|p| p.contains("6379")),
        "{:?}",
        probe_names(&b)
    );
    assert_eq!(inspect(tag, "{{.Config.User}}"), "redis");
    assert!(b.kept("/usr/bin/redis-server") || b.kept("/usr/bin/redis-check-rdb"));
}

#[test]
fn nginx_static_site() {
    let b = build_verified(
        "pare-example/nginx",
        Some(&test_image("nginx.slim:build")),
        &[],
    );
    let probes = probe_names(&b);
    assert!(
        probes.iter().any(|p| p.ends_with("/about.html")),
        "{probes:?}"
    );
    assert!(
        probes.iter().any(|p| p.ends_with("/css/site.css")),
        "{probes:?}"
    );
}

#[test]
fn node_express() {
    let b = build_verified(
        "pare-example/node-web",
        Some(&test_image("node-web.slim:build")),
        &[],
    );
    assert!(
        probe_names(&b).iter().any(|p| p.ends_with("/api/items")),
        "{:?}",
        probe_names(&b)
    );
    assert!(
        b.report["selection"]["entries"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.ends_with("/express/package.json"))
    );
}

#[test]
fn java_http_server() {
    let b = build_verified("pare-example/jdk", Some(&test_image("jdk.slim:build")), &[]);
    assert!(
        probe_names(&b).iter().any(|p| p.ends_with("/api/info")),
        "{:?}",
        probe_names(&b)
    );
}
