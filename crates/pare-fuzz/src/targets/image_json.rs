//! Manifest, index and config JSON, read the way `pare` reads an `oci-archive:` or a
//! `docker-archive:`, then analyzed.
//!
//! The input is up to eight documents separated by lines `----`. Document 0 is `index.json`
//! (or `manifest.json`, a docker archive, when it starts with `[`); the others are stored as
//! blobs. So that the fuzzer can point at them, `@D<k>` in a document is replaced by the
//! sha256 hex of document k and `@S<k>` by its size (k > the current document), `@DL`/`@SL` by
//! those of a small layer tar.

use std::io::Write;
use std::sync::OnceLock;

use pare_source::{ImageRef, ImageSource, OpenOptions, SourceError, sha256_hex};

fn layer_tar() -> &'static [u8] {
    static LAYER: OnceLock<Vec<u8>> = OnceLock::new();
    LAYER.get_or_init(|| {
        let mut t = Vec::new();
        crate::tarw::entry(&mut t, tar::EntryType::Regular, b"etc/os-release", b"", 0o644, b"ID=x\n");
        crate::tarw::finish(&mut t);
        t
    })
}

fn hex_of(bytes: &[u8]) -> String {
    let d = pare_source::sha256_digest(bytes);
    sha256_hex(&d).unwrap_or_default().to_string()
}

/// A temporary file for the archive, in memory (`/dev/shm`) when possible; removed when
/// dropped (an opened source keeps its own descriptor).
fn scratch() -> Option<tempfile::NamedTempFile> {
    let b = tempfile::Builder::new().prefix("pare-fuzz-").suffix(".tar").tempfile_in("/dev/shm");
    b.or_else(|_| tempfile::NamedTempFile::new()).ok()
}

/// The body: the archive the input describes (see the module docs) opened with [`open`], its
/// history turned back into a Dockerfile, and the image analyzed and rendered as JSON. Errors
/// must be one line.
pub fn run(data: &[u8]) {
    let src = match open(data) {
        Some(Ok(src)) => src,
        Some(Err(e)) => return crate::one_line(&e),
        None => return,
    };
    let img = src.image();
    let steps = img.history_steps();
    let _ = pare_xray::dockerfile_from_history(&steps);
    let opts = pare_xray::Options {
        top: 5,
        hash: false,
        threads: 1,
    };
    match pare_xray::analyze(&*src, &opts) {
        Ok(report) => drop(pare_xray::render::json(&report)),
        Err(e) => crate::one_line(&e),
    }
}

/// The archive the input describes, opened as `pare` opens it (`None`: it could not be written).
pub fn open(data: &[u8]) -> Option<Result<Box<dyn ImageSource>, SourceError>> {
    let text = String::from_utf8_lossy(data);
    let mut docs: Vec<String> = text.split("\n----\n").take(8).map(str::to_string).collect();
    let layer = layer_tar();
    let (lhex, lsize) = (hex_of(layer), layer.len().to_string());
    // Later documents first, so each can name the digests of those after it.
    let mut hexes = vec![String::new(); docs.len()];
    for k in (0..docs.len()).rev() {
        let mut d = docs[k].replace("@DL", &lhex).replace("@SL", &lsize);
        for j in k + 1..docs.len() {
            d = d
                .replace(&format!("@D{j}"), &hexes[j])
                .replace(&format!("@S{j}"), &docs[j].len().to_string());
        }
        hexes[k] = hex_of(d.as_bytes());
        docs[k] = d;
    }
    let docker = docs[0].trim_start().starts_with('[');
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, bytes: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        let _ = b.append_data(&mut h, name, bytes);
    };
    add(if docker { "manifest.json" } else { "index.json" }, docs[0].as_bytes());
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    for (d, hex) in docs.iter().zip(&hexes).skip(1) {
        add(&format!("blobs/sha256/{hex}"), d.as_bytes());
        add(&format!("{hex}.json"), d.as_bytes());
    }
    add(&format!("blobs/sha256/{lhex}"), layer);
    add("layer.tar", layer);
    let archive = b.into_inner().ok()?;
    let mut file = scratch()?;
    file.write_all(&archive).ok()?;
    let path = file.path().to_path_buf();
    let reference = if docker {
        ImageRef::DockerArchive {
            path,
            reference: None,
        }
    } else {
        ImageRef::OciArchive { path, tag: None }
    };
    Some(pare_source::open(&reference, &OpenOptions::default()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_seed_opens() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/image_json");
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let data = std::fs::read(&p).unwrap();
            let src = super::open(&data).unwrap();
            let src = src.unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert_eq!(src.image().layers.len(), 1, "{}", p.display());
        }
    }
}
