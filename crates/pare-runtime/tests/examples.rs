//! The example images of the testbed (`pare-example/*`, built by scripts outside this crate)
//! run the same in both runtimes: each answers on its exposed port, and under the sensor both
//! runtimes record the same files. Needs root and dockerd; images that are missing are
//! skipped. Run: `cargo test -p pare-runtime --test examples -- --ignored --nocapture`.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pare_runtime::{
    Cancel, Container, DockerRuntime, EmbeddedRuntime, RunSource, RunSpec, Runtime, SensorSpec,
};

const IMAGES: &[&str] = &[
    "python-web",
    "nginx",
    "node-web",
    "go-server",
    "redis",
    "shell-entrypoint",
];

fn docker_cli(args: &[&str]) -> Option<Vec<u8>> {
    let o = Command::new("docker").args(args).output().ok()?;
    o.status.success().then_some(o.stdout)
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// A read-only view of an image's filesystem at `dir`: with the overlay2 storage driver an
/// overlay of the image's own layer dirs (no copy), else `docker export` into `dir`.
struct Rootfs {
    dir: PathBuf,
    mounted: bool,
}

impl Rootfs {
    fn new(image: &str, dir: &Path) -> Option<Self> {
        let gd = docker_cli(&[
            "image",
            "inspect",
            "--format",
            "{{json .GraphDriver}}",
            image,
        ])?;
        let gd: serde_json::Value = serde_json::from_slice(&gd).ok()?;
        if gd["Name"] == "overlay2" {
            let data = &gd["Data"];
            let mut lowers: Vec<&str> = data["UpperDir"].as_str().into_iter().collect();
            lowers.extend(
                data["LowerDir"]
                    .as_str()
                    .map(|l| l.split(':').collect::<Vec<_>>())
                    .unwrap_or_default(),
            );
            if lowers.len() == 1 {
                return Some(Rootfs {
                    dir: PathBuf::from(lowers[0]),
                    mounted: false,
                });
            }
            let opts = format!("lowerdir={}", lowers.join(":"));
            nix::mount::mount(
                Some("overlay"),
                dir,
                Some("overlay"),
                nix::mount::MsFlags::MS_RDONLY,
                Some(opts.as_str()),
            )
            .unwrap_or_else(|e| panic!("overlay of {image}'s layers: {e}"));
            return Some(Rootfs {
                dir: dir.to_path_buf(),
                mounted: true,
            });
        }
        let id = String::from_utf8(docker_cli(&["create", image])?)
            .ok()?
            .trim()
            .to_string();
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("docker export {id} | tar -x -C {}", dir.display()))
            .status()
            .ok()?;
        docker_cli(&["rm", "-f", &id]);
        assert!(status.success(), "export of {image}");
        Some(Rootfs {
            dir: dir.to_path_buf(),
            mounted: false,
        })
    }
}

impl Drop for Rootfs {
    fn drop(&mut self) {
        if self.mounted {
            let _ = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// The RunSpec for an image from its config, starting from the daemon's image (see
/// [`on_runtime`] for the embedded runtime).
fn image_spec(image: &str) -> Option<RunSpec> {
    let cfg = docker_cli(&["image", "inspect", "--format", "{{json .Config}}", image])?;
    let cfg: serde_json::Value = serde_json::from_slice(&cfg).ok()?;
    let mut command = strings(&cfg["Entrypoint"]);
    command.extend(strings(&cfg["Cmd"]));
    let ports = cfg["ExposedPorts"]
        .as_object()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.strip_suffix("/tcp")?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    Some(RunSpec {
        source: RunSource::Daemon(image.to_string()),
        command,
        env: strings(&cfg["Env"]),
        user: cfg["User"].as_str().unwrap_or("").to_string(),
        workdir: cfg["WorkingDir"].as_str().unwrap_or("").to_string(),
        ports,
        sensor: None,
        hostname: "example".into(),
    })
}

/// First line of the app's answer on `port` (HTTP GET /, or PING for redis), retried until ready.
fn probe(c: &dyn Container, port: u16, redis: bool) -> String {
    let addr = c.endpoint(port).expect("endpoint");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(if redis {
                b"PING\r\n"
            } else {
                b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"
            })?;
            let mut buf = vec![0u8; 256];
            let n = s.read(&mut buf)?;
            Ok(String::from_utf8_lossy(&buf[..n])
                .lines()
                .next()
                .unwrap_or("")
                .to_string())
        })();
        match attempt {
            Ok(line) if !line.is_empty() => return line,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("no answer on {addr}: {other:?}; logs {:?}", c.logs()),
        }
    }
}

/// The static sensor: `PARE_SENSOR` (must exist when set, as in CI), else the workspace's
/// scripts/build-sensor output (target/pare-sensor-embed) if present.
fn sensor_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PARE_SENSOR").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "PARE_SENSOR={} does not exist", p.display());
        return Some(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/pare-sensor-embed/x86_64-unknown-linux-gnu/release/pare-sensor");
    p.is_file().then_some(p)
}

/// `spec` for `rt`: the same image as its own kind of source (the daemon's image for docker,
/// `rootfs` for the embedded runtime).
fn on_runtime(rt: &dyn Runtime, spec: &RunSpec, rootfs: &Path) -> RunSpec {
    let mut spec = spec.clone();
    if rt.name() == "embedded" {
        spec.source = RunSource::Rootfs(rootfs.to_path_buf());
    }
    spec
}

/// Runs the image (the daemon's on docker, `rootfs` on the embedded runtime), probes its first
/// port; with a sensor, returns the recorded file set.
fn run(
    rt: &dyn Runtime,
    spec: &RunSpec,
    rootfs: &Path,
    name: &str,
) -> (String, pare_trace::ExitInfo, Option<BTreeSet<String>>) {
    let spec = &on_runtime(rt, spec, rootfs);
    let t0 = Instant::now();
    let c = rt
        .start(spec)
        .unwrap_or_else(|e| panic!("{name} on {}: {e}", rt.name()));
    let port = spec.ports[0];
    let answer = probe(c.as_ref(), port, name == "redis");
    let ready = t0.elapsed();
    let exit = c.stop(Duration::from_secs(2)).unwrap();
    eprintln!(
        "{name:17} {:9} answer {answer:?} after {ready:?}; exit {exit:?}",
        rt.name()
    );
    let files = spec.sensor.as_ref().map(|s| {
        let text = std::fs::read_to_string(s.output_dir.join("sensor.json")).unwrap_or_else(|e| {
            panic!(
                "{name} on {}: sensor.json: {e}; logs {:?}",
                rt.name(),
                c.logs()
            )
        });
        let report: pare_trace::SensorReport = serde_json::from_str(&text).unwrap();
        // Pipe and socket names (`/proc/1/fd/pipe:[123]`) differ by inode from run to run.
        report
            .files
            .into_keys()
            .filter(|p| !p.contains(":["))
            .collect()
    });
    c.cleanup().unwrap();
    (answer, exit, files)
}

#[test]
#[ignore = "needs root, docker and the pare-example images"]
fn example_images_behave_the_same_in_both_runtimes() {
    let docker = DockerRuntime::connect(Duration::from_secs(3), &Cancel::new()).expect("docker");
    let tmp = tempfile::tempdir().unwrap();
    let embedded =
        EmbeddedRuntime::with_temp_root(tmp.path().join("runs"), &Cancel::new()).unwrap();
    let sensor = sensor_binary();
    let mut tested = 0;
    for name in IMAGES {
        let image = format!("pare-example/{name}");
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let Some(rootfs) = Rootfs::new(&image, &dir) else {
            eprintln!("skipping {image}: not present");
            continue;
        };
        let Some(mut spec) = image_spec(&image) else {
            continue;
        };
        tested += 1;
        let (a, exit_a, _) = run(&docker, &spec, &rootfs.dir, name);
        let (b, exit_b, _) = run(&embedded, &spec, &rootfs.dir, name);
        assert_eq!(a, b, "{name}: same answer in both runtimes");
        assert_eq!(
            exit_a, exit_b,
            "{name}: same exit after stop in both runtimes"
        );
        assert!(a.starts_with("HTTP/1.") || a == "+PONG", "{name}: {a}");
        let Some(bin) = &sensor else { continue };
        let mut sets = Vec::new();
        let mut exits = Vec::new();
        for rt in [&docker as &dyn Runtime, &embedded] {
            let out = tempfile::tempdir().unwrap();
            spec.sensor = Some(SensorSpec {
                binary: bin.clone(),
                output_dir: out.path().to_path_buf(),
                fanotify: false,
            });
            let (answer, exit, files) = run(rt, &spec, &rootfs.dir, name);
            assert_eq!(answer, a, "{name} under the sensor on {}", rt.name());
            sets.push(files.unwrap());
            exits.push(exit);
        }
        let only_docker: Vec<_> = sets[0].difference(&sets[1]).collect();
        let only_embedded: Vec<_> = sets[1].difference(&sets[0]).collect();
        eprintln!(
            "{name}: {} files; only docker {only_docker:?}; only embedded {only_embedded:?}",
            sets[0].len()
        );
        assert!(
            only_docker.is_empty() && only_embedded.is_empty(),
            "{name}: the sensor sees the same files"
        );
        assert_eq!(exits[0], exits[1], "{name}: same exit under the sensor");
        spec.sensor = None;
        drop(rootfs);
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(tested > 0, "no pare-example image present");
    assert_eq!(
        std::fs::read_dir(tmp.path().join("runs")).unwrap().count(),
        0
    );
}

/// The embedded runtime runs a local image straight from Docker's overlay2 layer dirs
/// (`start_layers`), without extracting or mounting anything on the host.
#[test]
#[ignore = "needs root, docker (overlay2) and the pare-example images"]
fn embedded_runs_docker_overlay2_layers_directly() {
    let image = "pare-example/nginx";
    let Some(gd) = docker_cli(&[
        "image",
        "inspect",
        "--format",
        "{{json .GraphDriver}}",
        image,
    ]) else {
        eprintln!("skipping: {image} not present");
        return;
    };
    let gd: serde_json::Value = serde_json::from_slice(&gd).unwrap();
    if gd["Name"] != "overlay2" {
        eprintln!("skipping: storage driver {} is not overlay2", gd["Name"]);
        return;
    }
    let mut layers: Vec<PathBuf> = gd["Data"]["UpperDir"]
        .as_str()
        .map(PathBuf::from)
        .into_iter()
        .collect();
    layers.extend(
        gd["Data"]["LowerDir"]
            .as_str()
            .unwrap_or("")
            .split(':')
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
    );
    let tmp = tempfile::tempdir().unwrap();
    // start_layers starts from `layers`, not from the spec's source.
    let spec = image_spec(image).unwrap();
    let rt = EmbeddedRuntime::with_temp_root(tmp.path(), &Cancel::new()).unwrap();
    let t0 = Instant::now();
    let c = rt.start_layers(&spec, &layers).unwrap();
    let started = t0.elapsed();
    let answer = probe(&c, spec.ports[0], false);
    eprintln!(
        "{image}: {} layers, started in {started:?}, answer {answer:?} after {:?}",
        layers.len(),
        t0.elapsed()
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Writes land in the sandbox's tmpfs upper dir, never in Docker's layers.
    let o = c
        .exec(
            &[
                "sh".into(),
                "-c".into(),
                "echo x > /pare-layer-test && cat /pare-layer-test".into(),
            ],
            Duration::from_secs(10),
        )
        .unwrap();
    assert_eq!(o.stdout, b"x\n");
    assert!(layers.iter().all(|l| !l.join("pare-layer-test").exists()));
    drop(c);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}
