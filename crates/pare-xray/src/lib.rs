//! Image analysis behind `pare xray`: per-layer stats, waste and efficiency, largest files and
//! directories, duplicate contents, attack surface, OS and packages, the Dockerfile rebuilt
//! from history, dive-compatible CI rules, and the table and JSON renderers.
//!
//! Everything is computed from one streaming pass over the layers ([`pare_layerfs::read_image`]):
//! compact per-path records plus a few small files captured by path (os-release, package
//! databases, secret candidates). No file content is kept beyond those.

#![deny(missing_docs)]

mod capture;
pub mod ci;
mod dockerfile;
mod duplicates;
pub mod fit;
mod packages;
pub mod render;
mod surface;

use std::collections::HashMap;

use pare_image::ImagePath;
use pare_layerfs::{Kind, LayerFsError, MergedFs, ReadOptions, read_image};
use pare_source::ImageSource;
use serde::Serialize;

pub use ci::{CiRules, RuleOutcome, RuleStatus};
pub use dockerfile::{clean_created_by, dockerfile_from_history};
pub use duplicates::MAX_DUPLICATE_PATHS;
pub use packages::{OsInfo, Package, Packages};
pub use surface::{EnvSecret, ModeFinding, PathSecret, Surface, ToolFinding, env_secret_reason};

/// Errors from analysis. `Display` is one line naming the layer, file or config at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum XrayError {
    /// Reading the image's layers failed (source, tar, path or entry-limit error).
    #[error(transparent)]
    Layers(#[from] LayerFsError),
    /// A `.dive-ci` file is not valid YAML, `rules` is not a mapping, or a rule is unknown or
    /// has a value of the wrong type or range.
    #[error("{path}: {message}")]
    CiConfig {
        /// The CI rules file as named by the caller.
        path: String,
        /// What is wrong with it, in words, on one line (`not YAML`, `unknown rule `x``).
        message: String,
        /// The YAML parser's error, when the file is not YAML.
        #[source]
        source: Option<serde_yaml::Error>,
    },
}

/// Analysis options.
#[derive(Debug, Clone)]
pub struct Options {
    /// How many entries the "largest", "wasted" and "duplicates" lists keep.
    pub top: usize,
    /// Hash file contents to find duplicates (costs CPU, not memory).
    pub hash: bool,
    /// Reader threads (0: one per core).
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            top: 20,
            hash: true,
            threads: 0,
        }
    }
}

/// The full report; serialized as `pare xray --format json` (see `docs/xray-json.md`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Schema version of this JSON.
    pub schema_version: u32,
    /// Name, source kind, digests and run configuration of the image.
    pub image: ImageInfo,
    /// One report per layer, bottom (base) layer first.
    pub layers: Vec<LayerReport>,
    /// Sum of the regular-file bytes of all layers (every copy counted).
    pub total_size: u64,
    /// Sum of the stored (compressed) layer sizes when the source knows them all.
    pub compressed_size: Option<u64>,
    /// Bytes of the files visible in the final filesystem (hard-linked data once).
    pub final_size: u64,
    /// Bytes of file copies that later layers overwrote or deleted.
    pub wasted_bytes: u64,
    /// `total_size` minus the base (first) layer.
    pub user_size: u64,
    /// `wasted_bytes / user_size` (0 when there are no user bytes); dive's user wasted percent.
    pub user_wasted_percent: f64,
    /// `1 - wasted_bytes / total_size` (1 for an empty image).
    pub efficiency: f64,
    /// Visible entries (files, directories, links…) in the final filesystem.
    pub entries: u64,
    /// Paths whose superseded copies waste the most bytes, largest first, at most [`Options::top`].
    pub wasted_files: Vec<WastedPath>,
    /// The largest visible regular files, largest first, at most [`Options::top`].
    pub largest_files: Vec<FileStat>,
    /// Directories with the most regular-file bytes beneath them, largest first, at most [`Options::top`].
    pub largest_dirs: Vec<DirStat>,
    /// Groups of visible files with identical content, most saving first, at most [`Options::top`] (empty unless [`Options::hash`]).
    pub duplicates: Vec<Duplicate>,
    /// Bytes that duplicate contents would save if each were stored once.
    pub duplicate_bytes: u64,
    /// Attack-surface findings: setuid/setgid and world-writable files, capabilities, shells and tools, secret-looking paths and environment variables.
    pub surface: Surface,
    /// The distribution from `os-release`, when the image has one.
    pub os: Option<OsInfo>,
    /// Installed packages: dpkg and apk databases, Python distributions and Node modules.
    pub packages: Packages,
    /// The Dockerfile rebuilt from history, one instruction per line.
    pub dockerfile: Vec<String>,
    /// CI rule outcomes, present in `--ci` mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci: Option<Vec<RuleOutcome>>,
}

/// Identity and run configuration of the analysed image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageInfo {
    /// The image reference or file name as the user gave it.
    pub name: String,
    /// How layers were read (`docker-archive`, `oci`, `overlay2`, …).
    pub source: String,
    /// Digest of the image config blob (`sha256:…`).
    pub config_digest: String,
    /// Digest of the manifest, when the source has one (daemon and plain archives may not).
    pub manifest_digest: Option<String>,
    /// Operating system from the config (`linux`).
    pub os: String,
    /// CPU architecture from the config (`amd64`, `arm64`, …).
    pub architecture: String,
    /// Creation time from the config, RFC 3339 as stored.
    pub created: Option<String>,
    /// `User` the container runs as; `None` when unset or empty (root).
    pub user: Option<String>,
    /// `Entrypoint` from the config.
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd` from the config.
    pub cmd: Option<Vec<String>>,
    /// `WorkingDir` from the config.
    pub working_dir: Option<String>,
}

/// What one layer holds and what it changed in the merged filesystem.
#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    /// Position of the layer, 0 for the base layer.
    pub index: usize,
    /// Digest of the layer blob as stored.
    pub digest: String,
    /// Digest of the uncompressed tar.
    pub diff_id: Option<String>,
    /// Regular-file bytes in the layer.
    pub size: u64,
    /// Stored blob size, when known.
    pub compressed_size: Option<u64>,
    /// `created_by` of the history step that made the layer, as stored.
    pub created_by: String,
    /// The same, as a Dockerfile instruction.
    pub instruction: String,
    /// Entries in the layer (whiteouts excluded).
    pub entries: u64,
    /// Paths the layer adds that no lower layer had.
    pub added: u64,
    /// Regular-file bytes of the added paths.
    pub added_bytes: u64,
    /// Paths that replace a lower layer's copy (directories re-listed as directories excluded).
    pub modified: u64,
    /// Regular-file bytes of the replacing copies.
    pub modified_bytes: u64,
    /// Paths the layer removes (whiteouts, opaque directories, everything beneath counted).
    pub deleted: u64,
    /// Regular-file bytes the removed paths had.
    pub deleted_bytes: u64,
    /// Bytes of this layer's files that later layers overwrote or deleted.
    pub wasted_bytes: u64,
}

/// A path whose lower copies are waste.
#[derive(Debug, Clone, Serialize)]
pub struct WastedPath {
    /// The path (`/usr/…`).
    pub path: ImagePath,
    /// Superseded copies of this path.
    pub copies: u64,
    /// Bytes wasted by those copies (0 for copies whose data a visible hard link still uses).
    pub wasted_bytes: u64,
    /// Layers holding the superseded copies.
    pub layers: Vec<usize>,
    /// Whether the path is still visible (overwritten) or gone (deleted).
    pub visible: bool,
}

/// A visible regular file, for the largest-files list.
#[derive(Debug, Clone, Serialize)]
pub struct FileStat {
    /// The path.
    pub path: ImagePath,
    /// Size in bytes.
    pub size: u64,
    /// Index of the layer the visible copy comes from.
    pub layer: usize,
}

/// A directory's total, for the largest-directories list.
#[derive(Debug, Clone, Serialize)]
pub struct DirStat {
    /// The path.
    pub path: ImagePath,
    /// Bytes of regular files beneath (recursively).
    pub size: u64,
    /// Regular files beneath (recursively).
    pub files: u64,
}

/// A set of visible files with identical content (same size and xxh3-64 hash).
#[derive(Debug, Clone, Serialize)]
pub struct Duplicate {
    /// Size of each copy in bytes.
    pub size: u64,
    /// xxh3-64 of the content, hex.
    pub hash: String,
    /// The paths of the copies, sorted; at most [`MAX_DUPLICATE_PATHS`] of them.
    pub paths: Vec<ImagePath>,
    /// Copies not listed in `paths` (beyond [`MAX_DUPLICATE_PATHS`]); absent from the JSON
    /// when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub paths_omitted: u64,
    /// `size * (copies - 1)`, where copies = `paths.len() + paths_omitted`.
    pub wasted_bytes: u64,
}

impl Duplicate {
    /// Number of copies: the listed paths and the omitted ones.
    pub fn copies(&self) -> u64 {
        self.paths.len() as u64 + self.paths_omitted
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Analyzes an image: one streaming pass over all layers, then the report.
pub fn analyze(source: &dyn ImageSource, opts: &Options) -> Result<Report, XrayError> {
    analyze_with_fs(source, opts).map(|(report, _)| report)
}

/// Like [`analyze`], also returning the merged filesystem (metadata and content hashes, no
/// contents) for callers that look further, such as `pare diff` and the HTML report.
pub fn analyze_with_fs(
    source: &dyn ImageSource,
    opts: &Options,
) -> Result<(Report, MergedFs), XrayError> {
    let fs = read_image(source, &read_options(opts))?;
    let report = build_report(source, &fs, opts);
    Ok((report, fs))
}

/// How [`analyze`] reads the layers for `opts`: what it hashes and which small files it
/// captures. A caller that walks the layers anyway (an extraction,
/// [`pare_layerfs::extract_indexed`]) reads them with these and hands the merged view to
/// [`analyze_merged`], instead of reading the image a second time.
pub fn read_options(opts: &Options) -> ReadOptions<'static> {
    static CAPTURE: capture::XrayCapture = capture::XrayCapture;
    ReadOptions {
        hash: opts.hash,
        capture: Some(&CAPTURE),
        threads: opts.threads,
        ..Default::default()
    }
}

/// The report [`analyze`] gives, from the merged view of `source`'s layers read with
/// [`read_options`] for the same `opts`.
pub fn analyze_merged(source: &dyn ImageSource, fs: &MergedFs, opts: &Options) -> Report {
    build_report(source, fs, opts)
}

fn build_report(source: &dyn ImageSource, fs: &MergedFs, opts: &Options) -> Report {
    let img = source.image();
    let cfg = img.config.config().as_ref();
    let steps = img.history_steps();
    let layers: Vec<LayerReport> = img
        .layers
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let ch = fs.layers.get(i).cloned().unwrap_or_default();
            let created_by = steps
                .iter()
                .find(|s| s.layer_index == Some(i))
                .map(|s| s.created_by.clone())
                .unwrap_or_default();
            LayerReport {
                index: i,
                digest: d.digest.clone(),
                diff_id: d.diff_id.clone(),
                size: ch.size,
                compressed_size: d.compressed_size,
                instruction: clean_created_by(&created_by),
                created_by,
                entries: ch.entries,
                added: ch.added,
                added_bytes: ch.added_bytes,
                modified: ch.modified,
                modified_bytes: ch.modified_bytes,
                deleted: ch.deleted,
                deleted_bytes: ch.deleted_bytes,
                wasted_bytes: ch.wasted_bytes,
            }
        })
        .collect();
    let total_size = fs.total_size();
    let wasted_bytes = fs.wasted_bytes();
    let user_size = total_size - layers.first().map(|l| l.size).unwrap_or(0);
    let compressed_size = img
        .layers
        .iter()
        .map(|l| l.compressed_size)
        .sum::<Option<u64>>();

    // Waste by path.
    let mut wasted: HashMap<&str, WastedPath> = HashMap::new();
    for s in &fs.superseded {
        let w = wasted.entry(&s.path).or_insert_with(|| WastedPath {
            path: ImagePath::from_rel(&s.path),
            copies: 0,
            wasted_bytes: 0,
            layers: Vec::new(),
            visible: false,
        });
        w.copies += 1;
        w.wasted_bytes += s.wasted;
        w.layers.push(usize::from(s.layer));
    }
    let wasted_list: Vec<WastedPath> = wasted
        .into_iter()
        .filter(|(_, w)| w.wasted_bytes > 0)
        .map(|(p, mut w)| {
            w.visible = fs.get(p).is_some();
            w
        })
        .collect();
    let mut wasted_files = wasted_list;
    wasted_files.sort_by(|a, b| {
        b.wasted_bytes
            .cmp(&a.wasted_bytes)
            .then_with(|| a.path.cmp(&b.path))
    });
    wasted_files.truncate(opts.top);

    // Largest files (a bounded heap) and directory totals.
    let mut heap: std::collections::BinaryHeap<
        std::cmp::Reverse<(u64, std::cmp::Reverse<&str>, u16)>,
    > = std::collections::BinaryHeap::with_capacity(opts.top + 1);
    let mut dirs: HashMap<&str, (u64, u64)> = HashMap::new();
    for (path, node) in fs.iter() {
        if node.kind != Kind::File {
            continue;
        }
        let size = node.size;
        if opts.top > 0 {
            heap.push(std::cmp::Reverse((
                size,
                std::cmp::Reverse(path),
                node.layer,
            )));
            if heap.len() > opts.top {
                heap.pop();
            }
        }
        let mut p = path;
        while let Some(i) = p.rfind('/') {
            p = &p[..i];
            let e = dirs.entry(p).or_default();
            e.0 += size;
            e.1 += 1;
        }
    }
    let files: Vec<FileStat> = heap
        .into_sorted_vec()
        .into_iter()
        .map(
            |std::cmp::Reverse((size, std::cmp::Reverse(p), layer))| FileStat {
                path: ImagePath::from_rel(p),
                size,
                layer: usize::from(layer),
            },
        )
        .collect();
    let mut largest_dirs: Vec<DirStat> = dirs
        .into_iter()
        .map(|(p, (size, files))| DirStat {
            path: ImagePath::from_rel(p),
            size,
            files,
        })
        .collect();
    largest_dirs.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.path.cmp(&b.path)));
    largest_dirs.truncate(opts.top);
    let (duplicates, duplicate_bytes) = duplicates::duplicates(fs, opts.top);

    let surface = surface::scan(source, fs);
    let (os, packages) = packages::collect(fs);

    let image = ImageInfo {
        name: img.name.clone(),
        source: source.kind().to_string(),
        config_digest: img.config_digest.to_string(),
        manifest_digest: img.manifest_digest.as_ref().map(ToString::to_string),
        os: img.config.os().to_string(),
        architecture: img.config.architecture().to_string(),
        created: img.config.created().clone(),
        user: cfg.and_then(|c| c.user().clone()).filter(|u| !u.is_empty()),
        entrypoint: cfg.and_then(|c| c.entrypoint().clone()),
        cmd: cfg.and_then(|c| c.cmd().clone()),
        working_dir: cfg.and_then(|c| c.working_dir().clone()),
    };
    Report {
        schema_version: 1,
        image,
        total_size,
        compressed_size,
        final_size: fs.final_size(),
        wasted_bytes,
        user_size,
        user_wasted_percent: if user_size == 0 {
            0.0
        } else {
            wasted_bytes as f64 / user_size as f64
        },
        efficiency: if total_size == 0 {
            1.0
        } else {
            1.0 - wasted_bytes as f64 / total_size as f64
        },
        entries: fs.len() as u64,
        layers,
        wasted_files,
        largest_files: files,
        largest_dirs,
        duplicates,
        duplicate_bytes,
        surface,
        os,
        packages,
        dockerfile: dockerfile_from_history(&steps),
        ci: None,
    }
}
