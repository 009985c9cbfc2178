//! pare-sensor: see crates/README.md.
fn main() {
    eprintln!("pare-sensor: not built yet");
    std::process::exit(2);
}
