//! `docker-daemon:NAME`: the Docker Engine through pare-docker's one client (`DOCKER_HOST`
//! honoured, API version negotiated, every call and every chunk of an export bounded in
//! time).
//!
//! Fast path: when the image lives in a local overlay2 store we can read, each layer is its
//! overlay2 `diff` directory (mapped from the inspect data's `LowerDir`/`UpperDir`, cross-checked
//! with the daemon's layer database when readable) and the config is the daemon's own config
//! blob (`image/overlay2/imagedb`, verified against the image ID). Otherwise, or with
//! [`OpenOptions::no_direct_storage`], the image is exported (`docker save`) into an anonymous
//! temporary file, which is then read like a `docker-archive:`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pare_docker::Client;

use crate::digest::{sha256_digest, sha256_hex};
use crate::docker_archive::open_docker_archive;
use crate::store::TarStore;
use crate::{
    Compression, ImageConfiguration, ImageSource, LayerContent, LayerDescriptor, OpenOptions,
    Platform, ResolvedImage, SourceError,
};

/// A daemon error: `message` says what was being done, `source` why it failed.
fn daemon_err(
    message: impl Into<String>,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> SourceError {
    move |source| SourceError::Daemon {
        message: message.into(),
        source: Some(source),
    }
}

/// An image read straight from the daemon's overlay2 directories.
struct OverlayImage {
    image: ResolvedImage,
    raw_config: Vec<u8>,
    dirs: Vec<PathBuf>,
}

impl ImageSource for OverlayImage {
    fn image(&self) -> &ResolvedImage {
        &self.image
    }

    fn open_layer(&self, index: usize) -> Result<LayerContent, SourceError> {
        let dir = self.dirs.get(index).ok_or_else(|| SourceError::NotFound {
            name: self.image.name.clone(),
            message: format!("no layer {index} (the image has {})", self.dirs.len()),
        })?;
        fs::read_dir(dir).map_err(|source| SourceError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(LayerContent::OverlayDir(dir.clone()))
    }

    fn kind(&self) -> &'static str {
        "overlay2"
    }

    fn raw_config(&self) -> Option<&[u8]> {
        Some(&self.raw_config)
    }
}

/// How long connecting (API version and ping) may take before the daemon counts as absent.
const CONNECT_TIMEOUT: std::time::Duration = pare_docker::CALL_TIMEOUT;

/// Opens `name` through the daemon at `DOCKER_HOST` (or the local socket).
pub(crate) fn open_daemon(
    name: &str,
    display: String,
    options: &OpenOptions,
) -> Result<Box<dyn ImageSource>, SourceError> {
    let client =
        Client::connect(CONNECT_TIMEOUT).map_err(|e| daemon_err("connecting")(e.into()))?;
    client.block_on(open_async(&client, name, display, options))
}

async fn open_async(
    client: &Client,
    name: &str,
    display: String,
    options: &OpenOptions,
) -> Result<Box<dyn ImageSource>, SourceError> {
    let docker = client.api();
    let inspect = match client.call(docker.inspect_image(name)).await {
        Ok(i) => i,
        Err(e) if pare_docker::is_not_found(&e) => {
            return Err(SourceError::NotFound {
                name: display,
                message: "no such image in the docker daemon".into(),
            });
        }
        Err(e) => return Err(daemon_err(format!("inspecting {name}"))(e.into())),
    };
    // Work on the JSON form: the date types of bollard's models depend on its cargo features.
    let inspect = serde_json::to_value(&inspect)
        .map_err(|e| daemon_err(format!("reading the inspect data of {name}"))(e.into()))?;
    let id = inspect
        .get("Id")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    let diff_ids: Vec<String> = inspect
        .pointer("/RootFS/Layers")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|l| l.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();

    // The image ID is the config's digest (dockerd always answers `sha256:<hex>`); without a
    // well-formed one, the export below computes it.
    let overlay = match id.parse() {
        Ok(config_digest) if !options.no_direct_storage => {
            overlay_dirs(&inspect, &diff_ids).map(|(root, dirs)| (root, dirs, config_digest))
        }
        _ => None,
    };
    if let Some((root, dirs, config_digest)) = overlay {
        let (raw_config, config) = match daemon_config(&root, &id) {
            Some(c) => c,
            None => {
                let history = client
                    .call(docker.image_history(name))
                    .await
                    .map_err(|e| daemon_err(format!("reading the history of {name}"))(e.into()))?;
                let history = serde_json::to_value(&history)
                    .map_err(|e| daemon_err(format!("reading the history of {name}"))(e.into()))?;
                reconstruct_config(&inspect, &history, &diff_ids)?
            }
        };
        let layers = diff_ids
            .iter()
            .map(|d| LayerDescriptor {
                digest: d.clone(),
                diff_id: Some(d.clone()),
                compressed_size: None,
                media_type: "application/vnd.docker.image.rootfs.diff.tar".into(),
                compression: Compression::None,
            })
            .collect();
        let image = ResolvedImage {
            name: display,
            manifest_digest: None,
            config_digest,
            config,
            layers,
        };
        return Ok(Box::new(OverlayImage {
            image,
            raw_config,
            dirs,
        }));
    }

    // Fallback: export into an anonymous temporary file (deleted when closed) and index it.
    let mut file = tempfile::tempfile().map_err(|source| SourceError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let mut stream = docker.export_image(name);
    while let Some(chunk) = client.next(&mut stream).await {
        let chunk = chunk.map_err(|e| daemon_err(format!("exporting {name}"))(e.into()))?;
        file.write_all(&chunk).map_err(|source| SourceError::Io {
            path: std::env::temp_dir(),
            source,
        })?;
    }
    file.flush().map_err(|source| SourceError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let store = TarStore::index(PathBuf::from(format!("docker save {name}")), file)?;
    let source = open_docker_archive(Arc::new(store), display, None, &Platform::host(), "export")?;
    if !id.is_empty() && source.image.config_digest.as_ref() != id {
        return Err(SourceError::Daemon {
            message: format!(
                "{name}: the exported image has config {} but inspect said {id} (was the tag moved?)",
                source.image.config_digest
            ),
            source: None,
        });
    }
    Ok(Box::new(source))
}

/// The overlay2 `diff` directory of every layer, bottom first, and the daemon's root
/// directory; `None` when they cannot be used.
fn overlay_dirs(
    inspect: &serde_json::Value,
    diff_ids: &[String],
) -> Option<(PathBuf, Vec<PathBuf>)> {
    let driver = inspect.get("GraphDriver")?;
    if driver.get("Name")?.as_str()? != "overlay2" {
        return None;
    }
    let data = driver.get("Data")?;
    let upper = PathBuf::from(data.get("UpperDir")?.as_str()?);
    let mut dirs: Vec<PathBuf> = match data.get("LowerDir").and_then(|v| v.as_str()) {
        Some(lower) if !lower.is_empty() => lower.split(':').rev().map(PathBuf::from).collect(),
        _ => Vec::new(),
    };
    dirs.push(upper.clone());
    if dirs.len() != diff_ids.len() || diff_ids.is_empty() {
        return None;
    }
    if dirs.iter().any(|d| fs::read_dir(d).is_err()) {
        return None;
    }
    // <root>/overlay2/<cache-id>/diff
    let root = upper.parent()?.parent()?.parent()?.to_path_buf();
    if !layerdb_agrees(&root, diff_ids, &dirs) {
        return None;
    }
    Some((root, dirs))
}

/// Chain IDs as the daemon's layer store computes them.
fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => sha256_digest(format!("{parent} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// When `<root>/image/overlay2/layerdb` is readable, checks that each layer's `cache-id` is the
/// directory we mapped it to. An unreadable layer database is not a disagreement.
fn layerdb_agrees(root: &Path, diff_ids: &[String], dirs: &[PathBuf]) -> bool {
    let layerdb = root.join("image/overlay2/layerdb/sha256");
    if fs::read_dir(&layerdb).is_err() {
        return true;
    }
    chain_ids(diff_ids).iter().zip(dirs).all(|(chain, dir)| {
        let Some(hex) = sha256_hex(chain) else {
            return false;
        };
        let Ok(cache_id) = fs::read_to_string(layerdb.join(hex).join("cache-id")) else {
            return false;
        };
        dir.parent()
            .and_then(|p| p.file_name())
            .is_some_and(|n| n.to_string_lossy() == cache_id.trim())
    })
}

/// The daemon's stored config blob for image `id`, verified against it.
fn daemon_config(root: &Path, id: &str) -> Option<(Vec<u8>, ImageConfiguration)> {
    let hex = sha256_hex(id)?;
    let path = root.join("image/overlay2/imagedb/content/sha256").join(hex);
    if fs::metadata(&path).ok()?.len() > crate::MAX_JSON {
        return None; // not read whole; the config is rebuilt from inspect data instead
    }
    let raw = fs::read(path).ok()?;
    if sha256_digest(&raw) != id {
        return None;
    }
    let config = serde_json::from_slice(&raw).ok()?;
    Some((raw, config))
}

/// An image config rebuilt from inspect and history data, for when the daemon's own config
/// blob cannot be read. Its bytes do not hash to the image ID.
fn reconstruct_config(
    inspect: &serde_json::Value,
    history: &serde_json::Value,
    diff_ids: &[String],
) -> Result<(Vec<u8>, ImageConfiguration), SourceError> {
    let field = |k: &str| inspect.get(k).cloned().unwrap_or(serde_json::Value::Null);
    let mut steps: Vec<serde_json::Value> = history
        .as_array()
        .map(|a| {
            a.iter()
                .rev()
                .map(|h| {
                    let created = h.get("Created").and_then(|c| c.as_i64()).map(pare_image::rfc3339);
                    serde_json::json!({
                        "created": created,
                        "created_by": h.get("CreatedBy").and_then(|v| v.as_str()).unwrap_or_default(),
                        "comment": h.get("Comment").and_then(|v| v.as_str()).filter(|s| !s.is_empty()),
                        "empty_layer": h.get("Size").and_then(|v| v.as_i64()).unwrap_or(0) == 0,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    // Size 0 does not always mean "no layer" (an empty diff is still a layer): when the count is
    // off, drop the flags rather than mis-map history to layers.
    let non_empty = steps.iter().filter(|s| s["empty_layer"] == false).count();
    if non_empty != diff_ids.len() {
        for s in &mut steps {
            if let Some(o) = s.as_object_mut() {
                o.remove("empty_layer");
            }
        }
    }
    let mut value = serde_json::json!({
        "created": field("Created"),
        "author": field("Author"),
        "architecture": field("Architecture"),
        "os": field("Os"),
        "config": field("Config"),
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "history": steps,
    });
    if let Some(v) = inspect.get("Variant").filter(|v| v.is_string()) {
        value["variant"] = v.clone();
    }
    if let Some(o) = value.as_object_mut() {
        o.retain(|_, v| !v.is_null() && v != "");
    }
    let rebuild = "cannot rebuild the image config from inspect data";
    let raw = serde_json::to_vec(&value).map_err(|e| daemon_err(rebuild)(e.into()))?;
    let config = serde_json::from_slice(&raw).map_err(|e| daemon_err(rebuild)(e.into()))?;
    Ok((raw, config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_docker() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], sha256_digest(format!("{a} {b}").as_bytes()));
    }

    #[test]
    fn overlay_dirs_need_matching_count_and_readable_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for id in ["l0", "l1"] {
            fs::create_dir_all(root.join("overlay2").join(id).join("diff")).unwrap();
        }
        let d = |id: &str| {
            root.join("overlay2")
                .join(id)
                .join("diff")
                .display()
                .to_string()
        };
        let inspect = serde_json::json!({"GraphDriver": {"Name": "overlay2", "Data": {
            "UpperDir": d("l1"), "LowerDir": d("l0")}}});
        let diff_ids = vec![
            format!("sha256:{}", "a".repeat(64)),
            format!("sha256:{}", "b".repeat(64)),
        ];
        let (found_root, dirs) = overlay_dirs(&inspect, &diff_ids).unwrap();
        assert_eq!(found_root, root);
        assert_eq!(dirs, vec![PathBuf::from(d("l0")), PathBuf::from(d("l1"))]);
        assert!(overlay_dirs(&inspect, &diff_ids[..1]).is_none());
        // A layer database that disagrees turns the fast path off.
        let chains = chain_ids(&diff_ids);
        for (chain, cache) in chains.iter().zip(["l0", "wrong"]) {
            let p = root
                .join("image/overlay2/layerdb/sha256")
                .join(sha256_hex(chain).unwrap());
            fs::create_dir_all(&p).unwrap();
            fs::write(p.join("cache-id"), cache).unwrap();
        }
        assert!(overlay_dirs(&inspect, &diff_ids).is_none());
        let p = root
            .join("image/overlay2/layerdb/sha256")
            .join(sha256_hex(&chains[1]).unwrap());
        fs::write(p.join("cache-id"), "l1").unwrap();
        assert!(overlay_dirs(&inspect, &diff_ids).is_some());
    }

    #[test]
    fn rebuilds_config_from_inspect() {
        let a = format!("sha256:{}", "a".repeat(64));
        let inspect = serde_json::json!({
            "Architecture": "amd64", "Os": "linux", "Created": "2024-01-01T00:00:00Z",
            "Config": {"User": "app", "Env": ["A=1"], "ExposedPorts": {"80/tcp": {}},
                       "Healthcheck": {"Test": ["CMD", "true"]}}
        });
        let history = serde_json::json!([
            {"Created": 1_700_000_000, "CreatedBy": "CMD [\"x\"]", "Size": 0, "Comment": ""},
            {"Created": 1_700_000_000, "CreatedBy": "ADD rootfs /", "Size": 10, "Comment": "imported"}
        ]);
        let (raw, config) =
            reconstruct_config(&inspect, &history, std::slice::from_ref(&a)).unwrap();
        assert_eq!(config.rootfs().diff_ids(), &vec![a]);
        let cfg = config.config().as_ref().unwrap();
        assert_eq!(cfg.user().as_deref(), Some("app"));
        assert_eq!(
            cfg.exposed_ports().as_ref().unwrap(),
            &vec!["80/tcp".to_string()]
        );
        let h = config.history().as_ref().unwrap();
        assert_eq!(h[0].created_by().as_deref(), Some("ADD rootfs /"));
        assert_eq!(h[1].empty_layer(), Some(true));
        assert!(String::from_utf8(raw).unwrap().contains("Healthcheck"));
    }
}
