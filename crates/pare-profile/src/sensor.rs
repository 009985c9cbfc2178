//! Finding the static `pare-sensor` that runs as PID 1 inside the traced container.
//!
//! In order: `--sensor PATH`, `$PARE_SENSOR`, the sensor embedded in the `pare` binary (written
//! once to a private cache file), a `pare-sensor` beside the running executable, and the
//! `scripts/build-sensor` output in a cargo target dir. A sensor must be a static ELF for this
//! machine: one with an ELF interpreter (a dynamic loader) would fail inside any image without
//! that loader (`exec /.pare/sensor: no such file or directory` in musl or scratch images), so
//! it is refused with an error naming the file.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::ProfileError;

/// A sensor compiled into the `pare` binary (`include_bytes!` by its build script).
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedSensor {
    /// The static sensor executable's bytes, written out to the cache dir before use.
    pub bytes: &'static [u8],
    /// Hex SHA-256 of `bytes`, computed at build time; names the cache file.
    pub sha256: &'static str,
}

static EMBEDDED: OnceLock<EmbeddedSensor> = OnceLock::new();

/// Registers the sensor embedded in the running binary. The first registration wins.
pub fn set_embedded_sensor(sensor: EmbeddedSensor) {
    let _ = EMBEDDED.set(sensor);
}

/// How the sensor was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SensorOrigin {
    /// `--sensor PATH`.
    Explicit,
    /// `$PARE_SENSOR`.
    Env,
    /// Embedded in `pare`, written out to a cache file.
    Embedded,
    /// A `pare-sensor` beside the executable (or in its cargo target dir).
    Beside,
}

/// A located sensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sensor {
    /// The sensor executable, checked to be a static ELF for this machine.
    pub path: PathBuf,
    /// Which of the places searched it came from.
    pub origin: SensorOrigin,
}

/// Finds the static sensor (see the module docs for the order), writing the embedded one out
/// when that is the one chosen.
pub fn find_sensor(explicit: Option<&Path>) -> Result<Sensor, ProfileError> {
    if let Some(p) = explicit {
        // An explicit path must exist: do not silently fall back.
        if !p.is_file() {
            return Err(ProfileError::SensorNotFound {
                looked: format!("--sensor {}", p.display()),
            });
        }
        check_static(p)?;
        return Ok(Sensor {
            path: p.to_path_buf(),
            origin: SensorOrigin::Explicit,
        });
    }
    if let Some(p) = env_sensor() {
        if !p.is_file() {
            return Err(ProfileError::SensorNotFound {
                looked: format!("PARE_SENSOR={}", p.display()),
            });
        }
        check_static(&p)?;
        return Ok(Sensor {
            path: p,
            origin: SensorOrigin::Env,
        });
    }
    if let Some(e) = EMBEDDED.get() {
        return Ok(Sensor {
            path: write_embedded(e)?,
            origin: SensorOrigin::Embedded,
        });
    }
    let mut looked = Vec::new();
    for c in beside_candidates() {
        if c.is_file() {
            check_static(&c)?;
            return Ok(Sensor {
                path: c,
                origin: SensorOrigin::Beside,
            });
        }
        looked.push(c.display().to_string());
    }
    Err(ProfileError::SensorNotFound {
        looked: format!("looked at {}", looked.join(", ")),
    })
}

/// One line for `pare --version`: how the sensor would be found, without writing anything.
pub fn describe_sensor() -> String {
    let verdict = |p: &Path| match check_static(p) {
        Ok(()) => "static".to_string(),
        Err(e) => format!("REFUSED: {e}"),
    };
    if let Some(p) = env_sensor() {
        if !p.is_file() {
            return format!("PARE_SENSOR={} (missing)", p.display());
        }
        return format!("PARE_SENSOR={} ({})", p.display(), verdict(&p));
    }
    if let Some(e) = EMBEDDED.get() {
        return format!(
            "embedded (static {}, {:.1} MiB, sha256 {})",
            std::env::consts::ARCH,
            e.bytes.len() as f64 / (1024.0 * 1024.0),
            &e.sha256[..e.sha256.len().min(12)]
        );
    }
    match beside_candidates().into_iter().find(|c| c.is_file()) {
        Some(c) => format!("beside the binary: {} ({})", c.display(), verdict(&c)),
        None => "not found (set PARE_SENSOR or install with `cargo install --path crates/pare`)"
            .to_string(),
    }
}

fn env_sensor() -> Option<PathBuf> {
    std::env::var_os("PARE_SENSOR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `pare-sensor` next to the running executable; then, from `target/{debug,release}/pare`
/// (and `target/debug/deps` for test binaries), the `scripts/build-sensor` output
/// `target/pare-sensor-embed/x86_64-unknown-linux-gnu/release/`.
fn beside_candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        out.push(dir.join("pare-sensor"));
        for up in [dir.parent(), dir.parent().and_then(Path::parent)]
            .into_iter()
            .flatten()
        {
            out.push(up.join("pare-sensor-embed/x86_64-unknown-linux-gnu/release/pare-sensor"));
        }
    }
    out
}

/// The ELF machine this build of pare runs on.
const HOST_MACHINE: u16 = if cfg!(target_arch = "aarch64") {
    goblin::elf::header::EM_AARCH64
} else {
    goblin::elf::header::EM_X86_64
};

/// Refuses a sensor that is not an ELF executable for this machine or that names an ELF
/// interpreter (is dynamically linked). Reads only the ELF header and program headers.
pub fn check_static(path: &Path) -> Result<(), ProfileError> {
    use goblin::elf::{Elf, program_header};
    let io = |source| ProfileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let not_elf = |source| ProfileError::SensorNotElf {
        path: path.to_path_buf(),
        source,
    };
    let mut f = File::open(path).map_err(io)?;
    let mut head = [0u8; 64];
    let n = read_up_to(&mut f, &mut head).map_err(io)?;
    let header = Elf::parse_header(&head[..n]).map_err(not_elf)?;
    if header.e_machine != HOST_MACHINE {
        return Err(ProfileError::SensorWrongMachine {
            path: path.to_path_buf(),
            machine: goblin::elf::header::machine_to_str(header.e_machine).to_string(),
        });
    }
    let container = header.container().map_err(not_elf)?;
    let endian = header.endianness().map_err(not_elf)?;
    let ctx = goblin::container::Ctx::new(container, endian);
    // At most 65535 headers of at most 64 bytes: a bounded read.
    let len = usize::from(header.e_phnum) * usize::from(header.e_phentsize);
    let mut phdrs = vec![0u8; len];
    f.seek(SeekFrom::Start(header.e_phoff)).map_err(io)?;
    f.read_exact(&mut phdrs).map_err(io)?;
    let headers = program_header::ProgramHeader::parse(&phdrs, 0, usize::from(header.e_phnum), ctx)
        .map_err(not_elf)?;
    if headers
        .iter()
        .any(|h| h.p_type == program_header::PT_INTERP)
    {
        return Err(ProfileError::SensorNotStatic {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The private directory the embedded sensor is written to: `$XDG_CACHE_HOME/pare`, else
/// `$HOME/.cache/pare`, else `$TMPDIR/pare-cache`.
fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        });
    match base {
        Some(b) => b.join("pare"),
        None => std::env::temp_dir().join("pare-cache"),
    }
}

/// Writes the embedded sensor to `<cache>/sensor-<sha256>` (mode 0755, in a 0700 directory
/// that must belong to us) unless an identical file is already there. The write goes to a
/// temporary file that is renamed into place, so a concurrent or killed pare never leaves a
/// half-written sensor under the final name.
fn write_embedded(e: &EmbeddedSensor) -> Result<PathBuf, ProfileError> {
    write_embedded_in(e, &cache_dir())
}

fn write_embedded_in(e: &EmbeddedSensor, dir: &Path) -> Result<PathBuf, ProfileError> {
    let dir = dir.to_path_buf();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ProfileError::Io { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".sensor-")
        .tempfile_in(&dir)
        .map_err(io(&dir))?;
    // The directory must be ours and closed to others: someone else's directory (in a shared
    // TMPDIR) could swap the file between our write and the container's exec.
    let meta = std::fs::symlink_metadata(&dir).map_err(io(&dir))?;
    let me = tmp.as_file().metadata().map_err(io(tmp.path()))?.uid();
    if !meta.is_dir() || meta.uid() != me {
        return Err(ProfileError::SensorCacheUnsafe { path: dir });
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io(&dir))?;
    }
    let path = dir.join(format!("sensor-{}", &e.sha256[..e.sha256.len().min(32)]));
    if is_same(&path, e.bytes, me) {
        return Ok(path);
    }
    tmp.write_all(e.bytes).map_err(io(tmp.path()))?;
    tmp.as_file().sync_all().map_err(io(tmp.path()))?;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
        .map_err(io(tmp.path()))?;
    tmp.persist(&path).map_err(|e| ProfileError::Io {
        path: path.clone(),
        source: e.error,
    })?;
    Ok(path)
}

/// True when `path` is a regular file of ours, mode 0755, holding exactly `bytes`.
fn is_same(path: &Path, bytes: &[u8], uid: u32) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !meta.is_file()
        || meta.uid() != uid
        || meta.mode() & 0o777 != 0o755
        || meta.len() != bytes.len() as u64
    {
        return false;
    }
    std::fs::read(path).is_ok_and(|have| have == bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn this_test_binary() -> PathBuf {
        std::env::current_exe().unwrap()
    }

    #[test]
    fn a_dynamically_linked_sensor_is_refused_naming_the_file() {
        // Test binaries are linked dynamically (they have an ELF interpreter).
        let exe = this_test_binary();
        let e = check_static(&exe).unwrap_err();
        assert!(matches!(e, ProfileError::SensorNotStatic { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains(&exe.display().to_string()), "{msg}");
        assert!(msg.contains("dynamically linked"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
        let e = find_sensor(Some(&exe)).unwrap_err().to_string();
        assert!(e.contains("dynamically linked"), "{e}");
    }

    #[test]
    fn a_static_elf_passes_and_garbage_is_refused() {
        // busybox-static, when installed, is a static x86_64 ELF.
        let busybox = Path::new("/bin/busybox");
        if busybox.is_file() && check_static(busybox).is_ok() {
            assert!(find_sensor(Some(busybox)).is_ok());
        }
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk");
        std::fs::write(&junk, b"#!/bin/sh\necho not an elf\n").unwrap();
        let e = check_static(&junk).unwrap_err();
        assert!(matches!(e, ProfileError::SensorNotElf { .. }), "{e:?}");
        assert!(e.to_string().contains("junk"), "{e}");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        assert!(check_static(&empty).is_err());
    }

    #[test]
    fn a_static_elf_is_accepted() {
        // A minimal static ELF64 x86_64 header with one PT_LOAD and no PT_INTERP.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("static");
        std::fs::write(&p, minimal_elf(goblin::elf::program_header::PT_LOAD)).unwrap();
        check_static(&p).unwrap();
        let d = dir.path().join("dynamic");
        std::fs::write(&d, minimal_elf(goblin::elf::program_header::PT_INTERP)).unwrap();
        assert!(matches!(
            check_static(&d),
            Err(ProfileError::SensorNotStatic { .. })
        ));
    }

    /// An ELF64 little-endian header for this machine plus one program header of type `pt`.
    fn minimal_elf(pt: u32) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2; // ELFCLASS64
        b[5] = 1; // little endian
        b[6] = 1; // EV_CURRENT
        b[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        b[18..20].copy_from_slice(&HOST_MACHINE.to_le_bytes());
        b[20..24].copy_from_slice(&1u32.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        b[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        b[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        b[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        b[64..68].copy_from_slice(&pt.to_le_bytes());
        b
    }

    #[test]
    fn the_embedded_sensor_is_written_once_privately_and_rewritten_when_changed() {
        let home = tempfile::tempdir().unwrap();
        let e = EmbeddedSensor {
            bytes: b"\x7fELF pretend sensor bytes",
            sha256: "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        };
        let p = write_embedded_in(&e, &home.path().join("pare")).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), e.bytes);
        let meta = std::fs::metadata(&p).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o755);
        let dmeta = std::fs::metadata(home.path().join("pare")).unwrap();
        assert_eq!(dmeta.mode() & 0o777, 0o700);
        let ino = meta.ino();
        // Unchanged: not rewritten.
        let p2 = write_embedded_in(&e, &home.path().join("pare")).unwrap();
        assert_eq!(p2, p);
        assert_eq!(std::fs::metadata(&p2).unwrap().ino(), ino);
        // Tampered with: replaced by a fresh copy.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&p, b"tampered").unwrap();
        let p3 = write_embedded_in(&e, &home.path().join("pare")).unwrap();
        assert_eq!(std::fs::read(&p3).unwrap(), e.bytes);
        assert_eq!(std::fs::metadata(&p3).unwrap().mode() & 0o777, 0o755);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(home.path().join("pare"))
            .unwrap()
            .map(|d| d.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
