//! PID 1 of the container: builds the root (mounts, pivot_root), then execs.

use std::convert::Infallible;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::signal::Signal;

use super::child::{
    become_user, child_exit, cloexec_all, docker_umask, exec_argv, limit_caps, reset_signals,
};
use super::mount::{bind, ctx, mkdirs, open_path, touch, write_etc};
use super::process::write_all_fd;
use super::runtime::{Plan, with_home};
use crate::{OUTPUT_DIR, SENSOR_PATH};

pub(super) fn loopback_up() -> Result<(), String> {
    // SAFETY: socket() with constant arguments; returns an fd or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(format!("socket: {}", Errno::last()));
    }
    // SAFETY: the fd was just created and is owned only here.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is a plain C struct/union for which all-zero bytes is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the interface name and writes ifru_flags in our ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) } < 0 {
        return Err(format!("SIOCGIFFLAGS lo: {}", Errno::last()));
    }
    // SAFETY: ifru_flags is the union member SIOCGIFFLAGS just filled in.
    unsafe { ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads our ifreq (name + flags).
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) } < 0 {
        return Err(format!("SIOCSIFFLAGS lo up: {}", Errno::last()));
    }
    Ok(())
}

/// PID 1 of the container: builds the root, then waits for the go signal and execs.
pub(super) fn init_main(
    plan: &Plan,
    err_w: &OwnedFd,
    go_r: &OwnedFd,
    out_w: &OwnedFd,
    serr_w: &OwnedFd,
) -> Result<Infallible, String> {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    let none = None::<&str>;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .map_err(ctx(|| "make / rprivate".into()))?;
    let tmp = plan.tmp.to_str().ok_or("temp path is not UTF-8")?;
    mount(
        Some("tmpfs"),
        tmp,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0700"),
    )
    .map_err(ctx(|| format!("mount tmpfs on {tmp}")))?;
    let root = format!("{tmp}/root");
    for d in ["upper", "work", "root"] {
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(format!("{tmp}/{d}"))
            .map_err(ctx(|| format!("mkdir {tmp}/{d}")))?;
    }
    mount(
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
        dev_fds.push((d, open_path(Path::new(&format!("/dev/{d}")))?));
    }
    let sensor_fds = match &plan.sensor {
        Some((bin, out)) => Some((open_path(bin)?, open_path(out)?)),
        None => None,
    };

    // The old root stays attached under a random name until the binds are done: bind mounts
    // need their source mount in this namespace.
    nix::unistd::chdir(root.as_str()).map_err(ctx(|| format!("chdir {root}")))?;
    let oldroot = format!("/{}", plan.oldroot);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&plan.oldroot)
        .map_err(ctx(|| format!("mkdir {oldroot}")))?;
    nix::unistd::pivot_root(".", plan.oldroot.as_str()).map_err(ctx(|| "pivot_root".into()))?;
    nix::unistd::chdir("/").map_err(ctx(|| "chdir /".into()))?;

    let nsd = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mkdirs("/proc")?;
    mount(Some("proc"), "/proc", Some("proc"), nsd, none).map_err(ctx(|| "mount /proc".into()))?;
    mkdirs("/dev")?;
    mount(
        Some("tmpfs"),
        "/dev",
        Some("tmpfs"),
        MsFlags::MS_NOSUID,
        Some("mode=0755,size=65536k"),
    )
    .map_err(ctx(|| "mount /dev".into()))?;
    for (d, fd) in &dev_fds {
        let t = format!("/dev/{d}");
        touch(&t)?;
        bind(fd, &t, false)?;
    }
    mkdirs("/dev/pts")?;
    mount(
        Some("devpts"),
        "/dev/pts",
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .map_err(ctx(|| "mount /dev/pts".into()))?;
    mkdirs("/dev/shm")?;
    mount(
        Some("shm"),
        "/dev/shm",
        Some("tmpfs"),
        nsd,
        Some("mode=1777,size=65536k"),
    )
    .map_err(ctx(|| "mount /dev/shm".into()))?;
    for (link, target) in [
        ("/dev/ptmx", "pts/ptmx"),
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, link).map_err(ctx(|| format!("symlink {link}")))?;
    }
    // /sys read-only when the kernel allows it in this net ns; not essential.
    if mkdirs("/sys").is_ok() {
        let _ = mount(
            Some("sysfs"),
            "/sys",
            Some("sysfs"),
            nsd | MsFlags::MS_RDONLY,
            none,
        );
    }
    // /tmp: a tmpfs unless the image ships files there (Docker would show them).
    let tmp_empty = std::fs::read_dir("/tmp").map_or(true, |mut d| d.next().is_none());
    if tmp_empty && std::fs::symlink_metadata("/tmp").map_or(true, |m| m.is_dir()) {
        mkdirs("/tmp")?;
        mount(
            Some("tmpfs"),
            "/tmp",
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=1777"),
        )
        .map_err(ctx(|| "mount /tmp".into()))?;
    }
    if let Some((bin, out)) = &sensor_fds {
        mkdirs(OUTPUT_DIR)?;
        touch(SENSOR_PATH)?;
        bind(bin, SENSOR_PATH, true)?;
        bind(out, OUTPUT_DIR, false)?;
    }
    drop(sensor_fds);
    drop(dev_fds);
    umount2(oldroot.as_str(), MntFlags::MNT_DETACH).map_err(ctx(|| "detach old root".into()))?;
    std::fs::remove_dir(&oldroot).map_err(ctx(|| format!("rmdir {oldroot}")))?;
    mkdirs("/etc")?;
    write_etc("/etc/hostname", &format!("{}\n", plan.hostname))?;
    // Docker's /etc/hosts, with the hostname on loopback (the sandbox has no other address).
    write_etc(
        "/etc/hosts",
        &format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.0.1\t{}\n",
            plan.hostname
        ),
    )?;
    write_etc(
        "/etc/resolv.conf",
        "# pare embedded runtime: the sandbox has no network beyond loopback\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
    )?;
    nix::unistd::sethostname(&plan.hostname).map_err(ctx(|| "sethostname".into()))?;
    loopback_up()?;
    limit_caps(&plan.caps)?;

    let devnull = std::fs::File::open("/dev/null").map_err(ctx(|| "open /dev/null".into()))?;
    nix::unistd::dup2_stdin(&devnull).map_err(ctx(|| "dup2 stdin".into()))?;
    nix::unistd::dup2_stdout(out_w).map_err(ctx(|| "dup2 stdout".into()))?;
    nix::unistd::dup2_stderr(serr_w).map_err(ctx(|| "dup2 stderr".into()))?;
    let env = match &plan.user {
        Some(user) => {
            let home = become_user(user, &plan.workdir)?;
            with_home(&plan.env, &home)
        }
        None => plan.env.clone(),
    };
    reset_signals();
    docker_umask();
    cloexec_all();
    // Ready; wait for the caller to open our namespaces, then exec.
    write_all_fd(err_w, b"R");
    let mut go = [0u8; 1];
    loop {
        match nix::unistd::read(go_r, &mut go) {
            Ok(1) => break,
            Err(Errno::EINTR) => {}
            _ => child_exit(125),
        }
    }
    exec_argv(&plan.argv, &env)
}
