//! `pare pack`: an image from a prebuilt binary and nothing else it does not need.
//!
//! The closure comes from pare-select ([`pare_select::select`] with the binary as an
//! `--include-bin`), run on the host's root or on a `--from` image extracted to a temp dir:
//! ELF `DT_NEEDED` and `PT_INTERP` found as `ld.so` would, symlink chains, NSS modules and
//! `nsswitch.conf` when glibc is linked, CA certificates when a TLS library is linked
//! (libssl, libcrypto, libgnutls, libnss3, mbedtls, wolfssl, Go's `crypto/tls`). pare pack
//! adds one heuristic of its own for statically linked Rust: a binary whose bytes name
//! `rustls` and `rustls-native-certs` (or `openssl-probe`, which it uses to find the system
//! roots) gets `/etc/ssl/certs/ca-certificates.crt` (see docs/pack.md).
//!
//! The image: the closure's files (not the directories they sit in, unless something is in
//! them), the binary at `/usr/local/bin/NAME`, a generated `/etc/passwd` and `/etc/group`
//! (root and `nonroot` = `--user`), `/home/nonroot`, `/tmp` (1777), `--tz` zone data and
//! `/etc/localtime`. The host's `/etc/hosts`, `/etc/resolv.conf`, `/etc/localtime` never go
//! in (the runtime provides the first two). Written by pare-write: same input, same digest.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use pare_image::ImagePath;
use pare_select::{ImageFacts, SelectInputs, root::Rootfs};
use pare_write::{ImageMeta, Stack};
use serde::Serialize;
use serde_json::{Value, json};

use crate::rootfs::{all_paths, selection_of};
use crate::{PackError, io_err};

/// Where the binary goes in the image (`NAME` is its file name).
pub const BIN_DIR: &str = "/usr/local/bin";
const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Host files that never go in a packed image (the runtime provides or the flags replace them).
const NEVER: [&str; 7] = [
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/hostname",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/passwd",
    "/etc/group",
];

/// What to pack.
#[derive(Debug, Clone, Default)]
pub struct PackOptions {
    /// The binary on the host.
    pub binary: PathBuf,
    /// Where to write the image: any output `pare build --output` takes.
    pub output: String,
    /// Resolve the closure in this image instead of the host.
    pub from: Option<String>,
    /// `UID[:GID]` of the non-root user (default 65532).
    pub user: Option<String>,
    /// `PORT[/PROTO]` to expose.
    pub ports: Vec<String>,
    /// `KEY=VALUE`.
    pub env: Vec<String>,
    /// Replaces `[/usr/local/bin/NAME]`.
    pub entrypoint: Option<Vec<String>>,
    /// `CMD` (arguments to the entrypoint).
    pub cmd: Vec<String>,
    /// Paths of the closure's root (host or `--from` image) to add, directories whole, ELF
    /// files with their own closure.
    pub includes: Vec<String>,
    /// Time zone to add (`Europe/Paris`): its zone file and `/etc/localtime`.
    pub tz: Option<String>,
    /// Timestamps of every entry and of the config, in seconds since the Unix epoch
    /// (default: `$SOURCE_DATE_EPOCH`, else 0), so the digest depends only on the input.
    pub epoch: Option<u64>,
    /// The program's cancellation token: the work dir is registered with it.
    pub cancel: pare_runtime::Cancel,
}

/// What `pare pack` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct PackReport {
    /// The packed binary, as given.
    pub binary: String,
    /// The output, as given.
    pub output: String,
    /// Where the closure came from: `host` or the `--from` reference.
    pub root: String,
    /// In-image paths of the files, symlinks and directories written.
    pub files: Vec<ImagePath>,
    /// The config's `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// The config's `Cmd`.
    pub cmd: Vec<String>,
    /// The config's `Env` (`KEY=VALUE`).
    pub env: Vec<String>,
    /// Exposed container ports (TCP).
    pub ports: Vec<u16>,
    /// `UID:GID` the image runs as.
    pub user: String,
    /// Its name in `/etc/passwd` (`nonroot`, or `root`).
    pub account: String,
    /// Bytes of the regular files in the image.
    pub bytes: u64,
    /// Bytes of the one gzip layer blob (the manifest's layer `size`).
    pub layer_size: u64,
    /// `sha256:…` of the config: Docker's image ID.
    pub config_digest: String,
    /// `sha256:…` of the manifest: what a registry names the image by.
    pub manifest_digest: String,
    /// What pare-select could not resolve but did not make the image unusable.
    pub warnings: Vec<String>,
}

/// `(uid, gid)` from `UID[:GID]`.
fn parse_user(user: Option<&str>) -> Result<(u32, u32), PackError> {
    let s = user.unwrap_or("65532");
    let bad = || PackError::Flag {
        flag: "--user",
        value: s.to_string(),
        reason: "expected a numeric UID[:GID]".into(),
    };
    let (u, g) = s.split_once(':').unwrap_or((s, s));
    Ok((u.parse().map_err(|_| bad())?, g.parse().map_err(|_| bad())?))
}

/// The OCI architecture of an ELF file, or `NotElf`.
fn elf_arch(path: &Path, head: &[u8]) -> Result<&'static str, PackError> {
    if head.len() < 20 || &head[..4] != b"\x7fELF" {
        return Err(PackError::NotElf {
            path: path.to_path_buf(),
        });
    }
    let m = [head[18], head[19]];
    let machine = if head[5] == 2 {
        u16::from_be_bytes(m)
    } else {
        u16::from_le_bytes(m)
    };
    Ok(match machine {
        62 => "amd64",
        183 => "arm64",
        3 => "386",
        40 => "arm",
        21 => "ppc64le",
        22 => "s390x",
        243 => "riscv64",
        _ => "unknown",
    })
}

/// Statically linked Rust with rustls loading the system's roots: the crate names stay in the
/// binary's panic locations and symbol names.
fn wants_native_certs(bytes: &[u8]) -> bool {
    let has = |n: &[u8]| bytes.windows(n.len()).any(|w| w == n);
    has(b"rustls")
        && (has(b"rustls-native-certs") || has(b"rustls_native_certs") || has(b"openssl-probe"))
}

/// Packs `opts.binary` (see the module docs).
pub fn pack(opts: &PackOptions) -> Result<PackReport, PackError> {
    let bin = &opts.binary;
    let name = bin
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| PackError::Missing {
            path: bin.display().to_string(),
            what: "binary".into(),
        })?
        .to_string();
    let mut bytes = Vec::new();
    std::fs::File::open(bin)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io_err(bin))?;
    let arch = elf_arch(bin, &bytes)?;
    let (uid, gid) = parse_user(opts.user.as_deref())?;
    let output = crate::parse_output(&opts.output)?;
    // A Ctrl-C also removes pare-write's half-written output beside `--output`.
    opts.cancel.on_cancel(|| {
        pare_write::remove_temp_files();
    });
    let work = opts
        .cancel
        .temp_dir("pare-pack-")
        .map_err(io_err(std::env::temp_dir()))?;
    let in_image = format!("{BIN_DIR}/{name}");

    // The root the closure comes from, and the binary's path in it.
    let (root, bin_in_root, root_name) = match &opts.from {
        None => {
            let canonical = std::fs::canonicalize(bin).map_err(io_err(bin))?;
            (
                PathBuf::from("/"),
                canonical.display().to_string(),
                "host".to_string(),
            )
        }
        Some(from) => {
            let dir = work.path().join("from");
            std::fs::create_dir(&dir).map_err(io_err(&dir))?;
            extract_image(from, &dir)?;
            let target = dir.join(&in_image[1..]);
            if let Some(p) = target.parent() {
                std::fs::create_dir_all(p).map_err(io_err(p))?;
            }
            std::fs::copy(bin, &target).map_err(io_err(&target))?;
            (dir, in_image.clone(), from.clone())
        }
    };
    let mut inputs = SelectInputs {
        facts: ImageFacts {
            env: vec![PATH_ENV.to_string()],
            ..Default::default()
        },
        include_bins: vec![bin_in_root.clone()],
        ..Default::default()
    };
    let rootfs = Rootfs::new(&root).map_err(|source| PackError::Select {
        path: root.display().to_string(),
        source: Box::new(source),
    })?;
    for inc in &opts.includes {
        let found = rootfs.resolve(inc, true).ok().filter(|r| r.exists);
        let Some(found) = found else {
            return Err(PackError::Missing {
                path: inc.clone(),
                what: format!("--include (in {root_name})"),
            });
        };
        if pare_select::elf::ident(&rootfs, &found.path).is_some() {
            inputs.include_bins.push(found.path.clone());
        }
        inputs.include_paths.push(found.path);
    }
    if let Some(tz) = &opts.tz {
        let zone = format!("/usr/share/zoneinfo/{tz}");
        if tz.contains("..") || !rootfs.resolve(&zone, true).is_ok_and(|r| r.exists) {
            return Err(PackError::Missing {
                path: zone,
                what: format!("--tz zone (in {root_name})"),
            });
        }
        inputs.include_paths.push(zone);
    }
    if wants_native_certs(&bytes) {
        let ca = "/etc/ssl/certs/ca-certificates.crt";
        if rootfs.resolve(ca, true).is_ok_and(|r| r.exists) {
            inputs.include_paths.push(ca.to_string());
        }
    }
    // The loader must be there for a dynamic binary: pare-select's ELF reader says which.
    let info = pare_select::elf::read(&rootfs, &bin_in_root).map_err(|reason| PackError::Flag {
        flag: "binary",
        value: bin.display().to_string(),
        reason,
    })?;
    let sel = pare_select::select(&root, &inputs).map_err(|source| PackError::Select {
        path: bin.display().to_string(),
        source: Box::new(source),
    })?;
    if let Some(w) = sel.warnings.iter().find(|w| w.contains("DT_NEEDED")) {
        let soname = w
            .split("DT_NEEDED ")
            .nth(1)
            .and_then(|r| r.split(' ').next());
        return Err(PackError::Missing {
            path: bin.display().to_string(),
            what: format!("library {} (in {root_name})", soname.unwrap_or(w)),
        });
    }
    if let Some(interp) = info.as_ref().and_then(|i| i.interp.as_ref()) {
        if !rootfs.resolve(interp, true).is_ok_and(|r| r.exists) {
            return Err(PackError::Missing {
                path: bin.display().to_string(),
                what: format!("ELF interpreter {interp} (in {root_name})"),
            });
        }
    }

    // Stage the image's files.
    let stage = work.path().join("stage");
    std::fs::create_dir(&stage).map_err(io_err(&stage))?;
    let mut dir_modes: BTreeMap<ImagePath, (u32, u32, u32)> = BTreeMap::new();
    for path in sel.entries.keys() {
        if path.as_str() == bin_in_root || NEVER.contains(&path.as_str()) || path == "/tmp" {
            continue;
        }
        let host = rootfs.host(path);
        let Ok(md) = std::fs::symlink_metadata(&host) else {
            continue;
        };
        if md.is_dir() {
            dir_modes.insert(path.clone(), (md.mode() & 0o7777, md.uid(), md.gid()));
            continue;
        }
        let dest = stage.join(path.rel());
        if let Some(p) = dest.parent() {
            std::fs::create_dir_all(p).map_err(io_err(p))?;
        }
        if md.file_type().is_symlink() {
            let target = std::fs::read_link(&host).map_err(io_err(&host))?;
            std::os::unix::fs::symlink(&target, &dest).map_err(io_err(&dest))?;
        } else if md.is_file() {
            match sel.generated.get(path) {
                Some(data) => std::fs::write(&dest, data).map_err(io_err(&dest))?,
                None => {
                    std::fs::copy(&host, &dest).map_err(io_err(&host))?;
                }
            }
            set_mode(&dest, md.mode() & 0o7777)?;
        } else {
            continue;
        }
        owner(&dest, md.uid(), md.gid())?;
    }
    // Directories that hold something keep the root's mode and owner.
    for (path, (mode, u, g)) in &dir_modes {
        let dest = stage.join(path.rel());
        if dest.is_dir() {
            set_mode(&dest, *mode)?;
            owner(&dest, *u, *g)?;
        }
    }
    let bin_dest = stage.join(&in_image[1..]);
    std::fs::create_dir_all(stage.join(&BIN_DIR[1..])).map_err(io_err(&stage))?;
    std::fs::write(&bin_dest, &bytes).map_err(io_err(&bin_dest))?;
    set_mode(&bin_dest, 0o755)?;
    for (dir, mode) in [("etc", 0o755), ("tmp", 0o1777), ("home", 0o755)] {
        let d = stage.join(dir);
        std::fs::create_dir_all(&d).map_err(io_err(&d))?;
        set_mode(&d, mode)?;
    }
    let account = if uid == 0 { "root" } else { "nonroot" };
    let mut passwd = "root:x:0:0:root:/root:/sbin/nologin\n".to_string();
    let mut group = "root:x:0:\n".to_string();
    if uid != 0 {
        passwd.push_str(&format!(
            "nonroot:x:{uid}:{gid}:nonroot:/home/nonroot:/sbin/nologin\n"
        ));
        if gid != 0 {
            group.push_str(&format!("nonroot:x:{gid}:\n"));
        }
        let home = stage.join("home/nonroot");
        std::fs::create_dir_all(&home).map_err(io_err(&home))?;
        set_mode(&home, 0o700)?;
        owner(&home, uid, gid)?;
    }
    for (f, text) in [("etc/passwd", passwd), ("etc/group", group)] {
        let p = stage.join(f);
        std::fs::write(&p, text).map_err(io_err(&p))?;
        set_mode(&p, 0o644)?;
    }
    if let Some(tz) = &opts.tz {
        let lt = stage.join("etc/localtime");
        std::os::unix::fs::symlink(format!("/usr/share/zoneinfo/{tz}"), &lt)
            .map_err(io_err(&lt))?;
        let p = stage.join("etc/timezone");
        std::fs::write(&p, format!("{tz}\n")).map_err(io_err(&p))?;
        set_mode(&p, 0o644)?;
    }

    // The config, and the image.
    let entrypoint = opts
        .entrypoint
        .clone()
        .unwrap_or_else(|| vec![in_image.clone()]);
    let mut env = vec![PATH_ENV.to_string()];
    env.extend(opts.env.iter().cloned());
    if let Some(bad) = env.iter().find(|e| !e.contains('=')) {
        return Err(PackError::Flag {
            flag: "--env",
            value: bad.clone(),
            reason: "expected KEY=VALUE".into(),
        });
    }
    let mut ports = serde_json::Map::new();
    let mut tcp_ports = Vec::new();
    for p in &opts.ports {
        let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
        if num.parse::<u16>().is_err() || !matches!(proto, "tcp" | "udp" | "sctp") {
            return Err(PackError::Flag {
                flag: "--port",
                value: p.clone(),
                reason: "expected PORT[/tcp|udp|sctp]".into(),
            });
        }
        if proto == "tcp" {
            tcp_ports.extend(num.parse::<u16>().ok());
        }
        ports.insert(format!("{num}/{proto}"), json!({}));
    }
    let user = format!("{uid}:{gid}");
    let mut cfg = json!({ "User": user, "Env": env, "Entrypoint": entrypoint, "WorkingDir": "/" });
    if !opts.cmd.is_empty() {
        cfg["Cmd"] = json!(opts.cmd);
    }
    if !ports.is_empty() {
        cfg["ExposedPorts"] = Value::Object(ports);
    }
    let bin_digest = pare_source::sha256_of(&bytes);
    let raw = json!({
        "architecture": arch, "os": "linux", "config": cfg,
        "rootfs": { "type": "layers", "diff_ids": [] },
    });
    let raw = serde_json::to_vec(&raw).unwrap_or_default();
    let write_err = |source| PackError::Write {
        output: opts.output.clone(),
        source: Box::new(source),
    };
    let mut meta = ImageMeta::from_config_json(&raw, "").map_err(write_err)?;
    meta.source_digest = bin_digest.clone();
    meta.source_ref = format!("{name}@{bin_digest}");
    let epoch = pare_write::resolve_epoch(opts.epoch).map_err(write_err)?;
    let stack = Stack {
        below: Vec::new(),
        history: Some(vec![json!({
            "created": pare_write::rfc3339(epoch),
            "created_by": format!("pare pack {name}"),
            "comment": format!("{name} ({bin_digest}) with its closure from {root_name}"),
        })]),
    };
    let mut files = all_paths(&stage)?;
    files.sort();
    let selection = selection_of(&files);
    let written =
        pare_write::write_image_on(&stage, &selection, &meta, &stack, output, Some(epoch))
            .map_err(write_err)?;
    let total = files
        .iter()
        .filter_map(|f| std::fs::symlink_metadata(stage.join(f.rel())).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    Ok(PackReport {
        binary: bin.display().to_string(),
        output: opts.output.clone(),
        root: root_name,
        files,
        entrypoint,
        cmd: opts.cmd.clone(),
        env,
        ports: tcp_ports,
        user,
        account: account.to_string(),
        bytes: total,
        layer_size: written.layer.size,
        config_digest: written.config_digest.to_string(),
        manifest_digest: written.manifest_digest.to_string(),
        warnings: sel.warnings,
    })
}

fn set_mode(p: &Path, mode: u32) -> Result<(), PackError> {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).map_err(io_err(p))
}

/// Sets the owner when running as root (otherwise the image gets the caller's ids, as
/// `pare build` does).
fn owner(p: &Path, uid: u32, gid: u32) -> Result<(), PackError> {
    match std::os::unix::fs::lchown(p, Some(uid), Some(gid)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Ok(()),
        Err(e) => Err(PackError::Io {
            path: p.to_path_buf(),
            source: e,
        }),
    }
}

/// Extracts `reference` into `dir`.
fn extract_image(reference: &str, dir: &Path) -> Result<(), PackError> {
    let r = pare_reference::ImageRef::parse(reference).map_err(|source| PackError::Reference {
        reference: reference.to_string(),
        source,
    })?;
    let source =
        pare_source::open(&r, &Default::default()).map_err(|source| PackError::Source {
            reference: reference.to_string(),
            source: Box::new(source),
        })?;
    pare_layerfs::extract(source.as_ref(), dir).map_err(|source| PackError::Layers {
        reference: reference.to_string(),
        source: Box::new(source),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_elf_headers() {
        assert_eq!(parse_user(None).unwrap(), (65532, 65532));
        assert_eq!(parse_user(Some("1000:2000")).unwrap(), (1000, 2000));
        assert!(parse_user(Some("app")).is_err());
        let mut h = vec![0x7f, b'E', b'L', b'F', 2, 1];
        h.resize(20, 0);
        h[18] = 62;
        assert_eq!(elf_arch(Path::new("x"), &h).unwrap(), "amd64");
        assert!(matches!(
            elf_arch(Path::new("x"), b"#!/bin/sh\necho hello there"),
            Err(PackError::NotElf { .. })
        ));
    }

    #[test]
    fn rustls_native_roots_heuristic() {
        assert!(wants_native_certs(
            b"..rustls-0.23/src..rustls-native-certs-0.8.."
        ));
        assert!(!wants_native_certs(b"..rustls-0.23/src..webpki-roots.."));
        assert!(!wants_native_certs(b"plain C server"));
    }
}
