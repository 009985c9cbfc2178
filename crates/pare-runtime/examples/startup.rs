//! Measures container start-up in both runtimes:
//! `cargo run -p pare-runtime --release --example startup -- [ROOTFS] [IMAGE] [RUNS]`
//! (needs root and dockerd; defaults: /var/cache/pare/bookworm, local/debian:bookworm, 10).
//! Prints, per runtime, the median time until `start()` returns (command exec'd) and until a
//! `/bin/true` container has exited and been cleaned up. With `PARE_SENSOR=/path/to/static/
//! pare-sensor`, the same again with the sensor (ptrace only) as PID 1.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pare_runtime::{
    Cancel, DockerRuntime, EmbeddedRuntime, RunSource, RunSpec, Runtime, SensorSpec,
};

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rootfs = PathBuf::from(
        args.first()
            .map_or("/var/cache/pare/bookworm", String::as_str),
    );
    let image = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "local/debian:bookworm".into());
    let runs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let spec = RunSpec {
        source: RunSource::Rootfs(rootfs.clone()),
        command: vec!["/bin/true".into()],
        env: vec![],
        user: String::new(),
        workdir: String::new(),
        ports: vec![],
        sensor: None,
        hostname: String::new(),
    };
    let mut runtimes: Vec<Box<dyn Runtime>> = Vec::new();
    match EmbeddedRuntime::new(&Cancel::new()) {
        Ok(e) => runtimes.push(Box::new(e)),
        Err(e) => eprintln!("embedded: {e}"),
    }
    match DockerRuntime::connect(Duration::from_secs(2), &Cancel::new()) {
        Ok(d) => runtimes.push(Box::new(d)),
        Err(e) => eprintln!("docker: {e}"),
    }
    let sensor = std::env::var_os("PARE_SENSOR").map(PathBuf::from);
    let out = std::env::temp_dir().join(format!("pare-startup-{}", std::process::id()));
    std::fs::create_dir_all(&out).expect("output dir");
    for with_sensor in [false, true] {
        let mut spec = spec.clone();
        if with_sensor {
            let Some(bin) = &sensor else { break };
            spec.sensor = Some(SensorSpec {
                binary: bin.clone(),
                output_dir: out.clone(),
                fanotify: false,
            });
        }
        for rt in &runtimes {
            // Each runtime starts from its own kind of source: the same image either way.
            spec.source = match rt.name() {
                "docker" => RunSource::Daemon(image.clone()),
                _ => RunSource::Rootfs(rootfs.clone()),
            };
            let (mut start, mut total) = (Vec::new(), Vec::new());
            for _ in 0..runs {
                let t0 = Instant::now();
                let c = rt.start(&spec).expect("start");
                start.push(t0.elapsed());
                let exit = c
                    .wait(Duration::from_secs(30))
                    .expect("wait")
                    .expect("exit");
                assert_eq!(exit.code, 0);
                c.cleanup().expect("cleanup");
                total.push(t0.elapsed());
            }
            println!(
                "{:9} {:13} start() {:7.1} ms   start+exit+cleanup {:7.1} ms   (median of {runs})",
                rt.name(),
                if with_sensor { "with sensor" } else { "plain" },
                median(start),
                median(total)
            );
        }
    }
    let _ = std::fs::remove_dir_all(&out);
}
