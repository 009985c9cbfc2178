//! Registers every `src/targets/NAME.rs` as fuzz target `NAME`: adding a target is adding one
//! file that defines a documented `pub fn run(data: &[u8])` (the crate denies missing docs).

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/targets");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("src/targets exists")
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "rs").then(|| p.file_stem()?.to_str().map(str::to_string))?
        })
        .collect();
    names.sort();
    let mut out = String::new();
    for n in &names {
        let path = dir.join(format!("{n}.rs"));
        writeln!(
            out,
            "#[path = {:?}]\npub mod {n};",
            path.display().to_string()
        )
        .unwrap();
    }
    out.push_str("/// Every fuzz target: its name and its body.\npub const TARGETS: &[(&str, crate::Body)] = &[\n");
    for n in &names {
        writeln!(out, "    ({n:?}, {n}::run),").unwrap();
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("targets.rs");
    std::fs::write(dest, out).expect("write targets.rs");
}
