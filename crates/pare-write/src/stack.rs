//! Layers kept below the written one, and the history to write instead of `pare build`'s
//! single entry: what `pare squash` needs so that one writer serves every command.
//!
//! A kept layer is an uncompressed tar whose SHA-256 is its diff_id, so its blob digest is
//! that same diff_id: the daemon and registries recognise the layer (and share it with the
//! base image) by content. With an empty [`Stack`] the writer's output is byte-identical to
//! what it writes without one.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::WriteError;
use crate::image::{self, MEDIA_CONFIG, MEDIA_LAYER_GZIP, MEDIA_LAYER_TAR, MEDIA_MANIFEST};
use crate::layer::LayerInfo;

/// One layer written as stored: an uncompressed tar file whose SHA-256 is `diff_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptLayer {
    /// The tar file on disk; it is read (not moved) when the image is written.
    pub file: PathBuf,
    /// `sha256:…` of the file (also its blob digest).
    pub diff_id: String,
    /// Bytes of the file (the manifest's layer `size`).
    pub size: u64,
}

/// What goes under the written layer, and the config history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stack {
    /// Layers below the written one, bottom first.
    pub below: Vec<KeptLayer>,
    /// The config's `history`, replacing the writer's one `pare build` entry; it must list
    /// one non-empty entry per layer (the `below` ones, then the written one).
    pub history: Option<Vec<Value>>,
}

impl Stack {
    /// True when there is nothing to add: no kept layers and no history replacement; the
    /// writer's output is then the same as without a stack.
    pub fn is_empty(&self) -> bool {
        self.below.is_empty() && self.history.is_none()
    }

    /// The config with the kept layers' diff_ids first and the history replaced.
    pub(crate) fn config(&self, config: Vec<u8>) -> Result<Vec<u8>, WriteError> {
        if self.is_empty() {
            return Ok(config);
        }
        let bad = |e: serde_json::Error| WriteError::Config {
            what: "stack".into(),
            reason: e.to_string(),
        };
        let mut v: Value = serde_json::from_slice(&config).map_err(bad)?;
        if let Some(ids) = v
            .pointer_mut("/rootfs/diff_ids")
            .and_then(Value::as_array_mut)
        {
            let mut all: Vec<Value> = self.below.iter().map(|l| json!(l.diff_id)).collect();
            all.append(ids);
            *ids = all;
        }
        if let Some(h) = &self.history {
            v["history"] = Value::Array(h.clone());
        }
        serde_json::to_vec(&image::sorted(&v)).map_err(bad)
    }

    /// The manifest: the kept layers (plain tars), then the written one (`layer_media`).
    pub(crate) fn manifest(&self, config: &[u8], layer: &LayerInfo, layer_media: &str) -> Vec<u8> {
        if self.below.is_empty() {
            return image::manifest_json_with(config, layer, layer_media);
        }
        let mut layers: Vec<Value> = self
            .below
            .iter()
            .map(|l| json!({ "mediaType": MEDIA_LAYER_TAR, "digest": l.diff_id, "size": l.size }))
            .collect();
        layers
            .push(json!({ "mediaType": layer_media, "digest": layer.digest, "size": layer.size }));
        let v = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": { "mediaType": MEDIA_CONFIG, "digest": image::digest(config), "size": config.len() },
            "layers": layers,
        });
        serde_json::to_vec(&image::sorted(&v)).unwrap_or_default()
    }

    /// [`Stack::manifest`] with the writer's gzip layer.
    pub(crate) fn manifest_gzip(&self, config: &[u8], layer: &LayerInfo) -> Vec<u8> {
        if self.below.is_empty() {
            return image::manifest_json(config, layer);
        }
        self.manifest(config, layer, MEDIA_LAYER_GZIP)
    }
}
