//! `pare xray` end to end on synthetic images written as docker-archive and OCI layouts.

use std::path::Path;

use pare_source::Compression;
use pare_test_support::fixture::{self, DockerArchiveFormat, Image};
use pare_test_support::layer::LayerBuilder as L;
use serde_json::{Value, json};

use crate::cli::{exited, pare_cmd as pare};

/// An image with known waste: a file written 3 times (100, 200, 300 bytes), a deleted directory
/// (10 + 20 bytes), an opaque directory (7 + 11 bytes), hard-linked data deleted by both names
/// (50 bytes once). Waste = 100 + 200 + 30 + 18 + 50 = 398.
fn waste_image() -> Image {
    let layers = vec![
        L::new()
            .dir("a")
            .sized("a/f", 100, b'1')
            .dir("d")
            .sized("d/x", 10, b'x')
            .sized("d/y", 20, b'y')
            .dir("o")
            .sized("o/a", 7, b'a')
            .sized("o/b", 11, b'b')
            .dir("h")
            .sized("h/data", 50, b'h')
            .hardlink("h/link", "h/data")
            .dir("bin")
            .file_mode("bin/sh", b"#!", 0o755)
            .finish(),
        L::new()
            .dir("a")
            .sized("a/f", 200, b'2')
            .whiteout("d")
            .finish(),
        L::new()
            .dir("a")
            .sized("a/f", 300, b'3')
            .dir("o")
            .opaque("o")
            .sized("o/c", 13, b'c')
            .finish(),
        L::new().whiteout("h").finish(),
    ];
    let history: Vec<Value> = [
        "/bin/sh -c #(nop) ADD file:base in / ",
        "/bin/sh -c echo 2",
        "RUN /bin/sh -c echo 3 # buildkit",
        "/bin/sh -c rm -r /h",
    ]
    .iter()
    .map(|c| json!({"created_by": c}))
    .chain([json!({"created_by": "/bin/sh -c #(nop)  CMD [\"sh\"]", "empty_layer": true})])
    .collect();
    let mut img = Image::new(layers);
    img.config["history"] = json!(history);
    img.config["config"]["ExposedPorts"] = json!({"8080/tcp": {}});
    img.tagged("waste:1")
}

/// Runs `c` (a `pare xray … --format json`), asserting it succeeds; the report.
fn json_of(c: &mut assert_cmd::Command) -> Value {
    serde_json::from_str(&exited(&c.output().unwrap(), 0)).unwrap()
}

fn xray_json(reference: &str) -> Value {
    json_of(pare().args(["xray", reference, "--format", "json"]))
}

/// The parts of a report that must not depend on how the image was stored.
fn comparable(v: &Value) -> Value {
    let layers: Vec<Value> = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let mut l = l.clone();
            let o = l.as_object_mut().unwrap();
            o.remove("digest");
            o.remove("compressed_size");
            l
        })
        .collect();
    json!({
        "layers": layers,
        "total_size": v["total_size"], "final_size": v["final_size"], "wasted_bytes": v["wasted_bytes"],
        "efficiency": v["efficiency"], "user_wasted_percent": v["user_wasted_percent"], "entries": v["entries"],
        "wasted_files": v["wasted_files"], "largest_files": v["largest_files"], "largest_dirs": v["largest_dirs"],
        "duplicates": v["duplicates"], "surface": v["surface"], "os": v["os"], "packages": v["packages"],
        "dockerfile": v["dockerfile"], "config_digest": v["image"]["config_digest"],
    })
}

#[test]
fn waste_numbers_are_exact_and_equal_across_archive_and_layout_formats() {
    let t = tempfile::tempdir().unwrap();
    let img = waste_image();
    let legacy = t.path().join("legacy.tar");
    let ocitar = t.path().join("oci.tar");
    let layout = t.path().join("layout");
    fixture::write_docker_archive(&legacy, &img, DockerArchiveFormat::Legacy).unwrap();
    fixture::write_docker_archive(&ocitar, &img, DockerArchiveFormat::Oci).unwrap();
    fixture::write_oci_layout(&layout, &img, Compression::Gzip).unwrap();

    let v = xray_json(&format!("docker-archive:{}", legacy.display()));
    assert_eq!(v["wasted_bytes"], 398);
    assert_eq!(
        v["total_size"],
        100 + 10 + 20 + 7 + 11 + 50 + 2 + 200 + 300 + 13
    );
    assert_eq!(v["final_size"], 300 + 13 + 2);
    let per_layer: Vec<u64> = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["wasted_bytes"].as_u64().unwrap())
        .collect();
    assert_eq!(per_layer, vec![100 + 30 + 18 + 50, 200, 0, 0]);
    assert_eq!(v["layers"][3]["deleted"], 3); // h, h/data, h/link
    assert_eq!(
        v["layers"][0]["created_by"],
        "/bin/sh -c #(nop) ADD file:base in / "
    );
    assert_eq!(
        v["dockerfile"],
        json!([
            "ADD file:base /",
            "RUN echo 2",
            "RUN echo 3",
            "RUN rm -r /h",
            "CMD [\"sh\"]"
        ])
    );
    assert_eq!(v["surface"]["exposed_ports"], json!(["8080/tcp"]));
    assert_eq!(v["surface"]["shells"][0]["path"], "/bin/sh");
    assert_eq!(
        v["layers"][0]["compressed_size"],
        json!(img.layers[0].len())
    );

    let a = comparable(&v);
    assert_eq!(
        a,
        comparable(&xray_json(&format!("docker-archive:{}", ocitar.display())))
    );
    let oci = xray_json(&format!("oci:{}", layout.display()));
    assert_eq!(a, comparable(&oci));
    // Gzip layout: stored sizes are the compressed ones.
    assert!(oci["layers"][0]["compressed_size"].as_u64().unwrap() < img.layers[0].len() as u64);
}

/// `img` written as a legacy `docker save` archive in `dir`: its reference.
fn archive_of(dir: &Path, img: &Image) -> String {
    let p = dir.join("img.tar");
    fixture::write_docker_archive(&p, img, DockerArchiveFormat::Legacy).unwrap();
    format!("docker-archive:{}", p.display())
}

fn archive(dir: &Path, layers: Vec<Vec<u8>>) -> String {
    archive_of(dir, &Image::new(layers))
}

#[test]
fn ci_rules_from_flags_file_and_env() {
    let t = tempfile::tempdir().unwrap();
    let r = archive_of(t.path(), &waste_image());
    // efficiency = 1 - 398/713 ≈ 0.442; user wasted = 398 / 513 ≈ 0.776
    pare()
        .args(["xray", &r, "--ci"])
        .assert()
        .code(1)
        .stdout(predicates::str::contains("FAIL"));
    // Efficiency passes at 0.44: the other two rules decide.
    let efficiency_044 = |rules: &[&str]| {
        pare()
            .args(["xray", &r, "--ci", "--lowest-efficiency", "0.44"])
            .args(rules)
            .assert()
    };
    efficiency_044(&["--highest-user-wasted-percent", "disabled"]).code(0);
    efficiency_044(&[
        "--highest-user-wasted-percent",
        "0.8",
        "--highest-wasted-bytes",
        "397B",
    ])
    .code(1);
    // .dive-ci in the working directory, CI mode from the environment.
    let cwd = t.path().join("proj");
    std::fs::create_dir(&cwd).unwrap();
    std::fs::write(cwd.join(".dive-ci"), "rules:\n  lowestEfficiency: 0.44\n  highestUserWastedPercent: disabled\n  highestWastedBytes: 1KB\n").unwrap();
    let v = json_of(
        pare()
            .current_dir(&cwd)
            .env("CI", "true")
            .args(["xray", &r, "--format", "json"]),
    );
    assert_eq!(v["ci"].as_array().unwrap().len(), 3);
    assert_eq!(v["ci"][2]["status"], "disabled");
    std::fs::write(cwd.join(".dive-ci"), "rules:\n  highestWastedBytes: 100B\n  highestUserWastedPercent: disabled\n  lowestEfficiency: disabled\n").unwrap();
    pare()
        .current_dir(&cwd)
        .env("CI", "true")
        .args(["xray", &r])
        .assert()
        .code(1);
    // A broken rules file is an error (2), named in the message.
    std::fs::write(cwd.join(".dive-ci"), "rules:\n  lowestEfficiency: lots\n").unwrap();
    pare()
        .current_dir(&cwd)
        .args(["xray", &r, "--ci"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(".dive-ci"));
    // Without CI mode, rules are not applied.
    pare().current_dir(&cwd).args(["xray", &r]).assert().code(0);
}

fn assert_one_line_error(reference: &str, needles: &[&str]) {
    let out = pare().args(["xray", reference]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    for n in needles {
        assert!(err.contains(n), "`{n}` not in: {err}");
    }
    assert!(!err.contains("panicked"));
}

#[test]
fn bad_input_gives_one_line_errors_and_exit_2() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let dotdot = L::new()
        .raw(tar::EntryType::Regular, b"../x", b"", b"pwn")
        .finish();
    let r = archive(d, vec![dotdot.clone()]);
    assert_one_line_error(
        &r,
        &[
            "../x",
            &fixture::Image::new(vec![dotdot]).diff_ids()[0][..20],
        ],
    );
    let abs = L::new()
        .raw(tar::EntryType::Regular, b"/etc/x", b"", b"pwn")
        .finish();
    assert_one_line_error(&archive(d, vec![abs]), &["/etc/x"]);
    let full = L::new()
        .sized("a", 5000, b'a')
        .sized("b", 5000, b'b')
        .finish();
    assert_one_line_error(&archive(d, vec![full[..3000].to_vec()]), &["layer sha256:"]);
    assert_one_line_error(
        &format!("docker-archive:{}", d.join("missing.tar").display()),
        &["missing.tar"],
    );
    std::fs::write(d.join("junk.tar"), b"this is not a tar").unwrap();
    assert_one_line_error(
        &format!("docker-archive:{}", d.join("junk.tar").display()),
        &["junk.tar"],
    );
}

#[test]
fn xray_writes_nothing_to_disk() {
    let t = tempfile::tempdir().unwrap();
    let r = archive(t.path(), vec![L::new().file("x", b"1").finish()]);
    let cwd = t.path().join("cwd");
    let tmp = t.path().join("tmp");
    std::fs::create_dir(&cwd).unwrap();
    std::fs::create_dir(&tmp).unwrap();
    pare()
        .current_dir(&cwd)
        .env("TMPDIR", &tmp)
        .args(["xray", &r])
        .assert()
        .code(0);
    pare()
        .current_dir(&cwd)
        .env("TMPDIR", &tmp)
        .args(["xray", &r, "--format", "json"])
        .assert()
        .code(0);
    assert_eq!(std::fs::read_dir(&cwd).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

#[test]
fn table_output_has_no_colour_when_piped() {
    let t = tempfile::tempdir().unwrap();
    let r = archive(
        t.path(),
        vec![L::new().dir("bin").file("bin/bash", b"x").finish()],
    );
    let out = pare().args(["xray", &r]).output().unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("Layers") && s.contains("/bin/bash") && s.contains("Attack surface"));
    assert!(!s.contains('\x1b'));
}

#[cfg(feature = "docker-tests")]
#[test]
fn daemon_archive_and_layout_agree_on_bookworm() {
    // Needs dockerd with local/debian:bookworm loaded.
    let t = tempfile::tempdir().unwrap();
    let tar = t.path().join("bw.tar");
    let st = std::process::Command::new("docker")
        .args(["save", "-o"])
        .arg(&tar)
        .arg("local/debian:bookworm")
        .status()
        .unwrap();
    assert!(st.success());
    let a = xray_json(&format!("docker-archive:{}", tar.display()));
    let d = xray_json("docker-daemon:local/debian:bookworm");
    assert_eq!(comparable(&a), comparable(&d));
    assert_eq!(a["os"]["id"], "debian");
    assert!(a["packages"]["dpkg"].as_array().unwrap().len() > 50);
}

#[test]
fn platform_picks_one_image_of_a_multi_arch_layout() {
    let t = tempfile::tempdir().unwrap();
    let amd = Image::new(vec![L::new().sized("amd", 11, b'a').finish()])
        .for_platform(&pare_source::Platform::parse("linux/amd64").unwrap());
    let arm = Image::new(vec![L::new().sized("arm", 22, b'b').finish()])
        .for_platform(&pare_source::Platform::parse("linux/arm64").unwrap());
    let dir = t.path().join("multi");
    fixture::write_oci_layout_multi(&dir, &[&amd, &arm], Compression::Zstd).unwrap();
    let r = format!("oci:{}", dir.display());
    let v = json_of(pare().args(["xray", &r, "--format", "json", "--platform", "linux/arm64"]));
    assert_eq!(v["image"]["architecture"], "arm64");
    assert_eq!(v["largest_files"][0]["path"], "/arm");
    assert_eq!(v["total_size"], 22);
    let out = pare()
        .args(["xray", &r, "--platform", "linux/s390x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = pare()
        .args(["xray", &r, "--platform", "nonsense"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
