//! PID 1 of the container: builds the root (mounts, pivot_root), then execs.

use std::convert::Infallible;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::signal::Signal;

use super::child::{become_user, exec_argv, limit_caps, pre_exec};
use super::mount::{bind, ctx, mkdirs, open_path, touch, write_etc};
use super::process::write_all_fd;
use super::runtime::{Plan, with_home};
use super::syscall::{FileKind, Stdio, Syscall};
use crate::{OUTPUT_DIR, SENSOR_PATH};

/// PID 1 of the container: builds the root, then waits for the go signal and execs.
pub(super) fn init_main(
    sys: &dyn Syscall,
    plan: &Plan,
    err_w: &OwnedFd,
    go_r: &OwnedFd,
    out_w: &OwnedFd,
    serr_w: &OwnedFd,
) -> Result<Infallible, String> {
    let _ = sys.set_pdeathsig(Signal::SIGKILL);
    build_root(sys, plan)?;
    let devnull = sys
        .open_read("/dev/null")
        .map_err(ctx(|| "open /dev/null".into()))?;
    sys.dup2_stdio(devnull.as_fd(), Stdio::In)
        .map_err(ctx(|| "dup2 stdin".into()))?;
    sys.dup2_stdio(out_w.as_fd(), Stdio::Out)
        .map_err(ctx(|| "dup2 stdout".into()))?;
    sys.dup2_stdio(serr_w.as_fd(), Stdio::Err)
        .map_err(ctx(|| "dup2 stderr".into()))?;
    let env = match &plan.user {
        Some(user) => {
            let home = become_user(sys, user, &plan.workdir)?;
            with_home(&plan.env, &home)
        }
        None => plan.env.clone(),
    };
    pre_exec(sys);
    // Ready; wait for the caller to open our namespaces, then exec.
    write_all_fd(err_w, b"R");
    let mut go = [0u8; 1];
    loop {
        match nix::unistd::read(go_r, &mut go) {
            Ok(1) => break,
            Err(Errno::EINTR) => {}
            _ => sys.exit(125),
        }
    }
    exec_argv(sys, &plan.argv, &env)
}

/// The container's root, in this order: `/` rprivate, a tmpfs over the temp dir, the overlay
/// on `<tmp>/root`, host fds opened (/dev nodes, sensor, output dir), `pivot_root` with the
/// old root kept under a random name, /proc, /dev (tmpfs, bound nodes, pts, shm, links),
/// /sys, /tmp, the sensor binds, the old root detached, /etc files, hostname, `lo` up, and
/// the capability bounding set limited.
fn build_root(sys: &dyn Syscall, plan: &Plan) -> Result<(), String> {
    sys.mount(None, "/", None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)
        .map_err(ctx(|| "make / rprivate".into()))?;
    let tmp = plan.tmp.to_str().ok_or("temp path is not UTF-8")?;
    sys.mount(
        Some("tmpfs"),
        tmp,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(c"mode=0700"),
    )
    .map_err(ctx(|| format!("mount tmpfs on {tmp}")))?;
    let root = format!("{tmp}/root");
    for d in ["upper", "work", "root"] {
        sys.mkdir(&format!("{tmp}/{d}"), 0o755)
            .map_err(ctx(|| format!("mkdir {tmp}/{d}")))?;
    }
    sys.mount(
        Some("overlay"),
        root.as_str(),
        Some("overlay"),
        MsFlags::empty(),
        Some(plan.overlay_opts.as_c_str()),
    )
    .map_err(ctx(|| {
        format!("mount overlay ({})", plan.overlay_opts.to_string_lossy())
    }))?;

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
        .map_err(ctx(|| format!("chdir {root}")))?;
    let oldroot = format!("/{}", plan.oldroot);
    sys.mkdir(&plan.oldroot, 0o700)
        .map_err(ctx(|| format!("mkdir {oldroot}")))?;
    sys.pivot_root(".", &plan.oldroot)
        .map_err(ctx(|| "pivot_root".into()))?;
    sys.chdir("/").map_err(ctx(|| "chdir /".into()))?;

    let nsd = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mkdirs(sys, "/proc")?;
    sys.mount(Some("proc"), "/proc", Some("proc"), nsd, None)
        .map_err(ctx(|| "mount /proc".into()))?;
    mkdirs(sys, "/dev")?;
    sys.mount(
        Some("tmpfs"),
        "/dev",
        Some("tmpfs"),
        MsFlags::MS_NOSUID,
        Some(c"mode=0755,size=65536k"),
    )
    .map_err(ctx(|| "mount /dev".into()))?;
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
    .map_err(ctx(|| "mount /dev/pts".into()))?;
    mkdirs(sys, "/dev/shm")?;
    sys.mount(
        Some("shm"),
        "/dev/shm",
        Some("tmpfs"),
        nsd,
        Some(c"mode=1777,size=65536k"),
    )
    .map_err(ctx(|| "mount /dev/shm".into()))?;
    for (link, target) in [
        ("/dev/ptmx", "pts/ptmx"),
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        sys.symlink(target, link)
            .map_err(ctx(|| format!("symlink {link}")))?;
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
        .map_err(ctx(|| "mount /tmp".into()))?;
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
        .map_err(ctx(|| "detach old root".into()))?;
    sys.remove_dir(&oldroot)
        .map_err(ctx(|| format!("rmdir {oldroot}")))?;
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
        .map_err(ctx(|| "sethostname".into()))?;
    sys.loopback_up()
        .map_err(|(what, e)| format!("{what}: {e}"))?;
    limit_caps(sys, &plan.caps)?;

    Ok(())
}
