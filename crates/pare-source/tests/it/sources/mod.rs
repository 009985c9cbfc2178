//! Opens synthetic images in every format, hostile ones included. No daemon needed.

use std::fs;

use std::io::Read;

use std::path::{Path, PathBuf};

use pare_source::{
    Compression, ImageRef, ImageSource, LayerContent, OpenOptions, Platform, SourceError, open,
};

use pare_test_support::fixture::{self, DockerArchiveFormat, Image};

fn layers() -> Vec<Vec<u8>> {
    vec![
        fixture::tar(&[
            ("etc/", b""),
            ("etc/os-release", b"ID=test\n"),
            ("bin/", b""),
            ("bin/sh", &[0x7f; 3000]),
        ]),
        fixture::tar(&[
            ("app/", b""),
            ("app/main.py", b"print('hi')\n"),
            ("etc/.wh.os-release", b""),
        ]),
        fixture::tar(&[("app/data.bin", &[7u8; 100_000])]),
    ]
}

fn image() -> Image {
    Image::new(layers()).tagged("app:1")
}

fn open_str(s: &str) -> Result<Box<dyn ImageSource>, SourceError> {
    open(&ImageRef::parse(s).unwrap(), &OpenOptions::default())
}

fn read_layer(src: &dyn ImageSource, i: usize) -> std::io::Result<Vec<u8>> {
    match src.open_layer(i).map_err(std::io::Error::other)? {
        LayerContent::Tar(mut r) => {
            let mut out = Vec::new();
            r.read_to_end(&mut out)?;
            Ok(out)
        }
        LayerContent::OverlayDir(p) => panic!("unexpected overlay dir {}", p.display()),
    }
}

/// Every layer reads back as the original uncompressed tar, and the model matches the fixture.
fn check_image(src: &dyn ImageSource, image: &Image) {
    let resolved = src.image();
    assert_eq!(resolved.layers.len(), image.layers.len());
    let diff_ids = image.diff_ids();
    for (i, layer) in resolved.layers.iter().enumerate() {
        assert_eq!(layer.diff_id.as_deref(), Some(diff_ids[i].as_str()));
        assert_eq!(
            read_layer(src, i).unwrap(),
            image.layers[i],
            "layer {i} of {}",
            src.kind()
        );
    }
    assert_eq!(
        resolved.config_digest.to_string(),
        pare_source::sha256_digest(&image.config_bytes())
    );
    assert_eq!(src.raw_config().unwrap(), image.config_bytes().as_slice());
    assert_eq!(resolved.created_by(1).as_deref(), Some("fixture layer 1"));
    assert!(src.open_layer(image.layers.len()).is_err());
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn blob_file(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs/sha256")
        .join(pare_source::sha256_hex(digest).unwrap())
}

fn source_error(e: &std::io::Error) -> &SourceError {
    e.get_ref()
        .and_then(|e| e.downcast_ref::<SourceError>())
        .unwrap_or_else(|| panic!("not a SourceError: {e}"))
}

/// Replaces the first `"size":N` in a one-line index.json.
fn regex_free_size_patch(index: &str, size: usize) -> String {
    let start = index.find("\"size\":").unwrap() + "\"size\":".len();
    let end = start + index[start..].find(|c: char| !c.is_ascii_digit()).unwrap();
    format!("{}{}{}", &index[..start], size, &index[end..])
}

mod hostile;
mod layouts;
