//! The `embedded` runtime: no daemon, just Linux namespaces on this host (needs root).
//!
//! Process layout for one container:
//!
//! ```text
//! caller ──fork──> keeper (host pid ns; new mnt/uts/ipc/net ns, unshared pid ns)
//!                     └─fork──> init = PID 1 in the new pid ns: mounts, pivot_root, exec
//! ```
//!
//! * The keeper waits for init and reports its wait status on the setup channel (see
//!   `protocol`). It also watches a "lifeline" pipe whose only writer is the caller: if the
//!   caller dies (even SIGKILL), the keeper kills init, and the kernel kills every other
//!   process of the pid namespace.
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
//!
//! Modules, one concept each: `runtime` (checks, the plan of a container, `start_layers`),
//! `process` (the caller's side: forking the keeper, the handshake, the waiter), `keeper`,
//! `init` (the root, in order), `mount` (mount and file helpers; the read-only overlay
//! `pare build` uses), `child` (a forked child's last steps before exec), `protocol` (the
//! typed setup messages and errors), `forward` (ports), `container` (signals, `exec`,
//! removal) and `syscall`, the one seam to the kernel: every raw system call goes through
//! its `Syscall` trait, and its `LinuxSyscall` holds every `unsafe` block of the crate (the
//! crate denies `unsafe_code` elsewhere). A recording fake tests the setup without root.
//!
//! # Why hand-written namespaces and not youki's `libcontainer`
//!
//! Re-evaluated against libcontainer 0.7.0 (crates.io, December 2026); the decision stays.
//!
//! * Start-up. `scripts/bench-embedded-start` (the `startup` example) measures `start()` up
//!   to the command's exec: a median of 1.4–1.6 ms over 30–50 runs for this runtime (3–7 ms
//!   including exit and cleanup), against 530–640 ms for the docker runtime, on the 2-core
//!   test machine under load. libcontainer does more per start: it writes a state directory
//!   and an OCI `config.json` bundle, creates a cgroup, and goes through an intermediate
//!   process and a notify socket (youki's own benchmark of the CLI, create to delete: about
//!   200 ms). pare starts a container per profile, stability and verify run, so start-up is
//!   on every build's critical path.
//! * What it needs. With default features: 138 crates (135 with only cgroups v2), of which
//!   37 are new to pare's lock file — a second `nix` (0.29 beside our 0.31), procfs,
//!   netlink, protobuf and its code generator (for CRIU), caps, pathrs — plus libseccomp's C
//!   library (`libseccomp-dev` on every build host) unless its default features are turned
//!   off. Not built here: on the shared 2-core machine that alone would take minutes, and its
//!   binary-size cost was not measured. It assumes a writable cgroup hierarchy (cgroups v1/v2
//!   or systemd) and root or a rootless user-namespace set-up; CI runs pare inside containers
//!   where /sys/fs/cgroup is often read-only.
//! * What it would not do. pare still needs the overlay root from image layers (libcontainer
//!   takes a ready rootfs directory), the lifeline that kills the sandbox when pare dies,
//!   the per-run temp dirs swept after SIGKILL, the port forwarder into the net namespace,
//!   and `docker run`'s defaults (HOME, /etc/hosts, umask, capability set) — about as much
//!   code as the namespace set-up it would replace (`keeper`, `init`, `child`: ~480 lines).
//!
//! Revisit when pare needs what libcontainer brings and this runtime lacks: resource limits
//! (cgroups), seccomp enforcement of the generated profile, user namespaces (rootless), or
//! checkpoint/restore.

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
mod setup_error;
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
        source: None,
    }
}

/// [`eerr`] for a failed system call: `message` says what was being done, `e` why it failed.
fn eerr_os(message: impl Into<String>, e: impl Into<std::io::Error>) -> RuntimeError {
    RuntimeError::Embedded {
        message: message.into(),
        source: Some(e.into()),
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
