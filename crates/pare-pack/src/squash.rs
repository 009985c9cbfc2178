//! `pare squash`: the merged filesystem as one layer, config and history kept.
//!
//! 1. open the image (with `--keep-base`, as tar streams even from the daemon, so the kept
//!    layers are the exact bytes their diff_ids name);
//! 2. read its merged view (pare-layerfs: whiteouts and opaque directories applied): xray's
//!    waste figure, and which layer each visible path comes from;
//! 3. extract it into a temp dir and select every path — or, above a kept base, only the
//!    paths the squashed layers added or changed, plus a whiteout (`.wh.NAME`) for each base
//!    path they removed;
//! 4. write it with pare-write ([`pare_write::write_image_on`]): the kept layers below, the
//!    history with the squashed steps marked `empty_layer` and one `pare squash` step.

use pare_image::{ImagePath, Platform};
use pare_layerfs::{ImageSource, Kind, MergedFs, ReadOptions};
use pare_source::OpenOptions;
use pare_write::{ImageMeta, Output, Stack};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;

use crate::history::{KeepBase, base_layers, squashed_history};
use crate::rootfs::{all_paths, save_layer, selection_of};
use crate::{PackError, io_err};

/// What to squash, and where to.
#[derive(Debug, Clone, Default)]
pub struct SquashOptions {
    /// The image reference, as `pare xray` takes it.
    pub image: String,
    /// `oci:DIR[:TAG]`, `oci-archive:PATH[:TAG]`, `docker-archive:PATH[:NAME:TAG]`, `docker://…`,
    /// `docker-daemon:NAME:TAG`.
    pub output: String,
    /// Which bottom layers stay as they are (`--keep-base`).
    pub keep_base: KeepBase,
    /// Timestamps (default: `$SOURCE_DATE_EPOCH`, else the image's creation time).
    pub epoch: Option<u64>,
    /// For an index: the platform to squash (default: the host's).
    pub platform: Option<Platform>,
    /// The program's cancellation token: the work dir is registered with it, so a Ctrl-C
    /// removes it.
    pub cancel: pare_runtime::Cancel,
}

/// What `pare squash` did.
#[derive(Debug, Clone, Serialize)]
pub struct SquashReport {
    /// The squashed image, as given.
    pub source: String,
    /// The output, as given.
    pub output: String,
    /// Layers of the source image.
    pub layers_before: usize,
    /// Layers of the output: the kept base layers plus one.
    pub layers_after: usize,
    /// Bottom layers kept as they were (`--keep-base`).
    pub kept_base_layers: usize,
    /// Source layers merged into the one new layer.
    pub squashed_layers: usize,
    /// Sum of every layer's file bytes (what the layers store, uncompressed).
    pub bytes_before: u64,
    /// The same for the squashed image.
    pub bytes_after: u64,
    /// `bytes_before - bytes_after`.
    pub saved_bytes: u64,
    /// The source's wasted bytes as `pare xray` counts them (copies later layers hide).
    pub wasted_bytes: u64,
    /// Whiteouts written over the kept base.
    pub whiteouts: usize,
    /// Size of the squashed layer blob: gzip, or the plain tar loaded into the daemon.
    pub layer_size: u64,
    /// `sha256:…` of the config: Docker's image ID.
    pub config_digest: String,
    /// Of the manifest with the gzip layer; not computed for `docker-daemon:` (the daemon
    /// keeps layers uncompressed, and compressing only to name it would double the time).
    pub manifest_digest: Option<String>,
    /// The timestamp written (seconds since the Unix epoch).
    pub epoch: u64,
}

/// Opens `opts.image` and squashes it.
pub fn squash(opts: &SquashOptions) -> Result<SquashReport, PackError> {
    let reference =
        pare_reference::ImageRef::parse(&opts.image).map_err(|source| PackError::Reference {
            reference: opts.image.clone(),
            source,
        })?;
    let open = OpenOptions {
        platform: opts.platform.clone(),
        // Kept layers must be the stored tars, never the daemon's directories.
        no_direct_storage: opts.keep_base != KeepBase::None,
    };
    let source = pare_source::open(&reference, &open).map_err(|source| PackError::Source {
        reference: opts.image.clone(),
        source: Box::new(source),
    })?;
    squash_source(source.as_ref(), opts)
}

/// Squashes an opened image (see the module docs).
pub fn squash_source(
    source: &dyn ImageSource,
    opts: &SquashOptions,
) -> Result<SquashReport, PackError> {
    let name = opts.image.clone();
    let output = crate::parse_output(&opts.output)?;
    let layers_err = |source| PackError::Layers {
        reference: name.clone(),
        source: Box::new(source),
    };
    let image = source.image();
    let raw = match source.raw_config() {
        Some(raw) => raw.to_vec(),
        None => serde_json::to_vec(&image.config).unwrap_or_default(),
    };
    let mut meta = ImageMeta::from_config_json(&raw, &name).map_err(|source| PackError::Write {
        output: opts.output.clone(),
        source: Box::new(source),
    })?;
    // Named by content, so every transport of the same image squashes to the same digest.
    meta.source_ref = meta.source_digest.to_string();
    let history: Vec<Value> = serde_json::from_slice::<Value>(&raw)
        .ok()
        .and_then(|v| v.get("history").and_then(Value::as_array).cloned())
        .unwrap_or_default();
    let layers = image.layers.len();
    let base = base_layers(&history, layers, opts.keep_base).map_err(|reason| PackError::Base {
        reference: name.clone(),
        reason,
    })?;

    let full = pare_layerfs::read_image(source, &ReadOptions::default()).map_err(layers_err)?;
    // A Ctrl-C also removes pare-write's half-written output beside `--output`.
    opts.cancel.on_cancel(|| {
        pare_write::remove_temp_files();
    });
    let work = opts
        .cancel
        .temp_dir("pare-squash-")
        .map_err(io_err(std::env::temp_dir()))?;
    let rootfs = work.path().join("rootfs");
    std::fs::create_dir(&rootfs).map_err(io_err(&rootfs))?;
    // A faithful copy: device nodes and FIFOs too (when root may create them).
    let with_devices = pare_layerfs::ExtractOptions::with_devices();
    pare_layerfs::extract_with(source, &rootfs, &with_devices).map_err(layers_err)?;

    // The kept base: saved as stored, and its merged view read back from those files.
    let mut stack = Stack::default();
    let mut base_fs = MergedFs::new();
    for (i, l) in image.layers.iter().take(base).enumerate() {
        let content = source.open_layer(i).map_err(|source| PackError::Source {
            reference: name.clone(),
            source: Box::new(source),
        })?;
        let kept = save_layer(
            content,
            &l.digest,
            &work.path().join(format!("base-{i}.tar")),
        )?;
        let f = std::fs::File::open(&kept.file).map_err(io_err(&kept.file))?;
        let idx = pare_layerfs::read_layer(
            pare_source::LayerContent::Tar(Box::new(std::io::BufReader::new(f))),
            &l.digest,
            &ReadOptions::default(),
        )
        .map_err(layers_err)?;
        base_fs.apply(idx);
        stack.below.push(kept);
    }

    let (selection, whiteouts, squashed_bytes) = if base == 0 {
        let paths = all_paths(&rootfs)?;
        (selection_of(&paths), 0, full.final_size())
    } else {
        above_base(&rootfs, &full, &base_fs, base)?
    };
    let (epoch, _) =
        pare_write::choose_epoch(opts.epoch, &meta).map_err(|source| PackError::Write {
            output: opts.output.clone(),
            source: Box::new(source),
        })?;
    stack.history = Some(squashed_history(
        &history,
        base,
        layers - base,
        // By content, not by how it was reached (same image, same digest).
        meta.source_digest.as_ref(),
        &pare_write::rfc3339(epoch),
    ));
    let write_err = |source| PackError::Write {
        output: opts.output.clone(),
        source: Box::new(source),
    };
    let (config_digest, manifest_digest, layer_size) = match &output {
        // Streamed uncompressed into `docker load`, as `pare build` does.
        Output::Daemon { tag } => {
            let plain =
                pare_write::write_plain_layer(&rootfs, &selection, Some(epoch), work.path())
                    .map_err(write_err)?;
            let size = plain.info().size;
            let loaded = plain.load_on(&meta, &stack, tag).map_err(write_err)?;
            // Dropped unfinished: the gzip measurement stops.
            (loaded.config_digest.clone(), None, size)
        }
        _ => {
            let w = pare_write::write_image_on(
                &rootfs,
                &selection,
                &meta,
                &stack,
                output.clone(),
                Some(epoch),
            )
            .map_err(write_err)?;
            (w.config_digest, Some(w.manifest_digest), w.layer.size)
        }
    };
    let bytes_before = full.total_size();
    let bytes_after = base_fs.total_size() + squashed_bytes;
    Ok(SquashReport {
        source: name,
        output: output_name(&output, &opts.output),
        layers_before: layers,
        layers_after: base + 1,
        kept_base_layers: base,
        squashed_layers: layers - base,
        bytes_before,
        bytes_after,
        saved_bytes: bytes_before.saturating_sub(bytes_after),
        wasted_bytes: full.wasted_bytes(),
        whiteouts,
        layer_size,
        config_digest: config_digest.to_string(),
        manifest_digest: manifest_digest.as_ref().map(ToString::to_string),
        epoch,
    })
}

fn output_name(out: &Output, spec: &str) -> String {
    match out {
        Output::Daemon { tag } => format!("docker-daemon:{tag}"),
        _ => spec.to_string(),
    }
}

/// The selection for the layer above a kept base: visible paths new to the image or coming
/// from a squashed layer (with their parents), and a whiteout for each base path that is
/// gone whose parent directory is still there. Also the file bytes the layer holds.
fn above_base(
    rootfs: &std::path::Path,
    full: &MergedFs,
    base_fs: &MergedFs,
    base: usize,
) -> Result<(pare_select::Selection, usize, u64), PackError> {
    let mut keep: Vec<ImagePath> = Vec::new();
    let mut bytes = 0u64;
    for (path, node) in full.iter() {
        if path.is_empty() || (usize::from(node.layer) < base && base_fs.get(path).is_some()) {
            continue;
        }
        // Extraction may have skipped what it cannot create (devices when not root).
        if std::fs::symlink_metadata(rootfs.join(path)).is_err() {
            continue;
        }
        if node.kind == Kind::File {
            bytes += node.size;
        }
        keep.push(ImagePath::from_rel(path));
    }
    let mut sel = selection_of(&keep);
    let mut gone: BTreeSet<String> = BTreeSet::new();
    for (path, _) in base_fs.iter() {
        if path.is_empty() || full.get(path).is_some() {
            continue;
        }
        let (parent, file) = match path.rsplit_once('/') {
            Some((p, f)) => (p, f),
            None => ("", path),
        };
        let parent_is_dir =
            parent.is_empty() || full.get(parent).is_some_and(|n| n.kind == Kind::Dir);
        // A removed directory's children go with its own whiteout.
        if parent_is_dir {
            gone.insert(path.to_string());
            let wh = ImagePath::from_rel(&if parent.is_empty() {
                format!(".wh.{file}")
            } else {
                format!("{parent}/.wh.{file}")
            });
            if !parent.is_empty() {
                for (k, v) in selection_of([&ImagePath::from_rel(parent)]).entries {
                    sel.entries.entry(k).or_insert(v);
                }
            }
            sel.entries.insert(wh.clone(), Default::default());
            sel.generated.insert(wh, Vec::new());
        }
    }
    Ok((sel, gone.len(), bytes))
}
