//! OCI image layouts (`oci:` directories, `oci-archive:` tars, and the OCI layout inside a
//! Docker 25+ `docker save`), and the [`StoreImage`] source shared with `docker-archive:`.

use std::sync::Arc;

use oci_spec::image::{Descriptor, Digest, ImageIndex, ImageManifest};
use serde::de::DeserializeOwned;

use crate::digest::{sha256_digest, sha256_hex};
use crate::layer::{BlobSpec, compression_from_media_type, layer_stream};
use crate::store::Store;
use crate::{
    ImageConfiguration, ImageSource, LayerContent, LayerDescriptor, Platform, ResolvedImage,
    SourceError,
};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";
const MAX_DEPTH: usize = 8;

/// An image whose layers are files of a [`Store`].
pub(crate) struct StoreImage {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) image: ResolvedImage,
    pub(crate) raw_config: Vec<u8>,
    pub(crate) kind: &'static str,
    /// Path of each layer inside the store, and what it must hash to.
    pub(crate) layers: Vec<(String, BlobSpec)>,
}

impl StoreImage {
    /// Fails with [`SourceError::MissingBlob`] when a layer file is absent.
    pub(crate) fn check_layers_present(&self) -> Result<(), SourceError> {
        for (rel, spec) in &self.layers {
            if !self.store.exists(rel)? {
                return Err(SourceError::MissingBlob {
                    path: self.store.display(rel),
                    digest: spec.digest.clone(),
                });
            }
        }
        Ok(())
    }
}

impl ImageSource for StoreImage {
    fn image(&self) -> &ResolvedImage {
        &self.image
    }

    fn open_layer(&self, index: usize) -> Result<LayerContent, SourceError> {
        let (rel, spec) = self
            .layers
            .get(index)
            .ok_or_else(|| SourceError::NotFound {
                name: self.image.name.clone(),
                message: format!("no layer {index} (the image has {})", self.layers.len()),
            })?;
        let Some(stream) = self.store.open_stream(rel)? else {
            return Err(SourceError::MissingBlob {
                path: self.store.display(rel),
                digest: spec.digest.clone(),
            });
        };
        Ok(LayerContent::Tar(layer_stream(
            stream.reader,
            spec.clone(),
            stream.verified,
        )?))
    }

    fn kind(&self) -> &'static str {
        self.kind
    }

    fn raw_config(&self) -> Option<&[u8]> {
        Some(&self.raw_config)
    }
}

/// `blobs/<alg>/<hex>` for a validated sha256 digest.
pub(crate) fn blob_path(store: &dyn Store, digest: &str) -> Result<String, SourceError> {
    match sha256_hex(digest) {
        Some(hex) => Ok(format!("blobs/sha256/{hex}")),
        None => Err(SourceError::Malformed {
            path: store.display("blobs"),
            what: "digest",
            message: format!("unsupported or invalid digest `{digest}` (only sha256 is supported)"),
            source: None,
        }),
    }
}

pub(crate) fn parse_json<T: DeserializeOwned>(
    store: &dyn Store,
    rel: &str,
    what: &'static str,
    bytes: &[u8],
) -> Result<T, SourceError> {
    serde_json::from_slice(bytes).map_err(|e| SourceError::Malformed {
        path: store.display(rel),
        what,
        message: String::new(),
        source: Some(e.into()),
    })
}

/// Reads a small blob and checks its digest (and size when known).
pub(crate) fn read_blob(
    store: &dyn Store,
    digest: &str,
    size: Option<u64>,
    what: &'static str,
) -> Result<(String, Vec<u8>), SourceError> {
    let rel = blob_path(store, digest)?;
    if !store.exists(&rel)? {
        return Err(SourceError::MissingBlob {
            path: store.display(&rel),
            digest: digest.to_string(),
        });
    }
    let bytes = store.read_small(&rel, what)?;
    let actual = sha256_digest(&bytes);
    if actual != digest {
        return Err(SourceError::DigestMismatch {
            digest: digest.to_string(),
            actual,
        });
    }
    if let Some(size) = size.filter(|&s| s != bytes.len() as u64) {
        return Err(SourceError::SizeMismatch {
            digest: digest.to_string(),
            expected: size,
            actual: bytes.len() as u64,
        });
    }
    Ok((rel, bytes))
}

/// Whether an image name from an archive (`docker.io/library/x:1`) is the one asked for (`x:1`).
pub(crate) fn name_matches(candidate: &str, wanted: &str) -> bool {
    fn norm(s: &str) -> String {
        let s = s.strip_prefix("docker.io/").unwrap_or(s);
        let s = s.strip_prefix("library/").unwrap_or(s);
        let last = s.rsplit('/').next().unwrap_or(s);
        if last.contains(':') || last.contains('@') {
            s.to_string()
        } else {
            format!("{s}:latest")
        }
    }
    candidate == wanted || norm(candidate) == norm(wanted)
}

fn oci_platform(desc: &Descriptor) -> Option<Platform> {
    desc.platform().as_ref().map(|p| Platform {
        os: p.os().to_string(),
        architecture: p.architecture().to_string(),
        variant: p.variant().clone(),
    })
}

fn is_attestation(desc: &Descriptor) -> bool {
    let annotated = desc
        .annotations()
        .as_ref()
        .and_then(|a| a.get("vnd.docker.reference.type"))
        .is_some_and(|t| t == "attestation-manifest");
    annotated
        || oci_platform(desc).is_some_and(|p| p.os == "unknown" || p.architecture == "unknown")
}

/// Picks the manifest for `want` among an index's entries.
pub(crate) fn choose_platform<'a>(
    entries: &'a [Descriptor],
    want: &Platform,
    name: &str,
) -> Result<&'a Descriptor, SourceError> {
    let usable: Vec<&Descriptor> = entries.iter().filter(|d| !is_attestation(d)).collect();
    if usable.len() == 1 && usable[0].platform().is_none() {
        return Ok(usable[0]);
    }
    let exact = usable
        .iter()
        .find(|d| oci_platform(d).is_some_and(|p| &p == want));
    let compatible = || {
        usable
            .iter()
            .find(|d| oci_platform(d).is_some_and(|p| want.matches(&p)))
    };
    if let Some(d) = exact.or_else(compatible) {
        return Ok(d);
    }
    let available: Vec<String> = usable
        .iter()
        .map(|d| {
            oci_platform(d)
                .map(|p| p.to_string())
                .unwrap_or_else(|| "unspecified".into())
        })
        .collect();
    Err(SourceError::NoPlatform {
        name: name.to_string(),
        platform: want.to_string(),
        available: available.join(", "),
    })
}

fn ref_names(desc: &Descriptor) -> Vec<String> {
    let Some(a) = desc.annotations() else {
        return Vec::new();
    };
    [REF_NAME, CONTAINERD_NAME]
        .iter()
        .filter_map(|k| a.get(*k).cloned())
        .collect()
}

/// Follows a descriptor through nested indexes down to one image manifest.
fn resolve_manifest(
    store: &dyn Store,
    desc: &Descriptor,
    want: &Platform,
    name: &str,
    depth: usize,
) -> Result<(Digest, ImageManifest), SourceError> {
    let digest = desc.digest();
    if depth > MAX_DEPTH {
        return Err(SourceError::Malformed {
            path: store.display(&blob_path(store, digest.as_ref())?),
            what: "image index",
            message: format!("indexes nested more than {MAX_DEPTH} deep"),
            source: None,
        });
    }
    let (rel, bytes) = read_blob(store, digest.as_ref(), Some(desc.size()), "manifest")?;
    let value: serde_json::Value = parse_json(store, &rel, "manifest", &bytes)?;
    if value.get("manifests").is_some() {
        let index: ImageIndex = parse_json(store, &rel, "image index", &bytes)?;
        let next = choose_platform(index.manifests(), want, name)?;
        resolve_manifest(store, next, want, name, depth + 1)
    } else {
        let manifest: ImageManifest = parse_json(store, &rel, "image manifest", &bytes)?;
        Ok((digest.clone(), manifest))
    }
}

/// Builds the source for an image manifest found in `store`.
pub(crate) fn image_from_manifest(
    store: Arc<dyn Store>,
    name: String,
    manifest_digest: Option<Digest>,
    manifest: &ImageManifest,
    kind: &'static str,
) -> Result<StoreImage, SourceError> {
    let manifest_path = match &manifest_digest {
        Some(d) => store.display(&blob_path(&*store, d.as_ref())?),
        None => store.display("index.json"),
    };
    crate::check_layer_count(manifest_path, "image manifest", manifest.layers().len())?;
    let config_desc = manifest.config();
    let config_digest = config_desc.digest().clone();
    let (config_rel, raw_config) = read_blob(
        &*store,
        config_digest.as_ref(),
        Some(config_desc.size()),
        "image config",
    )?;
    let config: ImageConfiguration = parse_json(&*store, &config_rel, "image config", &raw_config)?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers().len() {
        return Err(SourceError::Malformed {
            path: store.display(&config_rel),
            what: "image config",
            message: format!(
                "the manifest lists {} layers but the config has {} diff_ids",
                manifest.layers().len(),
                diff_ids.len()
            ),
            source: None,
        });
    }
    let mut layers = Vec::new();
    let mut descriptors = Vec::new();
    for (desc, diff_id) in manifest.layers().iter().zip(diff_ids) {
        let digest = desc.digest().to_string();
        let rel = blob_path(&*store, &digest)?;
        let media_type = desc.media_type().to_string();
        let compression = compression_from_media_type(&media_type);
        check_diff_id(&*store, &config_rel, diff_id)?;
        let spec = BlobSpec {
            digest: digest.clone(),
            size: Some(desc.size()),
            diff_id: Some(diff_id.clone()),
            hint: compression,
        };
        descriptors.push(LayerDescriptor {
            digest,
            diff_id: Some(diff_id.clone()),
            compressed_size: Some(desc.size()),
            media_type,
            compression,
        });
        layers.push((rel, spec));
    }
    let image = ResolvedImage {
        name,
        manifest_digest,
        config_digest,
        config,
        layers: descriptors,
    };
    let source = StoreImage {
        store,
        image,
        raw_config,
        kind,
        layers,
    };
    source.check_layers_present()?;
    Ok(source)
}

pub(crate) fn check_diff_id(
    store: &dyn Store,
    config_rel: &str,
    diff_id: &str,
) -> Result<(), SourceError> {
    if sha256_hex(diff_id).is_none() {
        return Err(SourceError::Malformed {
            path: store.display(config_rel),
            what: "image config",
            message: format!("unsupported or invalid diff_id `{diff_id}`"),
            source: None,
        });
    }
    Ok(())
}

/// Opens the image named by `tag` (or the only one) in an OCI layout.
pub(crate) fn open_layout(
    store: Arc<dyn Store>,
    name: String,
    tag: Option<&str>,
    platform: &Platform,
    kind: &'static str,
) -> Result<StoreImage, SourceError> {
    let bytes = store.read_small("index.json", "index.json")?;
    let index: ImageIndex = parse_json(&*store, "index.json", "index.json", &bytes)?;
    let candidates: Vec<Descriptor> = match tag {
        Some(tag) => index
            .manifests()
            .iter()
            .filter(|d| {
                ref_names(d)
                    .iter()
                    .any(|n| n == tag || name_matches(n, tag))
            })
            .cloned()
            .collect(),
        None => index.manifests().clone(),
    };
    let tags: Vec<String> = index.manifests().iter().flat_map(ref_names).collect();
    let chosen = match candidates.len() {
        0 => {
            let message = match tag {
                Some(tag) => format!(
                    "no image tagged `{tag}` in index.json (tags: {})",
                    list_or_none(&tags)
                ),
                None => "index.json lists no images".into(),
            };
            return Err(SourceError::NotFound { name, message });
        }
        1 => candidates[0].clone(),
        n => {
            // Several entries: a platform list at the top level is fine, otherwise ask for a tag.
            if candidates
                .iter()
                .all(|d| d.platform().is_some() || is_attestation(d))
            {
                choose_platform(&candidates, platform, &name)?.clone()
            } else {
                return Err(SourceError::NotFound {
                    name,
                    message: format!(
                        "index.json lists {n} images; pick one with :TAG (tags: {})",
                        list_or_none(&tags)
                    ),
                });
            }
        }
    };
    let (manifest_digest, manifest) = resolve_manifest(&*store, &chosen, platform, &name, 0)?;
    image_from_manifest(store, name, Some(manifest_digest), &manifest, kind)
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}
