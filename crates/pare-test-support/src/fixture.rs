//! Build simple layer tars in memory and write an image as an OCI layout (directory or archive, gzip/zstd/uncompressed layers,
//! optionally multi-arch) or as a `docker save` archive in either format.
//!
//! ```
//! use pare_test_support::fixture::{self, DockerArchiveFormat, Image};
//! use pare_source::Compression;
//! let dir = tempfile::tempdir().unwrap();
//! let image = Image::new(vec![fixture::tar(&[("etc/", b""), ("etc/hello", b"hi\n")])]).tagged("app:1");
//! fixture::write_oci_layout(&dir.path().join("oci"), &image, Compression::Gzip).unwrap();
//! fixture::write_docker_archive(&dir.path().join("a.tar"), &image, DockerArchiveFormat::Legacy).unwrap();
//! ```
//!
//! Everything is deterministic: the same input gives the same bytes and digests.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use pare_source::{Compression, Platform, sha256_digest};

use crate::layer::LayerBuilder;

/// One image: uncompressed layer tars (bottom first) and its config.
#[derive(Debug, Clone)]
pub struct Image {
    /// Uncompressed layer tars, bottom first.
    pub layers: Vec<Vec<u8>>,
    /// The config JSON. `rootfs` is filled in from `layers` when written unless `keep_rootfs`.
    pub config: Value,
    /// `RepoTags` entry for docker archives (`app:1`), `org.opencontainers.image.ref.name` for
    /// OCI layouts.
    pub tag: Option<String>,
    /// Write `config` exactly as given (for tests of inconsistent images).
    pub keep_rootfs: bool,
}

impl Image {
    /// An image for the host platform with one history step per layer (`fixture layer N`).
    pub fn new(layers: Vec<Vec<u8>>) -> Self {
        let host = Platform::host();
        let history: Vec<Value> = (0..layers.len())
            .map(|i| json!({"created": "2024-01-01T00:00:00Z", "created_by": format!("fixture layer {i}")}))
            .collect();
        let config = json!({
            "created": "2024-01-01T00:00:00Z",
            "architecture": host.architecture,
            "os": host.os,
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": history,
        });
        Image {
            layers,
            config,
            tag: None,
            keep_rootfs: false,
        }
    }

    /// Replaces the config (its `rootfs` is still filled in from the layers).
    pub fn with_config(mut self, config: Value) -> Self {
        self.config = config;
        self
    }

    /// Sets the tag.
    pub fn tagged(mut self, tag: &str) -> Self {
        self.tag = Some(tag.to_string());
        self
    }

    /// Sets the config's platform.
    pub fn for_platform(mut self, platform: &Platform) -> Self {
        self.config["os"] = json!(platform.os);
        self.config["architecture"] = json!(platform.architecture);
        if let Some(v) = &platform.variant {
            self.config["variant"] = json!(v);
        }
        self
    }

    /// `sha256:` of each uncompressed layer.
    pub fn diff_ids(&self) -> Vec<String> {
        self.layers.iter().map(|l| sha256_digest(l)).collect()
    }

    /// The config bytes as written.
    pub fn config_bytes(&self) -> Vec<u8> {
        let mut config = self.config.clone();
        if !self.keep_rootfs {
            config["rootfs"] = json!({"type": "layers", "diff_ids": self.diff_ids()});
        }
        serde_json::to_vec(&config).unwrap_or_default()
    }

    fn platform(&self) -> Platform {
        let s = |k: &str| {
            self.config
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let variant = self
            .config
            .get("variant")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        Platform {
            os: s("os"),
            architecture: s("architecture"),
            variant,
        }
    }
}

/// An uncompressed tar of regular files (mode 0644) and, for names ending in `/`, directories
/// (mode 0755); mtime 0, owner root. [`LayerBuilder`] builds anything else.
pub fn tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    entries
        .iter()
        .fold(LayerBuilder::with_mtime(0), |b, (name, data)| {
            if name.ends_with('/') {
                b.dir(name)
            } else {
                b.file(name, data)
            }
        })
        .finish()
}

/// Compresses `data` as a layer blob would be.
pub fn compress(data: &[u8], compression: Compression) -> io::Result<Vec<u8>> {
    match compression {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data)?;
            e.finish()
        }
        Compression::Zstd => zstd::encode_all(data, 3),
    }
}

/// Layer media type for a compression.
pub fn layer_media_type(compression: Compression) -> &'static str {
    match compression {
        Compression::None => "application/vnd.oci.image.layer.v1.tar",
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

/// Digests of what was written for one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub manifest_digest: String,
    pub config_digest: String,
    /// Digests of the stored (possibly compressed) layer blobs.
    pub layer_digests: Vec<String>,
}

/// Where files go: a directory or a tar being built.
trait Sink {
    fn file(&mut self, rel: &str, data: &[u8]) -> io::Result<()>;
    fn symlink(&mut self, rel: &str, target: &str) -> io::Result<()>;
}

struct DirSink(PathBuf);

impl Sink for DirSink {
    fn file(&mut self, rel: &str, data: &[u8]) -> io::Result<()> {
        let path = self.0.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(path, data)
    }

    fn symlink(&mut self, rel: &str, target: &str) -> io::Result<()> {
        let path = self.0.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        std::os::unix::fs::symlink(target, path)
    }
}

struct TarSink {
    builder: tar::Builder<File>,
    dirs: std::collections::BTreeSet<String>,
}

impl TarSink {
    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(0);
        h
    }

    fn parents(&mut self, rel: &str) -> io::Result<()> {
        let mut prefix = String::new();
        let parts: Vec<&str> = rel.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            prefix.push_str(part);
            prefix.push('/');
            if self.dirs.insert(prefix.clone()) {
                let mut h = Self::header(tar::EntryType::Directory, 0o755, 0);
                self.builder.append_data(&mut h, &prefix, io::empty())?;
            }
        }
        Ok(())
    }
}

impl Sink for TarSink {
    fn file(&mut self, rel: &str, data: &[u8]) -> io::Result<()> {
        self.parents(rel)?;
        let mut h = Self::header(tar::EntryType::Regular, 0o644, data.len() as u64);
        self.builder.append_data(&mut h, rel, data)
    }

    fn symlink(&mut self, rel: &str, target: &str) -> io::Result<()> {
        self.parents(rel)?;
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.builder.append_link(&mut h, rel, target)
    }
}

fn tar_sink(path: &Path) -> io::Result<TarSink> {
    Ok(TarSink {
        builder: tar::Builder::new(File::create(path)?),
        dirs: Default::default(),
    })
}

fn finish(sink: TarSink) -> io::Result<()> {
    sink.builder.into_inner()?.sync_all()
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256_digest(bytes), "size": bytes.len()})
}

fn blob(sink: &mut dyn Sink, bytes: &[u8]) -> io::Result<String> {
    let digest = sha256_digest(bytes);
    sink.file(
        &format!("blobs/sha256/{}", &digest["sha256:".len()..]),
        bytes,
    )?;
    Ok(digest)
}

/// Writes the config, layers and manifest blobs of `image`; returns the manifest descriptor.
fn write_image_blobs(
    sink: &mut dyn Sink,
    image: &Image,
    compression: Compression,
) -> io::Result<(Value, Written)> {
    let config = image.config_bytes();
    let config_digest = blob(sink, &config)?;
    let mut layers = Vec::new();
    let mut layer_digests = Vec::new();
    for layer in &image.layers {
        let stored = compress(layer, compression)?;
        layer_digests.push(blob(sink, &stored)?);
        layers.push(descriptor(layer_media_type(compression), &stored));
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
        "layers": layers,
    });
    let manifest = serde_json::to_vec(&manifest)?;
    let manifest_digest = blob(sink, &manifest)?;
    let desc = descriptor("application/vnd.oci.image.manifest.v1+json", &manifest);
    Ok((
        desc,
        Written {
            manifest_digest,
            config_digest,
            layer_digests,
        },
    ))
}

fn write_layout(
    sink: &mut dyn Sink,
    images: &[&Image],
    compression: Compression,
) -> io::Result<Vec<Written>> {
    let mut entries = Vec::new();
    let mut written = Vec::new();
    for image in images {
        let (mut desc, w) = write_image_blobs(sink, image, compression)?;
        if let Some(tag) = &image.tag {
            desc["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        }
        entries.push(desc);
        written.push(w);
    }
    sink.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries});
    sink.file("index.json", &serde_json::to_vec(&index)?)?;
    Ok(written)
}

/// Writes `image` as an OCI image layout in `dir` (created if needed).
pub fn write_oci_layout(
    dir: &Path,
    image: &Image,
    compression: Compression,
) -> io::Result<Written> {
    let mut w = write_layout(&mut DirSink(dir.to_path_buf()), &[image], compression)?;
    Ok(w.remove(0))
}

/// Writes several tagged images into one OCI layout (one `index.json` entry each).
pub fn write_oci_layout_images(
    dir: &Path,
    images: &[&Image],
    compression: Compression,
) -> io::Result<Vec<Written>> {
    write_layout(&mut DirSink(dir.to_path_buf()), images, compression)
}

/// Writes `image` as an OCI archive (a tar of the layout) at `path`.
pub fn write_oci_archive(
    path: &Path,
    image: &Image,
    compression: Compression,
) -> io::Result<Written> {
    let mut sink = tar_sink(path)?;
    let mut w = write_layout(&mut sink, &[image], compression)?;
    finish(sink)?;
    Ok(w.remove(0))
}

/// Writes a multi-arch image: `index.json` → a nested image index blob (tagged with the first
/// image's tag) → one manifest per image, each with its config's platform. Returns the nested
/// index's digest and what was written for each image.
pub fn write_oci_layout_multi(
    dir: &Path,
    images: &[&Image],
    compression: Compression,
) -> io::Result<(String, Vec<Written>)> {
    let mut sink = DirSink(dir.to_path_buf());
    let mut entries = Vec::new();
    let mut written = Vec::new();
    for image in images {
        let (mut desc, w) = write_image_blobs(&mut sink, image, compression)?;
        let p = image.platform();
        desc["platform"] = json!({"os": p.os, "architecture": p.architecture});
        if let Some(v) = p.variant {
            desc["platform"]["variant"] = json!(v);
        }
        entries.push(desc);
        written.push(w);
    }
    let nested = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries});
    let nested = serde_json::to_vec(&nested)?;
    let nested_digest = blob(&mut sink, &nested)?;
    let mut desc = descriptor("application/vnd.oci.image.index.v1+json", &nested);
    if let Some(tag) = images.first().and_then(|i| i.tag.as_ref()) {
        desc["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    }
    sink.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [desc]});
    sink.file("index.json", &serde_json::to_vec(&index)?)?;
    Ok((nested_digest, written))
}

/// Which `docker save` format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DockerArchiveFormat {
    /// Docker < 25: `manifest.json`, `<config-hex>.json`, `<id>/layer.tar` (a repeated layer
    /// is a symlink to the first copy, as `docker save` does), `repositories`.
    Legacy,
    /// Docker 25+: an OCI layout (uncompressed layers) plus `manifest.json` pointing into
    /// `blobs/sha256/`.
    Oci,
}

/// Writes `image` as a `docker save` archive at `path`.
pub fn write_docker_archive(
    path: &Path,
    image: &Image,
    format: DockerArchiveFormat,
) -> io::Result<()> {
    write_docker_archive_images(path, &[image], format)
}

/// Writes several images into one `docker save` archive.
pub fn write_docker_archive_images(
    path: &Path,
    images: &[&Image],
    format: DockerArchiveFormat,
) -> io::Result<()> {
    let mut sink = tar_sink(path)?;
    let mut manifest = Vec::new();
    let mut repositories = serde_json::Map::new();
    let mut index_entries = Vec::new();
    for image in images {
        let config = image.config_bytes();
        let config_hex = sha256_digest(&config)["sha256:".len()..].to_string();
        let mut layer_paths = Vec::new();
        let mut top_id = String::new();
        match format {
            DockerArchiveFormat::Legacy => {
                sink.file(&format!("{config_hex}.json"), &config)?;
                let mut seen: Vec<(String, String)> = Vec::new();
                for (i, layer) in image.layers.iter().enumerate() {
                    let diff_id = sha256_digest(layer);
                    let id = sha256_digest(format!("{config_hex} {i} {diff_id}").as_bytes())
                        ["sha256:".len()..]
                        .to_string();
                    let rel = format!("{id}/layer.tar");
                    match seen.iter().find(|(d, _)| *d == diff_id) {
                        Some((_, first)) => sink.symlink(&rel, &format!("../{first}"))?,
                        None => sink.file(&rel, layer)?,
                    }
                    sink.file(&format!("{id}/VERSION"), b"1.0")?;
                    sink.file(
                        &format!("{id}/json"),
                        &serde_json::to_vec(&json!({"id": id}))?,
                    )?;
                    seen.push((diff_id, rel.clone()));
                    layer_paths.push(rel);
                    top_id = id;
                }
                manifest.push(json!({"Config": format!("{config_hex}.json"), "RepoTags": image.tag.as_ref().map(|t| vec![t]), "Layers": layer_paths}));
            }
            DockerArchiveFormat::Oci => {
                let (mut desc, w) = write_image_blobs(&mut sink, image, Compression::None)?;
                if let Some(tag) = &image.tag {
                    let short = tag.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
                    desc["annotations"] = json!({
                        "io.containerd.image.name": format!("docker.io/library/{tag}"),
                        "org.opencontainers.image.ref.name": short,
                    });
                }
                index_entries.push(desc);
                let paths: Vec<String> = w
                    .layer_digests
                    .iter()
                    .map(|d| format!("blobs/sha256/{}", &d["sha256:".len()..]))
                    .collect();
                top_id = w
                    .layer_digests
                    .last()
                    .map(|d| d["sha256:".len()..].to_string())
                    .unwrap_or_default();
                manifest.push(json!({"Config": format!("blobs/sha256/{config_hex}"), "RepoTags": image.tag.as_ref().map(|t| vec![t]), "Layers": paths}));
            }
        }
        if let Some((repo, tag)) = image.tag.as_ref().and_then(|t| t.rsplit_once(':')) {
            repositories.insert(repo.to_string(), json!({ tag: top_id }));
        }
    }
    if format == DockerArchiveFormat::Oci {
        sink.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index_entries});
        sink.file("index.json", &serde_json::to_vec(&index)?)?;
    }
    sink.file("manifest.json", &serde_json::to_vec(&manifest)?)?;
    if !repositories.is_empty() {
        sink.file(
            "repositories",
            &serde_json::to_vec(&Value::Object(repositories))?,
        )?;
    }
    finish(sink)
}
