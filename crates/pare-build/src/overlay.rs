//! The read-only overlay mount of a local daemon's overlay2 layer directories, used instead
//! of extracting them (root only), and the private mount namespace that keeps it off the host.
//! The mount itself is pare-runtime's (`ReadOnlyOverlay`).

use std::path::Path;

/// Moves this process into a private mount namespace (root only; a no-op otherwise), so that
/// the read-only overlay `pare build` mounts never shows on the host and vanishes with the
/// process even when it is killed (Ctrl-C) before it can unmount. Call it at program start,
/// while the process is still single-threaded: threads started later inherit the namespace,
/// threads already running would not see the mount. Returns whether it worked.
pub fn private_mount_namespace() -> bool {
    pare_runtime::embedded::private_mount_namespace()
}

/// Mounts the layers of `source` at `target` as one read-only overlay when they are all
/// overlay2 directories (a local Docker daemon) and the mount is allowed (root). Whiteouts
/// and opaque directories are then applied by the kernel, exactly as for a container, and
/// nothing is copied. `None` (extract instead) otherwise, or with `PARE_NO_MOUNT=1`.
pub(crate) fn mount_layers(
    source: &dyn pare_source::ImageSource,
    target: &Path,
) -> Option<pare_runtime::embedded::ReadOnlyOverlay> {
    if std::env::var_os("PARE_NO_MOUNT").is_some_and(|v| v != "0") {
        return None;
    }
    let n = source.image().layers.len();
    // overlayfs needs two lower dirs when there is no upper dir.
    if n < 2 {
        return None;
    }
    let mut lowers = Vec::with_capacity(n);
    for i in (0..n).rev() {
        match source.open_layer(i).ok()? {
            pare_source::LayerContent::OverlayDir(dir) => {
                if pare_runtime::embedded::overlay_option_path(&dir).is_none() || !dir.is_dir() {
                    return None;
                }
                lowers.push(dir);
            }
            pare_source::LayerContent::Tar(_) => return None,
        }
    }
    pare_runtime::embedded::ReadOnlyOverlay::mount(&lowers, target).ok()
}
