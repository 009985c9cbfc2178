//! Selection tests: on the debootstrap rootfs (`PARE_BOOKWORM_ROOTFS`, default
//! /var/cache/pare/bookworm, read-only) and on small synthetic trees.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use pare_select::{ImageFacts, Reason, SelectInputs, Selection, select};
use pare_trace::{AccessKind, FileRecord};

fn bookworm() -> Option<PathBuf> {
    let p = PathBuf::from(
        std::env::var("PARE_BOOKWORM_ROOTFS").unwrap_or_else(|_| "/var/cache/pare/bookworm".into()),
    );
    if p.join("usr/bin/bash").exists() {
        Some(p)
    } else {
        eprintln!("SKIP: no bookworm rootfs at {}", p.display());
        None
    }
}

fn has_cc() -> bool {
    let ok = Command::new("cc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIP: no cc");
    }
    ok
}

fn traced(paths: &[&str]) -> pare_select::TracedFiles {
    paths
        .iter()
        .map(|p| {
            let mut r = FileRecord {
                found: true,
                ..Default::default()
            };
            r.kinds.insert(AccessKind::Open);
            r.processes.insert("/usr/bin/app".into());
            r.syscalls.insert("openat".into());
            (p.to_string(), r)
        })
        .collect()
}

/// The selection of `root` with only `bin` asked for (`--include-bin`).
fn select_bin(root: &Path, bin: &str) -> Selection {
    let inputs = SelectInputs {
        include_bins: vec![bin.into()],
        ..Default::default()
    };
    select(root, &inputs).unwrap()
}

fn has(sel: &Selection, p: &str) -> bool {
    sel.entries.contains_key(p)
}

fn write(root: &Path, p: &str, content: &[u8]) {
    let host = root.join(p.trim_start_matches('/'));
    fs::create_dir_all(host.parent().unwrap()).unwrap();
    fs::write(host, content).unwrap();
}

fn link(root: &Path, p: &str, target: &str) {
    let host = root.join(p.trim_start_matches('/'));
    fs::create_dir_all(host.parent().unwrap()).unwrap();
    symlink(target, host).unwrap();
}

/// A synthetic root filesystem in a temp dir (removed on drop), built up entry by entry.
struct Root(tempfile::TempDir);

impl Root {
    fn new() -> Self {
        Root(tempfile::tempdir().unwrap())
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// Writes file `p` (an image path), creating its directories.
    fn file(&self, p: &str, content: &[u8]) -> &Self {
        write(self.path(), p, content);
        self
    }

    /// Writes file `p` with mode `mode`.
    fn file_mode(&self, p: &str, content: &[u8], mode: u32) -> &Self {
        self.file(p, content);
        let host = self.path().join(p.trim_start_matches('/'));
        fs::set_permissions(host, fs::Permissions::from_mode(mode)).unwrap();
        self
    }

    /// Makes `p` a symlink to `target`, creating its directories.
    fn link(&self, p: &str, target: &str) -> &Self {
        link(self.path(), p, target);
        self
    }

    /// Creates directories (image paths).
    fn dirs(&self, ps: &[&str]) -> &Self {
        for p in ps {
            fs::create_dir_all(self.path().join(p.trim_start_matches('/'))).unwrap();
        }
        self
    }

    /// Copies the files `ps` (image paths) of another root to the same paths here.
    fn copy_from(&self, from: &Path, ps: &[&str]) -> &Self {
        for p in ps {
            let rel = p.trim_start_matches('/');
            fs::create_dir_all(self.path().join(rel).parent().unwrap()).unwrap();
            fs::copy(from.join(rel), self.path().join(rel)).unwrap();
        }
        self
    }

    /// Compiles `/usr/lib/x86_64-linux-gnu/libssl.so.3` (a stand-in TLS library) and
    /// `/usr/bin/tls-client` linked against it; their sources stay in `/src` (`ssl.c`,
    /// `main.c`). Needs `cc` ([`has_cc`]).
    fn tls_client(&self) -> &Self {
        let root = self.path();
        self.file("/src/ssl.c", b"int ssl(void){return 0;}");
        self.file(
            "/src/main.c",
            b"int ssl(void); int main(void){return ssl();}",
        );
        self.dirs(&["/usr/lib/x86_64-linux-gnu", "/usr/bin"]);
        let src = root.join("src");
        let libdir = root.join("usr/lib/x86_64-linux-gnu");
        cc(&[
            "-shared",
            "-fPIC",
            "-o",
            &libdir.join("libssl.so.3").display().to_string(),
            &src.join("ssl.c").display().to_string(),
            "-Wl,-soname,libssl.so.3",
        ]);
        cc(&[
            "-o",
            &root.join("usr/bin/tls-client").display().to_string(),
            &src.join("main.c").display().to_string(),
            &format!("-L{}", libdir.display()),
            "-l:libssl.so.3",
        ]);
        self
    }
}

/// Copies the selected entries of `rootfs` into `dest` (files, dirs, symlinks).
fn materialize(rootfs: &Path, sel: &Selection, dest: &Path) {
    for path in sel.entries.keys() {
        let src = rootfs.join(path.rel());
        let dst = dest.join(path.rel());
        let md = fs::symlink_metadata(&src).unwrap();
        if md.is_dir() {
            fs::create_dir_all(&dst).unwrap();
        } else {
            fs::create_dir_all(dst.parent().unwrap()).unwrap();
            if md.file_type().is_symlink() {
                symlink(fs::read_link(&src).unwrap(), &dst).unwrap();
            } else {
                fs::copy(&src, &dst).unwrap();
            }
        }
    }
}

/// Runs `argv` from a materialized tree through its own dynamic loader, so that only the
/// selected libraries can be found (no chroot, no root needed).
fn run_in(dest: &Path, exe: &str, args: &[&str]) -> std::process::Output {
    let lib = dest.join("usr/lib/x86_64-linux-gnu");
    Command::new(lib.join("ld-linux-x86-64.so.2"))
        .arg("--inhibit-cache")
        .arg("--library-path")
        .arg(&lib)
        .arg(dest.join(exe.trim_start_matches('/')))
        .args(args)
        .env_clear()
        .output()
        .unwrap()
}
/// Runs the C compiler; panics with its stderr when it fails.
fn cc(args: &[&str]) {
    let out = Command::new("cc").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "cc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

mod config;
mod elf;
mod files;
