//! ELF facts (goblin) and the dynamic loader's library search, done inside the rootfs.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

use globset::GlobBuilder;

use crate::ldcache::{self, CacheEntry};
use crate::root::{self, Resolution, Rootfs};

/// Larger ELF files are not parsed (a warning is recorded instead).
const MAX_ELF_BYTES: u64 = 2 << 30;

/// What the loader needs to know about one ELF object.
#[derive(Debug, Clone, Default)]
pub struct ElfInfo {
    /// ELFCLASS64.
    pub is_64: bool,
    /// `e_machine`.
    pub machine: u16,
    /// `PT_INTERP`: the dynamic loader.
    pub interp: Option<String>,
    /// `DT_NEEDED` sonames.
    pub needed: Vec<String>,
    /// `DT_RPATH` entries (unexpanded).
    pub rpath: Vec<String>,
    /// `DT_RUNPATH` entries (unexpanded).
    pub runpath: Vec<String>,
    /// A Go binary that links `crypto/tls`.
    pub go_tls: bool,
}

/// Opens a canonical in-image path without following a final symlink.
pub(crate) fn open_nofollow(root: &Rootfs, canonical: &str) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(root.host(canonical))
}

/// `(is_64, e_machine)` from the ELF identification, or `None` when the file is not ELF.
pub fn ident(root: &Rootfs, canonical: &str) -> Option<(bool, u16)> {
    let mut f = open_nofollow(root, canonical).ok()?;
    let mut h = [0u8; 20];
    f.read_exact(&mut h).ok()?;
    ident_bytes(&h)
}

fn ident_bytes(h: &[u8]) -> Option<(bool, u16)> {
    if h.len() < 20 || &h[..4] != b"\x7fELF" {
        return None;
    }
    let is_64 = match h[4] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let m = [h[18], h[19]];
    let machine = match h[5] {
        1 => u16::from_le_bytes(m),
        2 => u16::from_be_bytes(m),
        _ => return None,
    };
    Some((is_64, machine))
}

/// Reads and parses an ELF file. `Ok(None)` when it is not ELF; `Err(reason)` when it claims
/// to be ELF but cannot be parsed.
pub fn read(root: &Rootfs, canonical: &str) -> Result<Option<ElfInfo>, String> {
    let Ok(mut f) = open_nofollow(root, canonical) else {
        return Ok(None);
    };
    let mut magic = [0u8; 4];
    if f.read_exact(&mut magic).is_err() || &magic != b"\x7fELF" {
        return Ok(None);
    }
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len > MAX_ELF_BYTES {
        return Err(format!("{len} bytes is larger than pare parses"));
    }
    let mut bytes = magic.to_vec();
    bytes.reserve(len as usize);
    f.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    // goblin is robust, but this is untrusted input: a parser panic becomes a warning.
    let parsed =
        std::panic::catch_unwind(|| goblin::elf::Elf::parse(&bytes).map(|e| summarize(&e, &bytes)));
    match parsed {
        Ok(Ok(info)) => Ok(Some(info)),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("ELF parser panicked on this file".to_string()),
    }
}

fn summarize(elf: &goblin::elf::Elf<'_>, bytes: &[u8]) -> ElfInfo {
    let go = elf
        .section_headers
        .iter()
        .any(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".go.buildinfo"))
        || find(bytes, b"\xff Go buildinf:").is_some();
    ElfInfo {
        is_64: elf.is_64,
        machine: elf.header.e_machine,
        interp: elf.interpreter.map(str::to_string),
        needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
        rpath: elf
            .rpaths
            .iter()
            .flat_map(|s| s.split(':'))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        runpath: elf
            .runpaths
            .iter()
            .flat_map(|s| s.split(':'))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        go_tls: go && find(bytes, b"crypto/tls.").is_some(),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        let p = hay[i..hay.len() + 1 - needle.len()]
            .iter()
            .position(|&b| b == first)?;
        if hay[i + p..].starts_with(needle) {
            return Some(i + p);
        }
        i += p + 1;
    }
    None
}

/// The multiarch triplet Debian uses for a machine.
pub fn multiarch(is_64: bool, machine: u16) -> Option<&'static str> {
    use goblin::elf::header::*;
    Some(match (machine, is_64) {
        (EM_X86_64, true) => "x86_64-linux-gnu",
        (EM_386, false) => "i386-linux-gnu",
        (EM_AARCH64, true) => "aarch64-linux-gnu",
        (EM_ARM, false) => "arm-linux-gnueabihf",
        (EM_PPC64, true) => "powerpc64le-linux-gnu",
        (EM_S390, true) => "s390x-linux-gnu",
        (EM_RISCV, true) => "riscv64-linux-gnu",
        _ => return None,
    })
}

fn platform(machine: u16) -> &'static str {
    use goblin::elf::header::*;
    match machine {
        EM_X86_64 => "x86_64",
        EM_386 => "i686",
        EM_AARCH64 => "aarch64",
        EM_ARM => "v7l",
        EM_PPC64 => "power8",
        EM_S390 => "s390x",
        EM_RISCV => "riscv64",
        _ => "unknown",
    }
}

/// Expands `$ORIGIN`, `$LIB` and `$PLATFORM` (also `${…}`) in one search-path entry. `$LIB`
/// has no single answer (upstream says `lib64`, Debian `lib/<triplet>`), so every candidate is
/// returned.
pub fn expand(entry: &str, origin_dir: &str, is_64: bool, machine: u16) -> Vec<String> {
    let mut libs = Vec::new();
    if let Some(t) = multiarch(is_64, machine) {
        libs.push(format!("lib/{t}"));
    }
    libs.push(if is_64 { "lib64".into() } else { "lib".into() });
    libs.push("lib".into());
    let base = entry
        .replace("${ORIGIN}", origin_dir)
        .replace("$ORIGIN", origin_dir)
        .replace("${PLATFORM}", platform(machine))
        .replace("$PLATFORM", platform(machine));
    let mut out = Vec::new();
    if base.contains("$LIB") || base.contains("${LIB}") {
        for l in &libs {
            let e = base.replace("${LIB}", l).replace("$LIB", l);
            if !out.contains(&e) {
                out.push(e);
            }
        }
    } else {
        out.push(base);
    }
    out.into_iter().map(|d| root::normalize(&d)).collect()
}

/// The loader's view of the rootfs: `ld.so.cache`, `ld.so.conf` dirs and default dirs.
#[derive(Debug, Default)]
pub struct LibResolver {
    cache: HashMap<String, Vec<CacheEntry>>,
    conf_dirs: Vec<String>,
    musl_dirs: Vec<String>,
    /// The image's `LD_LIBRARY_PATH` directories.
    pub ld_library_path: Vec<String>,
    /// What could not be read (a bad `ld.so.cache`, …).
    pub warnings: Vec<String>,
}

/// A library found for a `DT_NEEDED` name.
#[derive(Debug, Clone)]
pub struct Found {
    /// The path the loader would open (before resolving symlinks).
    pub path: String,
    /// That path resolved in the rootfs.
    pub resolution: Resolution,
    /// Where it was found: `RPATH`, `RUNPATH`, `ld.so.cache`, …
    pub via: &'static str,
}

impl LibResolver {
    /// Reads the rootfs's `ld.so.cache` and `ld.so.conf` (problems become `warnings`).
    pub fn load(root: &Rootfs, ld_library_path: Vec<String>) -> Self {
        let mut r = LibResolver {
            ld_library_path,
            ..Default::default()
        };
        if let Ok(res) = root.resolve("/etc/ld.so.cache", true)
            && res.exists
            && let Ok(bytes) = std::fs::read(root.host(&res.path))
        {
            match ldcache::parse(&bytes, &root.host(&res.path)) {
                Ok(entries) => {
                    for e in entries {
                        r.cache.entry(e.name.clone()).or_default().push(e);
                    }
                }
                Err(e) => r.warnings.push(pare_progress::chain(&e)),
            }
        }
        let mut seen = Vec::new();
        r.read_conf(root, "/etc/ld.so.conf", &mut seen, 0);
        // musl: /etc/ld-musl-ARCH.path lists the search path.
        if let Ok(rd) = std::fs::read_dir(root.host("/etc")) {
            let mut names: Vec<String> = rd
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| n.starts_with("ld-musl-") && n.ends_with(".path"))
                .collect();
            names.sort();
            for n in names {
                if let Ok(text) = std::fs::read_to_string(root.host(&format!("/etc/{n}"))) {
                    r.musl_dirs.extend(
                        text.split(|c: char| c == ':' || c.is_whitespace())
                            .filter(|s| s.starts_with('/'))
                            .map(root::normalize),
                    );
                }
            }
        }
        r
    }

    fn read_conf(&mut self, root: &Rootfs, path: &str, seen: &mut Vec<String>, depth: usize) {
        let Ok(res) = root.resolve(path, true) else {
            return;
        };
        if depth > 8 || seen.contains(&res.path) {
            return;
        }
        seen.push(res.path.clone());
        let Ok(text) = std::fs::read_to_string(root.host(&res.path)) else {
            return;
        };
        let conf_dir = root::parent(&res.path).unwrap_or("/").to_string();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if let Some(pat) = line
                .strip_prefix("include")
                .filter(|r| r.starts_with(char::is_whitespace))
            {
                for pat in pat.split_whitespace() {
                    let pat = if pat.starts_with('/') {
                        pat.to_string()
                    } else {
                        format!("{conf_dir}/{pat}")
                    };
                    for f in glob_files(root, &pat) {
                        self.read_conf(root, &f, seen, depth + 1);
                    }
                }
            } else if line.starts_with("hwcap") {
                continue;
            } else {
                for d in line.split(|c: char| c == ':' || c == ',' || c.is_whitespace()) {
                    // "dir=TYPE" (libc5 syntax) keeps only the dir.
                    let d = d.split('=').next().unwrap_or("");
                    if d.starts_with('/') {
                        let d = root::normalize(d);
                        if !self.conf_dirs.contains(&d) {
                            self.conf_dirs.push(d);
                        }
                    }
                }
            }
        }
    }

    /// The directories from `ld.so.conf` (and its includes), in order.
    pub fn conf_dirs(&self) -> &[String] {
        &self.conf_dirs
    }

    /// Finds `name` the way `ld.so` would for an object of class/machine `want`.
    /// `rpath` is the requester's expanded RPATH list (own plus inherited from its loaders, used
    /// only when it has no RUNPATH), `runpath` its expanded RUNPATH.
    pub fn find(
        &self,
        root: &Rootfs,
        name: &str,
        want: (bool, u16),
        rpath: &[String],
        runpath: &[String],
    ) -> Option<Found> {
        if name.contains('/') {
            let path = root::normalize(name);
            return self.check(root, &path, want).map(|resolution| Found {
                path,
                resolution,
                via: "path in DT_NEEDED",
            });
        }
        let try_dirs = |dirs: &[String], via: &'static str| -> Option<Found> {
            dirs.iter().find_map(|d| {
                let path = root::normalize(&format!("{d}/{name}"));
                self.check(root, &path, want).map(|resolution| Found {
                    path,
                    resolution,
                    via,
                })
            })
        };
        if runpath.is_empty()
            && let Some(f) = try_dirs(rpath, "RPATH")
        {
            return Some(f);
        }
        if let Some(f) = try_dirs(&self.ld_library_path, "LD_LIBRARY_PATH") {
            return Some(f);
        }
        if let Some(f) = try_dirs(runpath, "RUNPATH") {
            return Some(f);
        }
        let required = ldcache::required_flag(want.1, want.0);
        if let Some(entries) = self.cache.get(name) {
            // The baseline copy first: a glibc-hwcaps variant is only what some CPUs load
            // (the traced run keeps the one that was actually used).
            let mut entries: Vec<&CacheEntry> = entries.iter().collect();
            entries.sort_by_key(|e| e.hwcap != 0 || e.path.contains("/glibc-hwcaps/"));
            for e in entries {
                if e.flags & ldcache::FLAG_TYPE_MASK != ldcache::FLAG_ELF_LIBC6
                    && e.flags & ldcache::FLAG_TYPE_MASK != 1
                {
                    continue;
                }
                if e.flags & ldcache::FLAG_REQUIRED_MASK != required {
                    continue;
                }
                let path = root::normalize(&e.path);
                if let Some(resolution) = self.check(root, &path, want) {
                    return Some(Found {
                        path,
                        resolution,
                        via: "ld.so.cache",
                    });
                }
            }
        }
        if let Some(f) = try_dirs(&self.conf_dirs, "ld.so.conf") {
            return Some(f);
        }
        if let Some(f) = try_dirs(&self.musl_dirs, "ld-musl path") {
            return Some(f);
        }
        try_dirs(&default_dirs(want.0, want.1), "default directory")
    }

    fn check(&self, root: &Rootfs, path: &str, want: (bool, u16)) -> Option<Resolution> {
        let res = root.resolve(path, true).ok()?;
        if !res.exists || !root.lstat(&res.path)?.is_file() {
            return None;
        }
        (ident(root, &res.path)? == want).then_some(res)
    }
}

/// The loader's built-in directories (glibc with Debian multiarch, and musl's defaults).
pub fn default_dirs(is_64: bool, machine: u16) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(t) = multiarch(is_64, machine) {
        v.push(format!("/lib/{t}"));
        v.push(format!("/usr/lib/{t}"));
    }
    if is_64 {
        v.push("/lib64".into());
        v.push("/usr/lib64".into());
    }
    v.extend(["/lib".into(), "/usr/lib".into(), "/usr/local/lib".into()]);
    v
}

/// Files in the rootfs matching an absolute glob whose wildcards are in the last component
/// (the form `include` lines use), sorted.
pub fn glob_files(root: &Rootfs, pattern: &str) -> Vec<String> {
    let pattern = root::normalize(pattern);
    let (dir, file) = match root::parent(&pattern) {
        Some(d) => (d.to_string(), root::file_name(&pattern).to_string()),
        None => return Vec::new(),
    };
    let Ok(m) = GlobBuilder::new(&file)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
    else {
        return Vec::new();
    };
    let Ok(res) = root.resolve(&dir, true) else {
        return Vec::new();
    };
    let Ok(rd) = std::fs::read_dir(root.host(&res.path)) else {
        return Vec::new();
    };
    let mut out: Vec<String> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| m.is_match(n))
        .map(|n| format!("{}/{n}", if res.path == "/" { "" } else { &res.path }))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_tokens() {
        let x = goblin::elf::header::EM_X86_64;
        assert_eq!(
            expand("$ORIGIN/../lib", "/opt/app/bin", true, x),
            vec!["/opt/app/lib"]
        );
        assert_eq!(expand("${ORIGIN}/x", "/a", true, x), vec!["/a/x"]);
        assert_eq!(
            expand("/usr/$LIB/foo", "/a", true, x),
            vec![
                "/usr/lib/x86_64-linux-gnu/foo",
                "/usr/lib64/foo",
                "/usr/lib/foo"
            ]
        );
        assert_eq!(expand("/p/$PLATFORM", "/a", true, x), vec!["/p/x86_64"]);
        // $ORIGIN with .. cannot climb out of the rootfs.
        assert_eq!(expand("$ORIGIN/../../../..", "/a", true, x), vec!["/"]);
    }

    #[test]
    fn finds_needle() {
        assert_eq!(find(b"xxcrypto/tls.yy", b"crypto/tls."), Some(2));
        assert_eq!(find(b"crypto/tl", b"crypto/tls."), None);
        assert_eq!(find(b"ccrypto/tls.", b"crypto/tls."), Some(1));
    }
}
