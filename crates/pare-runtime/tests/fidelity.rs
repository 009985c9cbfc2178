//! The differential fidelity test of issue 8: an inspector image dumps what its process can
//! see (environment, ids, umask, ulimits, capabilities, working dir, hostname, /etc/hosts,
//! resolv.conf, stdin, signal dispositions). It runs under plain `docker run` and under both
//! pare runtimes, traced (the sensor as PID 1) and untraced; the dumps must be identical but
//! for the differences documented in docs/fidelity.md.
//!
//! Needs root, dockerd, `local/debian:bookworm` and the static sensor (`PARE_SENSOR`):
//! `cargo test -p pare-runtime --test fidelity -- --ignored --nocapture`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use pare_runtime::{Cancel, DockerRuntime, EmbeddedRuntime, RunSpec, Runtime, SensorSpec};

const IMAGE: &str = "pare-fidelity/inspector:test";

const SCRIPT: &str = r#"#!/bin/sh
# Dumps what the app can see of its environment (pare's fidelity test, issue 8).
echo "== env"; env | sort
echo "== id"; id
echo "== umask"; umask
echo "== ulimit"; for o in -c -d -f -l -m -n -s -t -v; do printf '%s %s %s\n' "$o" "$(ulimit -S $o 2>&1)" "$(ulimit -H $o 2>&1)"; done
echo "== caps"; grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status
echo "== nonewprivs"; grep -E '^NoNewPrivs' /proc/self/status
echo "== cwd"; pwd
echo "== hostname"; hostname; cat /etc/hostname
echo "== hosts"; cat /etc/hosts
echo "== resolv"; cat /etc/resolv.conf
echo "== stdin"; readlink /proc/self/fd/0; if read -r line; then echo "read: $line"; else echo "read: eof"; fi
echo "== signals"; grep -E '^Sig(Ign|Blk)' /proc/self/status
echo "== tmp"; stat -c '%a %U' /tmp
"#;

const DOCKERFILE: &str = "FROM local/debian:bookworm
RUN useradd -m -d /home/inspector -u 4242 inspector
COPY inspect.sh /inspect.sh
USER inspector
WORKDIR /work
CMD [\"/inspect.sh\"]
";

fn docker(args: &[&str]) -> Option<Vec<u8>> {
    let o = Command::new("docker").args(args).output().ok()?;
    o.status.success().then_some(o.stdout)
}

fn build_inspector() -> Option<()> {
    docker(&["image", "inspect", "local/debian:bookworm"])?;
    let dir = tempfile::tempdir().ok()?;
    std::fs::write(dir.path().join("Dockerfile"), DOCKERFILE).ok()?;
    let script = dir.path().join("inspect.sh");
    std::fs::write(&script, SCRIPT).ok()?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).ok()?;
    docker(&["build", "-q", "-t", IMAGE, dir.path().to_str()?])?;
    Some(())
}

fn sensor_binary() -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var_os("PARE_SENSOR").filter(|p| !p.is_empty())?);
    assert!(p.is_file(), "PARE_SENSOR={} does not exist", p.display());
    Some(p)
}

/// The sections of a dump, with the hostname (a container ID under `docker run`, `pare`
/// under pare) and the container's own address in /etc/hosts replaced by placeholders.
fn sections(dump: &str, hostname: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut name = String::new();
    for line in dump.lines() {
        if let Some(n) = line.strip_prefix("== ") {
            name = n.to_string();
            out.insert(name.clone(), String::new());
            continue;
        }
        let mut l = line.replace(hostname, "HOST");
        if name == "hosts" {
            if let Some((addr, rest)) = l.split_once('\t') {
                if rest == "HOST" && addr.parse::<std::net::Ipv4Addr>().is_ok() {
                    l = format!("ADDR\t{rest}");
                }
            }
        }
        let s = out.entry(name.clone()).or_default();
        s.push_str(&l);
        s.push('\n');
    }
    out
}

/// Layer dirs of the image (top first) for the embedded runtime.
fn layers(image: &str) -> Vec<PathBuf> {
    let gd = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .GraphDriver}}",
        image,
    ])
    .unwrap();
    let gd: serde_json::Value = serde_json::from_slice(&gd).unwrap();
    assert_eq!(gd["Name"], "overlay2", "the test reads overlay2 layer dirs");
    let mut v: Vec<PathBuf> = gd["Data"]["UpperDir"]
        .as_str()
        .map(PathBuf::from)
        .into_iter()
        .collect();
    if let Some(l) = gd["Data"]["LowerDir"].as_str() {
        v.extend(l.split(':').map(PathBuf::from));
    }
    v
}

fn run(
    name: &str,
    runtime: &dyn Fn(&RunSpec) -> Box<dyn pare_runtime::Container>,
    sensor: Option<&Path>,
) -> String {
    let out = tempfile::tempdir().unwrap();
    let spec = RunSpec {
        source: pare_runtime::RunSource::Daemon(IMAGE.into()),
        command: vec!["/inspect.sh".into()],
        env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
        user: "inspector".into(),
        workdir: "/work".into(),
        ports: vec![],
        sensor: sensor.map(|b| SensorSpec {
            binary: b.to_path_buf(),
            output_dir: out.path().to_path_buf(),
            fanotify: true,
        }),
        hostname: "pare".into(),
    };
    let c = runtime(&spec);
    let exit = c
        .wait(Duration::from_secs(60))
        .unwrap()
        .unwrap_or_else(|| panic!("{name}: the inspector did not finish"));
    let (stdout, stderr) = c.logs().unwrap();
    assert_eq!(exit.code, 0, "{name}: {}", String::from_utf8_lossy(&stderr));
    c.cleanup().unwrap();
    String::from_utf8(stdout).unwrap()
}

/// Sections a runtime may show differently, with the reason (docs/fidelity.md).
fn allowed(runtime: &str, section: &str) -> bool {
    matches!(
        (runtime, section),
        // No network but loopback: no DNS server to point at.
        ("embedded", "resolv")
            // The rlimits of the pare process, not dockerd's (or its --default-ulimit).
            | ("embedded", "ulimit")
    )
}

#[test]
#[ignore = "needs root, dockerd, local/debian:bookworm and PARE_SENSOR"]
fn the_app_sees_what_docker_run_gives_it() {
    if build_inspector().is_none() {
        eprintln!("skipped: no docker or no local/debian:bookworm");
        return;
    }
    let Some(sensor) = sensor_binary() else {
        eprintln!("skipped: PARE_SENSOR not set");
        return;
    };
    struct Remove;
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = docker(&["rmi", "-f", IMAGE]);
        }
    }
    let _remove = Remove;
    let reference = String::from_utf8(docker(&["run", "--rm", IMAGE]).unwrap()).unwrap();
    let ref_host = reference
        .lines()
        .skip_while(|l| *l != "== hostname")
        .nth(1)
        .unwrap()
        .to_string();
    let expected = sections(&reference, &ref_host);
    assert!(
        expected["env"].contains("HOME=/home/inspector"),
        "{reference}"
    );

    let docker_rt = DockerRuntime::connect(Duration::from_secs(5), &Cancel::new()).unwrap();
    let embedded = EmbeddedRuntime::new(&Cancel::new()).unwrap();
    let lay = layers(IMAGE);
    let on_docker = |s: &RunSpec| docker_rt.start(s).unwrap();
    let on_embedded = |s: &RunSpec| {
        Box::new(embedded.start_layers(s, &lay).unwrap()) as Box<dyn pare_runtime::Container>
    };
    let mut failures = Vec::new();
    for (runtime, traced) in [
        ("docker", false),
        ("docker", true),
        ("embedded", false),
        ("embedded", true),
    ] {
        let name = format!("{runtime}{}", if traced { " traced" } else { "" });
        let start: &dyn Fn(&RunSpec) -> Box<dyn pare_runtime::Container> = if runtime == "docker" {
            &on_docker
        } else {
            &on_embedded
        };
        let dump = run(&name, start, traced.then_some(sensor.as_path()));
        let got = sections(&dump, "pare");
        for (section, want) in &expected {
            let have = got.get(section).cloned().unwrap_or_default();
            if &have != want && !allowed(runtime, section) {
                failures.push(format!(
                    "{name}: == {section}\n  docker run:\n{want}  pare:\n{have}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
