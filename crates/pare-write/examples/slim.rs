//! Select + write + `docker load` for a recorded profile, outside pare-build (for debugging
//! these two crates on real images).
//!
//! `cargo run -p pare-write --example slim -- ROOTFS profile.json IMAGE TAG`
//! (the source config is read from `docker save IMAGE`).

use std::io::Read;

use pare_select::{ImageFacts, SelectInputs, select};
use pare_write::{ImageMeta, load_into_docker};

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 4 {
        eprintln!("usage: slim ROOTFS profile.json IMAGE TAG");
        std::process::exit(2);
    }
    let (rootfs, profile, image, tag) = (&a[0], &a[1], &a[2], &a[3]);
    // The raw config from `docker save`.
    let save = std::process::Command::new("docker")
        .args(["save", image])
        .output()
        .expect("docker save");
    let mut files = std::collections::HashMap::new();
    let mut ar = tar::Archive::new(&save.stdout[..]);
    for e in ar.entries().expect("archive") {
        let mut e = e.expect("entry");
        let name = e.path().expect("path").display().to_string();
        if name == "manifest.json"
            || name.ends_with(".json")
            || name.starts_with("blobs/") && e.size() < 1 << 20
        {
            let mut b = Vec::new();
            e.read_to_end(&mut b).expect("read");
            files.insert(name, b);
        }
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&files["manifest.json"]).expect("manifest");
    let config_name = manifest[0]["Config"].as_str().expect("Config");
    let meta = ImageMeta::from_config_json(&files[config_name], image).expect("config");
    let facts = ImageFacts::from_config(&meta.config, meta.healthcheck.as_ref());
    let profile: pare_trace::Profile =
        serde_json::from_str(&std::fs::read_to_string(profile).expect("profile")).expect("parse");
    let inputs = SelectInputs::from_report(&profile.sensor, facts);
    let t = std::time::Instant::now();
    let sel = select(std::path::Path::new(rootfs), &inputs).expect("select");
    println!(
        "select: {} entries in {:?}; warnings: {:?}",
        sel.entries.len(),
        t.elapsed(),
        sel.warnings
    );
    let t = std::time::Instant::now();
    let w =
        load_into_docker(std::path::Path::new(rootfs), &sel, &meta, tag, None).expect("write+load");
    println!(
        "write+load: {:?}, layer {:.1} MB ({:.1} MB gz), image {}",
        t.elapsed(),
        w.layer.uncompressed_size as f64 / 1e6,
        w.layer.size as f64 / 1e6,
        w.config_digest
    );
}
