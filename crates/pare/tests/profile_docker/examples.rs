//! Profiles of the example images on docker and embedded, probes, daemonless sources.

use super::*;

#[test]
fn python_web_docker() {
    let (p, dir) = profile("pare-example/python-web", &[]);
    assert_eq!(p.runtime, "docker");
    assert_has(&p, "/usr/bin/python3.11", AccessKind::Exec);
    assert!(any_lib(&p, "libc"), "shared libraries");
    assert_has(&p, "/app/app.py", AccessKind::Open);
    // /second imports report.py lazily: only the crawl reaches it.
    assert_has(&p, "/app/report.py", AccessKind::Open);
    assert!(
        p.sensor
            .files
            .keys()
            .any(|k| k.starts_with("/usr/lib/python3/dist-packages/flask/"))
    );
    assert!(!stat_only(&p).is_empty(), "stat-only files");
    let paths: BTreeSet<String> = p
        .probes
        .iter()
        .filter_map(|r| {
            if let ProbeSpec::Http { path, .. } = &r.spec {
                Some(path.clone())
            } else {
                None
            }
        })
        .collect();
    assert!(
        paths.contains("/") && paths.contains("/second"),
        "{paths:?}"
    );
    assert!(p.probes.iter().all(|r| r.outcome.http_status == Some(200)));
    apparmor_ok(dir.path());
    replay_under_seccomp("pare-example/python-web", &p, dir.path());
}

#[test]
fn python_web_embedded_matches_docker() {
    let (d, _dd) = profile("pare-example/python-web", &["--runtime", "docker"]);
    let (e, ed) = profile("pare-example/python-web", &["--runtime", "embedded"]);
    assert_eq!(e.runtime, "embedded");
    let found = |p: &Profile| -> BTreeSet<String> {
        p.sensor
            .files
            .iter()
            .filter(|(_, f)| f.found)
            .map(|(k, _)| k.clone())
            .collect()
    };
    let (fd, fe) = (found(&d), found(&e));
    let only_d: Vec<_> = fd.difference(&fe).collect();
    let only_e: Vec<_> = fe.difference(&fd).collect();
    // Same app, same image: the file sets agree (allow a handful of runtime-specific paths,
    // e.g. /etc/hostname or /dev nodes the runtimes provide differently).
    assert!(
        only_d.len() + only_e.len() <= 5,
        "docker only: {only_d:?}\nembedded only: {only_e:?}"
    );
    assert_has(&e, "/app/report.py", AccessKind::Open);
    assert_eq!(d.probes.len(), e.probes.len());
    // The embedded run's seccomp.json works for the original image under docker too.
    replay_under_seccomp("pare-example/python-web", &e, ed.path());
}

#[test]
fn python_web_ptrace_only() {
    let (p, _d) = profile("pare-example/python-web", &["--no-fanotify"]);
    assert!(!p.sensor.fanotify);
    assert_has(&p, "/usr/bin/python3.11", AccessKind::Exec);
    assert_has(&p, "/app/report.py", AccessKind::Open);
    assert!(any_lib(&p, "libc"));
}

#[test]
fn go_server_non_root() {
    let (p, dir) = profile("pare-example/go-server", &[]);
    assert_eq!(p.sensor.uid, 10001);
    assert_has(&p, "/app", AccessKind::Exec);
    assert!(p.probes.iter().any(|r| r.outcome.http_status == Some(200)));
    replay_under_seccomp("pare-example/go-server", &p, dir.path());
}

#[test]
fn nginx_static_site() {
    let (p, dir) = profile("pare-example/nginx", &[]);
    assert_has(&p, "/usr/sbin/nginx", AccessKind::Exec);
    assert_has(&p, "/etc/nginx/nginx.conf", AccessKind::Open);
    assert!(any_lib(&p, "libc"));
    assert!(
        p.probes.len() >= 2,
        "the crawl follows the site's links: {:?}",
        p.probes
    );
    apparmor_ok(dir.path());
    replay_under_seccomp("pare-example/nginx", &p, dir.path());
}

#[test]
fn node_web() {
    let (p, dir) = profile("pare-example/node-web", &[]);
    assert_has(&p, "/usr/bin/node", AccessKind::Exec);
    assert!(
        p.sensor
            .files
            .keys()
            .any(|k| k.contains("/node_modules/express/")),
        "express loaded"
    );
    replay_under_seccomp("pare-example/node-web", &p, dir.path());
}

#[test]
fn redis_tcp_service() {
    let (p, dir) = profile("pare-example/redis", &[]);
    assert_has(&p, "/usr/bin/redis-server", AccessKind::Exec);
    assert_eq!(p.probes.len(), 1);
    // Classified by its answers as redis: a RESP handshake, not a bare TCP connect.
    assert_eq!(
        p.probes[0].spec,
        ProbeSpec::Protocol {
            port: 6379,
            protocol: pare_profile::pare_trace::Protocol::Redis
        }
    );
    let fields = &p.probes[0].outcome.fields;
    assert_eq!(fields.get("redis.ping").map(String::as_str), Some("PONG"));
    assert!(
        fields
            .get("redis.version")
            .is_some_and(|v| v.starts_with('7')),
        "{fields:?}"
    );
    assert!(!fields.keys().any(|k| k.contains("run_id")), "{fields:?}");
    replay_under_seccomp("pare-example/redis", &p, dir.path());
}

#[test]
fn cli_job_runs_to_completion() {
    let (p, dir) = profile("pare-example/cli-job", &[]);
    assert_eq!(p.probes.len(), 1);
    assert_eq!(p.probes[0].spec, ProbeSpec::Job);
    assert_eq!(p.probes[0].outcome.exit_code, Some(0));
    assert_has(&p, "/usr/bin/jq", AccessKind::Exec);
    assert!(!stat_only(&p).is_empty() || p.sensor.files.values().any(|f| f.missing));
    replay_under_seccomp("pare-example/cli-job", &p, dir.path());
}

#[test]
fn shell_entrypoint_execs() {
    let (p, dir) = profile("pare-example/shell-entrypoint", &[]);
    let execs: BTreeSet<&str> = p.sensor.execs.iter().map(|e| e.path.as_str()).collect();
    assert!(execs.contains("/entrypoint.sh"), "{execs:?}");
    assert!(execs.iter().any(|e| e.ends_with("busybox")), "{execs:?}");
    // status.txt holds the container's start time (to the nanosecond): fixed within one
    // container, different in the next, so only the stability run (a second container) can
    // mark it volatile.
    let status = p
        .probes
        .iter()
        .find(|r| matches!(&r.spec, ProbeSpec::Http { path, .. } if path == "/status.txt"))
        .expect("the crawl reaches /status.txt");
    assert!(
        status.outcome.volatile.iter().any(|v| v == "body"),
        "{:?}",
        status.outcome
    );
    replay_under_seccomp("pare-example/shell-entrypoint", &p, dir.path());
}

#[test]
fn explicit_probes_exec_and_host_exec() {
    let (p, _dir) = profile(
        "pare-example/shell-entrypoint",
        &[
            "--http-probe",
            "GET:/",
            "--exec",
            "cat /etc/hostname",
            "--host-exec",
            "printf %s {port:8000}",
        ],
    );
    let kinds: Vec<String> = p
        .probes
        .iter()
        .map(|r| pare_probe::describe(&r.spec))
        .collect();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    assert_eq!(p.probes[0].outcome.http_status, Some(200));
    assert_eq!(p.probes[1].outcome.exit_code, Some(0));
    assert_eq!(p.probes[2].outcome.exit_code, Some(0));
    assert!(
        p.probes[2].outcome.body_len.unwrap() >= 4,
        "host port printed"
    );
}

#[test]
fn docker_archive_runs_daemonless() {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("cli-job.tar");
    let o = docker(&["save", "-o", tar.to_str().unwrap(), "pare-example/cli-job"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A non-daemon reference picks the embedded runtime by itself.
    let (p, _d) = profile(&format!("docker-archive:{}", tar.display()), &[]);
    assert_eq!(p.runtime, "embedded");
    assert_eq!(p.probes[0].spec, ProbeSpec::Job);
    assert_eq!(p.probes[0].outcome.exit_code, Some(0));
    assert_has(&p, "/usr/bin/jq", AccessKind::Exec);
}

#[test]
fn exec_probe_is_traced_without_fanotify() {
    let (p, _d) = profile(
        "pare-example/redis",
        &["--exec", "redis-cli ping", "--no-fanotify"],
    );
    assert!(!p.sensor.fanotify);
    assert_eq!(
        p.probes[0].spec,
        ProbeSpec::Exec {
            argv: vec!["redis-cli".into(), "ping".into()]
        }
    );
    assert_eq!(p.probes[0].outcome.exit_code, Some(0));
    assert_eq!(
        p.probes[0].outcome.body_digest.as_deref(),
        Some(pare_probe::digest(b"PONG\n").as_str())
    );
    // The command the probe ran is part of the profile, so a slim image keeps it.
    assert_has(&p, "/usr/bin/redis-cli", AccessKind::Exec);
    assert_has(&p, "/usr/bin/redis-server", AccessKind::Exec);
}
