//! Runs the selection for a recorded profile against an extracted rootfs and prints a summary.
//!
//! `cargo run -p pare-select --example select_profile -- ROOTFS profile.json [PATH-TO-EXPLAIN…]`

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;

use pare_select::{ImageFacts, SelectInputs, select};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(rootfs), Some(profile)) = (args.next(), args.next()) else {
        eprintln!("usage: select_profile ROOTFS profile.json [PATH…]");
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(&profile).expect("read profile");
    let profile: pare_trace::Profile = serde_json::from_str(&text).expect("parse profile");
    let info = &profile.image;
    let facts = ImageFacts {
        user: Some(info.user.clone()).filter(|u| !u.is_empty()),
        workdir: Some(info.workdir.clone()).filter(|u| !u.is_empty()),
        entrypoint: info.entrypoint.clone(),
        cmd: info.cmd.clone(),
        ..Default::default()
    };
    let inputs = SelectInputs::from_report(&profile.sensor, facts);
    let t = std::time::Instant::now();
    let sel = select(std::path::Path::new(&rootfs), &inputs).expect("select");
    let elapsed = t.elapsed();
    let mut by_kind: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    let mut total = 0u64;
    for (p, k) in &sel.entries {
        let size = std::fs::symlink_metadata(format!("{rootfs}{p}"))
            .map(|m| if m.is_file() { m.size() } else { 0 })
            .unwrap_or(0);
        total += size;
        let kind = serde_json::to_value(&k.reasons[0])
            .ok()
            .and_then(|v| v["kind"].as_str().map(str::to_string))
            .unwrap_or_default();
        let e = by_kind.entry(kind).or_default();
        e.0 += 1;
        e.1 += size;
    }
    println!(
        "{} traced paths → {} kept, {:.1} MB, in {:?}",
        inputs.traced.len(),
        sel.entries.len(),
        total as f64 / 1e6,
        elapsed
    );
    for (k, (n, s)) in by_kind {
        println!("  {k:22} {n:6} {:8.2} MB", s as f64 / 1e6);
    }
    for w in &sel.warnings {
        println!("warning: {w}");
    }
    for p in args {
        println!("why {p}:");
        for (path, r) in sel.explain(&p) {
            println!("  {path}: {r}");
        }
    }
}
