//! The `docker load` path of `pare build`: the layer goes to the daemon as a plain tar.
//!
//! Docker stores layers uncompressed and names an image by its config digest, which depends
//! only on the layer's diff_id: a plain-tar layer loads as the same image ID as the gzip one.
//! So pare does not gzip 100+ MB on the critical path, and the daemon does not inflate it
//! again. The archive is streamed into `docker load` (no archive file). The gzip blob that an
//! OCI layout (or `--output`) would carry is measured on a background thread while the image
//! is verified: [`LoadedImage::finish`] waits for it and gives the same [`WrittenImage`]
//! (layer digest and size, manifest digest) as writing the gzip layer would have.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use pare_image::Digest;
use pare_select::Selection;

use crate::image::{self, ImageMeta, MEDIA_LAYER_TAR};
use crate::layer::{LayerInfo, gzip_digest, write_layer_uncompressed};
use crate::output::{Output, archive_to, io, layer_into_temp, no_space};
use crate::pgzip::ParGz;
use crate::stack::Stack;
use crate::{WriteError, WrittenImage, resolve_epoch};

/// The layer written as a plain tar into a temp file (removed when done with).
pub struct PlainLayer {
    file: tempfile::NamedTempFile,
    info: LayerInfo,
    epoch: u64,
}

/// Writes the selection as one plain-tar layer into a temp file in `dir`. `epoch`: see
/// [`resolve_epoch`].
pub fn write_plain_layer(
    rootfs: &Path,
    sel: &Selection,
    epoch: Option<u64>,
    dir: &Path,
) -> Result<PlainLayer, WriteError> {
    plain_layer(rootfs, sel, resolve_epoch(epoch)?, dir)
}

/// [`Output::Daemon`]: the plain layer in the temp dir, loaded as `tag`, the gzip form
/// measured. A full disk is named as the temp dir's.
pub(crate) fn write_to_daemon(
    rootfs: &Path,
    sel: &Selection,
    meta: &ImageMeta,
    stack: &Stack,
    tag: &str,
    epoch: u64,
) -> Result<WrittenImage, WriteError> {
    let tmp = std::env::temp_dir();
    plain_layer(rootfs, sel, epoch, &tmp)
        .and_then(|plain| plain.load_on(meta, stack, tag))
        .and_then(LoadedImage::finish)
        .map_err(|e| no_space(e, &tmp))
}

/// [`write_plain_layer`] with the epoch already resolved.
pub(crate) fn plain_layer(
    rootfs: &Path,
    sel: &Selection,
    epoch: u64,
    dir: &Path,
) -> Result<PlainLayer, WriteError> {
    let (file, info) = layer_into_temp(dir, |w| write_layer_uncompressed(rootfs, sel, epoch, w))?;
    Ok(PlainLayer { file, info, epoch })
}

/// A reader that fails once `stop` is set, so an abandoned measurement ends early.
struct Stoppable<R> {
    inner: R,
    stop: Arc<AtomicBool>,
}

impl<R: Read> Read for Stoppable<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("gzip measurement abandoned"));
        }
        self.inner.read(buf)
    }
}

type GzipJob = JoinHandle<Result<(pare_image::Digest, u64), WriteError>>;

impl PlainLayer {
    /// The temp file, the layer's facts and the epoch.
    pub(crate) fn into_parts(self) -> (tempfile::NamedTempFile, LayerInfo, u64) {
        (self.file, self.info, self.epoch)
    }

    /// diff_id, size and entry counts (`digest`/`size` are the plain tar's).
    pub fn info(&self) -> &LayerInfo {
        &self.info
    }

    /// Loads the image into the local daemon as `tag` (streaming the archive into `docker
    /// load`) and starts measuring the gzip form on a background thread.
    pub fn load(self, meta: &ImageMeta, tag: &str) -> Result<LoadedImage, WriteError> {
        self.load_on(meta, &Stack::default(), tag)
    }

    /// [`PlainLayer::load`] with kept layers below and a history of its own (see [`Stack`]).
    pub fn load_on(
        self,
        meta: &ImageMeta,
        stack: &Stack,
        tag: &str,
    ) -> Result<LoadedImage, WriteError> {
        let config = stack.config(image::config_json(meta, &self.info, self.epoch)?)?;
        let config_digest = image::digest(&config);
        let path = self.file.path().to_path_buf();
        let for_load = self.file.reopen().map_err(io(&path))?;
        let for_gzip = self.file.reopen().map_err(io(&path))?;
        let stop = Arc::new(AtomicBool::new(false));
        let gzip = {
            let (file, stop, at) = (self.file, stop.clone(), path.clone());
            std::thread::Builder::new()
                .name("pare-gzip-size".into())
                .spawn(move || {
                    let _remove_when_done = file;
                    let r = Stoppable {
                        inner: BufReader::with_capacity(1 << 20, for_gzip),
                        stop,
                    };
                    gzip_digest(r, ParGz::<std::io::Sink>::default_threads())
                        .map_err(|source| WriteError::Io { path: at, source })
                })
                .map_err(io(&path))?
        };
        let manifest = stack.manifest(&config, &self.info, MEDIA_LAYER_TAR);
        let entry = image::index_entry(&manifest, Some(tag), meta);
        let loaded = docker_load_stream(|w| {
            archive_to(
                w,
                Some(Some(tag)),
                BufReader::with_capacity(1 << 20, for_load),
                &self.info,
                &stack.below,
                &config,
                &manifest,
                entry,
                self.epoch,
            )
            .map(drop)
        });
        match loaded {
            Ok(loaded_as) => Ok(LoadedImage {
                loaded_as,
                config_digest,
                config,
                plain: self.info,
                epoch: self.epoch,
                tag: tag.to_string(),
                gzip: Some(gzip),
                stop,
                stack: stack.clone(),
            }),
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                let _ = gzip.join();
                Err(e)
            }
        }
    }
}

/// An image loaded into the daemon whose gzip form is still being measured.
pub struct LoadedImage {
    /// What `docker load` reported (`NAME:TAG`).
    pub loaded_as: String,
    /// `sha256:…` of the config: Docker's image ID.
    pub config_digest: Digest,
    config: Vec<u8>,
    plain: LayerInfo,
    epoch: u64,
    tag: String,
    /// Taken by `finish`; a `LoadedImage` dropped without it (the build failed) stops it.
    gzip: Option<GzipJob>,
    stop: Arc<AtomicBool>,
    /// What went below the layer, for the manifest `finish` describes.
    stack: Stack,
}

impl LoadedImage {
    /// Waits for the gzip measurement: the image as [`crate::write_image`] would describe it
    /// (gzip layer digest and size, manifest digest), with [`Output::Daemon`].
    pub fn finish(mut self) -> Result<WrittenImage, WriteError> {
        let job = self.gzip.take().ok_or_else(|| WriteError::Io {
            path: PathBuf::from("<gzip>"),
            source: std::io::Error::other("the gzip measurement was already taken"),
        })?;
        let (digest, size) = job.join().map_err(|_| WriteError::Io {
            path: PathBuf::from("<gzip>"),
            source: std::io::Error::other("the gzip measuring thread panicked"),
        })??;
        let layer = LayerInfo {
            digest,
            size,
            ..self.plain.clone()
        };
        let manifest = self.stack.manifest_gzip(&self.config, &layer);
        Ok(WrittenImage {
            config_digest: self.config_digest.clone(),
            manifest_digest: image::digest(&manifest),
            layer,
            config: std::mem::take(&mut self.config),
            epoch: self.epoch,
            output: Output::Daemon {
                tag: self.tag.clone(),
            },
        })
    }
}

impl Drop for LoadedImage {
    fn drop(&mut self) {
        if let Some(job) = self.gzip.take() {
            self.stop.store(true, Ordering::Relaxed);
            let _ = job.join();
        }
    }
}

/// Runs `docker load -q`, lets `write` stream the archive into its stdin, and returns what it
/// loaded. The CLI, not bollard: see [`docker_load`].
fn docker_load_stream(
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<String, WriteError> {
    let mut child = Command::new("docker")
        .args(["load", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| WriteError::Docker {
            reason: format!("cannot run docker: {e}"),
        })?;
    let streamed = match child.stdin.take() {
        Some(stdin) => {
            let mut w = BufWriter::with_capacity(1 << 20, stdin);
            write(&mut w).and_then(|()| w.flush())
            // `w` drops here: stdin closes and docker sees the end of the archive.
        }
        None => Err(std::io::Error::other("no pipe to docker load")),
    };
    let out = child.wait_with_output().map_err(|e| WriteError::Docker {
        reason: format!("waiting for docker load: {e}"),
    })?;
    // docker's own complaint first: a broken pipe on our side is only its consequence.
    if out.status.success() {
        streamed.map_err(|e| WriteError::Docker {
            reason: format!("streaming the archive: {e}"),
        })?;
    }
    loaded(&out)
}

/// Writes the image and loads it into the local daemon as `tag` (`pare build --tag`), the
/// layer streamed uncompressed into `docker load`; see the module docs.
pub fn load_into_docker(
    rootfs: &Path,
    selection: &Selection,
    meta: &ImageMeta,
    tag: &str,
    epoch: Option<u64>,
) -> Result<WrittenImage, WriteError> {
    write_to_daemon(
        rootfs,
        selection,
        meta,
        &Stack::default(),
        tag,
        resolve_epoch(epoch)?,
    )
}

/// Loads a docker-archive into the local daemon with `docker load -i` and returns what it
/// loaded (`NAME:TAG`, or `sha256:…` for an untagged archive). The tag comes from the
/// archive's `RepoTags`, so write the archive with the wanted tag.
///
/// Why the CLI and not bollard's `import_image`: pare-write is synchronous and has no
/// tokio/hyper; the CLI negotiates the API version, honours `DOCKER_HOST` and contexts, and
/// streams the file itself. The daemonless path never calls this.
pub fn docker_load(archive: &Path) -> Result<String, WriteError> {
    let out = Command::new("docker")
        .arg("load")
        .arg("-i")
        .arg(archive)
        .output()
        .map_err(|e| WriteError::Docker {
            reason: format!("cannot run docker: {e}"),
        })?;
    loaded(&out)
}

/// What a finished `docker load` loaded (`Loaded image: NAME:TAG` or `Loaded image ID: …`),
/// or its output as the error when it failed.
pub(crate) fn loaded(out: &std::process::Output) -> Result<String, WriteError> {
    if !out.status.success() {
        return Err(WriteError::Docker {
            reason: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .rev()
        .find_map(|l| {
            l.strip_prefix("Loaded image: ")
                .or_else(|| l.strip_prefix("Loaded image ID: "))
        })
        .map(|s| s.trim().to_string())
        .ok_or_else(|| WriteError::Docker {
            reason: format!("unexpected output: {}", stdout.trim()),
        })
}
