//! `pare diff A B`: what changed between two images — files (kind, size, mode, owner, link
//! target, content digest), packages (dpkg, apk, Python, Node) with versions, config
//! (entrypoint, cmd, env, user, workdir, ports, volumes, labels, healthcheck, stop signal),
//! layers, and the attack-surface findings gained and lost.
//!
//! Both images are read with pare-xray's single streaming pass ([`pare_xray::analyze_with_fs`]):
//! per-path metadata plus a content hash computed while the bytes stream by, never the contents
//! themselves, so memory grows with the number of paths, not with the image size. The two merged
//! views are then walked side by side in path order.

#![deny(missing_docs)]

mod config;
mod files;
pub mod render;
mod surface;

use pare_image::ImagePath;
use pare_source::ImageSource;
use serde::Serialize;

pub use config::config_changes;
pub use files::{FileMeta, file_changes};
pub use surface::{findings, surface_changes};

/// Errors from comparing images. `Display` names the image (`A` or `B`) at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiffError {
    /// Reading one image's layers (pare-xray's streaming pass) failed.
    #[error("{side} ({name})")]
    Read {
        /// `A` or `B`: which of the two images.
        side: &'static str,
        /// That image's name as the user gave it.
        name: String,
        /// What went wrong while reading it.
        #[source]
        source: Box<pare_xray::XrayError>,
    },
    /// The `--path` glob does not compile.
    #[error("--path `{glob}`")]
    Glob {
        /// The glob as typed.
        glob: String,
        /// Why globset rejects it.
        #[source]
        source: globset::Error,
    },
}

/// Which part of the diff to compute and show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    /// `--only files`: the file section (both images' layers are read).
    Files,
    /// `--only packages`: the package section (both images' layers are read).
    Packages,
    /// `--only config`: the config section; no layer is read, so it is fast, and the
    /// sizes of [`ImageSide`] stay 0.
    Config,
}

/// Options of a diff.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Restrict to one section (default: everything).
    pub only: Option<Only>,
    /// Glob over absolute paths (`/usr/lib/**`) limiting the file section.
    pub path: Option<String>,
    /// Reader threads per image (0: one per core).
    pub threads: usize,
}

/// How an item differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Only in B.
    Added,
    /// Only in A.
    Removed,
    /// In both, different.
    Changed,
}

impl Change {
    /// `+`, `-` or `~`.
    pub fn sign(self) -> char {
        match self {
            Change::Added => '+',
            Change::Removed => '-',
            Change::Changed => '~',
        }
    }
}

/// The full comparison; serialized as `pare diff --format json` (see `docs/diff-json.md`).
#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    /// The JSON schema's version (`1`); a rename or removal of a field bumps it.
    pub schema_version: u32,
    /// The first image (the "before").
    pub a: ImageSide,
    /// The second image (the "after").
    pub b: ImageSide,
    /// Nothing in the compared sections differs.
    pub same: bool,
    /// The file section; `None` when `--only` picks another section.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<FilesDiff>,
    /// Packages whose version set differs, by ecosystem then name; `None` when `--only`
    /// picks another section.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packages: Option<Vec<PackageChange>>,
    /// Differing config items; `None` when `--only` picks another section.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<Vec<ConfigChange>>,
    /// The layer lists compared; only computed when no `--only` is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<LayersDiff>,
    /// Attack-surface findings gained and lost; only computed when no `--only` is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub surface: Option<SurfaceDiff>,
}

/// One compared image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageSide {
    /// The image as the user named it.
    pub name: String,
    /// How its layers were read (`docker-archive`, `oci`, `overlay2`, `export`, ...).
    pub source: String,
    /// `sha256:…` of its config blob.
    pub config_digest: String,
    /// How many layers its manifest lists.
    pub layers: usize,
    /// Visible entries (files, directories, links…) in the final filesystem.
    pub entries: u64,
    /// Bytes of the visible files.
    pub final_size: u64,
    /// Sum of all layers' file bytes.
    pub total_size: u64,
}

/// The file section: counts and sizes, then every differing path.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FilesDiff {
    /// Paths only in B.
    pub added: u64,
    /// Paths only in A.
    pub removed: u64,
    /// Paths in both whose compared fields differ.
    pub changed: u64,
    /// File bytes of the paths only in B.
    pub added_bytes: u64,
    /// File bytes of the paths only in A.
    pub removed_bytes: u64,
    /// B's size minus A's, summed over the changed paths (negative when B shrank).
    pub changed_bytes_delta: i64,
    /// Every differing path, in path order.
    pub entries: Vec<FileChange>,
}

/// One path that differs between the two images.
#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    /// The path.
    pub path: ImagePath,
    /// Added, removed or changed.
    pub change: Change,
    /// What differs for a changed path: `kind`, `size`, `mode`, `owner`, `link`, `digest`.
    pub fields: Vec<&'static str>,
    /// The path's metadata in A; `None` when A lacks the path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a: Option<FileMeta>,
    /// The path's metadata in B; `None` when B lacks the path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b: Option<FileMeta>,
}

/// One package whose set of installed versions differs.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PackageChange {
    /// `dpkg`, `apk`, `python` or `node`.
    pub ecosystem: &'static str,
    /// The package name as its ecosystem records it.
    pub name: String,
    /// Added (only in B), removed (only in A) or changed (another version).
    pub change: Change,
    /// Versions in A, joined with `, ` when installed more than once; `None` when A lacks
    /// the package.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a_version: Option<String>,
    /// Versions in B, as for `a_version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b_version: Option<String>,
}

/// One config item that differs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConfigChange {
    /// `Entrypoint`, `Cmd`, `User`, `WorkingDir`, `StopSignal`, `Healthcheck`, or one entry of a
    /// map: `Env.NAME`, `Labels.KEY`, `ExposedPorts.80/tcp`, `Volumes./data`.
    pub key: String,
    /// Added (set only in B), removed (set only in A) or changed.
    pub change: Change,
    /// A's value as stored in its config JSON (secret-looking env values redacted); `None`
    /// when unset or empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a: Option<serde_json::Value>,
    /// B's value, as for `a`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b: Option<serde_json::Value>,
}

/// One layer of an image, as the layer section lists it.
#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    /// Position in the image, bottom layer 0.
    pub index: usize,
    /// The uncompressed digest when known, else the blob digest.
    pub diff_id: String,
    /// Bytes of the files in the layer (0 when the layers were not read).
    pub size: u64,
    /// The history step that made it, as a Dockerfile instruction; empty when unknown.
    pub instruction: String,
}

/// The layer section: the common base, then each image's own layers.
#[derive(Debug, Clone, Serialize)]
pub struct LayersDiff {
    /// Leading layers the two images share (same diff ID, same position).
    pub shared: usize,
    /// A's layers after the shared ones.
    pub a_only: Vec<LayerInfo>,
    /// B's layers after the shared ones.
    pub b_only: Vec<LayerInfo>,
}

/// One attack-surface finding, flattened from pare-xray's [`pare_xray::Surface`].
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// `shell`, `package_manager`, `build_tool`, `network_tool`, `setuid`, `setgid`,
    /// `world_writable`, `capability`, `secret_file`, `secret_env`, `runs_as_root`,
    /// `exposed_port`, `no_healthcheck`.
    pub category: &'static str,
    /// The path, variable, port or user it is about.
    pub subject: String,
    /// More about it, by category: `-> TARGET` for a symlinked tool, `MODE UID:GID` for
    /// setuid/setgid/world-writable files, the reason for a secret; often empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// The attack-surface section.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SurfaceDiff {
    /// Findings of B that A did not have.
    pub gained: Vec<Finding>,
    /// Findings of A that B no longer has.
    pub lost: Vec<Finding>,
}

/// What was read of one image.
pub struct Analyzed {
    /// pare-xray's report: packages, attack surface, per-layer sizes and instructions.
    pub report: pare_xray::Report,
    /// The merged final filesystem, with a content hash per regular file.
    pub fs: pare_layerfs::MergedFs,
}

/// Reads one image with pare-xray's streaming pass (content hashes on, no lists kept).
pub fn analyze(source: &dyn ImageSource, threads: usize) -> Result<Analyzed, pare_xray::XrayError> {
    let opts = pare_xray::Options {
        top: 0,
        hash: true,
        threads,
    };
    let (report, fs) = pare_xray::analyze_with_fs(source, &opts)?;
    Ok(Analyzed { report, fs })
}

fn side(source: &dyn ImageSource, an: Option<&Analyzed>) -> ImageSide {
    let img = source.image();
    ImageSide {
        name: img.name.clone(),
        source: source.kind().to_string(),
        config_digest: img.config_digest.to_string(),
        layers: img.layers.len(),
        entries: an.map(|a| a.fs.len() as u64).unwrap_or(0),
        final_size: an.map(|a| a.fs.final_size()).unwrap_or(0),
        total_size: an.map(|a| a.fs.total_size()).unwrap_or(0),
    }
}

/// Compares image `a` with image `b`. Both are read concurrently.
pub fn diff(a: &dyn ImageSource, b: &dyn ImageSource, opts: &Options) -> Result<Diff, DiffError> {
    let glob = match &opts.path {
        Some(g) => Some(
            globset::Glob::new(g)
                .map_err(|source| DiffError::Glob {
                    glob: g.clone(),
                    source,
                })?
                .compile_matcher(),
        ),
        None => None,
    };
    let need_layers = opts.only != Some(Only::Config);
    let (ra, rb) = if need_layers {
        let (ra, rb) = std::thread::scope(|s| {
            let ha = s.spawn(|| analyze(a, opts.threads));
            let rb = analyze(b, opts.threads);
            let ra = ha.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            (ra, rb)
        });
        let ra = ra.map_err(|e| read_error("A", a, e))?;
        let rb = rb.map_err(|e| read_error("B", b, e))?;
        (Some(ra), Some(rb))
    } else {
        (None, None)
    };
    Ok(compare(a, b, ra.as_ref(), rb.as_ref(), opts, glob.as_ref()))
}

fn read_error(side: &'static str, src: &dyn ImageSource, e: pare_xray::XrayError) -> DiffError {
    DiffError::Read {
        side,
        name: src.image().name.clone(),
        source: Box::new(e),
    }
}

/// Compares two images already read (`None` when only the config is compared).
pub fn compare(
    a: &dyn ImageSource,
    b: &dyn ImageSource,
    ra: Option<&Analyzed>,
    rb: Option<&Analyzed>,
    opts: &Options,
    glob: Option<&globset::GlobMatcher>,
) -> Diff {
    let want = |o: Only| opts.only.is_none() || opts.only == Some(o);
    let both = ra.zip(rb);
    let files = both
        .filter(|_| want(Only::Files))
        .map(|(x, y)| file_changes(&x.fs, &y.fs, glob));
    let packages = both
        .filter(|_| want(Only::Packages))
        .map(|(x, y)| package_changes(&x.report.packages, &y.report.packages));
    let config = want(Only::Config).then(|| config_changes(a, b));
    let everything = opts.only.is_none();
    let layers = everything.then(|| layer_changes(a, b, ra, rb));
    let surface = both
        .filter(|_| everything)
        .map(|(x, y)| surface_changes(&x.report.surface, &y.report.surface));
    let same = files.as_ref().is_none_or(|f| f.entries.is_empty())
        && packages.as_ref().is_none_or(Vec::is_empty)
        && config.as_ref().is_none_or(Vec::is_empty)
        && layers
            .as_ref()
            .is_none_or(|l| l.a_only.is_empty() && l.b_only.is_empty())
        && surface
            .as_ref()
            .is_none_or(|s| s.gained.is_empty() && s.lost.is_empty());
    Diff {
        schema_version: 1,
        a: side(a, ra),
        b: side(b, rb),
        same,
        files,
        packages,
        config,
        layers,
        surface,
    }
}

fn layer_info(source: &dyn ImageSource, an: Option<&Analyzed>) -> Vec<LayerInfo> {
    let img = source.image();
    img.layers
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let lr = an.and_then(|a| a.report.layers.get(i));
            LayerInfo {
                index: i,
                diff_id: d.diff_id.clone().unwrap_or_else(|| d.digest.clone()),
                size: lr.map(|l| l.size).unwrap_or(0),
                instruction: lr.map(|l| l.instruction.clone()).unwrap_or_default(),
            }
        })
        .collect()
}

fn layer_changes(
    a: &dyn ImageSource,
    b: &dyn ImageSource,
    ra: Option<&Analyzed>,
    rb: Option<&Analyzed>,
) -> LayersDiff {
    let la = layer_info(a, ra);
    let lb = layer_info(b, rb);
    let shared = la
        .iter()
        .zip(&lb)
        .take_while(|(x, y)| x.diff_id == y.diff_id)
        .count();
    LayersDiff {
        shared,
        a_only: la[shared..].to_vec(),
        b_only: lb[shared..].to_vec(),
    }
}

fn versions(list: &[pare_xray::Package]) -> std::collections::BTreeMap<&str, String> {
    let mut m: std::collections::BTreeMap<&str, Vec<&str>> = std::collections::BTreeMap::new();
    for p in list {
        m.entry(&p.name).or_default().push(&p.version);
    }
    m.into_iter()
        .map(|(k, mut v)| {
            v.sort_unstable();
            v.dedup();
            (k, v.join(", "))
        })
        .collect()
}

/// Packages added, removed or at another version, per ecosystem, by name.
pub fn package_changes(a: &pare_xray::Packages, b: &pare_xray::Packages) -> Vec<PackageChange> {
    let mut out = Vec::new();
    for (eco, la, lb) in [
        ("dpkg", &a.dpkg, &b.dpkg),
        ("apk", &a.apk, &b.apk),
        ("python", &a.python, &b.python),
        ("node", &a.node, &b.node),
    ] {
        let va = versions(la);
        let vb = versions(lb);
        let mut names: Vec<&str> = va.keys().chain(vb.keys()).copied().collect();
        names.sort_unstable();
        names.dedup();
        for n in names {
            let (x, y) = (va.get(n), vb.get(n));
            let change = match (x, y) {
                (Some(x), Some(y)) if x == y => continue,
                (Some(_), Some(_)) => Change::Changed,
                (Some(_), None) => Change::Removed,
                _ => Change::Added,
            };
            out.push(PackageChange {
                ecosystem: eco,
                name: n.to_string(),
                change,
                a_version: x.cloned(),
                b_version: y.cloned(),
            });
        }
    }
    out
}
