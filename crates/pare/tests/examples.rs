//! `pare xray` on every example image that `scripts/testbed examples` builds.
//!
//! Needs a Docker daemon with the `pare-example/*` images, so it only compiles with the
//! `docker-tests` feature (`.ci/run` → `scripts/test` turns it on).
#![cfg(feature = "docker-tests")]

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

/// Every directory under `examples/` with a Dockerfile; each has a test below.
const EXAMPLES: &[&str] = &[
    "cli-job",
    "compose-api",
    "compose-db",
    "go-server",
    "jdk",
    "musl-busybox",
    "nginx",
    "node-web",
    "numpy-job",
    "postgres",
    "python-web",
    "rabbitmq",
    "redis",
    "shell-entrypoint",
    "tomcat",
    "unused-expose",
];

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn image(name: &str) -> String {
    format!("pare-example/{name}:latest")
}

/// `docker image inspect` of an example image, with a hint when the testbed did not build it.
fn docker_inspect(name: &str) -> Value {
    let out = Command::new("docker")
        .args(["image", "inspect", &image(name)])
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "image {} is missing ({}); build it with `scripts/testbed examples {name}`",
        image(name),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("docker inspect JSON");
    v[0].clone()
}

/// Runs `pare xray --format json REF`, asserts exit 0 and returns the parsed report.
fn xray_json(reference: &str) -> Value {
    let out = Command::cargo_bin("pare")
        .expect("pare binary")
        .args(["xray", "--format", "json", reference])
        .env_remove("CI")
        .output()
        .expect("run pare");
    assert!(
        out.status.success(),
        "pare xray --format json {reference} exited {:?}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "pare xray {reference}: stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
                .chars()
                .take(500)
                .collect::<String>()
        )
    })
}

fn u64_field(v: &Value, key: &str, ctx: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or_else(|| {
        panic!(
            "{ctx}: `{key}` is missing or not an unsigned integer: {:?}",
            v.get(key)
        )
    })
}

/// The checks every example's report must pass, against what the daemon says about the image.
fn check_report(name: &str, report: &Value) {
    let ctx = format!("xray {}", image(name));
    let inspect = docker_inspect(name);
    let diff_ids = inspect["RootFS"]["Layers"]
        .as_array()
        .expect("RootFS.Layers");
    let docker_size = inspect["Size"].as_u64().expect("inspect Size");

    let layers = report
        .get("layers")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("{ctx}: `layers` is missing or not an array"));
    assert_eq!(
        layers.len(),
        diff_ids.len(),
        "{ctx}: one entry per image layer"
    );

    let mut sum = 0u64;
    for (i, layer) in layers.iter().enumerate() {
        let lctx = format!("{ctx} layer {i}");
        let digest = layer
            .get("digest")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{lctx}: `digest` missing"));
        let hex = digest
            .strip_prefix("sha256:")
            .unwrap_or_else(|| panic!("{lctx}: digest {digest} is not sha256:"));
        assert!(
            hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{lctx}: bad digest {digest}"
        );
        // Every source here holds uncompressed layers: their digests are the diff_ids.
        assert_eq!(
            Some(digest),
            diff_ids[i].as_str(),
            "{lctx}: digest is not the layer's diff_id"
        );
        sum += u64_field(layer, "size", &lctx);
        assert!(
            layer.get("created_by").is_some(),
            "{lctx}: `created_by` missing"
        );
    }

    let total = u64_field(report, "total_size", &ctx);
    assert_eq!(
        total, sum,
        "{ctx}: total_size is the sum of the layer sizes"
    );
    // Docker counts file bytes, pare may count tar or file bytes: the same order of magnitude.
    assert!(
        total >= docker_size / 2 && total <= docker_size.saturating_mul(2),
        "{ctx}: total_size {total} is implausible next to docker's {docker_size}"
    );

    let wasted = u64_field(report, "wasted_bytes", &ctx);
    assert!(
        wasted <= total,
        "{ctx}: wasted_bytes {wasted} > total_size {total}"
    );
    let eff = report
        .get("efficiency")
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{ctx}: `efficiency` missing or not a number"));
    assert!(
        (0.0..=100.0).contains(&eff),
        "{ctx}: efficiency {eff} out of range"
    );
    let surface = report
        .get("surface")
        .filter(|v| v.is_object())
        .unwrap_or_else(|| panic!("{ctx}: `surface` missing or not an object"));

    // The attack surface agrees with the image config as the daemon reports it.
    let config = &inspect["Config"];
    let user = config["User"].as_str().unwrap_or("");
    let root = matches!(user.split(':').next().unwrap_or(""), "" | "root" | "0");
    assert_eq!(
        surface["runs_as_root"].as_bool(),
        Some(root),
        "{ctx}: runs_as_root for USER {user:?}"
    );
    let healthcheck = config["Healthcheck"]["Test"]
        .as_array()
        .is_some_and(|t| !t.is_empty());
    assert_eq!(
        surface["healthcheck"].as_bool(),
        Some(healthcheck),
        "{ctx}: healthcheck"
    );
    let mut want_ports: Vec<String> = config["ExposedPorts"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    want_ports.sort();
    let mut got_ports: Vec<String> = surface["exposed_ports"]
        .as_array()
        .unwrap_or_else(|| panic!("{ctx}: surface.exposed_ports missing"))
        .iter()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    got_ports.sort();
    assert_eq!(got_ports, want_ports, "{ctx}: exposed ports");
    // Every example sits on Debian with bash and dpkg, except the Alpine-like musl-busybox,
    // whose shell is busybox.
    let shells = surface["shells"]
        .as_array()
        .unwrap_or_else(|| panic!("{ctx}: surface.shells missing"));
    let shell = if name == "musl-busybox" {
        "busybox"
    } else {
        "bash"
    };
    assert!(
        shells.iter().any(|s| s["name"] == shell),
        "{ctx}: {shell} (from the base) not among the shells: {shells:?}"
    );
}

macro_rules! example_tests {
    ($($fn_name:ident => $name:literal,)*) => {
        $(
            #[test]
            fn $fn_name() {
                let report = xray_json(&format!("docker-daemon:{}", image($name)));
                check_report($name, &report);
            }
        )*
    };
}

example_tests! {
    xray_cli_job => "cli-job",
    xray_compose_api => "compose-api",
    xray_compose_db => "compose-db",
    xray_go_server => "go-server",
    xray_jdk => "jdk",
    xray_musl_busybox => "musl-busybox",
    xray_nginx => "nginx",
    xray_node_web => "node-web",
    xray_numpy_job => "numpy-job",
    xray_python_web => "python-web",
    xray_redis => "redis",
    xray_shell_entrypoint => "shell-entrypoint",
    xray_tomcat => "tomcat",
    xray_rabbitmq => "rabbitmq",
    xray_postgres => "postgres",
    xray_unused_expose => "unused-expose",
}

/// A new example directory must get a test above (and an image from the testbed).
#[test]
fn every_example_dir_is_tested() {
    let mut found: Vec<String> = std::fs::read_dir(examples_dir())
        .expect("read examples/")
        .filter_map(Result::ok)
        .filter(|e| e.path().join("Dockerfile").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    assert_eq!(found, EXAMPLES, "examples/ and the EXAMPLES list differ");
}

/// The same image read from the daemon and from a `docker save` archive gives the same numbers.
#[test]
fn daemon_and_archive_agree_on_cli_job() {
    let name = "cli-job";
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = dir.path().join("cli-job.tar");
    let status = Command::new("docker")
        .args(["save", "-o"])
        .arg(&archive)
        .arg(image(name))
        .status()
        .expect("run docker save");
    assert!(status.success(), "docker save {}", image(name));

    let from_daemon = xray_json(&format!("docker-daemon:{}", image(name)));
    let from_archive = xray_json(&format!("docker-archive:{}", archive.display()));
    check_report(name, &from_archive);
    for key in ["total_size", "wasted_bytes"] {
        assert_eq!(
            from_daemon[key], from_archive[key],
            "{key}: daemon vs archive"
        );
    }
    let sizes = |r: &Value| -> Vec<Value> {
        r["layers"]
            .as_array()
            .map(|l| l.iter().map(|x| x["size"].clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        sizes(&from_daemon),
        sizes(&from_archive),
        "layer sizes: daemon vs archive"
    );
}
