//! A registry push beside the caller's work: the layer is written as a plain tar first
//! ([`crate::write_plain_layer`]), which the caller can extract at once (`pare build`
//! verifies from it), while a thread gzips it into an OCI layout staged where the caller says
//! and pushes that layout, manifest last. The gzip blob is the one [`crate::write_image`]
//! writes (same bytes, whatever the thread count), so the image pushed and its digests are
//! those of [`crate::write_image`] to the same output; only the order of the work changes.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crate::daemon::PlainLayer;
use crate::image::{self, ImageMeta};
use crate::layer::{LayerInfo, gzip_into};
use crate::output::{Output, io, layer_into_temp, no_space, parent_of, write_oci};
use crate::pgzip::ParGz;
use crate::stack::Stack;
use crate::{WriteError, WrittenImage};

/// Whether the staged layout is complete: `None` while it is being written.
#[derive(Default)]
struct Staged {
    done: Mutex<Option<bool>>,
    changed: Condvar,
}

impl Staged {
    fn set(&self, ok: bool) {
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = Some(ok);
        self.changed.notify_all();
    }

    fn wait(&self) -> bool {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(ok) = *done {
                return ok;
            }
            done = self.changed.wait(done).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// A slim image being gzipped, staged and pushed on a thread ([`PlainLayer::push_staged`]).
/// Dropping it waits for the push, so the registry gets the image whatever the caller does
/// meanwhile, as when the push comes first.
pub struct PushingImage {
    /// `REGISTRY/NAME[:TAG]`, as the output names it.
    name: String,
    plain: Arc<tempfile::NamedTempFile>,
    info: LayerInfo,
    staged: Arc<Staged>,
    job: Option<JoinHandle<Result<WrittenImage, WriteError>>>,
}

impl PlainLayer {
    /// Starts gzipping this layer into an OCI layout at `staging` (a directory that does not
    /// exist yet; the caller removes it) and pushing it to the [`Output::Registry`]
    /// `output`, on a thread. Any other output is refused with [`WriteError::Output`].
    pub fn push_staged(
        self,
        meta: &ImageMeta,
        output: Output,
        staging: &Path,
    ) -> Result<PushingImage, WriteError> {
        let Output::Registry { name } = &output else {
            return Err(WriteError::Output {
                spec: format!("{output:?}"),
                reason: "only a docker:// output is pushed".into(),
            });
        };
        let name = name.clone();
        let name_out = name.clone();
        let (file, info, epoch) = self.into_parts();
        let plain = Arc::new(file);
        let staged = Arc::new(Staged::default());
        let job = {
            let (plain, staged, meta) = (plain.clone(), staged.clone(), meta.clone());
            let (info, dir) = (info.clone(), staging.to_path_buf());
            std::thread::Builder::new()
                .name("pare-push".into())
                .spawn(move || {
                    let tag = output.tag().map(str::to_string);
                    let written = stage(plain.path(), &info, &meta, epoch, &dir, tag.as_deref());
                    staged.set(written.is_ok());
                    let written = written?;
                    crate::dispatch::push_layout(&dir, tag.as_deref(), &name)?;
                    Ok(WrittenImage { output, ..written })
                })
                .map_err(io(staging))?
        };
        Ok(PushingImage {
            name: name_out,
            plain,
            info,
            staged,
            job: Some(job),
        })
    }
}

/// Gzips the plain tar at `plain` into the OCI layout `dir`, tagged `tag`.
fn stage(
    plain: &Path,
    info: &LayerInfo,
    meta: &ImageMeta,
    epoch: u64,
    dir: &Path,
    tag: Option<&str>,
) -> Result<WrittenImage, WriteError> {
    let parent = parent_of(dir);
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let tar = std::fs::File::open(plain).map_err(io(plain))?;
    let (gz, layer) = layer_into_temp(&parent, |w| {
        let threads = ParGz::<std::io::Sink>::default_threads();
        let (w, digest, size) =
            gzip_into(BufReader::with_capacity(1 << 20, tar), w, threads).map_err(io(plain))?;
        let layer = LayerInfo {
            digest,
            size,
            ..info.clone()
        };
        Ok((w, layer))
    })?;
    let config = image::config_json(meta, &layer, epoch)?;
    let manifest = Stack::default().manifest_gzip(&config, &layer);
    let entry = image::index_entry(&manifest, tag, meta);
    write_oci(dir, tag, gz, &layer, &[], &config, &manifest, entry)
        .map_err(|e| no_space(e, &parent))?;
    Ok(WrittenImage {
        config_digest: image::digest(&config),
        manifest_digest: image::digest(&manifest),
        layer,
        config,
        epoch,
        // Replaced by the registry output by the caller.
        output: Output::Oci {
            dir: dir.to_path_buf(),
            tag: tag.map(str::to_string),
        },
    })
}

impl PushingImage {
    /// Where the image goes: `REGISTRY/NAME[:TAG]`.
    pub fn destination(&self) -> &str {
        &self.name
    }

    /// The plain tar of the layer (the diff_id's bytes), there until this is dropped.
    pub fn plain_tar(&self) -> &Path {
        self.plain.path()
    }

    /// The plain layer's facts (`digest`/`size` are the plain tar's).
    pub fn info(&self) -> &LayerInfo {
        &self.info
    }

    /// Waits until the staged layout is written (the push may still run); `false` when
    /// staging failed ([`PushingImage::finish`] says why).
    pub fn wait_staged(&self) -> bool {
        self.staged.wait()
    }

    /// Waits for the push: the image as [`crate::write_image`] to the same output describes it.
    pub fn finish(mut self) -> Result<WrittenImage, WriteError> {
        let job = self.job.take().ok_or_else(|| WriteError::Io {
            path: PathBuf::from("<push>"),
            source: std::io::Error::other("the push was already waited for"),
        })?;
        job.join().map_err(|_| WriteError::Io {
            path: PathBuf::from("<push>"),
            source: std::io::Error::other("the pushing thread panicked"),
        })?
    }
}

impl Drop for PushingImage {
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            let _ = job.join();
        }
    }
}
