//! `pare build --compose` / `pare profile --compose` end to end on examples/compose-app
//! (api + PostgreSQL + redis, built by `scripts/testbed examples`): two services slimmed and
//! verified with the project running, the override brings the project up with the slim images
//! (with `docker-compose` when installed), the database's slim image starts empty, nothing is
//! left behind; and every bad input exits 2 with nothing running.
//!
//! Needs dockerd, root and the static sensor (`PARE_SENSOR`): behind the `docker-tests` feature.
#![cfg(feature = "docker-tests")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The tests compare the daemon's objects before and after: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[path = "common/cli.rs"]
mod cli;
use cli::pare;

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/compose-app/compose.yaml")
}

/// pare's compose containers, networks and volumes right now (`pareID_trace_SERVICE…`,
/// `pareID_verify…`).
fn compose_objects() -> Vec<String> {
    let mut found = Vec::new();
    for args in [
        vec!["ps", "-a", "--format", "{{.Names}}"],
        vec!["network", "ls", "--format", "{{.Name}}"],
        vec!["volume", "ls", "--format", "{{.Name}}"],
    ] {
        let out = docker(&args);
        found.extend(
            text(&out.stdout)
                .lines()
                .filter(|l| {
                    l.starts_with("pare") && (l.contains("_trace_") || l.contains("_verify"))
                })
                .map(|l| format!("{} {l}", args[0])),
        );
    }
    found
}

#[test]
fn compose_app_api_and_db_are_slimmed_and_verified_with_the_project_running() {
    let _serial = serial();
    let before = compose_objects();
    let out_dir = tempfile::tempdir().unwrap();
    let artifacts = out_dir.path().join("out");
    let events = record_events();
    let out = pare()
        .args(["build", "--compose"])
        .arg(example())
        .args(["api", "db", "--artifacts"])
        .arg(&artifacts)
        .output()
        .unwrap();
    let events = events.stop();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    a_slimmed_dependency_starts_once_and_is_verified_before_its_user_starts(events);
    let summary: Value =
        serde_json::from_slice(&std::fs::read(artifacts.join("summary.json")).unwrap()).unwrap();
    let services = summary["services"].as_array().unwrap();
    let names: Vec<&str> = services
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["db", "api"], "targets in dependency order");
    for s in services {
        assert_eq!(s["verified"], true, "{s}");
        assert!(
            s["slim_size"].as_u64().unwrap() * 3 < s["source_size"].as_u64().unwrap(),
            "{s}"
        );
        let report: Value =
            serde_json::from_slice(&std::fs::read(s["report"].as_str().unwrap()).unwrap()).unwrap();
        let probes = report["verification"]["probes"].as_array().unwrap();
        assert!(probes.iter().all(|p| p["ok"] == true), "{probes:?}");
        // The healthcheck became an exec probe, replayed on the slim image.
        assert!(
            probes
                .iter()
                .any(|p| p["probe"].as_str().unwrap().starts_with("exec ")),
            "{probes:?}"
        );
    }
    assert_eq!(summary["dependencies"], serde_json::json!(["cache"]));
    // Verification starts as soon as the slim images it needs are loaded: it overlaps the
    // builds (which still analyze both images and measure the gzip form then).
    let secs = |k: &str| summary[k].as_f64().unwrap();
    assert!(
        secs("trace_seconds") + secs("verify_seconds") > secs("total_seconds"),
        "verification did not overlap slimming: {summary}"
    );
    // The api's trace saw the database and cache answer (POST stored, count from the cache).
    let api_profile: Value =
        serde_json::from_slice(&std::fs::read(artifacts.join("api/profile.json")).unwrap())
            .unwrap();
    let statuses: Vec<u64> = api_profile["probes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["outcome"]["http_status"].as_u64())
        .collect();
    assert_eq!(statuses, [200, 201, 200, 200, 200, 404]);
    // Nothing of the runs is left.
    assert_eq!(compose_objects(), before);

    // The slim database image holds an empty data dir: the trace's volume never got in.
    let created = docker(&["create", "pare-example/compose-db.slim:latest"]);
    let id = text(&created.stdout).trim().to_string();
    assert!(created.status.success(), "{}", text(&created.stderr));
    let export = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "docker export {id} | tar -t | grep '^var/lib/postgresql/data/'"
        ))
        .output()
        .unwrap();
    docker(&["rm", "-f", &id]);
    assert_eq!(
        text(&export.stdout).trim(),
        "var/lib/postgresql/data/",
        "only the empty dir"
    );

    // The override brings the project up with the slim images.
    let over = std::fs::read_to_string(artifacts.join("compose.slim.yaml")).unwrap();
    assert!(
        over.contains("image: pare-example/compose-api.slim:latest"),
        "{over}"
    );
    assert!(
        over.contains("image: pare-example/compose-db.slim:latest"),
        "{over}"
    );
    assert!(over.contains("- seccomp:/"), "{over}");
    if Command::new("docker-compose")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let project = format!("parecomposetest{}", std::process::id());
        let dc = |args: &[&str]| {
            Command::new("docker-compose")
                .args(["-p", &project, "-f"])
                .arg(example())
                .arg("-f")
                .arg(artifacts.join("compose.slim.yaml"))
                .args(args)
                .output()
                .unwrap()
        };
        let up = dc(&["up", "-d"]);
        let mut healthy = false;
        for _ in 0..60 {
            let ps = docker(&[
                "ps",
                "--filter",
                &format!("label=com.docker.compose.project={project}"),
                "--format",
                "{{.Image}} {{.Status}}",
            ]);
            let s = text(&ps.stdout);
            if s.lines().count() == 3 && s.lines().all(|l| l.contains("(healthy)")) {
                assert!(
                    s.contains("compose-api.slim") && s.contains("compose-db.slim"),
                    "{s}"
                );
                healthy = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        let logs = dc(&["logs", "--tail", "5"]);
        dc(&["down", "-v"]);
        assert!(up.status.success(), "{}", text(&up.stderr));
        assert!(
            healthy,
            "docker-compose up with the slim images: {}",
            text(&logs.stdout)
        );
    }
}

/// The daemon's container events while it lives, as `(action, container name)` in order
/// (`exec_start: psql …` for an exec): a `docker events` stream, read as it comes (the daemon
/// itself keeps only its last 1024 events, which a busy daemon overwrites within a run).
struct Events {
    child: std::process::Child,
    reader: Option<std::thread::JoinHandle<String>>,
}

fn record_events() -> Events {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut child = Command::new("docker")
        .args(["events", "--since", &format!("{since:.3}")])
        .args(["--filter", "type=container", "--format"])
        .arg("{{.Actor.Attributes.name}}\t{{.Action}}")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("docker CLI");
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut text);
        text
    });
    Events {
        child,
        reader: Some(reader),
    }
}

impl Events {
    /// What was recorded (after a moment for the last events to arrive).
    fn stop(mut self) -> Vec<(String, String)> {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let _ = self.child.kill();
        let _ = self.child.wait();
        let text = self.reader.take().unwrap().join().unwrap();
        text.lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(name, action)| (action.to_string(), name.to_string()))
            .collect()
    }
}

impl Drop for Events {
    /// A test that fails before [`Events::stop`] leaves no `docker events` running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The verifications of the run that just ended (`events`) shared one instance: the slim
/// db was created once (not once more for the api's verification), and the api's container
/// started only after the db's own probe (its psql query) had run in it.
fn a_slimmed_dependency_starts_once_and_is_verified_before_its_user_starts(
    events: Vec<(String, String)>,
) {
    // This run's containers only (`pareID_…`; other tests may run containers meanwhile).
    let run = events
        .iter()
        .find_map(|(_, n)| n.split_once("_trace_db_db").map(|(id, _)| format!("{id}_")))
        .unwrap_or_else(|| panic!("no db trace: {events:?}"));
    let events: Vec<_> = events
        .into_iter()
        .filter(|(_, n)| n.starts_with(&run))
        .collect();
    let verify = |e: &&(String, String)| e.1.contains("_verify_");
    let db_created: Vec<_> = events
        .iter()
        .filter(verify)
        .filter(|(a, n)| a == "create" && n.ends_with("_db"))
        .collect();
    assert_eq!(db_created.len(), 1, "slim db containers: {db_created:?}");
    let db = &db_created[0].1;
    let db_probe = events
        .iter()
        .rposition(|(a, n)| n == db && a.starts_with("exec_start: psql"))
        .unwrap_or_else(|| panic!("no psql probe in {db}: {events:?}"));
    let api_start = events
        .iter()
        .position(|(a, n)| a == "start" && n.contains("_verify_") && n.ends_with("_api"))
        .unwrap_or_else(|| panic!("no api verification: {events:?}"));
    assert!(
        db_probe < api_start,
        "the api started before the db's verification ended: {events:?}"
    );
    // The db's trace is on the critical path: its traced container starts before any other
    // container of the run is even created.
    let db_traced = events
        .iter()
        .position(|(a, n)| a == "start" && n.contains("_trace_db_db"))
        .unwrap_or_else(|| panic!("no db trace: {events:?}"));
    let others = events
        .iter()
        .position(|(a, n)| a == "create" && !n.contains("_trace_db_"))
        .unwrap_or_else(|| panic!("no other container: {events:?}"));
    assert!(
        db_traced < others,
        "another container came before the db's trace started: {events:?}"
    );
    // The api's trace instance (its db and cache) is torn down only once the slim db started
    // for verification: the removals would hold that start up.
    let slim_db_started = events
        .iter()
        .position(|(a, n)| a == "start" && n == db)
        .unwrap_or_else(|| panic!("the slim db never started: {events:?}"));
    let trace_dep_killed = events
        .iter()
        .position(|(a, n)| {
            a == "kill" && n.contains("_trace_api_") && !n.ends_with("_trace_api_api")
        })
        .unwrap_or_else(|| panic!("the api's trace dependencies were not removed: {events:?}"));
    assert!(
        slim_db_started < trace_dep_killed,
        "the api's trace instance was torn down before the slim db started: {events:?}"
    );
}

/// A service's verification container is created while the slimmed dependency it is
/// verified with is still answering its own probes (a 2 s exec), and started only after.
#[test]
fn a_users_container_is_made_during_its_dependencys_verification_and_started_after_it() {
    let _serial = serial();
    let before = compose_objects();
    let yaml = "services:
  app:
    image: pare-example/redis:latest
    command: redis-server --save '' --appendonly no
    expose: [\"6379\"]
    depends_on:
      slow: {condition: service_started}
  slow:
    image: pare-example/musl-busybox:latest
    expose: [\"8080\"]
    x-pare:
      probes:
        - {kind: http, port: 8080, path: /}
        - {kind: exec, argv: [sh, -c, 'sleep 2; echo slept']}
";
    let events = record_events();
    let (code, stderr) = build_with(yaml, &["slow", "app"], &[]);
    let events = events.stop();
    assert_eq!(code, Some(0), "{stderr}");
    // Other tests may run containers meanwhile: this run's are `pareID_verify_app_{slow,app}`.
    let at = |action: &str, service: &str| {
        let suffix = format!("_{service}");
        events
            .iter()
            .position(|(a, n)| {
                a.starts_with(action) && n.contains("_verify_") && n.ends_with(&suffix)
            })
            .unwrap_or_else(|| panic!("no {action} of {service}: {events:?}"))
    };
    let probe = at("exec_start: sh -c sleep 2", "slow");
    // The probe's exec ends with the first exec_die in that container after it.
    let probe_end = events[probe..]
        .iter()
        .position(|(a, n)| a == "exec_die" && *n == events[probe].1)
        .map(|i| probe + i)
        .unwrap_or_else(|| panic!("the probe never ended: {events:?}"));
    assert!(
        at("create", "app") < probe_end,
        "app not created ahead: {events:?}"
    );
    assert!(
        at("start", "app") > probe_end,
        "app started before slow was verified: {events:?}"
    );
    assert_eq!(compose_objects(), before, "nothing left running");
}

/// Two targets of one image get a slim image tag each (`NAME.slim-SERVICE:TAG`): with one
/// tag, the second load took the first one's, and a verification could run the other's image.
#[test]
fn two_targets_of_one_image_get_a_slim_image_each() {
    use pare_test_support::names::{RemoveOnDrop, image};
    let _serial = serial();
    let before = compose_objects();
    let source = image("redis:latest");
    let _removed = [
        RemoveOnDrop(source.clone()),
        RemoveOnDrop(image("redis.slim-app:latest")),
        RemoveOnDrop(image("redis.slim-cache:latest")),
    ];
    let tagged = docker(&["tag", "pare-example/redis:latest", &source]);
    assert!(tagged.status.success(), "{}", text(&tagged.stderr));
    let yaml = format!(
        "services:
  app:
    image: {source}
    command: redis-server --save '' --appendonly no
    expose: [\"6379\"]
    depends_on: [cache]
  cache:
    image: {source}
    expose: [\"6379\"]
"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("compose.yaml");
    std::fs::write(&file, yaml).unwrap();
    let artifacts = dir.path().join("out");
    let out = pare()
        .args(["build", "--compose"])
        .arg(&file)
        .args(["app", "cache", "--artifacts"])
        .arg(&artifacts)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let summary: Value =
        serde_json::from_slice(&std::fs::read(artifacts.join("summary.json")).unwrap()).unwrap();
    let slim: Vec<&str> = summary["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["slim"].as_str().unwrap())
        .collect();
    assert_eq!(
        slim,
        [
            image("redis.slim-cache:latest"),
            image("redis.slim-app:latest")
        ]
    );
    for name in slim {
        let inspect = docker(&["image", "inspect", name]);
        assert!(
            inspect.status.success(),
            "{name}: {}",
            text(&inspect.stderr)
        );
    }
    assert_eq!(compose_objects(), before, "nothing left running");
}

#[test]
fn compose_profile_traces_the_api_with_its_dependencies() {
    let _serial = serial();
    let out_dir = tempfile::tempdir().unwrap();
    let out = pare()
        .args(["profile", "--compose"])
        .arg(example())
        .args(["api", "--output"])
        .arg(out_dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let profile: Value =
        serde_json::from_slice(&std::fs::read(out_dir.path().join("api/profile.json")).unwrap())
            .unwrap();
    // psycopg2's C library was loaded: the database code path ran under the sensor.
    let files = profile["sensor"]["files"].as_object().unwrap();
    assert!(
        files.keys().any(|p| p.contains("libpq")),
        "libpq not traced"
    );
}

/// Writes a compose file into a temp dir and runs `pare build --compose` on it.
fn build_with(yaml: &str, services: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("compose.yaml");
    std::fs::write(&file, yaml).unwrap();
    let mut cmd = pare();
    cmd.args(["build", "--compose"]).arg(&file).args(services);
    cmd.arg("--artifacts").arg(dir.path().join("out"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (out.status.code(), text(&out.stderr))
}

#[test]
fn bad_input_exits_2_with_nothing_left_running() {
    let _serial = serial();
    let before = compose_objects();
    let redis = "pare-example/redis:latest";
    let cases: Vec<(String, Vec<&str>, &str)> = vec![
        (
            format!("services:\n  cache:\n    image: {redis}\n"),
            vec!["nope"],
            "no service named \"nope\"",
        ),
        (
            format!(
                "services:\n  a:\n    image: {redis}\n    depends_on: [b]\n  b:\n    image: {redis}\n    depends_on: [a]\n"
            ),
            vec!["a"],
            "depends_on cycle: a -> b -> a",
        ),
        (
            "services:\n  a:\n    image: ${PARE_TEST_UNSET_IMAGE}\n".to_string(),
            vec![],
            "PARE_TEST_UNSET_IMAGE is not set",
        ),
        (
            "services:\n  a:\n    image: pare-test/does-not-exist:1\n".to_string(),
            vec![],
            "image pare-test/does-not-exist:1 not found",
        ),
        (
            format!(
                "services:\n  app:\n    image: {redis}\n    depends_on:\n      sick: {{condition: service_healthy}}\n  sick:\n    image: {redis}\n    healthcheck:\n      test: [CMD, sh, -c, 'echo checking; exit 1']\n      interval: 500ms\n      retries: 2\n"
            ),
            vec!["app"],
            "dependency sick became unhealthy",
        ),
        (
            format!("services:\n  a:\n    image: {redis}\n    privileged: true\n"),
            vec![],
            "services.a.privileged: not supported by pare",
        ),
    ];
    for (yaml, services, want) in cases {
        let (code, stderr) = build_with(&yaml, &services, &[]);
        assert_eq!(code, Some(2), "{yaml}\n{stderr}");
        assert!(stderr.contains(want), "want {want:?} in:\n{stderr}");
        if want.contains("unhealthy") {
            assert!(stderr.contains("last log lines"), "{stderr}");
        }
    }
    // A published host port already in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (code, stderr) = build_with(
        &format!("services:\n  a:\n    image: {redis}\n    ports: [\"127.0.0.1:{port}:6379\"]\n"),
        &[],
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("host port 127.0.0.1:{port} is already taken")),
        "{stderr}"
    );
    assert_eq!(compose_objects(), before, "nothing left running");
}

#[test]
fn a_dependency_is_healthy_once_its_healthcheck_passes_not_at_dockers_next_interval() {
    let _serial = serial();
    let before = compose_objects();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("compose.yaml");
    // Docker runs the first check only after 300 s; waiting for that would exceed the 60 s
    // health-wait limit and fail.
    let redis = "pare-example/redis:latest";
    std::fs::write(
        &file,
        format!(
            "services:\n  app:\n    image: {redis}\n    command: redis-server --save '' --appendonly no\n    expose: [\"6379\"]\n    depends_on:\n      slow: {{condition: service_healthy}}\n  slow:\n    image: {redis}\n    healthcheck:\n      test: [CMD, redis-cli, ping]\n      interval: 300s\n"
        ),
    )
    .unwrap();
    let t = std::time::Instant::now();
    let out = pare()
        .args(["profile", "--compose"])
        .arg(&file)
        .args(["app", "--output"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(t.elapsed().as_secs() < 60, "{:?}", t.elapsed());
    assert_eq!(compose_objects(), before, "nothing left running");
}

#[test]
fn ctrl_c_removes_the_project_containers_networks_and_volumes() {
    let _serial = serial();
    let before = compose_objects();
    let out_dir = tempfile::tempdir().unwrap();
    let mut child = pare()
        .args(["build", "--compose"])
        .arg(example())
        .args(["api", "--artifacts"])
        .arg(out_dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the dependencies run (their volume and containers exist), then interrupt.
    let mut seen = false;
    for _ in 0..200 {
        let now = compose_objects();
        if now
            .iter()
            .any(|o| o.starts_with("ps ") && o.ends_with("_db"))
        {
            seen = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(seen, "the db dependency never started");
    assert!(
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert_eq!(compose_objects(), before, "Ctrl-C left project objects");
}
