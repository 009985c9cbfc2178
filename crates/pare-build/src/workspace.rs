//! The work directory of a build and the source's root filesystem in it: the layers mounted
//! as one read-only overlay when they can be, else extracted (see [`Rootfs::extract`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pare_layerfs::MergedFs;
use pare_reference::ImageRef;
use pare_source::ImageSource;

use crate::BuildError;
use crate::error::file_err;
use crate::overlay;
use crate::timing::Phases;

/// The temp work dir and the source's root filesystem under it.
pub(crate) struct Workspace {
    /// Declared before `work`, so unmounted before the work dir is removed.
    mounted: Option<pare_runtime::embedded::ReadOnlyOverlay>,
    work: tempfile::TempDir,
    rootfs: PathBuf,
}

/// Name prefix of a build's work dir in the temp dir.
pub(crate) const WORK_PREFIX: &str = "pare-build-";

impl Workspace {
    /// Creates the work dir and registers its removal on Ctrl-C, then mounts the source's
    /// layers at `rootfs` when they are a local daemon's overlay2 directories (phase `mount`).
    pub(crate) fn create(
        source: &dyn ImageSource,
        cancel: &pare_runtime::Cancel,
        phases: &mut Phases<'_>,
    ) -> Result<Workspace, BuildError> {
        // Work dirs of builds killed with SIGKILL (no clean-up ran) go with the next build.
        for root in crate::workroot::work_roots() {
            pare_runtime::remove_stale_dirs(&root, WORK_PREFIX);
        }
        // In memory when it fits (see workroot.rs): extraction and removal cost little there.
        let root = crate::workroot::work_root(source.image());
        let work = tempfile::Builder::new()
            .prefix(WORK_PREFIX)
            .tempdir_in(&root)
            .map_err(file_err(&root))?;
        pare_runtime::mark_owned(work.path())
            .map_err(file_err(&work.path().join(pare_runtime::OWNER_FILE)))?;
        let rootfs = work.path().join("rootfs");
        std::fs::create_dir(&rootfs).map_err(file_err(&rootfs))?;
        remove_on_interrupt(cancel, work.path().to_path_buf(), rootfs.clone());
        // A local daemon's overlay2 layers are mounted as one read-only overlay instead of
        // being copied (root only; anything else is extracted).
        let t_mount = Instant::now();
        let mounted = overlay::mount_layers(source, &rootfs);
        if mounted.is_some() {
            phases
                .progress
                .begin("mount", "read-only overlay of the layer dirs");
            phases.finish("mount", t_mount.elapsed(), true);
        }
        Ok(Workspace {
            mounted,
            work,
            rootfs,
        })
    }

    /// The work dir (written layers, the slim image's rootfs, traces).
    pub(crate) fn dir(&self) -> &Path {
        self.work.path()
    }

    /// The source's root filesystem (complete only after [`Rootfs::extract`] when not
    /// mounted).
    pub(crate) fn rootfs(&self) -> &Path {
        &self.rootfs
    }

    /// Whether the rootfs still has to be extracted: not when the layers are mounted.
    pub(crate) fn needs_extract(&self) -> bool {
        self.mounted.is_none()
    }

    /// Unmounts and removes the work dir on a thread: an extracted rootfs is thousands of
    /// files, seconds of unlinks that nothing needs to wait for but the end of the program.
    /// Dropping the returned [`Removal`] waits for it.
    pub(crate) fn remove_in_background(self) -> Removal {
        // Without a thread, the closure (and the workspace) is dropped here: removed now.
        let handle = std::thread::Builder::new()
            .name("pare-build-rm".into())
            .spawn(move || drop(self))
            .ok();
        Removal(handle)
    }
}

/// A work dir being removed on a thread; dropping it waits until the dir is gone.
pub(crate) struct Removal(Option<std::thread::JoinHandle<()>>);

impl Drop for Removal {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            let _ = h.join();
        }
    }
}

/// Ctrl-C: unmount and remove the work dir (extracted files, the written archive) before
/// the containers and temp dirs go and the program exits.
fn remove_on_interrupt(cancel: &pare_runtime::Cancel, work_dir: PathBuf, mount_point: PathBuf) {
    cancel.on_cancel(move || {
        // Half-written outputs beside an `--output` (`.pare-PID-…`).
        pare_write::remove_temp_files();
        let _ = nix::mount::umount2(&mount_point, nix::mount::MntFlags::MNT_DETACH);
        // Extraction may still be writing: move the dir away first so that new paths
        // under it fail, then remove what is there.
        let mut doomed = work_dir.clone().into_os_string();
        doomed.push(".interrupted");
        let doomed = PathBuf::from(doomed);
        let target = if std::fs::rename(&work_dir, &doomed).is_ok() {
            doomed
        } else {
            work_dir.clone()
        };
        for _ in 0..5 {
            if std::fs::remove_dir_all(&target).is_ok() || !target.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
}

/// The extraction of the source's layers into the rootfs (phase `extract`), run by the
/// profile phase: alone, or beside a trace the daemon runs from its own storage.
pub(crate) struct Rootfs<'a> {
    pub(crate) source: &'a dyn ImageSource,
    pub(crate) reference: &'a ImageRef,
    pub(crate) dest: &'a Path,
    /// Extraction is needed (the layers are not mounted).
    pub(crate) needed: bool,
    /// The original is analyzed later: extraction also reads the layers into the merged view
    /// the analysis needs ([`Rootfs::take_view`]), so they are decompressed and walked once.
    pub(crate) index: bool,
    /// That view, once extracted; `None` too when it could not be built in the same pass (the
    /// analysis then reads the layers again, and says so if that fails too).
    pub(crate) view: std::sync::Mutex<Option<MergedFs>>,
}

impl Rootfs<'_> {
    /// The progress detail: how many layers.
    pub(crate) fn detail(&self) -> String {
        pare_xray::render::plural(self.source.image().layers.len() as u64, "layer")
    }

    /// Extracts the layers (untimed; see [`Rootfs::run`]), indexing them on the way when
    /// the original is analyzed later.
    pub(crate) fn extract(&self) -> Result<(), BuildError> {
        let failed = |e| BuildError::Extract {
            image: self.reference.to_string(),
            dest: self.dest.to_path_buf(),
            source: Box::new(e),
        };
        if !self.index {
            return pare_layerfs::extract(self.source, self.dest)
                .map(drop)
                .map_err(failed);
        }
        let read = pare_xray::read_options(&crate::analyze::xray_options());
        let (_, view) =
            pare_layerfs::extract_indexed(self.source, self.dest, &read).map_err(failed)?;
        *self.view.lock().unwrap_or_else(|e| e.into_inner()) = view.ok();
        Ok(())
    }

    /// The merged view of the original's layers the extraction built, when it did; the
    /// analysis reads the layers again otherwise (mounted layers, or an index that failed).
    pub(crate) fn take_view(&self) -> Option<MergedFs> {
        self.view.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Extracts as the timed phase `extract`, when needed.
    pub(crate) fn run(&self, phases: &mut Phases<'_>) -> Result<(), BuildError> {
        if self.needed {
            phases.run("extract", &self.detail(), || self.extract())?;
        }
        Ok(())
    }
}
