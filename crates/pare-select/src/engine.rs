//! The worklist that grows the selection to a fixed point.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use crate::elf::{self, ElfInfo, LibResolver};
use crate::root::{self, Rootfs};
use crate::{Kept, MAX_REASONS, Reason, SelectError, SelectInputs, Selection, dpkg, rules};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Pseudo filesystems the runtime provides; never taken from the image.
const PSEUDO: [&str; 3] = ["/proc", "/sys", "/dev"];

/// An ELF object waiting for its dependencies to be resolved.
struct ElfItem {
    canonical: String,
    /// The path it was loaded as (its `$ORIGIN` is this path's directory).
    loaded_as: String,
    /// RPATH entries inherited from the objects that loaded it.
    inherited_rpath: Vec<String>,
}

pub(crate) struct Ctx<'a> {
    pub root: Rootfs,
    pub inputs: &'a SelectInputs,
    pub entries: BTreeMap<String, Kept>,
    pub generated: BTreeMap<String, Vec<u8>>,
    pub created_dirs: BTreeMap<String, u32>,
    pub excluded: BTreeMap<String, String>,
    pub warnings: Vec<String>,
    pub resolver: LibResolver,
    pub path_dirs: Vec<String>,
    queue: VecDeque<ElfItem>,
    pending_files: VecDeque<String>,
    elf_cache: HashMap<String, Option<ElfInfo>>,
    elf_done: std::collections::HashSet<String>,
    exclude: Option<(GlobSet, Vec<String>)>,
    preserve: Option<(GlobSet, Vec<String>)>,
    /// Kept ELF objects that trigger rules: libc, TLS libraries.
    pub libc: Option<String>,
    pub tls: Vec<String>,
    pub dir_cache: HashMap<String, Vec<String>>,
    pub dist_cache: HashMap<String, Vec<rules::DistIndex>>,
}

fn globset(
    flag: &'static str,
    pats: &[String],
) -> Result<Option<(GlobSet, Vec<String>)>, SelectError> {
    if pats.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in pats {
        let norm = if p.starts_with('/') {
            p.clone()
        } else {
            format!("/{p}")
        };
        let g = GlobBuilder::new(norm.trim_end_matches('/'))
            .literal_separator(true)
            .build()
            .map_err(|source| SelectError::Glob {
                flag,
                pattern: p.clone(),
                source,
            })?;
        b.add(g);
    }
    let set = b.build().map_err(|source| SelectError::Glob {
        flag,
        pattern: pats.join(" "),
        source,
    })?;
    Ok(Some((set, pats.to_vec())))
}

/// The first pattern of `set` that matches `path` or one of its ancestors.
fn matching(set: &Option<(GlobSet, Vec<String>)>, path: &str) -> Option<String> {
    let (set, pats) = set.as_ref()?;
    let mut p = Some(path);
    while let Some(cur) = p {
        if let Some(i) = set.matches(cur).first() {
            return pats.get(*i).cloned();
        }
        p = root::parent(cur).filter(|q| *q != "/");
    }
    None
}

fn is_pseudo(path: &str) -> bool {
    PSEUDO.iter().any(|p| {
        path.starts_with(p)
            && (path.len() == p.len() || path.as_bytes().get(p.len()) == Some(&b'/'))
    })
}

impl<'a> Ctx<'a> {
    /// Adds a canonical path with a reason. Returns true when the path is newly kept.
    pub fn add(&mut self, canonical: &str, reason: Reason) -> bool {
        // The runtime mounts /proc, /sys and /dev: their mount points may be kept, never
        // what the rootfs happens to hold below them.
        if is_pseudo(canonical) && !PSEUDO.contains(&canonical) {
            return false;
        }
        let preserved = matches!(reason, Reason::PreservePath { .. })
            || matching(&self.preserve, canonical).is_some();
        if !preserved && let Some(glob) = matching(&self.exclude, canonical) {
            self.excluded.entry(canonical.to_string()).or_insert(glob);
            return false;
        }
        if let Some(kept) = self.entries.get_mut(canonical) {
            if kept.reasons.len() < MAX_REASONS && !kept.reasons.contains(&reason) {
                kept.reasons.push(reason);
            }
            return false;
        }
        self.entries.insert(
            canonical.to_string(),
            Kept {
                reasons: vec![reason],
            },
        );
        if self.root.lstat(canonical).is_some_and(|m| m.is_file()) {
            self.pending_files.push_back(canonical.to_string());
        }
        true
    }

    /// Keeps `raw` (as the app would open it): every symlink on the way and the final object.
    /// Returns the canonical path when it exists.
    pub fn keep(&mut self, raw: &str, reason: Reason) -> Option<String> {
        let raw = root::normalize(raw);
        if is_pseudo(&raw) {
            return None;
        }
        let res = match self.root.resolve(&raw, true) {
            Ok(r) => r,
            Err(e) => {
                self.warnings.push(e.to_string());
                return None;
            }
        };
        for link in &res.links {
            if !is_pseudo(link) {
                self.add(
                    link,
                    Reason::SymlinkChain {
                        of: raw.clone(),
                        target: res.path.clone(),
                    },
                );
            }
        }
        if !res.exists || is_pseudo(&res.path) {
            return None;
        }
        self.add(&res.path, reason);
        Some(res.path)
    }

    /// Keeps a path and, when it is a directory, its whole subtree.
    pub fn keep_tree(&mut self, raw: &str, reason: Reason) {
        let Some(canonical) = self.keep(raw, reason.clone()) else {
            return;
        };
        if !self.root.lstat(&canonical).is_some_and(|m| m.is_dir()) {
            return;
        }
        let host = self.root.host(&canonical);
        for entry in walkdir::WalkDir::new(&host)
            .follow_links(false)
            .sort_by_file_name()
            .min_depth(1)
        {
            let Ok(entry) = entry else { continue };
            let Ok(rel) = entry.path().strip_prefix(&host) else {
                continue;
            };
            let Some(rel) = rel.to_str() else {
                self.warnings.push(format!(
                    "{}: name is not UTF-8, skipped",
                    entry.path().display()
                ));
                continue;
            };
            let p = format!("{}/{rel}", canonical.trim_end_matches('/'));
            if entry.path_is_symlink() {
                self.keep(&p, reason.clone());
            } else {
                self.add(&p, reason.clone());
            }
        }
    }

    /// Finds an executable `name` in the image's `PATH`; returns the path as found.
    pub fn which(&self, name: &str) -> Option<String> {
        if name.contains('/') {
            let p = if name.starts_with('/') {
                name.to_string()
            } else {
                format!(
                    "{}/{name}",
                    self.inputs.facts.workdir.as_deref().unwrap_or("/")
                )
            };
            return Some(root::normalize(&p));
        }
        self.path_dirs.iter().find_map(|d| {
            let cand = root::normalize(&format!("{d}/{name}"));
            let res = self.root.resolve(&cand, true).ok()?;
            let md = self.root.lstat(&res.path)?;
            (res.exists && md.is_file() && md.permissions().mode() & 0o111 != 0).then_some(cand)
        })
    }

    fn elf_info(&mut self, canonical: &str) -> Option<ElfInfo> {
        if let Some(c) = self.elf_cache.get(canonical) {
            return c.clone();
        }
        let info = match elf::read(&self.root, canonical) {
            Ok(i) => i,
            Err(e) => {
                self.warnings
                    .push(format!("{canonical}: unreadable ELF: {e}"));
                None
            }
        };
        self.elf_cache.insert(canonical.to_string(), info.clone());
        info
    }

    /// Directory listing (names, sorted) of a canonical directory, cached.
    pub fn list_dir(&mut self, canonical: &str) -> Vec<String> {
        if let Some(v) = self.dir_cache.get(canonical) {
            return v.clone();
        }
        let mut v: Vec<String> = std::fs::read_dir(self.root.host(canonical))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        self.dir_cache.insert(canonical.to_string(), v.clone());
        v
    }

    fn process_elf(&mut self, item: ElfItem) {
        // Once per object: the first load path (with its inherited RPATH) wins, like ld.so
        // which loads a soname once.
        if !self.elf_done.insert(item.canonical.clone()) {
            return;
        }
        let Some(info) = self.elf_info(&item.canonical) else {
            return;
        };
        let name = root::file_name(&item.canonical);
        if name.starts_with("libc.so")
            || name.starts_with("libc.musl")
            || name.starts_with("ld-musl")
        {
            self.libc.get_or_insert(item.canonical.clone());
        }
        if rules::is_tls_library(name) || info.go_tls {
            self.tls.push(item.canonical.clone());
        }
        if let Some(interp) = &info.interp {
            self.keep(
                interp,
                Reason::Interpreter {
                    by: item.canonical.clone(),
                },
            );
        }
        let origin = root::parent(&item.loaded_as).unwrap_or("/").to_string();
        let expand = |list: &[String]| -> Vec<String> {
            list.iter()
                .flat_map(|e| elf::expand(e, &origin, info.is_64, info.machine))
                .collect()
        };
        let runpath = expand(&info.runpath);
        let mut rpath = expand(&info.rpath);
        rpath.extend(item.inherited_rpath.iter().cloned());
        for soname in &info.needed {
            match self.resolver.find(
                &self.root,
                soname,
                (info.is_64, info.machine),
                &rpath,
                &runpath,
            ) {
                Some(found) => {
                    let reason = Reason::Needed {
                        by: item.canonical.clone(),
                        soname: soname.clone(),
                        via: found.via.to_string(),
                    };
                    let canonical = found.resolution.path.clone();
                    let new = !self.entries.contains_key(&canonical);
                    self.keep(&found.path, reason);
                    if new && self.entries.contains_key(&canonical) {
                        self.queue.push_back(ElfItem {
                            canonical,
                            loaded_as: found.path,
                            inherited_rpath: if runpath.is_empty() {
                                rpath.clone()
                            } else {
                                Vec::new()
                            },
                        });
                    }
                }
                None => self.warnings.push(format!(
                    "{}: DT_NEEDED {soname} not found in the image",
                    item.canonical
                )),
            }
        }
    }

    /// Processes newly kept files until nothing new comes in.
    fn drain(&mut self) {
        loop {
            if let Some(item) = self.queue.pop_front() {
                self.process_elf(item);
                continue;
            }
            let Some(file) = self.pending_files.pop_front() else {
                break;
            };
            // Scripts, Python and Node metadata (C extensions and .node addons included).
            rules::per_file(self, &file);
            if elf::ident(&self.root, &file).is_some() {
                // ELF objects reached by DT_NEEDED are queued with their load path already;
                // anything else (executables, dlopened modules) is its own origin.
                self.queue.push_back(ElfItem {
                    canonical: file.clone(),
                    loaded_as: file,
                    inherited_rpath: Vec::new(),
                });
            }
        }
    }
}

/// Computes the selection. See the crate docs.
pub fn select(rootfs: &Path, inputs: &SelectInputs) -> Result<Selection, SelectError> {
    let root = Rootfs::new(rootfs)?;
    let ld_library_path: Vec<String> = inputs
        .facts
        .env_var("LD_LIBRARY_PATH")
        .map(|v| {
            v.split(':')
                .filter(|s| s.starts_with('/'))
                .map(root::normalize)
                .collect()
        })
        .unwrap_or_default();
    let resolver = LibResolver::load(&root, ld_library_path);
    let path_dirs = inputs
        .facts
        .env_var("PATH")
        .unwrap_or(DEFAULT_PATH)
        .split(':')
        .filter(|s| s.starts_with('/'))
        .map(root::normalize)
        .collect();
    let mut cx = Ctx {
        root,
        inputs,
        entries: BTreeMap::new(),
        generated: BTreeMap::new(),
        created_dirs: BTreeMap::new(),
        excluded: BTreeMap::new(),
        warnings: resolver.warnings.clone(),
        resolver,
        path_dirs,
        queue: VecDeque::new(),
        pending_files: VecDeque::new(),
        elf_cache: HashMap::new(),
        elf_done: Default::default(),
        exclude: globset("--exclude", &inputs.excludes)?,
        preserve: globset("--preserve-path", &inputs.preserve_paths)?,
        libc: None,
        tls: Vec::new(),
        dir_cache: HashMap::new(),
        dist_cache: HashMap::new(),
    };
    // Validate include globs up front so a typo is an error, not a silent no-op.
    for p in &inputs.include_paths {
        Glob::new(p).map_err(|source| SelectError::Glob {
            flag: "--include-path",
            pattern: p.clone(),
            source,
        })?;
    }

    // 1. Traced paths.
    for (path, rec) in &inputs.traced {
        if !rec.found {
            continue;
        }
        let reason = Reason::Traced {
            processes: rec.processes.iter().cloned().collect(),
            syscalls: rec.syscalls.iter().cloned().collect(),
            accesses: rec
                .kinds
                .iter()
                .map(|k| format!("{k:?}").to_lowercase())
                .collect(),
        };
        let created = rec.kinds.contains(&pare_trace::AccessKind::Create);
        if cx.keep(path, reason).is_none() && created {
            // The app created it at run time (nginx's /var/lib/nginx/body): that only works
            // again when the nearest existing ancestor directory is in the slim image too.
            let mut cur = root::normalize(path);
            while let Some(parent) = root::parent(&cur).map(str::to_string) {
                if parent == "/"
                    || cx
                        .keep(&parent, Reason::Parent { of: path.clone() })
                        .is_some()
                {
                    break;
                }
                cur = parent;
            }
        }
    }
    // 2. Image config and baseline files.
    rules::image_config(&mut cx);
    // 3. Flags.
    for g in &inputs.include_paths {
        rules::include_glob(&mut cx, g, Reason::IncludePath { glob: g.clone() });
    }
    for g in &inputs.preserve_paths {
        rules::include_glob(&mut cx, g, Reason::PreservePath { glob: g.clone() });
    }
    for b in &inputs.include_bins {
        if cx.keep(b, Reason::IncludeBin { path: b.clone() }).is_none() {
            cx.warnings
                .push(format!("--include-bin {b}: not in the image"));
        }
    }
    for name in &inputs.include_exes {
        match cx.which(name) {
            Some(p) => {
                cx.keep(
                    &p,
                    Reason::IncludeExe {
                        name: name.clone(),
                        path: p.clone(),
                    },
                );
            }
            None => cx
                .warnings
                .push(format!("--include-exe {name}: not found in PATH")),
        }
    }
    if inputs.include_shell && cx.keep("/bin/sh", Reason::IncludeShell).is_none() {
        cx.warnings
            .push("--include-shell: the image has no /bin/sh".into());
    }
    // 4. Closure to a fixed point: per-file rules inside drain, global rules once triggered.
    let mut done = rules::GlobalDone::default();
    loop {
        cx.drain();
        if !rules::global(&mut cx, &mut done) {
            break;
        }
    }
    // 5. dpkg database of the owners of what is kept.
    dpkg::trim(&mut cx);
    // 6. Parents, with the first child that needed them.
    let paths: Vec<String> = cx
        .entries
        .keys()
        .cloned()
        .chain(cx.created_dirs.keys().cloned())
        .collect();
    for p in paths {
        let mut cur = p.as_str();
        while let Some(parent) = root::parent(cur) {
            if parent == "/" {
                break;
            }
            if cx.entries.contains_key(parent) {
                break;
            }
            if cx.root.lstat(parent).is_some() {
                cx.entries.insert(
                    parent.to_string(),
                    Kept {
                        reasons: vec![Reason::Parent { of: p.clone() }],
                    },
                );
            } else {
                cx.created_dirs.entry(parent.to_string()).or_insert(0o755);
            }
            cur = parent;
        }
    }
    Ok(Selection {
        entries: cx.entries,
        generated: cx.generated,
        created_dirs: cx.created_dirs,
        excluded: cx.excluded,
        warnings: cx.warnings,
    })
}
