//! PID 1 of the container: builds the root (mounts, pivot_root), then execs.

use std::convert::Infallible;
use std::path::Path;

use nix::mount::MsFlags;
use nix::sys::signal::Signal;

use super::child::{become_user, exec_argv, limit_caps, pre_exec, redirect_stdio};
use super::mount::{bind, mkdirs, open_path, touch, write_etc};
use super::process::SandboxEnds;
use super::protocol::{SetupError, SetupMsg, SetupOp};
use super::runtime::{Plan, with_home};
use super::syscall::{FileKind, LoopbackStep, Syscall};
use crate::{OUTPUT_DIR, SENSOR_PATH};

/// PID 1 of the container: builds the root, then waits for the go signal and execs.
pub(super) fn init_main(
    sys: &dyn Syscall,
    plan: &Plan,
    ends: &SandboxEnds,
) -> Result<Infallible, SetupError> {
    let _ = sys.set_pdeathsig(Signal::SIGKILL);
    build_root(sys, plan)?;
    redirect_stdio(sys, &ends.out_w, &ends.serr_w)?;
    let env = match &plan.user {
        Some(user) => {
            let home = become_user(sys, user, &plan.workdir)?;
            with_home(&plan.env, &home)
        }
        None => plan.env.clone(),
    };
    pre_exec(sys);
    // Ready; wait for the caller to open our namespaces, then exec.
    let mut ctl = ends.ctl.try_clone().unwrap_or_else(|_| sys.exit(125));
    if ctl.send(&SetupMsg::Ready).is_err() {
        sys.exit(125);
    }
    match ctl.recv_blocking(sys) {
        Ok(SetupMsg::Go) => {}
        _ => sys.exit(125),
    }
    exec_argv(sys, &plan.argv, &env)
}

/// The container's root, in this order: `/` rprivate, a tmpfs over the temp dir, the overlay
/// on `<tmp>/root`, host fds opened (/dev nodes, sensor, output dir), `pivot_root` with the
/// old root kept under a random name, /proc, /dev (tmpfs, bound nodes, pts, shm, links),
/// /sys, /tmp, the sensor binds, the old root detached, /etc files, hostname, `lo` up, and
/// the capability bounding set limited.
fn build_root(sys: &dyn Syscall, plan: &Plan) -> Result<(), SetupError> {
    sys.mount(None, "/", None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)
        .map_err(SetupError::sys(SetupOp::MakeRootPrivate, None))?;
    let tmp = plan.tmp.to_str().ok_or(SetupError::TempPathNotUtf8)?;
    sys.mount(
        Some("tmpfs"),
        tmp,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(c"mode=0700"),
    )
    .map_err(SetupError::sys(SetupOp::MountTmpfs, Some(tmp)))?;
    let root = format!("{tmp}/root");
    for d in ["upper", "work", "root"] {
        sys.mkdir(&format!("{tmp}/{d}"), 0o755)
            .map_err(SetupError::io(SetupOp::Mkdir, &format!("{tmp}/{d}")))?;
    }
    sys.mount(
        Some("overlay"),
        root.as_str(),
        Some("overlay"),
        MsFlags::empty(),
        Some(plan.overlay_opts.as_c_str()),
    )
    .map_err(SetupError::sys(
        SetupOp::MountOverlay,
        Some(&plan.overlay_opts.to_string_lossy()),
    ))?;

    // Host-side sources, opened before the host root disappears.
    let devs = ["null", "zero", "full", "random", "urandom", "tty"];
    let mut dev_fds = Vec::new();
    for d in devs {
        dev_fds.push((d, open_path(sys, Path::new(&format!("/dev/{d}")))?));
    }
    let sensor_fds = match &plan.sensor {
        Some((bin, out)) => Some((open_path(sys, bin)?, open_path(sys, out)?)),
        None => None,
    };

    // The old root stays attached under a random name until the binds are done: bind mounts
    // need their source mount in this namespace.
    sys.chdir(root.as_str())
        .map_err(SetupError::sys(SetupOp::Chdir, Some(&root)))?;
    let oldroot = format!("/{}", plan.oldroot);
    sys.mkdir(&plan.oldroot, 0o700)
        .map_err(SetupError::io(SetupOp::Mkdir, &oldroot))?;
    sys.pivot_root(".", &plan.oldroot)
        .map_err(SetupError::sys(SetupOp::PivotRoot, None))?;
    sys.chdir("/")
        .map_err(SetupError::sys(SetupOp::Chdir, Some("/")))?;

    let nsd = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mkdirs(sys, "/proc")?;
    sys.mount(Some("proc"), "/proc", Some("proc"), nsd, None)
        .map_err(SetupError::sys(SetupOp::Mount, Some("/proc")))?;
    mkdirs(sys, "/dev")?;
    sys.mount(
        Some("tmpfs"),
        "/dev",
        Some("tmpfs"),
        MsFlags::MS_NOSUID,
        Some(c"mode=0755,size=65536k"),
    )
    .map_err(SetupError::sys(SetupOp::Mount, Some("/dev")))?;
    for (d, fd) in &dev_fds {
        let t = format!("/dev/{d}");
        touch(sys, &t)?;
        bind(sys, fd, &t, false)?;
    }
    mkdirs(sys, "/dev/pts")?;
    sys.mount(
        Some("devpts"),
        "/dev/pts",
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some(c"newinstance,ptmxmode=0666,mode=0620"),
    )
    .map_err(SetupError::sys(SetupOp::Mount, Some("/dev/pts")))?;
    mkdirs(sys, "/dev/shm")?;
    sys.mount(
        Some("shm"),
        "/dev/shm",
        Some("tmpfs"),
        nsd,
        Some(c"mode=1777,size=65536k"),
    )
    .map_err(SetupError::sys(SetupOp::Mount, Some("/dev/shm")))?;
    for (link, target) in [
        ("/dev/ptmx", "pts/ptmx"),
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        sys.symlink(target, link)
            .map_err(SetupError::io(SetupOp::Symlink, link))?;
    }
    // /sys read-only when the kernel allows it in this net ns; not essential.
    if mkdirs(sys, "/sys").is_ok() {
        let _ = sys.mount(
            Some("sysfs"),
            "/sys",
            Some("sysfs"),
            nsd | MsFlags::MS_RDONLY,
            None,
        );
    }
    // /tmp: a tmpfs unless the image ships files there (Docker would show them).
    let tmp_empty = sys.dir_is_empty("/tmp");
    if tmp_empty && sys.file_kind("/tmp") != Some(FileKind::Other) {
        mkdirs(sys, "/tmp")?;
        sys.mount(
            Some("tmpfs"),
            "/tmp",
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(c"mode=1777"),
        )
        .map_err(SetupError::sys(SetupOp::Mount, Some("/tmp")))?;
    }
    if let Some((bin, out)) = &sensor_fds {
        mkdirs(sys, OUTPUT_DIR)?;
        touch(sys, SENSOR_PATH)?;
        bind(sys, bin, SENSOR_PATH, true)?;
        bind(sys, out, OUTPUT_DIR, false)?;
    }
    drop(sensor_fds);
    drop(dev_fds);
    sys.umount_detach(&oldroot)
        .map_err(SetupError::sys(SetupOp::DetachOldRoot, None))?;
    sys.remove_dir(&oldroot)
        .map_err(SetupError::io(SetupOp::Rmdir, &oldroot))?;
    mkdirs(sys, "/etc")?;
    write_etc(sys, "/etc/hostname", &format!("{}\n", plan.hostname))?;
    // Docker's /etc/hosts, with the hostname on loopback (the sandbox has no other address).
    write_etc(
        sys,
        "/etc/hosts",
        &format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.0.1\t{}\n",
            plan.hostname
        ),
    )?;
    write_etc(
        sys,
        "/etc/resolv.conf",
        "# pare embedded runtime: the sandbox has no network beyond loopback\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
    )?;
    sys.sethostname(&plan.hostname)
        .map_err(SetupError::sys(SetupOp::SetHostname, None))?;
    sys.loopback_up().map_err(|(step, errno)| SetupError::Sys {
        op: match step {
            LoopbackStep::Socket => SetupOp::Socket,
            LoopbackStep::GetFlags => SetupOp::GetLoopbackFlags,
            LoopbackStep::SetUp => SetupOp::SetLoopbackUp,
        },
        path: None,
        errno,
    })?;
    limit_caps(sys, &plan.caps)?;

    Ok(())
}
