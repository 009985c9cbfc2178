//! Reading the tracee: its memory (strings, argv, socket addresses) and its view of paths
//! (cwd, dirfds, fds through `/proc/PID`), and decoding a syscall's arguments at entry into the
//! path access to record. Also what an exec will load besides its file: the `#!` interpreter
//! and the ELF program interpreter.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn is_rename(nr: u64) -> bool {
    #[cfg(target_arch = "x86_64")]
    if nr == libc::SYS_rename as u64 {
        return true;
    }
    nr == syscalls::SYS_RENAMEAT as u64
}

pub(super) fn proc_exe(pid: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| lossy(p.as_os_str().as_bytes()))
        .unwrap_or_default()
}

/// Reads `len` bytes of the tracee's memory at `addr`.
pub(super) fn read_mem(pid: i32, addr: u64, len: usize) -> Option<Vec<u8>> {
    if addr == 0 || len == 0 {
        return None;
    }
    let mut buf = vec![0u8; len];
    let remote = [RemoteIoVec {
        base: addr as usize,
        len,
    }];
    let n = {
        let mut local = [std::io::IoSliceMut::new(&mut buf)];
        process_vm_readv(Pid::from_raw(pid), &mut local, &remote).ok()
    };
    match n {
        Some(n) if n > 0 => {
            buf.truncate(n);
            Some(buf)
        }
        _ => {
            // Fallback for kernels without process_vm_readv permission: /proc/PID/mem.
            use std::os::unix::fs::FileExt;
            let f = std::fs::File::open(format!("/proc/{pid}/mem")).ok()?;
            let n = f.read_at(&mut buf, addr).ok()?;
            buf.truncate(n);
            (n > 0).then_some(buf)
        }
    }
}

/// Reads a NUL-terminated string, page by page so that no read crosses into an unmapped page.
pub(super) fn read_cstr(pid: i32, addr: u64) -> Option<Vec<u8>> {
    if addr == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < MAX_PATH {
        let to_page_end = 4096 - (at % 4096) as usize;
        let chunk = read_mem(pid, at, to_page_end.min(MAX_PATH - out.len()))?;
        if let Some(z) = chunk.iter().position(|b| *b == 0) {
            out.extend_from_slice(&chunk[..z]);
            return Some(out);
        }
        at += chunk.len() as u64;
        out.extend_from_slice(&chunk);
    }
    Some(out)
}

pub(super) fn read_u64(pid: i32, addr: u64) -> Option<u64> {
    let b = read_mem(pid, addr, 8)?;
    Some(u64::from_ne_bytes(b.get(..8)?.try_into().ok()?))
}

pub(super) fn read_argv(pid: i32, addr: u64) -> Vec<String> {
    let mut argv = Vec::new();
    for i in 0..MAX_ARGS as u64 {
        match read_u64(pid, addr.wrapping_add(i * 8)) {
            Some(0) | None => break,
            Some(p) => argv.push(read_cstr(pid, p).map(|s| lossy(&s)).unwrap_or_default()),
        }
    }
    argv
}

pub(super) fn readlink_bytes(path: &str) -> Option<Vec<u8>> {
    std::fs::read_link(path)
        .ok()
        .map(|p| p.as_os_str().as_bytes().to_vec())
}

/// Resolves `path` (read from the tracee) against `dirfd` like the kernel would, using
/// `/proc/PID/cwd` and `/proc/PID/fd/N`. Returns None for fds that are not on a path
/// (pipes, sockets, anonymous inodes).
pub(super) fn resolve(pid: i32, dirfd: i64, path: &[u8]) -> Option<Vec<u8>> {
    if path.first() == Some(&b'/') {
        return Some(join_normalize(b"/", path));
    }
    let base = if dirfd as i32 == libc::AT_FDCWD {
        readlink_bytes(&format!("/proc/{pid}/cwd"))?
    } else {
        readlink_bytes(&format!("/proc/{pid}/fd/{}", dirfd as i32))?
    };
    if base.first() != Some(&b'/') || base.ends_with(b" (deleted)") {
        return None;
    }
    Some(join_normalize(&base, path))
}

/// Path argument `path_arg` relative to the cwd.
pub(super) fn cwd_path(pid: i32, args: &[u64; 6], path_arg: usize) -> Option<Vec<u8>> {
    let raw = read_cstr(pid, args[path_arg])?;
    if raw.is_empty() {
        return None;
    }
    resolve(pid, libc::AT_FDCWD as i64, &raw)
}

/// Path argument relative to the dirfd in `fd_arg`. With `empty_ok` (AT_EMPTY_PATH) an empty
/// path names the dirfd itself; such calls are fstat-like and not recorded.
pub(super) fn at_path(
    pid: i32,
    args: &[u64; 6],
    fd_arg: usize,
    path_arg: usize,
) -> Option<Vec<u8>> {
    let raw = read_cstr(pid, args[path_arg])?;
    if raw.is_empty() {
        return None;
    }
    resolve(pid, args[fd_arg] as i64, &raw)
}

pub(super) fn fd_path(pid: i32, fd: u64) -> Option<Vec<u8>> {
    let p = readlink_bytes(&format!("/proc/{pid}/fd/{}", fd as i32))?;
    (p.first() == Some(&b'/') && !p.ends_with(b" (deleted)")).then_some(p)
}

pub(super) fn exists(path: &[u8]) -> bool {
    std::fs::symlink_metadata(OsStr::from_bytes(path)).is_ok()
}

/// What a path is at a call's entry, as the app would find it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AtEntry {
    /// ENOENT, or ENOTDIR for a file met as a directory.
    Absent,
    Symlink,
    /// Present and not a symlink.
    Other,
}

/// What `path` is now (`lstat`), or `None` when that cannot be judged: another error, or a
/// `/proc` or `/dev` path, which in the sensor can name its own process and descriptors
/// (`/proc/self`, `/dev/fd`).
pub(super) fn at_entry(path: &[u8]) -> Option<AtEntry> {
    if path.starts_with(b"/proc/") || path.starts_with(b"/dev/") {
        return None;
    }
    match std::fs::symlink_metadata(OsStr::from_bytes(path)) {
        Ok(m) if m.file_type().is_symlink() => Some(AtEntry::Symlink),
        Ok(_) => Some(AtEntry::Other),
        Err(e) => matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR))
            .then_some(AtEntry::Absent),
    }
}

/// The error a decoded call is bound to fail with, judged at its entry, so that it can be
/// recorded without waiting for its exit stop: ENOENT when it creates and executes nothing and
/// each of its paths is absent; EINVAL for a readlink of a path that is there but no symlink.
pub(super) fn bound_to_fail(p: &Pending) -> Option<i32> {
    if p.exec.is_some() || p.paths.is_empty() {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    let readlink = p.nr == libc::SYS_readlink as u64 || p.nr == libc::SYS_readlinkat as u64;
    #[cfg(not(target_arch = "x86_64"))]
    let readlink = p.nr == libc::SYS_readlinkat as u64;
    if let (true, [a]) = (readlink, p.paths.as_slice()) {
        return match at_entry(&a.path)? {
            AtEntry::Absent => Some(libc::ENOENT),
            AtEntry::Other => Some(libc::EINVAL),
            AtEntry::Symlink => None,
        };
    }
    p.paths
        .iter()
        .all(|a| {
            a.on_success.is_none()
                && a.existed.is_none()
                && at_entry(&a.path) == Some(AtEntry::Absent)
        })
        .then_some(libc::ENOENT)
}

pub(super) fn open_arg(path: Option<Vec<u8>>, flags: u64) -> Option<PathArg> {
    let path = path?;
    let flags = flags as i32;
    let mut a = PathArg::new(path, AccessKind::Open, flags & libc::O_NOFOLLOW == 0);
    if flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0 {
        a.kinds.push(AccessKind::Write);
    }
    if flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE {
        if flags & libc::O_EXCL != 0 {
            a.follow = false;
        }
        if flags & libc::O_TMPFILE != libc::O_TMPFILE {
            a.existed = Some(exists(&a.path));
            a.on_success = Some(AccessKind::Create);
        }
    }
    Some(a)
}

/// The sockaddr_un path of a bind/connect, if it is a filesystem (not abstract) socket.
pub(super) fn unix_sock_path(pid: i32, addr: u64, len: u64) -> Option<Vec<u8>> {
    let len = (len as usize).min(std::mem::size_of::<libc::sockaddr_un>());
    if len <= 2 {
        return None;
    }
    let b = read_mem(pid, addr, len)?;
    let family = u16::from_ne_bytes([*b.first()?, *b.get(1)?]);
    if family != libc::AF_UNIX as u16 {
        return None;
    }
    let sun = b.get(2..)?;
    if sun.first() == Some(&0) || sun.is_empty() {
        return None; // abstract or unnamed
    }
    let end = sun.iter().position(|c| *c == 0).unwrap_or(sun.len());
    resolve(pid, libc::AT_FDCWD as i64, &sun[..end])
}

/// Decodes the path arguments of a file syscall at entry. None for other syscalls.
pub(super) fn decode(pid: i32, nr: u64, a: &[u64; 6]) -> Option<Pending> {
    use AccessKind::*;
    let nr_i = nr as libc::c_long;
    let mut paths: Vec<PathArg> = Vec::new();
    let mut exec = None;
    let mut push = |p: Option<PathArg>| {
        if let Some(p) = p {
            paths.push(p);
        }
    };
    let nofollow = |flags: u64| flags as i32 & libc::AT_SYMLINK_NOFOLLOW == 0;
    match nr_i {
        #[cfg(target_arch = "x86_64")]
        libc::SYS_open => push(open_arg(cwd_path(pid, a, 0), a[1])),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_creat => push(open_arg(
            cwd_path(pid, a, 0),
            (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64,
        )),
        libc::SYS_openat => push(open_arg(at_path(pid, a, 0, 1), a[2])),
        libc::SYS_openat2 => {
            let flags = read_u64(pid, a[2]).unwrap_or(0);
            push(open_arg(at_path(pid, a, 0, 1), flags));
        }
        #[cfg(target_arch = "x86_64")]
        libc::SYS_stat | libc::SYS_access => {
            push(cwd_path(pid, a, 0).map(|p| PathArg::new(p, Stat, true)))
        }
        #[cfg(target_arch = "x86_64")]
        libc::SYS_lstat => push(cwd_path(pid, a, 0).map(|p| PathArg::new(p, Stat, false))),
        libc::SYS_newfstatat => {
            push(at_path(pid, a, 0, 1).map(|p| PathArg::new(p, Stat, nofollow(a[3]))))
        }
        libc::SYS_statx => {
            push(at_path(pid, a, 0, 1).map(|p| PathArg::new(p, Stat, nofollow(a[2]))))
        }
        libc::SYS_faccessat => push(at_path(pid, a, 0, 1).map(|p| PathArg::new(p, Stat, true))),
        libc::SYS_faccessat2 => {
            push(at_path(pid, a, 0, 1).map(|p| PathArg::new(p, Stat, nofollow(a[3]))))
        }
        libc::SYS_statfs => push(cwd_path(pid, a, 0).map(|p| PathArg::new(p, Stat, true))),
        libc::SYS_getxattr | libc::SYS_listxattr => {
            push(cwd_path(pid, a, 0).map(|p| PathArg::new(p, Stat, true)))
        }
        libc::SYS_lgetxattr | libc::SYS_llistxattr => {
            push(cwd_path(pid, a, 0).map(|p| PathArg::new(p, Stat, false)))
        }
        libc::SYS_setxattr | libc::SYS_removexattr => {
            push(cwd_path(pid, a, 0).map(|p| PathArg::new(p, Modify, true)))
        }
        libc::SYS_lsetxattr | libc::SYS_lremovexattr => {
            push(cwd_path(pid, a, 0).map(|p| PathArg::new(p, Modify, false)))
        }
        #[cfg(target_arch = "x86_64")]
        libc::SYS_readlink => push(cwd_path(pid, a, 0).map(|p| PathArg::new(p, Readlink, false))),
        libc::SYS_readlinkat => {
            push(at_path(pid, a, 0, 1).map(|p| PathArg::new(p, Readlink, false)))
        }
        libc::SYS_execve => {
            if let Some(p) = cwd_path(pid, a, 0) {
                exec = Some((p, read_argv(pid, a[1])));
            }
        }
        libc::SYS_execveat => {
            let p = at_path(pid, a, 0, 1).or_else(|| fd_path(pid, a[0]));
            if let Some(p) = p {
                exec = Some((p, read_argv(pid, a[2])));
            }
        }
        libc::SYS_chdir | libc::SYS_chroot => {
            push(cwd_path(pid, a, 0).map(|p| PathArg::new(p, Chdir, true)))
        }
        libc::SYS_fchdir => push(fd_path(pid, a[0]).map(|p| PathArg::new(p, Chdir, true))),
        // Directory listings: the directory keeps kind Open, and `getdents64` among its syscalls
        // tells that the app read its entries (plugin and conf.d directories).
        libc::SYS_getdents64 => push(fd_path(pid, a[0]).map(|p| PathArg::new(p, Open, false))),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_getdents => push(fd_path(pid, a[0]).map(|p| PathArg::new(p, Open, false))),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_mkdir | libc::SYS_mknod => {
            push(cwd_path(pid, a, 0).map(|p| PathArg::new(p, Create, false)))
        }
        libc::SYS_mkdirat | libc::SYS_mknodat => {
            push(at_path(pid, a, 0, 1).map(|p| PathArg::new(p, Create, false)))
        }
        #[cfg(target_arch = "x86_64")]
        libc::SYS_rename => {
            push(cwd_path(pid, a, 0).map(|p| PathArg::new(p, Delete, false)));
            push(cwd_path(pid, a, 1).map(|p| PathArg::new(p, Create, false)));
        }
        syscalls::SYS_RENAMEAT | libc::SYS_renameat2 => {
            push(at_path(pid, a, 0, 1).map(|p| PathArg::new(p, Delete, false)));
            push(at_path(pid, a, 2, 3).map(|p| PathArg::new(p, Create, false)));
        }
        #[cfg(target_arch = "x86_64")]
        libc::SYS_unlink | libc::SYS_rmdir => {
            push(cwd_path(pid, a, 0).map(|p| PathArg::new(p, Delete, false)))
        }
        libc::SYS_unlinkat => push(at_path(pid, a, 0, 1).map(|p| PathArg::new(p, Delete, false))),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_link => {
            push(cwd_path(pid, a, 0).map(|p| PathArg::new(p, Stat, false)));
            push(cwd_path(pid, a, 1).map(|p| PathArg::new(p, Create, false)));
        }
        libc::SYS_linkat => {
            let follow = a[4] as i32 & libc::AT_SYMLINK_FOLLOW != 0;
            push(at_path(pid, a, 0, 1).map(|p| PathArg::new(p, Stat, follow)));
            push(at_path(pid, a, 2, 3).map(|p| PathArg::new(p, Create, false)));
        }
        #[cfg(target_arch = "x86_64")]
        libc::SYS_symlink => {
            let text = read_cstr(pid, a[0]);
            push(cwd_path(pid, a, 1).map(|p| PathArg {
                link_text: text,
                ..PathArg::new(p, Create, false)
            }));
        }
        libc::SYS_symlinkat => {
            let text = read_cstr(pid, a[0]);
            push(at_path(pid, a, 1, 2).map(|p| PathArg {
                link_text: text,
                ..PathArg::new(p, Create, false)
            }));
        }
        libc::SYS_truncate => push(cwd_path(pid, a, 0).map(|p| PathArg::new(p, Modify, true))),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_chmod | libc::SYS_chown | libc::SYS_utime | libc::SYS_utimes => {
            push(cwd_path(pid, a, 0).map(|p| PathArg::new(p, Modify, true)))
        }
        #[cfg(target_arch = "x86_64")]
        libc::SYS_lchown => push(cwd_path(pid, a, 0).map(|p| PathArg::new(p, Modify, false))),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_futimesat => push(at_path(pid, a, 0, 1).map(|p| PathArg::new(p, Modify, true))),
        libc::SYS_fchmodat => push(at_path(pid, a, 0, 1).map(|p| PathArg::new(p, Modify, true))),
        syscalls::SYS_FCHMODAT2 => {
            push(at_path(pid, a, 0, 1).map(|p| PathArg::new(p, Modify, nofollow(a[3]))))
        }
        libc::SYS_fchownat => {
            push(at_path(pid, a, 0, 1).map(|p| PathArg::new(p, Modify, nofollow(a[4]))))
        }
        // utimensat(fd, NULL, ...) is futimens: not a path.
        libc::SYS_utimensat => {
            push(at_path(pid, a, 0, 1).map(|p| PathArg::new(p, Modify, nofollow(a[3]))))
        }
        libc::SYS_inotify_add_watch => {
            push(cwd_path(pid, a, 1).map(|p| PathArg::new(p, Watch, true)))
        }
        libc::SYS_bind => {
            push(unix_sock_path(pid, a[1], a[2]).map(|p| PathArg::new(p, Socket, false).creates()))
        }
        libc::SYS_connect => {
            push(unix_sock_path(pid, a[1], a[2]).map(|p| PathArg::new(p, Socket, true)))
        }
        _ => return None,
    }
    if paths.is_empty() && exec.is_none() {
        return None;
    }
    // mkdir/mknod/rename target/link/symlink: Create only when the call succeeds.
    for p in &mut paths {
        if p.kinds == [Create] {
            p.kinds.clear();
            p.on_success = Some(Create);
        }
    }
    Some(Pending { nr, paths, exec })
}

/// The interpreter line of a script (`#!/bin/sh -e` → `/bin/sh`), resolved if absolute.
pub(super) fn shebang(path: &[u8]) -> Option<Vec<u8>> {
    let mut f = std::fs::File::open(OsStr::from_bytes(path)).ok()?;
    let mut buf = [0u8; 256];
    let n = f.read(&mut buf).ok()?;
    let line = buf.get(..n)?.strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|c| *c == b'\n').unwrap_or(line.len())];
    let interp = line
        .split(|c| *c == b' ' || *c == b'\t')
        .find(|s| !s.is_empty())?;
    (interp.first() == Some(&b'/')).then(|| join_normalize(b"/", interp))
}

/// PT_INTERP of a 64-bit ELF executable (the dynamic loader the kernel maps).
pub(super) fn elf_interp(path: &[u8]) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(OsStr::from_bytes(path)).ok()?;
    let mut eh = [0u8; 64];
    f.read_exact_at(&mut eh, 0).ok()?;
    if &eh[..4] != b"\x7fELF" || eh[4] != 2 || eh[5] != 1 {
        return None; // not ELF64 little-endian
    }
    let u16_at = |b: &[u8], o: usize| -> Option<u16> {
        Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?))
    };
    let u32_at = |b: &[u8], o: usize| -> Option<u32> {
        Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
    };
    let u64_at = |b: &[u8], o: usize| -> Option<u64> {
        Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?))
    };
    let phoff = u64_at(&eh, 32)?;
    let phentsize = u16_at(&eh, 54)? as u64;
    let phnum = u16_at(&eh, 56)?.min(256) as u64;
    if phentsize < 56 {
        return None;
    }
    for i in 0..phnum {
        let mut ph = [0u8; 56];
        f.read_exact_at(&mut ph, phoff.checked_add(i * phentsize)?)
            .ok()?;
        if u32_at(&ph, 0)? == 3 {
            let off = u64_at(&ph, 8)?;
            let size = u64_at(&ph, 32)?.min(4096) as usize;
            let mut s = vec![0u8; size];
            f.read_exact_at(&mut s, off).ok()?;
            let end = s.iter().position(|c| *c == 0).unwrap_or(s.len());
            s.truncate(end);
            return (s.first() == Some(&b'/')).then(|| join_normalize(b"/", &s));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interp_of_own_binary_or_none() {
        // The test binary is dynamically linked (tests are not built static).
        let me = std::env::current_exe().unwrap();
        let interp = elf_interp(me.as_os_str().as_bytes());
        if let Some(i) = interp {
            assert!(i.starts_with(b"/"), "{}", lossy(&i));
        }
        assert_eq!(elf_interp(b"/etc/hostname-does-not-exist"), None);
    }

    #[test]
    fn shebang_parsing() {
        let d = tempfile::tempdir().unwrap();
        let s = d.path().join("s");
        std::fs::write(&s, b"#! /usr/bin/env  python3\nprint(1)\n").unwrap();
        assert_eq!(
            shebang(s.as_os_str().as_bytes()).as_deref(),
            Some(&b"/usr/bin/env"[..])
        );
        std::fs::write(&s, b"echo hi\n").unwrap();
        assert_eq!(shebang(s.as_os_str().as_bytes()), None);
    }
}
