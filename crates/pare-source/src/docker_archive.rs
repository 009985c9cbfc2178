//! `docker save` archives: the legacy format (`manifest.json`, `<id>.json`, `<id>/layer.tar`)
//! and Docker 25+'s (an OCI layout with `manifest.json` pointing into `blobs/sha256/`). The
//! archive is indexed once and read in place.

use std::sync::Arc;

use serde::Deserialize;

use crate::digest::sha256_of;
use crate::layer::BlobSpec;
use crate::layout::{StoreImage, check_diff_id, name_matches, open_layout, parse_json};
use crate::store::{Store, normalize};
use crate::{
    Compression, ImageConfiguration, LayerDescriptor, Platform, ResolvedImage, SourceError,
};

#[derive(Debug, Deserialize)]
struct ManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// The digest a path like `blobs/sha256/<hex>` or `<hex>.json` names, if any.
fn digest_from_path(rel: &str) -> Option<pare_image::Digest> {
    let name = rel.rsplit('/').next()?;
    let hex = name.strip_suffix(".json").unwrap_or(name);
    pare_image::digest::sha256_from_hex(hex)
}

/// Opens the image named by `reference` (a `RepoTags` entry or `@N`), or the only one.
pub(crate) fn open_docker_archive(
    store: Arc<dyn Store>,
    name: String,
    reference: Option<&str>,
    platform: &Platform,
    kind: &'static str,
) -> Result<StoreImage, SourceError> {
    if !store.exists("manifest.json")? {
        if store.exists("index.json")? {
            return open_layout(store, name, reference, platform, kind);
        }
        return Err(SourceError::Malformed {
            path: store.display("manifest.json"),
            what: "docker archive",
            message:
                "neither manifest.json nor index.json is present; is this a `docker save` tar?"
                    .into(),
            source: None,
        });
    }
    let bytes = store.read_small("manifest.json", "manifest.json")?;
    let entries: Vec<ManifestEntry> =
        parse_json(&*store, "manifest.json", "manifest.json", &bytes)?;
    let tags: Vec<String> = entries
        .iter()
        .flat_map(|e| e.repo_tags.clone().unwrap_or_default())
        .collect();
    let not_found = |message: String| SourceError::NotFound {
        name: name.clone(),
        message,
    };
    let entry = match reference {
        Some(r) if r.starts_with('@') => {
            let i: usize = r[1..]
                .parse()
                .map_err(|_| not_found(format!("`{r}` is not `@INDEX`")))?;
            entries.get(i).ok_or_else(|| {
                not_found(format!("no image {r}: the archive holds {}", entries.len()))
            })?
        }
        Some(r) => entries
            .iter()
            .find(|e| e.repo_tags.iter().flatten().any(|t| name_matches(t, r)))
            .ok_or_else(|| {
                not_found(format!("no image tagged `{r}` (tags: {})", tags.join(", ")))
            })?,
        None => match entries.len() {
            1 => &entries[0],
            0 => return Err(not_found("manifest.json lists no images".into())),
            n => {
                return Err(not_found(format!(
                    "the archive holds {n} images; pick one with :REF or :@INDEX (tags: {})",
                    tags.join(", ")
                )));
            }
        },
    };

    let malformed = |rel: &str, what: &'static str, message: String| SourceError::Malformed {
        path: store.display(rel),
        what,
        message,
        source: None,
    };
    crate::check_layer_count(
        store.display("manifest.json"),
        "manifest.json",
        entry.layers.len(),
    )?;
    let config_rel = normalize(&entry.config).ok_or_else(|| {
        malformed(
            "manifest.json",
            "manifest.json",
            format!("bad config path `{}`", entry.config),
        )
    })?;
    let raw_config = store.read_small(&config_rel, "image config")?;
    let config_digest = sha256_of(&raw_config);
    if let Some(expected) = digest_from_path(&config_rel).filter(|e| *e != config_digest) {
        return Err(SourceError::DigestMismatch {
            digest: expected.to_string(),
            actual: config_digest.to_string(),
        });
    }
    let config: ImageConfiguration = parse_json(&*store, &config_rel, "image config", &raw_config)?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != entry.layers.len() {
        return Err(malformed(
            &config_rel,
            "image config",
            format!(
                "manifest.json lists {} layers but the config has {} diff_ids",
                entry.layers.len(),
                diff_ids.len()
            ),
        ));
    }
    let mut layers = Vec::new();
    let mut descriptors = Vec::new();
    for (path, diff_id) in entry.layers.iter().zip(diff_ids) {
        check_diff_id(&*store, &config_rel, diff_id)?;
        let rel = normalize(path).ok_or_else(|| {
            malformed(
                "manifest.json",
                "manifest.json",
                format!("bad layer path `{path}`"),
            )
        })?;
        // Docker 25+ names the blob by its digest; legacy `layer.tar`s are the uncompressed tar.
        let digest = digest_from_path(&rel)
            .filter(|_| rel.starts_with("blobs/"))
            .map_or_else(|| diff_id.clone(), |d| d.to_string());
        let Some((_, size)) = store.open(&rel)? else {
            return Err(SourceError::MissingBlob {
                path: store.display(&rel),
                digest,
            });
        };
        let spec = BlobSpec {
            digest: digest.clone(),
            size: Some(size),
            diff_id: Some(diff_id.clone()),
            hint: Compression::None,
        };
        descriptors.push(LayerDescriptor {
            digest,
            diff_id: Some(diff_id.clone()),
            compressed_size: Some(size),
            media_type: if rel.starts_with("blobs/") {
                "application/vnd.oci.image.layer.v1.tar".into()
            } else {
                "application/vnd.docker.image.rootfs.diff.tar".into()
            },
            compression: Compression::None,
        });
        layers.push((rel, spec));
    }
    let image = ResolvedImage {
        name,
        manifest_digest: None,
        config_digest,
        config,
        layers: descriptors,
    };
    Ok(StoreImage {
        store,
        image,
        raw_config,
        kind,
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_paths() {
        let hex = "b".repeat(64);
        assert_eq!(
            digest_from_path(&format!("blobs/sha256/{hex}")).map(|d| d.to_string()),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(
            digest_from_path(&format!("{hex}.json")).map(|d| d.to_string()),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(digest_from_path("abc/layer.tar"), None);
    }
}
