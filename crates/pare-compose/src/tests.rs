//! Parsing, interpolation, validation and ordering without Docker.

use std::path::Path;

use crate::interpolate::Vars;
use crate::model::{Condition, MountSpec, Project};
use crate::{ComposeError, order};

const APP: &str = r#"
name: demo
services:
  api:
    image: app/api:${TAG:-1}
    command: python3 /srv/app.py --port 8000
    entrypoint: ["/usr/bin/env"]
    environment:
      DATABASE_URL: postgresql://postgres@db/${DB:-notes}
      FROM_HOST:
    env_file: [api.env]
    user: "1000:1000"
    working_dir: /srv
    ports: ["127.0.0.1:18000:8000", "9000"]
    expose: ["8001"]
    volumes:
      - data:/data
      - ./conf:/etc/app:ro
      - type: tmpfs
        target: /scratch
      - /anon
    tmpfs: /run/app
    networks:
      front:
      back:
        aliases: [api-internal]
    depends_on:
      db: {condition: service_healthy}
      cache: {condition: service_started}
      migrate: {condition: service_completed_successfully}
    healthcheck:
      test: ["CMD-SHELL", "curl -f localhost:8000/health"]
      interval: 2s
      retries: 5
    secrets: [token]
    configs: [{source: settings, target: /etc/app/settings.ini}]
    x-pare:
      probes:
        - {kind: http, port: 8000, path: /health}
      includes: ["/srv/**"]
      excludes: ["/usr/share/doc/**"]
      continue-after: "2"
  db:
    image: postgres
    healthcheck:
      test: pg_isready
  cache:
    image: redis
    depends_on: [db]
  migrate:
    image: app/api:1
    depends_on: [db]
  debug:
    image: busybox
    profiles: [debug]
networks:
  front:
  back:
volumes:
  data:
secrets:
  token:
    file: ./token.txt
configs:
  settings:
    file: ./settings.ini
"#;

fn vars(pairs: &[(&str, &str)]) -> Vars {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parse(text: &str, v: &Vars) -> Result<Project, ComposeError> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("api.env"),
        "FROM_FILE=1\nDATABASE_URL=overridden\n",
    )
    .unwrap();
    Project::parse(text, Path::new("compose.yaml"), dir.path(), v, &[])
}

#[test]
fn the_supported_settings_are_read() {
    let p = parse(APP, &vars(&[("FROM_HOST", "h"), ("DB", "prod")])).unwrap();
    assert_eq!(p.name, "demo");
    assert_eq!(p.inactive, ["debug"]);
    let api = &p.services["api"];
    assert_eq!(api.image, "app/api:1");
    assert_eq!(
        api.command.as_deref().unwrap(),
        ["python3", "/srv/app.py", "--port", "8000"]
    );
    assert_eq!(api.entrypoint.as_deref().unwrap(), ["/usr/bin/env"]);
    // env_file first, environment over it; `KEY:` with no value comes from the environment.
    assert!(api.env.contains(&"FROM_FILE=1".to_string()));
    assert!(
        api.env
            .contains(&"DATABASE_URL=postgresql://postgres@db/prod".to_string())
    );
    assert!(!api.env.iter().any(|e| e == "DATABASE_URL=overridden"));
    assert!(api.env.contains(&"FROM_HOST=h".to_string()));
    assert_eq!(api.user.as_deref(), Some("1000:1000"));
    assert_eq!(api.working_dir.as_deref(), Some("/srv"));
    assert_eq!(api.published[0].host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(api.published[0].host_port, Some(18000));
    assert_eq!(api.published[1].host_port, None);
    assert_eq!(api.ports(), [8000, 9000, 8001]);
    assert!(
        matches!(&api.mounts[0], MountSpec::Volume { name: Some(n), target, read_only: false } if n == "data" && target == "/data")
    );
    assert!(
        matches!(&api.mounts[1], MountSpec::Bind { source, read_only: true, .. } if source.ends_with("conf"))
    );
    assert!(matches!(&api.mounts[2], MountSpec::Tmpfs { target } if target == "/scratch"));
    assert!(matches!(
        &api.mounts[3],
        MountSpec::Volume { name: None, .. }
    ));
    assert!(api.mounts.iter().any(|m| m.target() == "/run/app"));
    assert!(api.mounts.iter().any(|m| matches!(m, MountSpec::Bind { source, target, read_only: true } if target == "/run/secrets/token" && source.ends_with("token.txt"))));
    assert!(
        api.mounts
            .iter()
            .any(|m| m.target() == "/etc/app/settings.ini")
    );
    assert_eq!(
        api.networks[1],
        ("back".to_string(), vec!["api-internal".to_string()])
    );
    assert_eq!(
        api.depends_on,
        [
            ("db".to_string(), Condition::ServiceHealthy),
            ("cache".to_string(), Condition::ServiceStarted),
            (
                "migrate".to_string(),
                Condition::ServiceCompletedSuccessfully
            )
        ]
    );
    let h = api.healthcheck.as_ref().unwrap();
    assert_eq!(
        h.argv().unwrap(),
        ["/bin/sh", "-c", "curl -f localhost:8000/health"]
    );
    assert_eq!(h.interval, Some(std::time::Duration::from_secs(2)));
    assert_eq!(h.retries, Some(5));
    assert_eq!(api.x_pare.includes, ["/srv/**"]);
    assert_eq!(api.x_pare.excludes, ["/usr/share/doc/**"]);
    assert_eq!(api.x_pare.continue_after.as_deref(), Some("2"));
    assert!(api.x_pare.probes.is_some());
    assert_eq!(
        p.services["db"]
            .healthcheck
            .as_ref()
            .unwrap()
            .argv()
            .unwrap(),
        ["/bin/sh", "-c", "pg_isready"]
    );
    let cache = parse(
        "services:\n  c:\n    image: r\n    healthcheck:\n      test: [CMD, redis-cli, ping]\n",
        &Vars::new(),
    )
    .unwrap();
    let h = cache.services["c"].healthcheck.clone().unwrap();
    assert_eq!(h.test, ["CMD", "redis-cli", "ping"]);
    assert_eq!(h.argv().unwrap(), ["redis-cli", "ping"]);
    assert_eq!(p.services["db"].networks, [("default".to_string(), vec![])]);
}

#[test]
fn profiles_activate_services() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api.env"), "").unwrap();
    let p = Project::parse(
        APP,
        Path::new("c.yaml"),
        dir.path(),
        &vars(&[("COMPOSE_PROFILES", "debug")]),
        &[],
    )
    .unwrap();
    assert!(p.services.contains_key("debug"));
}

#[test]
fn a_missing_variable_is_an_error_naming_it() {
    let e = parse("services:\n  a:\n    image: ${IMAGE}\n", &Vars::new()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ComposeError::Interpolate { .. }));
    let src = std::error::Error::source(&e).unwrap().to_string();
    assert!(
        src.contains("services.a.image") && src.contains("IMAGE"),
        "{msg}: {src}"
    );
    let e = parse(
        "services:\n  a:\n    image: ${IMAGE:?set the image}\n",
        &Vars::new(),
    )
    .unwrap_err();
    assert!(
        std::error::Error::source(&e)
            .unwrap()
            .to_string()
            .contains("set the image")
    );
}

#[test]
fn errors_quoting_the_file_stay_on_one_line() {
    // pare's own messages in the chain (not a third-party source's).
    let chain = |e: &ComposeError| {
        let mut out = e.to_string();
        if let Some(c) = std::error::Error::source(e)
            .and_then(|c| c.downcast_ref::<crate::interpolate::InterpolateError>())
        {
            out.push_str(&format!(": {c}"));
        }
        out
    };
    for (text, v, want) in [
        // (compose_spec's own messages, which may quote a value with a line break, are the
        // `Shape` error's source; the CLI folds them onto the line.)
        // A key with one, unsupported, or on the path of an interpolation error.
        (
            "services:\n  a:\n    image: x\n    \"k\\ney\": 1\n",
            Vars::new(),
            "services.a.k\\ney",
        ),
        ("\"k\\ney\": 1\n", Vars::new(), "k\\ney"),
        (
            "services:\n  a:\n    image: x\n    environment:\n      \"k\\ney\": ${U}\n",
            Vars::new(),
            "environment.k\\ney",
        ),
    ] {
        let m = chain(&parse(text, &v).unwrap_err());
        assert!(
            !m.contains('\n') && m.contains(want),
            "{m:?} lacks {want:?}"
        );
    }
}

#[test]
fn backward_port_ranges_are_errors_not_overflows() {
    for (ports, key) in [
        ("ports: [\"127.0.0.1:18-000:8000\"]", "ports"),
        ("ports: [\"8010-8000:8000-8010/tcp\"]", "ports"),
        ("ports: [{target: 80, published: \"90-81\"}]", "ports"),
        ("expose: [\"9-1\"]", "expose"),
    ] {
        let text = format!("services:\n  a:\n    image: x\n    {ports}\n");
        let e = parse(&text, &Vars::new()).unwrap_err().to_string();
        assert!(
            e.contains(&format!("services.a.{key}: the port range")) && e.contains("ends before"),
            "{ports}: {e}"
        );
    }
    let ok = "services:\n  a:\n    image: x\n    ports: [\"8000-8001:9000-9001\"]\n    expose: [\"80-82\"]\n";
    assert!(parse(ok, &Vars::new()).is_ok());
}

#[test]
fn unsupported_keys_are_named() {
    for (text, key) in [
        (
            "services:\n  a:\n    image: x\n    privileged: true\n",
            "services.a.privileged",
        ),
        (
            "services:\n  a:\n    image: x\n    cap_add: [NET_ADMIN]\n",
            "services.a.cap_add",
        ),
        (
            "include: [other.yaml]\nservices:\n  a:\n    image: x\n",
            "include",
        ),
        (
            "services:\n  a:\n    image: x\nvolumes:\n  v:\n    external: true\n",
            "volumes.v.external",
        ),
    ] {
        let e = parse(text, &Vars::new()).unwrap_err();
        assert!(
            matches!(&e, ComposeError::Unsupported { key: k, .. } if k == key),
            "{text}: {e}"
        );
        assert!(e.to_string().contains("not supported by pare"));
    }
    // Misspelt keys are caught by the spec itself.
    let e = parse(
        "services:\n  a:\n    image: x\n    comand: y\n",
        &Vars::new(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("comand"), "{e}");
    // Keys that change nothing pare runs are accepted with a notice.
    let p = parse(
        "services:\n  a:\n    image: x\n    restart: always\n",
        &Vars::new(),
    )
    .unwrap();
    assert_eq!(
        p.notices,
        ["services.a.restart: accepted, not applied by pare"]
    );
    let e = parse(
        "services:\n  a:\n    image: x\n    x-pare: {probe: []}\n",
        &Vars::new(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("x-pare"), "{e}");
    let e = parse("services:\n  a:\n    build: .\n", &Vars::new()).unwrap_err();
    assert!(e.to_string().contains("no image"), "{e}");
}

#[test]
fn unknown_services_and_dependencies() {
    let p = parse(APP, &vars(&[("FROM_HOST", "h")])).unwrap();
    let e = order::targets(&p, &["nope".to_string()]).unwrap_err();
    assert!(e.to_string().contains("no service named \"nope\""), "{e}");
    assert_eq!(order::targets(&p, &[]).unwrap().len(), 4);
    let e = parse(
        "services:\n  a:\n    image: x\n    depends_on: [b]\n",
        &Vars::new(),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            ComposeError::UnknownDependency {
                inactive: false,
                ..
            }
        ),
        "{e}"
    );
    let e = parse(
        "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: y\n    profiles: [p]\n",
        &Vars::new(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("inactive profile"), "{e}");
}

#[test]
fn dependency_order_and_cycles() {
    let p = parse(APP, &vars(&[("FROM_HOST", "h")])).unwrap();
    let o = order::start_order(&p).unwrap();
    let pos = |n: &str| o.iter().position(|s| s == n).unwrap();
    assert!(pos("db") < pos("cache") && pos("db") < pos("migrate"));
    assert!(pos("cache") < pos("api") && pos("migrate") < pos("api"));
    assert_eq!(order::dependencies_in_order(&p, "api", &o).len(), 3);
    assert!(order::dependencies_in_order(&p, "db", &o).is_empty());

    let cyc = "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [c]\n  c:\n    image: x\n    depends_on: [a]\n";
    let p = parse(cyc, &Vars::new()).unwrap();
    let e = order::start_order(&p).unwrap_err();
    assert_eq!(e.to_string(), "depends_on cycle: a -> b -> c -> a");
}

#[test]
fn a_long_dependency_chain_is_ordered_without_deep_recursion() {
    // s0 → s1 → … → s5000; it overflowed the stack when the walk recursed (the compose fuzz
    // target's replay thread has 2 MiB; this one 256 KiB).
    let n = 5000;
    let mut text = String::from("services:\n");
    for i in 0..n {
        text.push_str(&format!("  s{i}: {{image: x, depends_on: [s{}]}}\n", i + 1));
    }
    text.push_str(&format!("  s{n}: {{image: x}}\n"));
    let p = parse(&text, &Vars::new()).unwrap();
    let (order, cycle) = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || {
            let order = order::start_order(&p).unwrap();
            let mut p = p;
            p.services.get_mut(&format!("s{n}")).unwrap().depends_on =
                vec![("s0".into(), Condition::ServiceStarted)];
            (order, order::start_order(&p))
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(order.len(), n + 1);
    assert_eq!(order[0], format!("s{n}"));
    assert_eq!(order[n], "s0");
    // Closing the chain (s5000 → s0) makes it one cycle through every service.
    match cycle {
        Err(ComposeError::Cycle { cycle }) => {
            assert_eq!(cycle.len(), n + 2);
            assert_eq!((cycle[0].as_str(), cycle[n + 1].as_str()), ("s0", "s0"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn dotenv_and_environment_feed_interpolation() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("compose.yaml");
    std::fs::write(&file, "services:\n  a:\n    image: ${IMG}:${TAG}\n").unwrap();
    std::fs::write(dir.path().join(".env"), "IMG=from-dotenv\nTAG=1\n").unwrap();
    let opts = crate::LoadOptions {
        profiles: vec![],
        env: Some(vars(&[("TAG", "2")])),
    };
    let p = Project::load(&file, &opts).unwrap();
    assert_eq!(
        p.services["a"].image, "from-dotenv:2",
        "the environment wins over .env"
    );
    std::fs::write(dir.path().join(".env"), "not valid\n").unwrap();
    assert!(matches!(
        Project::load(&file, &opts),
        Err(ComposeError::EnvFile { line: 1, .. })
    ));
}

#[test]
fn probes_come_from_x_pare_then_ports_and_the_healthcheck_is_one() {
    use crate::run::probe_file_text;
    let p = parse(APP, &vars(&[("FROM_HOST", "h")])).unwrap();
    let probes = pare_probe::parse_probe_file(
        &probe_file_text(&p.services["api"]).unwrap(),
        Path::new("probes.yaml"),
    )
    .unwrap();
    assert_eq!(probes.len(), 2, "{probes:?}");
    assert!(
        matches!(&probes[0], pare_trace::ProbeSpec::Http { port: 8000, path, .. } if path == "/health")
    );
    assert!(matches!(&probes[1], pare_trace::ProbeSpec::Exec { argv } if argv[0] == "/bin/sh"));
    // No x-pare probes: a TCP probe per port; nothing at all: the service is a job.
    let q = parse(
        "services:\n  a:\n    image: x\n    expose: [\"5432\"]\n  b:\n    image: y\n",
        &Vars::new(),
    )
    .unwrap();
    let a =
        pare_probe::parse_probe_file(&probe_file_text(&q.services["a"]).unwrap(), Path::new("p"))
            .unwrap();
    assert_eq!(a, [pare_trace::ProbeSpec::Tcp { port: 5432 }]);
    let b =
        pare_probe::parse_probe_file(&probe_file_text(&q.services["b"]).unwrap(), Path::new("p"))
            .unwrap();
    assert_eq!(b, [pare_trace::ProbeSpec::Job]);
}

#[test]
fn the_override_names_slim_images_and_seccomp_profiles() {
    use crate::run::{ServiceOutcome, override_yaml};
    let dir = tempfile::tempdir().unwrap();
    let o = |service: &str, slim: Option<&str>| ServiceOutcome {
        service: service.into(),
        image: "x".into(),
        slim: slim.map(String::from),
        report: dir.path().join(service).join("report.json"),
        source_size: None,
        slim_size: None,
        verified: Some(true),
        problems: vec![],
        seconds: 0.0,
    };
    let text = override_yaml(
        &[o("api", Some("app/api.slim:1")), o("db", None)],
        dir.path(),
    );
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let api = &doc["services"]["api"];
    assert_eq!(api["image"].as_str(), Some("app/api.slim:1"));
    let sec = api["security_opt"][0].as_str().unwrap();
    assert!(
        sec.starts_with("seccomp:/") && sec.ends_with("/api/seccomp.json"),
        "{sec}"
    );
    assert!(doc["services"].get("db").is_none(), "only slimmed services");
    // The override is itself a valid Compose file.
    let spec: compose_spec::Compose = serde_yaml::from_value(doc).unwrap();
    assert_eq!(spec.services.len(), 1);
}

#[test]
fn image_names_take_a_registry_host_and_port_as_docker_does() {
    for image in [
        "localhost:5000/shop/app:2",
        "registry:5000/app",
        "localhost/app",
        "127.0.0.1:5555/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "quay.io:443/org/app:1.0",
        "app",
    ] {
        let text = format!("services:\n  a:\n    image: \"{image}\"\n");
        let p = parse(&text, &Vars::new()).unwrap_or_else(|e| panic!("{image}: {e}"));
        assert_eq!(p.services["a"].image, image);
    }
    for (image, says) in [
        ("Shop/App:2", "services.a.image: `Shop/App:2`"),
        ("app:bad tag", "services.a.image: `app:bad tag`"),
        ("", "services.a.image: ``: missing image name"),
    ] {
        let text = format!("services:\n  a:\n    image: \"{image}\"\n");
        let e = parse(&text, &Vars::new()).unwrap_err().to_string();
        assert!(e.contains(says) && !e.contains('\n'), "{image}: {e}");
    }
    let e = parse("services:\n  a:\n    image: [x]\n", &Vars::new())
        .unwrap_err()
        .to_string();
    assert!(e.contains("compose.yaml"), "{e}");
}
