//! The `embedded` runtime: no daemon, just Linux namespaces on this host (needs root).
//!
//! Why hand-rolled `nix`/`libc` code and not youki's `libcontainer` 0.7: libcontainer pulls in
//! a large dependency graph (oci-spec runtime, libseccomp's C library, cgroups managers,
//! procfs, …) that would double this crate's build time on a 2-core machine, and needs
//! libseccomp-dev on every build host. pare needs a small subset (namespaces, an overlay root,
//! a few mounts, loopback, dropping the capability bounding set) that fits in one file.
//!
//! Process layout for one container:
//!
//! ```text
//! caller ──fork──> keeper (host pid ns; new mnt/uts/ipc/net ns, unshared pid ns)
//!                     └─fork──> init = PID 1 in the new pid ns: mounts, pivot_root, exec
//! ```
//!
//! * The keeper waits for init and reports its wait status on a pipe. It also watches a
//!   "lifeline" pipe whose only writer is the caller: if the caller dies (even SIGKILL), the
//!   keeper kills init, and the kernel kills every other process of the pid namespace.
//! * All mounts happen inside the new mount namespace (made `rprivate` first): a tmpfs over
//!   the per-run temp dir holds the overlay's upper and work dirs, the overlay
//!   (lower = the image rootfs, never written) becomes the new root via `pivot_root`, and the
//!   old root is detached. The host never sees any of these mounts; they vanish with the
//!   namespace when the last process in it exits.
//! * Bind sources (sensor binary, output dir, /dev nodes) are opened as `O_PATH` fds before
//!   `pivot_root` and bound from `/proc/self/fd/N` afterwards, so every path *inside* the
//!   image is resolved inside the new root and absolute symlinks in the image cannot point
//!   mounts or writes at the host.
//! * Probes reach container ports through a forwarder thread on 127.0.0.1:random in the host
//!   net ns that opens the upstream socket from a thread that `setns`ed into the container's
//!   net ns (setns of a net ns only affects the calling thread).

mod child;
mod container;
mod forward;
mod init;
mod keeper;
mod mount;
mod process;
mod protocol;
#[cfg(test)]
mod protocol_tests;
mod runtime;
#[cfg(test)]
mod setup_tests;
mod syscall;

use std::ffi::CString;
use std::path::Path;
use std::sync::Mutex;

use crate::RuntimeError;

pub use container::EmbeddedContainer;
pub use mount::{ReadOnlyOverlay, overlay_option_path, private_mount_namespace};
pub use protocol::{DecodeError, SetupError, SetupOp, SetupPhase};
pub use runtime::EmbeddedRuntime;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn eerr(message: impl Into<String>) -> RuntimeError {
    RuntimeError::Embedded {
        message: message.into(),
    }
}

fn io_err(path: &Path, source: std::io::Error) -> RuntimeError {
    RuntimeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn cstring(what: &str, s: impl Into<Vec<u8>>) -> Result<CString, RuntimeError> {
    CString::new(s).map_err(|_| eerr(format!("{what} contains a NUL byte")))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
