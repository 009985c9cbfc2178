//! Benchmark helper: copies an image into an OCI layout with the fixture writer.
//!
//! `cargo run --release -p pare-source --example to_oci -- REF DIR [gzip|zstd|none] [--repeat N]`
//! `--repeat N` stacks the image's layers N times (a bigger synthetic image).

use std::io::Read;

use pare_source::{Compression, ImageRef, LayerContent, OpenOptions, open};
use pare_test_support::fixture::{Image, write_oci_layout};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(reference), Some(dir)) = (args.first(), args.get(1)) else {
        return Err("usage: to_oci REF DIR [gzip|zstd|none] [--repeat N]".into());
    };
    let compression = match args.get(2).map(String::as_str) {
        Some("zstd") => Compression::Zstd,
        Some("none") => Compression::None,
        _ => Compression::Gzip,
    };
    let repeat: usize = args
        .iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .map_or(Ok(1), |s| s.parse())?;
    let src = open(
        &ImageRef::parse(reference)?,
        &OpenOptions {
            no_direct_storage: true,
            ..Default::default()
        },
    )?;
    let mut layers = Vec::new();
    for i in 0..src.image().layers.len() {
        let LayerContent::Tar(mut r) = src.open_layer(i)? else {
            return Err("need a tar source".into());
        };
        let mut buf = Vec::new();
        r.read_to_end(&mut buf)?;
        layers.push(buf);
    }
    let layers: Vec<Vec<u8>> = (0..repeat).flat_map(|_| layers.clone()).collect();
    let mut config: serde_json::Value =
        serde_json::from_slice(src.raw_config().ok_or("no config")?)?;
    config["history"] = serde_json::json!(
        (0..layers.len())
            .map(|i| serde_json::json!({"created_by": format!("layer {i}")}))
            .collect::<Vec<_>>()
    );
    let image = Image::new(layers).with_config(config);
    let w = write_oci_layout(std::path::Path::new(dir), &image, compression)?;
    println!("wrote {dir}: manifest {}", w.manifest_digest);
    Ok(())
}
