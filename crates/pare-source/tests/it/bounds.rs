//! Resource bounds on hostile image metadata: a 100 MB config (refused from its size, before
//! it is read), a manifest of 10,000 layers, and indexes nested without end. Each error is one
//! line naming the file at fault.

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use pare_source::{ImageRef, MAX_JSON, MAX_LAYERS, OpenOptions, sha256_digest};
use serde_json::json;

const BIG: u64 = 100 * 1024 * 1024;

fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap()
}

/// Writes a blob into an OCI layout and returns its descriptor.
fn blob(dir: &Path, media_type: &str, bytes: &[u8]) -> serde_json::Value {
    let d = sha256_digest(bytes);
    let p = dir.join("blobs/sha256").join(hex(&d));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, bytes).unwrap();
    json!({"mediaType": media_type, "digest": d, "size": bytes.len()})
}

fn layout(dir: &Path, top: serde_json::Value) {
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = json!({"schemaVersion": 2, "manifests": [top]});
    fs::write(dir.join("index.json"), index.to_string()).unwrap();
}

fn open_err(r: ImageRef) -> String {
    let t = Instant::now();
    let e = match pare_source::open(&r, &OpenOptions::default()) {
        Ok(_) => panic!("{r} opened"),
        Err(e) => e.to_string(),
    };
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(!e.contains('\n'), "{e}");
    e
}

fn fake_digest(i: usize) -> String {
    format!("sha256:{i:064x}")
}

#[test]
fn a_100_mb_config_is_refused_before_it_is_read() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    // The config blob is a sparse 100 MB file: refusing it must not need its bytes.
    let digest = fake_digest(7);
    let cfg_path = dir.join("blobs/sha256").join(hex(&digest));
    fs::create_dir_all(cfg_path.parent().unwrap()).unwrap();
    fs::File::create(&cfg_path).unwrap().set_len(BIG).unwrap();
    let config = json!({"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest, "size": BIG});
    let manifest = json!({"schemaVersion": 2, "config": config, "layers": []});
    let m = blob(
        dir,
        "application/vnd.oci.image.manifest.v1+json",
        manifest.to_string().as_bytes(),
    );
    layout(dir, m);
    let e = open_err(ImageRef::Oci {
        dir: dir.to_path_buf(),
        tag: None,
    });
    assert!(e.starts_with(&cfg_path.display().to_string()), "{e}");
    assert!(
        e.contains(&format!("{BIG} bytes, over the limit of {MAX_JSON} bytes")),
        "{e}"
    );

    // The same in a docker archive: the tar's config entry is a 100 MB hole.
    let tar_path = dir.join("big-config.tar");
    let mut f = fs::File::create(&tar_path).unwrap();
    let manifest =
        json!([{"Config": "config.json", "RepoTags": ["big:1"], "Layers": []}]).to_string();
    let mut h = tar::Header::new_gnu();
    h.set_path("manifest.json").unwrap();
    h.set_size(manifest.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    f.write_all(h.as_bytes()).unwrap();
    f.write_all(manifest.as_bytes()).unwrap();
    f.write_all(&vec![0; 512 - manifest.len() % 512]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_path("config.json").unwrap();
    h.set_size(BIG);
    h.set_mode(0o644);
    h.set_cksum();
    f.write_all(h.as_bytes()).unwrap();
    f.seek(SeekFrom::Current(BIG as i64)).unwrap();
    f.write_all(&[0; 1024]).unwrap();
    drop(f);
    let e = open_err(ImageRef::DockerArchive {
        path: tar_path.clone(),
        reference: None,
    });
    assert!(
        e.starts_with(&format!("{}:config.json", tar_path.display())),
        "{e}"
    );
    assert!(e.contains("over the limit"), "{e}");
}

#[test]
fn a_manifest_with_10000_layers_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let layers: Vec<serde_json::Value> = (0..10_000)
        .map(|i| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": fake_digest(i), "size": 1024}))
        .collect();
    let config = blob(dir, "application/vnd.oci.image.config.v1+json", b"{}");
    let manifest = json!({"schemaVersion": 2, "config": config, "layers": layers}).to_string();
    let m = blob(
        dir,
        "application/vnd.oci.image.manifest.v1+json",
        manifest.as_bytes(),
    );
    let m_path = dir
        .join("blobs/sha256")
        .join(hex(m["digest"].as_str().unwrap()));
    layout(dir, m);
    let e = open_err(ImageRef::Oci {
        dir: dir.to_path_buf(),
        tag: None,
    });
    assert!(e.starts_with(&m_path.display().to_string()), "{e}");
    assert!(
        e.contains(&format!(
            "lists 10000 layers, over the limit of {MAX_LAYERS}"
        )),
        "{e}"
    );

    // docker save's manifest.json.
    let tar_path = dir.join("many.tar");
    let names: Vec<String> = (0..10_000).map(|i| format!("{i}/layer.tar")).collect();
    let manifest = json!([{"Config": "c.json", "Layers": names}]).to_string();
    let mut b = tar::Builder::new(fs::File::create(&tar_path).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_size(manifest.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, "manifest.json", manifest.as_bytes())
        .unwrap();
    b.finish().unwrap();
    drop(b);
    let e = open_err(ImageRef::DockerArchive {
        path: tar_path.clone(),
        reference: None,
    });
    assert!(
        e.starts_with(&format!("{}:manifest.json", tar_path.display())),
        "{e}"
    );
    assert!(e.contains("lists 10000 layers"), "{e}");
}

#[test]
fn indexes_nested_without_end_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let config = blob(dir, "application/vnd.oci.image.config.v1+json", b"{}");
    let manifest = json!({"schemaVersion": 2, "config": config, "layers": []}).to_string();
    let mut top = blob(
        dir,
        "application/vnd.oci.image.manifest.v1+json",
        manifest.as_bytes(),
    );
    for _ in 0..20 {
        let index = json!({"schemaVersion": 2, "manifests": [top]}).to_string();
        top = blob(
            dir,
            "application/vnd.oci.image.index.v1+json",
            index.as_bytes(),
        );
    }
    layout(dir, top);
    let e = open_err(ImageRef::Oci {
        dir: dir.to_path_buf(),
        tag: None,
    });
    assert!(e.contains("indexes nested more than 8 deep"), "{e}");
}
