//! Output formats: OCI image layout, OCI archive and `docker save` archive, written atomically.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tar::{EntryType, Header};

use pare_select::Selection;

use crate::image::{self, ImageMeta, MEDIA_INDEX};
use crate::layer::{LayerInfo, write_layer};
use crate::stack::{KeptLayer, Stack};
use crate::{WriteError, WrittenImage};

/// Where the image goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// An OCI image layout directory; `tag` becomes the manifest's
    /// `org.opencontainers.image.ref.name` annotation. An existing layout is added to
    /// (blobs are content-addressed; an index entry with the same tag is replaced).
    Oci {
        /// The layout directory, created when absent.
        dir: PathBuf,
        /// The reference name to annotate; `None` leaves the entry untagged.
        tag: Option<String>,
    },
    /// A `docker save` archive (`manifest.json` with `RepoTags`, plus an OCI layout inside,
    /// like Docker ≥ 25 writes), loadable by `docker load`.
    DockerArchive {
        /// The archive file, replaced atomically when it exists.
        path: PathBuf,
        /// `NAME:TAG` for `RepoTags`; `None` gives an archive that loads untagged.
        tag: Option<String>,
    },
    /// A tar of an OCI image layout (`oci-archive:PATH[:TAG]`, as skopeo writes): the same
    /// members as [`Output::DockerArchive`] without Docker's `manifest.json`; `tag` becomes
    /// the `org.opencontainers.image.ref.name` annotation. Replaced atomically when it exists.
    OciArchive {
        /// The archive file.
        path: PathBuf,
        /// The reference name to annotate; `None` leaves the entry untagged.
        tag: Option<String>,
    },
    /// Loaded into the local Docker daemon as `tag` (`NAME:TAG`), with the layer uncompressed
    /// (see [`crate::daemon`]); the digests reported are those of the gzip form.
    Daemon {
        /// `NAME:TAG` the daemon tags the loaded image with.
        tag: String,
    },
    /// Pushed to a registry (`docker://REGISTRY/NAME[:TAG]`): the image is written as an OCI
    /// layout in a temp dir, exactly as for [`Output::Oci`] (same digests), then its blobs are
    /// uploaded and the manifest pushed last (see `pare_source::registry::push_layout`).
    Registry {
        /// `REGISTRY/NAME[:TAG]` without the `docker://` prefix; never a digest.
        name: String,
    },
}

impl Output {
    /// Parses `oci:DIR[:TAG]`, `oci-archive:PATH[:TAG]`, `docker-archive:PATH[:NAME:TAG]` (the
    /// path ends at the first `:`, as in skopeo) or `docker://REGISTRY/NAME[:TAG]`.
    pub fn parse(spec: &str) -> Result<Output, WriteError> {
        let bad = |reason: &str| WriteError::Output {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        if let Some(name) = spec.strip_prefix("docker://") {
            if name.is_empty() || name.contains('@') || name.chars().any(char::is_whitespace) {
                return Err(bad(
                    "expected docker://REGISTRY/NAME[:TAG] (a tag, not a digest)",
                ));
            }
            return Ok(Output::Registry {
                name: name.to_string(),
            });
        }
        let (transport, rest) = spec
            .split_once(':')
            .ok_or_else(|| bad("expected oci:DIR or docker-archive:PATH"))?;
        let (path, tag) = match rest.split_once(':') {
            Some((p, t)) => (p, Some(t.to_string()).filter(|t| !t.is_empty())),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(bad("empty path"));
        }
        match transport {
            "oci" => Ok(Output::Oci {
                dir: path.into(),
                tag,
            }),
            "docker-archive" => Ok(Output::DockerArchive {
                path: path.into(),
                tag,
            }),
            "oci-archive" => Ok(Output::OciArchive {
                path: path.into(),
                tag,
            }),
            _ => Err(bad(
                "unknown transport (oci, oci-archive, docker-archive, docker://)",
            )),
        }
    }

    /// The tag the image is written under: the given one for the local forms (`None` when
    /// none was given), the part after the last `/`'s `:` for a registry (`latest` when
    /// absent).
    pub fn tag(&self) -> Option<&str> {
        match self {
            Output::Oci { tag, .. }
            | Output::OciArchive { tag, .. }
            | Output::DockerArchive { tag, .. } => tag.as_deref(),
            Output::Daemon { tag } => Some(tag),
            Output::Registry { name } => registry_tag(name),
        }
    }
}

/// The tag of `REGISTRY/NAME[:TAG]` (after the last `/`), `latest` when absent.
fn registry_tag(name: &str) -> Option<&str> {
    let last = name.rsplit('/').next().unwrap_or(name);
    Some(last.split_once(':').map(|(_, t)| t).unwrap_or("latest"))
}

pub(crate) fn io(path: &Path) -> impl Fn(std::io::Error) -> WriteError + '_ {
    move |source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `bytes` to `path` through a temp file + rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let dir = parent_of(path);
    let mut tmp = crate::tmp::file_in(&dir, "tmp").map_err(io(&dir))?;
    tmp.write_all(bytes).map_err(io(tmp.path()))?;
    tmp.persist(path).map_err(|e| WriteError::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// Copies `from` to `to` through a temp file + rename.
fn copy_atomic(from: &Path, to: &Path) -> Result<(), WriteError> {
    let dir = parent_of(to);
    let tmp = crate::tmp::file_in(&dir, "tmp").map_err(io(&dir))?;
    fs::copy(from, tmp.path()).map_err(io(from))?;
    tmp.persist(to).map_err(|e| WriteError::Io {
        path: to.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

fn blob_path(blobs: &Path, digest: &str) -> PathBuf {
    blobs.join(digest.trim_start_matches("sha256:"))
}

type TempWriter = BufWriter<fs::File>;

/// A temp file in `dir` that `write` fills with a layer (gzip, or plain for the daemon);
/// returns it with the layer facts.
pub(crate) fn layer_into_temp(
    dir: &Path,
    write: impl FnOnce(TempWriter) -> Result<(TempWriter, LayerInfo), WriteError>,
) -> Result<(tempfile::NamedTempFile, LayerInfo), WriteError> {
    let tmp = crate::tmp::file_in(dir, "layer").map_err(io(dir))?;
    let f = tmp.reopen().map_err(io(tmp.path()))?;
    let (w, info) = write(BufWriter::with_capacity(1 << 20, f)).map_err(|e| no_space(e, dir))?;
    // No fsync: on a busy ext4 it waits for everyone's dirty data (seconds); the rename keeps
    // readers from ever seeing a partial file.
    w.into_inner()
        .map_err(|e| WriteError::Io {
            path: tmp.path().to_path_buf(),
            source: e.into_error(),
        })
        .map_err(|e| no_space(e, dir))?;
    Ok((tmp, info))
}

/// A full disk surfaces as an error on whatever entry was being copied; name the filesystem
/// that is full instead (the temps are removed, no partial output is left).
pub(crate) fn no_space(e: WriteError, place: &Path) -> WriteError {
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    match e {
        WriteError::Io { source, .. } if matches!(source.raw_os_error(), Some(ENOSPC | EDQUOT)) => {
            WriteError::NoSpace {
                path: place.to_path_buf(),
                source,
            }
        }
        other => other,
    }
}

/// Writes an [`Output::Oci`], [`Output::OciArchive`] or [`Output::DockerArchive`]: the gzip
/// layer into a temp file beside the target, then the layout or archive around it.
pub(crate) fn write_file(
    rootfs: &Path,
    sel: &Selection,
    meta: &ImageMeta,
    stack: &Stack,
    output: Output,
    epoch: u64,
) -> Result<WrittenImage, WriteError> {
    let target = match &output {
        Output::Oci { dir, .. } => dir,
        Output::DockerArchive { path, .. } | Output::OciArchive { path, .. } => path,
        Output::Daemon { .. } | Output::Registry { .. } => {
            unreachable!("crate::dispatch sends these to daemon.rs and the registry push")
        }
    };
    let work_parent = parent_of(target);
    fs::create_dir_all(&work_parent).map_err(io(&work_parent))?;
    let (layer_tmp, layer) = layer_into_temp(&work_parent, |w| write_layer(rootfs, sel, epoch, w))?;
    let config = stack.config(image::config_json(meta, &layer, epoch)?)?;
    let manifest = stack.manifest_gzip(&config, &layer);
    let config_digest = image::digest(&config);
    let manifest_digest = image::digest(&manifest);
    let index_entry = image::index_entry(&manifest, output.tag(), meta);
    match &output {
        Output::Oci { dir, tag } => write_oci(
            dir,
            tag.as_deref(),
            layer_tmp,
            &layer,
            &stack.below,
            &config,
            &manifest,
            index_entry,
        )?,
        Output::DockerArchive { path, .. } | Output::OciArchive { path, .. } => write_archive(
            path,
            match &output {
                Output::DockerArchive { tag, .. } => Some(tag.as_deref()),
                _ => None,
            },
            layer_tmp.path(),
            &layer,
            &stack.below,
            &config,
            &manifest,
            index_entry,
            epoch,
        )?,
        Output::Daemon { .. } | Output::Registry { .. } => unreachable!("matched above"),
    }
    Ok(WrittenImage {
        config_digest,
        manifest_digest,
        layer,
        config,
        epoch,
        output,
    })
}

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

#[allow(clippy::too_many_arguments)]
pub(crate) fn write_oci(
    dir: &Path,
    tag: Option<&str>,
    layer_tmp: tempfile::NamedTempFile,
    layer: &LayerInfo,
    below: &[KeptLayer],
    config: &[u8],
    manifest: &[u8],
    entry: Value,
) -> Result<(), WriteError> {
    let existing = dir.exists();
    if existing {
        let empty = fs::read_dir(dir).map_err(io(dir))?.next().is_none();
        if !empty && !dir.join("oci-layout").is_file() {
            return Err(WriteError::NotALayout {
                path: dir.to_path_buf(),
            });
        }
    }
    // A new layout is assembled in a sibling temp dir and renamed into place at the end.
    let staging = if existing {
        None
    } else {
        let parent = parent_of(dir);
        Some(crate::tmp::dir_in(&parent, "oci").map_err(io(&parent))?)
    };
    let root = staging
        .as_ref()
        .map(|t| t.path().to_path_buf())
        .unwrap_or_else(|| dir.to_path_buf());
    let blobs = root.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(io(&blobs))?;
    let lp = blob_path(&blobs, layer.digest.as_ref());
    layer_tmp.persist(&lp).map_err(|e| WriteError::Io {
        path: lp.clone(),
        source: e.error,
    })?;
    for kept in below {
        let p = blob_path(&blobs, &kept.diff_id);
        if !p.exists() {
            copy_atomic(&kept.file, &p)?;
        }
    }
    for bytes in [config, manifest] {
        let p = blob_path(&blobs, image::digest(bytes).as_ref());
        if !p.exists() {
            write_atomic(&p, bytes)?;
        }
    }
    write_atomic(&root.join("oci-layout"), OCI_LAYOUT)?;
    let index_path = root.join("index.json");
    let mut manifests: Vec<Value> = match fs::read(&index_path) {
        Ok(b) => serde_json::from_slice::<Value>(&b)
            .ok()
            .and_then(|v| v.get("manifests").and_then(Value::as_array).cloned())
            .ok_or_else(|| WriteError::NotALayout {
                path: index_path.clone(),
            })?,
        Err(_) => Vec::new(),
    };
    let ref_of = |v: &Value| {
        v.pointer("/annotations/org.opencontainers.image.ref.name")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let new_digest = entry.get("digest").cloned();
    manifests.retain(|m| match tag {
        Some(t) => ref_of(m).as_deref() != Some(t),
        None => m.get("digest") != new_digest.as_ref() || ref_of(m).is_some(),
    });
    manifests.push(entry);
    let index = json!({ "schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": manifests });
    write_atomic(&index_path, &serde_json::to_vec(&index).unwrap_or_default())?;
    if let Some(staging) = staging {
        let tmp = staging.keep();
        if let Err(source) = fs::rename(&tmp, dir) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(WriteError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    }
    Ok(())
}

fn archive_header(kind: EntryType, name: &str, size: u64, epoch: u64) -> Header {
    let mut h = Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(if kind == EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(epoch);
    h.set_size(size);
    // Names here are short and ASCII.
    let _ = h.set_path(name);
    h.set_cksum();
    h
}

/// `docker_tag`: `Some` for a `docker save` archive (with `manifest.json` and its
/// `RepoTags`), `None` for an OCI archive (the layout alone).
#[allow(clippy::too_many_arguments)]
fn write_archive(
    path: &Path,
    docker_tag: Option<Option<&str>>,
    layer_file: &Path,
    layer: &LayerInfo,
    below: &[KeptLayer],
    config: &[u8],
    manifest: &[u8],
    entry: Value,
    epoch: u64,
) -> Result<(), WriteError> {
    let dir = parent_of(path);
    let tmp = crate::tmp::file_in(&dir, "archive").map_err(io(&dir))?;
    let f = tmp.reopen().map_err(io(tmp.path()))?;
    let lf = fs::File::open(layer_file).map_err(io(layer_file))?;
    let w = archive_to(
        BufWriter::with_capacity(1 << 20, f),
        docker_tag,
        lf,
        layer,
        below,
        config,
        manifest,
        entry,
        epoch,
    )
    .map_err(io(tmp.path()))?;
    w.into_inner().map_err(|e| WriteError::Io {
        path: tmp.path().to_path_buf(),
        source: e.into_error(),
    })?;
    tmp.persist(path).map_err(|e| WriteError::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// Writes a `docker save` archive into `w`: Docker's `manifest.json` (with `RepoTags`, from
/// `docker_tag`) and an OCI layout (index.json, blobs), like Docker ≥ 25 writes it; with
/// `docker_tag` `None`, an OCI archive: the layout alone. `layer_bytes` is the layer blob
/// described by `layer` (and by `manifest`); entries are sorted, headers normalized.
#[allow(clippy::too_many_arguments)]
pub(crate) fn archive_to<W: Write>(
    w: W,
    docker_tag: Option<Option<&str>>,
    layer_bytes: impl std::io::Read,
    layer: &LayerInfo,
    below: &[KeptLayer],
    config: &[u8],
    manifest: &[u8],
    entry: Value,
    epoch: u64,
) -> std::io::Result<W> {
    let mut tar = tar::Builder::new(w);
    let blob = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
    let config_name = blob(image::digest(config).as_ref());
    let layer_name = blob(layer.digest.as_ref());
    let mut layer_names: Vec<String> = below.iter().map(|k| blob(&k.diff_id)).collect();
    layer_names.push(layer_name.clone());
    let docker_manifest = docker_tag.map(|tag| {
        let m = json!([{ "Config": config_name, "RepoTags": tag.map(|t| vec![t.to_string()]), "Layers": layer_names }]);
        serde_json::to_vec(&m).unwrap_or_default()
    });
    let index = serde_json::to_vec(
        &json!({ "schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [entry] }),
    )
    .unwrap_or_default();
    for d in ["blobs/", "blobs/sha256/"] {
        tar.append(
            &archive_header(EntryType::Directory, d, 0, epoch),
            std::io::empty(),
        )?;
    }
    // (name, bytes in memory, or a kept layer's file; neither: the written layer)
    type Member<'a> = (String, Option<&'a [u8]>, Option<&'a KeptLayer>);
    let mut files: Vec<Member<'_>> = vec![
        (config_name.clone(), Some(config), None),
        (layer_name.clone(), None, None),
        (blob(image::digest(manifest).as_ref()), Some(manifest), None),
    ];
    files.extend(below.iter().map(|k| (blob(&k.diff_id), None, Some(k))));
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files.dedup_by(|a, b| a.0 == b.0);
    let mut layer_bytes = Some(layer_bytes);
    for (name, bytes, kept) in files {
        match (bytes, kept) {
            (Some(b), _) => tar.append(
                &archive_header(EntryType::Regular, &name, b.len() as u64, epoch),
                b,
            )?,
            (None, Some(k)) => tar.append(
                &archive_header(EntryType::Regular, &name, k.size, epoch),
                fs::File::open(&k.file)?,
            )?,
            (None, None) => {
                if let Some(lb) = layer_bytes.take() {
                    tar.append(
                        &archive_header(EntryType::Regular, &name, layer.size, epoch),
                        lb,
                    )?
                }
            }
        }
    }
    for (name, bytes) in [
        ("index.json", Some(&index[..])),
        ("manifest.json", docker_manifest.as_deref()),
        ("oci-layout", Some(OCI_LAYOUT)),
    ] {
        let Some(bytes) = bytes else { continue };
        tar.append(
            &archive_header(EntryType::Regular, name, bytes.len() as u64, epoch),
            bytes,
        )?;
    }
    tar.finish()?;
    tar.into_inner()
}
